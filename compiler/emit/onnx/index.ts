// ONNX export: a checked (and usually inference-optimized) IRModel plus its final weight values → an ONNX
// model (opset 17) as bytes. Pure: no tensors, no files. `LOWER: Record<OpKind, Lower>` is the op table; each
// entry computes what runtime/interpret.ts computes for that op (the reference), in ONNX operators.
//
// Layout: the IR is NHWC (channels last); ONNX's Conv and pools are NCHW. Every value carries the permutation
// its ONNX tensor has relative to the IR tensor (null: the IR's own layout). Convolutions and pools ask for
// channels-first and produce it; element-wise ops, batchnorm, padding, global pools and concat follow
// whatever layout their input has; everything else asks for the IR layout. A transpose is inserted only
// where a value is read in a layout it does not have (once per value and layout), so a CNN transposes
// at its input and before its flatten, not around every layer.
import { mergedKernels } from "../../../runtime/lora.js";
import { diag, type Diagnostic } from "../../diagnostics.js";
import { transposeSame, type OpKind } from "../../ir/ops.js";
import type { AttrValue as IRAttr, DType, IRModel, IRNode } from "../../ir/types.js";
import { spatialPads } from "../../ir/padding.js";
import { errorText, guard, onPlugins, pluginEntry, PluginError, type OnnxBuilder } from "../../plugin/api.js";
import { encodeModel, ONNX_DTYPE, type AttrValue, type DimMsg, type NodeMsg, type TensorMsg, type ValueInfoMsg } from "./proto.js";

export const OPSET = 17;
/** ONNX IR version 8 goes with opset 17 (ONNX 1.12). */
export const ONNX_IR_VERSION = 8;

/** A weight's final float32 values, in the IR's layout and shape. */
export interface FloatWeight {
  shape: readonly number[];
  data: Float32Array;
}

/** An int8 weight, symmetric, one scale per index of its last axis (runtime/quantize.ts). */
export interface Int8Weight {
  shape: readonly number[];
  q: Int8Array;
  scale: Float32Array;
}

export type ExportWeight = FloatWeight | Int8Weight;

export interface OnnxOptions {
  producerVersion: string;
  /** Extra metadata_props (e.g. where the weights came from). */
  metadata?: Record<string, string>;
}

export interface OnnxResult {
  bytes: Uint8Array | null;
  diagnostics: Diagnostic[];
  stats: { nodes: number; initializers: number; transposes: number; dequantized: number };
}

const DTYPES: Record<DType, number> = { f16: ONNX_DTYPE.FLOAT16, f32: ONNX_DTYPE.FLOAT, f64: ONNX_DTYPE.DOUBLE, i8: ONNX_DTYPE.INT8, i32: ONNX_DTYPE.INT32, i64: ONNX_DTYPE.INT64, bool: ONNX_DTYPE.BOOL };

/** A lowering that cannot express a layer's settings: becomes NN6001 with the layer's location. */
class Unsupported extends Error {
  constructor(readonly reason: string, readonly hint?: string) {
    super(reason);
  }
}

/** A value in the graph: its ONNX name, and the permutation of the IR tensor it holds (null: as the IR). */
interface Value {
  name: string;
  perm: readonly number[] | null;
  rank: number;
}

/** How a weight is rearranged for an ONNX operator: applied to the data (float) or as graph nodes (int8). */
type WeightStep = { perm: readonly number[] } | { reshape: readonly number[] } | { gather: { axis: number; index: readonly number[] } };

