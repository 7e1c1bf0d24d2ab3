// The layer functions of the language, as plain functions of tensors: the interpreter (interpret.ts) and
// every emitted TypeScript module call these same functions, so the two compute exactly the same thing.
// Ops that are one TensorFlow.js call (relu, add, reshape…) are not here: both call tfjs directly.
import * as tf from "@tensorflow/tfjs-core";
import { LSTM_CELL, LSTM_CELL_GRAD } from "./kernels/lstm_cell.js";
import { LSTM_SEQ, LSTM_SEQ_GRAD } from "./kernels/lstm_seq.js";

/** Per-call state of a forward pass: training mode, frozen layers, dropout seeds, batchnorm updates. */
export interface Step {
  /** Training mode: dropout active, batchnorm uses batch statistics and updates its moving ones. */
  training: boolean;
  /** Layers that run in inference mode even while training (frozen batchnorm). */
  frozen?: ReadonlySet<string>;
  /** Seeds for dropout masks, one per call. */
  seed?: () => number;
  /** New values for non-trainable weights (batchnorm moving statistics), applied after the step. */
  updates: [tf.Variable, tf.Tensor][];
  /** Incremental decoding's key/value cache (interpret.ts RunOptions.cache). */
  cache?: { offset: number; kv: Map<string, { k: tf.Tensor | null; v: tf.Tensor | null }>; source?: readonly string[] };
}

export type Activation = "linear" | "relu" | "relu6" | "gelu" | "gelu_tanh" | "silu" | "sigmoid" | "tanh" | "softmax" | "leaky_relu" | "elu";
export type Padding = "same" | "valid";
/** Explicit zero padding [top, bottom, left, right], set by the fold-padding pass (a zero_pad2d folded in). */
export type { ExplicitPadding, ExplicitPadding1d } from "../compiler/ir/padding.js";
import type { ExplicitPadding, ExplicitPadding1d } from "../compiler/ir/padding.js";
type Pair = readonly [number, number];

/** tfjs's form of a padding: the name, or [[0, 0], [top, bottom], [left, right], [0, 0]] (NHWC). */
function tfPadding(p: Padding | ExplicitPadding): Padding | [[number, number], [number, number], [number, number], [number, number]] {
  return typeof p === "string" ? p : [[0, 0], [p[0], p[1]], [p[2], p[3]], [0, 0]];
}

/** Activations by name; the ones tfjs can fuse with a gradient are applied inside matMul/conv2d. */
export function activate(x: tf.Tensor, act: Activation): tf.Tensor {
  switch (act) {
    case "linear": return x;
    case "relu": return tf.relu(x);
    case "relu6": return tf.relu6(x);
    case "gelu": return gelu(x, false);
    case "gelu_tanh": return gelu(x, true);
    case "silu": return silu(x);
    case "sigmoid": return tf.sigmoid(x);
    case "tanh": return tf.tanh(x);
    case "softmax": return tf.softmax(x);
    case "leaky_relu": return tf.leakyRelu(x, 0.2);
    case "elu": return tf.elu(x);
  }
  throw new Error(`unknown activation ${String(act)}`);
}

export function gelu(x: tf.Tensor, approximate: boolean): tf.Tensor {
  if (approximate) {
    // 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  }
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
}

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** x · tanh(softplus(x)). */
export function mish(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.tanh(tf.softplus(x)));
}

/** relu6(x + 3) / 6, as PyTorch's hardsigmoid. */
export function hardsigmoid(x: tf.Tensor): tf.Tensor {
  return tf.div(tf.relu6(tf.add(x, 3)), 6);
}

/** x · relu6(x + 3) / 6. */
export function hardswish(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, hardsigmoid(x));
}

/** A reduction over axes (reduce_mean, reduce_sum, reduce_max, reduce_min). */
export function reduce(kind: "mean" | "sum" | "max" | "min", x: tf.Tensor, axes: number[], keepdims: boolean): tf.Tensor {
  const f = kind === "mean" ? tf.mean : kind === "sum" ? tf.sum : kind === "max" ? tf.max : tf.min;
  return f(x, axes, keepdims);
}

/** Softmax along any axis: tfjs's own takes the last one only, so another is moved there and back. */
export function softmax(x: tf.Tensor, axis: number): tf.Tensor {
  const ax = axis < 0 ? axis + x.rank : axis;
  if (ax === x.rank - 1) return tf.softmax(x);
  const perm = [...Array(x.rank).keys()].filter((i) => i !== ax).concat(ax);
  const back = perm.map((_, i) => perm.indexOf(i));
  return tf.transpose(tf.softmax(tf.transpose(x, perm)), back);
}

/** alpha · (e^x − 1) below zero; tfjs's elu has alpha 1 only. */
export function elu(x: tf.Tensor, alpha: number): tf.Tensor {
  if (alpha === 1) return tf.elu(x);
  return tf.where(tf.greater(x, 0), x, tf.mul(alpha, tf.sub(tf.exp(x), 1)));
}

/**
 * Activations tfjs applies inside its fused conv2d / depthwiseConv2d / matMul (one pass over the output;
 * in the wasm backend inside the XNNPACK call). Under a gradient tape tfjs itself falls back to the
 * unfused ops for every activation but linear, so the gradient is always defined.
 */
const FUSED: Partial<Record<Activation, "linear" | "relu" | "relu6" | "sigmoid" | "elu" | "leakyrelu">> = {
  linear: "linear",
  relu: "relu",
  relu6: "relu6",
  sigmoid: "sigmoid",
  elu: "elu",
  leaky_relu: "leakyrelu",
};
/** The fused-op arguments for an activation (leaky_relu as a layer activation has alpha 0.2, as in activate). */
function fusedAct(act: Activation): { activation: NonNullable<(typeof FUSED)[Activation]>; leakyreluAlpha?: number } | null {
  const f = FUSED[act];
  if (!f) return null;
  return f === "leakyrelu" ? { activation: f, leakyreluAlpha: 0.2 } : { activation: f };
}

/** A LoRA adapter of a dense kernel: + scale · dropout(x) · a · b, a [in, rank], b [rank, out]. */
export interface Lora {
  a: tf.Tensor;
  b: tf.Tensor;
  scale: number;
  dropout: number;
  step: Step;
}

