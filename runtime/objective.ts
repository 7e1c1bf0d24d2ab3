// Losses (as tensors, for gradients) and metrics (in plain JavaScript, over a whole split).
import * as tf from "@tensorflow/tfjs-core";
import { guard, pluginEntry, PluginError } from "../compiler/plugin/api.js";
import { RunError } from "./errors.js";
import type { CallSpec, LossSpec } from "./spec.js";

const EPS = 1e-7;

/** Flatten [batch, …, classes] scores to [N, classes] and integer targets to [N]. */
function classRows(pred: tf.Tensor, target: tf.Tensor): { logits: tf.Tensor2D; onehot: tf.Tensor2D } {
  const classes = pred.shape[pred.shape.length - 1]!;
  const logits = tf.reshape(pred, [-1, classes]) as tf.Tensor2D;
  const onehot = target.dtype === "int32" ? (tf.oneHot(tf.reshape(target, [-1]) as tf.Tensor1D, classes) as tf.Tensor2D) : (tf.reshape(target, [-1, classes]) as tf.Tensor2D);
  return { logits, onehot: tf.cast(onehot, "float32") };
}

/** A loss term's target: a dataset field of the batch, another output (kl_normal), or a number filled to the prediction's shape. */
export function targetOf(t: LossSpec, outputs: Record<string, tf.Tensor>, batch: Record<string, tf.Tensor>): tf.Tensor {
  if (t.targetValue !== undefined) return tf.fill(outputs[t.prediction]!.shape, t.targetValue);
  return (t.targetIsOutput ? outputs : batch)[t.target]!;
}

