// Fusion passes (-O2): batchnorm folded into the convolution or dense layer before it, for inference (the
// folded weights are *derived*: the runtime computes them from the trained ones); the written-out GELU
// (gelu.ts); chains of scalar multiplications or additions (chains.ts); an activation folded into the layer before it, which TensorFlow.js then runs as one fused op;
// and zero padding folded into the convolution or max pooling after it, for inference.
import { explicitPadding, type ExplicitPadding } from "../ir/padding.js";
import type { IRModel, IRNode, IRParam } from "../ir/types.js";
import type { Pass } from "./types.js";
import { foldScalarChains } from "./chains.js";
import { fuseGelu } from "./gelu.js";
import { dropUnused, forward, readerCounts } from "./util.js";

/** Layers whose output channels a batchnorm can be folded into, and the role of their kernel. */
const FOLDABLE: Record<string, string> = { conv2d: "kernel", dense: "kernel", depthwise_conv2d: "depthwise_kernel" };

/** How many times a layer (by name) is applied: a shared layer's weights cannot be rewritten for one use. */
function applications(m: IRModel): Map<string, number> {
  const a = new Map<string, number>();
  for (const n of m.nodes) a.set(n.name, (a.get(n.name) ?? 0) + 1);
  return a;
}

const foldBatchnorm: Pass = {
  name: "fold-batchnorm",
  level: 2,
  modes: ["infer"],
  doc: "batchnorm after a conv2d, depthwise_conv2d or dense (linear, not shared) is folded into its kernel and bias",
  run(m) {
    const u = readerCounts(m);
    const apps = applications(m);
    const byId = new Map(m.nodes.map((n) => [n.id, n]));
    const params = new Map(m.params.map((p) => [p.name, p]));
    const alias = new Map<string, string>();
    const replaced = new Map<string, IRNode>();
    let out = [...m.params];
    for (const bn of m.nodes) {
      if (bn.op !== "batchnorm") continue;
      const prev = byId.get(bn.inputs[0]!)!;
      const role = FOLDABLE[prev.op];
      if (!role || prev.attrs.activation !== "linear" || (prev.attrs.lora as string[] | undefined)?.length || u.get(prev.id) !== 1 || apps.get(prev.name) !== 1 || apps.get(bn.name) !== 1) continue;
      const kernel = params.get(`${prev.name}/${role}`)!;
      const oldBias = prev.attrs.bias ? params.get(`${prev.name}/bias`)! : null;
      const w = (r: string) => (params.has(`${bn.name}/${r}`) ? `${bn.name}/${r}` : null);
      const stats = { gamma: w("gamma"), beta: w("beta"), mean: `${bn.name}/moving_mean`, variance: `${bn.name}/moving_variance`, epsilon: bn.attrs.epsilon! };
      const derivedKernel: IRParam = { ...kernel, derive: { fn: "fold_bn_kernel", args: { kernel: kernel.name, depthwise: prev.op === "depthwise_conv2d", ...stats } } };
      const bias: IRParam = {
        name: `${prev.name}/bias`,
        layer: prev.name,
        role: "bias",
        shape: [bn.shape![bn.shape!.length - 1] as number],
        dtype: kernel.dtype,
        init: "zeros",
        trainable: false,
        derive: { fn: "fold_bn_bias", args: { bias: oldBias?.name ?? null, ...stats } },
      };
      out = out.filter((p) => p !== kernel && p !== oldBias).concat([derivedKernel, bias]);
      replaced.set(prev.id, { ...prev, attrs: { ...prev.attrs, bias: true }, binding: bn.binding ?? prev.binding });
      alias.set(bn.id, prev.id);
    }
    if (!alias.size) return m;
    const nodes = m.nodes.map((n) => replaced.get(n.id) ?? n);
    // Keep the params in the order of their layers' nodes, as the checker made them.
    const order = new Map(nodes.map((n, i) => [n.name, i]));
    const sorted = out.map((p, i) => [p, i] as const).sort(([a, i], [b, j]) => (order.get(a.layer) ?? 0) - (order.get(b.layer) ?? 0) || i - j).map(([p]) => p);
    return dropUnused(forward({ ...m, nodes, params: sorted }, alias), "infer");
  },
};

/**
 * Activation ops a layer can apply itself, by what the op's attributes must be: the layer's `activation`
 * value. tfjs runs these inside its fused conv2d / depthwiseConv2d / matMul (runtime/ops.ts FUSED); the
 * others (tanh, gelu, silu, softmax) have no fused form, so moving them would gain nothing.
 */
