// A LoRA run's adapters in Hugging Face PEFT's format (nnetc compile --target peft): adapter_config.json and
// adapter_model.safetensors, for `PeftModel.from_pretrained(<the base model>, DIR)` on the Hugging Face model the
// run started from. Each adapter's module is the checkpoint's own: the base folder is read with layout
// huggingface (runtime/huggingface.ts, THE family tables) and the adapted kernel's tensor there names it, so no
// second name table exists. nnetc's lora_a [in, r] and lora_b [r, out] are PEFT's lora_A.weight [r, in] and
// lora_B.weight [out, r] (nn.Linear's layout; GPT-2's Conv1D modules take the same shapes, fan_in_fan_out);
// the scale is alpha / r on both sides. What PEFT cannot express is a RunError naming the layer: an adapter on
// a layer the checkpoint does not have, one on a projection the checkpoint packs with others (GPT-2's c_attn),
// and a run that changed weights PEFT takes from the base checkpoint.
import { dequantizeWeights, quantizeWeights } from "./quantize.js";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { decodeSafetensors, encodeSafetensors, writeFileAtomic, type HostTensor } from "./checkpoint/index.js";
import { RunError } from "./errors.js";
import { familyOf, isHuggingFaceFolder, readConfig, type HfModel } from "./huggingface.js";
import { loadPretrained } from "./pretrained.js";
import { isAdapter } from "./spec.js";
import { transpose, hostF32 } from "./torch_layout.js";
import { fingerprint, loadTrained } from "./weights.js";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_MODEL = "adapter_model.safetensors";

type Model = HfModel & { name: string; nodes: readonly { name: string; op: string; attrs: Readonly<Record<string, unknown>> }[]; params: readonly { name: string; layer: string; role: string; shape: readonly number[]; trainable: boolean }[] };

export interface PeftAdapter {
  config: Record<string, unknown>;
  tensors: Record<string, HostTensor>;
  /** The checkpoint's modules that carry an adapter, in the model's order. */
  modules: string[];
  family: string;
  /** Weights of the model the base checkpoint has no tensor for (a new head): not in PEFT's model. */
  outside: string[];
}

const list = (xs: readonly string[], max = 8) => xs.slice(0, max).join(", ") + (xs.length > max ? `, … (${xs.length} in all)` : "");

/** PEFT's task type for the checkpoint's architecture (config.json's `architectures`), null when none fits. */
function taskType(config: Record<string, unknown>): string | null {
  const arch = Array.isArray(config.architectures) ? String(config.architectures[0] ?? "") : "";
  if (/(ForCausalLM|LMHeadModel)$/.test(arch)) return "CAUSAL_LM";
  if (/ForSequenceClassification$/.test(arch)) return "SEQ_CLS";
  if (/ForTokenClassification$/.test(arch)) return "TOKEN_CLS";
  if (/ForQuestionAnswering$/.test(arch)) return "QUESTION_ANS";
  if (/Model$/.test(arch)) return "FEATURE_EXTRACTION";
  return null;
}

/**
 * The PEFT adapter of a LoRA run: `run` a run folder (adapters.safetensors, and model.safetensors or a
 * checkpoint), `base` the Hugging Face model folder the run started from. Reads, writes nothing.
 */
