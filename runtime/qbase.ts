// lora base: int8 (QLoRA-style) on TensorFlow.js: frozen base kernels held as int8 with one float32 scale per
// output channel (the last axis), dequantized in every forward pass. TensorFlow.js has no int8 dtype, so four
// int8 values are packed into each int32 element (little-endian bytes, the Int8Array's own bytes read as
// Int32Array): the kernel occupies a quarter of its float32 bytes on the device, which tf.memory() shows.
// The interpreter reads a weight through `weightValue`, which unpacks a packed one with int32 ops (exact) and
// multiplies by the scales: the same float32 values q·scale that runtime/quantize.ts's dequantizeWeights and
// the torch engine compute.
import * as tf from "@tensorflow/tfjs-core";
import type { HostTensor } from "./checkpoint/index.js";

interface Packed {
  scale: tf.Tensor1D;
  shape: number[];
  size: number;
  /** The host copy: what getWeights returns for the kernel (I8) and its scales (F32). */
  host: { q: HostTensor; scale: HostTensor };
}

const PACKED = new WeakMap<tf.Tensor, Packed>();

/** The int8 form of a packed weight, or undefined for an ordinary one. */
export const packedOf = (v: tf.Tensor): Packed | undefined => PACKED.get(v);

/** An int8 kernel (nnetc layout, per-last-axis scales) as a packed int32 variable, not trainable. */
export function packInt8(q: HostTensor, scale: HostTensor, name: string): tf.Variable {
  const data = q.data as Int8Array;
  const bytes = new Int8Array(Math.ceil(data.length / 4) * 4);
  bytes.set(data);
  const packed = tf.tensor1d(new Int32Array(bytes.buffer), "int32");
  const v = tf.variable(packed, false, `${name}:int8`);
  packed.dispose();
  PACKED.set(v, { scale: tf.keep(tf.tensor1d(scale.data as Float32Array, "float32")), shape: [...q.shape], size: data.length, host: { q: { dtype: "I8", shape: [...q.shape], data: Int8Array.from(data) }, scale: { dtype: "F32", shape: [...scale.shape], data: Float32Array.from(scale.data as Float32Array) } } });
  return v;
}

/** Free a packed weight's variable and scales. */
export function disposePacked(v: tf.Tensor): void {
  const p = PACKED.get(v);
  if (!p) return;
  p.scale.dispose();
  PACKED.delete(v);
  v.dispose();
}

/** A weight's float32 value: itself, or a packed int8 kernel unpacked and multiplied by its scales. */
export function weightValue(v: tf.Tensor): tf.Tensor {
  const p = PACKED.get(v);
  if (!p) return v;
  return tf.tidy(() => {
    const i32 = (x: number) => tf.scalar(x, "int32");
    const hi = tf.floorDiv(v, i32(1 << 24)); // the top byte, signed
    const lo = tf.sub(v, tf.mul(hi, i32(1 << 24))); // three unsigned bytes
    const b2 = tf.floorDiv(lo, i32(1 << 16));
    const r = tf.sub(lo, tf.mul(b2, i32(1 << 16)));
    const b1 = tf.floorDiv(r, i32(256));
    const b0 = tf.sub(r, tf.mul(b1, i32(256)));
    const signed = (b: tf.Tensor) => tf.sub(b, tf.mul(tf.floorDiv(b, i32(128)), i32(256)));
    const bytes = tf.reshape(tf.stack([signed(b0), signed(b1), signed(b2), hi], 1), [-1]);
    const q = tf.cast(p.size === bytes.shape[0] ? bytes : tf.slice(bytes, 0, p.size), "float32");
    return tf.mul(tf.reshape(q, p.shape), p.scale);
  });
}

/** A packed weight's host form: the I8 kernel and its F32 scales, as quantizeWeights writes them. */
export function packedHost(v: tf.Tensor): { q: HostTensor; scale: HostTensor } | undefined {
  return PACKED.get(v)?.host;
}
