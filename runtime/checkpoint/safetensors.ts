// Reader and writer of the safetensors format (https://github.com/huggingface/safetensors), on plain typed
// arrays, independent of TensorFlow.js.
//
// Layout: 8 bytes little-endian u64 N; N bytes of UTF-8 JSON, the header, padded with spaces to a multiple
// of 8; then the byte buffer. The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]}
// (offsets relative to the byte buffer) and may hold "__metadata__": {string: string}. All numbers are
// little-endian. The tensors' byte ranges cover the byte buffer exactly: no overlap, no hole, nothing after.
//
// Encoding is deterministic. Tensors are laid out like the reference writer does: by item size, largest
// first, then by name (UTF-16 code unit order); the header lists "__metadata__" first (when there is any
// metadata) and then the tensors in that same order, as compact JSON. Because the header is padded to a
// multiple of 8 and larger items come first, every tensor starts at a multiple of its item size in the file.
//
// Decoding validates everything and copies each tensor into its own, aligned, typed array, so the result
// never aliases the input buffer and the input may sit at any byte offset.
//
// F16 and BF16 tensors are held as their raw 16-bit patterns (Uint16Array), so round trips are exact;
// f16ToF32 / f32ToF16 / bf16ToF32 / f32ToBf16 and toFloat32() convert. The encoder also accepts a
// Float32Array for an F16 or BF16 tensor and rounds it (to nearest, ties to even).

import { CheckpointError } from "./errors.js";

export { CheckpointError } from "./errors.js";

/** The typed array that holds each dtype's elements. */
export interface DTypeArrays {
  F64: Float64Array;
  F32: Float32Array;
  /** IEEE half precision, as raw bit patterns. */
  F16: Uint16Array;
  /** bfloat16, as raw bit patterns. */
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U64: BigUint64Array;
  U32: Uint32Array;
  U16: Uint16Array;
  U8: Uint8Array;
  /** One byte per element, 0 or 1. */
  BOOL: Uint8Array;
  /** 8-bit floats, as raw bytes. */
  F8_E4M3: Uint8Array;
  F8_E5M2: Uint8Array;
}

export type DType = keyof DTypeArrays;
export type HostData = DTypeArrays[DType];

export interface HostTensor {
  dtype: DType;
  /** Row-major; [] is a scalar (one element). */
  shape: number[];
  /** Exactly product(shape) elements, of the array type DTypeArrays[dtype] (or Float32Array for F16/BF16 when encoding). */
  data: HostData;
}

export interface DecodedSafetensors {
  tensors: Record<string, HostTensor>;
  metadata: Record<string, string>;
}

interface DTypeInfo {
  size: number;
  make: (buffer: ArrayBuffer) => HostData;
  ctor: Function;
}

const DTYPES: Record<DType, DTypeInfo> = {
  F64: { size: 8, make: (b) => new Float64Array(b), ctor: Float64Array },
  F32: { size: 4, make: (b) => new Float32Array(b), ctor: Float32Array },
  F16: { size: 2, make: (b) => new Uint16Array(b), ctor: Uint16Array },
  BF16: { size: 2, make: (b) => new Uint16Array(b), ctor: Uint16Array },
  I64: { size: 8, make: (b) => new BigInt64Array(b), ctor: BigInt64Array },
  I32: { size: 4, make: (b) => new Int32Array(b), ctor: Int32Array },
  I16: { size: 2, make: (b) => new Int16Array(b), ctor: Int16Array },
  I8: { size: 1, make: (b) => new Int8Array(b), ctor: Int8Array },
  U64: { size: 8, make: (b) => new BigUint64Array(b), ctor: BigUint64Array },
  U32: { size: 4, make: (b) => new Uint32Array(b), ctor: Uint32Array },
  U16: { size: 2, make: (b) => new Uint16Array(b), ctor: Uint16Array },
  U8: { size: 1, make: (b) => new Uint8Array(b), ctor: Uint8Array },
  BOOL: { size: 1, make: (b) => new Uint8Array(b), ctor: Uint8Array },
  F8_E4M3: { size: 1, make: (b) => new Uint8Array(b), ctor: Uint8Array },
  F8_E5M2: { size: 1, make: (b) => new Uint8Array(b), ctor: Uint8Array },
};

/** Every dtype this module reads and writes. */
export const DTYPE_NAMES: readonly DType[] = Object.freeze(Object.keys(DTYPES) as DType[]);

