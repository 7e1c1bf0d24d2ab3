// Reading a .nnet file from disk within the limits of compiler/limits.ts: stat first, refuse what is not a regular
// file (/dev/zero, a FIFO, a directory), refuse a file over NNETC_MAX_SOURCE_MB before reading it, and read at most
// limit + 1 bytes (a file that grows, or a /proc file that claims size 0, is still bounded). The CLI, the language
// server and the loader hooks all read sources through here.
import { closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from "node:fs";
import { fileKind, LIMITS, limit, limitText, notRegular, NOT_REGULAR_CODE, overLimit, specialFileKind } from "./limits.js";

/** A file's text, or why it cannot be read; `refused` when a limit of compiler/limits.ts refused it. */
export type SourceRead = { text: string } | { error: string; refused?: { code: "NN7040"; size: number | string } | { code: "NN7041"; kind: string } };

export function readSource(file: string, opts: { strictUtf8?: boolean; role?: string } = {}): SourceRead {
  const refuse = (kind: string): SourceRead => ({ error: limitText(NOT_REGULAR_CODE, notRegular(file, kind, opts.role ?? "a .nnet file")), refused: { code: "NN7041", kind } });
  let fd: number;
  try {
    // stat before open: opening a FIFO with no writer would block
    const kind = fileKind(statSync(file)) ?? specialFileKind(realpathSync.native(file)); // /proc files claim to be regular
    if (kind) return refuse(kind);
    fd = openSync(file, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : `cannot access it (${code ?? "unknown error"})` };
  }
  try {
    const st = fstatSync(fd); // what was opened (the path may have been replaced since the stat)
    const kind = fileKind(st);
    if (kind) return refuse(kind);
    const max = limit("sourceBytes");
    if (st.size > max) return { error: limitText(LIMITS.sourceBytes.code, overLimit("sourceBytes", file, st.size)), refused: { code: "NN7040", size: st.size } };
    const buf = Buffer.alloc(Math.min(max + 1, Math.max(st.size + 1, 64 * 1024)));
    let n = 0;
    for (;;) {
      if (n === buf.length) break;
      const k = readSync(fd, buf, n, buf.length - n, null);
      if (k === 0) break;
      n += k;
    }
    if (n > max) {
      const size = "it holds more than";
      return { error: limitText(LIMITS.sourceBytes.code, overLimit("sourceBytes", file, size)), refused: { code: "NN7040", size } };
    }
    const bytes = buf.subarray(0, n);
    try {
      return { text: new TextDecoder("utf-8", { fatal: !!opts.strictUtf8 }).decode(bytes).replace(/^\uFEFF/, "") };
    } catch {
      return { error: `it is not UTF-8 text (invalid byte at offset ${firstInvalidUtf8(bytes)})` };
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code === "EACCES" ? "permission denied" : `cannot read it (${code ?? "unknown error"})` };
  } finally {
    closeSync(fd);
  }
}

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) {
      if (i + k >= b.length || (b[i + k]! & 0xc0) !== 0x80) return i;
    }
    if ((c === 0xe0 && b[i + 1]! < 0xa0) || (c === 0xed && b[i + 1]! > 0x9f) || (c === 0xf0 && b[i + 1]! < 0x90) || (c === 0xf4 && b[i + 1]! > 0x8f)) return i;
    i += n + 1;
  }
  return b.length;
}