const ints = (v: readonly number[]): AttrValue => ({ kind: "ints", v });
const int = (v: number): AttrValue => ({ kind: "int", v });
const float = (v: number): AttrValue => ({ kind: "float", v });
const str = (v: string): AttrValue => ({ kind: "string", v });
const sameList = (a: readonly number[] | null, b: readonly number[] | null) => a === b || (!!a && !!b && a.length === b.length && a.every((x, i) => x === b[i]));
const channelsFirst = (rank: number) => [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
const inverse = (p: readonly number[]) => p.map((_, i) => p.indexOf(i));

function bytesOf(a: Float32Array | Float64Array | Int32Array | Int8Array | BigInt64Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Host transpose of a row-major array. */
function transposeHost<T extends Float32Array | Int8Array>(data: T, shape: readonly number[], perm: readonly number[]): { data: T; shape: number[] } {
  const r = shape.length;
  const out = new (data.constructor as { new (n: number): T })(data.length);
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(r);
  let s = 1;
  for (let i = r - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i]!;
  }
  const strides = perm.map((p) => inStrides[p]!);
  const idx = new Array<number>(r).fill(0);
  const n = data.length;
  let src = 0;
  for (let o = 0; o < n; o++) {
    out[o] = data[src]!;
    for (let k = r - 1; k >= 0; k--) {
      idx[k]!++;
      src += strides[k]!;
      if (idx[k]! < outShape[k]!) break;
      src -= strides[k]! * outShape[k]!;
      idx[k] = 0;
    }
  }
  return { data: out, shape: outShape };
}

/** Host gather of indices along one axis. */
function gatherHost(data: Float32Array, shape: readonly number[], axis: number, index: readonly number[]): { data: Float32Array; shape: number[] } {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = shape[axis]!;
  const out = new Float32Array(outer * index.length * inner);
  for (let o = 0; o < outer; o++) for (let j = 0; j < index.length; j++) out.set(data.subarray((o * n + index[j]!) * inner, (o * n + index[j]! + 1) * inner), (o * index.length + j) * inner);
  const s = [...shape];
  s[axis] = index.length;
  return { data: out, shape: s };
}

class Graph {
  readonly nodes: NodeMsg[] = [];
  readonly inits: TensorMsg[] = [];
  private names = new Set<string>();
  private consts = new Map<string, string>();
  private weightCache = new Map<string, string>();
  transposes = 0;
  dequantized = 0;
  /** The node being lowered: names and doc strings of the ONNX nodes it becomes. */
  current: IRNode | null = null;

  constructor(private readonly weights: ReadonlyMap<string, ExportWeight>) {}

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** Add a node; returns its (first) output's name. */
  op(type: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, outputs = 1, named?: string): string {
    const base = named ?? (this.current ? `${this.current.name}/${type}` : type);
    const outs = Array.from({ length: outputs }, (_, i) => this.fresh(outputs > 1 ? `${base}:${i}` : base));
    const n: NodeMsg = { op: type, inputs, outputs: outs, name: outs[0]!, attrs };
    if (this.current) n.doc = `${this.current.span.file}:${this.current.span.line}:${this.current.span.col}`;
    this.nodes.push(n);
    if (type === "Transpose") this.transposes++;
    return outs[0]!;
  }

  /** Every output of the last node added (LSTM and GRU have several). */
  outputsOfLast(): readonly string[] {
    return this.nodes[this.nodes.length - 1]!.outputs;
  }

  init(base: string, dtype: number, dims: readonly number[], raw: Uint8Array): string {
    const name = this.fresh(base);
    this.inits.push({ name, dtype, dims, raw });
    return name;
  }

  /** A constant int64 tensor (shared by every reader). */
  i64(values: readonly number[], scalar = false): string {
    const key = `i64:${scalar}:${values.join(",")}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.init(`const_i64_${this.consts.size}`, ONNX_DTYPE.INT64, scalar ? [] : [values.length], bytesOf(BigInt64Array.from(values.map((v) => BigInt(v)))));
      this.consts.set(key, name);
    }
    return name;
  }

  /** A constant scalar (or [n]-shaped) tensor of a dtype (shared by every reader). */
  scalar(value: number, dtype: DType = "f32"): string {
    const key = `${dtype}:${value}`;
    let name = this.consts.get(key);
    if (!name) {
      const t = DTYPES[dtype];
      const raw =
        t === ONNX_DTYPE.FLOAT ? bytesOf(Float32Array.of(value)) : t === ONNX_DTYPE.INT32 ? bytesOf(Int32Array.of(value)) : t === ONNX_DTYPE.INT64 ? bytesOf(BigInt64Array.of(BigInt(value))) : t === ONNX_DTYPE.INT8 ? bytesOf(Int8Array.of(value)) : t === ONNX_DTYPE.DOUBLE ? bytesOf(Float64Array.of(value)) : null;
      if (!raw) throw new Unsupported(`a constant of type ${dtype}`, "cast the other operand to f32 or i32 first");
      name = this.init(`const_${dtype}_${this.consts.size}`, t, [], raw);
      this.consts.set(key, name);
    }
    return name;
  }

  floatConst(base: string, data: Float32Array, dims: readonly number[]): string {
    return this.init(base, ONNX_DTYPE.FLOAT, dims, bytesOf(data));
  }

  /** A weight's values as float32 on the host (int8 dequantized), for constants computed at export. */
  hostFloat(param: string): FloatWeight {
    const w = this.weights.get(param);
    if (!w) throw new Error(`no value for weight "${param}"`);
    if ("data" in w) return w;
    const c = w.scale.length;
    const data = new Float32Array(w.q.length);
    for (let i = 0; i < data.length; i++) data[i] = w.q[i]! * w.scale[i % c]!;
    return { shape: w.shape, data };
  }

  /**
   * A weight as the ONNX operator wants it. Float weights are rearranged here and stored so; int8 weights
   * are stored as they are quantized (int8 + per-channel scales on their last axis) and dequantized by a
   * DequantizeLinear node, followed by the rearranging nodes (which onnxruntime folds when it loads).
   */
  weight(param: string, steps: readonly WeightStep[] = []): string {
    const key = `${param}|${JSON.stringify(steps)}`;
    const hit = this.weightCache.get(key);
    if (hit) return hit;
    const w = this.weights.get(param);
    if (!w) throw new Error(`no value for weight "${param}"`);
    let name: string;
    if ("data" in w) {
      let data = w.data;
      let shape = [...w.shape];
      for (const s of steps) {
        if ("perm" in s) ({ data, shape } = transposeHost(data, shape, s.perm));
        else if ("reshape" in s) shape = [...s.reshape];
        else ({ data, shape } = gatherHost(data, shape, s.gather.axis, s.gather.index));
      }
      name = this.init(steps.length ? `${param}:onnx` : param, ONNX_DTYPE.FLOAT, shape, bytesOf(data));
    } else {
      const deqKey = `${param}|`;
      let deq = this.weightCache.get(deqKey);
      if (!deq) {
        const q = this.init(`${param}:int8`, ONNX_DTYPE.INT8, w.shape, bytesOf(w.q));
        const scale = this.init(`${param}:scale`, ONNX_DTYPE.FLOAT, [w.scale.length], bytesOf(w.scale));
        const zero = this.init(`${param}:zero_point`, ONNX_DTYPE.INT8, [w.scale.length], new Uint8Array(w.scale.length));
        deq = this.op("DequantizeLinear", [q, scale, zero], w.shape.length > 1 ? { axis: int(w.shape.length - 1) } : {}, 1, param);
        this.dequantized++;
        this.weightCache.set(deqKey, deq);
      }
      name = deq;
      for (const s of steps) {
        if ("perm" in s) name = this.op("Transpose", [name], { perm: ints(s.perm) });
        else if ("reshape" in s) name = this.op("Reshape", [name, this.i64(s.reshape)]);
        else name = this.op("Gather", [name, this.i64(s.gather.index)], { axis: int(s.gather.axis) });
      }
    }
    this.weightCache.set(key, name);
    return name;
  }

  private layoutCache = new Map<string, string>();

  /** The value in the layout `perm` (null: the IR's), transposing once per value and layout. */
  as(v: Value, perm: readonly number[] | null): string {
    if (sameList(v.perm, perm)) return v.name;
    const key = `${v.name}|${perm ? perm.join(",") : "ir"}`;
    let name = this.layoutCache.get(key);
    if (!name) {
      // From v's layout back to the IR's, then on to `perm`, as one transpose.
      const toIr = v.perm ? inverse(v.perm) : [...Array(v.rank).keys()];
      const full = perm ? perm.map((p) => toIr[p]!) : toIr;
      name = full.every((p, i) => p === i) ? v.name : this.op("Transpose", [v.name], { perm: ints(full) });
      this.layoutCache.set(key, name);
    }
    return name;
  }
}

// ── the op table ───────────────────────────────────────────────────────────────────────────────────

interface LowerCtx {
  g: Graph;
  node: IRNode;
  a: Record<string, IRAttr>;
  x: Value[];
  /** The input nodes (a constant operand's value is read from its node). */
  inNodes: IRNode[];
  /** The weight of a role of this layer (`@name` for another layer's), rearranged by `steps`. */
  w(role: string, steps?: readonly WeightStep[]): string;
  /** An input in the IR's layout. */
  ir(i?: number): string;
}

type Lower = (c: LowerCtx) => Value;

const num = (v: IRAttr | undefined) => v as number;
const pairOf = (v: IRAttr | undefined): [number, number] => (typeof v === "number" ? [v, v] : (v as [number, number]));
const rankOf = (n: IRNode) => n.shape!.length;
const irValue = (name: string, node: IRNode): Value => ({ name, perm: null, rank: rankOf(node) });

/** The layer's activation on a value of rank `rank` whose last IR axis is ONNX axis `lastAxis`. */
function activate(g: Graph, x: string, act: string, lastAxis = -1): string {
  switch (act) {
    case "linear": return x;
    case "relu": return g.op("Relu", [x]);
    case "relu6": return g.op("Clip", [x, g.scalar(0), g.scalar(6)]);
    case "gelu": return gelu(g, x, false);
    case "gelu_tanh": return gelu(g, x, true);
    case "silu": return g.op("Mul", [x, g.op("Sigmoid", [x])]);
    case "sigmoid": return g.op("Sigmoid", [x]);
    case "tanh": return g.op("Tanh", [x]);
    case "softmax": return g.op("Softmax", [x], { axis: int(lastAxis) });
    case "leaky_relu": return g.op("LeakyRelu", [x], { alpha: float(0.2) });
    case "elu": return g.op("Elu", [x], { alpha: float(1) });
  }
  throw new Unsupported(`activation "${act}"`);
}

/** GELU (an ONNX operator only from opset 20): 0.5·x·(1 + erf(x/√2)), or the tanh form. */
function gelu(g: Graph, x: string, approximate: boolean): string {
  const half = g.op("Mul", [x, g.scalar(0.5)]);
  if (approximate) {
    const cube = g.op("Mul", [g.op("Mul", [x, x]), x]);
    const inner = g.op("Mul", [g.op("Add", [x, g.op("Mul", [cube, g.scalar(0.044715)])]), g.scalar(Math.sqrt(2 / Math.PI))]);
    return g.op("Mul", [half, g.op("Add", [g.op("Tanh", [inner]), g.scalar(1)])]);
  }
  return g.op("Mul", [half, g.op("Add", [g.op("Erf", [g.op("Div", [x, g.scalar(Math.SQRT2)])]), g.scalar(1)])]);
}

/** ONNX axis holding IR axis `axis` of a value. */
const onnxAxis = (v: Value, axis: number) => {
  const a = axis < 0 ? axis + v.rank : axis;
  return v.perm ? v.perm.indexOf(a) : a;
};

/** Element-wise: the output keeps the input's layout. */
const unary = (f: (g: Graph, x: string, c: LowerCtx) => string): Lower => (c) => ({ ...c.x[0]!, name: f(c.g, c.x[0]!.name, c) });

/**
 * A conv's or pool's padding as ONNX attributes: the IR's amounts (compiler/ir/padding.ts, whatever form the
 * attribute has: a name or explicit [begin, end] per axis, PyTorch's padding= or fold-padding's) converted once to ONNX's
 * [begin per axis…, end per axis…]; "same" over a symbolic size becomes auto_pad SAME_UPPER (TensorFlow's rule).
 */
function pads(c: LowerCtx, window: readonly number[], stride: readonly number[], dilation: readonly number[], padding: IRAttr | undefined): Record<string, AttrValue> {
  const k = window.map((w, i) => (w - 1) * dilation[i]! + 1);
  const amounts = spatialPads(padding, c.inNodes[0]!.shape!.slice(1, 1 + window.length), k, stride);
  if (!amounts) return { auto_pad: str("SAME_UPPER") };
  return { pads: ints([...amounts.map((p) => p[0]), ...amounts.map((p) => p[1])]) };
}

/** Convolution (1-D or 2-D, grouped, dilated, depthwise) on a channels-first input; output channels-first. */
function conv(c: LowerCtx, x: string, kernel: string, bias: string | null, o: { k: number[]; stride: number[]; dilation: number[]; group: number; padding: IRAttr | undefined }): string {
  return c.g.op("Conv", bias ? [x, kernel, bias] : [x, kernel], { kernel_shape: ints(o.k), strides: ints(o.stride), dilations: ints(o.dilation), group: int(o.group), ...pads(c, o.k, o.stride, o.dilation, o.padding) });
}

function conv2d(c: LowerCtx): Value {
  const cf = channelsFirst(4);
  const k = pairOf(c.a.kernel);
  const y = conv(c, c.g.as(c.x[0]!, cf), c.w("kernel", [{ perm: [3, 2, 0, 1] }]), c.a.bias ? c.w("bias") : null, { k, stride: pairOf(c.a.stride), dilation: pairOf(c.a.dilation), group: num(c.a.groups), padding: c.a.padding });
  return { name: activate(c.g, y, String(c.a.activation), 1), perm: cf, rank: 4 };
}

/** ConvTranspose: kernel [kh, kw, F, C] → [C, F, kh, kw]; "same" crops (or pads after) as TensorFlow does. */
function conv2dTranspose(c: LowerCtx): Value {
  const cf = channelsFirst(4);
  const k = pairOf(c.a.kernel);
  const stride = pairOf(c.a.stride);
  const { before, after, extra } = transposeSame(k, stride, c.a.padding);
  const kernel = c.w("kernel", [{ perm: [3, 2, 0, 1] }]);
  const inputs = [c.g.as(c.x[0]!, cf), kernel, ...(c.a.bias ? [c.w("bias")] : [])];
  const y = c.g.op("ConvTranspose", inputs, { kernel_shape: ints(k), strides: ints(stride), pads: ints([...before, ...after]), ...(extra.some((e) => e) ? { output_padding: ints(extra) } : {}) });
  return { name: activate(c.g, y, String(c.a.activation), 1), perm: cf, rank: 4 };
}

/** ConvTranspose over steps: kernel [k, F, C] → [C, F, k]; "same" as conv2d_transpose's. */
function conv1dTranspose(c: LowerCtx): Value {
  const cf = channelsFirst(3);
  const k = [num(c.a.kernel)];
  const stride = [num(c.a.stride)];
  const { before, after, extra } = transposeSame(k, stride, c.a.padding);
  const kernel = c.w("kernel", [{ perm: [2, 1, 0] }]);
  const inputs = [c.g.as(c.x[0]!, cf), kernel, ...(c.a.bias ? [c.w("bias")] : [])];
  const y = c.g.op("ConvTranspose", inputs, { kernel_shape: ints(k), strides: ints(stride), pads: ints([...before, ...after]), ...(extra.some((e) => e) ? { output_padding: ints(extra) } : {}) });
  return { name: activate(c.g, y, String(c.a.activation), 1), perm: cf, rank: 3 };
}

function conv1d(c: LowerCtx): Value {
  const cf = channelsFirst(3);
  const k = num(c.a.kernel);
  const y = conv(c, c.g.as(c.x[0]!, cf), c.w("kernel", [{ perm: [2, 1, 0] }]), c.a.bias ? c.w("bias") : null, { k: [k], stride: [num(c.a.stride)], dilation: [num(c.a.dilation)], group: num(c.a.groups), padding: c.a.padding });
  return { name: activate(c.g, y, String(c.a.activation), 1), perm: cf, rank: 3 };
}

/** The depthwise part: kernel [kh, kw, C, m] → [C·m, 1, kh, kw], one group per input channel. */
function depthwise(c: LowerCtx, x: string, bias: string | null): string {
  const [kh, kw] = pairOf(c.a.kernel);
  const ch = c.inNodes[0]!.shape![3] as number;
  const m = num(c.a.multiplier);
  const kernel = c.w("depthwise_kernel", [{ perm: [2, 3, 0, 1] }, { reshape: [ch * m, 1, kh, kw] }]);
  return conv(c, x, kernel, bias, { k: [kh, kw], stride: pairOf(c.a.stride), dilation: pairOf(c.a.dilation), group: ch, padding: c.a.padding });
}

/** Max or average pooling on a channels-first input. */
function pool(kind: "MaxPool" | "AveragePool", dims: 1 | 2): Lower {
  return (c) => {
    const cf = channelsFirst(dims + 2);
    const size = dims === 2 ? pairOf(c.a.size) : [num(c.a.size)];
    const stride = c.a.stride === null ? size : dims === 2 ? pairOf(c.a.stride) : [num(c.a.stride)];
    const p = pads(c, size, stride, size.map(() => 1), c.a.padding);
    // Average pooling divides by the real pixels of a window only (tfjs's "same"): count_include_pad 0. Max
    // pooling pads with −∞ in ONNX; fold-padding gives it zero padding only where its input is ≥ 0 and every
    // window keeps a real value, so the two agree.
    // Explicit padding (PyTorch's padding=) counts its zeros in an average, as PyTorch's count_include_pad=True;
    // ceil_mode is PyTorch's (onnxruntime's rule for the last window is the same).
    const explicit = Array.isArray(c.a.padding);
    const extra: Record<string, AttrValue> = {
      ...(kind === "AveragePool" ? { count_include_pad: int(explicit ? 1 : 0) } : {}),
      ...(c.a.ceil_mode === true ? { ceil_mode: int(1) } : {}),
    };
    // onnxruntime's PadFusion (default optimizations) merges a zero Pad into the MaxPool reading it as the
    // pool's own padding, which is −∞: wrong for negative values, and a load error where the pad reaches the
    // window's size. It leaves a MaxPool with its optional Indices output alone, so a MaxPool fed by a
    // zero_pad2d declares it (unused).
    const outputs = kind === "MaxPool" && c.inNodes[0]!.op === "zero_pad2d" ? 2 : 1;
    let y = c.g.op(kind, [c.g.as(c.x[0]!, cf)], { kernel_shape: ints(size), strides: ints(stride), ...p, ...extra }, outputs);
    if (c.a.ceil_mode === true) {
      // ONNX's ceil_mode keeps a last window that starts in the trailing padding, which PyTorch (and the IR's
      // shape) drops: cut the pooled axes to the IR's sizes (a no-op where they agree).
      const want = c.node.shape!.slice(1, 1 + dims) as number[];
      const amounts = spatialPads(c.a.padding, c.inNodes[0]!.shape!.slice(1, 1 + dims), size, stride)!;
      const onnxOut = want.map((_, i) => Math.ceil((num(c.inNodes[0]!.shape![1 + i]) + amounts[i]![0] + amounts[i]![1] - size[i]!) / stride[i]!) + 1);
      if (onnxOut.some((o, i) => o !== want[i])) y = c.g.op("Slice", [y, c.g.i64(want.map(() => 0)), c.g.i64(want), c.g.i64(want.map((_, i) => 2 + i))]);
    }
    return { name: y, perm: cf, rank: dims + 2 };
  };
}

/** Reduce over the spatial axes, in whatever layout the input has; [batch, channels] out. */
function globalPool(kind: "ReduceMean" | "ReduceMax"): Lower {
  return (c) => {
    const v = c.x[0]!;
    const axes = Array.from({ length: v.rank - 2 }, (_, i) => onnxAxis(v, i + 1));
    return irValue(c.g.op(kind, [v.name], { axes: ints(axes), keepdims: int(0) }), c.node);
  };
}

/** Element-wise binary op with broadcasting: a literal operand becomes a scalar of the other's type. */
function binary(type: "Add" | "Sub" | "Mul" | "Div"): Lower {
  return (c) => {
    const [na, nb] = c.inNodes as [IRNode, IRNode];
    const [va, vb] = c.x as [Value, Value];
    const lit = (n: IRNode, other: IRNode) => c.g.scalar(num(n.attrs.value), other.dtype ?? "f32");
    if (na.op === "constant" && nb.op !== "constant") return { ...vb, rank: rankOf(c.node), name: c.g.op(type, [lit(na, nb), vb.name]) };
    if (nb.op === "constant" && na.op !== "constant") return { ...va, rank: rankOf(c.node), name: c.g.op(type, [va.name, lit(nb, na)]) };
    if (va.rank === vb.rank && sameList(va.perm, vb.perm)) return { ...va, name: c.g.op(type, [va.name, vb.name]) };
    return irValue(c.g.op(type, [c.ir(0), c.ir(1)]), c.node);
  };
}

/** A per-sample reshape target as an int64 shape tensor: numbers, -1, and symbolic sizes read from the input. */
function reshapeTarget(c: LowerCtx): string {
  const input = c.inNodes[0]!.shape!;
  const target = c.a.shape as (number | string)[];
  const unknown = target.filter((d) => typeof d === "string" && !input.slice(1).includes(d)).length;
  const holes = target.filter((d) => d === -1).length;
  if (unknown + holes > 1) throw new Unsupported(`its target [${target.join(", ")}] has ${unknown + holes} sizes that are neither numbers nor sizes of its input`, "reshape to at most one computed size (-1), or name the input's own dimensions");
  if (target.every((d) => typeof d === "number" || !input.slice(1).includes(d))) return c.g.i64([0, ...target.map((d) => (typeof d === "number" ? d : -1))]);
  // Symbolic sizes that are input dimensions: read them with Shape, concatenate with the numbers.
  const x = c.ir(0);
  const parts = [c.g.i64([0]), ...target.map((d) => {
    if (typeof d === "number") return c.g.i64([d]);
    const at = input.indexOf(d);
    return at < 0 ? c.g.i64([-1]) : c.g.op("Shape", [x], { start: int(at), end: int(at + 1) });
  })];
  return c.g.op("Concat", parts, { axis: int(0) });
}

/** Gate order: Keras's LSTM is i, f, c, o; ONNX's is i, o, f, c. GRU's z, r, h is the same in both. */
function gateIndex(units: number, order: readonly number[]): number[] {
  return order.flatMap((g) => Array.from({ length: units }, (_, i) => g * units + i));
}

function recurrent(kind: "LSTM" | "GRU"): Lower {
  return (c) => {
    const u = num(c.a.units);
    const lstm = kind === "LSTM";
    const gates = lstm ? 4 : 3;
    const order = gateIndex(u, lstm ? [0, 3, 1, 2] : [0, 1, 2]);
    const dirs = c.a.bidirectional ? ["forward/", "backward/"] : [""];
    const resetAfter = !lstm && c.a.reset_after !== false;
    const feat = c.inNodes[0]!.shape![2] as number;
    // W [dirs, gates·u, in], R [dirs, gates·u, u], B [dirs, 2·gates·u]: one direction's kernels, transposed and
    // reordered, stacked by Concat (reshaped to a leading axis of 1 each).
    const stack = (role: string, rows: number) => {
      const parts = dirs.map((d) => c.w(`${d}${role}`, [{ gather: { axis: 1, index: order } }, { perm: [1, 0] }, { reshape: [1, gates * u, rows] }]));
      return parts.length === 1 ? parts[0]! : c.g.op("Concat", parts, { axis: int(0) });
    };
    const W = stack("kernel", feat);
    const R = stack("recurrent_kernel", u);
    const biasParts = dirs.map((d) => {
      if (resetAfter) return c.w(`${d}bias`, [{ gather: { axis: 1, index: order } }, { reshape: [1, 2 * gates * u] }]);
      const b = c.w(`${d}bias`, [{ gather: { axis: 0, index: order } }, { reshape: [1, gates * u] }]);
      return c.g.op("Concat", [b, c.g.floatConst("zeros", new Float32Array(gates * u), [1, gates * u])], { axis: int(1) });
    });
    const B = biasParts.length === 1 ? biasParts[0]! : c.g.op("Concat", biasParts, { axis: int(0) });
    const x = c.g.op("Transpose", [c.ir(0)], { perm: ints([1, 0, 2]) }); // onnxruntime's RNNs are time-major only
    c.g.op(kind, [x, W, R, B], { hidden_size: int(u), direction: str(dirs.length === 2 ? "bidirectional" : "forward"), ...(resetAfter ? { linear_before_reset: int(1) } : {}) }, 2);
    const [y, yh] = c.g.outputsOfLast() as [string, string];
    if (!c.a.return_sequences) {
      // Y_h [dirs, batch, u] → [batch, dirs·u] (forward then backward, as the reference concatenates).
      const hb = c.g.op("Transpose", [yh], { perm: ints([1, 0, 2]) });
      return irValue(c.g.op("Reshape", [hb, c.g.i64([0, -1])]), c.node);
    }
    // Y [steps, dirs, batch, u] → [batch, steps, dirs·u]
    const yb = c.g.op("Transpose", [y], { perm: ints([2, 0, 1, 3]) });
    return irValue(c.g.op("Reshape", [yb, c.g.i64([0, 0, -1])]), c.node);
  };
}

/** Multi-head attention as MatMul / Softmax (what runtime/ops.ts attention computes). */
function attention(c: LowerCtx): Value {
  const g = c.g;
  const heads = num(c.a.heads);
  const kvHeads = (c.a.kv_heads as number | null) ?? heads;
  const d = c.inNodes[0]!.shape![2] as number;
  const kd = (c.a.key_dim as number | null) ?? d / heads;
  const n = c.x.length - (c.a.mask ? 1 : 0);
  const q = c.ir(0);
  const kv = n > 1 ? c.ir(1) : q;
  const proj = (t: string, role: string) => {
    const y = g.op("MatMul", [t, c.w(`${role}/kernel`)]);
    return c.a.bias ? g.op("Add", [y, c.w(`${role}/bias`)]) : y;
  };
  // [batch, steps, h·kd] → [batch, h, steps, kd]
  const split = (t: string, h: number) => g.op("Transpose", [g.op("Reshape", [t, g.i64([0, 0, h, kd])])], { perm: ints([0, 2, 1, 3]) });
  let Q = split(proj(q, "query"), heads);
  const plainKeys = !c.a.rotary && kvHeads === heads;
  let K = plainKeys ? "" : split(proj(kv, "key"), kvHeads);
  let V = split(proj(kv, "value"), kvHeads);
  if (c.a.rotary) {
    // angles [steps, kd/2] = positions ⊗ θ^(−2i/kd), repeated for both halves; x·cos + rotate_half(x)·sin
    const theta = num(c.a.rope_theta);
    const inv = Float32Array.from({ length: kd / 2 }, (_, i) => 1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / kd))));
    const rope = (t: string, of: string) => {
      const steps = g.op("Shape", [of], { start: int(1), end: int(2) });
      const pos = g.op("Cast", [g.op("Range", [g.i64([0], true), g.op("Squeeze", [steps, g.i64([0])]), g.i64([1], true)])], { to: int(ONNX_DTYPE.FLOAT) });
      const angles = g.op("Mul", [g.op("Unsqueeze", [pos, g.i64([1])]), g.floatConst("rotary_inv_freq", inv, [1, kd / 2])]);
      const emb = g.op("Concat", [angles, angles], { axis: int(1) });
      const x1 = g.op("Slice", [t, g.i64([0]), g.i64([kd / 2]), g.i64([3])]);
      const x2 = g.op("Slice", [t, g.i64([kd / 2]), g.i64([kd]), g.i64([3])]);
      const rot = g.op("Concat", [g.op("Neg", [x2]), x1], { axis: int(3) });
      return g.op("Add", [g.op("Mul", [t, g.op("Cos", [emb])]), g.op("Mul", [rot, g.op("Sin", [emb])])]);
    };
    Q = rope(Q, q);
    K = rope(K, kv);
  }
  if (kvHeads !== heads) {
    // each key/value head serves heads / kvHeads consecutive query heads
    const rep = (t: string) => g.op("Reshape", [g.op("Tile", [g.op("Unsqueeze", [t, g.i64([2])]), g.i64([1, 1, heads / kvHeads, 1, 1])]), g.i64([0, heads, -1, kd])]);
    K = rep(K);
    V = rep(V);
  }
  const Kt = !plainKeys ? g.op("Transpose", [K], { perm: ints([0, 1, 3, 2]) }) : g.op("Transpose", [g.op("Reshape", [proj(kv, "key"), g.i64([0, 0, heads, kd])])], { perm: ints([0, 2, 3, 1]) });
  let scores = g.op("Mul", [g.op("MatMul", [Q, Kt]), g.scalar(1 / Math.sqrt(kd))]);
  if (c.a.causal) {
    // (1 − lower triangle of ones [tq, tk]) · −1e9, sized from the inputs at run time.
    const tq = g.op("Shape", [q], { start: int(1), end: int(2) });
    const tk = g.op("Shape", [kv], { start: int(1), end: int(2) });
    const ones = g.op("Expand", [g.scalar(1), g.op("Concat", [tq, tk], { axis: int(0) })]);
    const lower = g.op("Trilu", [ones], { upper: int(0) });
    scores = g.op("Add", [scores, g.op("Mul", [g.op("Sub", [g.scalar(1), lower]), g.scalar(-1e9)])]);
  }
  if (c.a.mask) {
    // (1 − mask) · −1e9 on [batch, 1, 1, tk]
    const m = g.op("Cast", [g.op("Unsqueeze", [c.ir(c.x.length - 1), g.i64([1, 2])])], { to: int(ONNX_DTYPE.FLOAT) });
    scores = g.op("Add", [scores, g.op("Mul", [g.op("Sub", [g.scalar(1), m]), g.scalar(-1e9)])]);
  }
  const probs = g.op("Softmax", [scores], { axis: int(-1) });
  const ctx = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [probs, V])], { perm: ints([0, 2, 1, 3]) }), g.i64([0, 0, heads * kd])]);
  return irValue(proj(ctx, "output"), c.node);
}

function batchnorm(c: LowerCtx): Value {
  const v = c.x[0]!;
  const name = c.node.name;
  const mean = c.g.hostFloat(`${name}/moving_mean`).data;
  const variance = c.g.hostFloat(`${name}/moving_variance`).data;
  const gamma = c.a.scale ? c.g.hostFloat(`${name}/gamma`).data : null;
  const beta = c.a.center ? c.g.hostFloat(`${name}/beta`).data : null;
  const ch = mean.length;
  const eps = num(c.a.epsilon);
  // y = x·s + (β − μ·s) with s = γ / √(σ² + ε), computed in double precision.
  const s = new Float32Array(ch);
  const t = new Float32Array(ch);
  for (let i = 0; i < ch; i++) {
    const si = (gamma ? gamma[i]! : 1) / Math.sqrt(variance[i]! + eps);
    s[i] = si;
    t[i] = (beta ? beta[i]! : 0) - mean[i]! * si;
  }
  // Shaped to broadcast along the ONNX axis that holds the channels.
  const dims = [ch, ...Array(v.rank - 1 - onnxAxis(v, -1)).fill(1)];
  const y = c.g.op("Add", [c.g.op("Mul", [v.name, c.g.floatConst(`${name}/scale`, s, dims)]), c.g.floatConst(`${name}/shift`, t, dims)]);
  return { ...v, name: y };
}

const passThrough: Lower = (c) => c.x[0]!;

export const LOWER: Record<OpKind, Lower> = {
  input: () => {
    throw new Error("inputs are graph inputs, not nodes");
  },
  constant: (c) => ({ name: c.g.scalar(num(c.a.value)), perm: null, rank: 0 }),
  dense: (c) => {
    const y = c.g.op("MatMul", [c.ir(0), c.w("kernel")]);
    return irValue(activate(c.g, c.a.bias ? c.g.op("Add", [y, c.w("bias")]) : y, String(c.a.activation)), c.node);
  },
  tied_dense: (c) => {
    const y = c.g.op("MatMul", [c.ir(0), c.w(`@${String(c.a.layer)}/embeddings`, [{ perm: [1, 0] }])]);
    return irValue(c.a.bias ? c.g.op("Add", [y, c.w("bias")]) : y, c.node);
  },
  conv1d,
  conv2d,
  conv2d_transpose: conv2dTranspose,
  conv1d_transpose: conv1dTranspose,
  depthwise_conv2d: (c) => {
    const cf = channelsFirst(4);
    const y = depthwise(c, c.g.as(c.x[0]!, cf), c.a.bias ? c.w("bias") : null);
    return { name: activate(c.g, y, String(c.a.activation), 1), perm: cf, rank: 4 };
  },
  separable_conv2d: (c) => {
    const cf = channelsFirst(4);
    const dw = depthwise(c, c.g.as(c.x[0]!, cf), null);
    const y = conv(c, dw, c.w("pointwise_kernel", [{ perm: [3, 2, 0, 1] }]), c.a.bias ? c.w("bias") : null, { k: [1, 1], stride: [1, 1], dilation: [1, 1], group: 1, padding: "valid" });
    return { name: activate(c.g, y, String(c.a.activation), 1), perm: cf, rank: 4 };
  },
  max_pool1d: pool("MaxPool", 1),
  avg_pool1d: pool("AveragePool", 1),
  max_pool2d: pool("MaxPool", 2),
  avg_pool2d: pool("AveragePool", 2),
  global_avg_pool1d: globalPool("ReduceMean"),
  global_max_pool1d: globalPool("ReduceMax"),
  global_avg_pool2d: globalPool("ReduceMean"),
  global_max_pool2d: globalPool("ReduceMax"),
  zero_pad2d: (c) => {
    const v = c.x[0]!;
    const [ph, pw] = pairOf(c.a.padding);
    const irPads = [0, ph, pw, 0];
    const order = v.perm ?? [0, 1, 2, 3];
    const p = order.map((a) => irPads[a]!);
    return { ...v, name: c.g.op("Pad", [v.name, c.g.i64([...p, ...p])], { mode: str("constant") }) };
  },
  upsample2d: (c) => {
    const cf = channelsFirst(4);
    const [a, b] = pairOf(c.a.size);
    const scales = c.g.floatConst("scales", Float32Array.of(1, 1, a, b), [4]);
    const y = c.g.op("Resize", [c.g.as(c.x[0]!, cf), "", scales], { mode: str("nearest"), coordinate_transformation_mode: str("asymmetric"), nearest_mode: str("floor") });
    return { name: y, perm: cf, rank: 4 };
  },
  batchnorm,
  rmsnorm: (c) => {
    // x · 1/√(mean(x²) + ε) · γ (opset 17 has no RMSNormalization)
    const x = c.ir(0);
    const ms = c.g.op("ReduceMean", [c.g.op("Mul", [x, x])], { axes: ints([-1]), keepdims: int(1) });
    const inv = c.g.op("Reciprocal", [c.g.op("Sqrt", [c.g.op("Add", [ms, c.g.scalar(num(c.a.epsilon))])])]);
    return irValue(c.g.op("Mul", [c.g.op("Mul", [x, inv]), c.w("gamma")]), c.node);
  },
  groupnorm: (c) => groupnorm(c, num(c.a.groups)),
  instancenorm: (c) => groupnorm(c, c.node.shape![c.node.shape!.length - 1] as number),
  layernorm: (c) => irValue(c.g.op("LayerNormalization", [c.ir(0), c.w("gamma"), c.w("beta")], { axis: int(-1), epsilon: float(num(c.a.epsilon)) }), c.node),
  dropout: passThrough,
  // At inference the mean; with always: true, mean + e^(log_var / 2) · RandomNormalLike.
  sample_normal: (c) => {
    if (c.a.always !== true) return irValue(c.ir(0), c.node);
    const m = c.ir(0);
    const std = c.g.op("Exp", [c.g.op("Mul", [c.ir(1), c.g.scalar(0.5)])]);
    return irValue(c.g.op("Add", [m, c.g.op("Mul", [std, c.g.op("RandomNormalLike", [m])])]), c.node);
  },
  // At inference zeros of x's shape; with always: true, RandomNormalLike with scale std.
  random_normal_like: (c) => {
    const x = c.ir(0);
    if (c.a.always === true) return irValue(c.g.op("RandomNormalLike", [x], { mean: float(0), scale: float(num(c.a.std)) }), c.node);
    return irValue(c.g.op("Expand", [c.g.scalar(0), c.g.op("Shape", [x])]), c.node);
  },
  identity: passThrough,
  // The value with a leading axis, expanded to the input's batch.
  parameter: (c) => {
    const shape = c.g.op("Concat", [c.g.op("Shape", [c.ir(0)], { start: int(0), end: int(1) }), c.g.i64(c.a.shape as number[])], { axis: int(0) });
    return irValue(c.g.op("Expand", [c.g.op("Unsqueeze", [c.w("value"), c.g.i64([0])]), shape]), c.node);
  },
  embedding: (c) => irValue(c.g.op("Gather", [c.w("embeddings"), c.ir(0)], { axis: int(0) }), c.node),
  pos_embedding: (c) => {
    const steps = c.inNodes[0]!.shape![1]!;
    const x = c.ir(0);
    const table =
      typeof steps === "number"
        ? c.g.op("Slice", [c.w("embeddings"), c.g.i64([0]), c.g.i64([steps]), c.g.i64([0])])
        : c.g.op("Slice", [c.w("embeddings"), c.g.i64([0]), c.g.op("Shape", [x], { start: int(1), end: int(2) }), c.g.i64([0])]);
    return irValue(c.g.op("Add", [x, table]), c.node);
  },
  lstm: recurrent("LSTM"),
  gru: recurrent("GRU"),
  attention,
  flatten: (c) => irValue(c.g.op("Flatten", [c.ir(0)], { axis: int(1) }), c.node),
  reshape: (c) => irValue(c.g.op("Reshape", [c.ir(0), reshapeTarget(c)]), c.node),
  transpose: (c) => irValue(c.g.op("Transpose", [c.ir(0)], { perm: ints(c.a.perm as number[]) }), c.node),
  concat: (c) => {
    const first = c.x[0]!;
    const axis = num(c.a.axis);
    if (c.x.every((v) => v.rank === first.rank && sameList(v.perm, first.perm))) return { ...first, name: c.g.op("Concat", c.x.map((v) => v.name), { axis: int(onnxAxis(first, axis)) }) };
    return irValue(c.g.op("Concat", c.x.map((_, i) => c.ir(i)), { axis: int(axis) }), c.node);
  },
  // Slice's ends clamp: "to the end" is the largest int64 a double holds exactly.
  slice: (c) => {
    const step = num(c.a.step ?? 1);
    return irValue(c.g.op("Slice", [c.ir(0), c.g.i64([num(c.a.start)]), c.g.i64([c.a.end === null ? Number.MAX_SAFE_INTEGER : num(c.a.end)]), c.g.i64([num(c.a.axis)]), ...(step !== 1 ? [c.g.i64([step])] : [])]), c.node);
  },
  squeeze: (c) => irValue(c.g.op("Squeeze", [c.ir(0), c.g.i64([num(c.a.axis)])]), c.node),
  expand_dims: (c) => irValue(c.g.op("Unsqueeze", [c.ir(0), c.g.i64([num(c.a.axis)])]), c.node),
  take: (c) => irValue(c.g.op("Gather", [c.ir(0), c.g.i64([num(c.a.index)], true)], { axis: int(num(c.a.axis)) }), c.node),
  cast: unary((g, x, c) => g.op("Cast", [x], { to: int(DTYPES[c.a.dtype as DType]) })),
  add: binary("Add"),
  sub: binary("Sub"),
  mul: binary("Mul"),
  div: binary("Div"),
  matmul: (c) => irValue(c.g.op("MatMul", [c.ir(0), c.ir(1)]), c.node),
  relu: unary((g, x) => g.op("Relu", [x])),
  relu6: unary((g, x) => activate(g, x, "relu6")),
  gelu: unary((g, x, c) => gelu(g, x, !!c.a.approximate)),
  silu: unary((g, x) => activate(g, x, "silu")),
  sigmoid: unary((g, x) => g.op("Sigmoid", [x])),
  tanh: unary((g, x) => g.op("Tanh", [x])),
  softmax: (c) => ({ ...c.x[0]!, name: c.g.op("Softmax", [c.x[0]!.name], { axis: int(onnxAxis(c.x[0]!, num(c.a.axis))) }) }),
  leaky_relu: unary((g, x, c) => g.op("LeakyRelu", [x], { alpha: float(num(c.a.alpha)) })),
  elu: unary((g, x, c) => g.op("Elu", [x], { alpha: float(num(c.a.alpha)) })),
  softplus: unary((g, x) => g.op("Softplus", [x])),
  // Mish is an ONNX operator only from opset 18: x · tanh(softplus(x)).
  mish: unary((g, x) => g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x])])])),
  hardswish: unary((g, x) => g.op("HardSwish", [x])),
  hardsigmoid: unary((g, x) => g.op("HardSigmoid", [x], { alpha: float(1 / 6), beta: float(0.5) })),
  exp: unary((g, x) => g.op("Exp", [x])),
  log: unary((g, x) => g.op("Log", [x])),
  sqrt: unary((g, x) => g.op("Sqrt", [x])),
  abs: unary((g, x) => g.op("Abs", [x])),
  neg: unary((g, x) => g.op("Neg", [x])),
  square: unary((g, x) => g.op("Mul", [x, x])),
  pow: unary((g, x, c) => g.op("Pow", [x, g.scalar(num(c.a.exponent))])),
  clip: unary((g, x, c) => g.op("Clip", [x, g.scalar(num(c.a.min)), g.scalar(num(c.a.max))])),
  reduce_mean: reduce("ReduceMean"),
  reduce_sum: reduce("ReduceSum"),
  reduce_max: reduce("ReduceMax"),
  reduce_min: reduce("ReduceMin"),
};

/**
 * Group normalization in the IR's layout (opset 17 has no GroupNormalization, and opset 18's takes γ and β per
 * group): [batch, …, C] as [batch, positions, groups, C / groups], each sample's group normalized over axes 1 and
 * 3, back to the input's shape, then γ and β per channel.
 */
function groupnorm(c: LowerCtx, groups: number): Value {
  const g = c.g;
  const x = c.ir(0);
  const ch = c.node.shape![c.node.shape!.length - 1] as number;
  const grouped = g.op("Reshape", [x, g.i64([0, -1, groups, ch / groups])]);
  const axes = { axes: ints([1, 3]), keepdims: int(1) };
  const centred = g.op("Sub", [grouped, g.op("ReduceMean", [grouped], axes)]);
  const variance = g.op("ReduceMean", [g.op("Mul", [centred, centred])], axes);
  const normed = g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [variance, g.scalar(num(c.a.epsilon))])])]);
  const y = g.op("Reshape", [normed, g.op("Shape", [x])]);
  return irValue(g.op("Add", [g.op("Mul", [y, c.w("gamma")]), c.w("beta")]), c.node);
}

/** A reduction over the node's axes, in the IR's layout (opset 17: ReduceSum takes its axes as an input, the others as an attribute). */
function reduce(kind: "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin"): Lower {
  return (c) => {
    const axes = c.a.axis as number[];
    const keepdims = int(c.a.keepdims === true ? 1 : 0);
    const x = c.ir(0);
    const y = kind === "ReduceSum" ? c.g.op(kind, [x, c.g.i64(axes)], { keepdims }) : c.g.op(kind, [x], { axes: ints(axes), keepdims });
    return irValue(y, c.node);
  };
}

/** A dimension for a graph input or output: sizes and plain names; expressions (64*seq) left unnamed. */
function dimMsg(d: number | string): DimMsg {
  if (typeof d === "number") return d;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(d) ? d : null;
}

/**
 * The ONNX model of `model` with `weights` (every param of the model, by name; derived ones already
 * computed). Diagnostics (NN6001) name each layer that has no ONNX form; bytes is null then.
 */
// Plugin ops with an ONNX lowering join the table: the plugin builds nodes from the inputs in the IR's layout.
onPlugins((from) => {
  const table = LOWER as Record<string, Lower>;
  const names: string[] = [];
  for (const op of from.plugin.ops ?? []) {
    if (!op.onnx) continue;
    names.push(op.name);
    table[op.name] = (c) => {
      const what = `op ${op.name}'s onnx lowering`;
      const b: OnnxBuilder = {
        inputs: c.x.map((_, i) => c.ir(i)),
        attrs: c.a as Record<string, never>,
        op: (type, inputs, attrs = {}) => {
          if (typeof type !== "string" || !Array.isArray(inputs) || !inputs.every((i) => typeof i === "string")) throw new PluginError(from.plugin.name, from.file, what, new Error(`op(${JSON.stringify(type)}, …): give an ONNX operator name and a list of value names`));
          return c.g.op(type, inputs, attrs as Record<string, AttrValue>);
        },
        scalar: (v) => c.g.scalar(v),
        int,
        float,
        ints,
      };
      const out = guard(from, what, () => op.onnx!(b));
      if (typeof out !== "string") throw new PluginError(from.plugin.name, from.file, what, new Error(`it returned ${typeof out}, not the name of its output value`));
      return irValue(out, c.node);
    };
  }
  return () => {
    for (const n of names) delete table[n];
  };
});