/** x · kernel (+ bias) (+ a LoRA adapter's term), then the activation; x may have any rank ≥ 2 (the last axis is contracted). */
export function dense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null, act: Activation = "linear", transposeB = false, lora: Lora | null = null): tf.Tensor {
  if (lora) {
    const low = dense(dense(dropout(x, lora.dropout, lora.step), lora.a, null), lora.b, null);
    return activate(tf.add(dense(x, kernel, bias, "linear", transposeB), tf.mul(low, lora.scale)), act);
  }
  const shape = x.shape;
  const flat = shape.length === 2 ? (x as tf.Tensor2D) : (tf.reshape(x, [-1, shape[shape.length - 1]!]) as tf.Tensor2D);
  const k = kernel as tf.Tensor2D;
  const f = fusedAct(act);
  const y = f
    ? tf.fused.matMul({ a: flat, b: k, transposeB, ...(bias ? { bias } : {}), ...f })
    : activate(bias ? tf.add(tf.matMul(flat, k, false, transposeB), bias) : tf.matMul(flat, k, false, transposeB), act);
  return shape.length === 2 ? y : tf.reshape(y, [...shape.slice(0, -1), y.shape[1]!]);
}

/** A dense layer whose kernel is an embedding table, transposed (GPT-2's output projection). */
export function tiedDense(x: tf.Tensor, table: tf.Tensor, bias: tf.Tensor | null): tf.Tensor {
  const y = dense(x, table, null, "linear", true);
  return bias ? tf.add(y, bias) : y;
}

/**
 * tfjs has no gradient for dilated convolutions, so they run as TensorFlow runs them: space-to-batch,
 * an undilated valid convolution, batch-to-space (all three differentiable).
 */
