// layout huggingface: a Hugging Face model folder (config.json + model.safetensors, or shards listed in
// model.safetensors.index.json) onto a model's weights, with no map entries.
//
// THE name-conversion tables of this layout, one per family (FAMILIES): a checkpoint's module path (after the
// family's optional base-model prefix such as `bert.` or `transformer.`) → a layer path of the nnetc model,
// relative to its root (where the family's anchor layer sits: `word_embeddings` for BERT), `#{i}` standing for
// the i-th repeated block instance under the root (`EncoderLayer`, `EncoderLayer_1`, … whatever the block is
// called). What follows the module path (a projection inside an attention layer, the leaf `weight`/`bias`) and
// every layout conversion are layout torch's (runtime/torch_layout.ts): this file only renames, so a tensor is
// converted by the kind of the weight that receives it, as for any PyTorch state_dict. GPT-2's Conv1D stores
// [in, out] (transposed here to Linear's [out, in] first) and packs q/k/v in `c_attn` (renamed to
// nn.MultiheadAttention's `in_proj_*`, which layout torch splits).
//
// config.json is checked against the model before any tensor is read: every size the family's CHECKS name
// (vocabulary, width, layers, heads, key/value heads, feed-forward width, positions, norm epsilon, rotary base)
// must equal the model's; a mismatch names both values. The models/ zoo's BERT, GPT-2 and Llama blocks use these
// layer names.
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { decodeSafetensors, toFloat32, type HostTensor } from "./checkpoint/index.js";
import { ownNamesOnly } from "../compiler/own.js";
import { RunError } from "./errors.js";

/** What the tables need of a model: its layers' weights and attributes. */
export interface HfModel {
  params: readonly { name: string; layer: string; role: string; shape: readonly number[] }[];
  /** Absent (an emitted module's net): the checks of attributes are skipped. */
  nodes?: readonly { name: string; op: string; attrs: Readonly<Record<string, unknown>> }[];
}

/** One config.json value and where the model holds it. */
interface Check {
  key: string;
  /** The value when config.json leaves the key out (Hugging Face's default), or a function of the config. */
  fallback?: number | ((c: Record<string, unknown>) => number | undefined);
  /** A layer (relative to the root; `#{i}`: the first block instance), then a weight's axis or an attribute. */
  layer: string;
  weight?: [role: string, axis: number];
  attr?: string;
  /** The number of block instances under the root. */
  blocks?: true;
  /** Compared with a relative tolerance (norm epsilons). */
  approx?: true;
}

export interface Family {
  /** config.json's model_type values. */
  types: readonly string[];
  /** A layer every model of the family has: the root is the path in front of it. */
  anchor: string;
  /** Base-model prefixes of checkpoints with heads (BertForSequenceClassification's `bert.`). */
  prefixes: readonly string[];
  /** Checkpoint module path (a RegExp over the whole path, (\d+) the block index) → nnetc layer path (relative to the root; `#{i}` the block instance, `^` for a top-level layer). */
  modules: readonly [RegExp, string][];
  /** Modules stored as GPT-2's Conv1D ([in, out]): transposed to Linear's [out, in]. */
  conv1d?: RegExp;
  /** Leaves renamed within a module (c_attn's weight → in_proj_weight). */
  leaves?: readonly [module: RegExp, from: string, to: string][];
  /** Buffers and tied copies that no weight takes. */
  ignore: readonly RegExp[];
  checks: readonly Check[];
}

