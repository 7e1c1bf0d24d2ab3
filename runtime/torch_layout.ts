// layout torch: how PyTorch names and lays out a layer's weights, both ways. THE tables of that fact:
// - Names (TORCH_LEAVES, GROUP_ALIASES): a state_dict entry's leaf, within a module group of a layer (an
//   attention layer's `query`/`key`/`value`/`output`, nn.MultiheadAttention's `out_proj` and packed
//   `in_proj`; a separable conv's `depthwise`/`pointwise`), → the weight(s) it fills. Which module a layer
//   is: runtime/torch_names.ts.
// - Layouts (torchToNnetc, and its inverse nnetcToTorch), decided by the kind of the nnetc weight alone:
//   kernels [out, in(, k…)] ↔ [(k…,) in, out], depthwise [ch·m, 1, kh, kw] ↔ [kh, kw, ch, m], recurrent
//   kernels transposed with GRU gate blocks (r, z, n) ↔ (z, r, h), LSTM's single bias ↔ bias_ih + bias_hh,
//   GRU's [2, 3u] bias ↔ its two rows.
// Used by pretrained weights in (runtime/pretrained.ts) and by the PyTorch engine and export, whose modules
// (compiler/emit/torch.ts) name their parameters this way; `toTorchStateDict` ∘ `mapPretrained` is the
// identity (spec/unit/torch_emit.test.ts).
import { encodeSafetensors, type HostTensor } from "./checkpoint/index.js";
import { torchModulePath } from "./torch_names.js";

/** A model weight as the layout rules see it. */
export interface TorchParam {
  name: string;
  layer: string;
  role: string;
  shape: readonly number[];
}

/** A float32 tensor on the host. */
export interface F32 {
  shape: number[];
  data: Float32Array;
}

/** Permute a row-major tensor's axes: out axis i is in axis perm[i]. */
export function transpose(t: F32, perm: number[]): F32 {
  const shape = perm.map((p) => t.shape[p]!);
  const inStrides = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float32Array(t.data.length);
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < shape.length; i++) src += idx[i]! * inStrides[perm[i]!]!;
    out[o] = t.data[src]!;
    for (let i = shape.length - 1; i >= 0; i--) {
      if (++idx[i]! < shape[i]!) break;
      idx[i] = 0;
    }
  }
  return { shape, data: out };
}

/** GRU gate blocks along the last axis: PyTorch's (r, z, n) → Keras's (z, r, h). */
function gruGates(t: F32): F32 {
  const last = t.shape[t.shape.length - 1]!;
  const u = last / 3;
  const rows = t.data.length / last;
  const out = new Float32Array(t.data.length);
  for (let r = 0; r < rows; r++) {
    const at = r * last;
    out.set(t.data.subarray(at + u, at + 2 * u), at); // z
    out.set(t.data.subarray(at, at + u), at + u); // r
    out.set(t.data.subarray(at + 2 * u, at + 3 * u), at + 2 * u); // n
  }
  return { shape: t.shape.slice(), data: out };
}

// ── layout torch: the name-conversion rules and the layout conversions ─────────────────────────────────

/** The layer's weights, by role, as a torch module group inside the layer sees them. */
export type Roles = Map<string, TorchParam>;

/** What one tensor of the file fills: a weight (by its role within the group), and how. */
export interface Fill {
  role: string;
  /** A GRU bias: the row of the weight's [2, 3·units] (0 input, 1 recurrent). */
  row?: number;
  /** LSTM biases: added to the other one. */
  add?: boolean;
  /** nn.MultiheadAttention's packed in_proj: this fill takes chunk `part` of 3 along axis 0. */
  part?: number;
}

/** The roles a `weight` can be, by what the group has (exactly one of them must be there). */
const WEIGHT_ROLES = ["kernel", "depthwise_kernel", "pointwise_kernel", "gamma", "embeddings", "value"] as const;

/**
 * THE name-conversion rules of layout torch: a state_dict entry's last name (the leaf) → the weight(s) of the
 * module group it fills, given the roles that group has. The first rule whose leaf matches decides.
 */
