// Pretrained weights in: a plan's `init` setting (or `nnetc train --init-from`) reads a safetensors file,
// a run folder or a TensorFlow.js model.json, renames its tensors onto the model's weights (explicit map
// entries first, then the layout's convention), converts PyTorch layouts, and checks every shape. Missing,
// extra and mis-shaped tensors are RunErrors that list the names and say what to do.
//
// layout torch (a PyTorch state_dict), in two independent steps:
// - Names (TORCH_LEAVES, GROUP_ALIASES: the one table of name-conversion rules). A whole-tensor map entry
//   names its weight outright. Otherwise `a.b.c.leaf`, after any prefix entry ("a.b -> Stage_1" makes it
//   `Stage_1/c/leaf`), belongs to the longest layer its path starts with; what lies between that layer and
//   the leaf is a module group inside the layer (an attention layer's `query`, `key`, `value`, `output` or
//   nn.MultiheadAttention's `out_proj`; a separable conv's `depthwise`, `pointwise`). The leaf names the
//   weight within the group: `weight` is the group's kernel, depthwise/pointwise kernel, gamma or embeddings,
//   `bias` its bias (beta for norms), `running_mean`/`running_var` the moving statistics,
//   `weight_ih_l0`/`weight_hh_l0`/`bias_ih_l0`/`bias_hh_l0` (`_reverse`: backward direction) a recurrent
//   layer's kernel, recurrent kernel and bias, `in_proj_weight`/`in_proj_bias` query, key and value at once;
//   `num_batches_tracked` is ignored.
// - Layouts (torchToNnetc), by the kind of the weight that receives the tensor, however its name was reached:
//   a kernel [out, in] → [in, out], [out, in, k] → [k, in, out], [out, in, kh, kw] → [kh, kw, in, out]; a
//   depthwise kernel [ch·m, 1, kh, kw] → [kh, kw, ch, m]; recurrent kernels are transposed, and a GRU's gate
//   blocks reordered from PyTorch's (r, z, n) to Keras's (z, r, h) (which needs reset_after, PyTorch's
//   formulation); an LSTM's gate order (i, f, g, o) is Keras's and its two biases add up, a GRU's become the
//   two rows of `bias`. Everything else is taken as it is.
// layout nnetc: names are `layer/role` as nnetc writes them (and Keras/TensorFlow.js), nothing converted.
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { decodeSafetensors, loadTfjsWeights, type HostTensor } from "./checkpoint/index.js";
import { RunError } from "./errors.js";

export interface InitSpec {
  /** Path of the weights: resolved already (against the .nnet file's folder for the plan's setting). */
  from: string;
  layout: "nnetc" | "torch";
  map: readonly { from: string; to: string }[];
  allowMissing: boolean;
  allowExtra: boolean;
}

interface Param {
  name: string;
  layer: string;
  role: string;
  shape: readonly number[];
}

/** A float32 tensor on the host. */
interface F32 {
  shape: number[];
  data: Float32Array;
}

/** The tensors of a weights file: a .safetensors file, a folder holding model.safetensors, or a tfjs model.json. */
export function readWeightsFile(file: string, what: string): Record<string, HostTensor> {
  if (!existsSync(file)) throw new RunError(`${what} ${file}: no such file or folder; give a .safetensors file, a run folder or a TensorFlow.js model.json`);
  if (file.endsWith(".json")) return loadTfjsWeights(file);
  const st = statSync(file).isDirectory() ? path.join(file, "model.safetensors") : file;
  if (!existsSync(st)) throw new RunError(`${what} ${file}: a folder without model.safetensors; give a .safetensors file, a run folder or a TensorFlow.js model.json`);
  return decodeSafetensors(new Uint8Array(readFileSync(st))).tensors;
}

function toF32(name: string, t: HostTensor, file: string): F32 {
  const d = t.data;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return { shape: t.shape.slice(), data: Float32Array.from(d, (v) => Number(v)) };
  if (t.dtype === "BOOL") throw new RunError(`${file}: tensor "${name}" is boolean, which no weight can take; leave it out of the file or allow_extra`);
  return { shape: t.shape.slice(), data: d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>) };
}

