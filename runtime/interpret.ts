// The IR interpreter: runs a checked IRModel with TensorFlow.js ops (tfjs-core and its autodiff, not
// tfjs-layers), so that what the compiler produced is exactly what runs. One function per op kind; the
// layer functions themselves are in ops.ts, shared with the emitted TypeScript modules.
import * as tf from "@tensorflow/tfjs-core";
import { evalDim } from "../compiler/ir/dims.js";
import type { OpKind } from "../compiler/ir/ops.js";
import type { AttrValue, IRModel, IRNode } from "../compiler/ir/types.js";
import { decoderSpec, sourceOnlyCached } from "./decoder.js";
import { generateWith, type GenerateOptions, type GenerateResult } from "./generate.js";
import { guard, onPlugins, PluginError, type LoadedPlugin, type PluginOp } from "../compiler/plugin/api.js";
import * as ops from "./ops.js";
import { weightValue } from "./qbase.js";
import type { Activation, ExplicitPadding, ExplicitPadding1d, Padding, Step } from "./ops.js";

export type Weights = Map<string, tf.Variable>;

export interface RunOptions {
  /** Training mode: dropout active, batchnorm uses batch statistics and updates its moving ones. */
  training: boolean;
  /** Layers that run in inference mode even while training (frozen batchnorm). */
  frozen?: ReadonlySet<string>;
  /** Seeds for dropout masks, one per call. */
  seed?: () => number;
  /**
   * Called with each layer's name, inputs and output as they are computed (calibration of activation
   * ranges); the tensors are only valid during the call. Emitted modules' forward functions do not call it.
   */
  observe?: (layer: string, inputs: readonly tf.Tensor[], output: tf.Tensor) => void;
  /**
   * Incremental decoding (runtime/generate.ts): the inputs are the tokens after the first `offset` ones, whose
   * keys and values each causal self-attention layer holds in `kv` (by node id; new ones are appended and kept);
   * positional embeddings start at `offset`. An encoder–decoder's `source` inputs (the same at every step):
   * cross-attention over them keeps its first step's keys and values, and after the first step (offset > 0)
   * the nodes computed from the source alone (the encoder) are not run.
   */
  cache?: { offset: number; kv: Map<string, { k: tf.Tensor | null; v: tf.Tensor | null }>; source?: readonly string[] };
}

export interface RunResult {
  outputs: Record<string, tf.Tensor>;
  /** New values for non-trainable weights (batchnorm moving statistics), applied after the step. */
  updates: [tf.Variable, tf.Tensor][];
}

/** What the training loop needs of a model: its weights and a forward pass (interpreted or emitted). */
export interface Net {
  name: string;
  params: readonly { name: string; layer: string; role: string; shape: readonly number[]; init: string; trainable: boolean }[];
  inputs: readonly { name: string; dtype: string; shape: readonly (number | string)[] }[];
  outputs: readonly { name: string }[];
  /** The layers' ops and attributes, where known (the interpreter's): what checks a checkpoint's config.json. */
  nodes?: readonly { name: string; op: string; attrs: Readonly<Record<string, unknown>> }[];
  /** Run on a batch. Call inside tf.tidy (or a gradient function); updates are kept tensors. */
  forward(weights: Weights, inputs: Record<string, tf.Tensor>, opts: RunOptions): RunResult;
}

interface Ctx {
  node: IRNode;
  x: tf.Tensor[];
  a: Record<string, AttrValue>;
  /** A weight's value (a packed int8 base kernel dequantized: runtime/qbase.ts). */
  w: (role: string) => tf.Tensor;
  step: Step;
  dims: Record<string, number>;
  /** Cross-attention over the source during a cached generation: its keys and values are cached once. */
  cross: boolean;
}

type Impl = (c: Ctx) => tf.Tensor;

const num = (v: AttrValue | undefined) => v as number;
const pair = (v: AttrValue | undefined) => v as [number, number];
const act = (v: AttrValue | undefined) => v as Activation;
const pad = (v: AttrValue | undefined) => v as Padding;
/** conv2d's and max_pool2d's padding: a name, or [top, bottom, left, right] after fold-padding. */
const pad2d = (v: AttrValue | undefined) => v as Padding | ExplicitPadding;
/** A 1-D pool's padding: a name, or PyTorch's [left, right]. */
const pad1d = (v: AttrValue | undefined) => v as Padding | ExplicitPadding1d;
/** The weight of a role when the layer has it (bias: false layers have none). */
const opt = (c: Ctx, role: string, has: AttrValue | undefined) => (has ? c.w(role) : null);