export function exportOnnx(model: IRModel, weights0: ReadonlyMap<string, ExportWeight>, o: OnnxOptions): OnnxResult {
  // LoRA adapters are merged into their kernels (W + scale·A·B): the graph has no trace of them.
  const merged = mergedKernels(model, (n) => {
    const w = weights0.get(n);
    return w && "data" in w ? w : undefined;
  });
  const weights = merged.size ? new Map([...weights0, ...[...merged].map(([k, v]) => [k, { shape: [...v.shape], data: v.data }] as const)]) : weights0;
  const g = new Graph(weights);
  const diagnostics: Diagnostic[] = [];
  const values = new Map<string, Value>();
  const byId = new Map(model.nodes.map((n) => [n.id, n]));
  const inputs: ValueInfoMsg[] = [];
  for (const inp of model.inputs) {
    const name = g.fresh(inp.name);
    inputs.push({ name, dtype: DTYPES[inp.dtype], shape: inp.shape.map(dimMsg) });
    values.set(inp.node, { name, perm: null, rank: inp.shape.length });
  }
  for (const n of model.nodes) {
    if (n.op === "input") continue;
    g.current = n;
    const x = n.inputs.map((i) => values.get(i)!);
    const ctx: LowerCtx = {
      g,
      node: n,
      a: n.attrs,
      x,
      inNodes: n.inputs.map((i) => byId.get(i)!),
      w: (role, steps) => g.weight(role.startsWith("@") ? role.slice(1) : `${n.name}/${role}`, steps),
      ir: (i = 0) => g.as(x[i]!, null),
    };
    const plugin = pluginEntry("ops", n.op);
    if (plugin && !Object.hasOwn(LOWER, n.op)) {
      diagnostics.push(diag("pluginNoLowering", n.span, { plugin: plugin.from.plugin.name, file: plugin.from.file, kind: "op", name: n.op, target: "ONNX", field: "onnx", layer: n.name }));
      continue;
    }
    try {
      if (x.some((v) => v === undefined)) continue; // an input that failed to lower: reported already
      values.set(n.id, LOWER[n.op as OpKind](ctx));
    } catch (e) {
      if (e instanceof PluginError) {
        diagnostics.push(diag("pluginThrew", n.span, { plugin: e.plugin, file: e.file, what: e.what, message: errorText(e.error) }));
        continue;
      }
      if (!(e instanceof Unsupported)) throw e;
      diagnostics.push(diag("onnxUnsupported", n.span, { op: n.op, layer: n.name, reason: e.reason, ...(e.hint ? { hint: e.hint } : {}) }));
    }
  }
  g.current = null;
  const stats = () => ({ nodes: g.nodes.length, initializers: g.inits.length, transposes: g.transposes, dequantized: g.dequantized });
  if (diagnostics.length) return { bytes: null, diagnostics, stats: stats() };
  const outputs: ValueInfoMsg[] = [];
  for (const out of model.outputs) {
    const n = byId.get(out.node)!;
    const v = values.get(out.node)!;
    const name = g.fresh(out.name);
    g.nodes.push({ op: "Identity", inputs: [g.as(v, null)], outputs: [name], name, attrs: {} });
    outputs.push({ name, dtype: DTYPES[n.dtype ?? "f32"], shape: n.shape!.map(dimMsg) });
  }
  // Constants that every reader replaced by one of its own (a literal operand takes its partner's type).
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  const initializers = g.inits.filter((t) => read.has(t.name));
  const bytes = encodeModel({
    irVersion: ONNX_IR_VERSION,
    opsets: [{ domain: "", version: OPSET }],
    producer: "nnetc",
    producerVersion: o.producerVersion,
    ...(model.doc ? { doc: model.doc } : {}),
    metadata: { source: `${model.span.file}:${model.span.line}`, model: model.name, ...o.metadata },
    graph: { name: model.name, nodes: g.nodes, initializers, inputs, outputs },
  });
  return { bytes, diagnostics, stats: stats() };
}