/** THE name-conversion tables of layout huggingface: one per family. */
export const FAMILIES: Record<string, Family> = {
  bert: {
    types: ["bert"],
    anchor: "word_embeddings",
    prefixes: ["bert."],
    modules: [
      [/^embeddings\.word_embeddings/, "word_embeddings"],
      [/^embeddings\.position_embeddings/, "position_embeddings"],
      [/^embeddings\.token_type_embeddings/, "token_type_embeddings"],
      [/^embeddings\.LayerNorm/, "embeddings_norm"],
      [/^encoder\.layer\.(\d+)\.attention\.self/, "#{i}/attention"],
      [/^encoder\.layer\.(\d+)\.attention\.output\.dense/, "#{i}/attention/output"],
      [/^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm/, "#{i}/attention_norm"],
      [/^encoder\.layer\.(\d+)\.intermediate\.dense/, "#{i}/intermediate"],
      [/^encoder\.layer\.(\d+)\.output\.dense/, "#{i}/output"],
      [/^encoder\.layer\.(\d+)\.output\.LayerNorm/, "#{i}/output_norm"],
      [/^pooler\.dense/, "pooler"],
      [/^classifier/, "^classifier"],
    ],
    ignore: [/(^|\.)position_ids$/],
    checks: [
      { key: "vocab_size", layer: "word_embeddings", weight: ["embeddings", 0] },
      { key: "hidden_size", layer: "word_embeddings", weight: ["embeddings", 1] },
      { key: "max_position_embeddings", layer: "position_embeddings", weight: ["embeddings", 0] },
      { key: "type_vocab_size", fallback: 2, layer: "token_type_embeddings", weight: ["embeddings", 0] },
      { key: "num_hidden_layers", layer: "", blocks: true },
      { key: "num_attention_heads", layer: "#{i}/attention", attr: "heads" },
      { key: "intermediate_size", layer: "#{i}/intermediate", weight: ["kernel", 1] },
      { key: "layer_norm_eps", fallback: 1e-12, layer: "embeddings_norm", attr: "epsilon", approx: true },
    ],
  },
  gpt2: {
    types: ["gpt2"],
    anchor: "wte",
    prefixes: ["transformer."],
    modules: [
      [/^wte/, "wte"],
      [/^wpe/, "wpe"],
      [/^h\.(\d+)\.ln_1/, "#{i}/ln_1"],
      [/^h\.(\d+)\.attn\.c_attn/, "#{i}/attn"],
      [/^h\.(\d+)\.attn\.c_proj/, "#{i}/attn/output"],
      [/^h\.(\d+)\.ln_2/, "#{i}/ln_2"],
      [/^h\.(\d+)\.mlp\.c_fc/, "#{i}/c_fc"],
      [/^h\.(\d+)\.mlp\.c_proj/, "#{i}/c_proj"],
      [/^ln_f/, "ln_f"],
    ],
    conv1d: /\.(c_attn|c_proj|c_fc)$/,
    leaves: [[/\.c_attn$/, "weight", "in_proj_weight"], [/\.c_attn$/, "bias", "in_proj_bias"]],
    // lm_head is tied to wte (tied_dense); attn.bias / attn.masked_bias are the causal mask's buffers
    ignore: [/^lm_head\.weight$/, /\.attn\.(bias|masked_bias)$/],
    checks: [
      { key: "vocab_size", layer: "wte", weight: ["embeddings", 0] },
      { key: "n_embd", layer: "wte", weight: ["embeddings", 1] },
      { key: "n_positions", layer: "wpe", weight: ["embeddings", 0] },
      { key: "n_layer", layer: "", blocks: true },
      { key: "n_head", layer: "#{i}/attn", attr: "heads" },
      { key: "n_inner", fallback: (c) => 4 * (c.n_embd as number), layer: "#{i}/c_fc", weight: ["kernel", 1] },
      { key: "layer_norm_epsilon", fallback: 1e-5, layer: "ln_f", attr: "epsilon", approx: true },
    ],
  },
  llama: {
    types: ["llama", "mistral", "qwen2"],
    anchor: "embed_tokens",
    prefixes: ["model."],
    modules: [
      [/^embed_tokens/, "embed_tokens"],
      [/^layers\.(\d+)\.input_layernorm/, "#{i}/input_layernorm"],
      [/^layers\.(\d+)\.self_attn/, "#{i}/self_attn"],
      [/^layers\.(\d+)\.post_attention_layernorm/, "#{i}/post_attention_layernorm"],
      [/^layers\.(\d+)\.mlp\.gate_proj/, "#{i}/gate_proj"],
      [/^layers\.(\d+)\.mlp\.up_proj/, "#{i}/up_proj"],
      [/^layers\.(\d+)\.mlp\.down_proj/, "#{i}/down_proj"],
      [/^norm/, "norm"],
      [/^lm_head/, "^lm_head"],
    ],
    ignore: [/\.rotary_emb\.inv_freq$/],
    checks: [
      { key: "vocab_size", layer: "embed_tokens", weight: ["embeddings", 0] },
      { key: "hidden_size", layer: "embed_tokens", weight: ["embeddings", 1] },
      { key: "num_hidden_layers", layer: "", blocks: true },
      { key: "num_attention_heads", layer: "#{i}/self_attn", attr: "heads" },
      { key: "num_key_value_heads", fallback: (c) => c.num_attention_heads as number, layer: "#{i}/self_attn", attr: "kv_heads" },
      { key: "intermediate_size", layer: "#{i}/gate_proj", weight: ["kernel", 1] },
      { key: "rms_norm_eps", fallback: 1e-6, layer: "norm", attr: "epsilon", approx: true },
      { key: "rope_theta", fallback: 10000, layer: "#{i}/self_attn", attr: "rope_theta", approx: true },
    ],
  },
};
ownNamesOnly(FAMILIES);