function dilated(x: tf.Tensor4D, k: Pair, dil: Pair, padding: Padding, f: (x: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D {
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
  return tf.batchToSpaceND(f(tf.spaceToBatchND(x, [...dil], paddings)), [...dil], crops) as tf.Tensor4D;
}

export interface ConvOptions {
  stride: Pair;
  padding: Padding | ExplicitPadding;
  dilation: Pair;
  groups: number;
  activation: Activation;
}

/** 2-D convolution, NHWC, with groups and dilation. */
export function conv2d(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null, o: ConvOptions): tf.Tensor4D {
  const x4 = x as tf.Tensor4D;
  const k4 = kernel as tf.Tensor4D;
  const { stride, dilation: dil, activation: act } = o;
  const pad = tfPadding(o.padding);
  if (dil[0] > 1 || dil[1] > 1) {
    // Explicit padding: zeros around the input, then a valid dilated convolution.
    if (typeof o.padding !== "string") return conv2d(padded(x4, o)[0], kernel, bias, { ...o, padding: "valid" });
    const inner: ConvOptions = { ...o, dilation: [1, 1], padding: "valid" };
    return dilated(x4, [k4.shape[0], k4.shape[1]], dil, o.padding, (xs) => conv2d(xs, kernel, bias, inner));
  }
  if (o.groups > 1) {
    const xs = tf.split(x4, o.groups, 3) as tf.Tensor4D[];
    const ks = tf.split(k4, o.groups, 3) as tf.Tensor4D[];
    const y = tf.concat(xs.map((xi, i) => tf.conv2d(xi, ks[i]!, [...stride], pad, "NHWC", [...dil])), 3);
    return activate(bias ? tf.add(y, bias) : y, act) as tf.Tensor4D;
  }
  const f = fusedAct(act);
  if (f) return tf.fused.conv2d({ x: x4, filter: k4, strides: [...stride], pad, dataFormat: "NHWC", dilations: [...dil], ...(bias ? { bias } : {}), ...f });
  const y = tf.conv2d(x4, k4, [...stride], pad, "NHWC", [...dil]);
  return activate(bias ? tf.add(y, bias) : y, act) as tf.Tensor4D;
}

export interface ConvTransposeOptions {
  stride: Pair;
  padding: Padding;
  activation: Activation;
}

/**
 * Transposed 2-D convolution, NHWC, kernel [kh, kw, filters, channels] (Keras's Conv2DTranspose): the output is
 * (h - 1)·stride + kernel high (valid) or h·stride (same, the canvas cropped as TensorFlow crops it).
 */
export function conv2dTranspose(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null, o: ConvTransposeOptions): tf.Tensor4D {
  const x4 = x as tf.Tensor4D;
  const k4 = kernel as tf.Tensor4D;
  const [n, h, w] = x4.shape;
  const [kh, kw, f] = k4.shape;
  const [sh, sw] = o.stride;
  const out: [number, number, number, number] = o.padding === "same" ? [n, h * sh, w * sw, f] : [n, (h - 1) * sh + kh, (w - 1) * sw + kw, f];
  const y = tf.conv2dTranspose(x4, k4, out, [sh, sw], o.padding);
  return activate(bias ? tf.add(y, bias) : y, o.activation) as tf.Tensor4D;
}

/** A transposed 1-D convolution: the 2-D one over a height of 1 (kernel [k, filters, channels]). */
export function conv1dTranspose(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null, o: { stride: number; padding: Padding; activation: Activation }): tf.Tensor3D {
  return from2d(conv2dTranspose(as2d(x), tf.expandDims(kernel, 0), bias, { stride: [1, o.stride], padding: o.padding, activation: o.activation }));
}

export interface Conv1dOptions {
  stride: number;
  /** a name, or explicit zeros [left, right] (PyTorch's padding=) */
  padding: Padding | "causal" | ExplicitPadding1d;
  dilation: number;
  groups: number;
  activation: Activation;
}

/** A 1-D op's padding as the 2-D one's over a height of 1: explicit [left, right] becomes [0, 0, left, right]. */
function as2dPadding(p: Padding | ExplicitPadding1d): Padding | ExplicitPadding {
  return typeof p === "string" ? p : [0, 0, p[0], p[1]];
}

/** conv1d as conv2d over a height of 1; causal padding pads the start of the sequence only. */
export function conv1d(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null, o: Conv1dOptions): tf.Tensor3D {
  const causal = o.padding === "causal";
  const xp = causal ? tf.pad(x, [[0, 0], [(kernel.shape[0]! - 1) * o.dilation, 0], [0, 0]]) : x;
  const k2 = tf.expandDims(kernel, 0);
  const y = conv2d(as2d(xp), k2, bias, { stride: [1, o.stride], dilation: [1, o.dilation], padding: causal ? "valid" : as2dPadding(o.padding as Padding | ExplicitPadding1d), groups: o.groups, activation: o.activation });
  return from2d(y);
}

export interface DepthwiseOptions {
  stride: Pair;
  padding: Padding | ExplicitPadding;
  dilation: Pair;
  activation: Activation;
}

/** The depthwise convolution of an input already padded (`padded`): its padding is a name. */
function depthwisePart(x: tf.Tensor, k: tf.Tensor, o: DepthwiseOptions & { padding: Padding }): tf.Tensor4D {
  const k4 = k as tf.Tensor4D;
  const x4 = x as tf.Tensor4D;
  if (o.dilation[0] > 1 || o.dilation[1] > 1) return dilated(x4, [k4.shape[0], k4.shape[1]], o.dilation, o.padding, (xs) => tf.depthwiseConv2d(xs, k4, 1, "valid"));
  return tf.depthwiseConv2d(x4, k4, [...o.stride], o.padding, "NHWC");
}

/** Explicit padding as zeros around the input, then "valid" (the ops that take only a name). */
function padded(x: tf.Tensor, o: { padding: Padding | ExplicitPadding }): [tf.Tensor4D, Padding] {
  if (typeof o.padding === "string") return [x as tf.Tensor4D, o.padding];
  const p = o.padding;
  return [tf.pad(x as tf.Tensor4D, [[0, 0], [p[0], p[1]], [p[2], p[3]], [0, 0]]), "valid"];
}

export function depthwiseConv2d(x0: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null, o0: DepthwiseOptions): tf.Tensor {
  const [x, padding] = padded(x0, o0);
  const o = { ...o0, padding };
  const f = fusedAct(o.activation);
  if (f && o.dilation[0] === 1 && o.dilation[1] === 1) {
    return tf.fused.depthwiseConv2d({ x: x as tf.Tensor4D, filter: kernel as tf.Tensor4D, strides: [...o.stride], pad: o.padding, dataFormat: "NHWC", ...(bias ? { bias } : {}), ...f });
  }
  const y = depthwisePart(x, kernel, o);
  return activate(bias ? tf.add(y, bias) : y, o.activation);
}

export function separableConv2d(x0: tf.Tensor, depthwiseKernel: tf.Tensor, pointwiseKernel: tf.Tensor, bias: tf.Tensor | null, o0: DepthwiseOptions): tf.Tensor {
  const [x, padding] = padded(x0, o0);
  const o = { ...o0, padding };
  const d = depthwisePart(x, depthwiseKernel, o);
  const f = fusedAct(o.activation);
  if (f) return tf.fused.conv2d({ x: d, filter: pointwiseKernel as tf.Tensor4D, strides: 1, pad: "valid", dataFormat: "NHWC", ...(bias ? { bias } : {}), ...f });
  const y = tf.conv2d(d, pointwiseKernel as tf.Tensor4D, 1, "valid");
  return activate(bias ? tf.add(y, bias) : y, o.activation);
}

/** 1-D ops run as 2-D ops over a height of 1. */
function as2d(x: tf.Tensor): tf.Tensor4D {
  return tf.expandDims(x, 1) as tf.Tensor4D;
}
function from2d(x: tf.Tensor): tf.Tensor3D {
  return tf.squeeze(x, [1]) as tf.Tensor3D;
}

/**
 * A pool's explicit padding with ceil_mode's extra rows and columns at the end (PyTorch's output size: the last
 * window may overhang the padded input but starts inside the input or its leading padding), per axis [begin, end].
 */
function poolPads(shape: readonly number[], size: Pair, stride: Pair, padding: ExplicitPadding, ceil: boolean): [number, number][] {
  return [0, 1].map((i) => {
    const [b, e] = [padding[2 * i]!, padding[2 * i + 1]!];
    if (!ceil) return [b, e];
    const n = shape[1 + i]!;
    let out = Math.ceil((n + b + e - size[i]!) / stride[i]!) + 1;
    if ((out - 1) * stride[i]! >= n + b) out--;
    return [b, Math.max(e, (out - 1) * stride[i]! + size[i]! - n - b)];
  });
}

/**
 * Max pooling; explicit padding (PyTorch's padding=, or fold-padding's) never wins a window (tfjs skips padded
 * positions, as −∞ would); ceil_mode as PyTorch's.
 */
export function maxPool2d(x: tf.Tensor, size: Pair, stride: Pair, padding: Padding | ExplicitPadding, ceil = false): tf.Tensor4D {
  if (typeof padding === "string" && !ceil) return tf.maxPool(x as tf.Tensor4D, [...size], [...stride], padding);
  const [h, w] = poolPads(x.shape, size, stride, padding === "valid" ? [0, 0, 0, 0] : (padding as ExplicitPadding), ceil);
  return tf.maxPool(x as tf.Tensor4D, [...size], [...stride], [[0, 0], h!, w!, [0, 0]]);
}

/**
 * Average pooling. "same" averages over the real pixels only (TensorFlow's); explicit padding counts its zeros
 * (PyTorch's count_include_pad=True), and with ceil_mode a window overhanging the padded input divides by the
 * part inside it, as PyTorch does.
 */
export function avgPool2d(x: tf.Tensor, size: Pair, stride: Pair, padding: Padding | ExplicitPadding, ceil = false): tf.Tensor4D {
  if (typeof padding === "string" && !ceil) return tf.avgPool(x as tf.Tensor4D, [...size], [...stride], padding);
  const own: ExplicitPadding = padding === "valid" ? [0, 0, 0, 0] : (padding as ExplicitPadding);
  const pads = poolPads(x.shape, size, stride, own, ceil);
  const y = tf.avgPool(tf.pad(x as tf.Tensor4D, [[0, 0], pads[0]!, pads[1]!, [0, 0]]), [...size], [...stride], "valid");
  const extra = pads.map(([, e], i) => e - own[2 * i + 1]!);
  if (extra.every((e) => e === 0)) return y;
  // Divisors of the windows that overhang: the part of each inside the padded input.
  const scale = [0, 1].map((i) => {
    const padded = x.shape[1 + i]! + own[2 * i]! + own[2 * i + 1]!;
    const n = y.shape[1 + i]!;
    return Float32Array.from({ length: n }, (_, o) => size[i]! / (Math.min(o * stride[i]! + size[i]!, padded) - o * stride[i]!));
  });
  return tf.mul(tf.mul(y, tf.tensor4d(scale[0]!, [1, y.shape[1]!, 1, 1])), tf.tensor4d(scale[1]!, [1, 1, y.shape[2]!, 1]));
}
/** 1-D pools: the 2-D ones over a height of 1 (explicit [left, right] padding and ceil_mode as PyTorch's). */
export function maxPool1d(x: tf.Tensor, size: number, stride: number, padding: Padding | ExplicitPadding1d, ceil = false): tf.Tensor3D {
  return from2d(maxPool2d(as2d(x), [1, size], [1, stride], as2dPadding(padding), ceil));
}
export function avgPool1d(x: tf.Tensor, size: number, stride: number, padding: Padding | ExplicitPadding1d, ceil = false): tf.Tensor3D {
  return from2d(avgPool2d(as2d(x), [1, size], [1, stride], as2dPadding(padding), ceil));
}

/**
 * tf.max over `axes` (global max pooling) with the gradient written out: dy flows to the positions equal to
 * the maximum (every tie, as tf.max's own gradient). The mask is (x − max) == 0 rather than tfjs's
 * equal(x, max): tfjs-backend-wasm's Equal with broadcasting is a scalar index loop (240 ms for the
 * BiLSTM's [64, 200, 128] output, a quarter of its training step), its Sub with broadcasting and Equal
 * with a scalar take 6 and 8 ms. Equal for finite values (x − m = 0 ⇔ x = m); an infinite maximum gets
 * no gradient (∞ − ∞ is NaN).
 */
export function globalMax(x: tf.Tensor, axes: number[]): tf.Tensor {
  const f = tf.customGrad((...args: unknown[]) => {
    const [xs, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const value = tf.max(xs, axes);
    save([xs, value]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const kept = xs.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const d = tf.sub(saved[0]!, tf.reshape(saved[1]!, kept));
      return tf.mul(tf.cast(tf.equal(d, tf.scalar(0)), dy.dtype), tf.reshape(dy, kept));
    };
    return { value, gradFunc };
  });
  return f(x);
}

/** Zero padding of height and width (NHWC). */
export function zeroPad2d(x: tf.Tensor, padding: Pair): tf.Tensor4D {
  const [ph, pw] = padding;
  return tf.pad(x as tf.Tensor4D, [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
}

/** Nearest-neighbour upsampling by whole factors. */
export function upsample2d(x: tf.Tensor, size: Pair): tf.Tensor4D {
  return tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [x.shape[1]! * size[0], x.shape[2]! * size[1]]);
}

/** Inverted dropout; a no-op outside training. */
export function dropout(x: tf.Tensor, rate: number, s: Step): tf.Tensor {
  if (!s.training || rate <= 0) return x;
  const seed = s.seed ? s.seed() : undefined;
  const keep = tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, "float32", seed), rate);
  return tf.mul(x, tf.mul(tf.cast(keep, x.dtype), 1 / (1 - rate)));
}

/** mean + e^(log_var / 2) · ε with ε ~ N(0, 1) (seeded per call, as dropout's masks), in training or always; else the mean. */
export function sampleNormal(mean: tf.Tensor, logVar: tf.Tensor, always: boolean, s: Step): tf.Tensor {
  if (!s.training && !always) return mean;
  const seed = s.seed ? s.seed() : undefined;
  return tf.add(mean, tf.mul(tf.exp(tf.mul(logVar, 0.5)), tf.randomNormal(mean.shape, 0, 1, "float32", seed)));
}

/** N(0, std²) noise of x's shape (seeded per call, as dropout's masks), in training or always; else zeros. */
export function randomNormalLike(x: tf.Tensor, std: number, always: boolean, s: Step): tf.Tensor {
  if (!s.training && !always) return tf.zerosLike(x);
  const seed = s.seed ? s.seed() : undefined;
  return tf.randomNormal(x.shape, 0, std, "float32", seed);
}

export interface BatchnormWeights {
  gamma: tf.Tensor | null;
  beta: tf.Tensor | null;
  movingMean: tf.Variable;
  movingVariance: tf.Variable;
}

/**
 * Batch normalization over every axis but the last. Training (unless the layer is frozen) uses the
 * batch's statistics and records new moving statistics in `s.updates`.
 */
export function batchnorm(x: tf.Tensor, w: BatchnormWeights, epsilon: number, momentum: number, s: Step, layer: string): tf.Tensor {
  const inference = !s.training || s.frozen?.has(layer);
  let mean: tf.Tensor = w.movingMean;
  let variance: tf.Tensor = w.movingVariance;
  if (!inference) {
    const axes = [...Array(x.rank - 1).keys()];
    const m = tf.moments(x, axes);
    mean = m.mean;
    variance = m.variance;
    const mm = w.movingMean;
    const mv = w.movingVariance;
    // Moving statistics are not part of the loss, so no gradient flows through these updates.
    s.updates.push([mm, tf.keep(tf.add(tf.mul(mm, momentum), tf.mul(mean, 1 - momentum)))]);
    s.updates.push([mv, tf.keep(tf.add(tf.mul(mv, momentum), tf.mul(variance, 1 - momentum)))]);
  }
  return tf.batchNorm(x, mean, variance, w.beta ?? undefined, w.gamma ?? undefined, epsilon);
}

export function layernorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  const y = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, epsilon)));
  return tf.add(tf.mul(y, gamma), beta);
}

