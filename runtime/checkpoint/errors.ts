// The one error type of the checkpoint layer. Every problem with a checkpoint, a safetensors file or a
// tfjs weights folder is reported as a CheckpointError whose message says what is wrong and what to do;
// `code` is stable and meant for programs (tests, the CLI's exit handling), the message for people.

export type CheckpointErrorCode =
  // safetensors container
  | "ST_TOO_SHORT" // fewer than 8 bytes: no header length
  | "ST_HEADER_LENGTH" // header length runs past the end of the file (truncated file, or not safetensors)
  | "ST_HEADER_UTF8" // header bytes are not UTF-8
  | "ST_HEADER_JSON" // header is not a JSON object
  | "ST_HEADER_ENTRY" // a tensor entry or __metadata__ is malformed
  | "ST_DTYPE" // unknown dtype
  | "ST_SIZE" // byte range does not match shape × item size
  | "ST_OFFSETS" // byte ranges out of range, overlapping, with holes, or trailing bytes
  | "ST_ENCODE" // a tensor given to the encoder is inconsistent
  // checkpoint folders
  | "CKPT_MANIFEST" // manifest.json missing or malformed
  | "CKPT_VERSION" // written by a newer format version
  | "CKPT_MISSING_FILE" // a file listed in the manifest is absent
  | "CKPT_CORRUPT" // size or sha256 mismatch, or a file that does not parse
  | "CKPT_STATE" // state.json malformed
  | "CKPT_FINGERPRINT" // written for a different model
  | "CKPT_ARGUMENT" // bad argument from the caller (keep, step, …)
  | "CKPT_IO" // file system error while writing
  // tfjs model.json
  | "TFJS_MODEL_JSON" // model.json missing, not JSON, or without weightsManifest
  | "TFJS_SHARD" // a shard file is missing
  | "TFJS_SIZE" // shard bytes do not match the manifest
  | "TFJS_DTYPE"; // unsupported dtype or quantization

export class CheckpointError extends Error {
  readonly code: CheckpointErrorCode;
  /** The file the problem is in, when there is one. */
  readonly file: string | undefined;

  constructor(code: CheckpointErrorCode, message: string, options?: { file?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CheckpointError";
    this.code = code;
    this.file = options?.file;
  }
}

