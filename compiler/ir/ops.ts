// THE op registry: every layer and tensor operation of the language, with its signature, its shape and
// dtype rule, the weights it owns and its FLOP count. Record<OpKind, OpDef> makes tsc flag a missing rule.
import { diag, type Diagnostic, type DiagnosticKey } from "../diagnostics.js";
import { addDim, ceilDiv, dimEq, divExact, fmtShape, isConst, mulDim, productDims, windowOut, type Dim, type Shape } from "./dims.js";
import { explicitAmounts } from "./padding.js";
import { ownNamesOnly } from "../own.js";
import { ACTIVATIONS, p, type Signature } from "./signature.js";
import { errorText, guard, onPlugins, PluginError, type LoadedPlugin, type PluginOp } from "../plugin/api.js";
import { DTYPES, FLOAT_DTYPES, INT_DTYPES, type AttrValue, type DType, type IRDimSymbol, type IRParam, type IRSpan } from "./types.js";

export interface TensorInfo {
  shape: Shape;
  dtype: DType;
  /** A literal scalar from the source (x * 0.5): it takes the type of the other operand. */
  weak?: boolean;
}

export interface WeightSpec {
  role: string;
  shape: number[];
  init: string;
  trainable: boolean;
}

export interface InferResult extends TensorInfo {
  weights?: WeightSpec[];
}

export interface InferCtx {
  ins: TensorInfo[];
  attrs: Record<string, AttrValue>;
  dims: ReadonlyMap<string, IRDimSymbol>;
  /** Weights already created for another layer (tied_dense reads its embedding's table). */
  paramsOf(layer: string): IRParam[];
  span: IRSpan;
  diagnostics: Diagnostic[];
  /** How to name each input in messages: its binding, else its layer name. */
  inputNames: string[];
}

export type OpCategory = "core" | "conv" | "pool" | "norm" | "recurrent" | "attention" | "embedding" | "shape" | "math" | "activation" | "plugin";

export interface OpDef extends Signature {
  category: OpCategory;
  /** How many tensor inputs: [min, max]. */
  inputs: readonly [number, number];
  /** Internal ops cannot be called from .nnet source. */
  internal?: boolean;
  infer(c: InferCtx): InferResult | null;
  /** FLOPs for one sample: input and output shapes have the batch dimension set to 1. */
  flops?(ins: number[][], out: number[], a: Record<string, AttrValue>): number;
  /** A plugin's op (compiler/plugin/api.ts): its plugin's name and config file. */
  plugin?: { name: string; file: string };
}

// ── helpers shared by the rules ───────────────────────────────────────────────────────────────────

function fail<K extends DiagnosticKey>(c: InferCtx, key: K, args: Parameters<typeof diag<K>>[2]): null {
  c.diagnostics.push(diag(key, c.span, args));
  return null;
}

const isFloat = (d: DType) => FLOAT_DTYPES.includes(d);
const isInt = (d: DType) => INT_DTYPES.includes(d);

function needFloat(c: InferCtx, op: string, i = 0): boolean {
  const d = c.ins[i]!.dtype;
  if (isFloat(d)) return true;
  fail(c, "dtypeMismatch", { op, expected: "a float tensor", got: `${d}${fmtShape(c.ins[i]!.shape)}`, hint: isInt(d) ? "integer inputs are token ids: use embedding, or cast(f32)" : "add cast(f32)" });
  return false;
}

function needRank(c: InferCtx, op: string, ranks: number[], layout: string, hint?: string): boolean {
  const s = c.ins[0]!.shape;
  if (ranks.includes(s.length)) return true;
  fail(c, "rankMismatch", { op, expected: layout, got: fmtShape(s), ...(hint ? { hint } : {}) });
  return false;
}

/** A feature dimension that weights depend on must be a known number. */
function knownDim(c: InferCtx, op: string, d: Dim, what: string): d is number {
  if (isConst(d)) return true;
  fail(c, "rankMismatch", { op, expected: `a known ${what}`, got: `"${d}"`, hint: "weights need a fixed size: reshape or project to a numeric size first" });
  return false;
}

const int = (v: AttrValue) => v as number;
const pair = (v: AttrValue) => v as [number, number];
const last = <T>(a: readonly T[]) => a[a.length - 1]!;
const prod = (a: readonly number[]) => a.reduce((x, y) => x * y, 1);

function normAxis(c: InferCtx, op: string, axis: number, rank: number): number | null {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) return fail(c, "badAxis", { op, axis, rank });
  return a;
}

const glorot = (role: string, shape: number[]): WeightSpec => ({ role, shape, init: "glorot_uniform", trainable: true });
const zeros = (role: string, shape: number[], trainable = true): WeightSpec => ({ role, shape, init: "zeros", trainable });
const ones = (role: string, shape: number[], trainable = true): WeightSpec => ({ role, shape, init: "ones", trainable });

const activationParam = p("activation", "enum", { values: ACTIVATIONS, default: "linear", doc: "applied to the result" });
const bias = p("bias", "bool", { default: true, doc: "add a learned bias" });

/**
 * Spatial output size for convs and pools along spatial axis `i`, reporting a window that does not fit.
 * Explicit padding adds its two amounts; `ceil` is PyTorch's ceil_mode: the last window may run past the
 * padded input, but must start inside the input or its leading padding.
 */
function spatial(c: InferCtx, op: string, n: Dim, window: number, stride: number, padding: AttrValue, axis: string, i = 0, ceil = false): Dim | null {
  if (padding === "same" || padding === "causal") return ceilDiv(n, stride);
  // Explicit amounts are [begin, end] per spatial axis in order (compiler/ir/padding.ts).
  const [before, after] = Array.isArray(padding) ? [padding[2 * i] as number, padding[2 * i + 1] as number] : [0, 0];
  if (ceil) {
    if (!isConst(n)) return fail(c, "rankMismatch", { op, expected: `a known ${axis} with ceil_mode: true`, got: `"${n}"`, hint: "ceil_mode's last window depends on the size: give the input a numeric size, or use ceil_mode: false" });
    if (n + before + after < window) return fail(c, "windowTooLarge", { op, axis, size: String(n), window: String(window) });
    let out = Math.ceil((n + before + after - window) / stride) + 1;
    if ((out - 1) * stride >= n + before) out--;
    return out;
  }
  const out = windowOut(n, window, stride, before + after);
  if (isConst(out) && out < 1) return fail(c, "windowTooLarge", { op, axis, size: String(n), window: String(window) });
  return out;
}

function elementwise(name: string, doc: string, cost = 1, extra: Signature["params"] = []): OpDef {
  return {
    category: "activation",
    doc,
    inputs: [1, 1],
    params: extra,
    infer: (c) => (needFloat(c, name) ? { ...c.ins[0]! } : null),
    flops: (_i, out) => cost * prod(out),
  };
}

/**
 * THE crop rule of conv2d_transpose's "same" padding, as TensorFlow's: of the (h - 1)·stride + kernel canvas keep
 * h·stride — crop floor((k - s) / 2) before and the rest after, or, when the kernel is smaller than the stride,
 * add s - k zero rows after (`extra`). Per spatial axis; "valid" keeps the whole canvas.
 */
export function transposeSame(kernel: readonly number[], stride: readonly number[], padding: unknown): { before: number[]; after: number[]; extra: number[] } {
  const same = padding === "same";
  const crop = kernel.map((k, i) => (same ? Math.max(0, k - stride[i]!) : 0));
  const before = crop.map((t) => Math.floor(t / 2));
  return { before, after: crop.map((t, i) => t - before[i]!), extra: kernel.map((k, i) => (same ? Math.max(0, stride[i]! - k) : 0)) };
}

/**
 * THE range rule of slice along an axis of size n: Python's start:end (negatives count from the end, a null
 * end is n) without Python's silent clamping — out of range is an error. Over a symbolic size n the result's
 * size must be a dimension: a start counted from the end (n - k) with an end counted from the start is refused.
 */
