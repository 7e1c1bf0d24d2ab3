// The IR interpreter: runs a checked IRModel with TensorFlow.js ops (tfjs-core and its autodiff, not
// tfjs-layers), so that what the compiler produced is exactly what runs. One function per op kind.
import * as tf from "@tensorflow/tfjs-core";
import { evalDim } from "../compiler/ir/dims.js";
import type { OpKind } from "../compiler/ir/ops.js";
import type { AttrValue, IRModel, IRNode } from "../compiler/ir/types.js";

export type Weights = Map<string, tf.Variable>;

export interface RunOptions {
  /** Training mode: dropout active, batchnorm uses batch statistics and updates its moving ones. */
  training: boolean;
  /** Layers that run in inference mode even while training (frozen batchnorm). */
  frozen?: ReadonlySet<string>;
  /** Seeds for dropout masks, one per call. */
  seed?: () => number;
}

export interface RunResult {
  outputs: Record<string, tf.Tensor>;
  /** New values for non-trainable weights (batchnorm moving statistics), applied after the step. */
  updates: [tf.Variable, tf.Tensor][];
}

interface Ctx {
  node: IRNode;
  x: tf.Tensor[];
  a: Record<string, AttrValue>;
  w: (role: string) => tf.Variable;
  opts: RunOptions;
  dims: Record<string, number>;
  updates: [tf.Variable, tf.Tensor][];
}

type Impl = (c: Ctx) => tf.Tensor;

const num = (v: AttrValue | undefined) => v as number;
const pair = (v: AttrValue | undefined) => v as [number, number];

type FusedAct = "linear" | "relu";
/** Activations by name; the ones tfjs can fuse with a gradient are applied inside matMul/conv2d. */
function activate(x: tf.Tensor, act: string): tf.Tensor {
  switch (act) {
    case "linear": return x;
    case "relu": return tf.relu(x);
    case "relu6": return tf.relu6(x);
    case "gelu": return gelu(x, false);
    case "gelu_tanh": return gelu(x, true);
    case "silu": return tf.mul(x, tf.sigmoid(x));
    case "sigmoid": return tf.sigmoid(x);
    case "tanh": return tf.tanh(x);
    case "softmax": return tf.softmax(x);
    case "leaky_relu": return tf.leakyRelu(x, 0.2);
    case "elu": return tf.elu(x);
  }
  throw new Error(`unknown activation ${act}`);
}

function gelu(x: tf.Tensor, approximate: boolean): tf.Tensor {
  if (approximate) {
    // 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  }
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
}

function fusable(act: string): act is FusedAct {
  return act === "linear" || act === "relu";
}

function dense2d(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | undefined, act: string, transposeB = false): tf.Tensor {
  const shape = x.shape;
  const flat = shape.length === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, shape[shape.length - 1]!]) as tf.Tensor2D;
  const y = fusable(act)
    ? tf.fused.matMul({ a: flat, b: kernel as tf.Tensor2D, transposeB, ...(bias ? { bias } : {}), activation: act })
    : activate(bias ? tf.add(tf.matMul(flat, kernel as tf.Tensor2D, false, transposeB), bias) : tf.matMul(flat, kernel as tf.Tensor2D, false, transposeB), act);
  return shape.length === 2 ? y : tf.reshape(y, [...shape.slice(0, -1), y.shape[1]!]);
}

/**
 * tfjs has no gradient for dilated convolutions, so they run as TensorFlow runs them: space-to-batch,
 * an undilated valid convolution, batch-to-space (all three differentiable).
 */
