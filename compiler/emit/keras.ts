// The tfjs-layers (Keras) export: a checked IRModel as a Keras functional topology, the `modelTopology` of
// a TensorFlow.js model.json that tf.loadLayersModel reads. KERAS is the op table: per op kind, the Keras
// layer that computes exactly what runtime/interpret.ts computes, or why there is none. Weight names are
// the IR's `layer/role` names, which are also Keras's (conv2d/kernel, batchnorm/moving_mean…), so the
// weights go into the manifest as they are. Pure: no tensors here (runtime/commands.ts writes the weights).
import { onPlugins } from "../plugin/api.js";
import { diag, type Diagnostic } from "../diagnostics.js";
import type { OpKind } from "../ir/ops.js";
import type { AttrValue, IRModel, IRNode } from "../ir/types.js";

/** One Keras layer: its class and config (snake_case, as Keras writes them). */
interface KerasLayer {
  class_name: string;
  config: Record<string, unknown>;
}

interface RuleCtx {
  n: IRNode;
  a: Record<string, AttrValue>;
  /** The ops of the node's inputs (a constant operand has no Keras layer). */
  inputOps: string[];
  /** Shape of one of the node's weights by role. */
  weight(role: string): number[] | undefined;
}

/**
 * What one IR node becomes: a Keras layer (plus, for an activation Keras cannot fuse, a second layer that
 * applies it), nothing (`alias`: the node passes its input through), or the reason it cannot be exported.
 */
type Rule = (c: RuleCtx) => { layer: KerasLayer; then?: KerasLayer; rename?: Record<string, string> } | { alias: true } | { none: string };

/**
 * Activations Keras applies inside a layer, by our name; leaky_relu (alpha 0.2) becomes its own layer. The
 * tanh form of gelu has none: TensorFlow.js registers it as gelu_new but reads a model.json's "gelu_new"
 * as "geluNew", which it does not know.
 */
const ACT: Record<string, string | null> = { linear: "linear", relu: "relu", relu6: "relu6", gelu: "gelu", silu: "swish", sigmoid: "sigmoid", tanh: "tanh", softmax: "softmax", elu: "elu", leaky_relu: null };
const NO_GELU_TANH = "TensorFlow.js cannot load the tanh form of gelu from a model.json (it reads gelu_new as geluNew); use gelu without approximate";

const pair = (v: AttrValue | undefined) => v as [number, number];

/** A layer with a fused activation: Keras's own when it has it, else linear and a separate layer. */
function withActivation(c: RuleCtx, class_name: string, config: Record<string, unknown>): { layer: KerasLayer; then?: KerasLayer } | { none: string } {
  const act = (c.a.activation as string | undefined) ?? "linear";
  if (act === "gelu_tanh") return { none: NO_GELU_TANH };
  const k = ACT[act];
  if (k !== null && k !== undefined) return { layer: { class_name, config: { ...config, activation: k } } };
  return { layer: { class_name, config: { ...config, activation: "linear" } }, then: { class_name: "LeakyReLU", config: { alpha: 0.2 } } };
}

/** squeeze and expand_dims: Keras's Reshape to the node's per-sample shape, when it is all numbers. */
function reshapeTo(c: RuleCtx): { layer: KerasLayer } | { none: string } {
  const shape = (c.n.shape ?? []).slice(1);
  if (!shape.length) return { none: "Keras's Reshape cannot make each sample a scalar" };
  return shape.every((d) => typeof d === "number") ? { layer: { class_name: "Reshape", config: { target_shape: shape } } } : { none: "Keras's Reshape takes numbers, and this shape has a symbolic dimension" };
}

const none = (reason: string) => (): { none: string } => ({ none: reason });
const plain = (class_name: string, config: (c: RuleCtx) => Record<string, unknown> = () => ({})): Rule => (c) => ({ layer: { class_name, config: config(c) } });
const activation = (name: string): Rule => plain("Activation", () => ({ activation: name }));