export function sliceRange(n: Dim, start: number, end: number | null): { size: Dim } | { bad: "index"; index: number; size: number } | { bad: "empty"; range: string } {
  if (isConst(n)) {
    const a = start < 0 ? start + n : start;
    if (a < 0 || a >= n) return { bad: "index", index: start, size: n };
    const b = end === null ? n : end < 0 ? end + n : end;
    if (b < 0 || b > n) return { bad: "index", index: end!, size: n };
    if (b <= a) return { bad: "empty", range: `above start (${start}); the slice would be empty` };
    return { size: b - a };
  }
  if (end === null) return { size: start < 0 ? -start : addDim(n, -start) };
  if (start >= 0 && end < 0) return { size: addDim(n, end - start) };
  if (start < 0 && end >= 0) return { bad: "empty", range: `negative, as start (${start}) is, along an axis of symbolic size ${n}: from the end both, or start from the start` };
  if (end <= start) return { bad: "empty", range: `above start (${start}); the slice would be empty` };
  return { size: end - start };
}

/** An element-wise math op (category math). */
function math(name: string, doc: string, extra: Signature["params"] = []): OpDef {
  return { ...elementwise(name, doc, 1, extra), category: "math" };
}

/** A reduction over per-sample axes (never the batch axis), keeping them as size 1 with keepdims. */
function reduction(name: string, doc: string): OpDef {
  return {
    category: "math",
    doc: `${doc} (never the batch axis, 0); keepdims: true keeps them as size 1`,
    inputs: [1, 1],
    params: [p("axis", "ints", { doc: "an axis or a list of axes; negative ones count from the end" }), p("keepdims", "bool", { default: false })],
    infer(c) {
      const s = c.ins[0]!.shape;
      if (name === "reduce_mean" && !needFloat(c, name)) return null;
      const axes: number[] = [];
      for (const a of c.attrs.axis as number[]) {
        const n = normAxis(c, name, a, s.length);
        if (n === null) return null;
        if (n === 0) return fail(c, "badAxis", { op: name, axis: 0, rank: s.length });
        if (!axes.includes(n)) axes.push(n);
      }
      const keep = c.attrs.keepdims === true;
      return { shape: s.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d])), dtype: c.ins[0]!.dtype };
    },
    flops: (ins) => prod(ins[0]!),
  };
}

/** Numpy broadcasting of two shapes. */
function broadcast(c: InferCtx, op: string, a: Shape, b: Shape, names?: [string, string]): Shape | null {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else return fail(c, "broadcastMismatch", { op, left: `${names ? `"${names[0]}" ` : ""}${fmtShape(a)}`, right: `${names ? `"${names[1]}" ` : ""}${fmtShape(b)}`, axis: i });
  }
  return out;
}

function binary(name: string, doc: string): OpDef {
  return {
    category: "math",
    doc,
    inputs: [2, 2],
    params: [],
    infer(c) {
      const [a, b] = c.ins as [TensorInfo, TensorInfo];
      const dtype = a.weak ? b.dtype : a.dtype;
      if (!a.weak && !b.weak && a.dtype !== b.dtype) return fail(c, "dtypeMismatch", { op: name, expected: `operands of one type`, got: `${a.dtype} and ${b.dtype}`, hint: "cast one of them" });
      const [na, nb] = c.inputNames;
      const shape = broadcast(c, name, a.shape, b.shape, na && nb ? [na, nb] : undefined);
      return shape ? { shape, dtype } : null;
    },
    flops: (_i, out) => prod(out),
  };
}

function pool(name: string, dims: 1 | 2, kind: "max" | "avg"): OpDef {
  const layout = dims === 2 ? "[batch, height, width, channels]" : "[batch, steps, channels]";
  return {
    category: "pool",
    doc: `${kind} pooling over ${dims === 2 ? "height and width" : "steps"}`,
    inputs: [1, 1],
    params: [
      p("size", dims === 2 ? "int2" : "int", { default: 2, min: 1 }),
      p("stride", dims === 2 ? "int2" : "int", { default: null, min: 1, doc: "defaults to size" }),
      p("padding", "padding", { values: ["valid", "same"], default: "valid", min: 0, symmetric: true, dims, doc: `valid, same (TensorFlow's: the odd ${dims === 2 ? "pixel" : "step"} at the end${kind === "avg" ? `, averages over real ${dims === 2 ? "pixels" : "values"} only` : ""}), or PyTorch's padding=: p${dims === 2 ? " or [ph, pw]" : ""} on both sides, at most half the window${kind === "avg" ? " (zeros counted in the average: count_include_pad=True)" : " (padded with −∞)"}` }),
      p("ceil_mode", "bool", { default: false, doc: "PyTorch's ceil_mode: a last, partial window (it must start inside the input or its leading padding)" }),
    ],
    infer(c) {
      if (!needRank(c, name, [dims + 2], layout) || !needFloat(c, name)) return null;
      const s = c.ins[0]!.shape;
      const size = dims === 2 ? pair(c.attrs.size!) : [int(c.attrs.size!)];
      const stride = c.attrs.stride === null ? size : dims === 2 ? pair(c.attrs.stride!) : [int(c.attrs.stride!)];
      const fixed = Array.isArray(c.attrs.padding) ? explicitAmounts(c.attrs.padding, dims) : null;
      if (fixed) {
        for (let i = 0; i < dims; i++) {
          if (2 * fixed[i]![0] > size[i]!) return fail(c, "outOfRange", { callee: name, name: "padding", value: `${fixed[i]![0]}${dims === 2 ? ` (${i === 0 ? "height" : "width"})` : ""}`, range: `at most half the window (${size[i]}), as PyTorch requires: every window keeps a real ${dims === 2 ? "pixel" : "step"}` });
        }
      }
      const ceil = c.attrs.ceil_mode === true;
      if (ceil && c.attrs.padding === "same") return fail(c, "outOfRange", { callee: name, name: "ceil_mode", value: "true", range: "false with padding: same (same already covers the input)" });
      const out: Dim[] = [s[0]!];
      for (let i = 0; i < dims; i++) {
        const o = spatial(c, name, s[1 + i]!, size[i]!, stride[i]!, c.attrs.padding!, dims === 2 ? (i === 0 ? "height" : "width") : "steps", i, ceil);
        if (o === null) return null;
        out.push(o);
      }
      out.push(last(s));
      return { shape: out, dtype: c.ins[0]!.dtype };
    },
    flops: (_i, out, a) => prod(out) * prod(dims === 2 ? pair(a.size!) : [int(a.size!)]),
  };
}

function globalPool(name: string, dims: 1 | 2, kind: "max" | "avg"): OpDef {
  return {
    category: "pool",
    doc: `${kind} over all ${dims === 2 ? "positions" : "steps"}: [batch, …, channels] → [batch, channels]`,
    inputs: [1, 1],
    params: [],
    infer(c) {
      if (!needRank(c, name, [dims + 2], dims === 2 ? "[batch, height, width, channels]" : "[batch, steps, channels]") || !needFloat(c, name)) return null;
      const s = c.ins[0]!.shape;
      return { shape: [s[0]!, last(s)], dtype: c.ins[0]!.dtype };
    },
    flops: (ins) => prod(ins[0]!),
  };
}

function recurrent(name: "lstm" | "gru", gates: number): OpDef {
  return {
    category: "recurrent",
    doc: `${name.toUpperCase()} over [batch, steps, features]`,
    inputs: [1, 1],
    params: [
      p("units", "int", { min: 1 }),
      p("return_sequences", "bool", { default: false }),
      p("bidirectional", "bool", { default: false }),
      ...(name === "gru" ? [p("reset_after", "bool", { default: true })] : []),
    ],
    infer(c) {
      if (!needRank(c, name, [3], "[batch, steps, features]") || !needFloat(c, name)) return null;
      const s = c.ins[0]!.shape;
      const f = last(s);
      if (!knownDim(c, name, f, "feature size")) return null;
      const u = int(c.attrs.units!);
      const dirs = c.attrs.bidirectional ? 2 : 1;
      const weights: WeightSpec[] = [];
      for (const dir of dirs === 2 ? ["forward/", "backward/"] : [""]) {
        weights.push(glorot(`${dir}kernel`, [f, gates * u]));
        weights.push({ role: `${dir}recurrent_kernel`, shape: [u, gates * u], init: "orthogonal", trainable: true });
        const resetAfter = name === "gru" && c.attrs.reset_after !== false;
        weights.push(name === "lstm" ? { role: `${dir}bias`, shape: [gates * u], init: "lstm_bias", trainable: true } : zeros(`${dir}bias`, resetAfter ? [2, gates * u] : [gates * u]));
      }
      const out = c.attrs.return_sequences ? [s[0]!, s[1]!, u * dirs] : [s[0]!, u * dirs];
      return { shape: out, dtype: c.ins[0]!.dtype, weights };
    },
    flops(ins, _out, a) {
      const [, t, f] = ins[0]! as [number, number, number];
      const u = int(a.units!);
      return (a.bidirectional ? 2 : 1) * t * (2 * gates * u * (f + u) + 10 * u);
    },
  };
}