function dilated(x: tf.Tensor4D, k: [number, number], dil: [number, number], padding: "same" | "valid", f: (x: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D {
  const paddings: [number, number][] = [];
  const crops: [number, number][] = [];
  for (let i = 0; i < 2; i++) {
    const total = padding === "same" ? (k[i]! - 1) * dil[i]! : 0;
    const start = Math.floor(total / 2);
    const full = x.shape[1 + i]! + total;
    const extra = (dil[i]! - (full % dil[i]!)) % dil[i]!;
    paddings.push([start, total - start + extra]);
    crops.push([0, extra]);
  }
  return tf.batchToSpaceND(f(tf.spaceToBatchND(x, dil, paddings)), dil, crops) as tf.Tensor4D;
}

function conv(c: Ctx, x: tf.Tensor4D): tf.Tensor4D {
  const { a } = c;
  const kernel = c.w("kernel") as tf.Variable<tf.Rank.R4>;
  const bias = a.bias ? c.w("bias") : undefined;
  const act = a.activation as string;
  const strides = pair(a.stride);
  const dil = pair(a.dilation);
  const pad = a.padding as "same" | "valid";
  if (dil[0] > 1 || dil[1] > 1) {
    const k = [kernel.shape[0], kernel.shape[1]] as [number, number];
    const inner: Ctx = { ...c, a: { ...a, dilation: [1, 1], padding: "valid" } };
    return dilated(x, k, dil, pad, (xs) => conv(inner, xs));
  }
  const groups = num(a.groups);
  if (groups > 1) {
    const xs = tf.split(x, groups, 3) as tf.Tensor4D[];
    const ks = tf.split(kernel, groups, 3) as tf.Tensor4D[];
    const y = tf.concat(xs.map((xi, i) => tf.conv2d(xi, ks[i]!, strides, pad, "NHWC", dil)), 3);
    return activate(bias ? tf.add(y, bias) : y, act) as tf.Tensor4D;
  }
  if (fusable(act)) return tf.fused.conv2d({ x, filter: kernel, strides, pad, dataFormat: "NHWC", dilations: dil, ...(bias ? { bias } : {}), activation: act });
  const y = tf.conv2d(x, kernel, strides, pad, "NHWC", dil);
  return activate(bias ? tf.add(y, bias) : y, act) as tf.Tensor4D;
}

/** The depthwise part of depthwise and separable convolutions (dilated ones through space-to-batch). */
function depthwise(c: Ctx): tf.Tensor4D {
  const k = c.w("depthwise_kernel") as tf.Tensor4D;
  const dil = pair(c.a.dilation);
  const x = c.x[0] as tf.Tensor4D;
  if (dil[0] > 1 || dil[1] > 1) return dilated(x, [k.shape[0], k.shape[1]], dil, c.a.padding as "same", (xs) => tf.depthwiseConv2d(xs, k, 1, "valid"));
  return tf.depthwiseConv2d(x, k, pair(c.a.stride), c.a.padding as "same", "NHWC");
}

/** conv1d as conv2d over a height of 1; causal padding pads the start of the sequence only. */
function conv1d(c: Ctx): tf.Tensor {
  const causal = c.a.padding === "causal";
  const x = causal ? tf.pad(c.x[0]!, [[0, 0], [(num(c.a.kernel) - 1) * num(c.a.dilation), 0], [0, 0]]) : c.x[0]!;
  const kernel2d = (role: string) => (role === "kernel" ? (tf.expandDims(c.w("kernel"), 0) as unknown as tf.Variable) : c.w(role));
  const a = { ...c.a, stride: [1, num(c.a.stride)], dilation: [1, num(c.a.dilation)], padding: causal ? "valid" : c.a.padding! };
  return from2d(conv({ ...c, w: kernel2d, a }, as2d(x)));
}

/** 1-D ops run as 2-D ops over a height of 1. */
function as2d(x: tf.Tensor): tf.Tensor4D {
  return tf.expandDims(x, 1) as tf.Tensor4D;
}
function from2d(x: tf.Tensor): tf.Tensor3D {
  return tf.squeeze(x, [1]) as tf.Tensor3D;
}

function pool(c: Ctx, kind: "max" | "avg", dims: 1 | 2): tf.Tensor {
  const size = dims === 2 ? pair(c.a.size) : ([1, num(c.a.size)] as [number, number]);
  const stride = c.a.stride === null ? size : dims === 2 ? pair(c.a.stride) : ([1, num(c.a.stride)] as [number, number]);
  const x = dims === 2 ? (c.x[0] as tf.Tensor4D) : as2d(c.x[0]!);
  const pad = c.a.padding as "same" | "valid";
  const y = kind === "max" ? tf.maxPool(x, size, stride, pad) : tf.avgPool(x, size, stride, pad);
  return dims === 2 ? y : from2d(y);
}

/** Keras-compatible recurrent layers, unrolled over time with tfjs ops (gate order i, f, c, o / z, r, h). */
function recurrent(c: Ctx, kind: "lstm" | "gru"): tf.Tensor {
  const units = num(c.a.units);
  const x = c.x[0] as tf.Tensor3D;
  const steps = x.shape[1];
  const run = (prefix: string, reverse: boolean): tf.Tensor => {
    const kernel = c.w(`${prefix}kernel`) as tf.Tensor2D;
    const rec = c.w(`${prefix}recurrent_kernel`) as tf.Tensor2D;
    const bias = c.w(`${prefix}bias`);
    const batch = x.shape[0];
    // Input projections for every step at once: [batch, steps, gates·units].
    const proj = tf.reshape(tf.matMul(tf.reshape(x, [-1, x.shape[2]]), kernel), [batch, steps, -1]);
    let h: tf.Tensor2D = tf.zeros([batch, units]);
    let cell: tf.Tensor2D = tf.zeros([batch, units]);
    const outs: tf.Tensor2D[] = [];
    const order = [...Array(steps).keys()];
    if (reverse) order.reverse();
    // One split of the time-major projections, not a slice per step: each slice's gradient would be a
    // full-size padded tensor (O(steps²) memory). Time-major pieces are contiguous.
    const perStep = tf.split(tf.transpose(proj, [1, 0, 2]), steps, 0).map((t) => tf.reshape(t, [batch, -1]) as tf.Tensor2D);
    for (const t of order) {
      const xt = perStep[t]!;
      if (kind === "lstm") {
        const z = tf.add(tf.add(xt, tf.matMul(h, rec)), bias);
        const [i, f, g, o] = tf.split(z, 4, 1) as tf.Tensor2D[];
        cell = tf.add(tf.mul(tf.sigmoid(f!), cell), tf.mul(tf.sigmoid(i!), tf.tanh(g!)));
        h = tf.mul(tf.sigmoid(o!), tf.tanh(cell));
      } else {
        const resetAfter = c.a.reset_after !== false;
        const b = resetAfter ? tf.unstack(bias) : [bias, tf.zerosLike(bias)];
        const xz = tf.add(xt, b[0]!);
        const [xzz, xr, xh] = tf.split(xz, 3, 1) as tf.Tensor2D[];
        const [rz, rr, rh] = tf.split(rec, 3, 1) as tf.Tensor2D[];
        if (resetAfter) {
          const hr = tf.add(tf.matMul(h, rec), b[1]!);
          const [hz, hrr, hh] = tf.split(hr, 3, 1) as tf.Tensor2D[];
          const zg = tf.sigmoid(tf.add(xzz!, hz!));
          const rg = tf.sigmoid(tf.add(xr!, hrr!));
          const cand = tf.tanh(tf.add(xh!, tf.mul(rg, hh!)));
          h = tf.add(tf.mul(zg, h), tf.mul(tf.sub(1, zg), cand));
        } else {
          const zg = tf.sigmoid(tf.add(xzz!, tf.matMul(h, rz!)));
          const rg = tf.sigmoid(tf.add(xr!, tf.matMul(h, rr!)));
          const cand = tf.tanh(tf.add(xh!, tf.matMul(tf.mul(rg, h), rh!)));
          h = tf.add(tf.mul(zg, h), tf.mul(tf.sub(1, zg), cand));
        }
      }
      outs.push(h);
    }
    if (!c.a.return_sequences) return h;
    if (reverse) outs.reverse();
    return tf.stack(outs, 1);
  };
  if (!c.a.bidirectional) return run("", false);
  return tf.concat([run("forward/", false), run("backward/", true)], -1);
}

function attention(c: Ctx): tf.Tensor {
  const q = c.x[0] as tf.Tensor3D;
  const kv = (c.x[1] ?? c.x[0]) as tf.Tensor3D;
  const heads = num(c.a.heads);
  const d = q.shape[2];
  const kd = (c.a.key_dim as number | null) ?? d / heads;
  const proj = (t: tf.Tensor3D, role: string) => dense2d(t, c.w(`${role}/kernel`), c.a.bias ? c.w(`${role}/bias`) : undefined, "linear");
  // [batch, steps, heads·kd] → [batch, heads, steps, kd]
  const split = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [t.shape[0]!, t.shape[1]!, heads, kd]), [0, 2, 1, 3]) as tf.Tensor4D;
  const Q = split(proj(q, "query"));
  const K = split(proj(kv, "key"));
  const V = split(proj(kv, "value"));
  let scores = tf.mul(tf.matMul(Q, K, false, true), 1 / Math.sqrt(kd));
  if (c.a.causal) {
    const tq = q.shape[1];
    const tk = kv.shape[1];
    const mask = tf.linalg.bandPart(tf.ones([tq, tk]), -1, 0); // lower triangle
    scores = tf.add(scores, tf.mul(tf.sub(1, mask), -1e9));
  }
  let probs = tf.softmax(scores);
  if (c.opts.training && num(c.a.dropout) > 0) probs = dropout(probs, num(c.a.dropout), c.opts);
  const ctx = tf.reshape(tf.transpose(tf.matMul(probs, V), [0, 2, 1, 3]), [q.shape[0], q.shape[1], heads * kd]);
  return dense2d(ctx, c.w("output/kernel"), c.a.bias ? c.w("output/bias") : undefined, "linear");
}

