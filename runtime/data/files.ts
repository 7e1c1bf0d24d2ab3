// Reading a data file within the limits of compiler/limits.ts (a leaf table, the one thing of the compiler that
// nnetc/runtime loads): stat first, refuse what is not a regular file (NN7041: /dev/zero, a FIFO, a directory, /proc),
// refuse a file over its limit before reading it, read at most limit + 1 bytes, inflate gzip with an output budget
// (zlib's maxOutputLength: a bomb stops at the limit, never allocated whole), and count what one dataset source
// reads against NNETC_MAX_DATASET_MB.
import { open, realpath, stat } from "node:fs/promises";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { fileKind, limit, limitText, notRegular, NOT_REGULAR_CODE, specialFileKind, type LimitKey } from "../../compiler/limits.js";
import { DataError, overLimitError } from "./errors.js";

const gunzipAsync = promisify(gunzip);


/** What the data files of one dataset source have read so far (after decompression), against NNETC_MAX_DATASET_MB. */
export class ReadBudget {
  used = 0;
  constructor(readonly what: string) {}
  add(file: string, bytes: number): void {
    this.used += bytes;
    if (this.used > limit("datasetBytes")) throw overLimitError("datasetBytes", `${this.what} (at ${file})`, this.used);
  }
}

export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

export interface ReadOptions {
  /** The limit of the file's bytes (default: NNETC_MAX_DATA_FILE_MB). */
  key?: LimitKey;
  /** Inflate it when it is gzip-compressed (recognized by its magic bytes), within NNETC_MAX_DATA_FILE_MB. */
  gunzip?: boolean;
  budget?: ReadBudget;
  /** What the file is read as, for NN7041 ("a data file"). */
  role?: string;
}

/** A data file's bytes, bounded as the options say; every refusal is a numbered DataError. */
export async function readDataFile(file: string, opts: ReadOptions = {}): Promise<Buffer> {
  const key = opts.key ?? "dataFileBytes";
  const max = limit(key);
  let buf: Buffer;
  try {
    const kind = fileKind(await stat(file)) ?? specialFileKind(await realpath(file)); // before open: opening a FIFO with no writer blocks; /proc files claim to be regular
    if (kind) throw new DataError(limitText(NOT_REGULAR_CODE, notRegular(file, kind, opts.role ?? "a data file")));
    const fh = await open(file, "r");
    try {
      const st = await fh.stat();
      const k2 = fileKind(st);
      if (k2) throw new DataError(limitText(NOT_REGULAR_CODE, notRegular(file, k2, opts.role ?? "a data file")));
      if (st.size > max) throw overLimitError(key, file, st.size);
      buf = Buffer.alloc(Math.min(max + 1, st.size + 1));
      let n = 0;
      while (n < buf.length) {
        const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      // a file that grew after the stat, or one that claims size 0 (/proc): read on, up to the limit
      if (n === buf.length && n <= max) {
        const more: Buffer[] = [buf];
        for (;;) {
          const b = Buffer.alloc(Math.min(1 << 20, max + 1 - n));
          const { bytesRead } = await fh.read(b, 0, b.length, null);
          if (bytesRead === 0) break;
          more.push(b.subarray(0, bytesRead));
          n += bytesRead;
          if (n > max) break;
        }
        buf = Buffer.concat(more);
      }
      if (n > max) throw overLimitError(key, file, "it holds more than");
      buf = buf.subarray(0, n);
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (opts.gunzip && isGzip(buf)) {
    const out = limit("dataFileBytes");
    try {
      buf = await gunzipAsync(buf, { maxOutputLength: out });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") throw overLimitError("dataFileBytes", file, "decompressed, it is more than");
      throw new DataError(`${file} looks gzip-compressed but cannot be decompressed: ${(e as Error).message}`);
    }
  }
  opts.budget?.add(file, buf.length);
  return buf;
}