export const TORCH_LEAVES: { leaf: RegExp; fills: (m: RegExpExecArray, roles: Roles) => Fill[] | null }[] = [
  // Linear, Conv1d/2d, a depthwise or pointwise conv, a norm's scale, an Embedding, a learned tensor
  // (parameter): whichever the group has.
  { leaf: /^weight$/, fills: (_, roles) => (WEIGHT_ROLES.filter((r) => roles.has(r)).length === 1 ? [{ role: WEIGHT_ROLES.find((r) => roles.has(r))! }] : null) },
  { leaf: /^bias$/, fills: (_, roles) => (roles.has("bias") ? [{ role: "bias" }] : roles.has("beta") ? [{ role: "beta" }] : null) },
  { leaf: /^running_mean$/, fills: () => [{ role: "moving_mean" }] },
  { leaf: /^running_var$/, fills: () => [{ role: "moving_variance" }] },
  // LSTM / GRU, one layer: `_reverse` is the backward direction of a bidirectional layer.
  {
    leaf: /^(weight|bias)_(ih|hh)_l0(_reverse)?$/,
    fills: (m, roles) => {
      const dir = roles.has("forward/kernel") ? (m[3] ? "backward/" : "forward/") : "";
      if (m[1] === "weight") return [{ role: `${dir}${m[2] === "ih" ? "kernel" : "recurrent_kernel"}` }];
      const bias = roles.get(`${dir}bias`);
      return bias ? [recurrentBias(m[2] as "ih" | "hh", bias, roles, dir)] : null;
    },
  },
  // A LoRA adapter of the group's kernel (nnetc's own module form: lora_a [in, rank], lora_b [rank, out]).
  { leaf: /^lora_[ab]$/, fills: (m, roles) => (roles.has(m[0]) ? [{ role: m[0] }] : null) },
  // nn.MultiheadAttention: in_proj_weight / in_proj_bias pack query, key and value along axis 0.
  { leaf: /^in_proj_(weight|bias)$/, fills: (m) => ["query", "key", "value"].map((g, part) => ({ role: `${g}/${m[1] === "weight" ? "kernel" : "bias"}`, part })) },
  // ...and hold them apart when kdim/vdim differ from embed_dim.
  { leaf: /^(q|k|v)_proj_weight$/, fills: (m) => [{ role: `${{ q: "query", k: "key", v: "value" }[m[1] as "q" | "k" | "v"]}/kernel` }] },
];

/**
 * Module groups inside one nnetc layer: an attention layer's projections `query`, `key`, `value`,
 * `output` (BERT's names; nn.MultiheadAttention's `out_proj` is `output`, Llama's `q_proj`, `k_proj`,
 * `v_proj`, `o_proj` are query, key, value, output), a separable
 * convolution's `depthwise` and `pointwise` convolutions (the bias is the pointwise one's). The roles the
 * group sees, by their names within it.
 */
const GROUP_ALIASES: Record<string, string> = { out_proj: "output", q_proj: "query", k_proj: "key", v_proj: "value", o_proj: "output" };

export function groupRoles(layer: Roles, group: string): Roles {
  if (!group) return layer;
  const prefix = `${Object.prototype.hasOwnProperty.call(GROUP_ALIASES, group) ? GROUP_ALIASES[group] : group}/`;
  const inner: Roles = new Map([...layer].filter(([r]) => r.startsWith(prefix)).map(([r, p]) => [r.slice(prefix.length), p]));
  if (inner.size) return inner;
  if (group === "depthwise" && layer.has("depthwise_kernel") && layer.has("pointwise_kernel")) return new Map([["depthwise_kernel", layer.get("depthwise_kernel")!]]);
  if (group === "pointwise" && layer.has("pointwise_kernel")) return new Map([["pointwise_kernel", layer.get("pointwise_kernel")!], ...(layer.has("bias") ? [["bias", layer.get("bias")!] as const] : [])]);
  return new Map();
}

/** PyTorch's bias_ih / bias_hh into a recurrent bias: a GRU's is [2, 3·units] (reset_after: input row, recurrent row); an LSTM's two add up. */
function recurrentBias(which: "ih" | "hh", bias: TorchParam, roles: Roles, dir: string): Fill {
  if (bias.shape.length === 2) return { role: bias.role, row: which === "ih" ? 0 : 1 };
  return isGru(roles, dir) ? { role: bias.role } : { role: bias.role, add: true };
}

/** A whole-tensor map entry names its weight: only a recurrent bias takes anything from the tensor's leaf (its row, or that it adds up). */
export function directFill(leaf: string, p: TorchParam, layer: Roles): Fill {
  const m = /^bias_(ih|hh)_l0(_reverse)?$/.exec(leaf);
  const dir = p.role.slice(0, p.role.lastIndexOf("/") + 1);
  if (!m || p.role !== `${dir}bias` || !layer.has(`${dir}recurrent_kernel`)) return { role: p.role };
  return recurrentBias(m[1] as "ih" | "hh", p, layer, dir);
}