/** A folder is a Hugging Face model folder: it has a config.json. */
export function isHuggingFaceFolder(dir: string): boolean {
  return existsSync(dir) && statSync(dir).isDirectory() && existsSync(path.join(dir, "config.json"));
}

export function readConfig(dir: string): Record<string, unknown> {
  const file = path.join(dir, "config.json");
  if (!existsSync(file)) throw new RunError(`${dir}: no config.json; layout huggingface reads a model folder as save_pretrained writes it (config.json and model.safetensors)`);
  const st = statSync(file);
  if (st.size > 1 << 20) throw new RunError(`${file} is over 1 MB: not a model's config.json`);
  try {
    const c = JSON.parse(readFileSync(file, "utf8"));
    if (!c || typeof c !== "object" || Array.isArray(c)) throw new Error("not an object");
    return c as Record<string, unknown>;
  } catch (e) {
    throw new RunError(`${file} is not a JSON object (${(e as Error).message})`);
  }
}

/** The family of a config.json's model_type. */
export function familyOf(config: Record<string, unknown>, file: string): Family {
  const t = config.model_type;
  const f = Object.values(FAMILIES).find((x) => x.types.includes(String(t)));
  if (!f) throw new RunError(`${file}: model_type ${JSON.stringify(t)} is not a family layout huggingface knows (${Object.values(FAMILIES).flatMap((x) => x.types).join(", ")}); use layout: torch with map entries`);
  return f;
}

/** The root of the family's layers in the model, and its repeated block instances in order. */
function rootOf(model: HfModel, f: Family, dir: string): { root: string; blocks: string[] } {
  const layers = new Set(model.params.map((p) => p.layer));
  const roots = [...layers].filter((l) => l === f.anchor || l.endsWith(`/${f.anchor}`)).map((l) => l.slice(0, l.length - f.anchor.length));
  if (roots.length !== 1) {
    throw new RunError(`init from ${dir} (layout huggingface, ${f.types[0]}): the model needs ${roots.length ? "exactly one" : "a"} layer named "${f.anchor}"${roots.length ? `, it has ${roots.length}` : ""}: name the layers as the zoo's ${f.types[0]} model does (models/), or use layout: torch with map entries`);
  }
  const root = roots[0]!;
  // Block instances: the root's child segments that hold a layer the family's `#{i}/…` paths name.
  const inner = new Set(f.modules.map(([, to]) => to).filter((t) => t.startsWith("#{i}/")).map((t) => t.slice(5).split("/")[0]!));
  const seen = new Map<string, number>();
  for (const l of layers) {
    if (!l.startsWith(root)) continue;
    const segs = l.slice(root.length).split("/");
    if (segs.length >= 2 && inner.has(segs[1]!)) {
      const m = /^(.*?)(?:_(\d+))?$/.exec(segs[0]!)!;
      seen.set(segs[0]!, m[2] ? Number(m[2]) : 0);
    }
  }
  const blocks = [...seen].sort((a, b) => a[1] - b[1]).map(([s]) => s);
  return { root, blocks };
}