/** Resolve a per-sample reshape target: numbers, dimension names bound at run time, and -1. */
function target(c: Ctx): number[] {
  return (c.a.shape as (number | string)[]).map((d) => (typeof d === "number" ? d : evalDim(d, c.dims) ?? -1));
}

const binary = (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): Impl => (c) => f(c.x[0]!, c.x[1]!);
const unary = (f: (x: tf.Tensor, c: Ctx) => tf.Tensor): Impl => (c) => f(c.x[0]!, c);
const reduce = (kind: "mean" | "sum" | "max" | "min"): Impl => unary((x, c) => ops.reduce(kind, x, c.a.axis as number[], c.a.keepdims === true));

const convOpts = (c: Ctx) => ({ stride: pair(c.a.stride), padding: pad2d(c.a.padding), dilation: pair(c.a.dilation), groups: num(c.a.groups), activation: act(c.a.activation) });
const depthOpts = (c: Ctx) => ({ stride: pair(c.a.stride), padding: pad2d(c.a.padding), dilation: pair(c.a.dilation), activation: act(c.a.activation) });
const poolStride = (c: Ctx) => (c.a.stride === null ? c.a.size : c.a.stride);

function recurrent(c: Ctx, f: typeof ops.lstm): tf.Tensor {
  const w = (prefix: string) => ({ kernel: c.w(`${prefix}kernel`), recurrentKernel: c.w(`${prefix}recurrent_kernel`), bias: c.w(`${prefix}bias`) });
  const o = { units: num(c.a.units), returnSequences: !!c.a.return_sequences, resetAfter: c.a.reset_after !== false };
  if (!c.a.bidirectional) return f(c.x[0]!, w(""), { ...o, reverse: false });
  return tf.concat([f(c.x[0]!, w("forward/"), { ...o, reverse: false }), f(c.x[0]!, w("backward/"), { ...o, reverse: true })], -1);
}

/** The LoRA adapter of one of the node's kernels (group "" for a dense layer's own), if the plan adapts it. */
function lora(c: Ctx, group: string): ops.Lora | null {
  if (!(c.a.lora as string[] | undefined)?.includes(group)) return null;
  const p = group ? `${group}/` : "";
  return { a: c.w(`${p}lora_a`), b: c.w(`${p}lora_b`), scale: num(c.a.lora_scale), dropout: num(c.a.lora_dropout), step: c.step };
}

function attention(c: Ctx): tf.Tensor {
  const proj = (role: string) => ({ kernel: c.w(`${role}/kernel`), bias: opt(c, `${role}/bias`, c.a.bias), lora: lora(c, role) });
  const w = { query: proj("query"), key: proj("key"), value: proj("value"), output: proj("output") };
  const { kv, mask } = ops.attentionInputs(c.x, c.a);
  if (c.step.cache && c.a.causal && kv === c.x[0]) {
    return ops.attention(c.x[0]!, kv, w, { ...ops.attentionOptions(c.a), offset: ops.cacheOffset(c.step) }, c.step, mask, ops.kvCache(c.step, c.node.id));
  }
  if (c.cross) return ops.attention(c.x[0]!, kv ?? null, w, ops.attentionOptions(c.a), c.step, mask, ops.kvCache(c.step, c.node.id));
  return ops.attention(c.x[0]!, kv, w, ops.attentionOptions(c.a), c.step, mask);
}