export function isDType(s: unknown): s is DType {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

/** Bytes per element of a dtype. */
export function dtypeSize(dtype: DType): number {
  return DTYPES[dtype].size;
}

/** Number of elements of a shape (1 for a scalar), or NaN when the shape is not a list of non-negative safe integers or the product is not safe. */
export function numElements(shape: readonly unknown[]): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) return NaN;
    n *= d;
    if (!Number.isSafeInteger(n)) return NaN;
  }
  return n;
}

// ── half precision ────────────────────────────────────────────────────────────────────────────────

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The float32 value of an IEEE half-precision bit pattern (exact; NaN payloads are not kept). */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** The IEEE half-precision bit pattern nearest to a number (rounded first to float32, then to half, ties to even; overflow gives ±Infinity). */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e >= 1) {
    let h = sign | (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent is the right answer, up to Infinity
    return h;
  }
  // Subnormal half (or zero): value = m × 2^-24 with m = significand >> shift.
  if (exp === 0) return sign; // float32 zero or subnormal: far below half's smallest subnormal
  const sig = mant | 0x800000;
  const shift = 14 - e;
  if (shift > 24) return sign;
  let m = sig >>> shift;
  const rest = sig & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && m & 1)) m++;
  return sign | m;
}

/** The float32 value of a bfloat16 bit pattern (exact). */
export function bf16ToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** The bfloat16 bit pattern nearest to a number (rounded first to float32, then ties to even). */
export function f32ToBf16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff; // NaN stays NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Half-precision bit patterns → Float32Array. */
export function float16BitsToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16ToF32(bits[i]!);
  return out;
}

/** Float32Array → half-precision bit patterns (ties to even). */
export function float32ToFloat16Bits(values: Float32Array | Float64Array | readonly number[]): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16(values[i]!);
  return out;
}

/** bfloat16 bit patterns → Float32Array. */
export function bfloat16BitsToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bf16ToF32(bits[i]!);
  return out;
}

/** Float32Array → bfloat16 bit patterns (ties to even). */
export function float32ToBfloat16Bits(values: Float32Array | Float64Array | readonly number[]): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToBf16(values[i]!);
  return out;
}

/**
 * A tensor's values as a Float32Array: F16/BF16 are converted from their bit patterns, other numeric
 * dtypes are converted with float32 rounding (64-bit integers through Number), F32 is copied. 8-bit
 * float dtypes are refused (no conversion is implemented).
 */
export function toFloat32(t: HostTensor): Float32Array {
  if ((t.dtype === "F16" || t.dtype === "BF16") && t.data instanceof Float32Array) return Float32Array.from(t.data);
  switch (t.dtype) {
    case "F16":
      return float16BitsToFloat32(t.data as Uint16Array);
    case "BF16":
      return bfloat16BitsToFloat32(t.data as Uint16Array);
    case "I64":
    case "U64": {
      const d = t.data as BigInt64Array | BigUint64Array;
      const out = new Float32Array(d.length);
      for (let i = 0; i < d.length; i++) out[i] = Number(d[i]!);
      return out;
    }
    case "F8_E4M3":
    case "F8_E5M2":
      throw new CheckpointError("ST_DTYPE", `cannot convert ${t.dtype} to float32: 8-bit float conversion is not implemented; store the tensor as F16 or F32 instead`);
    default:
      return Float32Array.from(t.data as Exclude<HostData, BigInt64Array | BigUint64Array>);
  }
}

