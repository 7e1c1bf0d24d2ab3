// The formatter's entry point: `.nnet` text → formatted text. Pure and synchronous (no I/O, no tfjs):
// the CLI (`nnetc fmt`), the language server's formatting request and the prettier plugin
// (./prettier.ts, which prints the same Doc) all use it. A file with syntax errors is not formatted:
// its NN1xxx diagnostics come back instead.
import { printer } from "prettier/doc";
import { parseText } from "../../grammar/parser.js";
import * as T from "../../grammar/tokens.js";
import { parseFile } from "../ast/build.js";
import { diag, type Diagnostic } from "../diagnostics.js";
import { commentText, fileDoc, printedTokens, type Doc } from "./doc.js";

export interface FormatOptions {
  /** The line width the printer tries to keep within; default 100. */
  printWidth?: number;
  /** Spaces per indentation level; default 2. */
  indent?: number;
}

export type FormatResult = { ok: true; text: string; changed: boolean } | { ok: false; diagnostics: Diagnostic[] };

export const DEFAULT_PRINT_WIDTH = 100;
export const DEFAULT_INDENT = 2;

/** The printer's Doc for a text, or its syntax errors. Shared with the prettier plugin. */
export function formatDoc(file: string, text: string): { ok: true; doc: Doc } | { ok: false; diagnostics: Diagnostic[] } {
  const syntax = parseFile(file, text).diagnostics;
  if (syntax.some((d) => d.severity === "error")) return { ok: false, diagnostics: syntax };
  return { ok: true, doc: fileDoc(text, parseText(text)) };
}

/** Format one file's text. Never throws; `changed` says whether the text differs from the input. */
export function format(file: string, text: string, o: FormatOptions = {}): FormatResult {
  try {
    const d = formatDoc(file, text);
    if (!d.ok) return d;
    const out = printer.printDocToString(d.doc, { printWidth: o.printWidth ?? DEFAULT_PRINT_WIDTH, tabWidth: o.indent ?? DEFAULT_INDENT, useTabs: false }).formatted;
    const problem = sameProgram(text, out);
    if (problem) return internal(file, text, `the formatter ${problem}`);
    return { ok: true, text: out, changed: out !== text };
  } catch (e) {
    return internal(file, text, `the formatter failed: ${(e as Error).message}`);
  }
}

function internal(file: string, text: string, message: string): FormatResult {
  return { ok: false, diagnostics: [diag("internal", { file, start: 0, end: Math.min(text.length, 1) }, { message })] };
}

/**
 * The guard behind the promise that formatting changes only layout: the output has the input's tokens
 * (less `;`), its comments in the same order with the same text, and each comment either between the
 * same two tokens or moved to the end of its line (a trailing comment printed after the rest of the line).
 * Returns what went wrong, or undefined.
 */
export function sameProgram(before: string, after: string): string | undefined {
  const a = T.lexer.tokenize(before);
  const b = T.lexer.tokenize(after);
  if (b.errors.length || b.groups.errors?.length) return "produced text that does not lex";
  const ta = printedTokens(a.tokens);
  const tb = printedTokens(b.tokens);
  if (ta.length !== tb.length || ta.some((x, i) => x.image !== tb[i]!.image)) {
    const i = ta.findIndex((x, k) => x.image !== tb[k]?.image);
    return `changed the program's tokens (token ${i + 1}: ${JSON.stringify(ta[i]?.image)} became ${JSON.stringify(tb[i]?.image)})`;
  }
  const place = (toks: typeof ta, comments: typeof ta) => {
    let k = 0;
    return comments.map((c) => {
      while (k < toks.length && toks[k]!.startOffset < c.startOffset) k++;
      return { text: commentText(c), at: k, line: c.startLine! };
    });
  };
  const ca = place(ta, a.groups.comments ?? []);
  const cb = place(tb, b.groups.comments ?? []);
  if (ca.length !== cb.length) return `lost or duplicated comments (${ca.length} before, ${cb.length} after)`;
  for (let i = 0; i < ca.length; i++) {
    const x = ca[i]!;
    const y = cb[i]!;
    if (x.text !== y.text) return `changed comment ${i + 1} (${JSON.stringify(x.text.slice(0, 40))})`;
    // Moved past tokens: only those on the line of the token it followed, which it must still share.
    const moved = y.at !== x.at && (y.at < x.at || x.at === 0 || tb.slice(x.at - 1, y.at).some((t) => t.startLine !== y.line));
    if (moved) return `moved comment ${i + 1} (${JSON.stringify(x.text.slice(0, 40))}) away from its line`;
  }
  return undefined;
}