export const IMPLS: Record<OpKind, Impl> = {
  input: () => {
    throw new Error("inputs are bound, not computed");
  },
  constant: (c) => tf.scalar(num(c.a.value)),
  dense: (c) => ops.dense(c.x[0]!, c.w("kernel"), opt(c, "bias", c.a.bias), act(c.a.activation), false, lora(c, "")),
  // The embedding's weights live under its own layer name.
  tied_dense: (c) => ops.tiedDense(c.x[0]!, c.w(`@${String(c.a.layer)}/embeddings`), opt(c, "bias", c.a.bias)),
  conv1d: (c) => ops.conv1d(c.x[0]!, c.w("kernel"), opt(c, "bias", c.a.bias), { stride: num(c.a.stride), padding: c.a.padding as ops.Conv1dOptions["padding"], dilation: num(c.a.dilation), groups: num(c.a.groups), activation: act(c.a.activation) }),
  conv2d: (c) => ops.conv2d(c.x[0]!, c.w("kernel"), opt(c, "bias", c.a.bias), convOpts(c)),
  depthwise_conv2d: (c) => ops.depthwiseConv2d(c.x[0]!, c.w("depthwise_kernel"), opt(c, "bias", c.a.bias), depthOpts(c)),
  conv1d_transpose: (c) => ops.conv1dTranspose(c.x[0]!, c.w("kernel"), opt(c, "bias", c.a.bias), { stride: num(c.a.stride), padding: c.a.padding as ops.Padding, activation: c.a.activation as ops.Activation }),
  conv2d_transpose: (c) => ops.conv2dTranspose(c.x[0]!, c.w("kernel"), opt(c, "bias", c.a.bias), { stride: pair(c.a.stride), padding: c.a.padding as ops.Padding, activation: c.a.activation as ops.Activation }),
  separable_conv2d: (c) => ops.separableConv2d(c.x[0]!, c.w("depthwise_kernel"), c.w("pointwise_kernel"), opt(c, "bias", c.a.bias), depthOpts(c)),
  max_pool1d: (c) => ops.maxPool1d(c.x[0]!, num(c.a.size), num(poolStride(c)), pad1d(c.a.padding), c.a.ceil_mode === true),
  avg_pool1d: (c) => ops.avgPool1d(c.x[0]!, num(c.a.size), num(poolStride(c)), pad1d(c.a.padding), c.a.ceil_mode === true),
  max_pool2d: (c) => ops.maxPool2d(c.x[0]!, pair(c.a.size), pair(poolStride(c)), pad2d(c.a.padding), c.a.ceil_mode === true),
  avg_pool2d: (c) => ops.avgPool2d(c.x[0]!, pair(c.a.size), pair(poolStride(c)), pad2d(c.a.padding), c.a.ceil_mode === true),
  global_avg_pool1d: unary((x) => tf.mean(x, 1)),
  global_max_pool1d: unary((x) => ops.globalMax(x, [1])),
  global_avg_pool2d: unary((x) => tf.mean(x, [1, 2])),
  global_max_pool2d: unary((x) => ops.globalMax(x, [1, 2])),
  zero_pad2d: unary((x, c) => ops.zeroPad2d(x, pair(c.a.padding))),
  upsample2d: unary((x, c) => ops.upsample2d(x, pair(c.a.size))),
  batchnorm: (c) => {
    const w = { gamma: opt(c, "gamma", c.a.scale), beta: opt(c, "beta", c.a.center), movingMean: c.w("moving_mean") as tf.Variable, movingVariance: c.w("moving_variance") as tf.Variable }; // never packed: variables
    return ops.batchnorm(c.x[0]!, w, num(c.a.epsilon), num(c.a.momentum), c.step, c.node.name);
  },
  layernorm: (c) => ops.layernorm(c.x[0]!, c.w("gamma"), c.w("beta"), num(c.a.epsilon)),
  rmsnorm: (c) => ops.rmsnorm(c.x[0]!, c.w("gamma"), num(c.a.epsilon)),
  groupnorm: (c) => ops.groupnorm(c.x[0]!, c.w("gamma"), c.w("beta"), num(c.a.groups), num(c.a.epsilon)),
  instancenorm: (c) => ops.groupnorm(c.x[0]!, c.w("gamma"), c.w("beta"), c.x[0]!.shape[c.x[0]!.rank - 1]!, num(c.a.epsilon)),
  dropout: (c) => ops.dropout(c.x[0]!, num(c.a.rate), c.step),
  sample_normal: (c) => ops.sampleNormal(c.x[0]!, c.x[1]!, c.a.always === true, c.step),
  random_normal_like: (c) => ops.randomNormalLike(c.x[0]!, num(c.a.std), c.a.always === true, c.step),
  parameter: (c) => ops.parameter(c.x[0]!, c.w("value")),
  embedding: (c) => ops.embedding(c.x[0]!, c.w("embeddings")),
  pos_embedding: (c) => ops.posEmbedding(c.x[0]!, c.w("embeddings"), ops.cacheOffset(c.step)),
  lstm: (c) => recurrent(c, ops.lstm),
  gru: (c) => recurrent(c, ops.gru),
  attention,
  flatten: unary((x) => tf.reshape(x, [x.shape[0]!, -1])),
  reshape: unary((x, c) => tf.reshape(x, [x.shape[0]!, ...target(c)])),
  transpose: unary((x, c) => tf.transpose(x, c.a.perm as number[])),
  concat: (c) => tf.concat(c.x, num(c.a.axis)),
  take: (c) => ops.take(c.x[0]!, num(c.a.index), num(c.a.axis)),
  slice: (c) => ops.sliceAxis(c.x[0]!, num(c.a.start), c.a.end as number | null, num(c.a.axis), num(c.a.step ?? 1)),
  squeeze: unary((x, c) => ops.squeezeAxis(x, num(c.a.axis))),
  expand_dims: unary((x, c) => ops.expandDims(x, num(c.a.axis))),
  cast: unary((x, c) => tf.cast(x, ops.TFJS_DTYPE[c.a.dtype as keyof typeof ops.TFJS_DTYPE])),
  add: binary((a, b) => tf.add(a, b)),
  sub: binary((a, b) => tf.sub(a, b)),
  mul: binary((a, b) => tf.mul(a, b)),
  div: binary((a, b) => tf.div(a, b)),
  matmul: binary((a, b) => tf.matMul(a, b)),
  relu: unary((x) => tf.relu(x)),
  relu6: unary((x) => tf.relu6(x)),
  gelu: unary((x, c) => ops.gelu(x, !!c.a.approximate)),
  silu: unary((x) => ops.silu(x)),
  sigmoid: unary((x) => tf.sigmoid(x)),
  tanh: unary((x) => tf.tanh(x)),
  softmax: unary((x, c) => ops.softmax(x, num(c.a.axis))),
  leaky_relu: unary((x, c) => tf.leakyRelu(x, num(c.a.alpha))),
  elu: unary((x, c) => ops.elu(x, num(c.a.alpha))),
  identity: unary((x) => x),
  softplus: unary((x) => tf.softplus(x)),
  mish: unary((x) => ops.mish(x)),
  hardswish: unary((x) => ops.hardswish(x)),
  hardsigmoid: unary((x) => ops.hardsigmoid(x)),
  exp: unary((x) => tf.exp(x)),
  log: unary((x) => tf.log(x)),
  sqrt: unary((x) => tf.sqrt(x)),
  abs: unary((x) => tf.abs(x)),
  neg: unary((x) => tf.neg(x)),
  square: unary((x) => tf.square(x)),
  pow: unary((x, c) => tf.pow(x, tf.scalar(num(c.a.exponent)))),
  clip: unary((x, c) => tf.clipByValue(x, num(c.a.min), num(c.a.max))),
  reduce_mean: reduce("mean"),
  reduce_sum: reduce("sum"),
  reduce_max: reduce("max"),
  reduce_min: reduce("min"),
};