/** One loss term, averaged over the batch (and over positions, for sequence outputs). */
export function lossTensor(t: LossSpec, pred: tf.Tensor, target: tf.Tensor): tf.Scalar {
  const a = t.args;
  const plugin = pluginEntry("losses", t.fn);
  if (plugin) {
    const what = `loss ${t.fn}'s tfjs function`;
    const v = guard(plugin.from, what, () => plugin.entry.tfjs(tf, pred, target, a));
    if (!(v instanceof tf.Tensor) || v.size !== 1) throw new PluginError(plugin.from.plugin.name, plugin.from.file, what, new Error(`it returned ${v instanceof tf.Tensor ? `a tensor of shape [${v.shape.join(", ")}]` : typeof v}, not a scalar tensor`));
    return tf.reshape(v, []) as tf.Scalar;
  }
  switch (t.fn) {
    case "cross_entropy": {
      const { logits, onehot } = classRows(pred, target);
      const classes = logits.shape[1];
      const s = typeof a.smoothing === "number" ? a.smoothing : 0;
      const y = s > 0 ? (tf.add(tf.mul(onehot, 1 - s), s / classes) as tf.Tensor2D) : onehot;
      const logp = a.from_logits === false ? tf.log(tf.clipByValue(logits, EPS, 1)) : tf.logSoftmax(logits);
      const per = tf.sum(tf.mul(y, logp), 1);
      if (typeof a.ignore === "number" && target.dtype === "int32") {
        // positions whose target is `ignore` (padding) count for nothing: the mean over the others
        const keep = tf.cast(tf.notEqual(tf.reshape(target, [-1]), a.ignore), "float32");
        return tf.neg(tf.div(tf.sum(tf.mul(per, keep)), tf.maximum(tf.sum(keep), 1))) as tf.Scalar;
      }
      return tf.neg(tf.mean(per)) as tf.Scalar;
    }
    case "binary_cross_entropy": {
      const x = tf.reshape(pred, [-1]);
      let y = tf.cast(tf.reshape(target, [-1]), "float32") as tf.Tensor1D;
      const s = typeof a.smoothing === "number" ? a.smoothing : 0;
      if (s > 0) y = tf.add(tf.mul(y, 1 - s), s / 2) as tf.Tensor1D;
      if (a.from_logits === false) {
        const p = tf.clipByValue(x, EPS, 1 - EPS);
        return tf.neg(tf.mean(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))))) as tf.Scalar;
      }
      // max(x, 0) - x·y + log(1 + e^-|x|): stable for large |x|
      return tf.mean(tf.add(tf.sub(tf.relu(x), tf.mul(x, y)), tf.log1p(tf.exp(tf.neg(tf.abs(x))))));
    }
    case "mse":
      return tf.mean(tf.squaredDifference(tf.reshape(pred, [-1]), tf.cast(tf.reshape(target, [-1]), "float32")));
    case "mae":
      return tf.mean(tf.abs(tf.sub(tf.reshape(pred, [-1]), tf.cast(tf.reshape(target, [-1]), "float32"))));
    case "dice": {
      const { logits, onehot } = classRows(pred, target);
      const smooth = typeof a.smooth === "number" ? a.smooth : 1;
      const p = tf.softmax(logits);
      const inter = tf.sum(tf.mul(p, onehot), 0);
      const total = tf.add(tf.sum(p, 0), tf.sum(onehot, 0));
      return tf.sub(1, tf.mean(tf.div(tf.add(tf.mul(inter, 2), smooth), tf.add(total, smooth)))) as tf.Scalar;
    }
    case "focal": {
      const { logits, onehot } = classRows(pred, target);
      const gamma = typeof a.gamma === "number" ? a.gamma : 2;
      const alpha = typeof a.alpha === "number" ? a.alpha : 0.25;
      const logp = tf.logSoftmax(logits);
      const logpt = tf.sum(tf.mul(onehot, logp), 1);
      const pt = tf.exp(logpt);
      return tf.mean(tf.mul(tf.mul(-alpha, tf.pow(tf.sub(1, pt), gamma)), logpt)) as tf.Scalar;
    }
    case "kl_normal": {
      // pred: the mean, target: the log-variance (both model outputs); summed per sample, averaged over the batch.
      const n = pred.shape[0] ?? 1;
      const m = tf.reshape(pred, [n, -1]);
      const lv = tf.reshape(target, [n, -1]);
      return tf.mul(-0.5, tf.mean(tf.sum(tf.sub(tf.sub(tf.add(1, lv), tf.square(m)), tf.exp(lv)), 1))) as tf.Scalar;
    }
    case "mean":
      // A value the model computes (its own penalty term): its mean over the batch and the values.
      return tf.mean(pred) as tf.Scalar;
    case "sum": {
      // Summed over each sample's values, averaged over the batch.
      const n = pred.shape[0] ?? 1;
      return tf.mean(tf.sum(tf.reshape(pred, [n, -1]), 1)) as tf.Scalar;
    }
    case "ctc":
      return ctcLoss(pred, target, typeof a.blank === "number" ? a.blank : 0, typeof a.ignore === "number" ? a.ignore : null);
    case "cosine": {
      // 1 - cos per row of the last axis, each row scaled to unit length (Keras: x / sqrt(max(Σx², 1e-12))).
      const d = pred.shape[pred.shape.length - 1] ?? 1;
      const unit = (x: tf.Tensor) => tf.div(x, tf.sqrt(tf.maximum(tf.sum(tf.square(x), 1, true), 1e-12)));
      const p = unit(tf.reshape(pred, [-1, d]));
      const y = unit(tf.cast(tf.reshape(target, [-1, d]), "float32"));
      return tf.sub(1, tf.mean(tf.sum(tf.mul(p, y), 1))) as tf.Scalar;
    }
    case "huber": {
      const d = typeof a.delta === "number" ? a.delta : 1;
      const err = tf.abs(tf.sub(tf.reshape(pred, [-1]), tf.cast(tf.reshape(target, [-1]), "float32")));
      const quad = tf.minimum(err, d);
      return tf.mean(tf.add(tf.mul(0.5, tf.square(quad)), tf.mul(d, tf.sub(err, quad))));
    }
  }
  throw new Error(`unknown loss ${t.fn}`);
}

/** A log-probability that stands for log 0 in the CTC recursion: finite, so that no gradient is NaN. */
const LOG_ZERO = -1e30;

/**
 * CTC loss (Graves et al., 2006) as PyTorch's ctc_loss(reduction "mean", zero_infinity true), by the forward
 * algorithm in log space with tfjs ops, so that autodiff gives the gradient. scores [B, T, C] (log_softmax is
 * taken here), labels [B, L] integer ids; ids equal to the blank or to `ignore` are padding (left out wherever
 * they stand). Every one of the T frames counts (the input length is the full time axis).
 *
 * The labels are data, not weights: their extended sequences (a blank around every label: S = 2L + 1 states),
 * the skip transitions (s - 2 → s, allowed unless the label repeats the one before it) and which states end a
 * path are made on the host; the T steps are the time axis, fixed by the shapes.
 */