/** Root-mean-square normalization over the last axis: x / √(mean(x²) + ε) · γ. */
export function rmsnorm(x: tf.Tensor, gamma: tf.Tensor, epsilon: number): tf.Tensor {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, epsilon))), gamma);
}

/**
 * Group normalization over [batch, …, channels] (instancenorm: groups = channels): each sample's group of
 * channels normalized over its positions and those channels, then the per-channel γ and β.
 */
export function groupnorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, groups: number, epsilon: number): tf.Tensor {
  const ch = x.shape[x.rank - 1]!;
  const g = tf.reshape(x, [x.shape[0]!, -1, groups, ch / groups]);
  const { mean, variance } = tf.moments(g, [1, 3], true);
  const y = tf.reshape(tf.div(tf.sub(g, mean), tf.sqrt(tf.add(variance, epsilon))), x.shape);
  return tf.add(tf.mul(y, gamma), beta);
}

/** A learned tensor the same for every sample of x's batch: [batch, ...value's shape]. */
export function parameter(x: tf.Tensor, value: tf.Tensor): tf.Tensor {
  return tf.broadcastTo(tf.expandDims(value, 0), [x.shape[0]!, ...value.shape]);
}

/** Rows of an embedding table for integer ids. */
export function embedding(ids: tf.Tensor, table: tf.Tensor): tf.Tensor {
  return tf.gather(table, tf.cast(ids, "int32"));
}

/** Where incremental decoding's new tokens start (the key/value cache's length; 0 without a cache). */
export function cacheOffset(s: Step): number {
  return s.cache?.offset ?? 0;
}