/** Keras pads by name only (valid, same): explicit padding (PyTorch's padding=) and ceil_mode have no Keras form. */
const EXPLICIT = "Keras's padding is valid or same: explicit padding has no Keras form (zero_pad2d before a valid layer does, and computes the same for convolutions and average pools)";
const EXPLICIT_1D = "Keras's padding is a name (valid, same; causal on Conv1D): explicit padding (PyTorch's padding=) has no Keras form on a 1-D layer";
const explicit = (rule: Rule, dims: 1 | 2 = 2): Rule => (c) => (Array.isArray(c.a.padding) ? { none: dims === 2 ? EXPLICIT : EXPLICIT_1D } : c.a.ceil_mode === true ? { none: "Keras's pools have no ceil_mode" } : rule(c));

function pool(class_name: string, dims: 1 | 2): Rule {
  return explicit(plain(class_name, (c) => {
    const size = dims === 2 ? pair(c.a.size) : [c.a.size as number];
    const stride = c.a.stride === null ? size : dims === 2 ? pair(c.a.stride) : [c.a.stride as number];
    return { pool_size: size, strides: stride, padding: c.a.padding, data_format: "channels_last" };
  }), dims);
}

/** Binary ops: Keras merge layers take two tensors, not a literal constant. */
function merge(class_name: string): Rule {
  return (c) => (c.inputOps.includes("constant") ? { none: "Keras merge layers combine two tensors, and this operand is a literal number" } : { layer: { class_name, config: {} } });
}

/** Initializers TensorFlow.js can run without chained ops (its Orthogonal cannot); the weights replace them. */
const ZEROS = { class_name: "Zeros", config: {} };

function recurrent(kind: "LSTM" | "GRU"): Rule {
  return (c) => {
    if (kind === "GRU" && c.a.reset_after !== false) return { none: "TensorFlow.js's GRU supports only reset_after: false; declare gru(…, reset_after: false) to export it" };
    const config = { units: c.a.units, return_sequences: !!c.a.return_sequences, activation: "tanh", recurrent_activation: "sigmoid", use_bias: true, kernel_initializer: ZEROS, recurrent_initializer: ZEROS, bias_initializer: ZEROS, ...(kind === "GRU" ? { reset_after: false } : {}) };
    if (!c.a.bidirectional) return { layer: { class_name: kind, config } };
    // Bidirectional(RNN named "rnn") names its weights forward_rnn/… and backward_rnn/…; ours are forward/… and backward/….
    const rename: Record<string, string> = {};
    for (const dir of ["forward", "backward"]) for (const role of ["kernel", "recurrent_kernel", "bias"]) rename[`${dir}/${role}`] = `${dir}_rnn/${role}`;
    return { layer: { class_name: "Bidirectional", config: { merge_mode: "concat", layer: { class_name: kind, config: { ...config, name: "rnn" } } } }, rename };
  };
}