function ctcLoss(pred: tf.Tensor, target: tf.Tensor, blank: number, ignore: number | null): tf.Scalar {
  const [B, T, C] = pred.shape as [number, number, number];
  const rows = (tf.reshape(target, [B, -1]).arraySync() as number[][]).map((r) => r.filter((id) => id !== blank && id !== ignore));
  const L = target.shape.length > 1 ? (target.size / B) | 0 : 1;
  const S = 2 * L + 1;
  const emits = new Int32Array(B * S); // row b·C + class of the [B·C, T] scores that state s of sample b emits
  const skip = new Float32Array(B * S).fill(LOG_ZERO); // 0 where s - 2 → s is allowed
  const ends = new Float32Array(B * S).fill(LOG_ZERO); // 0 at the states a path may end in
  const start = new Float32Array(B * S).fill(LOG_ZERO); // 0 at the states a path may start in
  const lengths = new Float32Array(B);
  const feasible = new Float32Array(B);
  rows.forEach((seq, b) => {
    seq.forEach((id, i) => {
      if (!(id >= 0 && id < C && Number.isInteger(id))) throw new RunError(`ctc: label ${id} of sample ${b + 1} in the batch is not a class of the prediction's ${C} (0 to ${C - 1}); ids equal to the blank (${blank})${ignore === null ? "" : ` or to ignore (${ignore})`} are padding`);
    });
    for (let s = 0; s < S; s++) emits[b * S + s] = b * C + (s % 2 === 1 && (s - 1) / 2 < seq.length ? seq[(s - 1) / 2]! : blank);
    for (let i = 1; i < seq.length; i++) if (seq[i] !== seq[i - 1]) skip[b * S + 2 * i + 1] = 0;
    const n = seq.length;
    ends[b * S + 2 * n] = 0;
    if (n > 0) ends[b * S + 2 * n - 1] = 0;
    start[b * S] = 0;
    if (n > 0) start[b * S + 1] = 0;
    lengths[b] = Math.max(n, 1);
    // The frames a path needs: one per label, and a blank between each pair of equal neighbours.
    const need = n + seq.filter((id, i) => i > 0 && id === seq[i - 1]).length;
    feasible[b] = need <= T ? 1 : 0;
  });
  // emit[b, s, t] = log p_t(class of state s): rows of the scores per (sample, class), gathered per state (memory
  // B·S·T, whatever the number of classes)
  const logp = tf.reshape(tf.transpose(tf.logSoftmax(pred, -1), [0, 2, 1]), [B * C, T]);
  const emit = tf.reshape(tf.gather(logp, tf.tensor1d(emits, "int32")), [B, S, T]);
  const frames = tf.unstack(emit, 2) as tf.Tensor2D[];
  const skipT = tf.tensor2d(skip, [B, S]);
  const pad1 = tf.fill([B, 1], LOG_ZERO);
  const pad2 = tf.fill([B, 2], LOG_ZERO);
  let alpha = tf.add(frames[0]!, tf.tensor2d(start, [B, S])) as tf.Tensor2D;
  for (let t = 1; t < T; t++) {
    const stay = alpha;
    const step = tf.concat([pad1, tf.slice(alpha, [0, 0], [B, S - 1])], 1);
    const jump = tf.add(tf.concat([pad2, tf.slice(alpha, [0, 0], [B, S - 2])], 1), skipT);
    alpha = tf.add(tf.logSumExp(tf.stack([stay, step, jump], 2), 2), frames[t]!) as tf.Tensor2D;
  }
  const nll = tf.neg(tf.logSumExp(tf.add(alpha, tf.tensor2d(ends, [B, S])), 1));
  // zero_infinity: a label sequence no alignment fits counts 0 (and gives no gradient)
  const per = tf.div(tf.mul(nll, tf.tensor1d(feasible)), tf.tensor1d(lengths));
  return tf.mean(per) as tf.Scalar;
}

/** Predictions and targets gathered over a split, for metrics. */
export interface Collected {
  /** Rows of scores: N × classes (classes = 1 for binary or regression outputs); empty when compact. */
  scores: Float32Array;
  classes: number;
  /** Class ids (classification) or values (regression), one per row times `classes` for regression. */
  targets: Float32Array;
  rows: number;
  /** Rows of more than COMPACT_CLASSES classes (a language model's vocabulary), reduced as they are collected. */
  compact?: CompactRows;
}

/**
 * What the metrics need of a row of many classes, so that a split's metrics take memory per row, not per class
 * (a vocabulary of 30,000 over 128 positions would be 15 MB a sample): the argmax, how many classes score above
 * the target, and −log p(target) from logits and from probabilities.
 */
export interface CompactRows {
  pred: Int32Array;
  higher: Int32Array;
  nllLogits: Float64Array;
  nllProb: Float64Array;
}

