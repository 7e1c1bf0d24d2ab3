// The one error type of the data layer: a message that names the file, field or column involved and,
// where there is one, what to do about it. Anything else escaping the data layer is a bug.

export class DataError extends Error {
  override name = "DataError";
  constructor(message: string) {
    super(message);
  }
}
