// Pretrained weights in: a plan's `init` setting (or `nnetc train --init-from`) reads a safetensors file,
// a run folder or a TensorFlow.js model.json, renames its tensors onto the model's weights (explicit map
// entries first, then the layout's convention), converts PyTorch layouts, and checks every shape. Missing,
// extra and mis-shaped tensors are RunErrors that list the names and say what to do.
//
// layout torch (a PyTorch state_dict): `a.b.c.weight` belongs to the module `a.b.c`, which is the layer
// `a/b/c` unless a map entry renames it ("a.b -> Stage_1" makes it `Stage_1/c`). The role follows from the
// layer's weights: a conv's `weight` [out, in, kh, kw] becomes `kernel` [kh, kw, in, out] (conv1d [out,
// in, k] → [k, in, out]; depthwise [ch·m, 1, kh, kw] → `depthwise_kernel` [kh, kw, ch, m]); a Linear's
// `weight` [out, in] becomes `kernel` [in, out]; `bias` is `bias` (`beta` for norms); a norm's `weight` is
// `gamma`, `running_mean`/`running_var` are `moving_mean`/`moving_variance`; `num_batches_tracked` is
// ignored; an Embedding's `weight` is `embeddings`. LSTM/GRU (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`,
// `bias_hh_l0`, `_reverse` for the backward direction) become kernel, recurrent_kernel and bias: LSTM's
// gate order (i, f, g, o) is Keras's and its two biases add up; GRU's (r, z, n) is reordered to (z, r, h)
// and needs reset_after (PyTorch's formulation), its biases becoming the two rows of `bias`.
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

/** The torch rule for one tensor (role `role`) of a layer with weights `roles`: the weight it becomes and its conversion. */
function torchRole(role: string, t: F32, roles: Map<string, Param>): { role: string; value: F32; add?: boolean } | null {
  const has = (r: string) => roles.has(r);
  const rnn = /^(weight_ih|weight_hh|bias_ih|bias_hh)_l0(_reverse)?$/.exec(role);
  if (rnn) {
    const dir = has("forward/kernel") ? (rnn[2] ? "backward/" : "forward/") : "";
    const gru = (roles.get(`${dir}kernel`)?.shape[1] ?? 0) === 3 * (roles.get(`${dir}recurrent_kernel`)?.shape[0] ?? -1);
    const kind = rnn[1]!;
    if (kind === "weight_ih" || kind === "weight_hh") {
      const v = transpose(t, [1, 0]);
      return { role: `${dir}${kind === "weight_ih" ? "kernel" : "recurrent_kernel"}`, value: gru ? gruGates(v) : v };
    }
    if (!gru) return { role: `${dir}bias`, value: t, add: true };
    // GRU (reset_after): bias row 0 is the input bias, row 1 the recurrent one.
    const b = gruGates(t);
    const both = roles.get(`${dir}bias`);
    if (!both || both.shape.length !== 2) return { role: `${dir}bias`, value: b };
    return { role: `${dir}bias#${kind === "bias_ih" ? 0 : 1}`, value: b };
  }
  switch (role) {
    case "weight":
      if (has("kernel")) {
        const r = t.shape.length;
        return { role: "kernel", value: r === 2 ? transpose(t, [1, 0]) : r === 3 ? transpose(t, [2, 1, 0]) : r === 4 ? transpose(t, [2, 3, 1, 0]) : t };
      }
      if (has("depthwise_kernel") && t.shape.length === 4) {
        const m = roles.get("depthwise_kernel")!.shape[3] ?? 1;
        const [cm, , kh, kw] = t.shape as [number, number, number, number];
        return { role: "depthwise_kernel", value: transpose({ shape: [cm / m, m, kh, kw], data: t.data }, [2, 3, 0, 1]) };
      }
      if (has("gamma")) return { role: "gamma", value: t };
      if (has("embeddings")) return { role: "embeddings", value: t };
      return null;
    case "bias":
      return { role: has("beta") && !has("bias") ? "beta" : "bias", value: t };
    case "running_mean":
      return { role: "moving_mean", value: t };
    case "running_var":
      return { role: "moving_variance", value: t };
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
  for (const [name, t] of Object.entries(tensors)) {
    if (spec.layout === "torch" && /(^|\.)num_batches_tracked$/.test(name)) {
      ignored.push(name);
      continue;
    }
    const r = rename(name);
    const value = toF32(name, t, spec.from);
    if (spec.layout === "nnetc" || (r.exact && byName.has(r.name))) {
      // A direct name: nnetc layout, or a map entry naming one weight (its torch layout still converted).
      const p = byName.get(r.name);
      if (!p) extra.push(name);
      else if (spec.layout === "torch") {
        const c = torchRole(name.split(".").pop()!, value, new Map([[p.role, p]]));
        converted.push({ target: p.name, value: c?.value ?? value, source: name, sourceShape: t.shape });
      } else converted.push({ target: p.name, value, source: name, sourceShape: t.shape });
      continue;
    }
    const cut = r.name.lastIndexOf("/");
    const layer = r.name.slice(0, cut);
    const roles = byLayer.get(layer);
    const c = roles ? torchRole(r.name.slice(cut + 1), value, roles) : null;
    if (!c) extra.push(name);
    else converted.push({ target: `${layer}/${c.role}`, value: c.value, source: name, sourceShape: t.shape, ...(c.add ? { add: true } : {}) });
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