/** Rows with more classes than this are collected compact (runtime/torch/engine.py COMPACT_CLASSES: the same). */
export const COMPACT_CLASSES = 64;

/** Compact rows from scores [rows, classes] and class-id targets. */
function compactRows(scores: Float32Array, classes: number, targets: ArrayLike<number>, rows: number): CompactRows {
  const c: CompactRows = { pred: new Int32Array(rows), higher: new Int32Array(rows), nllLogits: new Float64Array(rows), nllProb: new Float64Array(rows) };
  for (let r = 0; r < rows; r++) {
    const row = scores.subarray(r * classes, (r + 1) * classes);
    const y = Math.min(classes - 1, Math.max(0, targets[r]! | 0));
    const sy = row[y]!;
    let best = 0;
    let max = -Infinity;
    let higher = 0;
    for (let k = 0; k < classes; k++) {
      const v = row[k]!;
      if (v > row[best]!) best = k;
      if (v > max) max = v;
      if (v > sy) higher++;
    }
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += Math.exp(row[k]! - max);
    c.pred[r] = best;
    c.higher[r] = higher;
    c.nllLogits[r] = Math.log(sum) + max - sy;
    c.nllProb[r] = -Math.log(Math.max(sy, 1e-7));
  }
  return c;
}

/** Collected from another engine's compact rows (runtime/torch/engine.py `metric_part`). */
export function collectCompact(classes: number, targets: Float32Array, c: CompactRows): Collected {
  return { scores: new Float32Array(0), classes, targets, rows: targets.length, compact: c };
}

export async function collect(pred: tf.Tensor, target: tf.Tensor): Promise<Collected> {
  const classes = pred.shape[pred.shape.length - 1] ?? 1;
  return collectHost((await pred.data()) as Float32Array, classes, (await target.data()) as ArrayLike<number>, target.dtype === "int32");
}

/**
 * Whether float targets as wide as the scores are class rows (each a distribution: one-hot, smoothed or mixed
 * labels), not a regression target (an image an autoencoder reconstructs), which is kept as it is.
 * runtime/torch/engine.py `metric_part` asks the same.
 */
