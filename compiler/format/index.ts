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
 * (less `;`), its comments in the same order with the same text, and each comment between the same
 * two tokens (commas aside: a trailing comment may end up after the comma that followed it).
 * Returns what went wrong, or undefined.
 */
export function sameProgram(before: string, after: string): string | undefined {
  const a = T.lexer.tokenize(before);
  const b = T.lexer.tokenize(after);
  if (b.errors.length || b.groups.errors?.length) return "produced text that does not lex";
  const ta = printedTokens(a.tokens).map((t) => t.image);
  const tb = printedTokens(b.tokens).map((t) => t.image);
  if (ta.length !== tb.length || ta.some((x, i) => x !== tb[i])) {
    const i = ta.findIndex((x, k) => x !== tb[k]);
    return `changed the program's tokens (token ${i + 1}: ${JSON.stringify(ta[i])} became ${JSON.stringify(tb[i])})`;
  }
  const place = (text: ReturnType<typeof T.lexer.tokenize>) => {
    const toks = printedTokens(text.tokens).filter((t) => t.tokenType !== T.Comma);
    let k = 0;
    return (text.groups.comments ?? []).map((c) => {
      while (k < toks.length && toks[k]!.startOffset < c.startOffset) k++;
      return { text: commentText(c), at: k };
    });
  };
  const ca = place(a);
  const cb = place(b);
  if (ca.length !== cb.length) return `lost or duplicated comments (${ca.length} before, ${cb.length} after)`;
  for (let i = 0; i < ca.length; i++) {
    if (ca[i]!.text !== cb[i]!.text) return `changed comment ${i + 1} (${JSON.stringify(ca[i]!.text.slice(0, 40))})`;
    if (ca[i]!.at !== cb[i]!.at) return `moved comment ${i + 1} (${JSON.stringify(ca[i]!.text.slice(0, 40))})`;
  }
  return undefined;
}