function dropout(x: tf.Tensor, rate: number, opts: RunOptions): tf.Tensor {
  const seed = opts.seed ? opts.seed() : undefined;
  const keep = tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, "float32", seed), rate);
  return tf.mul(x, tf.mul(tf.cast(keep, x.dtype), 1 / (1 - rate)));
}

function batchnorm(c: Ctx): tf.Tensor {
  const x = c.x[0]!;
  const eps = num(c.a.epsilon);
  const gamma = c.a.scale ? c.w("gamma") : undefined;
  const beta = c.a.center ? c.w("beta") : undefined;
  const mm = c.w("moving_mean");
  const mv = c.w("moving_variance");
  const inference = !c.opts.training || c.opts.frozen?.has(c.node.name);
  let mean: tf.Tensor = mm;
  let variance: tf.Tensor = mv;
  if (!inference) {
    const axes = [...Array(x.rank - 1).keys()];
    const m = tf.moments(x, axes);
    mean = m.mean;
    variance = m.variance;
    const momentum = num(c.a.momentum);
    // Moving statistics are not part of the loss, so no gradient flows through these updates.
    c.updates.push([mm, tf.keep(tf.add(tf.mul(mm, momentum), tf.mul(mean, 1 - momentum)))]);
    c.updates.push([mv, tf.keep(tf.add(tf.mul(mv, momentum), tf.mul(variance, 1 - momentum)))]);
  }
  return tf.batchNorm(x, mean, variance, beta, gamma, eps);
}

