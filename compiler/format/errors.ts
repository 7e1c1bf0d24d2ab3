// Syntax errors of a file the formatter refuses, as one message with the first error's position (for the
// prettier plugin, whose errors carry one location).
import type { Diagnostic } from "../diagnostics.js";
import { SourceFile } from "../source.js";

export function diagnosticsLine(file: string, text: string, ds: Diagnostic[]): { message: string; line: number; column: number } {
  const src = new SourceFile(file, text);
  const first = ds[0]!;
  const { line, col } = src.position(first.span.start);
  const more = ds.length > 1 ? ` (and ${ds.length - 1} more syntax error${ds.length > 2 ? "s" : ""}; nnetc check ${file} lists them)` : "";
  return { message: `${first.code}: ${first.message}${first.hint ? ` (${first.hint})` : ""}${more}`, line, column: col };
}
