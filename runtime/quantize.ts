// Post-training weight quantization for storage: float16 (every float weight), or int8 (symmetric, one
// scale per output channel, for weights of rank ≥ 2: kernels and embedding tables; biases and batchnorm
// statistics stay float32). Quantized weights are a safetensors file like any other; loading dequantizes.
import { toFloat32, type HostTensor } from "./checkpoint/index.js";

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