/** A model's weights by layer, each layer's by role: what a weight's kind is decided from. */
export function rolesByLayer(params: readonly TorchParam[]): Map<string, Roles> {
  const byLayer = new Map<string, Roles>();
  for (const p of params) {
    if (!byLayer.has(p.layer)) byLayer.set(p.layer, new Map());
    byLayer.get(p.layer)!.set(p.role, p);
  }
  return byLayer;
}

/** A recurrent layer's direction `dir` is a GRU: its kernel has 3 gates (an LSTM's has 4). */
function isGru(roles: Roles, dir: string): boolean {
  return (roles.get(`${dir}kernel`)?.shape[1] ?? 0) === 3 * (roles.get(`${dir}recurrent_kernel`)?.shape[0] ?? -1);
}

/**
 * A PyTorch tensor in nnetc's layout for the weight `p`, decided by the weight's kind alone (its role within
 * its layer, whose weights are `layer`), never by how the name was reached (convention, prefix or whole-tensor
 * map entry). A tensor whose rank does not fit the kind is returned as it is: the shape check reports it.
 */
export function torchToNnetc(t: F32, p: TorchParam, layer: Roles): F32 {
  const leaf = p.role.slice(p.role.lastIndexOf("/") + 1);
  const dir = p.role.slice(0, p.role.length - leaf.length);
  const r = t.shape.length;
  if (layer.has(`${dir}recurrent_kernel`)) {
    const gru = isGru(layer, dir);
    if ((leaf === "kernel" || leaf === "recurrent_kernel") && r === 2) return gru && t.shape[0]! % 3 === 0 ? gruGates(transpose(t, [1, 0])) : transpose(t, [1, 0]);
    if (leaf === "bias" && gru && t.shape[r - 1]! % 3 === 0) return gruGates(t);
    return t;
  }
  switch (leaf) {
    case "kernel":
    case "pointwise_kernel":
      // Linear [out, in] → [in, out]; Conv1d [out, in, k] → [k, in, out]; Conv2d [out, in, kh, kw] → [kh, kw, in, out].
      if (r !== p.shape.length) return t;
      return r === 2 ? transpose(t, [1, 0]) : r === 3 ? transpose(t, [2, 1, 0]) : r === 4 ? transpose(t, [2, 3, 1, 0]) : t;
    case "depthwise_kernel": {
      // Conv2d with groups = channels: [ch·m, 1, kh, kw] → [kh, kw, ch, m].
      const m = p.shape[3] ?? 1;
      if (r !== 4 || t.shape[1] !== 1 || t.shape[0]! % m) return t;
      const [cm, , kh, kw] = t.shape as [number, number, number, number];
      return transpose({ shape: [cm / m, m, kh, kw], data: t.data }, [2, 3, 0, 1]);
    }
  }
  return t;
}

/** Chunk `part` of `of` along axis 0 (a packed in_proj), or the tensor as it is when axis 0 does not divide. */
export function chunk(t: F32, part: number, of: number): F32 {
  if (!t.shape.length || t.shape[0]! % of) return t;
  const n = t.data.length / of;
  return { shape: [t.shape[0]! / of, ...t.shape.slice(1)], data: t.data.slice(part * n, (part + 1) * n) };
}

/** The longest layer that is a prefix of `path` (segments before the leaf), and the module group after it. */
export function layerOf(segments: string[], byLayer: Map<string, Roles>): { layer: string; group: string } | null {
  for (let k = segments.length - 1; k >= 1; k--) {
    const layer = segments.slice(0, k).join("/");
    if (byLayer.has(layer)) return { layer, group: segments.slice(k, -1).join("/") };
  }
  return null;
}

// ── nnetc → torch ────────────────────────────────────────────────────────────────────────────────────

/** An nnetc weight's PyTorch form: its key(s) under the layer's module and the values there. */
export interface TorchEntry {
  /** state_dict key, e.g. `Stage_1.Bottleneck.conv2d.weight`. */
  key: string;
  value: F32;
}

