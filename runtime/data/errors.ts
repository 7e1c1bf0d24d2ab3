// The one error type of the data layer: a message that names the file, field or column involved and,
// where there is one, what to do about it. Anything else escaping the data layer is a bug.

import { LIMITS, limitText, overLimit, type LimitKey } from "../../compiler/limits.js";

/**
 * The numbered diagnostics (compiler/diagnostics.ts, NN5010–NN5013) a DataError can be: the data layer names
 * the key and says the particulars (file, row, column, value); the CLI renders the code and its hint. The data
 * layer imports nothing of the compiler but its leaf table of limits (compiler/limits.ts).
 */
export type DataCode = "labelOutOfRange" | "nonFiniteValue" | "notANumber" | "nonFiniteResult";

export class DataError extends Error {
  override name = "DataError";
  constructor(
    message: string,
    /** The numbered diagnostic this error is, if any: its message is then `message`. */
    readonly code?: DataCode,
  ) {
    super(message);
  }
}

/** The DataError of limit `key` of compiler/limits.ts refusing `file` (text "NN7042: …; hint"). */
export function overLimitError(key: LimitKey, file: string, amount: number | string): DataError {
  return new DataError(limitText(LIMITS[key].code, overLimit(key, file, amount)));
}

// No message quotes the contents of a data file (it may be any file the user can read: /proc/self/environ once
// printed the environment inside "has no column"). What a message may say of a file: counts, positions, and names
// the .nnet file itself wrote (plus a header name within two edits of one, as a "did you mean").

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** "3 columns; did you mean "label"?": how many names the file has, and the one within two edits of `wanted` (one for short names), if any. */
export function columnsHint(wanted: string, have: readonly string[], what = "column"): string {
  const near = wanted.length >= 2 ? have.find((h) => h !== wanted && h.length <= 64 && editDistance(h.toLowerCase(), wanted.toLowerCase()) <= (wanted.length <= 4 ? 1 : 2)) : undefined;
  return `it has ${have.length} ${what}${have.length === 1 ? "" : "s"}${near !== undefined ? `; did you mean ${JSON.stringify(near)}?` : ""}`;
}

const NUMBER_SHAPED = /^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|nan|inf|infinity)$/i;

/** A cell as a message may show it: itself when it is number-shaped (1e400, NaN, -inf), else only what kind it is. */
export function cellText(cell: string): string {
  const t = cell.trim();
  return t === "" ? "an empty cell" : t.length <= 40 && NUMBER_SHAPED.test(t) ? JSON.stringify(t) : `text (${t.length} character${t.length === 1 ? "" : "s"})`;
}

/** A JSON.parse error without the excerpt of the input that V8 quotes: only the position, where it says one. */
export function jsonProblem(e: unknown): string {
  const m = /at position (\d+)/.exec(e instanceof Error ? e.message : String(e));
  return m ? `at position ${m[1]}` : /end of JSON input/.test(String((e as Error)?.message)) ? "it ends early" : "a syntax error";
}

/** What kind of JSON value `v` is ("a string", "a number", "null", "an array"), never the value. */
export function jsonKind(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `a ${typeof v}`;
}