/** An attention layer's key/value cache during incremental decoding (causal self-attention, or cross-attention over the source; made on first use), or undefined without one. */
export function kvCache(s: Step, layer: string): { k: tf.Tensor | null; v: tf.Tensor | null } | undefined {
  if (!s.cache) return undefined;
  let e = s.cache.kv.get(layer);
  if (!e) s.cache.kv.set(layer, (e = { k: null, v: null }));
  return e;
}

/** Adds learned position vectors for the first `steps` positions. */
export function posEmbedding(x: tf.Tensor, table: tf.Tensor, offset = 0): tf.Tensor {
  return tf.add(x, tf.slice(table, [offset, 0], [x.shape[1]!, -1]));
}

export interface RecurrentWeights {
  kernel: tf.Tensor;
  recurrentKernel: tf.Tensor;
  bias: tf.Tensor;
}

export interface RecurrentOptions {
  units: number;
  returnSequences: boolean;
  /** Run over time backwards (the backward half of a bidirectional layer); outputs stay in time order. */
  reverse: boolean;
  /** GRU only: apply the reset gate after the recurrent matmul (Keras's default, CuDNN's layout). */
  resetAfter?: boolean;
}

/**
 * A recurrent layer in Keras's layout over [batch, steps, features]: the cell runs over time-major input
 * (one transpose around it, autodiff takes care of it; `reverse` is the cell's own order of steps, not a
 * tf.reverse, which the wasm backend runs as a slow scalar loop), and its output goes back to
 * [batch, steps, units] (or the last state, [batch, units]).
 */
function overTime(x: tf.Tensor, o: RecurrentOptions, cell: (xt: tf.Tensor3D) => tf.Tensor): tf.Tensor {
  const y = cell(tf.transpose(x, [1, 0, 2]) as tf.Tensor3D);
  return o.returnSequences ? tf.transpose(y, [1, 0, 2]) : y;
}

/** One LSTM step's element-wise part (p + q → gates → h, c, and act = [i, f, g, o, tanh c]): see runtime/kernels/lstm_cell.ts. */
function lstmCell(p: tf.Tensor, q: tf.Tensor, cPrev: tf.Tensor, composed: boolean): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  if (!composed && tf.getKernel(LSTM_CELL, tf.getBackend())) return tf.engine().runKernel(LSTM_CELL, { p, q, cPrev }) as unknown as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  const z = tf.add(p, q);
  const s = tf.sigmoid(z);
  const H = cPrev.shape[1]!;
  const gate = (t: tf.Tensor, n: number) => tf.slice(t, [0, n * H], [-1, H]);
  const [i, f, g, o] = [gate(s, 0), gate(s, 1), tf.tanh(gate(z, 2)), gate(s, 3)];
  const c = tf.add(tf.mul(f, cPrev), tf.mul(i, g));
  const tc = tf.tanh(c);
  return [tf.mul(o, tc), c, tf.concat([i, f, g, o, tc], 1)] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
}

/** One LSTM step backwards: the gradient at its gate pre-activations z and at the previous cell state. */
function lstmCellGrad(dhOut: tf.Tensor, dhNext: tf.Tensor, dcNext: tf.Tensor, act: tf.Tensor, cPrev: tf.Tensor): [tf.Tensor2D, tf.Tensor2D] {
  if (tf.getKernel(LSTM_CELL_GRAD, tf.getBackend())) return tf.engine().runKernel(LSTM_CELL_GRAD, { dhOut, dhNext, dcNext, act, cPrev }) as unknown as [tf.Tensor2D, tf.Tensor2D];
  const dh = tf.add(dhOut, dhNext);
  const [i, f, g, o, tc] = tf.split(act, 5, 1) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
  const dc = tf.add(dcNext, tf.mul(tf.mul(dh, o), tf.sub(1, tf.square(tc))));
  const dsig = (t: tf.Tensor) => tf.mul(t, tf.sub(1, t));
  const dz = tf.concat([tf.mul(tf.mul(dc, g), dsig(i)), tf.mul(tf.mul(dc, cPrev), dsig(f)), tf.mul(tf.mul(dc, i), tf.sub(1, tf.square(g))), tf.mul(tf.mul(dh, tc), dsig(o))], 1);
  return [dz, tf.mul(dc, f)] as [tf.Tensor2D, tf.Tensor2D];
}

/**
 * The rows of t as `steps` equal parts, one per time step. Not tf.split for a single step: tfjs's gradient
 * of a split into one part fails ("Pass at least one tensor to concat"), which made a one-step GRU (and
 * the LSTM's autodiff variant) untrainable.
 */
function splitSteps(t: tf.Tensor, steps: number): tf.Tensor2D[] {
  return steps === 1 ? [t as tf.Tensor2D] : (tf.split(t, steps, 0) as tf.Tensor2D[]);
}

/** How lstmTimeMajor runs (see there). */
export type LstmImpl = "auto" | "cell" | "autodiff";

/**
 * lstmTimeMajor with the whole-sequence kernels (runtime/kernels/lstm_seq.ts): the input projection is one
 * matmul with the bias, the recurrence one NnetcLstmSeq call; the gradient one NnetcLstmSeqGrad call for
 * the gate gradients dZ of every step, then the input, kernel, recurrent-kernel and bias gradients as
 * matmuls over the whole sequence (as the per-step path's).
 */
