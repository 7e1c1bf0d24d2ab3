// The memory a training plan needs on TensorFlow.js, from the IR's static shapes alone (no tensors): what
// `nnetc summary` shows, and what `nnetc train` compares with the backend's limit before it allocates anything
// (NN7012). Pure: no TensorFlow.js, no file system.
//
// How TensorFlow.js spends memory during one step (runtime/steps.ts trainMicroBatches), and so the parts:
//  - weights: every parameter, at its dtype;
//  - gradients: one float32 copy of every weight the phase trains (two with gradient accumulation: the
//    running sum and the micro-batch's; one more with clipping, which makes clipped copies);
//  - optimizer: the slots each optimizer keeps per trained weight (OPTIMIZER_SLOTS below; runtime/optim.ts
//    makes them, and spec/unit/memory.test.ts holds the two together);
//  - activations: every value of the forward pass lives until the step's tidy ends, because the tape keeps it
//    for the backward pass; a conv or dense with a bias and a non-linear activation is three tensors under a
//    tape (tfjs unfuses), and a reshape shares its input's buffer. The backward pass keeps the gradient of
//    every value too until it ends (tfjs's gradients() tidies once, at the end): BACKWARD × the forward values;
//  - data: the batch's input and target tensors;
//  - update: after the backward pass (its values freed), the optimizer updates one weight at a time, and each
//    update makes UPDATE_TEMPORARIES[optimizer] weight-sized temporaries of the largest trained weight.
// The step's peak is weights + gradients + optimizer + data + the larger of activations and update.
// Activations and data grow linearly with the batch, so the largest batch that fits a limit is
// (limit − fixed) / per-sample.
import { evalDim } from "./ir/dims.js";
import type { DType, IRCall, IRDataset, IRModel, IRNode, IRPlan } from "./ir/types.js";
import { trainingSteps } from "../runtime/spec.js";

const BYTES: Record<DType, number> = { f16: 2, f32: 4, f64: 8, i8: 1, i32: 4, i64: 8, bool: 1 };

/**
 * Optimizer slots per trained weight: the tensors runtime/optim.ts keeps across steps (sgd with momentum its
 * velocity, adam/adamw m and v, rmsprop its mean square, and a velocity with momentum).
 */
export function optimizerSlots(call: Pick<IRCall, "fn" | "args">): number {
  const momentum = typeof call.args.momentum === "number" && call.args.momentum > 0 ? 1 : 0;
  switch (call.fn) {
    case "adam":
    case "adamw":
      return 2;
    case "rmsprop":
      return 1 + momentum;
    default:
      return momentum;
  }
}

/** Ops whose output shares its input's buffer on TensorFlow.js (a reshape is a view). */
const VIEWS = new Set(["input", "constant", "flatten", "reshape", "squeeze", "expand_dims", "identity", "parameter"]);
/**
 * Value-sized tensors an op's TensorFlow.js implementation makes per output besides the output itself (its
 * formula's intermediates, kept by the tape): layer norms' centring, square, scale and shift; GELU's tanh
 * polynomial; dropout's mask. Measured against tf.profile on the zoo's CharGPT (spec/unit/memory.test.ts).
 */
const INTERNALS: Record<string, number> = { layernorm: 5, rmsnorm: 4, groupnorm: 6, instancenorm: 5, batchnorm: 3, gelu: 6, silu: 2, mish: 4, softplus: 2, elu: 2, hardswish: 3, dropout: 2 };
/** Ops that tfjs runs fused outside a tape, but as separate bias-add and activation tensors under one. */
const FUSABLE = new Set(["dense", "conv1d", "conv2d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose", "conv1d_transpose"]);
/**
 * The backward pass's bytes per forward byte: the gradient of every value and the gradient functions'
 * intermediates (relu's step mask…) stay alive until it ends. Measured on the zoo's CNNs and MLP
 * (spec/unit/memory.test.ts): 1.4–1.6.
 */
export const BACKWARD = 1.5;

/** Weight-sized temporaries of one weight's update (runtime/optim.ts, counted from its ops). */
function updateTemporaries(call: Pick<IRCall, "fn" | "args">): number {
  const momentum = typeof call.args.momentum === "number" && call.args.momentum > 0;
  switch (call.fn) {
    case "adam":
    case "adamw":
      return 12;
    case "rmsprop":
      return momentum ? 9 : 7;
    default:
      return momentum ? (call.args.nesterov ? 7 : 4) : 2;
  }
}