export const KERAS: Record<OpKind, Rule> = {
  input: none("inputs are InputLayers"),
  constant: none("a literal number is not a layer"),
  dense: (c) => withActivation(c, "Dense", { units: c.a.units, use_bias: !!c.a.bias }),
  tied_dense: none("Keras has no layer that multiplies by another layer's transposed embedding table"),
  conv1d: explicit((c) => (c.a.groups !== 1 ? { none: "grouped convolutions (groups above 1) have no TensorFlow.js layer" } : c.a.padding === "causal" ? { none: "TensorFlow.js's Conv1D computes the output length of padding: causal as if it were valid" } : withActivation(c, "Conv1D", { filters: c.a.filters, kernel_size: [c.a.kernel], strides: [c.a.stride], padding: c.a.padding, dilation_rate: [c.a.dilation], use_bias: !!c.a.bias, data_format: "channels_last" })), 1),
  conv2d: explicit((c) => (c.a.groups !== 1 ? { none: "grouped convolutions (groups above 1) have no TensorFlow.js layer" } : withActivation(c, "Conv2D", { filters: c.a.filters, kernel_size: pair(c.a.kernel), strides: pair(c.a.stride), padding: c.a.padding, dilation_rate: pair(c.a.dilation), use_bias: !!c.a.bias, data_format: "channels_last" }))),
  conv1d_transpose: none("TensorFlow.js layers has no Conv1DTranspose"),
  conv2d_transpose: (c) => withActivation(c, "Conv2DTranspose", { filters: c.a.filters, kernel_size: pair(c.a.kernel), strides: pair(c.a.stride), padding: c.a.padding, use_bias: !!c.a.bias, data_format: "channels_last" }),
  depthwise_conv2d: explicit((c) => withActivation(c, "DepthwiseConv2D", { kernel_size: pair(c.a.kernel), strides: pair(c.a.stride), padding: c.a.padding, dilation_rate: pair(c.a.dilation), depth_multiplier: c.weight("depthwise_kernel")?.[3] ?? 1, use_bias: !!c.a.bias, data_format: "channels_last" })),
  separable_conv2d: explicit((c) => withActivation(c, "SeparableConv2D", { filters: c.a.filters, kernel_size: pair(c.a.kernel), strides: pair(c.a.stride), padding: c.a.padding, dilation_rate: pair(c.a.dilation), depth_multiplier: c.weight("depthwise_kernel")?.[3] ?? 1, use_bias: !!c.a.bias, data_format: "channels_last" })),
  max_pool1d: pool("MaxPooling1D", 1),
  avg_pool1d: pool("AveragePooling1D", 1),
  max_pool2d: pool("MaxPooling2D", 2),
  avg_pool2d: pool("AveragePooling2D", 2),
  global_avg_pool1d: plain("GlobalAveragePooling1D"),
  global_max_pool1d: plain("GlobalMaxPooling1D"),
  global_avg_pool2d: plain("GlobalAveragePooling2D", () => ({ data_format: "channels_last" })),
  global_max_pool2d: plain("GlobalMaxPooling2D", () => ({ data_format: "channels_last" })),
  zero_pad2d: plain("ZeroPadding2D", (c) => {
    const [ph, pw] = pair(c.a.padding);
    return { padding: [[ph, ph], [pw, pw]], data_format: "channels_last" };
  }),
  upsample2d: plain("UpSampling2D", (c) => ({ size: pair(c.a.size), interpolation: "nearest", data_format: "channels_last" })),
  batchnorm: plain("BatchNormalization", (c) => ({ axis: -1, momentum: c.a.momentum, epsilon: c.a.epsilon, center: !!c.a.center, scale: !!c.a.scale })),
  rmsnorm: none("TensorFlow.js layers has no RMS normalization layer"),
  groupnorm: none("TensorFlow.js layers has no group normalization layer"),
  instancenorm: none("TensorFlow.js layers has no instance normalization layer"),
  layernorm: plain("LayerNormalization", (c) => ({ axis: -1, epsilon: c.a.epsilon, center: true, scale: true })),
  dropout: plain("Dropout", (c) => ({ rate: c.a.rate })),
  sample_normal: none("TensorFlow.js layers has no sampling layer"),
  random_normal_like: none("Keras's GaussianNoise adds noise to its input; it has no layer that returns the noise alone"),
  parameter: none("Keras has no layer that holds a free learned tensor"),
  embedding: plain("Embedding", (c) => ({ input_dim: c.a.vocab, output_dim: c.a.dim })),
  pos_embedding: none("TensorFlow.js layers has no learned positional embedding"),
  lstm: recurrent("LSTM"),
  gru: recurrent("GRU"),
  attention: none("TensorFlow.js layers has no multi-head attention layer"),
  flatten: plain("Flatten", () => ({ data_format: "channels_last" })),
  reshape: (c) => {
    const shape = c.a.shape as (number | string)[];
    if (!shape.length) return { none: "Keras's Reshape cannot make each sample a scalar" };
  return shape.every((d) => typeof d === "number") ? { layer: { class_name: "Reshape", config: { target_shape: shape } } } : { none: "Keras's Reshape takes numbers, and this target names a symbolic dimension" };
  },
  transpose: plain("Permute", (c) => ({ dims: (c.a.perm as number[]).slice(1) })),
  concat: plain("Concatenate", (c) => ({ axis: c.a.axis })),
  take: none("Keras has no layer that selects one index along an axis"),
  slice: none("Keras has no layer that slices along an axis (Cropping1D/2D crop only steps or height and width)"),
  squeeze: (c) => reshapeTo(c),
  expand_dims: (c) => reshapeTo(c),
  cast: none("Keras has no cast layer"),
  add: merge("Add"),
  sub: none("TensorFlow.js layers has no Subtract layer"),
  mul: merge("Multiply"),
  div: none("Keras has no division layer"),
  matmul: none("Keras's Dot layer is not a batched matrix product over the last two axes"),
  relu: activation("relu"),
  relu6: activation("relu6"),
  gelu: (c) => (c.a.approximate ? { none: NO_GELU_TANH } : { layer: { class_name: "Activation", config: { activation: "gelu" } } }),
  silu: activation("swish"),
  sigmoid: activation("sigmoid"),
  tanh: activation("tanh"),
  softmax: (c) => (c.a.axis === -1 ? { layer: { class_name: "Activation", config: { activation: "softmax" } } } : { layer: { class_name: "Softmax", config: { axis: c.a.axis } } }),
  leaky_relu: plain("LeakyReLU", (c) => ({ alpha: c.a.alpha })),
  elu: (c) => (c.a.alpha === 1 ? { layer: { class_name: "ELU", config: { alpha: 1 } } } : { none: "TensorFlow.js's ELU layer supports only alpha: 1" }),
  identity: () => ({ alias: true }),
  softplus: activation("softplus"),
  mish: activation("mish"),
  hardswish: none("TensorFlow.js layers has no hard-swish activation"),
  hardsigmoid: none("TensorFlow.js's hardSigmoid is 0.2·x + 0.5, not PyTorch's relu6(x + 3) / 6"),
  exp: none("TensorFlow.js layers has no exponential layer"),
  log: none("Keras has no logarithm layer"),
  sqrt: none("Keras has no square-root layer"),
  abs: none("Keras has no absolute-value layer"),
  neg: none("Keras has no negation layer"),
  square: none("Keras has no square layer"),
  pow: none("Keras has no power layer"),
  clip: none("Keras has no clipping layer"),
  reduce_mean: none("Keras has no reduction layer over arbitrary axes"),
  reduce_sum: none("Keras has no reduction layer over arbitrary axes"),
  reduce_max: none("Keras has no reduction layer over arbitrary axes"),
  reduce_min: none("Keras has no reduction layer over arbitrary axes"),
};