/** Permute a row-major tensor's axes: out axis i is in axis perm[i]. */
function transpose(t: F32, perm: number[]): F32 {
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

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

function list(names: string[], max = 12): string {
  return names.slice(0, max).join(", ") + (names.length > max ? `, … (${names.length} in all)` : "");
}

/** One converted tensor: the model weight it fills, its value, and the file's name and shape for messages. */
interface Converted {
  /** `layer/role`, or `layer/role#row` for one row of a GRU bias. */
  target: string;
  /** LSTM biases: added to the other one. */
  add?: boolean;
  value: F32;
  source: string;
  sourceShape: number[];
}

// ── layout torch: the name-conversion rules and the layout conversions ─────────────────────────────────

/** The layer's weights, by role, as a torch module group inside the layer sees them. */
type Roles = Map<string, Param>;

/** What one tensor of the file fills: a weight (by its role within the group), and how. */
interface Fill {
  role: string;
  /** A GRU bias: the row of the weight's [2, 3·units] (0 input, 1 recurrent). */
  row?: number;
  /** LSTM biases: added to the other one. */
  add?: boolean;
  /** nn.MultiheadAttention's packed in_proj: this fill takes chunk `part` of 3 along axis 0. */
  part?: number;
}

/** The roles a `weight` can be, by what the group has (exactly one of them must be there). */
const WEIGHT_ROLES = ["kernel", "depthwise_kernel", "pointwise_kernel", "gamma", "embeddings"] as const;

/**
 * THE name-conversion rules of layout torch: a state_dict entry's last name (the leaf) → the weight(s) of the
 * module group it fills, given the roles that group has. The first rule whose leaf matches decides.
 */
const TORCH_LEAVES: { leaf: RegExp; fills: (m: RegExpExecArray, roles: Roles) => Fill[] | null }[] = [
  // Linear, Conv1d/2d, a depthwise or pointwise conv, a norm's scale, an Embedding: whichever the group has.
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
  // nn.MultiheadAttention: in_proj_weight / in_proj_bias pack query, key and value along axis 0.
  { leaf: /^in_proj_(weight|bias)$/, fills: (m) => ["query", "key", "value"].map((g, part) => ({ role: `${g}/${m[1] === "weight" ? "kernel" : "bias"}`, part })) },
  // ...and hold them apart when kdim/vdim differ from embed_dim.
  { leaf: /^(q|k|v)_proj_weight$/, fills: (m) => [{ role: `${{ q: "query", k: "key", v: "value" }[m[1] as "q" | "k" | "v"]}/kernel` }] },
];

/**
 * Module groups inside one nnetc layer: an attention layer's projections `query`, `key`, `value`,
 * `output` (Hugging Face's names; nn.MultiheadAttention's `out_proj` is `output`), a separable
 * convolution's `depthwise` and `pointwise` convolutions (the bias is the pointwise one's). The roles the
 * group sees, by their names within it.
 */
const GROUP_ALIASES: Record<string, string> = { out_proj: "output" };

function groupRoles(layer: Roles, group: string): Roles {
  if (!group) return layer;
  const prefix = `${Object.prototype.hasOwnProperty.call(GROUP_ALIASES, group) ? GROUP_ALIASES[group] : group}/`;
  const inner: Roles = new Map([...layer].filter(([r]) => r.startsWith(prefix)).map(([r, p]) => [r.slice(prefix.length), p]));
  if (inner.size) return inner;
  if (group === "depthwise" && layer.has("depthwise_kernel") && layer.has("pointwise_kernel")) return new Map([["depthwise_kernel", layer.get("depthwise_kernel")!]]);
  if (group === "pointwise" && layer.has("pointwise_kernel")) return new Map([["pointwise_kernel", layer.get("pointwise_kernel")!], ...(layer.has("bias") ? [["bias", layer.get("bias")!] as const] : [])]);
  return new Map();
}

/** PyTorch's bias_ih / bias_hh into a recurrent bias: a GRU's is [2, 3·units] (reset_after: input row, recurrent row); an LSTM's two add up. */
function recurrentBias(which: "ih" | "hh", bias: Param, roles: Roles, dir: string): Fill {
  if (bias.shape.length === 2) return { role: bias.role, row: which === "ih" ? 0 : 1 };
  return isGru(roles, dir) ? { role: bias.role } : { role: bias.role, add: true };
}

/** A whole-tensor map entry names its weight: only a recurrent bias takes anything from the tensor's leaf (its row, or that it adds up). */
function directFill(leaf: string, p: Param, layer: Roles): Fill {
  const m = /^bias_(ih|hh)_l0(_reverse)?$/.exec(leaf);
  const dir = p.role.slice(0, p.role.lastIndexOf("/") + 1);
  if (!m || p.role !== `${dir}bias` || !layer.has(`${dir}recurrent_kernel`)) return { role: p.role };
  return recurrentBias(m[1] as "ih" | "hh", p, layer, dir);
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
function torchToNnetc(t: F32, p: Param, layer: Roles): F32 {
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
function chunk(t: F32, part: number, of: number): F32 {
  if (!t.shape.length || t.shape[0]! % of) return t;
  const n = t.data.length / of;
  return { shape: [t.shape[0]! / of, ...t.shape.slice(1)], data: t.data.slice(part * n, (part + 1) * n) };
}

/** The longest layer that is a prefix of `path` (segments before the leaf), and the module group after it. */
function layerOf(segments: string[], byLayer: Map<string, Roles>): { layer: string; group: string } | null {
  for (let k = segments.length - 1; k >= 1; k--) {
    const layer = segments.slice(0, k).join("/");
    if (byLayer.has(layer)) return { layer, group: segments.slice(k, -1).join("/") };
  }
  return null;
}

/**
 * The model's weights from a file's tensors. Throws RunError listing mis-shaped tensors, model weights the
 * file lacks (unless allowMissing) and tensors no weight takes (unless allowExtra). Pure.
 */
export function mapPretrained(params: readonly Param[], tensors: Record<string, HostTensor>, spec: InitSpec): { weights: Record<string, HostTensor>; missing: string[]; ignored: string[] } {
  const byName = new Map(params.map((p) => [p.name, p]));
  const byLayer = new Map<string, Map<string, Param>>();
  for (const p of params) {
    if (!byLayer.has(p.layer)) byLayer.set(p.layer, new Map());
    byLayer.get(p.layer)!.set(p.role, p);
  }
  const sep = spec.layout === "torch" ? "." : "/";
  // Longest matching entry first: an exact name, or a prefix ending at a separator.
  const entries = [...spec.map].sort((a, b) => b.from.length - a.from.length);
  const rename = (n: string): { name: string; exact: boolean } => {
    for (const e of entries) {
      if (n === e.from) return { name: e.to, exact: true };
      if (n.startsWith(e.from + sep)) return { name: `${e.to}/${n.slice(e.from.length + 1).split(sep).join("/")}`, exact: false };
    }
    return { name: spec.layout === "torch" ? n.split(".").join("/") : n, exact: false };
  };

  const converted: Converted[] = [];
  const extra: string[] = [];
  const ignored: string[] = [];
  /** Tensor `value` of the file's `source` into weight `p` as `fill` says, converted by the weight's kind. */
  const fillWith = (source: string, t: HostTensor, value: F32, p: Param, fill: Fill) => {
    const part = fill.part !== undefined ? chunk(value, fill.part, 3) : value;
    const v = spec.layout === "torch" ? torchToNnetc(part, p, byLayer.get(p.layer)!) : part;
    converted.push({ target: fill.row !== undefined ? `${p.name}#${fill.row}` : p.name, value: v, source, sourceShape: t.shape, ...(fill.add ? { add: true } : {}) });
  };
  for (const [name, t] of Object.entries(tensors)) {
    if (spec.layout === "torch" && /(^|\.)num_batches_tracked$/.test(name)) {
      ignored.push(name);
      continue;
    }
    const r = rename(name);
    const value = toF32(name, t, spec.from);
    const direct = spec.layout === "nnetc" || r.exact ? byName.get(r.name) : undefined;
    if (direct) {
      // A weight named outright (nnetc layout, or a whole-tensor map entry): the leaf says only which row of a
      // GRU bias it is, or that an LSTM bias adds up; the layout conversion follows the weight's kind.
      fillWith(name, t, value, direct, spec.layout === "torch" ? directFill(name.slice(name.lastIndexOf(".") + 1), direct, byLayer.get(direct.layer)!) : { role: direct.role });
      continue;
    }
    if (spec.layout === "nnetc") {
      extra.push(name);
      continue;
    }
    // By convention (after any prefix entry): the longest layer the path starts with, the module group inside
    // it, and the leaf's rule.
    const segments = r.name.split("/");
    const at = layerOf(segments, byLayer);
    const roles = at ? groupRoles(byLayer.get(at.layer)!, at.group) : null;
    const leaf = segments[segments.length - 1]!;
    let fills: Fill[] | null = null;
    for (const rule of roles?.size ? TORCH_LEAVES : []) {
      const m = rule.leaf.exec(leaf);
      if (m) {
        fills = rule.fills(m, roles!);
        break;
      }
    }
    const targets = fills?.map((f) => roles!.get(f.role));
    if (!fills || !targets || targets.some((p) => !p)) {
      extra.push(name);
      continue;
    }
    fills.forEach((f, i) => fillWith(name, t, value, targets[i]!, f));
  }

  // Assemble: LSTM biases add up, GRU biases fill their rows, everything else is one tensor per weight.
  const out = new Map<string, { value: F32; sources: string[] }>();
  const wrong: string[] = [];
  for (const c of converted) {
    const row = /#(\d)$/.exec(c.target);
    const target = row ? c.target.slice(0, -2) : c.target;
    const p = byName.get(target);
    if (!p) {
      extra.push(c.source);
      continue;
    }
    const want = row ? p.shape.slice(1) : p.shape;
    if (fmt(c.value.shape) !== fmt(want)) {
      const conv = fmt(c.value.shape) !== fmt(c.sourceShape) ? ` (${fmt(c.value.shape)} after converting the ${spec.layout} layout)` : "";
      wrong.push(`"${c.source}" ${fmt(c.sourceShape)}${conv} → "${target}" needs ${fmt(want)}${row ? " per row" : ""}`);
      continue;
    }
    const prev = out.get(target);
    if (row) {
      const v = prev?.value ?? { shape: [...p.shape], data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)) };
      v.data.set(c.value.data, Number(row[1]) * c.value.data.length);
      out.set(target, { value: v, sources: [...(prev?.sources ?? []), c.source] });
    } else if (prev && c.add) {
      out.set(target, { value: { shape: prev.value.shape, data: prev.value.data.map((x, i) => x + c.value.data[i]!) }, sources: [...prev.sources, c.source] });
    } else if (prev) {
      wrong.push(`"${c.source}" and "${prev.sources[0]}" both map to "${target}"`);
    } else out.set(target, { value: c.value, sources: [c.source] });
  }
  const fix = spec.layout === "torch" ? "add map entries (\"module.in.file -> layer\") or check the layer names" : "add map entries (\"name.in.file -> layer/role\"), or use layout: torch for a PyTorch state_dict";
  if (wrong.length) throw new RunError(`init from ${spec.from}: ${wrong.length} tensor${wrong.length === 1 ? " does" : "s do"} not fit the model: ${list(wrong, 8)}; the file was saved for another architecture, or ${fix}`);
  const missing = params.map((p) => p.name).filter((n) => !out.has(n));
  if (missing.length && !spec.allowMissing) throw new RunError(`init from ${spec.from}: the file has no values for ${missing.length} of the model's ${params.length} weights: ${list(missing)}; ${fix}, or add allow_missing: true (--allow-missing) to keep their initial values`);
  if (extra.length && !spec.allowExtra) throw new RunError(`init from ${spec.from}: ${extra.length} tensor${extra.length === 1 ? "" : "s"} of the file match no weight of the model: ${list(extra)}; ${fix}, or add allow_extra: true (--allow-extra) to ignore them`);
  const weights: Record<string, HostTensor> = {};
  for (const [k, v] of out) weights[k] = { dtype: "F32", shape: v.value.shape, data: v.value.data };
  return { weights, missing, ignored: [...ignored, ...extra] };
}