function lstmSequenceKernel(x: tf.Tensor3D, w: RecurrentWeights, units: number, sequences: boolean, reverse: boolean): tf.Tensor {
  const [steps, batch, features] = x.shape;
  const H = units;
  const last = reverse ? 0 : steps - 1;
  const f = (...args: unknown[]) => {
    const [xs, kernel, rec, bias, save] = args as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const x2 = tf.reshape(xs, [steps * batch, features]) as tf.Tensor2D;
    const proj = tf.reshape(tf.fused.matMul({ a: x2, b: kernel, bias }), [steps, batch, 4 * H]);
    const [hs, cs, act] = tf.engine().runKernel(LSTM_SEQ, { proj, rec }, { reverse }) as unknown as tf.Tensor3D[];
    const value = sequences ? hs! : tf.reshape(tf.slice(hs!, [last, 0, 0], [1, batch, H]), [batch, H]);
    save([x2, kernel, rec, act!, cs!, hs!]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [x2s, kernelS, u, A, C, Hs] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
      const [dZ3] = tf.engine().runKernel(LSTM_SEQ_GRAD, { dy, act: A, cs: C, rec: u }, { reverse, sequences }) as unknown as tf.Tensor[];
      const dZ = tf.reshape(dZ3!, [steps * batch, 4 * H]) as tf.Tensor2D;
      // Each step's previous state, rows in time order (zeros before the first step taken).
      const z = tf.zeros([1, batch, H]);
      const before = tf.slice(Hs, [reverse ? 1 : 0, 0, 0], [steps - 1, batch, H]);
      const hPrev = tf.reshape(tf.concat(reverse ? [before, z] : [z, before], 0), [steps * batch, H]) as tf.Tensor2D;
      const dx = tf.reshape(tf.matMul(dZ, tf.transpose(kernelS)), [steps, batch, features]);
      // The bias gradient as a product with ones: the wasm backend's Sum over rows is 25× slower.
      const db = tf.reshape(tf.matMul(tf.ones([1, steps * batch]), dZ), [4 * H]);
      return [dx, tf.matMul(tf.transpose(x2s), dZ), tf.matMul(tf.transpose(hPrev), dZ), db];
    };
    return { value, gradFunc };
  };
  return tf.customGrad(f as (...args: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] })(x, w.kernel, w.recurrentKernel, w.bias);
}

/**
 * The LSTM over time-major x [steps, batch, features] (gate order i, f, c, o, Keras's): the input
 * projection of every step is one [steps·batch, 4·units] matmul with the bias folded in; each step is one
 * [batch, units]·[units, 4·units] matmul and one cell (lstmCell: on wasm a single kernel call, elsewhere
 * tfjs ops). The gradient is written out (backpropagation through time, tf.customGrad): per step one
 * cell gradient and one [batch, 4·units]·[4·units, units] matmul, and the weight and input gradients are
 * three matmuls over the whole sequence. Autodiff through the loop recorded ~20 tape nodes per step and
 * took longer than the old implementation (bench/lstm.ts). Returns [steps, batch, units] when
 * `sequences`, else the last state [batch, units]. Where the backend has them (wasm), the whole sequence is
 * one kernel call each way instead (runtime/kernels/lstm_seq.ts: the same arithmetic, ~2 engine ops in
 * place of ~8 per step). `impl` (what bench/lstm.ts and the tests compare): "auto" as said, "cell" the
 * per-step loop even where the sequence kernels exist, "autodiff" the forward ops composed and recorded on
 * the tape instead.
 */
export function lstmTimeMajor(x: tf.Tensor3D, w: RecurrentWeights, units: number, sequences: boolean, reverse: boolean, impl: LstmImpl = "auto"): tf.Tensor {
  const autodiff = impl === "autodiff";
  if (impl === "auto" && tf.getKernel(LSTM_SEQ, tf.getBackend()) && tf.getKernel(LSTM_SEQ_GRAD, tf.getBackend())) return lstmSequenceKernel(x, w, units, sequences, reverse);
  const [steps, batch, features] = x.shape;
  const H = units;
  // The time index of the k-th step taken.
  const at = (k: number) => (reverse ? steps - 1 - k : k);
  const cell = (...args: unknown[]) => {
    const [xs, kernel, rec, bias] = args as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
    const save = (args[4] as tf.GradSaveFunc | undefined) ?? (() => {});
    const x2 = tf.reshape(xs, [steps * batch, features]) as tf.Tensor2D;
    const proj = splitSteps(tf.fused.matMul({ a: x2, b: kernel, bias }), steps);
    const zeros = tf.zeros([batch, H]);
    const zeros4 = tf.zeros([batch, 4 * H]);
    const [acts, cs, hs]: tf.Tensor[][] = [new Array(steps), new Array(steps), new Array(steps)];
    // By time index; the step before time t is at(k − 1).
    for (let k = 0; k < steps; k++) {
      const [t, prev] = [at(k), at(k - 1)];
      [hs[t], cs[t], acts[t]] = lstmCell(proj[t]!, k > 0 ? tf.matMul(hs[prev] as tf.Tensor2D, rec) : zeros4, k > 0 ? cs[prev]! : zeros, autodiff);
    }
    const value = sequences ? tf.stack(hs) : hs[at(steps - 1)]!;
    save([x2, kernel, rec, ...acts, ...cs, ...hs]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [x2s, kernelS, u] = saved as tf.Tensor2D[];
      const [A, C, Hs] = [0, 1, 2].map((n) => saved.slice(3 + n * steps, 3 + (n + 1) * steps));
      const z = tf.zeros([batch, H]);
      const dys = sequences ? splitSteps(tf.reshape(dy, [steps * batch, H]), steps) : null;
      const uT = tf.transpose(u);
      const dzs: tf.Tensor[] = new Array(steps);
      let dh = z;
      let dc = z;
      for (let k = steps - 1; k >= 0; k--) {
        const t = at(k);
        const [dz, dcPrev] = lstmCellGrad(dys ? dys[t]! : k === steps - 1 ? dy : z, dh, dc, A![t]!, k > 0 ? C![at(k - 1)]! : z);
        dzs[t] = dz;
        if (k > 0) {
          dc = dcPrev;
          dh = tf.matMul(dz, uT);
        }
      }
      // Rows in time order; each step's previous state (zeros before the first step taken).
      const dZ = tf.concat(dzs, 0) as tf.Tensor2D;
      const before = Hs!.slice(reverse ? 1 : 0, reverse ? steps : steps - 1);
      const hPrev = tf.concat(reverse ? [...before, z] : [z, ...before], 0) as tf.Tensor2D;
      const dx = tf.reshape(tf.matMul(dZ, tf.transpose(kernelS)), [steps, batch, features]);
      // The bias gradient as a product with ones: the wasm backend's Sum over rows is 25× slower.
      const db = tf.reshape(tf.matMul(tf.ones([1, steps * batch]), dZ), [4 * H]);
      return [dx, tf.matMul(tf.transpose(x2s), dZ), tf.matMul(tf.transpose(hPrev), dZ), db];
    };
    return { value, gradFunc };
  };
  if (autodiff) return cell(x, w.kernel, w.recurrentKernel, w.bias).value;
  return tf.customGrad(cell as (...args: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] })(x, w.kernel, w.recurrentKernel, w.bias);
}

/**
 * The GRU cell over time-major x [steps, batch, features] (gate order z, r, h, Keras's), with autodiff: the
 * input projection of every step is one matmul with the input bias folded in, the recurrent kernel and
 * bias are split once, not per step. Returns [steps, batch, units] when `sequences`, else the last state.
 */
