// The one error type of the data layer: a message that names the file, field or column involved and,
// where there is one, what to do about it. Anything else escaping the data layer is a bug.

/**
 * The numbered diagnostics (compiler/diagnostics.ts, NN5010–NN5013) a DataError can be: the data layer names
 * the key and says the particulars (file, row, column, value); the CLI renders the code and its hint. The data
 * layer itself imports nothing of the compiler (nnetc/runtime stays free of it).
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