/** A template's layer path: under the root, or at the top level when only that exists (a head written outside the family's block: BERT's pooler). */
function resolve(template: string, root: string, blocks: readonly string[], i: number | null, layers?: ReadonlySet<string>): string | null {
  if (template.startsWith("^")) return template.slice(1);
  if (layers && root && !template.startsWith("#") && !layers.has(`${root}${template}`) && layers.has(template)) return template;
  if (template.startsWith("#{i}/")) {
    const b = i === null ? undefined : blocks[i];
    return b === undefined ? null : `${root}${b}/${template.slice(5)}`;
  }
  return `${root}${template}`;
}

/** config.json against the model: every check's value equal, or a RunError naming both. */
export function checkConfig(model: HfModel, config: Record<string, unknown>, f: Family, dir: string, root: string, blocks: readonly string[]): void {
  const wrong: string[] = [];
  const layers = new Set(model.params.map((p) => p.layer));
  for (const c of f.checks) {
    const given = config[c.key];
    const fb = typeof c.fallback === "function" ? c.fallback(config) : c.fallback;
    const want = given === undefined || given === null ? fb : given;
    if (typeof want !== "number") continue;
    let have: number | undefined;
    let where: string;
    if (c.blocks) {
      have = blocks.length;
      where = `the model has ${have} repeated blocks${root ? ` under ${root.slice(0, -1)}` : ""}`;
    } else {
      const layer = resolve(c.layer, root, blocks, 0, layers);
      if (!layer) continue;
      if (c.weight) {
        const p = model.params.find((x) => x.layer === layer && x.role === c.weight![0]);
        have = p?.shape[c.weight[1]];
        where = `layer ${layer}'s ${c.weight[0]} has size ${have} on axis ${c.weight[1]}`;
      } else {
        if (!model.nodes) continue;
        const n = model.nodes.find((x) => x.name === layer);
        const v = n?.attrs[c.attr!];
        have = typeof v === "number" ? v : c.attr === "kv_heads" && typeof n?.attrs.heads === "number" ? (n.attrs.heads as number) : undefined;
        where = c.attr === "rope_theta" && n && !n.attrs.rotary ? `layer ${layer} has no rotary embeddings (rotary: false)` : `layer ${layer} has ${c.attr}: ${have}`;
        if (!n) where = `the model has no layer ${layer}`;
      }
      if (have === undefined && c.weight) where = `the model has no layer ${layer} with a ${c.weight[0]}`;
    }
    const same = have !== undefined && (c.approx ? Math.abs(have - want) <= 1e-6 * Math.abs(want) : have === want);
    if (!same) wrong.push(`config.json says ${c.key}: ${want}, but ${where}`);
  }
  if (wrong.length) throw new RunError(`init from ${dir} (layout huggingface): the checkpoint's config.json does not describe this model: ${wrong.join("; ")}. Change the model to the checkpoint's sizes, or load another checkpoint`);
}