// ── byte order ────────────────────────────────────────────────────────────────────────────────────

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses each `size`-byte group in place (only needed on a big-endian host). */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/**
 * A copy of some bytes in a fresh ArrayBuffer of exactly that size (so it is aligned for any typed array).
 * Not `.slice()`: on a Node Buffer that returns a view of the same memory.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

// ── encoding ──────────────────────────────────────────────────────────────────────────────────────

const encoder = new TextEncoder();

interface Planned {
  name: string;
  dtype: DType;
  shape: number[];
  bytes: Uint8Array; // little-endian element bytes
}

function describeData(data: unknown): string {
  if (data === null || typeof data !== "object") return typeof data;
  return (data as object).constructor?.name ?? "object";
}

function tensorBytes(name: string, t: HostTensor): Uint8Array {
  if (t === null || typeof t !== "object") throw new CheckpointError("ST_ENCODE", `tensor "${name}" is not an object with dtype, shape and data`);
  if (!isDType(t.dtype)) {
    throw new CheckpointError("ST_ENCODE", `tensor "${name}" has unknown dtype ${JSON.stringify(t.dtype)}; use one of ${DTYPE_NAMES.join(", ")}`);
  }
  if (!Array.isArray(t.shape)) throw new CheckpointError("ST_ENCODE", `tensor "${name}" has no shape array`);
  const n = numElements(t.shape);
  if (Number.isNaN(n)) {
    throw new CheckpointError("ST_ENCODE", `tensor "${name}" has shape ${JSON.stringify(t.shape)}; a shape must be a list of non-negative integers`);
  }
  const info = DTYPES[t.dtype];
  let data: HostData = t.data;
  if ((t.dtype === "F16" || t.dtype === "BF16") && data instanceof Float32Array) {
    data = t.dtype === "F16" ? float32ToFloat16Bits(data) : float32ToBfloat16Bits(data);
  }
  if (!(data instanceof info.ctor)) {
    const want = t.dtype === "F16" || t.dtype === "BF16" ? "Uint16Array (bit patterns) or Float32Array" : info.ctor.name;
    throw new CheckpointError("ST_ENCODE", `tensor "${name}" has dtype ${t.dtype} but its data is a ${describeData(t.data)}; pass a ${want}`);
  }
  if (data.length !== n) {
    throw new CheckpointError("ST_ENCODE", `tensor "${name}" has shape ${JSON.stringify(t.shape)} (${n} elements) but ${data.length} data elements; make them agree`);
  }
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN || info.size === 1) return view;
  const copy = copyBytes(view);
  swapBytes(copy, info.size);
  return copy;
}

/**
 * Serializes tensors (and optional string metadata) to safetensors bytes. Deterministic: the same input
 * gives the same bytes. Throws CheckpointError (code ST_ENCODE) when a tensor is inconsistent.
 */
export function encodeSafetensors(tensors: Record<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  const planned: Planned[] = [];
  for (const name of Object.keys(tensors)) {
    if (name === "__metadata__") throw new CheckpointError("ST_ENCODE", `"__metadata__" cannot be a tensor name (the format reserves it); rename the tensor`);
    const t = tensors[name]!;
    const bytes = tensorBytes(name, t);
    planned.push({ name, dtype: t.dtype, shape: t.shape.slice(), bytes });
  }
  planned.sort((a, b) => DTYPES[b.dtype].size - DTYPES[a.dtype].size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== "object") throw new CheckpointError("ST_ENCODE", `metadata must be an object of strings`);
    const keys = Object.keys(metadata).sort();
    if (keys.length > 0) {
      const m: Record<string, string> = {};
      for (const k of keys) {
        const v = metadata[k];
        if (typeof v !== "string") {
          throw new CheckpointError("ST_ENCODE", `metadata "${k}" is a ${typeof v}; safetensors metadata values must be strings (JSON.stringify it first)`);
        }
        define(m, k, v);
      }
      header["__metadata__"] = m;
    }
  }
  let offset = 0;
  for (const p of planned) {
    const end = offset + p.bytes.length;
    define(header, p.name, { dtype: p.dtype, shape: p.shape, data_offsets: [offset, end] });
    offset = end;
  }
  const json = encoder.encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let pos = 8 + padded;
  for (const p of planned) {
    out.set(p.bytes, pos);
    pos += p.bytes.length;
  }
  return out;
}

/** Sets an own, enumerable property, even for names like "__proto__". */
function define<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

// ── decoding ──────────────────────────────────────────────────────────────────────────────────────

const HINT = "the file is damaged or is not a safetensors file; re-export it or use another copy";

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function entryError(name: string, what: string): CheckpointError {
  return new CheckpointError("ST_HEADER_ENTRY", `tensor "${name}" in the safetensors header ${what}; ${HINT}`);
}

/**
 * Parses safetensors bytes. Validates the header length, the JSON, every entry (known dtype, shape of
 * non-negative integers, byte range of exactly product(shape) × item size), and that the byte ranges tile
 * the data buffer with no overlap, no hole and no trailing bytes. Throws CheckpointError on any problem.
 */
