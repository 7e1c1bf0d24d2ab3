// Post-training weight quantization for storage: float16 (every float weight), or int8 (symmetric, one
// scale per output channel, for weights of rank ≥ 2: kernels and embedding tables; biases and batchnorm
// statistics stay float32). Quantized weights are a safetensors file like any other; loading dequantizes.
import type { Int8Weight } from "../compiler/emit/onnx/index.js";
import { toFloat32, type HostTensor } from "./checkpoint/safetensors.js";
import { RunError } from "./errors.js";

export type QuantKind = "int8" | "float16";

/** The name under which an int8 tensor's per-channel scales are stored. */
const scaleName = (name: string) => `${name}:scale`;

/** Quantize float32 weights; the result is what encodeSafetensors writes. */
export function quantizeWeights(host: Record<string, HostTensor>, kind: QuantKind): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(host)) {
    const data = toFloat32(t);
    if (kind === "float16") {
      out[name] = { dtype: "F16", shape: t.shape, data };
      continue;
    }
    if (t.shape.length < 2) {
      out[name] = { dtype: "F32", shape: t.shape, data };
      continue;
    }
    // Symmetric per output channel (the last axis): scale = max |w| / 127, q = round(w / scale).
    const channels = t.shape[t.shape.length - 1]!;
    const scale = new Float32Array(channels);
    for (let i = 0; i < data.length; i++) scale[i % channels] = Math.max(scale[i % channels]!, Math.abs(data[i]!));
    for (let c = 0; c < channels; c++) scale[c] = scale[c]! / 127 || 1;
    const q = new Int8Array(data.length);
    for (let i = 0; i < data.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(data[i]! / scale[i % channels]!)));
    out[name] = { dtype: "I8", shape: t.shape, data: q };
    out[scaleName(name)] = { dtype: "F32", shape: [channels], data: scale };
  }
  return out;
}

/** Weights as float32 again: F16 converted, I8 multiplied by its per-channel scales (which are dropped). */
export function dequantizeWeights(host: Record<string, HostTensor>): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(host)) {
    if (name.endsWith(":scale") && host[name.slice(0, -":scale".length)]?.dtype === "I8") continue;
    if (t.dtype === "I8" && host[scaleName(name)]) {
      const scale = toFloat32(host[scaleName(name)]!);
      const q = t.data as Int8Array;
      const data = new Float32Array(q.length);
      for (let i = 0; i < q.length; i++) data[i] = q[i]! * scale[i % scale.length]!;
      out[name] = { dtype: "F32", shape: t.shape, data };
    } else out[name] = t.dtype === "F32" ? t : { dtype: "F32", shape: t.shape, data: toFloat32(t) };
  }
  return out;
}

/** The metadata key listing sparse-stored tensors: JSON { name: dense shape }. */
export const SPARSE_KEY = "sparse";

/**
 * Pruned tensors stored sparse where that is smaller: `name` holds only the nonzero values (1-D, same
 * dtype: F32, F16 or I8) and `name:mask` their positions as packed bits (U8, bit i of byte i >> 3 is value
 * i, least significant bit first). `shapes` (metadata SPARSE_KEY) gives each dense shape.
 */
export function encodeSparse(host: Record<string, HostTensor>, candidates: readonly string[]): { tensors: Record<string, HostTensor>; shapes: Record<string, number[]> } {
  const tensors = { ...host };
  const shapes: Record<string, number[]> = {};
  for (const name of candidates) {
    const t = host[name];
    if (!t || !(t.dtype === "F32" || t.dtype === "F16" || t.dtype === "I8")) continue;
    const values = toFloat32(t);
    const n = values.length;
    let nonzero = 0;
    for (let i = 0; i < n; i++) if (values[i] !== 0) nonzero++;
    const width = t.dtype === "F32" ? 4 : t.dtype === "F16" ? 2 : 1;
    if (nonzero * width + Math.ceil(n / 8) >= n * width) continue;
    const mask = new Uint8Array(Math.ceil(n / 8));
    const raw = t.dtype === "F16" && t.data instanceof Float32Array ? null : t.data;
    const kept = t.dtype === "F32" ? new Float32Array(nonzero) : t.dtype === "F16" ? (raw ? new Uint16Array(nonzero) : new Float32Array(nonzero)) : new Int8Array(nonzero);
    let at = 0;
    for (let i = 0; i < n; i++) {
      if (values[i] === 0) continue;
      mask[i >> 3]! |= 1 << (i & 7);
      kept[at++] = raw ? (raw as ArrayLike<number>)[i]! : values[i]!;
    }
    tensors[name] = { dtype: t.dtype, shape: [nonzero], data: kept } as HostTensor;
    tensors[`${name}:mask`] = { dtype: "U8", shape: [mask.length], data: mask };
    shapes[name] = [...t.shape];
  }
  return { tensors, shapes };
}

/** Sparse-stored tensors (encodeSparse) back to dense ones of the same dtype, their masks dropped. */
export function densify(host: Record<string, HostTensor>, metadata: Record<string, string>): Record<string, HostTensor> {
  if (!metadata[SPARSE_KEY]) return host;
  const shapes = JSON.parse(metadata[SPARSE_KEY]) as Record<string, number[]>;
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(host)) {
    if (name.endsWith(":mask") && shapes[name.slice(0, -":mask".length)]) continue;
    const shape = shapes[name];
    const mask = host[`${name}:mask`];
    if (!shape || !mask) {
      out[name] = t;
      continue;
    }
    const n = shape.reduce((a, b) => a * b, 1);
    const bits = mask.data as Uint8Array;
    const src = t.data as ArrayLike<number>;
    const dense = t.dtype === "I8" ? new Int8Array(n) : t.dtype === "F16" ? new Uint16Array(n) : new Float32Array(n);
    let at = 0;
    for (let i = 0; i < n; i++) if ((bits[i >> 3]! >> (i & 7)) & 1) dense[i] = src[at++]!;
    if (at !== src.length) throw new RunError(`sparse tensor "${name}": its mask selects ${at} values but it holds ${src.length}; the file is damaged, write it again`);
    out[name] = { dtype: t.dtype, shape, data: dense } as HostTensor;
  }
  return out;
}

/**
 * The int8 tensors of a decoded int8-quantized safetensors file (nnetc compile --quantize int8), kept
 * quantized: name → int8 values and per-channel scales. Empty for any other file.
 */
export function int8Of(tensors: Readonly<Record<string, HostTensor>>, metadata: Readonly<Record<string, string>>): Map<string, Int8Weight> {
  const out = new Map<string, Int8Weight>();
  if (metadata.quantized !== "int8") return out;
  for (const [name, t] of Object.entries(tensors)) {
    const scale = tensors[`${name}:scale`];
    if (t.dtype === "I8" && scale) out.set(name, { shape: t.shape, q: t.data as Int8Array, scale: toFloat32(scale) });
  }
  return out;
}