function distributionRows(t: ArrayLike<number>, classes: number): boolean {
  for (let r = 0; r < t.length; r += classes) {
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const v = t[r + c]!;
      if (!(v >= 0 && v <= 1)) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

/** Collected from host values (another engine's): scores row-major [rows, classes], targets as they are. */
export function collectHost(scores: Float32Array, classes: number, targets: ArrayLike<number>, intTargets: boolean): Collected {
  const rows = scores.length / classes;
  let t: ArrayLike<number> = targets;
  if (!intTargets && t.length === scores.length && classes > 1 && distributionRows(t, classes)) {
    // one-hot (or soft: smoothed, mixed) rows → class ids
    const ids = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (t[r * classes + c]! > t[r * classes + best]!) best = c;
      ids[r] = best;
    }
    t = ids;
  }
  if (classes > COMPACT_CLASSES && t.length === rows) return { scores: new Float32Array(0), classes, targets: Float32Array.from(t), rows, compact: compactRows(scores, classes, t, rows) };
  return { scores: Float32Array.from(scores), classes, targets: Float32Array.from(t), rows };
}

export function concatCollected(parts: Collected[]): Collected {
  if (parts.length === 0) return { scores: new Float32Array(0), classes: 1, targets: new Float32Array(0), rows: 0 };
  const classes = parts[0]!.classes;
  const rows = parts.reduce((a, p) => a + p.rows, 0);
  if (parts.every((p) => p.compact)) {
    const cat = <T extends Int32Array | Float64Array>(make: (n: number) => T, get: (c: CompactRows) => T): T => {
      const out = make(rows);
      let o = 0;
      for (const p of parts) {
        out.set(get(p.compact!), o);
        o += p.rows;
      }
      return out;
    };
    const targets = new Float32Array(rows);
    let o = 0;
    for (const p of parts) {
      targets.set(p.targets, o);
      o += p.rows;
    }
    return {
      scores: new Float32Array(0),
      classes,
      targets,
      rows,
      compact: { pred: cat((n) => new Int32Array(n), (c) => c.pred), higher: cat((n) => new Int32Array(n), (c) => c.higher), nllLogits: cat((n) => new Float64Array(n), (c) => c.nllLogits), nllProb: cat((n) => new Float64Array(n), (c) => c.nllProb) },
    };
  }
  const scores = new Float32Array(rows * classes);
  const targets = new Float32Array(parts.reduce((a, p) => a + p.targets.length, 0));
  let o = 0;
  let ot = 0;
  for (const p of parts) {
    scores.set(p.scores, o);
    targets.set(p.targets, ot);
    o += p.scores.length;
    ot += p.targets.length;
  }
  return { scores, classes, targets, rows };
}

/** Predicted class per row: argmax, or score > 0.5 / logit > 0 for a single binary column. */
function predicted(c: Collected, logits: boolean): Int32Array {
  if (c.compact) return c.compact.pred;
  const out = new Int32Array(c.rows);
  for (let r = 0; r < c.rows; r++) {
    if (c.classes === 1) {
      out[r] = c.scores[r]! > (logits ? 0 : 0.5) ? 1 : 0;
      continue;
    }
    let best = 0;
    for (let k = 1; k < c.classes; k++) if (c.scores[r * c.classes + k]! > c.scores[r * c.classes + best]!) best = k;
    out[r] = best;
  }
  return out;
}

function confusion(c: Collected, pred: Int32Array): { tp: Float64Array; fp: Float64Array; fn: Float64Array; k: number } {
  const k = Math.max(2, c.classes);
  const tp = new Float64Array(k);
  const fp = new Float64Array(k);
  const fn = new Float64Array(k);
  for (let r = 0; r < c.rows; r++) {
    const y = c.targets[r]! | 0;
    const p = pred[r]!;
    if (p === y) tp[y]!++;
    else {
      fp[p]!++;
      fn[y]!++;
    }
  }
  return { tp, fp, fn, k };
}

const safe = (a: number, b: number) => (b === 0 ? 0 : a / b);

function prf(c: Collected, pred: Int32Array, average: string, positive: number, which: "precision" | "recall" | "f1"): number {
  const { tp, fp, fn, k } = confusion(c, pred);
  const score = (t: number, f1: number, f2: number) => {
    const p = safe(t, t + f1);
    const r = safe(t, t + f2);
    return which === "precision" ? p : which === "recall" ? r : safe(2 * p * r, p + r);
  };
  if (average === "binary") return score(tp[positive]!, fp[positive]!, fn[positive]!);
  if (average === "micro") {
    const sum = (a: Float64Array) => a.reduce((x, y) => x + y, 0);
    return score(sum(tp), sum(fp), sum(fn));
  }
  let total = 0;
  for (let i = 0; i < k; i++) total += score(tp[i]!, fp[i]!, fn[i]!);
  return total / k;
}

/** Area under the ROC curve (or average precision for curve: pr) of one score column against a 0/1 label. */
function auc1(scores: Float64Array, labels: Uint8Array, curve: string): number {
  const idx = [...scores.keys()].sort((a, b) => scores[b]! - scores[a]!);
  const pos = labels.reduce((a, b) => a + b, 0);
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  if (curve === "pr") {
    let tp = 0;
    let ap = 0;
    idx.forEach((i, rank) => {
      if (labels[i]) {
        tp++;
        ap += tp / (rank + 1);
      }
    });
    return ap / pos;
  }
  // Mann–Whitney U with average ranks for ties.
  const ranks = new Float64Array(scores.length);
  const asc = [...idx].reverse();
  for (let i = 0; i < asc.length; ) {
    let j = i;
    while (j + 1 < asc.length && scores[asc[j + 1]!] === scores[asc[i]!]) j++;
    for (let k = i; k <= j; k++) ranks[asc[k]!] = (i + j) / 2 + 1;
    i = j + 1;
  }
  let sum = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]) sum += ranks[i]!;
  return (sum - (pos * (pos + 1)) / 2) / (pos * neg);
}

function auc(c: Collected, curve: string): number {
  if (c.compact) return NaN; // one-vs-rest over more than COMPACT_CLASSES classes is not kept
  const columns = c.classes === 1 ? [0] : c.classes === 2 ? [1] : [...Array(c.classes).keys()];
  let total = 0;
  let counted = 0;
  for (const col of columns) {
    const s = new Float64Array(c.rows);
    const l = new Uint8Array(c.rows);
    for (let r = 0; r < c.rows; r++) {
      s[r] = c.scores[r * c.classes + col]!;
      l[r] = (c.targets[r]! | 0) === (c.classes === 1 ? 1 : col) ? 1 : 0;
    }
    const v = auc1(s, l, curve);
    if (!Number.isNaN(v)) {
      total += v;
      counted++;
    }
  }
  return counted ? total / counted : NaN;
}

