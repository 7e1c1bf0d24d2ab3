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