// ── the registry ─────────────────────────────────────────────────────────────────────────────────

export type OpKind =
  | "input" | "constant"
  | "dense" | "tied_dense" | "parameter"
  | "conv1d" | "conv2d" | "depthwise_conv2d" | "separable_conv2d" | "conv2d_transpose" | "conv1d_transpose"
  | "max_pool1d" | "avg_pool1d" | "max_pool2d" | "avg_pool2d"
  | "global_avg_pool1d" | "global_max_pool1d" | "global_avg_pool2d" | "global_max_pool2d"
  | "zero_pad2d" | "upsample2d"
  | "batchnorm" | "layernorm" | "rmsnorm" | "groupnorm" | "instancenorm" | "dropout"
  | "embedding" | "pos_embedding"
  | "lstm" | "gru" | "attention"
  | "flatten" | "reshape" | "transpose" | "concat" | "take" | "slice" | "squeeze" | "expand_dims" | "cast"
  | "add" | "sub" | "mul" | "div" | "matmul"
  | "relu" | "relu6" | "gelu" | "silu" | "sigmoid" | "tanh" | "softmax" | "leaky_relu" | "elu" | "identity"
  | "exp" | "log" | "sqrt" | "abs" | "neg" | "square" | "pow" | "clip"
  | "softplus" | "mish" | "hardswish" | "hardsigmoid"
  | "reduce_mean" | "reduce_sum" | "reduce_max" | "reduce_min"
  | "sample_normal" | "random_normal_like";

function convCommon(c: InferCtx, name: string, dims: 1 | 2, layout: string): { s: Shape; ch: number; out: Dim[]; k: number[] } | null {
  if (!needRank(c, name, [dims + 2], layout, dims === 2 && c.ins[0]!.shape.length === 2 ? "reshape the features into an image first, e.g. reshape([28, 28, 1])" : undefined)) return null;
  if (!needFloat(c, name)) return null;
  const s = c.ins[0]!.shape;
  const ch = last(s);
  if (!knownDim(c, name, ch, "channel count")) return null;
  const k = dims === 2 ? pair(c.attrs.kernel!) : [int(c.attrs.kernel!)];
  const st = dims === 2 ? pair(c.attrs.stride!) : [int(c.attrs.stride!)];
  const dl = dims === 2 ? pair(c.attrs.dilation!) : [int(c.attrs.dilation!)];
  if (st.some((v) => v > 1) && dl.some((v) => v > 1)) {
    c.diagnostics.push(diag("outOfRange", c.span, { callee: name, name: "stride", value: String(st.join("×")), range: "1 when dilation is above 1 (a dilated convolution cannot also be strided; add a pooling or strided layer after it)" }));
    return null;
  }
  const out: Dim[] = [s[0]!];
  for (let i = 0; i < dims; i++) {
    const eff = (k[i]! - 1) * dl[i]! + 1;
    const o = spatial(c, name, s[1 + i]!, eff, st[i]!, c.attrs.padding!, dims === 2 ? (i === 0 ? "height" : "width") : "steps", i);
    if (o === null) return null;
    out.push(o);
  }
  return { s, ch, out, k };
}

function convParams(dims: 1 | 2, filters: boolean, extra: Signature["params"] = []): Signature["params"] {
  const t = dims === 2 ? "int2" : "int";
  return [
    ...(filters ? [p("filters", "int", { min: 1 })] : []),
    p("kernel", t, { min: 1 }),
    p("stride", t, { default: 1, min: 1 }),
    dims === 1
      ? p("padding", "padding", { values: ["valid", "same", "causal"], default: "valid", min: 0, dims: 1, doc: "valid, same (TensorFlow's: the odd step at the end), causal (all of it at the start), or explicit zeros as PyTorch's padding=: p on both ends, or [left, right]" })
      : p("padding", "padding", { values: ["valid", "same"], default: "valid", min: 0, doc: "valid, same (TensorFlow's: the odd pixel at the end), or explicit zeros as PyTorch's padding=: p on every side, [ph, pw], or [top, bottom, left, right]" }),
    p("dilation", t, { default: 1, min: 1 }),
    ...extra,
    bias,
    activationParam,
  ];
}

