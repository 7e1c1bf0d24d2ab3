// IDX files (MNIST, Fashion-MNIST): magic 0 0 <type> <ndims>, ndims big-endian uint32 sizes, then the data,
// big-endian. Gzip is recognized by its magic bytes, not the file name.
import type { NumStore } from "./columns.js";
import { DataError } from "./errors.js";
import { isGzip, readDataFile, type ReadBudget } from "./files.js";

export { isGzip };

const TYPES: Record<number, { name: string; bytes: number; make: (n: number) => NumStore; get: (v: DataView, o: number) => number }> = {
  0x08: { name: "unsigned byte", bytes: 1, make: (n) => new Uint8Array(n), get: (v, o) => v.getUint8(o) },
  0x09: { name: "signed byte", bytes: 1, make: (n) => new Int8Array(n), get: (v, o) => v.getInt8(o) },
  0x0b: { name: "short", bytes: 2, make: (n) => new Int16Array(n), get: (v, o) => v.getInt16(o) },
  0x0c: { name: "int", bytes: 4, make: (n) => new Int32Array(n), get: (v, o) => v.getInt32(o) },
  0x0d: { name: "float", bytes: 4, make: (n) => new Float32Array(n), get: (v, o) => v.getFloat32(o) },
  0x0e: { name: "double", bytes: 8, make: (n) => new Float64Array(n), get: (v, o) => v.getFloat64(o) },
};

export interface IdxArray {
  /** All dimensions, the first being the number of samples. */
  dims: number[];
  data: NumStore;
}

/** Parse an (already decompressed) IDX buffer; `file` names it in errors. */
export function parseIdx(buf: Uint8Array, file: string): IdxArray {
  const bad = (why: string) => new DataError(`${file} is not a valid IDX file: ${why}`);
  if (buf.length < 4) throw bad(`it is only ${buf.length} bytes long`);
  if (buf[0] !== 0 || buf[1] !== 0) {
    const hex = [...buf.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw bad(`bad magic number ${hex} (expected 00 00 <type> <dimensions>)`);
  }
  const type = TYPES[buf[2]!];
  if (!type) throw bad(`unknown element type 0x${buf[2]!.toString(16).padStart(2, "0")}`);
  const ndims = buf[3]!;
  if (ndims < 1) throw bad("it declares no dimensions");
  const header = 4 + 4 * ndims;
  if (buf.length < header) throw bad(`the header needs ${header} bytes but the file has ${buf.length}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = header + count * type.bytes;
  if (buf.length !== expected) {
    throw bad(`dimensions [${dims.join(", ")}] of ${type.name}s need ${expected} bytes but the file has ${buf.length}${buf.length < expected ? " (truncated?)" : ""}`);
  }
  let data: NumStore;
  if (type.bytes === 1 && buf[2] === 0x08) data = buf.subarray(header, expected);
  else {
    data = type.make(count);
    for (let i = 0, o = header; i < count; i++, o += type.bytes) data[i] = type.get(view, o);
  }
  // float and double items: a NaN or infinity is an error (NN5011) naming the item it is in.
  if (buf[2] === 0x0d || buf[2] === 0x0e) {
    const per = Math.max(1, count / Math.max(1, dims[0]!));
    for (let i = 0; i < count; i++) {
      const x = data[i]!;
      if (!Number.isFinite(x)) throw new DataError(`${file}: item ${Math.floor(i / per)} holds ${x > 0 ? "+" : ""}${x}${per > 1 ? ` (value ${i % per} of ${per})` : ""}, not a finite number`, "nonFiniteValue");
    }
  }
  return { dims, data };
}

/** Read an IDX file, raw or gzip-compressed (bounded: runtime/data/files.ts). */
export async function readIdx(file: string, budget?: ReadBudget): Promise<IdxArray> {
  return parseIdx(await readDataFile(file, { gunzip: true, budget, role: "an IDX file" }), file);
}