function layernorm(c: Ctx): tf.Tensor {
  const x = c.x[0]!;
  const { mean, variance } = tf.moments(x, -1, true);
  const y = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, num(c.a.epsilon))));
  return tf.add(tf.mul(y, c.w("gamma")), c.w("beta"));
}

/** Resolve a per-sample reshape target: numbers, dimension names bound at run time, and -1. */
function target(c: Ctx): number[] {
  return (c.a.shape as (number | string)[]).map((d) => (typeof d === "number" ? d : evalDim(d, c.dims) ?? -1));
}

const binary = (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): Impl => (c) => f(c.x[0]!, c.x[1]!);
const unary = (f: (x: tf.Tensor, c: Ctx) => tf.Tensor): Impl => (c) => f(c.x[0]!, c);

export const IMPLS: Record<OpKind, Impl> = {
  input: () => {
    throw new Error("inputs are bound, not computed");
  },
  constant: (c) => tf.scalar(num(c.a.value)),
  dense: (c) => dense2d(c.x[0]!, c.w("kernel"), c.a.bias ? c.w("bias") : undefined, c.a.activation as string),
  tied_dense: (c) => {
    // The embedding's weights live under its own layer name.
    const y = dense2d(c.x[0]!, c.w(`@${String(c.a.layer)}/embeddings`), undefined, "linear", true);
    return c.a.bias ? tf.add(y, c.w("bias")) : y;
  },
  conv1d: (c) => conv1d(c),
  conv2d: (c) => conv(c, c.x[0] as tf.Tensor4D),
  depthwise_conv2d: (c) => {
    const y = depthwise(c);
    return activate(c.a.bias ? tf.add(y, c.w("bias")) : y, c.a.activation as string);
  },
  separable_conv2d: (c) => {
    const depth = depthwise(c);
    const y = tf.conv2d(depth, c.w("pointwise_kernel") as tf.Tensor4D, 1, "valid");
    return activate(c.a.bias ? tf.add(y, c.w("bias")) : y, c.a.activation as string);
  },
  max_pool1d: (c) => pool(c, "max", 1),
  avg_pool1d: (c) => pool(c, "avg", 1),
  max_pool2d: (c) => pool(c, "max", 2),
  avg_pool2d: (c) => pool(c, "avg", 2),
  global_avg_pool1d: unary((x) => tf.mean(x, 1)),
  global_max_pool1d: unary((x) => tf.max(x, 1)),
  global_avg_pool2d: unary((x) => tf.mean(x, [1, 2])),
  global_max_pool2d: unary((x) => tf.max(x, [1, 2])),
  zero_pad2d: unary((x, c) => {
    const [ph, pw] = pair(c.a.padding);
    return tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
  }),
  upsample2d: unary((x, c) => {
    const [a, b] = pair(c.a.size);
    return tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [x.shape[1]! * a, x.shape[2]! * b]);
  }),
  batchnorm,
  layernorm,
  dropout: unary((x, c) => (c.opts.training && num(c.a.rate) > 0 ? dropout(x, num(c.a.rate), c.opts) : x)),
  embedding: unary((x, c) => tf.gather(c.w("embeddings"), tf.cast(x, "int32"))),
  pos_embedding: unary((x, c) => tf.add(x, tf.slice(c.w("embeddings"), [0, 0], [x.shape[1]!, -1]))),
  lstm: (c) => recurrent(c, "lstm"),
  gru: (c) => recurrent(c, "gru"),
  attention,
  flatten: unary((x) => tf.reshape(x, [x.shape[0]!, -1])),
  reshape: unary((x, c) => tf.reshape(x, [x.shape[0]!, ...target(c)])),
  transpose: unary((x, c) => tf.transpose(x, c.a.perm as number[])),
  concat: (c) => tf.concat(c.x, num(c.a.axis)),
  take: unary((x, c) => {
    const axis = num(c.a.axis) < 0 ? num(c.a.axis) + x.rank : num(c.a.axis);
    const n = x.shape[axis]!;
    const i = num(c.a.index) < 0 ? num(c.a.index) + n : num(c.a.index);
    return tf.squeeze(tf.slice(x, x.shape.map((_, k) => (k === axis ? i : 0)), x.shape.map((_, k) => (k === axis ? 1 : -1))), [axis]);
  }),
  cast: unary((x, c) => tf.cast(x, ({ f16: "float32", f32: "float32", f64: "float32", i8: "int32", i32: "int32", i64: "int32", bool: "bool" } as const)[c.a.dtype as "f32"])),
  add: binary((a, b) => tf.add(a, b)),
  sub: binary((a, b) => tf.sub(a, b)),
  mul: binary((a, b) => tf.mul(a, b)),
  div: binary((a, b) => tf.div(a, b)),
  matmul: binary((a, b) => tf.matMul(a, b)),
  relu: unary((x) => tf.relu(x)),
  relu6: unary((x) => tf.relu6(x)),
  gelu: unary((x, c) => gelu(x, !!c.a.approximate)),
  silu: unary((x) => tf.mul(x, tf.sigmoid(x))),
  sigmoid: unary((x) => tf.sigmoid(x)),
  tanh: unary((x) => tf.tanh(x)),
  softmax: unary((x, c) => tf.softmax(x, num(c.a.axis))),
  leaky_relu: unary((x, c) => tf.leakyRelu(x, num(c.a.alpha))),
  elu: unary((x) => tf.elu(x)),
  identity: unary((x) => x),
};