export function decodeSafetensors(buf: Uint8Array): DecodedSafetensors {
  if (!(buf instanceof Uint8Array)) throw new CheckpointError("ST_TOO_SHORT", `decodeSafetensors expects a Uint8Array (got ${describeData(buf)})`);
  if (buf.length < 8) {
    throw new CheckpointError("ST_TOO_SHORT", `file is ${buf.length} bytes, shorter than the 8-byte header length of a safetensors file; ${HINT}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(buf.length - 8)) {
    throw new CheckpointError(
      "ST_HEADER_LENGTH",
      `header length says ${n64} bytes but only ${buf.length - 8} bytes follow it: the file is truncated or is not safetensors; ${HINT}`,
    );
  }
  const n = Number(n64);
  const headerBytes = buf.subarray(8, 8 + n);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch (e) {
    throw new CheckpointError("ST_HEADER_UTF8", `the ${n}-byte header is not valid UTF-8; ${HINT}`, { cause: e });
  }
  if (text[0] !== "{") {
    throw new CheckpointError("ST_HEADER_JSON", `the header does not start with "{" (it starts with ${JSON.stringify(text.slice(0, 16))}); ${HINT}`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError("ST_HEADER_JSON", `the header is not valid JSON (${(e as Error).message}); ${HINT}`, { cause: e });
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new CheckpointError("ST_HEADER_JSON", `the header is not a JSON object; ${HINT}`);
  }

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  const dataLength = buf.length - 8 - n;
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        throw new CheckpointError("ST_HEADER_ENTRY", `"__metadata__" in the header is not an object of strings; ${HINT}`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") throw new CheckpointError("ST_HEADER_ENTRY", `metadata "${k}" is not a string; ${HINT}`);
        define(metadata, k, v);
      }
      continue;
    }
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw entryError(name, "is not an object");
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== "string") throw entryError(name, "has no dtype");
    if (!isDType(dtype)) {
      throw new CheckpointError(
        "ST_DTYPE",
        `tensor "${name}" has dtype ${JSON.stringify(dtype)}, which this reader does not support (supported: ${DTYPE_NAMES.join(", ")}); convert the tensor to a supported dtype before saving`,
      );
    }
    if (!Array.isArray(shape)) throw entryError(name, "has no shape list");
    const count = numElements(shape);
    if (Number.isNaN(count)) throw entryError(name, `has shape ${JSON.stringify(shape)}, which is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)) {
      throw entryError(name, `has data_offsets ${JSON.stringify(offsets)}; they must be [begin, end], two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) {
      throw new CheckpointError("ST_OFFSETS", `tensor "${name}" has data_offsets [${begin}, ${end}] with end before begin; ${HINT}`);
    }
    if (end > dataLength) {
      throw new CheckpointError(
        "ST_OFFSETS",
        `tensor "${name}" has data_offsets [${begin}, ${end}] but the data buffer is only ${dataLength} bytes: the file is truncated; ${HINT}`,
      );
    }
    const size = DTYPES[dtype].size;
    if (end - begin !== count * size) {
      throw new CheckpointError(
        "ST_SIZE",
        `tensor "${name}" (${dtype}, shape ${JSON.stringify(shape)}) needs ${count} × ${size} = ${count * size} bytes but data_offsets [${begin}, ${end}] give ${end - begin}; ${HINT}`,
      );
    }
    entries.push({ name, dtype, shape: (shape as number[]).slice(), begin, end });
  }

  // The byte ranges must tile [0, dataLength): sorted by begin, each starts where the previous ended.
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < at) {
      throw new CheckpointError(
        "ST_OFFSETS",
        `tensors "${prev!.name}" [${prev!.begin}, ${prev!.end}] and "${e.name}" [${e.begin}, ${e.end}] overlap in the data buffer; ${HINT}`,
      );
    }
    if (e.begin > at) {
      throw new CheckpointError(
        "ST_OFFSETS",
        `bytes ${at}..${e.begin} of the data buffer belong to no tensor (a hole before "${e.name}"); ${HINT}`,
      );
    }
    at = e.end;
    if (e.end > e.begin || prev === undefined) prev = e;
  }
  if (at !== dataLength) {
    throw new CheckpointError(
      "ST_OFFSETS",
      `the file has ${dataLength - at} bytes after the last tensor's data (trailing garbage, or a header that lost entries); ${HINT}`,
    );
  }

  const tensors: Record<string, HostTensor> = {};
  const base = 8 + n;
  for (const e of entries) {
    const info = DTYPES[e.dtype];
    const bytes = copyBytes(buf.subarray(base + e.begin, base + e.end));
    if (!LITTLE_ENDIAN) swapBytes(bytes, info.size);
    define(tensors, e.name, { dtype: e.dtype, shape: e.shape, data: info.make(bytes.buffer as ArrayBuffer) });
  }
  return { tensors, metadata };
}
