// mixup and cutmix draws (the plan's `mixup` / `cutmix` settings): for one training batch, λ ~ Beta(alpha, alpha),
// the partner of each sample (a permutation of the batch) and, for cutmix, the box pasted from the partner, with
// λ corrected to the box's actual area (timm's rand_bbox, Keras CV's CutMix). Drawn from a hash of (seed, epoch,
// batch, worker) with no generator state, so a resumed run redraws them alike. runtime/train.ts draws; the
// engines only apply what it drew (`applyMix` here for TensorFlow.js, engine.py's `mix_batch` for torch).
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "./data/rng.js";
import type { PhaseSpec } from "./spec.js";

export type MixSpec = NonNullable<PhaseSpec["mix"]>;

/** One batch's mix: the samples' partners (split rows, aligned with the batch), λ, and cutmix's box (rows y0…y1-1, columns x0…x1-1) or null (mixup). */
export interface BatchMix {
  lambda: number;
  partners: Uint32Array;
  box: [number, number, number, number] | null;
  /** The model inputs blended (mixup) or cut (cutmix). */
  fields: string[];
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The generator of one batch's draws: a function of (seed, epoch, batch, rank) only. */
export function mixRng(seed: number, epoch: number, batch: number, rank: number): Rng {
  let h = mix32((seed >>> 0) ^ 0x6d697875);
  h = mix32(h ^ Math.floor(seed / 4294967296));
  h = mix32(h ^ epoch);
  h = mix32(h ^ batch);
  h = mix32(h ^ rank);
  return new Rng(h);
}

/** A standard normal (Box–Muller). */
function normal(r: Rng): number {
  const u = 1 - r.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.next());
}

/** Gamma(shape, 1) by Marsaglia and Tsang (2000); shapes below 1 through Gamma(shape + 1)·U^(1/shape). */
function gamma(shape: number, r: Rng): number {
  if (shape < 1) return gamma(shape + 1, r) * Math.pow(1 - r.next(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(r);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - r.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** λ ~ Beta(alpha, alpha) = X / (X + Y), X and Y ~ Gamma(alpha). */
export function beta(alpha: number, r: Rng): number {
  const x = gamma(alpha, r);
  const y = gamma(alpha, r);
  return x + y > 0 ? x / (x + y) : r.next() < 0.5 ? 0 : 1;
}

/**
 * cutmix's box for λ in an h × w image (timm's rand_bbox): sides h·√(1-λ) and w·√(1-λ) (floored) about a uniform
 * centre, clipped to the image; and λ corrected to 1 - the box's share of the image.
 */
export function cutBox(lambda: number, h: number, w: number, r: Rng): { box: [number, number, number, number]; lambda: number } {
  const cut = Math.sqrt(1 - lambda);
  const ch = Math.floor(h * cut);
  const cw = Math.floor(w * cut);
  const cy = r.int(h);
  const cx = r.int(w);
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const y0 = clip(cy - Math.floor(ch / 2), h);
  const y1 = clip(cy + Math.floor(ch / 2), h);
  const x0 = clip(cx - Math.floor(cw / 2), w);
  const x1 = clip(cx + Math.floor(cw / 2), w);
  return { box: [y0, y1, x0, x1], lambda: 1 - ((y1 - y0) * (x1 - x0)) / (h * w) };
}

/**
 * The mix of one batch (`idx`: its split rows): mixup or cutmix (with both set, either with probability 1/2), λ, a
 * permutation of the batch (each sample's partner) and cutmix's box.
 */
export function drawMix(spec: MixSpec, idx: Uint32Array, at: { seed: number; epoch: number; batch: number; rank: number }): BatchMix {
  const r = mixRng(at.seed, at.epoch, at.batch, at.rank);
  const cut = spec.cutmix !== null && (spec.mixup === null || r.next() < 0.5);
  let lambda = beta(cut ? spec.cutmix! : spec.mixup!, r);
  const perm = Uint32Array.from({ length: idx.length }, (_, i) => i);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const partners = perm.map((j) => idx[j]!);
  if (!cut) return { lambda, partners, box: null, fields: spec.inputs };
  const [h, w] = spec.size!;
  const b = cutBox(lambda, h, w, r);
  lambda = b.lambda;
  return { lambda, partners, box: b.box, fields: spec.images };
}

/** The batch's mixed inputs (new tensors for the mixed fields; the others are the batch's own). */
export function mixInputs(own: Record<string, tf.Tensor>, partner: Record<string, tf.Tensor>, m: BatchMix): Record<string, tf.Tensor> {
  const out = { ...own };
  for (const f of m.fields) {
    const a = own[f]!;
    const b = partner[f]!;
    out[f] = tf.tidy(() => {
      if (!m.box) return tf.add(tf.mul(a, m.lambda), tf.mul(b, 1 - m.lambda));
      // cutmix: the box (rows y0…y1-1, columns x0…x1-1 of [batch, h, w, c]) from the partner, the rest the sample's own.
      const [y0, y1, x0, x1] = m.box;
      const [, h, w] = a.shape as number[];
      const rows = tf.logicalAnd(tf.greaterEqual(tf.range(0, h!, 1, "int32"), y0), tf.less(tf.range(0, h!, 1, "int32"), y1));
      const cols = tf.logicalAnd(tf.greaterEqual(tf.range(0, w!, 1, "int32"), x0), tf.less(tf.range(0, w!, 1, "int32"), x1));
      const inBox = tf.logicalAnd(tf.reshape(rows, [1, h!, 1, 1]), tf.reshape(cols, [1, 1, w!, 1]));
      return tf.where(tf.broadcastTo(inBox, a.shape), b, a);
    });
  }
  return out;
}

/**
 * A target as training metrics compare against it under a mix: a target some value loss mixes (`mixed`) is
 * λ·y_a + (1-λ)·y_b, as the loss sees it; any other (class ids, one-hot rows) is the dominant label — the sample's
 * own for λ ≥ 1/2, else its partner's (the argmax of the mixed label, as Keras reports accuracy under mixup).
 */
export function metricTarget(own: tf.Tensor, partner: tf.Tensor, lambda: number, mixed: boolean): tf.Tensor {
  if (mixed) return tf.tidy(() => tf.add(tf.mul(tf.cast(own, "float32"), lambda), tf.mul(tf.cast(partner, "float32"), 1 - lambda)));
  return (lambda >= 0.5 ? own : partner).clone();
}