export interface MemoryParts {
  weights: number;
  gradients: number;
  optimizer: number;
  /** Forward values kept for the backward pass, and the backward pass's own gradients of them. */
  activations: number;
  data: number;
  /** The temporaries of the largest weight's update (not at the same time as activations). */
  update: number;
}

export interface MemoryEstimate {
  plan: string;
  /** The phase whose step needs the most (the largest batch, the most trained weights). */
  phase: string;
  batch: number;
  parts: MemoryParts;
  total: number;
  /** Bytes that do not grow with the batch (weights, gradients, optimizer), and bytes per sample (activations, data). */
  fixed: number;
  perSample: number;
  /** The batch's data per sample (part of perSample). */
  dataPerSample: number;
  /** Symbolic dimensions with neither a dataset field's size nor a bound: counted as 1 (the estimate is then low). */
  unbound: string[];
}

/** The largest batch whose estimate fits `limit` bytes (0: not even one sample). */
export function largestBatch(e: Pick<MemoryEstimate, "fixed" | "perSample" | "dataPerSample" | "parts">, limit: number): number {
  // fixed + data(b) + max(activations(b), update) ≤ limit: both terms of the max must fit.
  if (e.fixed + e.parts.update > limit) return 0;
  const byActivations = e.perSample > 0 ? Math.floor((limit - e.fixed) / e.perSample) : Number.MAX_SAFE_INTEGER;
  const byUpdate = e.dataPerSample > 0 ? Math.floor((limit - e.fixed - e.parts.update) / e.dataPerSample) : Number.MAX_SAFE_INTEGER;
  return Math.max(0, Math.min(byActivations, byUpdate));
}

/**
 * The memory one training step of `plan` needs on TensorFlow.js at `batch` (default: each phase's own batch),
 * for the phase that needs the most.
 */
export function estimateTrainingMemory(model: IRModel, plan: IRPlan, datasets: readonly IRDataset[], batch?: number): MemoryEstimate {
  let best: MemoryEstimate | null = null;
  for (const phase of plan.phases) {
    const b = batch ?? phase.batch;
    const dataset = datasets.find((d) => d.name === phase.dataset) ?? datasets.find((d) => d.name === plan.dataset);
    const at = (n: number) => stepBytes(model, plan, phase, dataset, n);
    const one = at(1);
    const two = at(2);
    const parts = at(b).parts;
    const total = sum(parts);
    const fixed = parts.weights + parts.gradients + parts.optimizer;
    const perSample = two.parts.activations + two.parts.data - one.parts.activations - one.parts.data;
    const e: MemoryEstimate = { plan: plan.name, phase: phase.name, batch: b, parts, total, fixed, perSample, dataPerSample: two.parts.data - one.parts.data, unbound: one.unbound };
    if (!best || e.total > best.total) best = e;
  }
  return best!;
}

const sum = (p: MemoryParts) => p.weights + p.gradients + p.optimizer + p.data + Math.max(p.activations, p.update);