// Plugin ops have no tfjs-layers form (a Keras model loads without the project's plugins): NN6020 names them.
onPlugins((from) => {
  const table = KERAS as Record<string, Rule>;
  const names = (from.plugin.ops ?? []).map((op) => op.name);
  for (const n of names) table[n] = () => ({ none: `it is plugin "${from.plugin.name}"'s op (${from.file}), which a tfjs-layers model cannot load; export to ONNX instead` });
  return () => {
    for (const n of names) delete table[n];
  };
});

const TFJS_DTYPE: Record<string, string> = { f16: "float32", f32: "float32", f64: "float32", i8: "int32", i32: "int32", i64: "int32", bool: "bool" };

export interface KerasModel {
  /** The `modelTopology` of model.json. */
  topology: Record<string, unknown>;
  /**
   * The Keras name of each weight the topology carries (`layer/role`; the same name but for wrapped layers), by
   * IR weight name. Weights of layers that reach no output are not there: tf.loadLayersModel builds only the
   * layers between the inputs and the outputs and refuses weights for any other.
   */
  weightNames: Record<string, string>;
}

/**
 * The Keras functional topology of a checked model, or NN6020 for the first node (in topological order)
 * that has no Keras equivalent. A shared layer is one Keras layer called once per use (one inbound node
 * each), as in Keras. Nodes that reach no output (a checked model keeps unused bindings) are left out.
 */
