// One training step on TensorFlow.js and the host ↔ device copies around it: what the tfjs engine
// (runtime/engine.ts), emitted modules' trainStep() and the commands share.
import * as tf from "@tensorflow/tfjs-core";
import type { HostTensor } from "./checkpoint/index.js";
import type { Split } from "./data/index.js";
import { RunError } from "./errors.js";
import { initWeights, type ParamInit } from "./init.js";
import type { Net, RunOptions, Weights } from "./interpret.js";
import { lossTensor, targetOf } from "./objective.js";
import { clipGradients, type Optimizer } from "./optim.js";
import type { LossSpec, PhaseSpec } from "./spec.js";

/**
 * Named tensors (weights, optimizer slots) copied off the backend as float32 host tensors. Synchronous reads:
 * not on webgpu in Node (no synchronous read back there), where the engine and commands use readHostWeights.
 */
export function hostWeights(tensors: Iterable<[string, tf.Tensor]>): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [k, v] of tensors) out[k] = { dtype: "F32", shape: v.shape, data: Float32Array.from(v.dataSync() as Float32Array) };
  return out;
}

/** hostWeights, read asynchronously (every backend, webgpu included). */
export async function readHostWeights(tensors: Iterable<[string, tf.Tensor]>): Promise<Record<string, HostTensor>> {
  const out: Record<string, HostTensor> = {};
  for (const [k, v] of tensors) out[k] = { dtype: "F32", shape: v.shape, data: Float32Array.from((await v.data()) as Float32Array) };
  return out;
}

export function loadHostWeights(weights: Weights, host: Record<string, HostTensor>, source: string): void {
  for (const [k, v] of weights) {
    const h = hostWeight(host, k, v.shape, source);
    tf.tidy(() => v.assign(tf.tensor(h.data as Float32Array, h.shape, "float32")));
  }
}

/**
 * Variables for a model's weights holding trained values. Nothing is drawn (every value is replaced), and a
 * refused file leaves no variables behind.
 */
export function trainedWeights(params: readonly ParamInit[], trained: { weights: Record<string, HostTensor>; from: string }): Weights {
  const weights = initWeights(params.map((p) => ({ ...p, init: "zeros" })), () => 0);
  try {
    loadHostWeights(weights, trained.weights, trained.from);
  } catch (e) {
    for (const w of weights.values()) w.dispose();
    throw e;
  }
  return weights;
}

/** The weight `name` of a file's tensors, refused (RunError) when it is missing or shaped otherwise. */
export function hostWeight(host: Record<string, HostTensor>, name: string, shape: readonly number[], source: string): HostTensor {
  const h = host[name];
  if (!h) throw new RunError(`${source} has no weight "${name}"`);
  if (h.shape.join(",") !== shape.join(",")) throw new RunError(`${source}: weight "${name}" has shape [${h.shape}] but the model needs [${shape}]`);
  return h;
}

/** Tensors for one batch of a split: model inputs and loss targets by field name. */
export function batchTensors(split: Split, idx: ArrayLike<number>): Record<string, tf.Tensor> {
  const raw = split.batch(idx);
  const out: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(raw)) out[k] = tf.tensor(v.data, v.shape, v.dtype);
  return out;
}

/**
 * One optimizer step on one batch: forward in training mode, the plan's loss, gradients of the trainable
 * weights, clipping, the update, then batchnorm's moving statistics. Returns the loss and the outputs
 * (kept tensors: dispose them).
 */
export function trainBatch(net: Net, weights: Weights, loss: readonly LossSpec[], trainable: tf.Variable[], optimizer: Optimizer, clip: PhaseSpec["clip"], lr: number, inputs: Record<string, tf.Tensor>, opts: RunOptions): { loss: number; terms: number[]; outputs: Record<string, tf.Tensor> } {
  const r = trainMicroBatches(net, weights, loss, trainable, optimizer, clip, lr, [inputs], opts);
  return { ...lossValues(r.losses, (t) => t.dataSync()[0]!), outputs: r.outputs[0]! };
}

/**
 * One optimizer step over micro-batches (gradient accumulation): each micro-batch's forward, loss and
 * gradients in turn (batchnorm's moving statistics move after each), then the update with the gradients
 * averaged by sample count — the step of one batch of all their samples. Returns each micro-batch's loss and
 * outputs (kept tensors), for the caller to read with lossValues (asynchronously where it can: webgpu in Node
 * has no synchronous read), which disposes the losses; the caller disposes the outputs.
 */
