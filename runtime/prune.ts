// Magnitude pruning: the smallest weights of the selected kernels become zero, ranked per weight tensor
// (scope layer) or over all of them together (scope global). A mask (1 = kept) remembers which, so that
// training can keep them at exactly zero after every optimizer step; masks travel in checkpoints.
import * as tf from "@tensorflow/tfjs-core";
import { toFloat32, type HostTensor } from "./checkpoint/safetensors.js";
import { RunError } from "./errors.js";

/** Per weight name: 1 where the weight is kept, 0 where it is pruned. */
export type Masks = Map<string, Uint8Array>;

export interface PruneSpec {
  sparsity: number;
  scope: "layer" | "global";
  /** The weights to prune (the checker resolved them from the model's kernels and exclude patterns). */
  weights: readonly string[];
}

/**
 * Masks that zero the `sparsity` fraction of smallest-magnitude values (floor(sparsity × n), ties broken
 * by position), combined with `previous` masks: a weight once pruned stays pruned, so pruning again at a
 * lower sparsity changes nothing.
 */
export function magnitudeMasks(values: ReadonlyMap<string, Float32Array>, spec: PruneSpec, previous: Masks = new Map()): Masks {
  if (!(spec.sparsity >= 0 && spec.sparsity < 1)) throw new RunError(`prune sparsity ${spec.sparsity} is outside [0, 1)`);
  const out: Masks = new Map(previous);
  const groups: string[][] = spec.scope === "global" ? [[...spec.weights]] : spec.weights.map((w) => [w]);
  for (const group of groups) {
    const sizes = group.map((name) => {
      const v = values.get(name);
      if (!v) throw new RunError(`prune: the model has no weight "${name}"`);
      return v.length;
    });
    const total = sizes.reduce((a, b) => a + b, 0);
    const k = Math.floor(spec.sparsity * total);
    // Magnitudes of the whole group, already-pruned values counting as zero.
    const mag = new Float32Array(total);
    let at = 0;
    for (const name of group) {
      const v = values.get(name)!;
      const prev = previous.get(name);
      for (let i = 0; i < v.length; i++) mag[at + i] = prev && !prev[i] ? 0 : Math.abs(v[i]!);
      at += v.length;
    }
    const order = Uint32Array.from({ length: total }, (_, i) => i).sort((a, b) => mag[a]! - mag[b]! || a - b);
    const keep = new Uint8Array(total).fill(1);
    for (let i = 0; i < k; i++) keep[order[i]!] = 0;
    at = 0;
    for (const name of group) {
      const n = values.get(name)!.length;
      const m = keep.slice(at, at + n);
      const prev = previous.get(name);
      if (prev) for (let i = 0; i < n; i++) m[i] = m[i]! & prev[i]!;
      out.set(name, m);
      at += n;
    }
  }
  return out;
}

/** Float32 host weights with the masks applied (pruned values exactly zero); other weights unchanged. */
export function pruneHost(host: Record<string, HostTensor>, masks: Masks): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(host)) {
    const m = masks.get(name);
    if (!m) {
      out[name] = t;
      continue;
    }
    const data = Float32Array.from(toFloat32(t));
    for (let i = 0; i < data.length; i++) if (!m[i]) data[i] = 0;
    out[name] = { dtype: "F32", shape: t.shape, data };
  }
  return out;
}

/** Post-training pruning of host weights: masks from their magnitudes, applied. */
export function pruneWeights(host: Record<string, HostTensor>, spec: PruneSpec): { weights: Record<string, HostTensor>; masks: Masks } {
  const values = new Map(spec.weights.map((n) => [n, host[n] ? toFloat32(host[n]!) : undefined] as const).filter((e): e is [string, Float32Array] => !!e[1]));
  const masks = magnitudeMasks(values, spec);
  return { weights: pruneHost(host, masks), masks };
}

/** Zeros, values and the fraction of zeros over the given weights (all float weights without a list). */
export function sparsityOf(host: Record<string, HostTensor>, names?: readonly string[]): { total: number; zeros: number; sparsity: number } {
  let total = 0;
  let zeros = 0;
  for (const name of names ?? Object.keys(host)) {
    const t = host[name];
    if (!t || t.dtype === "I32" || t.dtype === "BOOL") continue;
    const d = toFloat32(t);
    total += d.length;
    for (let i = 0; i < d.length; i++) if (d[i] === 0) zeros++;
  }
  return { total, zeros, sparsity: total ? zeros / total : 0 };
}

/** Masks as JSON-safe text (base64 of packed bits, with the length), for checkpoint state. */
export function encodeMasks(masks: Masks): Record<string, { n: number; bits: string }> {
  const out: Record<string, { n: number; bits: string }> = {};
  for (const [name, m] of masks) {
    const packed = new Uint8Array(Math.ceil(m.length / 8));
    for (let i = 0; i < m.length; i++) if (m[i]) packed[i >> 3]! |= 1 << (i & 7);
    out[name] = { n: m.length, bits: Buffer.from(packed).toString("base64") };
  }
  return out;
}

export function decodeMasks(json: unknown, source: string): Masks {
  const out: Masks = new Map();
  if (json === undefined || json === null) return out;
  if (typeof json !== "object") throw new RunError(`${source}: the pruning masks in its state are malformed; start a new run (--out DIR)`);
  for (const [name, e] of Object.entries(json as Record<string, { n?: unknown; bits?: unknown }>)) {
    if (typeof e?.n !== "number" || typeof e.bits !== "string") throw new RunError(`${source}: the pruning mask of "${name}" is malformed; start a new run (--out DIR)`);
    const packed = Buffer.from(e.bits, "base64");
    if (packed.length !== Math.ceil(e.n / 8)) throw new RunError(`${source}: the pruning mask of "${name}" has the wrong length; start a new run (--out DIR)`);
    const m = new Uint8Array(e.n);
    for (let i = 0; i < e.n; i++) m[i] = (packed[i >> 3]! >> (i & 7)) & 1;
    out.set(name, m);
  }
  return out;
}

/** Masks as float32 tensors shaped like their weights, for re-applying them after every optimizer step. */
export class DeviceMasks {
  private tensors = new Map<string, tf.Tensor>();
  constructor(masks: Masks, shapes: ReadonlyMap<string, readonly number[]>) {
    for (const [name, m] of masks) {
      const shape = shapes.get(name);
      if (!shape) throw new RunError(`a pruning mask names "${name}", which the model does not have`);
      if (shape.reduce((a, b) => a * b, 1) !== m.length) throw new RunError(`the pruning mask of "${name}" does not fit its weight of shape [${shape}]`);
      this.tensors.set(name, tf.tensor(Float32Array.from(m), shape as number[], "float32"));
    }
  }
  get size(): number {
    return this.tensors.size;
  }
  /** Zero the pruned values of these variables (by weight name). */
  apply(weights: ReadonlyMap<string, tf.Variable>): void {
    tf.tidy(() => {
      for (const [name, m] of this.tensors) {
        const v = weights.get(name);
        if (v && v.dtype === "float32") v.assign(tf.mul(v, m)); // an int8 base kernel (packed int32) keeps its zeros
      }
    });
  }
  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}
