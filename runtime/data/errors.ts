// The one error type of the data layer: a message that names the file, field or column involved and,
// where there is one, what to do about it. Anything else escaping the data layer is a bug.

import { LIMITS, limitText, overLimit, type LimitKey } from "../../compiler/limits.js";

export class DataError extends Error {
  override name = "DataError";
  constructor(message: string) {
    super(message);
  }
}

/** The DataError of limit `key` of compiler/limits.ts refusing `file` (text "NN7042: …; hint"). */
export function overLimitError(key: LimitKey, file: string, amount: number | string): DataError {
  return new DataError(limitText(LIMITS[key].code, overLimit(key, file, amount)));
}