/** The PyTorch form of weight `p` (value `t` in nnetc's layout) in a layer whose weights are `layer`. */
export function nnetcToTorch(t: F32, p: TorchParam, layer: Roles): TorchEntry[] {
  const mod = torchModulePath(p.layer);
  const slash = p.role.lastIndexOf("/");
  const leaf = p.role.slice(slash + 1);
  const group = slash < 0 ? "" : p.role.slice(0, slash);
  const at = (name: string, value: F32): TorchEntry => ({ key: `${mod}.${name}`, value });
  if (layer.has(`${group ? `${group}/` : ""}recurrent_kernel`)) {
    // LSTM / GRU: the direction is the group (forward/backward of a bidirectional layer).
    const dir = group ? `${group}/` : "";
    const sfx = group === "backward" ? "_l0_reverse" : "_l0";
    const gru = isGru(layer, dir);
    if (leaf === "kernel" || leaf === "recurrent_kernel") {
      const v = transpose(gru ? gruGates(t) : t, [1, 0]);
      return [at(`${leaf === "kernel" ? "weight_ih" : "weight_hh"}${sfx}`, v)];
    }
    if (gru && t.shape.length === 2) {
      const n = t.shape[1]!;
      const row = (r: number): F32 => gruGates({ shape: [n], data: t.data.slice(r * n, (r + 1) * n) });
      return [at(`bias_ih${sfx}`, row(0)), at(`bias_hh${sfx}`, row(1))];
    }
    // LSTM: one bias in nnetc, two in PyTorch (they add up): all of it in bias_ih, bias_hh zero.
    return [at(`bias_ih${sfx}`, t), at(`bias_hh${sfx}`, { shape: t.shape.slice(), data: new Float32Array(t.data.length) })];
  }
  const separable = layer.has("pointwise_kernel");
  const prefix = group ? `${group}.` : "";
  switch (leaf) {
    case "kernel":
    case "pointwise_kernel": {
      const r = t.shape.length;
      const v = r === 2 ? transpose(t, [1, 0]) : r === 3 ? transpose(t, [2, 1, 0]) : r === 4 ? transpose(t, [3, 2, 0, 1]) : t;
      return [at(`${prefix}${leaf === "pointwise_kernel" ? "pointwise." : ""}weight`, v)];
    }
    case "depthwise_kernel": {
      const [kh, kw, ch, m] = t.shape as [number, number, number, number];
      const v = transpose(t, [2, 3, 0, 1]);
      return [at(`${separable ? "depthwise." : ""}weight`, { shape: [ch * m, 1, kh, kw], data: v.data })];
    }
    case "bias":
      return [at(`${prefix}${separable ? "pointwise." : ""}bias`, t)];
    case "gamma":
    case "embeddings":
    case "value":
      return [at(`${prefix}weight`, t)];
    case "beta":
      return [at(`${prefix}bias`, t)];
    case "moving_mean":
      return [at("running_mean", t)];
    case "moving_variance":
      return [at("running_var", t)];
  }
  return [at(p.role.split("/").join("."), t)];
}

/** The state_dict keys that weight `p` becomes (nnetcToTorch's, without converting any value). */
export function torchKeys(p: TorchParam, layer: Roles): string[] {
  // Names depend on the weight's role and its layer only; a one-element stand-in converts in no time.
  const probe: F32 = { shape: p.shape.map(() => 1), data: new Float32Array(1) };
  return nnetcToTorch(probe, { ...p, shape: p.shape.map(() => 1) }, layer).map((e) => e.key);
}

/**
 * A model's weights (nnetc names and layouts) as the state_dict of its PyTorch module, key by key: `params`
 * are the weights to convert, `all` every weight of the model (a weight's kind depends on its layer's others).
 */
export function toTorchStateDict(params: readonly TorchParam[], weights: ReadonlyMap<string, F32> | Record<string, F32>, all: readonly TorchParam[] = params): Map<string, F32> {
  const get = (n: string) => (weights instanceof Map ? weights.get(n) : (weights as Record<string, F32>)[n]);
  const byLayer = rolesByLayer(all);
  const out = new Map<string, F32>();
  for (const p of params) {
    const t = get(p.name);
    if (!t) throw new Error(`no value for weight "${p.name}"`);
    for (const e of nnetcToTorch(t, p, byLayer.get(p.layer)!)) out.set(e.key, e.value);
  }
  return out;
}

/** A host tensor's values as float32 (weights and masks arrive as F32, U8 or I32 host tensors). */
export function hostF32(h: HostTensor): F32 {
  return { shape: h.shape.slice(), data: h.data instanceof Float32Array ? h.data : Float32Array.from(h.data as ArrayLike<number>, Number) };
}

/** `host` (nnetc names and layouts) as the safetensors bytes of a PyTorch state_dict (see toTorchStateDict), and how many tensors it holds. */
export function encodeTorchStateDict(params: readonly TorchParam[], host: Record<string, HostTensor>, all: readonly TorchParam[] = params, metadata?: Record<string, string>): { bytes: Uint8Array; tensors: number } {
  const f32 = Object.fromEntries(Object.entries(host).map(([k, v]) => [k, hostF32(v)]));
  const out: Record<string, HostTensor> = {};
  for (const [k, v] of toTorchStateDict(params, f32, all)) out[k] = { dtype: "F32", shape: v.shape, data: v.data };
  return { bytes: encodeSafetensors(out, metadata), tensors: Object.keys(out).length };
}