// Plugin ops (compiler/plugin/api.ts) join the table: their tfjs forward, under tf.customGrad when they give a gradient.
onPlugins((from) => {
  const table = IMPLS as Record<string, Impl>;
  const names: string[] = [];
  for (const op of from.plugin.ops ?? []) {
    names.push(op.name);
    table[op.name] = (c) => pluginForward(op, from, c.x, c.a);
  }
  return () => {
    for (const n of names) delete table[n];
  };
});

/** A plugin op's forward pass: what it returns must be a tensor; what it throws is a PluginError (NN8005). */
export function pluginForward(op: PluginOp, from: LoadedPlugin, x: readonly tf.Tensor[], a: Record<string, AttrValue>): tf.Tensor {
  const tensor = (t: unknown, what: string): tf.Tensor => {
    if (t instanceof tf.Tensor) return t;
    throw new PluginError(from.plugin.name, from.file, what, new Error(`it returned ${t === null ? "null" : typeof t}, not a tfjs tensor`));
  };
  if (!op.gradient) return tensor(guard(from, `op ${op.name}'s tfjs forward`, () => op.tfjs(tf, x, a)), `op ${op.name}'s tfjs forward`);
  const f = tf.customGrad(((...args: unknown[]) => {
    const ins = args.slice(0, x.length) as tf.Tensor[];
    const save = args[x.length] as (t: tf.Tensor[]) => void;
    const value = tensor(guard(from, `op ${op.name}'s tfjs forward`, () => op.tfjs(tf, ins, a)), `op ${op.name}'s tfjs forward`);
    save([...ins, value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const gs = guard(from, `op ${op.name}'s gradient`, () => op.gradient!(tf, saved.slice(0, x.length), saved[x.length]!, dy, a));
        if (!Array.isArray(gs) || gs.length !== x.length) throw new PluginError(from.plugin.name, from.file, `op ${op.name}'s gradient`, new Error(`it returned ${Array.isArray(gs) ? `${gs.length} gradients` : typeof gs}, not one per input (${x.length})`));
        return gs.map((g, i) => tensor(g, `op ${op.name}'s gradient ${i}`));
      },
    };
  }) as never) as (...t: tf.Tensor[]) => tf.Tensor;
  return f(...x);
}

