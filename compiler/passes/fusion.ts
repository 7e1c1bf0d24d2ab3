// Fusion passes (-O2): batchnorm folded into the convolution or dense layer before it, for inference (the
// folded weights are *derived*: the runtime computes them from the trained ones), and a relu folded into
// the layer before it, which TensorFlow.js then runs as one fused op (forward and gradient).
import type { IRModel, IRNode, IRParam } from "../ir/types.js";
import type { Pass } from "./types.js";
import { dropUnused, forward } from "./util.js";

/** How many times each node is read (by nodes and by outputs). */
function uses(m: IRModel): Map<string, number> {
  const u = new Map<string, number>();
  for (const n of m.nodes) for (const x of n.inputs) u.set(x, (u.get(x) ?? 0) + 1);
  for (const o of m.outputs) u.set(o.node, (u.get(o.node) ?? 0) + 1);
  return u;
}

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
    const u = uses(m);
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
      if (!role || prev.attrs.activation !== "linear" || u.get(prev.id) !== 1 || apps.get(prev.name) !== 1 || apps.get(bn.name) !== 1) continue;
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

const fuseRelu: Pass = {
  name: "fuse-relu",
  level: 2,
  modes: ["train", "infer"],
  doc: "a relu right after a linear conv2d or dense (its only reader) becomes that layer's activation: one fused tfjs op",
  run(m, mode) {
    const u = uses(m);
    const byId = new Map(m.nodes.map((n) => [n.id, n]));
    const alias = new Map<string, string>();
    const replaced = new Map<string, IRNode>();
    for (const r of m.nodes) {
      if (r.op !== "relu") continue;
      const prev = replaced.get(r.inputs[0]!) ?? byId.get(r.inputs[0]!)!;
      if ((prev.op !== "conv2d" && prev.op !== "dense") || prev.attrs.activation !== "linear" || u.get(prev.id) !== 1) continue;
      // Grouped convolutions apply their activation after the concat: same result, no fused op.
      if (prev.op === "conv2d" && (prev.attrs.groups as number) > 1) continue;
      replaced.set(prev.id, { ...prev, attrs: { ...prev.attrs, activation: "relu" }, binding: r.binding ?? prev.binding });
      alias.set(r.id, prev.id);
    }
    if (!alias.size) return m;
    return dropUnused(forward({ ...m, nodes: m.nodes.map((n) => replaced.get(n.id) ?? n) }, alias), mode);
  },
};

export const FUSION_PASSES: Pass[] = [foldBatchnorm, fuseRelu];