export function kerasModel(m: IRModel): { model: KerasModel | null; diagnostics: Diagnostic[] } {
  const layers: { class_name: string; config: Record<string, unknown>; name: string; inbound_nodes: unknown[][] }[] = [];
  const byName = new Map<string, (typeof layers)[number]>();
  // Each IR node's value as a Keras tensor reference: [layer name, node index, tensor index].
  const ref = new Map<string, [string, number, number]>();
  const ops = new Map(m.nodes.map((n) => [n.id, n.op]));
  // The nodes some output reads, directly or not: the only ones a Keras functional model has.
  const live = new Set<string>();
  const inputsOf = new Map(m.nodes.map((n) => [n.id, n.inputs]));
  for (const stack = m.outputs.map((o) => o.node); stack.length; ) {
    const id = stack.pop()!;
    if (!live.has(id)) (live.add(id), stack.push(...(inputsOf.get(id) ?? [])));
  }
  const liveLayers = new Set(m.nodes.filter((n) => live.has(n.id)).map((n) => n.name));
  const weightNames: Record<string, string> = Object.fromEntries(m.params.filter((p) => liveLayers.has(p.layer)).map((p) => [p.name, p.name]));
  const call = (name: string, spec: KerasLayer, inputs: [string, number, number][]): [string, number, number] => {
    let l = byName.get(name);
    if (!l) {
      l = { class_name: spec.class_name, config: { name, trainable: true, ...spec.config }, name, inbound_nodes: [] };
      layers.push(l);
      byName.set(name, l);
    }
    l.inbound_nodes.push(inputs.map((r) => [...r, {}]));
    return [name, l.inbound_nodes.length - 1, 0];
  };
  for (const n of m.nodes) {
    if (n.op === "input") {
      const inp = m.inputs.find((i) => i.node === n.id)!;
      const shape = inp.shape.map((d, i) => (i === 0 || typeof d !== "number" ? null : d));
      layers.push({ class_name: "InputLayer", config: { batch_input_shape: shape, dtype: TFJS_DTYPE[inp.dtype] ?? "float32", sparse: false, name: n.name }, name: n.name, inbound_nodes: [] });
      byName.set(n.name, layers[layers.length - 1]!);
      ref.set(n.id, [n.name, 0, 0]);
      continue;
    }
    if (n.op === "constant") continue; // only a merge layer reads it, and that one reports it
    if (!live.has(n.id)) continue;
    const params = m.params.filter((p) => p.layer === n.name);
    const r = (n.attrs.lora as string[] | undefined)?.length ? { none: "it carries LoRA adapters (export to ONNX, which merges them into the kernels)" } : KERAS[n.op as OpKind]({ n, a: n.attrs, inputOps: n.inputs.map((i) => ops.get(i) ?? ""), weight: (role) => params.find((p) => p.role === role)?.shape });
    if ("none" in r) {
      return { model: null, diagnostics: [diag("noKerasLayer", { file: n.span.file, start: n.span.start, end: n.span.end }, { layer: n.name, op: n.op, reason: r.none })] };
    }
    const ins = n.inputs.map((i) => ref.get(i)!);
    if ("alias" in r) {
      ref.set(n.id, ins[0]!);
      continue;
    }
    for (const [role, keras] of Object.entries(r.rename ?? {})) if (weightNames[`${n.name}/${role}`]) weightNames[`${n.name}/${role}`] = `${n.name}/${keras}`;
    let out = call(n.name, r.layer, ins);
    if (r.then) out = call(`${n.name}__activation`, r.then, [out]);
    ref.set(n.id, out);
  }
  const topology = {
    class_name: "Model",
    config: {
      name: m.name,
      layers,
      input_layers: m.inputs.map((i) => ref.get(i.node)!),
      output_layers: m.outputs.map((o) => ref.get(o.node)!),
    },
    keras_version: "tfjs-layers 4.22.0",
    backend: "tensor_flow.js",
  };
  return { model: { topology, weightNames }, diagnostics: [] };
}