/** Every tensor of a model folder: model.safetensors, or the shards model.safetensors.index.json lists. */
export function readHfTensors(dir: string): Record<string, HostTensor> {
  const single = path.join(dir, "model.safetensors");
  const index = path.join(dir, "model.safetensors.index.json");
  const read = (f: string) => decodeSafetensors(new Uint8Array(readFileSync(f))).tensors;
  if (existsSync(single)) return read(single);
  if (existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = (JSON.parse(readFileSync(index, "utf8")) as { weight_map: Record<string, string> }).weight_map;
      if (!map || typeof map !== "object") throw new Error("no weight_map");
    } catch (e) {
      throw new RunError(`${index} is not a safetensors index (${(e as Error).message})`);
    }
    const out: Record<string, HostTensor> = {};
    for (const shard of new Set(Object.values(map))) {
      const f = path.join(dir, path.basename(String(shard)));
      if (!existsSync(f)) throw new RunError(`${index} lists the shard ${shard}, which is not in ${dir}`);
      Object.assign(out, read(f));
    }
    return out;
  }
  const bin = ["pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "tf_model.h5", "flax_model.msgpack"].find((f) => existsSync(path.join(dir, f)));
  if (bin) {
    throw new RunError(
      `${dir} holds ${bin}, not safetensors; nnetc reads no pickled or framework-specific weights. Convert it once with Python: ` +
        `AutoModel.from_pretrained("${dir}").save_pretrained("${dir}", safe_serialization=True) (transformers), or ` +
        `safetensors.torch.save_file(torch.load("${bin}", weights_only=True), "model.safetensors")`,
    );
  }
  throw new RunError(`${dir}: no model.safetensors or model.safetensors.index.json; save the model with save_pretrained(…, safe_serialization=True)`);
}

/**
 * A Hugging Face model folder's tensors renamed to layout torch's names for this model (its layers, dots between
 * the segments), Conv1D weights transposed to [out, in]; config.json checked first. `ignored`: buffers and tied
 * copies no weight takes.
 */
export function huggingfaceToTorch(model: HfModel, dir: string): { tensors: Record<string, HostTensor>; ignored: string[]; family: string; original: Map<string, string> } {
  const config = readConfig(dir);
  const f = familyOf(config, path.join(dir, "config.json"));
  const { root, blocks } = rootOf(model, f, dir);
  checkConfig(model, config, f, dir, root, blocks);
  const raw = readHfTensors(dir);
  const layers = new Set(model.params.map((p) => p.layer));
  const tensors: Record<string, HostTensor> = {};
  const ignored: string[] = [];
  const original = new Map<string, string>();
  for (const [name, t] of Object.entries(raw)) {
    if (f.ignore.some((re) => re.test(name))) {
      ignored.push(name);
      continue;
    }
    const prefix = f.prefixes.find((p) => name.startsWith(p));
    const bare = prefix ? name.slice(prefix.length) : name;
    const dot = bare.lastIndexOf(".");
    const module = bare.slice(0, dot);
    let leaf = bare.slice(dot + 1);
    // The rule whose module path is a prefix of this one; what follows it is a group inside the layer.
    let target: string | null = null;
    for (const [re, to] of f.modules) {
      const m = re.exec(module);
      if (!m || m.index !== 0 || (m[0].length < module.length && module[m[0].length] !== ".")) continue;
      const at = resolve(to, root, blocks, m[1] !== undefined ? Number(m[1]) : null, layers);
      if (at) target = at + module.slice(m[0].length).split(".").join("/");
      break;
    }
    if (!target) {
      tensors[name] = t; // no rule: reported as extra by the mapping, with its own name
      continue;
    }
    for (const [re, from, to] of f.leaves ?? []) if (re.test(module) && leaf === from) leaf = to;
    let value: HostTensor = t.dtype === "F32" ? t : { dtype: "F32", shape: t.shape, data: toFloat32(t) };
    if (f.conv1d?.test(module) && value.shape.length === 2) value = transpose2d(value);
    if (target.includes(".")) throw new RunError(`init from ${dir}: layer ${target} has a dot in its path`);
    tensors[`${target.split("/").join(".")}.${leaf}`] = value;
    original.set(`${target.split("/").join(".")}.${leaf}`, name);
  }
  return { tensors, ignored, family: f.types[0]!, original };
}

function transpose2d(t: HostTensor): HostTensor {
  const [r, c] = t.shape as [number, number];
  const d = t.data as Float32Array;
  const out = new Float32Array(d.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = d[i * c + j]!;
  return { dtype: "F32", shape: [c, r], data: out };
}