export function trainMicroBatches(net: Net, weights: Weights, loss: readonly LossSpec[], trainable: tf.Variable[], optimizer: Optimizer, clip: PhaseSpec["clip"], lr: number, micro: Record<string, tf.Tensor>[], opts: RunOptions, mix?: LossMix): { losses: MicroLoss[]; outputs: Record<string, tf.Tensor>[] } {
  const sizes = micro.map((m) => Object.values(m)[0]?.shape[0] ?? 0);
  const total = sizes.reduce((a, b) => a + b, 0) || 1;
  let sums: tf.Tensor[] | null = null;
  const losses: MicroLoss[] = [];
  // Each loss term's own (unweighted) value, when there are several: the epoch line reports them.
  const several = loss.length > 1;
  const outputs: Record<string, tf.Tensor>[] = [];
  for (let i = 0; i < micro.length; i++) {
    const inputs = micro[i]!;
    const share = sizes[i]! / total;
    let updates: [tf.Variable, tf.Tensor][] = [];
    let kept: Record<string, tf.Tensor> = {};
    const termValues: tf.Tensor[] = [];
    const next: tf.Tensor[] = tf.tidy(() => {
      const { value: v, grads } = tf.variableGrads(() => {
        const r = net.forward(weights, inputs, opts);
        updates = r.updates;
        let t = tf.scalar(0);
        for (const [k, term] of loss.entries()) {
          const l = mix ? mixedLoss(term, mix.terms[k]!, r.outputs, mix.own[i]!, mix.partner[i]!, mix.lambda) : lossTensor(term, r.outputs[term.prediction]!, targetOf(term, r.outputs, inputs));
          if (several) termValues.push(tf.keep(l));
          t = tf.add(t, tf.mul(l, term.weight));
        }
        kept = Object.fromEntries(Object.entries(r.outputs).map(([k, o]) => [k, tf.keep(o)]));
        return t as tf.Scalar;
      }, trainable);
      losses.push({ loss: tf.keep(v), terms: termValues, share });
      // A weight the loss does not reach (an output no loss term reads) has no gradient: zero.
      const scaled = trainable.map((w) => {
        const g = grads[w.name] ?? tf.zerosLike(w);
        return micro.length === 1 ? g : tf.mul(g, share);
      });
      return sums ? scaled.map((g, k) => tf.add(sums![k]!, g)) : scaled;
    });
    if (sums) tf.dispose(sums);
    sums = next;
    outputs.push(kept);
    for (const [v, t] of updates) {
      v.assign(t);
      t.dispose();
    }
  }
  tf.tidy(() => optimizer.step(trainable, clipGradients(sums!, clip), lr));
  tf.dispose(sums!);
  return { losses, outputs };
}

/** One micro-batch's loss and (with several loss terms) each term's value, and its share of the batch's samples. */
export interface MicroLoss {
  loss: tf.Scalar;
  terms: tf.Tensor[];
  share: number;
}

/** The batch's loss and terms (sums over micro-batches by share, in float64), read with `read`; disposes the scalars. */
export function lossValues(losses: readonly MicroLoss[], read: (t: tf.Tensor) => number): { loss: number; terms: number[] } {
  let loss = 0;
  const terms = new Array<number>(losses[0]?.terms.length ?? 0).fill(0);
  for (const m of losses) {
    loss += read(m.loss) * m.share;
    m.terms.forEach((t, k) => (terms[k]! += read(t) * m.share));
    tf.dispose([m.loss, ...m.terms]);
  }
  return { loss, terms };
}

/** lossValues, read asynchronously. */
export async function readLossValues(losses: readonly MicroLoss[]): Promise<{ loss: number; terms: number[] }> {
  const values = new Map<tf.Tensor, number>();
  for (const m of losses) for (const t of [m.loss, ...m.terms]) values.set(t, (await t.data())[0]!);
  return lossValues(losses, (t) => values.get(t)!);
}

/** A mixed batch's loss (mixup, cutmix): λ, the partners' targets per micro-batch, and how each loss term mixes. */
export interface LossMix {
  lambda: number;
  /** The batch's own rows per micro-batch (unmixed: the targets). */
  own: Record<string, tf.Tensor>[];
  partner: Record<string, tf.Tensor>[];
  terms: readonly ("labels" | "target" | "output")[];
}

/**
 * One loss term of a mixed batch: `labels`, λ·L(y_a) + (1-λ)·L(y_b) (the loss against the mixed label
 * distribution); `target`, L of the mixed target λ·y_a + (1-λ)·y_b; `output`, as it is.
 */
export function mixedLoss(term: LossSpec, rule: LossMix["terms"][number], outputs: Record<string, tf.Tensor>, own: Record<string, tf.Tensor>, partner: Record<string, tf.Tensor>, lambda: number): tf.Scalar {
  const pred = outputs[term.prediction]!;
  if (rule === "output") return lossTensor(term, pred, outputs[term.target]!);
  const a = own[term.target]!;
  const b = partner[term.target]!;
  if (rule === "target") return lossTensor(term, pred, tf.add(tf.mul(tf.cast(a, "float32"), lambda), tf.mul(tf.cast(b, "float32"), 1 - lambda)));
  return tf.add(tf.mul(lossTensor(term, pred, a), lambda), tf.mul(lossTensor(term, pred, b), 1 - lambda)) as tf.Scalar;
}

/** Deterministic dropout seeds from (seed, step): a resumed run draws the same masks. */
export function seeder(seed: number, step: number): () => number {
  let k = 0;
  return () => {
    let h = (seed ^ Math.imul(step + 1, 0x9e3779b1) ^ Math.imul(++k, 0x85ebca6b)) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
    return h ^ (h >>> 12);
  };
}