function stepBytes(model: IRModel, plan: IRPlan, phase: IRPlan["phases"][number], dataset: IRDataset | undefined, batch: number): { parts: MemoryParts; unbound: string[] } {
  // Symbolic dimensions: the batch's, those a dataset field fixes (an input [batch, seq] read from a field
  // [128]), then declared bounds.
  const env: Record<string, number> = Object.create(null); // dim names are user names ("constructor")
  for (const i of model.inputs) if (typeof i.shape[0] === "string") env[i.shape[0]] = batch;
  for (const i of model.inputs) {
    const f = dataset?.fields.find((x) => x.name === i.name);
    if (!f || f.shape.length !== i.shape.length - 1) continue;
    f.shape.forEach((d, k) => {
      const s = i.shape[k + 1];
      if (typeof s === "string" && /^[A-Za-z_]\w*$/.test(s) && typeof d === "number" && !(s in env)) env[s] = d;
    });
  }
  for (const d of model.dims) if (!(d.name in env) && d.max !== undefined) env[d.name] = d.max;
  const unbound = new Set<string>();
  const size = (shape: readonly (number | string)[] | null): number => {
    if (!shape) return 0;
    let n = 1;
    for (const d of shape) {
      let v = evalDim(d, env);
      if (v === undefined) {
        for (const s of String(d).match(/[A-Za-z_]\w*/g) ?? []) if (!(s in env) && s !== "floor" && s !== "ceil") unbound.add(s);
        v = evalDim(d, new Proxy(env, { get: (t, k) => (typeof k === "string" && k in t ? t[k] : 1) }));
      }
      n *= Math.max(1, v ?? 1);
    }
    return n;
  };

  const weights = model.params.reduce((s, p) => s + size(p.shape) * BYTES[p.dtype], 0);
  const byName = new Map(model.params.map((p) => [p.name, p]));
  // What trains: every step of the phase (alternate steps each have their own optimizer), as the engines decide.
  const { steps } = trainingSteps(plan, phase, model.params);
  const trained = new Set(steps.flatMap((s) => s.trainable));
  const trainedBytes = [...trained].reduce((s, n) => s + size(byName.get(n)!.shape) * 4, 0);
  const copies = 1 + ((phase.accumulate ?? 1) > 1 ? 1 : 0) + (phase.clip ? 1 : 0);
  const gradients = trainedBytes * copies;
  const optimizer = steps.reduce((s, st) => s + optimizerSlots(st.optimizer) * st.trainable.reduce((t, n) => t + size(byName.get(n)!.shape) * 4, 0), 0);
  const update = Math.max(0, ...steps.flatMap((st) => st.trainable.map((n) => updateTemporaries(st.optimizer) * size(byName.get(n)!.shape) * 4)));

  let forward = 0;
  const byId = new Map(model.nodes.map((n) => [n.id, n]));
  for (const n of model.nodes) {
    if (VIEWS.has(n.op)) continue;
    const bytes = size(n.shape) * BYTES[n.dtype ?? "f32"];
    const act = n.attrs.activation;
    const extra = FUSABLE.has(n.op) && typeof act === "string" && act !== "linear" ? (n.attrs.bias ? 2 : 1) : 0;
    forward += bytes * (1 + extra + (INTERNALS[n.op] ?? 0));
    if (n.op === "attention") forward += attentionInternals(n, byId, size);
  }
  const activations = forward * (1 + BACKWARD);

  // The batch: every dataset field the model or a loss term reads.
  const read = new Set([...model.inputs.map((i) => i.name), ...plan.loss.map((t) => t.target)]);
  let data = 0;
  for (const f of dataset?.fields ?? []) if (read.has(f.name)) data += batch * size(f.shape) * BYTES[f.dtype];
  return { parts: { weights, gradients, optimizer, activations, data, update }, unbound: [...unbound].sort() };
}

/** Per attention layer, tensors of the queries' size and of the scores' size (tf.profile on CharGPT). */
const PROJECTIONS = 10;
const SCORES = 14;
/**
 * An attention layer's values that are not IR values: queries, keys, values and the context per head, and the
 * scores, their mask/scale and softmax, [batch, heads, tq, tk] each.
 */
function attentionInternals(n: IRNode, byId: Map<string, IRNode>, size: (s: readonly (number | string)[] | null) => number): number {
  const q = byId.get(n.inputs[0]!)?.shape;
  const kvIn = n.inputs.length - (n.attrs.mask ? 1 : 0) > 1 ? byId.get(n.inputs[1]!)?.shape : q;
  if (!q || !kvIn || q.length !== 3 || kvIn.length !== 3) return 0;
  const h = Number(n.attrs.heads ?? 1);
  const d = size([q[2]!]);
  const kd = typeof n.attrs.key_dim === "number" ? n.attrs.key_dim : d / h;
  const rows = size(q.slice(0, 2));
  const keys = size(kvIn.slice(1, 2));
  return 4 * (PROJECTIONS * rows * h * kd + SCORES * rows * h * keys);
}

/** Bytes as people read them: 1.23 GiB, 456.0 MiB. */
export function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : i === 1 ? 0 : 2)} ${units[i]}`;
}

/** The estimate in one line: "weights 528 MiB + gradients … = 9.3 GiB at batch 64". */
export function fmtEstimate(e: MemoryEstimate): string {
  const p = e.parts;
  const peak = p.activations >= p.update ? `activations ${fmtBytes(p.activations)}` : `the largest weight's update ${fmtBytes(p.update)}`;
  const bits = [`weights ${fmtBytes(p.weights)}`, `gradients ${fmtBytes(p.gradients)}`, ...(p.optimizer ? [`optimizer ${fmtBytes(p.optimizer)}`] : []), peak, `data ${fmtBytes(p.data)}`];
  return `${bits.join(" + ")} = ${fmtBytes(e.total)} at batch ${e.batch}`;
}

/** The wasm backend's limit: WebAssembly's 32-bit address space. */
export const WASM_LIMIT = 4 * 1024 ** 3;