export function gruTimeMajor(x: tf.Tensor3D, w: RecurrentWeights, units: number, sequences: boolean, reverse: boolean, resetAfter: boolean): tf.Tensor {
  const [steps, batch, features] = x.shape;
  const rec = w.recurrentKernel as tf.Tensor2D;
  const [bIn, bRec] = resetAfter ? tf.unstack(w.bias) : [w.bias, null];
  // Not tf.fused.matMul's bias: the wasm backend takes an unstacked row for the rank-2 tensor it came from.
  const proj = tf.add(tf.matMul(tf.reshape(x, [steps * batch, features]) as tf.Tensor2D, w.kernel as tf.Tensor2D), bIn!);
  const perStep = splitSteps(proj, steps);
  const [rz, rr, rh] = resetAfter ? [] : (tf.split(rec, 3, 1) as tf.Tensor2D[]);
  let h: tf.Tensor2D = tf.zeros([batch, units]);
  const hs: tf.Tensor2D[] = new Array(steps);
  for (let k = 0; k < steps; k++) {
    const t = reverse ? steps - 1 - k : k;
    const [xz, xr, xh] = tf.split(perStep[t]!, 3, 1) as tf.Tensor2D[];
    if (resetAfter) {
      const [hz, hr, hh] = tf.split(tf.add(tf.matMul(h, rec), bRec!), 3, 1) as tf.Tensor2D[];
      const zg = tf.sigmoid(tf.add(xz!, hz!));
      const rg = tf.sigmoid(tf.add(xr!, hr!));
      const cand = tf.tanh(tf.add(xh!, tf.mul(rg, hh!)));
      h = tf.add(tf.mul(zg, h), tf.mul(tf.sub(1, zg), cand));
    } else {
      const zg = tf.sigmoid(tf.add(xz!, tf.matMul(h, rz!)));
      const rg = tf.sigmoid(tf.add(xr!, tf.matMul(h, rr!)));
      const cand = tf.tanh(tf.add(xh!, tf.matMul(tf.mul(rg, h), rh!)));
      h = tf.add(tf.mul(zg, h), tf.mul(tf.sub(1, zg), cand));
    }
    hs[t] = h;
  }
  return sequences ? tf.stack(hs) : h;
}

export function lstm(x: tf.Tensor, w: RecurrentWeights, o: RecurrentOptions): tf.Tensor {
  return overTime(x, o, (xt) => lstmTimeMajor(xt, w, o.units, o.returnSequences, o.reverse));
}

export function gru(x: tf.Tensor, w: RecurrentWeights, o: RecurrentOptions): tf.Tensor {
  return overTime(x, o, (xt) => gruTimeMajor(xt, w, o.units, o.returnSequences, o.reverse, o.resetAfter !== false));
}

export interface Projection {
  kernel: tf.Tensor;
  bias: tf.Tensor | null;
  lora?: Lora | null;
}

export interface AttentionWeights {
  query: Projection;
  key: Projection;
  value: Projection;
  output: Projection;
}

export interface AttentionOptions {
  heads: number;
  /** Per-head width; null for dim / heads. */
  keyDim: number | null;
  /** Key/value heads (grouped-query attention): each serves heads / kvHeads query heads; null for heads. */
  kvHeads?: number | null;
  causal: boolean;
  dropout: number;
  /** Rotary position embeddings on queries and keys with this base (θ); 0 or absent: none. */
  rotary?: number;
  /** Position of the first query and key (a key/value cache's length during generation). */
  offset?: number;
}

/** An attention node's inputs: query, context (the query itself for self-attention) and the padding mask, if any. */
export function attentionInputs<T>(x: readonly T[], a: Readonly<Record<string, unknown>>): { kv: T; mask: T | null } {
  const n = x.length - (a.mask ? 1 : 0);
  return { kv: n > 1 ? x[1]! : x[0]!, mask: a.mask ? x[x.length - 1]! : null };
}

/** An attention node's attributes as the layer function's options. */
export function attentionOptions(a: Readonly<Record<string, unknown>>): AttentionOptions {
  return {
    heads: a.heads as number,
    keyDim: (a.key_dim as number | null) ?? null,
    kvHeads: (a.kv_heads as number | null) ?? null,
    causal: !!a.causal,
    dropout: (a.dropout as number) ?? 0,
    rotary: a.rotary ? ((a.rope_theta as number) ?? 10000) : 0,
  };
}

/**
 * Rotary position embedding (RoFormer; Llama's and GPT-NeoX's form, halves rotated, not pairs) of
 * x [batch, heads, steps, kd] at positions offset…offset+steps−1: x·cos + rotate_half(x)·sin, with
 * frequencies θ^(−2i/kd) computed in float32 as Hugging Face does.
 */
export function rotary(x: tf.Tensor, theta: number, offset = 0): tf.Tensor {
  const [, , t, kd] = x.shape as number[];
  const { cos, sin } = rotaryTables(t!, kd!, theta, offset);
  const half = kd! / 2;
  const x1 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half]);
  const x2 = tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half]);
  const rot = tf.concat([tf.neg(x2), x1], -1);
  return tf.add(tf.mul(x, tf.tensor2d(cos, [t!, kd!])), tf.mul(rot, tf.tensor2d(sin, [t!, kd!])));
}