export function peftAdapter(m: Model, run: string, base: string): PeftAdapter {
  const adapted = m.nodes.filter((n) => (n.attrs.lora as string[] | undefined)?.length);
  if (!adapted.length) throw new RunError(`model ${m.name} has no LoRA adapters: --target peft exports a LoRA run's adapters; add \`lora rank: R, target: "…"\` to a phase of its plan and train it`);
  if (!existsSync(run) || !statSync(run).isDirectory()) throw new RunError(`--weights ${run}: not a run folder; --target peft reads the adapters.safetensors a LoRA run writes into its folder`);
  const file = path.join(run, "adapters.safetensors");
  if (!existsSync(file)) throw new RunError(`${run} has no adapters.safetensors: nnetc train writes it when a run with a lora phase ends; give the folder of a finished LoRA run of ${m.name}`);
  const ad = decodeSafetensors(new Uint8Array(readFileSync(file)));
  if (ad.metadata.format !== "nnetc-lora" || (ad.metadata.model && ad.metadata.model !== m.name)) throw new RunError(`${file} holds ${ad.metadata.format === "nnetc-lora" ? `the adapters of model ${ad.metadata.model}, not of ${m.name}` : "no nnetc LoRA adapters (metadata format is not nnetc-lora)"}`);
  const want = m.params.filter(isAdapter);
  const wrong = want.filter((p) => ad.tensors[p.name]?.shape.join(",") !== p.shape.join(",")).map((p) => p.name);
  if (wrong.length) throw new RunError(`${file} does not hold this model's adapters (${list(wrong)} missing or of another shape): it was trained with other lora settings; train the plan again, or give its own run`);
  if (!isHuggingFaceFolder(base)) throw new RunError(`--base ${base}: not a Hugging Face model folder (config.json and model.safetensors): give the folder the LoRA run was initialised from`);

  const config = readConfig(base);
  const family = familyOf(config, path.join(base, "config.json"));
  // The base checkpoint as layout huggingface reads it: each weight's tensor(s), by the checkpoint's own names.
  const pre = loadPretrained(m, { from: base, layout: "huggingface", map: [], allowMissing: true, allowExtra: true });
  const trained = loadTrained(run, fingerprint(m), "--weights", m).weights;

  // The run must compute what the base checkpoint plus the adapters computes: every weight PEFT takes from the
  // checkpoint is the checkpoint's.
  const changed: string[] = [];
  const outside: string[] = [];
  const int8Base = ad.metadata.base === "int8";
  for (const p of m.params) {
    if (isAdapter(p)) continue;
    const b = pre.weights[p.name];
    if (!b) {
      outside.push(p.name);
      continue;
    }
    const r = trained[p.name] ? hostF32(trained[p.name]!).data : null;
    const same = (bd: Float32Array) => !!r && r.length === bd.length && r.every((v, i) => v === bd[i]);
    // lora base: int8 (QLoRA-style): a frozen kernel the run held as the int8 quantization of the checkpoint's
    if (same(b.data as Float32Array)) continue;
    if (int8Base && b.shape.length >= 2 && same(dequantizeWeights(quantizeWeights({ w: b }, "int8")).w!.data as Float32Array)) continue;
    changed.push(p.name);
  }
  if (changed.length) {
    throw new RunError(
      `the run ${run} changed ${changed.length} weight${changed.length === 1 ? "" : "s"} that PEFT takes from ${base} (${list(changed)}): a PEFT adapter holds the adapters alone, so the base model with it would not compute what the run computes. ` +
        `Freeze those layers in every phase (freeze "…"), or export the whole model (--target onnx, --target pytorch --weights)`,
    );
  }

  // Each adapted kernel's module in the checkpoint: the tensor its values came from.
  const users = new Map<string, string[]>();
  for (const [w, srcs] of Object.entries(pre.sources)) for (const s of srcs) users.set(s, [...(users.get(s) ?? []), w]);
  const problems: string[] = [];
  const tensors: Record<string, HostTensor> = {};
  const modules: string[] = [];
  const conv: boolean[] = [];
  const seen = new Set<string>();
  let rank = 0;
  for (const n of adapted) {
    for (const g of n.attrs.lora as string[]) {
      const at = `${n.name}/${g ? `${g}/` : ""}`;
      const label = g ? `${n.name}/${g}` : n.name;
      if (seen.has(at)) continue;
      seen.add(at);
      const srcs = pre.sources[`${at}kernel`];
      if (!srcs?.length) {
        problems.push(`layer ${label} has an adapter but no module in ${base} (its kernel takes no tensor of the checkpoint): PEFT adapts the checkpoint's own modules only, so leave ${label} out of the lora targets, or export the merged model (--target onnx)`);
        continue;
      }
      const src = srcs[0]!;
      const kernels = (users.get(src) ?? []).filter((w) => w.endsWith("/kernel"));
      if (srcs.length > 1 || !src.endsWith(".weight") || kernels.length > 1) {
        const gpt2 = family.types[0] === "gpt2" ? " (GPT-2's c_attn packs query, key and value; its attn/output, c_fc and c_proj are modules of their own)" : "";
        problems.push(`layer ${label}'s adapter is on a projection that ${base} packs with others into one module, ${src.slice(0, src.lastIndexOf("."))}${gpt2}: PEFT adapts that module as a whole, not one projection of it, so leave ${label} out of the lora targets, or export the merged model (--target onnx)`);
        continue;
      }
      const module = src.slice(0, -".weight".length);
      const a = hostF32(ad.tensors[`${at}lora_a`]!);
      const b = hostF32(ad.tensors[`${at}lora_b`]!);
      rank = a.shape[1]!;
      tensors[`base_model.model.${module}.lora_A.weight`] = f32(transpose(a, [1, 0]));
      tensors[`base_model.model.${module}.lora_B.weight`] = f32(transpose(b, [1, 0]));
      modules.push(module);
      conv.push(!!family.conv1d?.test(module));
    }
  }
  if (problems.length) throw new RunError(`--target peft: ${problems.join("; ")}`);
  if (conv.some((c) => c) && conv.some((c) => !c)) throw new RunError(`--target peft: the adapted modules of ${base} are partly Conv1D (${list(modules.filter((_, i) => conv[i]))}) and partly Linear; one PEFT adapter takes one fan_in_fan_out: adapt one kind`);

  // target_modules: the modules' leaf names where those select exactly the adapted modules among the
  // checkpoint's (PEFT matches a name or a `.name` suffix), else the full module paths.
  const names = [...new Set([...Object.values(pre.sources).flat(), ...pre.ignored])];
  const all = new Set<string>();
  for (const t of names) {
    const segs = t.split(".");
    for (let k = 1; k < segs.length; k++) all.add(segs.slice(0, k).join("."));
  }
  const leaves = [...new Set(modules.map((x) => x.slice(x.lastIndexOf(".") + 1)))].sort();
  const hit = [...all].filter((x) => leaves.some((l) => x === l || x.endsWith(`.${l}`)));
  const exact = hit.length === modules.length && hit.every((x) => modules.includes(x));
  const alpha = Number(ad.metadata.alpha ?? Number((adapted[0]!.attrs.lora_scale as number) ?? 1) * rank);
  const cfg: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: path.resolve(base),
    bias: "none",
    fan_in_fan_out: conv.every((c) => c),
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: alpha,
    lora_dropout: Number(adapted[0]!.attrs.lora_dropout ?? 0),
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    peft_type: "LORA",
    r: rank,
    rank_pattern: {},
    revision: null,
    target_modules: exact ? leaves : [...modules].sort(),
    task_type: taskType(config),
    use_dora: false,
    use_rslora: false,
  };
  return { config: cfg, tensors, modules, family: family.types[0]!, outside };
}

function f32(t: { shape: number[]; data: Float32Array }): HostTensor {
  return { dtype: "F32", shape: t.shape, data: t.data };
}

/** Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (each atomically); existing files only with `force`. */
export function writePeftAdapter(outDir: string, a: PeftAdapter, force: boolean): { config: string; model: string; bytes: number } {
  const config = path.join(outDir, ADAPTER_CONFIG);
  const model = path.join(outDir, ADAPTER_MODEL);
  const there = [config, model].filter((f) => existsSync(f));
  if (there.length && !force) throw new RunError(`${list(there)} already exist${there.length === 1 ? "s" : ""}; pass --force to replace ${there.length === 1 ? "it" : "them"}, or -o another folder`);
  mkdirSync(outDir, { recursive: true });
  const bytes = encodeSafetensors(a.tensors, { format: "pt" });
  writeFileAtomic(model, bytes);
  writeFileAtomic(config, JSON.stringify(a.config, null, 2) + "\n");
  return { config, model, bytes: bytes.length };
}