function fusedActivation(n: IRNode): string | null {
  switch (n.op) {
    case "relu":
    case "relu6":
    case "sigmoid":
      return n.op;
    case "elu":
      return n.attrs.alpha === 1 ? "elu" : null;
    case "leaky_relu":
      // A layer's leaky_relu activation has alpha 0.2 (runtime/ops.ts activate).
      return n.attrs.alpha === 0.2 ? "leaky_relu" : null;
    default:
      return null;
  }
}

/** Layers whose `activation` tfjs fuses into the op (grouped convolutions and dilated depthwise ones apply it afterwards). */
function takesFusedActivation(n: IRNode): boolean {
  if (n.attrs.activation !== "linear") return false;
  const undilated = !Array.isArray(n.attrs.dilation) || (n.attrs.dilation as number[]).every((d) => d === 1);
  switch (n.op) {
    case "dense":
    case "separable_conv2d":
      return true;
    case "conv1d":
    case "conv2d":
      return (n.attrs.groups as number) === 1;
    case "depthwise_conv2d":
      return undilated;
    default:
      return false;
  }
}

const fuseActivation: Pass = {
  name: "fuse-activation",
  level: 2,
  modes: ["train", "infer"],
  doc: "a relu, relu6, sigmoid, elu or leaky_relu(0.2) right after a linear conv1d, conv2d, depthwise_conv2d, separable_conv2d or dense (its only reader) becomes that layer's activation: one fused tfjs op",
  run(m, mode) {
    const u = readerCounts(m);
    const byId = new Map(m.nodes.map((n) => [n.id, n]));
    const alias = new Map<string, string>();
    const replaced = new Map<string, IRNode>();
    for (const r of m.nodes) {
      const activation = fusedActivation(r);
      if (!activation) continue;
      const prev = replaced.get(r.inputs[0]!) ?? byId.get(r.inputs[0]!)!;
      if (!takesFusedActivation(prev) || u.get(prev.id) !== 1) continue;
      replaced.set(prev.id, { ...prev, attrs: { ...prev.attrs, activation }, binding: r.binding ?? prev.binding });
      alias.set(r.id, prev.id);
    }
    if (!alias.size) return m;
    return dropUnused(forward({ ...m, nodes: m.nodes.map((n) => replaced.get(n.id) ?? n) }, alias), mode);
  },
};

/** Ops whose every output value is ≥ 0 (as a layer activation or as an op). */
const NONNEGATIVE = new Set(["relu", "relu6", "sigmoid", "softmax"]);
function nonnegative(n: IRNode): boolean {
  return NONNEGATIVE.has(n.op) || (typeof n.attrs.activation === "string" && NONNEGATIVE.has(n.attrs.activation));
}

const foldPadding: Pass = {
  name: "fold-padding",
  level: 2,
  modes: ["infer"],
  doc: "zero_pad2d before an undilated conv2d (valid or explicit padding) becomes the conv's explicit padding; before a max_pool2d (without ceil_mode) too when its input is ≥ 0 and every window keeps a real value (max over zeros = max over nothing there); no copy of the padded tensor",
  run(m) {
    const byId = new Map(m.nodes.map((n) => [n.id, n]));
    let changed = false;
    const nodes = m.nodes.map((n0) => {
      if (n0.op !== "conv2d" && n0.op !== "max_pool2d") return n0;
      let n = n0;
      // Fold a chain of paddings, nearest first.
      for (;;) {
        const zp = byId.get(n.inputs[0]!)!;
        const own = explicitPadding(n.attrs.padding);
        if (zp.op !== "zero_pad2d" || !own) return n;
        const [ph, pw] = zp.attrs.padding as [number, number];
        const pads: ExplicitPadding = [own[0] + ph, own[1] + ph, own[2] + pw, own[3] + pw];
        if (n.op === "conv2d") {
          if ((n.attrs.dilation as number[]).some((d) => d !== 1)) return n;
        } else {
          const size = n.attrs.size as [number, number];
          if (n.attrs.ceil_mode === true || !nonnegative(byId.get(zp.inputs[0]!)!) || pads[0] >= size[0] || pads[1] >= size[0] || pads[2] >= size[1] || pads[3] >= size[1]) return n;
        }
        changed = true;
        n = { ...n, inputs: [zp.inputs[0]!], attrs: { ...n.attrs, padding: [...pads] } };
      }
    });
    return changed ? dropUnused({ ...m, nodes }, "infer") : m;
  },
};

export const FUSION_PASSES: Pass[] = [foldBatchnorm, fuseGelu, foldScalarChains, fuseActivation, foldPadding];