/** Values of the model's symbolic dimensions, read from the actual input tensors. */
function bindDims(m: IRModel, inputs: Record<string, tf.Tensor>): Record<string, number> {
  const env: Record<string, number> = Object.create(null); // dim names are user names ("constructor")
  for (const inp of m.inputs) {
    const t = inputs[inp.name];
    if (!t) throw new Error(`missing input "${inp.name}"`);
    inp.shape.forEach((d, i) => {
      if (typeof d === "string") env[d] = t.shape[i]!;
    });
  }
  return env;
}

/**
 * Run the model on a batch. Call inside tf.tidy (or a gradient function); updates are kept tensors.
 * In inference mode each node's temporaries are freed as it finishes, and each value once its last reader
 * has run: memory holds what is still needed, not the whole forward pass (ResNet-50 at batch 32 fits).
 */
export function run(m: IRModel, weights: Weights, inputs: Record<string, tf.Tensor>, opts: RunOptions): RunResult {
  const values = new Map<string, tf.Tensor>();
  const updates: [tf.Variable, tf.Tensor][] = [];
  const dims = bindDims(m, inputs);
  const step: Step = { ...opts, updates };
  // Readers still to come per tensor (one tensor can be several nodes' value: identity, dropout at inference).
  const pending = opts.training ? null : new Map<tf.Tensor, number>();
  const readers = new Map<string, number>();
  if (pending) {
    for (const n of m.nodes) for (const x of n.inputs) readers.set(x, (readers.get(x) ?? 0) + 1);
    for (const o of m.outputs) readers.set(o.node, Infinity);
  }
  const given = new Set(Object.values(inputs));
  // an encoder–decoder's generation: the encoder runs at the first step only (its keys and values are cached)
  const enc = opts.cache?.source ? sourceOnlyCached(m, opts.cache.source) : null;
  const skip = enc && opts.cache!.offset > 0 ? enc : null;
  for (const n of m.nodes) {
    if (skip?.has(n.id)) continue;
    if (n.op === "input") {
      const t = inputs[n.name]!;
      values.set(n.id, t);
      continue;
    }
    const w = (role: string): tf.Tensor => {
      const name = role.startsWith("@") ? role.slice(1) : `${n.name}/${role}`;
      const v = weights.get(name);
      if (!v) throw new Error(`no weight "${name}"`);
      return weightValue(v);
    };
    const cross = !!enc && n.op === "attention" && n.inputs.length - (n.attrs.mask ? 1 : 0) === 2 && enc.has(n.inputs[1]!);
    const args: Ctx = { node: n, x: n.inputs.map((i) => values.get(i)!), a: n.attrs, w, step, dims, cross };
    const impl = IMPLS[n.op as OpKind];
    const out = pending ? tf.tidy(() => impl(args)) : impl(args);
    opts.observe?.(n.name, args.x, out);
    values.set(n.id, out);
    if (pending) {
      pending.set(out, (pending.get(out) ?? 0) + (readers.get(n.id) ?? 0));
      for (const x of args.x) {
        if (!x) continue; // a skipped encoder value
        const left = pending.get(x)! - 1;
        pending.set(x, left);
        if (left === 0 && !given.has(x)) x.dispose();
      }
      if (pending.get(out) === 0 && !given.has(out)) out.dispose();
    }
  }
  const outputs: Record<string, tf.Tensor> = {};
  for (const o of m.outputs) outputs[o.name] = values.get(o.node)!;
  return { outputs, updates };
}

/** The interpreter as a Net, for the training loop. */
export function interpreted(m: IRModel): Net {
  return { name: m.name, params: m.params, inputs: m.inputs, outputs: m.outputs, nodes: m.nodes, forward: (w, x, o) => run(m, w, x, o) };
}

/** Generate up to o.maxNew ids after `prompt` with the interpreter (`nnetc generate`); a RunError when `m` is not a decoder. */
export function generateIds(m: IRModel, weights: Weights, prompt: readonly number[], o: GenerateOptions): GenerateResult {
  return generateWith(interpreted(m), weights, decoderSpec(m), prompt, o);
}