/** cos and sin [steps, kd] of the rotary embedding (the angle table repeated for both halves). */
export function rotaryTables(t: number, kd: number, theta: number, offset = 0): { cos: Float32Array; sin: Float32Array } {
  const half = kd / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / kd)));
  const cos = new Float32Array(t * kd);
  const sin = new Float32Array(t * kd);
  for (let p = 0; p < t; p++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround((p + offset) * inv[i]!);
      cos[p * kd + i] = cos[p * kd + half + i] = Math.cos(a);
      sin[p * kd + i] = sin[p * kd + half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/**
 * Multi-head scaled dot-product attention of q over kv (self-attention when kv is q). `mask` [batch, kv
 * steps] marks real keys (1) and padding (0): padding gets no attention, so the real tokens of a padded
 * sequence see what they see unpadded. `cache` (generation): for self-attention (kv is q) keys and values of
 * earlier positions are prepended and the new ones returned in it; for cross-attention (kv is another tensor)
 * the first step's keys and values are kept and reused, and kv may then be null (the encoder is not rerun).
 */
export function attention(q: tf.Tensor, kv: tf.Tensor | null, w: AttentionWeights, o: AttentionOptions, s: Step, mask: tf.Tensor | null = null, cache?: { k: tf.Tensor | null; v: tf.Tensor | null }): tf.Tensor {
  const heads = o.heads;
  const kvHeads = o.kvHeads ?? heads;
  const d = q.shape[2]!;
  const kd = o.keyDim ?? d / heads;
  const offset = o.offset ?? 0;
  const proj = (t: tf.Tensor, p: Projection) => dense(t, p.kernel, p.bias, "linear", false, p.lora ?? null);
  // [batch, steps, h·kd] → [batch, h, steps, kd]
  const split = (t: tf.Tensor, h: number) => tf.transpose(tf.reshape(t, [t.shape[0]!, t.shape[1]!, h, kd]), [0, 2, 1, 3]) as tf.Tensor4D;
  // cross-attention with a cache: the keys and values of the source, computed once (kv is then not read)
  const cross = cache !== undefined && kv !== q;
  const reuse = cross && cache.k !== null && cache.v !== null;
  let Q: tf.Tensor = split(proj(q, w.query), heads);
  let K: tf.Tensor = reuse ? cache.k! : split(proj(kv!, w.key), kvHeads);
  let V: tf.Tensor = reuse ? cache.v! : split(proj(kv!, w.value), kvHeads);
  if (o.rotary) {
    Q = rotary(Q, o.rotary, offset);
    if (!reuse) K = rotary(K, o.rotary, offset);
  }
  if (cache && !reuse) {
    // kept past the step's tidy; the caller disposes the replaced ones
    if (!cross && cache.k) K = tf.concat([cache.k, K], 2);
    if (!cross && cache.v) V = tf.concat([cache.v, V], 2);
    cache.k = tf.keep(K);
    cache.v = tf.keep(V);
  }
  if (kvHeads !== heads) {
    // each key/value head serves heads / kvHeads consecutive query heads (Hugging Face's repeat_kv)
    const g = heads / kvHeads;
    // (rank 4 throughout: tfjs has no gradient for a rank-5 tile)
    const rep = (t: tf.Tensor) => tf.reshape(tf.tile(tf.reshape(t, [t.shape[0]!, kvHeads, 1, t.shape[2]! * kd]), [1, 1, g, 1]), [t.shape[0]!, heads, t.shape[2]!, kd]);
    K = rep(K);
    V = rep(V);
  }
  let scores = tf.mul(tf.matMul(Q, K, false, true), 1 / Math.sqrt(kd));
  const tq = Q.shape[2]!;
  const tk = K.shape[2]!;
  if (o.causal) {
    // query i (at position tk − tq + i) sees keys up to its own position
    const mask = tf.linalg.bandPart(tf.ones([tq, tk]), -1, tk - tq); // lower triangle, shifted by a cache
    scores = tf.add(scores, tf.mul(tf.sub(1, mask), -1e9));
  }
  if (mask) {
    // with a cache the mask may cover the new keys only: the cached ones are tokens
    const full = mask.shape[1]! < tk ? tf.concat([tf.ones([mask.shape[0]!, tk - mask.shape[1]!], mask.dtype), mask], 1) : mask;
    const m = tf.reshape(tf.cast(full, "float32"), [full.shape[0]!, 1, 1, full.shape[1]!]);
    scores = tf.add(scores, tf.mul(tf.sub(1, m), -1e9));
  }
  let probs = tf.softmax(scores);
  if (o.dropout > 0) probs = dropout(probs, o.dropout, s);
  const ctx = tf.reshape(tf.transpose(tf.matMul(probs, V), [0, 2, 1, 3]), [q.shape[0]!, q.shape[1]!, heads * kd]);
  return proj(ctx, w.output);
}

/** One index along an axis, that axis removed (negative index and axis count from the end). */
export function take(x: tf.Tensor, index: number, axis: number): tf.Tensor {
  const ax = axis < 0 ? axis + x.rank : axis;
  const n = x.shape[ax]!;
  const i = index < 0 ? index + n : index;
  return tf.squeeze(tf.slice(x, x.shape.map((_, k) => (k === ax ? i : 0)), x.shape.map((_, k) => (k === ax ? 1 : -1))), [ax]);
}

/** The entries start ≤ i < end along an axis (negatives count from the end; end null: to the end). */
export function sliceAxis(x: tf.Tensor, start: number, end: number | null, axis: number, step = 1): tf.Tensor {
  const ax = axis < 0 ? axis + x.rank : axis;
  const n = x.shape[ax]!;
  const a = start < 0 ? start + n : start;
  const b = end === null ? n : end < 0 ? end + n : end;
  if (step === 1) return tf.slice(x, x.shape.map((_, k) => (k === ax ? a : 0)), x.shape.map((_, k) => (k === ax ? b - a : -1)));
  // Every step-th entry (tfjs's stridedSlice has no gradient): the (m - 1)·step + 1 entries from a, padded to
  // m·step, seen as [m, step] along the axis, the first of each row kept — slice, pad and reshape only.
  const m = Math.ceil((b - a) / step);
  const span = tf.slice(x, x.shape.map((_, k) => (k === ax ? a : 0)), x.shape.map((_, k) => (k === ax ? (m - 1) * step + 1 : -1)));
  const full = tf.pad(span, x.shape.map((_, k) => (k === ax ? [0, step - 1] : [0, 0])) as [number, number][]);
  const rows = tf.reshape(full, [...x.shape.slice(0, ax), m, step, ...x.shape.slice(ax + 1)]);
  const first = tf.slice(rows, rows.shape.map(() => 0), rows.shape.map((d, k) => (k === ax + 1 ? 1 : -1)));
  return tf.reshape(first, [...x.shape.slice(0, ax), m, ...x.shape.slice(ax + 1)]);
}

/** Removes an axis of size 1 (negative counts from the end). */
export function squeezeAxis(x: tf.Tensor, axis: number): tf.Tensor {
  return tf.squeeze(x, [axis < 0 ? axis + x.rank : axis]);
}

/** Inserts an axis of size 1 at `axis` of the result (negative counts from the result's end). */
export function expandDims(x: tf.Tensor, axis: number): tf.Tensor {
  return tf.expandDims(x, axis < 0 ? axis + x.rank + 1 : axis);
}

/** The language's dtypes as TensorFlow.js holds them (it has no f16, f64, i8 or i64 tensors). */
export const TFJS_DTYPE = { f16: "float32", f32: "float32", f64: "float32", i8: "int32", i32: "int32", i64: "int32", bool: "bool" } as const;
