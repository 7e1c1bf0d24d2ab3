// Documentation as HTML with ```nnet code blocks highlighted by Shiki from the generated TextMate grammar
// (the one VS Code uses), so docs and editors colour code the same way. `npm run docs:html` writes
// docs/language.html from spec/language.md. Shiki is a devDependency, loaded only when this runs.
import { tmLanguage } from "./tmlanguage.js";

export const DOCS_THEME = "github-light";

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** Inline Markdown: code spans, links, bold and italics, the rest escaped. */
function inline(s: string): string {
  return s
    .split(/(`[^`]*`)/)
    .map((part) => {
      if (part.startsWith("`") && part.endsWith("`") && part.length >= 2) return `<code>${escape(part.slice(1, -1))}</code>`;
      return escape(part)
        .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, t: string, href: string) => `<a href="${href}">${t}</a>`)
        .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
        .replace(/(^|[\s(])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>");
    })
    .join("");
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/`/g, "")
    .replace(/[^a-z0-9 -]/g, "")
    .trim()
    .replace(/ /g, "-");

/**
 * A Markdown document (the subset spec/language.md uses: headings, paragraphs, lists, tables, fenced code)
 * as a standalone HTML page. ```nnet blocks are highlighted from the grammar; other code blocks are plain.
 */
export async function markdownToHtml(markdown: string, title: string): Promise<string> {
  const { createHighlighter } = await import("shiki");
  const grammar = tmLanguage();
  const hl = await createHighlighter({ themes: [DOCS_THEME], langs: [{ ...grammar, name: "nnet" } as never] });
  const out: string[] = [];
  const lines = markdown.split(/\r?\n/);
  let i = 0;
  const para: string[] = [];
  const flush = () => {
    if (para.length) out.push(`<p>${inline(para.join(" "))}</p>`);
    para.length = 0;
  };
  while (i < lines.length) {
    const line = lines[i]!;
    const fence = /^```([\w-]*)(?:\s.*)?$/.exec(line);
    if (fence) {
      flush();
      const body: string[] = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
      i++;
      const code = body.join("\n");
      out.push(fence[1] === "nnet" || fence[1] === "nnet-fragment" ? hl.codeToHtml(code, { lang: "nnet", theme: DOCS_THEME }) : `<pre><code${fence[1] ? ` class="language-${fence[1]}"` : ""}>${escape(code)}</code></pre>`);
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      flush();
      out.push(`<h${h[1]!.length} id="${slug(h[2]!)}">${inline(h[2]!)}</h${h[1]!.length}>`);
      i++;
      continue;
    }
    if (/^\|/.test(line)) {
      flush();
      const rows: string[][] = [];
      for (; i < lines.length && /^\|/.test(lines[i]!); i++) rows.push(lines[i]!.replace(/^\||\|\s*$/g, "").split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|")));
      const [head, , ...body] = rows;
      out.push(`<table><thead><tr>${head!.map((c) => `<th>${inline(c)}</th>`).join("")}</tr></thead><tbody>${body.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join("")}</tr>`).join("")}</tbody></table>`);
      continue;
    }
    if (/^\s*[-*] /.test(line)) {
      flush();
      const items: string[] = [];
      for (; i < lines.length && (/^\s*[-*] /.test(lines[i]!) || (/^\s{2,}\S/.test(lines[i]!) && items.length)); i++) {
        if (/^\s*[-*] /.test(lines[i]!)) items.push(lines[i]!.replace(/^\s*[-*] /, ""));
        else items[items.length - 1] += " " + lines[i]!.trim();
      }
      out.push(`<ul>${items.map((x) => `<li>${inline(x)}</li>`).join("")}</ul>`);
      continue;
    }
    if (!line.trim()) flush();
    else para.push(line.trim());
    i++;
  }
  flush();
  hl.dispose();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escape(title)}</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 56rem; margin: 2rem auto; padding: 0 1rem; color: #24292f; }
pre { padding: 0.8rem 1rem; overflow-x: auto; border: 1px solid #d0d7de; border-radius: 6px; font-size: 14px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; vertical-align: top; }
</style>
</head>
<body>
${out.join("\n")}
</body>
</html>
`;
}
