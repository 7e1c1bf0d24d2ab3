// Diagnostics as text (path:line:col - error NN3002: message, a code frame with carets, a hint)
// and as JSON data. The one place that formats diagnostics for people.
import type { Diagnostic } from "./diagnostics.js";
import type { SourceFile } from "./source.js";

export interface RenderOptions {
  color?: boolean;
}

const paint = (on: boolean, code: string, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

export function renderDiagnostic(d: Diagnostic, sources: ReadonlyMap<string, SourceFile>, opts: RenderOptions = {}): string {
  const c = !!opts.color;
  const src = sources.get(d.span.file);
  const pos = src ? src.position(d.span.start) : { line: 1, col: 1 };
  const sev = d.severity === "error" ? paint(c, "31;1", "error") : paint(c, "33;1", "warning");
  const lines = [`${d.span.file}:${pos.line}:${pos.col} - ${sev} ${paint(c, "90", d.code)}: ${d.message}`];
  if (src) lines.push("", ...frame(src, d.span.start, d.span.end, c));
  for (const r of d.related ?? []) {
    const rs = sources.get(r.span.file);
    const rp = rs ? rs.position(r.span.start) : { line: 1, col: 1 };
    lines.push(`  ${r.span.file}:${rp.line}:${rp.col}: ${r.message}`);
  }
  if (d.hint) lines.push(`  ${paint(c, "36", "hint")}: ${d.hint}`);
  return lines.join("\n");
}

/** A diagnostic that has no place in a file (the machine, the command): "error NN7001: message" and its hint. */
export function renderPlain(d: Diagnostic, opts: RenderOptions = {}): string {
  const c = !!opts.color;
  const sev = d.severity === "error" ? paint(c, "31;1", "error") : paint(c, "33;1", "warning");
  return `${sev} ${paint(c, "90", d.code)}: ${d.message}${d.hint ? `\n  ${paint(c, "36", "hint")}: ${d.hint}` : ""}`;
}

/** Up to one line of context before, the line itself, and carets under the span (first line of it). */
function frame(src: SourceFile, start: number, end: number, color: boolean): string[] {
  const { line, col } = src.position(start);
  const endPos = src.position(Math.max(start, end));
  const width = String(line).length + 1;
  const gutter = (n: number | "") => `${String(n).padStart(width)} | `;
  const out: string[] = [];
  const text = src.lineText(line).replace(/\t/g, " ");
  out.push(gutter(line) + text);
  const lastCol = endPos.line === line ? endPos.col : text.length + 1;
  const count = Math.max(1, lastCol - col);
  out.push(gutter("") + " ".repeat(col - 1) + paint(color, "31;1", "^".repeat(Math.min(count, Math.max(1, text.length - col + 2)))));
  return out;
}

export interface JsonDiagnostic {
  code: string;
  severity: string;
  message: string;
  hint?: string;
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  start: number;
  end: number;
}

export function diagnosticToJson(d: Diagnostic, sources: ReadonlyMap<string, SourceFile>): JsonDiagnostic {
  const src = sources.get(d.span.file);
  const a = src ? src.position(d.span.start) : { line: 1, col: 1 };
  const b = src ? src.position(d.span.end) : a;
  return {
    code: d.code,
    severity: d.severity,
    message: d.message,
    ...(d.hint ? { hint: d.hint } : {}),
    file: d.span.file,
    line: a.line,
    column: a.col,
    endLine: b.line,
    endColumn: b.col,
    start: d.span.start,
    end: d.span.end,
  };
}

export function summaryLine(ds: readonly Diagnostic[]): string {
  const e = ds.filter((d) => d.severity === "error").length;
  const w = ds.length - e;
  return `${e} error${e === 1 ? "" : "s"}, ${w} warning${w === 1 ? "" : "s"}`;
}