/** Values of the model's symbolic dimensions, read from the actual input tensors. */
function bindDims(m: IRModel, inputs: Record<string, tf.Tensor>): Record<string, number> {
  const env: Record<string, number> = {};
  for (const inp of m.inputs) {
    const t = inputs[inp.name];
    if (!t) throw new Error(`missing input "${inp.name}"`);
    inp.shape.forEach((d, i) => {
      if (typeof d === "string") env[d] = t.shape[i]!;
    });
  }
  return env;
}

/** Run the model on a batch. Call inside tf.tidy (or a gradient function); updates are kept tensors. */
export function run(m: IRModel, weights: Weights, inputs: Record<string, tf.Tensor>, opts: RunOptions): RunResult {
  const values = new Map<string, tf.Tensor>();
  const updates: [tf.Variable, tf.Tensor][] = [];
  const dims = bindDims(m, inputs);
  for (const n of m.nodes) {
    if (n.op === "input") {
      const t = inputs[n.name]!;
      values.set(n.id, t);
      continue;
    }
    const w = (role: string): tf.Variable => {
      const name = role.startsWith("@") ? role.slice(1) : `${n.name}/${role}`;
      const v = weights.get(name);
      if (!v) throw new Error(`no weight "${name}"`);
      return v;
    };
    const out = IMPLS[n.op as OpKind]({ node: n, x: n.inputs.map((i) => values.get(i)!), a: n.attrs, w, opts, dims, updates });
    values.set(n.id, out);
  }
  const outputs: Record<string, tf.Tensor> = {};
  for (const o of m.outputs) outputs[o.name] = values.get(o.node)!;
  return { outputs, updates };
}