/** A metric's name in logs and for monitoring: the function name (accuracy, f1, top_k, …). */
export function metricName(m: CallSpec): string {
  return m.fn;
}

export function metricValue(m: CallSpec, c: Collected, logits: boolean): number {
  const a = m.args;
  const plugin = pluginEntry("metrics", m.fn);
  if (plugin) {
    if (c.compact) return NaN; // compact rows (hundreds of classes): the scores are not kept
    const what = `metric ${m.fn}'s compute`;
    const v = guard(plugin.from, what, () => plugin.entry.compute({ scores: c.scores, targets: c.targets, rows: c.rows, classes: c.classes }, a));
    if (typeof v !== "number") throw new PluginError(plugin.from.plugin.name, plugin.from.file, what, new Error(`it returned ${typeof v}, not a number`));
    return v;
  }
  switch (m.fn) {
    case "accuracy": {
      const p = predicted(c, logits);
      const ignore = typeof a.ignore === "number" ? a.ignore : null;
      let ok = 0;
      let n = 0;
      for (let r = 0; r < c.rows; r++) {
        const y = c.targets[r]! | 0;
        if (y === ignore) continue;
        n++;
        if (p[r] === y) ok++;
      }
      return safe(ok, n);
    }
    case "top_k": {
      const k = Number(a.k ?? 5);
      const ignore = typeof a.ignore === "number" ? a.ignore : null;
      let ok = 0;
      let n = 0;
      if (c.compact) {
        for (let r = 0; r < c.rows; r++) {
          if ((c.targets[r]! | 0) === ignore) continue;
          n++;
          if (c.compact.higher[r]! < k) ok++;
        }
        return safe(ok, n);
      }
      for (let r = 0; r < c.rows; r++) {
        const y = c.targets[r]! | 0;
        if (y === ignore) continue;
        n++;
        const sy = c.scores[r * c.classes + y]!;
        let higher = 0;
        for (let j = 0; j < c.classes; j++) if (c.scores[r * c.classes + j]! > sy) higher++;
        if (higher < k) ok++;
      }
      return safe(ok, n);
    }
    case "precision":
    case "recall":
    case "f1":
      return prf(c, predicted(c, logits), String(a.average ?? "macro"), Number(a.positive ?? 1), m.fn);
    case "auc":
      return auc(c, String(a.curve ?? "roc"));
    case "iou":
    case "dice": {
      // Per class over every row (pixel): IoU = TP / (TP + FP + FN), Dice = 2TP / (2TP + FP + FN); the mean over
      // the classes that occur (in the targets or the predictions), as segmentation benchmarks average them.
      const { tp, fp, fn, k } = confusion(c, predicted(c, logits));
      let sum = 0;
      let n = 0;
      for (let j = 0; j < k; j++) {
        const den = (m.fn === "dice" ? 2 * tp[j]! : tp[j]!) + fp[j]! + fn[j]!;
        if (den === 0) continue;
        sum += ((m.fn === "dice" ? 2 : 1) * tp[j]!) / den;
        n++;
      }
      return n ? sum / n : NaN;
    }
    case "perplexity": {
      // exp(mean over counted positions of −log p(target)), p the softmax of the scores (or the scores, for probabilities)
      const ignore = typeof a.ignore === "number" ? a.ignore : null;
      let nll = 0;
      let n = 0;
      for (let r = 0; r < c.rows; r++) {
        const y = c.targets[r]! | 0;
        if (y === ignore) continue;
        if (c.compact) {
          nll += logits ? c.compact.nllLogits[r]! : c.compact.nllProb[r]!;
          n++;
          continue;
        }
        const row = c.scores.subarray(r * c.classes, (r + 1) * c.classes);
        if (logits) {
          let max = -Infinity;
          for (const v of row) max = Math.max(max, v);
          let sum = 0;
          for (const v of row) sum += Math.exp(v - max);
          nll += Math.log(sum) + max - row[y]!;
        } else nll -= Math.log(Math.max(row[y]!, 1e-7));
        n++;
      }
      return n ? Math.exp(nll / n) : NaN;
    }
    case "mse":
    case "mae": {
      if (c.compact) return NaN; // class ids against hundreds of scores: not a regression
      let s = 0;
      for (let i = 0; i < c.scores.length; i++) {
        const d = c.scores[i]! - (c.targets[i] ?? 0);
        s += m.fn === "mse" ? d * d : Math.abs(d);
      }
      return safe(s, c.scores.length);
    }
  }
  throw new Error(`unknown metric ${m.fn}`);
}
