// Pretrained weights in: a plan's `init` setting (or `nnetc train --init-from`) reads a safetensors file,
// a run folder or a TensorFlow.js model.json, renames its tensors onto the model's weights (explicit map
// entries first, then the layout's convention), converts PyTorch layouts, and checks every shape. Missing,
// extra and mis-shaped tensors are RunErrors that list the names and say what to do.
//
// layout torch (a PyTorch state_dict), in two independent steps, whose tables are runtime/torch_layout.ts:
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
import { decodeSafetensors, loadTfjsWeights, toFloat32, type HostTensor } from "./checkpoint/index.js";
import { huggingfaceToTorch, type HfModel } from "./huggingface.js";
import { RunError } from "./errors.js";
import { isAdapter } from "./spec.js";
import { chunk, directFill, groupRoles, layerOf, rolesByLayer, TORCH_LEAVES, torchToNnetc, type F32, type Fill, type TorchParam } from "./torch_layout.js";

export interface InitSpec {
  /** Path of the weights: resolved already (against the .nnet file's folder for the plan's setting). */
  from: string;
  layout: "nnetc" | "torch" | "huggingface";
  map: readonly { from: string; to: string }[];
  allowMissing: boolean;
  allowExtra: boolean;
}

type Param = TorchParam;

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
  return { shape: t.shape.slice(), data: d instanceof Float32Array ? d : toFloat32(t) };
}

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

function list(names: string[], max = 12): string {
  return names.slice(0, max).join(", ") + (names.length > max ? `, … (${names.length} in all)` : "");
}

/**
 * Pretrained weights for a model, in any layout `init` accepts: a Hugging Face model folder (layout huggingface:
 * runtime/huggingface.ts renames its tensors to layout torch's names, checking config.json), a PyTorch
 * state_dict (torch) or nnetc's own names. What mapPretrained returns.
 */
export function loadPretrained(model: HfModel, spec: InitSpec): ReturnType<typeof mapPretrained> {
  if (spec.layout !== "huggingface") return mapPretrained(model.params, readWeightsFile(spec.from, "init"), spec);
  if (!existsSync(spec.from) || !statSync(spec.from).isDirectory()) throw new RunError(`init from ${spec.from}: layout huggingface reads a model folder (config.json and model.safetensors, as save_pretrained writes it)`);
  const hf = huggingfaceToTorch(model, spec.from);
  // messages name the checkpoint's own tensors
  const r = mapPretrained(model.params, hf.tensors, { ...spec, layout: "torch" }, (n) => hf.original.get(n) ?? n);
  return { ...r, ignored: [...hf.ignored, ...r.ignored] };
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

/**
 * The model's weights from a file's tensors. Throws RunError listing mis-shaped tensors, model weights the
 * file lacks (unless allowMissing) and tensors no weight takes (unless allowExtra). `sources`: each weight's
 * tensors of the file, as `display` names them (what a LoRA adapter's PEFT export names its module by). Pure.
 */
export function mapPretrained(params: readonly Param[], tensors: Record<string, HostTensor>, spec: InitSpec, display: (name: string) => string = (n) => n): { weights: Record<string, HostTensor>; missing: string[]; ignored: string[]; sources: Record<string, string[]> } {
  const byName = new Map(params.map((p) => [p.name, p]));
  const byLayer = rolesByLayer(params);
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
    converted.push({ target: fill.row !== undefined ? `${p.name}#${fill.row}` : p.name, value: v, source: display(source), sourceShape: t.shape, ...(fill.add ? { add: true } : {}) });
  };
  for (const [name, t] of Object.entries(tensors)) {
    if (spec.layout === "torch" && /(^|\.)num_batches_tracked$/.test(name)) {
      ignored.push(display(name));
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
      extra.push(display(name));
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
      extra.push(display(name));
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
  // LoRA adapters are new by design (lora_b starts at zero): a pretrained checkpoint never has them.
  const required = params.filter((p) => !out.has(p.name) && !isAdapter(p)).map((p) => p.name);
  if (required.length && !spec.allowMissing) throw new RunError(`init from ${spec.from}: the file has no values for ${required.length} of the model's ${params.length} weights: ${list(required)}; ${fix}, or add allow_missing: true (--allow-missing) to keep their initial values`);
  if (extra.length && !spec.allowExtra) throw new RunError(`init from ${spec.from}: ${extra.length} tensor${extra.length === 1 ? "" : "s"} of the file match no weight of the model: ${list(extra)}; ${fix}, or add allow_extra: true (--allow-extra) to ignore them`);
  const weights: Record<string, HostTensor> = {};
  const sources: Record<string, string[]> = {};
  for (const [k, v] of out) {
    weights[k] = { dtype: "F32", shape: v.value.shape, data: v.value.data };
    sources[k] = v.sources;
  }
  return { weights, missing, ignored: [...ignored, ...extra], sources };
}