export const OPS: Record<OpKind, OpDef> = {
  input: { category: "core", doc: "a model or block input", inputs: [0, 0], params: [], internal: true, infer: () => null },
  constant: {
    category: "core",
    doc: "a scalar constant from an expression such as x * 0.5",
    inputs: [0, 0],
    params: [p("value", "float")],
    internal: true,
    infer: () => ({ shape: [], dtype: "f32" }),
  },

  dense: {
    category: "core",
    doc: "fully connected layer on the last axis: [batch, …, in] → [batch, …, units]",
    inputs: [1, 1],
    params: [p("units", "int", { min: 1 }), activationParam, bias],
    infer(c) {
      const s = c.ins[0]!.shape;
      if (s.length < 2 || s.length > 3) {
        return fail(c, "rankMismatch", { op: "dense", expected: "[batch, features] or [batch, steps, features]", got: fmtShape(s), hint: s.length > 3 ? `add flatten before dense to get [${s[0]}, ${String(productDims(s.slice(1)))}]` : "dense needs a batch dimension and a feature dimension" });
      }
      if (!needFloat(c, "dense")) return null;
      const f = last(s);
      if (!knownDim(c, "dense", f, "feature size")) return null;
      const u = int(c.attrs.units!);
      const weights = [glorot("kernel", [f, u]), ...(c.attrs.bias ? [zeros("bias", [u])] : [])];
      return { shape: [...s.slice(0, -1), u], dtype: c.ins[0]!.dtype, weights };
    },
    flops: (ins, out, a) => 2 * last(ins[0]!) * prod(out) + (a.bias ? prod(out) : 0),
  },
  tied_dense: {
    category: "core",
    doc: "projection onto an embedding's table transposed (tied input/output embeddings): [batch, …, dim] → [batch, …, vocab]",
    inputs: [1, 1],
    params: [p("layer", "layer", { doc: "the embedding layer whose table is shared" }), p("bias", "bool", { default: false })],
    infer(c) {
      const table = c.paramsOf(String(c.attrs.layer)).find((w) => w.role === "embeddings");
      if (!table) return fail(c, "argumentType", { callee: "tied_dense", name: "layer", expected: "an embedding layer instance that is used before this point", got: `"${String(c.attrs.layer)}"` });
      if (!needFloat(c, "tied_dense")) return null;
      const s = c.ins[0]!.shape;
      const [vocab, dim] = table.shape as [number, number];
      if (last(s) !== dim) return fail(c, "matmulMismatch", { left: fmtShape(s), right: `${fmtShape([dim, vocab])} (the transposed table of "${String(c.attrs.layer)}")`, sizes: `${String(last(s))} vs ${dim}` });
      return { shape: [...s.slice(0, -1), vocab], dtype: c.ins[0]!.dtype, weights: c.attrs.bias ? [zeros("bias", [vocab])] : [] };
    },
    flops: (ins, out, a) => 2 * last(ins[0]!) * prod(out) + (a.bias ? prod(out) : 0),
  },

  parameter: {
    category: "core",
    doc: "a free learned tensor of per-sample shape `shape`, the same for every sample: the input gives only the batch size (ViT's class token: concat(x -> parameter([1, 768]), x, axis: 1)); weight `value` of that shape",
    inputs: [1, 1],
    params: [
      p("shape", "ints", { doc: "the per-sample shape, e.g. [1, 768] (a number: one axis)" }),
      p("init", "enum", { values: ["zeros", "ones", "normal"], default: "zeros", doc: "normal: N(0, 0.02²), ViT's and BERT's" }),
    ],
    infer(c) {
      const shape = c.attrs.shape as number[];
      const bad = shape.find((d) => d < 1 || d > 1 << 24);
      if (!shape.length || bad !== undefined) return fail(c, "outOfRange", { callee: "parameter", name: "shape", value: `[${shape.join(", ")}]`, range: "one or more sizes from 1 to 16,777,216" });
      if (prod(shape) > 1 << 28) return fail(c, "outOfRange", { callee: "parameter", name: "shape", value: `[${shape.join(", ")}]`, range: "at most 268,435,456 values in all" });
      const init = c.attrs.init === "normal" ? "normal_002" : String(c.attrs.init);
      return { shape: [c.ins[0]!.shape[0]!, ...shape], dtype: "f32", weights: [{ role: "value", shape: [...shape], init, trainable: true }] };
    },
  },

  conv1d: {
    category: "conv",
    doc: "1-D convolution: [batch, steps, channels] → [batch, steps', filters]",
    inputs: [1, 1],
    params: convParams(1, true, [p("groups", "int", { default: 1, min: 1 })]),
    infer(c) {
      const r = convCommon(c, "conv1d", 1, "[batch, steps, channels]");
      if (!r) return null;
      const g = int(c.attrs.groups!);
      const f = int(c.attrs.filters!);
      if (r.ch % g) return fail(c, "groupsDivide", { op: "conv1d", what: "input channels", value: String(r.ch), groups: g });
      if (f % g) return fail(c, "groupsDivide", { op: "conv1d", what: "filters", value: String(f), groups: g });
      return { shape: [...r.out, f], dtype: c.ins[0]!.dtype, weights: [glorot("kernel", [r.k[0]!, r.ch / g, f]), ...(c.attrs.bias ? [zeros("bias", [f])] : [])] };
    },
    flops: (ins, out, a) => 2 * int(a.kernel!) * (last(ins[0]!) / int(a.groups!)) * prod(out) + (a.bias ? prod(out) : 0),
  },
  conv2d: {
    category: "conv",
    doc: "2-D convolution, NHWC: [batch, height, width, channels] → [batch, height', width', filters]",
    inputs: [1, 1],
    params: convParams(2, true, [p("groups", "int", { default: 1, min: 1 })]),
    infer(c) {
      const r = convCommon(c, "conv2d", 2, "[batch, height, width, channels]");
      if (!r) return null;
      const g = int(c.attrs.groups!);
      const f = int(c.attrs.filters!);
      if (r.ch % g) return fail(c, "groupsDivide", { op: "conv2d", what: "input channels", value: String(r.ch), groups: g });
      if (f % g) return fail(c, "groupsDivide", { op: "conv2d", what: "filters", value: String(f), groups: g });
      return { shape: [...r.out, f], dtype: c.ins[0]!.dtype, weights: [glorot("kernel", [r.k[0]!, r.k[1]!, r.ch / g, f]), ...(c.attrs.bias ? [zeros("bias", [f])] : [])] };
    },
    flops: (ins, out, a) => 2 * prod(pair(a.kernel!)) * (last(ins[0]!) / int(a.groups!)) * prod(out) + (a.bias ? prod(out) : 0),
  },
  depthwise_conv2d: {
    category: "conv",
    doc: "depthwise 2-D convolution: each channel convolved on its own (times multiplier)",
    inputs: [1, 1],
    params: convParams(2, false, [p("multiplier", "int", { default: 1, min: 1 })]),
    infer(c) {
      const r = convCommon(c, "depthwise_conv2d", 2, "[batch, height, width, channels]");
      if (!r) return null;
      const m = int(c.attrs.multiplier!);
      return { shape: [...r.out, r.ch * m], dtype: c.ins[0]!.dtype, weights: [glorot("depthwise_kernel", [r.k[0]!, r.k[1]!, r.ch, m]), ...(c.attrs.bias ? [zeros("bias", [r.ch * m])] : [])] };
    },
    flops: (_ins, out, a) => 2 * prod(pair(a.kernel!)) * prod(out) + (a.bias ? prod(out) : 0),
  },
  separable_conv2d: {
    category: "conv",
    doc: "depthwise 2-D convolution followed by a 1×1 pointwise convolution",
    inputs: [1, 1],
    params: convParams(2, true, [p("multiplier", "int", { default: 1, min: 1 })]),
    infer(c) {
      const r = convCommon(c, "separable_conv2d", 2, "[batch, height, width, channels]");
      if (!r) return null;
      const m = int(c.attrs.multiplier!);
      const f = int(c.attrs.filters!);
      return {
        shape: [...r.out, f],
        dtype: c.ins[0]!.dtype,
        weights: [glorot("depthwise_kernel", [r.k[0]!, r.k[1]!, r.ch, m]), glorot("pointwise_kernel", [1, 1, r.ch * m, f]), ...(c.attrs.bias ? [zeros("bias", [f])] : [])],
      };
    },
    flops(ins, out, a) {
      const cm = last(ins[0]!) * int(a.multiplier!);
      const pos = prod(out.slice(0, -1));
      return 2 * prod(pair(a.kernel!)) * cm * pos + 2 * cm * prod(out) + (a.bias ? prod(out) : 0);
    },
  },
  conv2d_transpose: {
    category: "conv",
    doc: "transposed 2-D convolution (a learned upsampling, as Keras's Conv2DTranspose), NHWC: height and width grow to (h - 1)·stride + kernel (valid) or h·stride (same); kernel [kh, kw, filters, channels]",
    inputs: [1, 1],
    params: [p("filters", "int", { min: 1 }), p("kernel", "int2", { min: 1 }), p("stride", "int2", { default: 1, min: 1 }), p("padding", "enum", { values: ["valid", "same"], default: "valid" }), bias, activationParam],
    infer(c) {
      if (!needRank(c, "conv2d_transpose", [4], "[batch, height, width, channels]")) return null;
      if (!needFloat(c, "conv2d_transpose")) return null;
      const s = c.ins[0]!.shape;
      const ch = last(s);
      if (!knownDim(c, "conv2d_transpose", ch, "channel count")) return null;
      const k = pair(c.attrs.kernel!);
      const st = pair(c.attrs.stride!);
      const f = int(c.attrs.filters!);
      const same = c.attrs.padding === "same";
      const out = [0, 1].map((i) => (same ? mulDim(s[1 + i]!, st[i]!) : addDim(mulDim(addDim(s[1 + i]!, -1), st[i]!), k[i]!)));
      return { shape: [s[0]!, ...out, f], dtype: c.ins[0]!.dtype, weights: [glorot("kernel", [k[0]!, k[1]!, f, ch as number]), ...(c.attrs.bias ? [zeros("bias", [f])] : [])] };
    },
    flops: (ins, _out, a) => 2 * prod(pair(a.kernel!)) * last(ins[0]!) * int(a.filters!) * prod(ins[0]!.slice(0, -1)),
  },

  conv1d_transpose: {
    category: "conv",
    doc: "transposed 1-D convolution (a learned upsampling of steps, as PyTorch's ConvTranspose1d and Keras's Conv1DTranspose), [batch, steps, channels]: steps grow to (t - 1)·stride + kernel (valid) or t·stride (same, TensorFlow's crop); kernel [k, filters, channels]",
    inputs: [1, 1],
    params: [p("filters", "int", { min: 1 }), p("kernel", "int", { min: 1 }), p("stride", "int", { default: 1, min: 1 }), p("padding", "enum", { values: ["valid", "same"], default: "valid" }), bias, activationParam],
    infer(c) {
      if (!needRank(c, "conv1d_transpose", [3], "[batch, steps, channels]")) return null;
      if (!needFloat(c, "conv1d_transpose")) return null;
      const s = c.ins[0]!.shape;
      const ch = last(s);
      if (!knownDim(c, "conv1d_transpose", ch, "channel count")) return null;
      const [k, st, f] = [int(c.attrs.kernel!), int(c.attrs.stride!), int(c.attrs.filters!)];
      const out = c.attrs.padding === "same" ? mulDim(s[1]!, st) : addDim(mulDim(addDim(s[1]!, -1), st), k);
      return { shape: [s[0]!, out, f], dtype: c.ins[0]!.dtype, weights: [glorot("kernel", [k, f, ch as number]), ...(c.attrs.bias ? [zeros("bias", [f])] : [])] };
    },
    flops: (ins, _out, a) => 2 * int(a.kernel!) * last(ins[0]!) * int(a.filters!) * prod(ins[0]!.slice(0, -1)),
  },

  max_pool1d: pool("max_pool1d", 1, "max"),
  avg_pool1d: pool("avg_pool1d", 1, "avg"),
  max_pool2d: pool("max_pool2d", 2, "max"),
  avg_pool2d: pool("avg_pool2d", 2, "avg"),
  global_avg_pool1d: globalPool("global_avg_pool1d", 1, "avg"),
  global_max_pool1d: globalPool("global_max_pool1d", 1, "max"),
  global_avg_pool2d: globalPool("global_avg_pool2d", 2, "avg"),
  global_max_pool2d: globalPool("global_max_pool2d", 2, "max"),

  zero_pad2d: {
    category: "shape",
    doc: "pads height and width with zeros: padding p or [ph, pw] on each side",
    inputs: [1, 1],
    params: [p("padding", "int2", { default: 1, min: 0 })],
    infer(c) {
      if (!needRank(c, "zero_pad2d", [4], "[batch, height, width, channels]")) return null;
      const s = c.ins[0]!.shape;
      const [ph, pw] = pair(c.attrs.padding!);
      const add = (d: Dim, n: number) => (isConst(d) ? d + 2 * n : n === 0 ? d : `${d}+${2 * n}`);
      return { shape: [s[0]!, add(s[1]!, ph), add(s[2]!, pw), s[3]!], dtype: c.ins[0]!.dtype };
    },
  },
  upsample2d: {
    category: "shape",
    doc: "nearest-neighbour upsampling of height and width by an integer factor",
    inputs: [1, 1],
    params: [p("size", "int2", { default: 2, min: 1 })],
    infer(c) {
      if (!needRank(c, "upsample2d", [4], "[batch, height, width, channels]")) return null;
      const s = c.ins[0]!.shape;
      const [a, b] = pair(c.attrs.size!);
      return { shape: [s[0]!, mulDim(s[1]!, a), mulDim(s[2]!, b), s[3]!], dtype: c.ins[0]!.dtype };
    },
  },

  batchnorm: {
    category: "norm",
    doc: "batch normalization over the last axis; moving statistics count as non-trainable weights",
    inputs: [1, 1],
    params: [
      p("momentum", "float", { default: 0.99, min: 0, max: 1 }),
      p("epsilon", "float", { default: 1e-3, min: 0, exclusive: true }),
      p("center", "bool", { default: true }),
      p("scale", "bool", { default: true }),
    ],
    infer(c) {
      if (!needFloat(c, "batchnorm")) return null;
      const s = c.ins[0]!.shape;
      if (s.length < 2) return fail(c, "rankMismatch", { op: "batchnorm", expected: "[batch, …, channels]", got: fmtShape(s) });
      const ch = last(s);
      if (!knownDim(c, "batchnorm", ch, "channel count")) return null;
      const w: WeightSpec[] = [];
      if (c.attrs.scale) w.push(ones("gamma", [ch]));
      if (c.attrs.center) w.push(zeros("beta", [ch]));
      w.push(zeros("moving_mean", [ch], false), ones("moving_variance", [ch], false));
      return { shape: s, dtype: c.ins[0]!.dtype, weights: w };
    },
    flops: (_i, out) => 2 * prod(out),
  },
  layernorm: {
    category: "norm",
    doc: "layer normalization over the last axis",
    inputs: [1, 1],
    params: [p("epsilon", "float", { default: 1e-5, min: 0, exclusive: true })],
    infer(c) {
      if (!needFloat(c, "layernorm")) return null;
      const s = c.ins[0]!.shape;
      const ch = last(s);
      if (s.length < 2 || !knownDim(c, "layernorm", ch, "feature size")) return s.length < 2 ? fail(c, "rankMismatch", { op: "layernorm", expected: "[batch, …, features]", got: fmtShape(s) }) : null;
      return { shape: s, dtype: c.ins[0]!.dtype, weights: [ones("gamma", [ch]), zeros("beta", [ch])] };
    },
    flops: (_i, out) => 5 * prod(out),
  },
  rmsnorm: {
    category: "norm",
    doc: "root-mean-square normalization over the last axis (Llama, T5): x / √(mean(x²) + ε) · γ, no centring, no bias",
    inputs: [1, 1],
    params: [p("epsilon", "float", { default: 1e-6, min: 0, exclusive: true })],
    infer(c) {
      if (!needFloat(c, "rmsnorm")) return null;
      const s = c.ins[0]!.shape;
      const ch = last(s);
      if (s.length < 2 || !knownDim(c, "rmsnorm", ch, "feature size")) return s.length < 2 ? fail(c, "rankMismatch", { op: "rmsnorm", expected: "[batch, …, features]", got: fmtShape(s) }) : null;
      return { shape: s, dtype: c.ins[0]!.dtype, weights: [ones("gamma", [ch])] };
    },
    flops: (_i, out) => 4 * prod(out),
  },
  groupnorm: {
    category: "norm",
    doc: "group normalization (Wu & He, 2018; PyTorch's GroupNorm, Keras's GroupNormalization) over [batch, …, channels]: the channels split into `groups` groups, each sample's group normalized over its positions and channels, then a learned per-channel γ and β; independent of the batch",
    inputs: [1, 1],
    params: [p("groups", "int", { min: 1, doc: "how many groups the channels split into; it divides the channel count" }), p("epsilon", "float", { default: 1e-5, min: 0, exclusive: true })],
    infer(c) {
      if (!needFloat(c, "groupnorm")) return null;
      const s = c.ins[0]!.shape;
      if (s.length < 2) return fail(c, "rankMismatch", { op: "groupnorm", expected: "[batch, …, channels]", got: fmtShape(s) });
      const ch = last(s);
      if (!knownDim(c, "groupnorm", ch, "channel count")) return null;
      const g = int(c.attrs.groups!);
      if (ch % g) return fail(c, "groupsDivide", { op: "groupnorm", what: "channels", value: String(ch), groups: g });
      return { shape: s, dtype: c.ins[0]!.dtype, weights: [ones("gamma", [ch]), zeros("beta", [ch])] };
    },
    flops: (_i, out) => 5 * prod(out),
  },
  instancenorm: {
    category: "norm",
    doc: "instance normalization (PyTorch's InstanceNorm with affine: true) over [batch, positions…, channels]: each sample's channel normalized over its positions, then a learned per-channel γ and β; groupnorm with one channel per group",
    inputs: [1, 1],
    params: [p("epsilon", "float", { default: 1e-5, min: 0, exclusive: true })],
    infer(c) {
      if (!needFloat(c, "instancenorm")) return null;
      const s = c.ins[0]!.shape;
      if (s.length < 3) return fail(c, "rankMismatch", { op: "instancenorm", expected: "[batch, steps, channels] or [batch, height, width, channels]", got: fmtShape(s), hint: "instance normalization needs positions to normalize over; for [batch, features] use layernorm" });
      const ch = last(s);
      if (!knownDim(c, "instancenorm", ch, "channel count")) return null;
      return { shape: s, dtype: c.ins[0]!.dtype, weights: [ones("gamma", [ch]), zeros("beta", [ch])] };
    },
    flops: (_i, out) => 5 * prod(out),
  },
  dropout: {
    category: "norm",
    doc: "randomly zeroes a fraction of the values while training; identity at inference",
    inputs: [1, 1],
    params: [p("rate", "float", { min: 0, max: 1, maxExclusive: true, doc: "fraction dropped" })],
    infer: (c) => (needFloat(c, "dropout") ? { ...c.ins[0]! } : null),
  },

  embedding: {
    category: "embedding",
    doc: "looks up integer ids in a learned table: [batch, …] → [batch, …, dim]",
    inputs: [1, 1],
    params: [p("vocab", "int", { min: 1 }), p("dim", "int", { min: 1 })],
    infer(c) {
      const t = c.ins[0]!;
      if (!isInt(t.dtype)) return fail(c, "dtypeMismatch", { op: "embedding", expected: "integer ids (i32)", got: `${t.dtype}${fmtShape(t.shape)}`, hint: "declare the input as i32[…], or use dense for float features" });
      const d = int(c.attrs.dim!);
      return { shape: [...t.shape, d], dtype: "f32", weights: [{ role: "embeddings", shape: [int(c.attrs.vocab!), d], init: "embedding_uniform", trainable: true }] };
    },
  },
  pos_embedding: {
    category: "embedding",
    doc: "adds a learned positional embedding: [batch, steps, dim] → same shape",
    inputs: [1, 1],
    params: [p("max_len", "int", { min: 1 })],
    infer(c) {
      if (!needRank(c, "pos_embedding", [3], "[batch, steps, dim]") || !needFloat(c, "pos_embedding")) return null;
      const s = c.ins[0]!.shape;
      const max = int(c.attrs.max_len!);
      const seq = s[1]!;
      const bound = isConst(seq) ? seq : c.dims.get(seq)?.max;
      if (bound === undefined || bound > max) return fail(c, "seqTooLong", { op: "pos_embedding", dim: String(seq), max });
      const d = last(s);
      if (!knownDim(c, "pos_embedding", d, "width")) return null;
      return { shape: s, dtype: c.ins[0]!.dtype, weights: [{ role: "embeddings", shape: [max, d], init: "embedding_uniform", trainable: true }] };
    },
    flops: (_i, out) => prod(out),
  },

  lstm: recurrent("lstm", 4),
  gru: recurrent("gru", 3),
  attention: {
    category: "attention",
    doc: "multi-head attention: self-attention on one input [batch, steps, dim], cross-attention on (query, context); `mask` [batch, steps] marks real keys (1) and padding (0)",
    inputs: [1, 2],
    params: [
      p("heads", "int", { min: 1 }),
      p("key_dim", "int", { default: null, min: 1, doc: "per-head width; defaults to dim / heads" }),
      p("kv_heads", "int", { default: null, min: 1, doc: "key/value heads (grouped-query attention); defaults to heads" }),
      p("causal", "bool", { default: false, doc: "mask future positions" }),
      p("mask", "tensor", { default: false, doc: "a padding mask [batch, steps] of the keys: 1 for tokens, 0 for padding" }),
      p("rotary", "bool", { default: false, doc: "rotary position embeddings on queries and keys (Llama, GPT-NeoX)" }),
      p("rope_theta", "float", { default: 10000, min: 1, doc: "the rotary embedding's base" }),
      p("dropout", "float", { default: 0, min: 0, max: 1, maxExclusive: true }),
      bias,
    ],
    infer(c) {
      const hasMask = !!c.attrs.mask;
      const n = c.ins.length - (hasMask ? 1 : 0);
      const q = c.ins[0]!;
      const kv = n > 1 ? c.ins[1]! : q;
      for (const t of [q, kv]) {
        if (t.shape.length !== 3) return fail(c, "rankMismatch", { op: "attention", expected: "[batch, steps, dim]", got: fmtShape(t.shape) });
        if (!isFloat(t.dtype)) return fail(c, "dtypeMismatch", { op: "attention", expected: "a float tensor", got: t.dtype, hint: "embed token ids first" });
      }
      if (hasMask) {
        const m = c.ins[c.ins.length - 1]!;
        if (m.shape.length !== 2 || String(m.shape[1]) !== String(kv.shape[1])) return fail(c, "maskShape", { op: "attention", expected: `[batch, ${String(kv.shape[1])}]`, got: `${m.dtype}${fmtShape(m.shape)}` });
      }
      const d = last(q.shape);
      const dk = last(kv.shape);
      if (!knownDim(c, "attention", d, "width") || !knownDim(c, "attention", dk, "width")) return null;
      const h = int(c.attrs.heads!);
      let kd = c.attrs.key_dim as number | null;
      if (kd === null) {
        if (d % h) return fail(c, "headsDivide", { dim: String(d), heads: h });
        kd = d / h;
      }
      const kvh = (c.attrs.kv_heads as number | null) ?? h;
      if (h % kvh) return fail(c, "attentionGroups", { what: `heads: ${h}`, by: `kv_heads: ${kvh}`, hint: "each key/value head serves the same number of query heads: choose kv_heads dividing heads" });
      if (c.attrs.rotary && kd % 2) return fail(c, "attentionGroups", { what: `the per-head width ${kd}`, by: "2, as rotary embeddings need", hint: "rotary embeddings rotate pairs of features: choose an even key_dim" });
      const b = !!c.attrs.bias;
      const proj = (role: string, i: number, o: number) => [glorot(`${role}/kernel`, [i, o]), ...(b ? [zeros(`${role}/bias`, [o])] : [])];
      return {
        shape: q.shape,
        dtype: q.dtype,
        weights: [...proj("query", d, h * kd), ...proj("key", dk, kvh * kd), ...proj("value", dk, kvh * kd), ...proj("output", h * kd, d)],
      };
    },
    flops(ins, out, a) {
      const [, tq, d] = ins[0] as [number, number, number];
      const [, tk, dk] = (ins.length - (a.mask ? 1 : 0) > 1 ? ins[1]! : ins[0]) as [number, number, number];
      const h = int(a.heads!);
      const kd = (a.key_dim as number | null) ?? d / h;
      const kvh = (a.kv_heads as number | null) ?? h;
      const proj = 2 * tq * d * h * kd + 2 * 2 * tk * dk * kvh * kd + 2 * tq * h * kd * d;
      return proj + 2 * 2 * h * tq * tk * kd + 3 * h * tq * tk + (a.rotary ? 3 * (tq * h + tk * kvh) * kd : 0) + (a.bias ? h * kd * tq + 2 * kvh * kd * tk + prod(out) : 0);
    },
  },

  flatten: {
    category: "shape",
    doc: "[batch, a, b, …] → [batch, a·b·…]",
    inputs: [1, 1],
    params: [],
    infer(c) {
      const s = c.ins[0]!.shape;
      if (s.length < 2) return fail(c, "rankMismatch", { op: "flatten", expected: "[batch, …]", got: fmtShape(s) });
      return { shape: [s[0]!, productDims(s.slice(1))], dtype: c.ins[0]!.dtype };
    },
  },
  reshape: {
    category: "shape",
    doc: "reshapes each sample (the batch dimension is kept); one entry may be -1",
    inputs: [1, 1],
    params: [p("shape", "shape", { doc: "per-sample shape, e.g. [7, 7, 64] or [seq, 12, 64]" })],
    infer(c) {
      const s = c.ins[0]!.shape;
      const target = c.attrs.shape as (number | string)[];
      const total = productDims(s.slice(1));
      const known = productDims(target.filter((d) => d !== -1));
      const holes = target.filter((d) => d === -1).length;
      const to = `[${s[0]}, ${target.join(", ")}]`;
      if (holes > 1) return fail(c, "reshapeCount", { from: fmtShape(s), to });
      let out: Dim[] = target;
      if (holes === 1) {
        const rest = divExact(total, known);
        if (rest === undefined) return fail(c, "reshapeCount", { from: fmtShape(s), to });
        out = target.map((d) => (d === -1 ? rest : d));
      } else if (total !== known) return fail(c, "reshapeCount", { from: fmtShape(s), to });
      return { shape: [s[0]!, ...out], dtype: c.ins[0]!.dtype };
    },
  },
  transpose: {
    category: "shape",
    doc: "permutes axes; the permutation covers every axis and keeps the batch axis first",
    inputs: [1, 1],
    params: [p("perm", "ints")],
    infer(c) {
      const s = c.ins[0]!.shape;
      const perm = c.attrs.perm as number[];
      const ok = perm.length === s.length && perm[0] === 0 && [...perm].sort((a, b) => a - b).every((v, i) => v === i);
      if (!ok) return fail(c, "badPermutation", { perm: `[${perm.join(", ")}]`, rank: s.length });
      return { shape: perm.map((i) => s[i]!), dtype: c.ins[0]!.dtype };
    },
  },
  concat: {
    category: "shape",
    doc: "joins tensors along an axis",
    inputs: [2, Infinity],
    params: [p("axis", "int", { default: -1 })],
    infer(c) {
      const first = c.ins[0]!.shape;
      const axis = normAxis(c, "concat", int(c.attrs.axis!), first.length);
      if (axis === null) return null;
      if (axis === 0) return fail(c, "badAxis", { op: "concat", axis: 0, rank: first.length });
      const parts: Dim[] = [];
      for (const t of c.ins) {
        const same = t.shape.length === first.length && t.shape.every((d, i) => i === axis || d === first[i]);
        if (!same) return fail(c, "concatMismatch", { axis, shapes: c.ins.map((x) => fmtShape(x.shape)).join(" and ") });
        if (t.dtype !== c.ins[0]!.dtype) return fail(c, "dtypeMismatch", { op: "concat", expected: "operands of one type", got: c.ins.map((x) => x.dtype).join(" and ") });
        parts.push(t.shape[axis]!);
      }
      const known = parts.filter(isConst).reduce((x, y) => x + y, 0);
      const syms = parts.filter((d): d is string => !isConst(d));
      const counts = new Map<string, number>();
      for (const s of syms) counts.set(s, (counts.get(s) ?? 0) + 1);
      const terms = [...counts].map(([s, k]) => String(mulDim(k, s)));
      const along: Dim = terms.length === 0 ? known : [...terms, ...(known ? [String(known)] : [])].join("+");
      const shape = [...first];
      shape[axis] = along;
      return { shape, dtype: c.ins[0]!.dtype };
    },
  },
  take: {
    category: "shape",
    doc: "selects one index along an axis and removes that axis (e.g. the first token: take(0, axis: 1))",
    inputs: [1, 1],
    params: [p("index", "int"), p("axis", "int", { default: 1 })],
    infer(c) {
      const s = c.ins[0]!.shape;
      const axis = normAxis(c, "take", int(c.attrs.axis!), s.length);
      if (axis === null) return null;
      if (axis === 0) return fail(c, "badAxis", { op: "take", axis: 0, rank: s.length });
      const n = s[axis]!;
      const i = int(c.attrs.index!);
      if (isConst(n) && (i >= n || i < -n)) return fail(c, "indexOutOfRange", { op: "take", index: i, size: n });
      return { shape: s.filter((_, k) => k !== axis), dtype: c.ins[0]!.dtype };
    },
  },
  slice: {
    category: "shape",
    doc: "the entries start ≤ i < end along one axis, every step-th, as Python's x[:, start:end:step] (e.g. the first 3 channels: slice(0, 3, axis: -1); every other step: slice(0, step: 2)); negative start and end count from the end, a missing end is the axis's end; the axis is kept, with ceil((end - start) / step) entries",
    inputs: [1, 1],
    params: [
      p("start", "int", { doc: "the first entry kept" }),
      p("end", "int", { default: null, doc: "one past the last entry kept; none: to the end" }),
      p("axis", "int", { default: 1, doc: "never the batch axis, 0" }),
      p("step", "int", { default: 1, doc: "keep every step-th entry from start (positive: a slice never reverses)" }),
    ],
    infer(c) {
      const s = c.ins[0]!.shape;
      const axis = normAxis(c, "slice", int(c.attrs.axis!), s.length);
      if (axis === null) return null;
      if (axis === 0) return fail(c, "badAxis", { op: "slice", axis: 0, rank: s.length });
      const step = int(c.attrs.step!);
      if (step < 1) return fail(c, "outOfRange", { callee: "slice", name: "step", value: String(step), range: step === 0 ? "1 or more: a step of 0 never moves (step: 1 keeps every entry)" : "1 or more: a slice never reverses (Python's x[::-1]); slice with a positive step and reverse the order where the data is made" });
      const r = sliceRange(s[axis]!, int(c.attrs.start!), c.attrs.end as number | null);
      if ("bad" in r) {
        if (r.bad === "index") return fail(c, "indexOutOfRange", { op: "slice", index: r.index, size: r.size });
        return fail(c, "outOfRange", { callee: "slice", name: "end", value: String(c.attrs.end), range: r.range });
      }
      const shape = [...s];
      shape[axis] = step === 1 ? r.size : ceilDiv(r.size, step);
      return { shape, dtype: c.ins[0]!.dtype };
    },
  },
  squeeze: {
    category: "shape",
    doc: "removes an axis of size 1 (never the batch axis): [batch, 1, dim] → [batch, dim] with squeeze(1)",
    inputs: [1, 1],
    params: [p("axis", "int", { doc: "negative counts from the end" })],
    infer(c) {
      const s = c.ins[0]!.shape;
      const axis = normAxis(c, "squeeze", int(c.attrs.axis!), s.length);
      if (axis === null) return null;
      if (axis === 0) return fail(c, "badAxis", { op: "squeeze", axis: 0, rank: s.length });
      if (s[axis] !== 1) return fail(c, "rankMismatch", { op: "squeeze", expected: `an axis ${axis} of size 1`, got: fmtShape(s), hint: "only an axis of size 1 can be removed: reduce over it (reduce_mean), take one index (take), or reshape" });
      return { shape: s.filter((_, i) => i !== axis), dtype: c.ins[0]!.dtype };
    },
  },
  expand_dims: {
    category: "shape",
    doc: "inserts an axis of size 1 at `axis` of the result (never before the batch axis): [batch, dim] → [batch, 1, dim] with expand_dims(1), [batch, dim, 1] with expand_dims(-1)",
    inputs: [1, 1],
    params: [p("axis", "int", { doc: "the new axis's position in the result; negative counts from the result's end" })],
    infer(c) {
      const s = c.ins[0]!.shape;
      const axis = normAxis(c, "expand_dims", int(c.attrs.axis!), s.length + 1);
      if (axis === null) return null;
      if (axis === 0) return fail(c, "badAxis", { op: "expand_dims", axis: 0, rank: s.length + 1 });
      return { shape: [...s.slice(0, axis), 1, ...s.slice(axis)], dtype: c.ins[0]!.dtype };
    },
  },
  cast: {
    category: "shape",
    doc: "converts the element type",
    inputs: [1, 1],
    params: [p("dtype", "dtype")],
    infer: (c) => ({ shape: c.ins[0]!.shape, dtype: c.attrs.dtype as DType }),
  },

  add: binary("add", "elementwise sum with broadcasting (also written a + b)"),
  sub: binary("sub", "elementwise difference with broadcasting (also written a - b)"),
  mul: binary("mul", "elementwise product with broadcasting (also written a * b)"),
  div: binary("div", "elementwise quotient with broadcasting (also written a / b)"),
  matmul: {
    category: "math",
    doc: "matrix product over the last two axes, batched over the rest (also written a @ b)",
    inputs: [2, 2],
    params: [],
    infer(c) {
      const [a, b] = c.ins as [TensorInfo, TensorInfo];
      if (a.shape.length < 3 || a.shape.length !== b.shape.length) {
        return fail(c, "rankMismatch", { op: "matmul", expected: "two operands of the same rank, at least 3 ([batch, …, m, k] @ [batch, …, k, n])", got: `${fmtShape(a.shape)} and ${fmtShape(b.shape)}`, hint: "the first axis is the batch; for a learned projection use dense" });
      }
      if (a.dtype !== b.dtype) return fail(c, "dtypeMismatch", { op: "matmul", expected: "operands of one type", got: `${a.dtype} and ${b.dtype}` });
      const k1 = a.shape[a.shape.length - 1]!;
      const k2 = b.shape[b.shape.length - 2]!;
      if (k1 !== k2) {
        const swap = b.shape[b.shape.length - 1] === k1;
        return fail(c, "matmulMismatch", { left: fmtShape(a.shape), right: fmtShape(b.shape), sizes: `${k1} vs ${k2}`, ...(swap ? { hint: `transpose the right operand's last two axes first, e.g. -> transpose([${[...b.shape.keys()].slice(0, -2).join(", ")}, ${b.shape.length - 1}, ${b.shape.length - 2}])` } : {}) });
      }
      const batch = broadcast(c, "matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
      if (!batch) return null;
      return { shape: [...batch, a.shape[a.shape.length - 2]!, last(b.shape)], dtype: a.dtype };
    },
    flops: (ins, out) => 2 * last(ins[0]!) * prod(out),
  },

  relu: elementwise("relu", "max(x, 0)"),
  relu6: elementwise("relu6", "min(max(x, 0), 6)"),
  gelu: elementwise("gelu", "Gaussian error linear unit; approximate: true uses the tanh form (GPT-2)", 8, [p("approximate", "bool", { default: false })]),
  silu: elementwise("silu", "x · sigmoid(x) (swish)", 4),
  sigmoid: elementwise("sigmoid", "1 / (1 + e^-x)", 3),
  tanh: elementwise("tanh", "hyperbolic tangent", 3),
  softmax: {
    ...elementwise("softmax", "normalized exponentials along an axis", 3, [p("axis", "int", { default: -1 })]),
    infer(c) {
      if (!needFloat(c, "softmax")) return null;
      return normAxis(c, "softmax", int(c.attrs.axis!), c.ins[0]!.shape.length) === null ? null : { ...c.ins[0]! };
    },
  },
  leaky_relu: elementwise("leaky_relu", "x for x > 0, alpha · x otherwise", 1, [p("alpha", "float", { default: 0.2, min: 0 })]),
  elu: elementwise("elu", "x for x > 0, alpha · (e^x - 1) otherwise", 3, [p("alpha", "float", { default: 1, min: 0 })]),
  identity: { category: "core", doc: "returns its input", inputs: [1, 1], params: [], infer: (c) => ({ ...c.ins[0]! }) },
  softplus: elementwise("softplus", "log(1 + e^x)", 3),
  mish: elementwise("mish", "x · tanh(softplus(x)) (Misra, 2019)", 6),
  hardswish: elementwise("hardswish", "x · relu6(x + 3) / 6 (MobileNetV3)", 3),
  hardsigmoid: elementwise("hardsigmoid", "relu6(x + 3) / 6, as PyTorch's (MobileNetV3's gates)", 2),

  exp: math("exp", "e^x"),
  log: math("log", "natural logarithm (-inf at 0, NaN below)"),
  sqrt: math("sqrt", "square root (NaN below 0)"),
  abs: math("abs", "|x|"),
  neg: math("neg", "-x"),
  square: math("square", "x²"),
  pow: math("pow", "x to a constant power", [p("exponent", "float")]),
  clip: {
    ...math("clip", "x limited to [min, max]", [p("min", "float"), p("max", "float")]),
    infer(c) {
      if (!needFloat(c, "clip")) return null;
      if (Number(c.attrs.min) > Number(c.attrs.max)) return fail(c, "outOfRange", { callee: "clip", name: "max", value: String(c.attrs.max), range: `at least min (${String(c.attrs.min)})` });
      return { ...c.ins[0]! };
    },
  },
  sample_normal: {
    category: "math",
    doc: "a draw from N(mean, e^log_var), reparameterized (mean + e^(log_var / 2) · ε, ε ~ N(0, 1): gradients reach both inputs), as a VAE samples its code; while training only — elsewhere the mean — unless always: true",
    inputs: [2, 2],
    params: [p("always", "bool", { default: false, doc: "sample at inference too" })],
    infer(c) {
      if (!needFloat(c, "sample_normal")) return null;
      const [m, v] = c.ins as [TensorInfo, TensorInfo];
      if (m.shape.length !== v.shape.length || m.shape.some((d, i) => !dimEq(d, v.shape[i]!))) return fail(c, "broadcastMismatch", { op: "sample_normal", left: fmtShape(m.shape), right: fmtShape(v.shape), axis: m.shape.findIndex((d, i) => !dimEq(d, v.shape[i] ?? -1)) });
      return { ...m };
    },
    flops: (_ins, out) => 4 * prod(out),
  },
  random_normal_like: {
    category: "math",
    doc: "noise of x's shape drawn from N(0, std²) (x gives only the shape; no gradient reaches it), as Keras's GaussianNoise adds it: x + random_normal_like(x, std: 0.1); while training only — elsewhere zeros — unless always: true",
    inputs: [1, 1],
    params: [p("std", "float", { default: 1, min: 0, doc: "the standard deviation" }), p("always", "bool", { default: false, doc: "draw at inference too" })],
    infer: (c) => (needFloat(c, "random_normal_like") ? { ...c.ins[0]! } : null),
    flops: (_ins, out) => 2 * prod(out),
  },
  reduce_mean: reduction("reduce_mean", "the mean over the given axes"),
  reduce_sum: reduction("reduce_sum", "the sum over the given axes"),
  reduce_max: reduction("reduce_max", "the largest value over the given axes"),
  reduce_min: reduction("reduce_min", "the smallest value over the given axes"),
};
ownNamesOnly(OPS); // a layer may be named anything: OPS["constructor"] is no op

/** Every op source can call: the built-ins, then the loaded plugins' ops (kept up to date by the installer below). */
export const OP_NAMES: string[] = Object.keys(OPS).filter((k) => !OPS[k as OpKind].internal);

/** The names of the built-in ops (a plugin op may not take one). */
export const BUILTIN_OPS: ReadonlySet<string> = new Set(Object.keys(OPS));

/** A plugin op as an OpDef: its shape rule's message or exception becomes NN8007 or NN8006 at the layer. */
function pluginOpDef(op: PluginOp, from: LoadedPlugin): OpDef {
  const inputs: readonly [number, number] = typeof op.inputs === "number" ? [op.inputs, op.inputs] : op.inputs ? [op.inputs[0], op.inputs[1]] : [1, 1];
  const who = { plugin: from.plugin.name, file: from.file };
  return {
    category: "plugin",
    doc: op.doc,
    params: (op.params ?? []) as Signature["params"],
    inputs,
    plugin: { name: from.plugin.name, file: from.file },
    infer: (c) => {
      if (!op.shape) return needFloat(c, op.name) ? { ...c.ins[0]! } : null;
      let r: ReturnType<NonNullable<PluginOp["shape"]>>;
      try {
        r = guard(from, `op ${op.name}'s shape rule`, () => op.shape!(c.ins.map((t) => ({ shape: [...t.shape], dtype: t.dtype })), c.attrs));
      } catch (e) {
        return fail(c, "pluginThrew", { ...who, what: `op ${op.name}'s shape rule`, message: errorText(e instanceof PluginError ? e.error : e) });
      }
      if (typeof r === "string") return fail(c, "pluginShapeRule", { ...who, op: op.name, message: r, inputs: c.ins.map((t) => `${t.dtype}${fmtShape(t.shape)}`).join(", ") });
      if (!r || !Array.isArray(r.shape) || !r.shape.every((d) => (typeof d === "number" && Number.isInteger(d) && d >= 0) || typeof d === "string") || !(DTYPES as readonly string[]).includes(r.dtype)) {
        return fail(c, "pluginThrew", { ...who, what: `op ${op.name}'s shape rule`, message: `it returned ${JSON.stringify(r)?.slice(0, 120)}, not { shape: (number | string)[], dtype: ${DTYPES.join("|")} } or a message` });
      }
      return { shape: [...r.shape] as Shape, dtype: r.dtype as DType };
    },
    flops: (ins, out, a) => {
      if (!op.flops) return prod(out);
      const n = guard(from, `op ${op.name}'s flops`, () => op.flops!(ins, out, a));
      return typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : 0;
    },
  };
}

onPlugins((from) => {
  const names = (from.plugin.ops ?? []).map((op) => op.name);
  const table = OPS as Record<string, OpDef>;
  for (const op of from.plugin.ops ?? []) {
    table[op.name] = pluginOpDef(op, from);
    OP_NAMES.push(op.name);
  }
  return () => {
    for (const n of names) {
      delete table[n];
      const i = OP_NAMES.indexOf(n);
      if (i >= 0) OP_NAMES.splice(i, 1);
    }
  };
});

export function isOp(name: string): name is OpKind {
  return Object.prototype.hasOwnProperty.call(OPS, name) && !OPS[name as OpKind].internal;
}

/** Activations that may end a classifier head; used to warn when a loss expects logits. */
export const PROBABILITY_OPS: ReadonlySet<string> = new Set(["softmax", "sigmoid"]);
