// nnetc compile --target peft against Hugging Face PEFT itself: a few LoRA steps on transformers' tiny random
// BertModel and LlamaForCausalLM (spec/interop/hf_reference.py tiny; spec/peft/*.nnet, started from the
// checkpoint with --init-from … --layout huggingface and everything but the adapters frozen), exported as
// adapter_config.json + adapter_model.safetensors; spec/interop/peft_reference.py loads the base with transformers,
// PeftModel.from_pretrained(base, DIR) and merge_and_unload(), and both equal nnetc's run to 1e-5 (max |Δ|), for a
// padded batch (padding masked) and for every row alone. Then what PEFT cannot express is a RunError naming it.
import * as tf from "@tensorflow/tfjs-core";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { initBackend } from "../../runtime/backend.js";
import { decodeSafetensors, encodeSafetensors, type HostTensor } from "../../runtime/checkpoint/index.js";
import { RunError } from "../../runtime/errors.js";
import { run } from "../../runtime/interpret.js";
import { peftAdapter } from "../../runtime/peft.js";
import { dequantizeWeights, quantizeWeights } from "../../runtime/quantize.js";
import { loadPretrained } from "../../runtime/pretrained.js";
import { isAdapter } from "../../runtime/spec.js";
import { trainedWeights } from "../../runtime/train.js";
import { fingerprint, loadTrained } from "../../runtime/weights.js";
import { memoryHost, ROOT, runNode } from "../helpers.js";
import { PYTHON, requireTorch } from "./torch_shared.js";

const TOLERANCE = 1e-5;
const CLI = path.join(ROOT, "dist/nnetc.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-peft-"));
const LENGTHS = [9, 4, 7];

test.before(async () => {
  await initBackend("wasm");
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

function modelOf(file: string, src = readFileSync(path.join(ROOT, file), "utf8"), name?: string): IRModel {
  const res = compile(file, src, memoryHost());
  assert.equal(res.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  return name ? res.module.models.find((m) => m.name === name)! : res.module.models[0]!;
}

function python(script: string, ...args: string[]): string {
  const r = spawnSync(PYTHON, [path.join(ROOT, "spec/interop", script), ...args], { encoding: "utf8", timeout: 300_000, env: { ...process.env, HF_HUB_OFFLINE: "1" } });
  assert.is(r.status, 0, `${script}: ${r.stderr.slice(-3000)}`);
  return r.stdout;
}

/** A seeded stream in [0, 1). */
function rng(seed: number): () => number {
  let s = seed;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** `n` training samples of 12 token ids (padded after a random length), their mask, segments, next tokens and a target vector. */
function writeTokens(file: string, n: number, seed: number): void {
  const r = rng(seed);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 4 + Math.floor(r() * 9);
    const ids = Array.from({ length: 12 }, (_, t) => (t < len ? 1 + Math.floor(r() * 98) : 0));
    lines.push(JSON.stringify({ ids, mask: ids.map((v) => (v ? 1 : 0)), segments: ids.map((_, t) => (t >= 5 && t < len ? 1 : 0)), next: [...ids.slice(1), 0], y: Array.from({ length: 32 }, () => r() * 2 - 1) }));
  }
  writeFileSync(file, lines.join("\n") + "\n");
}

const i32 = (data: number[], shape: number[]): HostTensor => ({ dtype: "I32", shape, data: Int32Array.from(data) });

/** The run's outputs (its trained weights, adapters included) on host inputs, by the interpreter. */
function forward(m: IRModel, runDir: string, feeds: Record<string, HostTensor>): Record<string, { shape: number[]; data: Float32Array }> {
  const t = loadTrained(runDir, fingerprint(m), "--weights", m);
  const weights = trainedWeights(m.params, { weights: t.weights, from: runDir });
  const xs = Object.fromEntries(m.inputs.map((i) => [i.name, tf.tensor(feeds[i.name]!.data as Int32Array, feeds[i.name]!.shape, "int32")]));
  try {
    return tf.tidy(() => {
      const ys = run(m, weights, xs, { training: false }).outputs;
      return Object.fromEntries(Object.entries(ys).map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]));
    });
  } finally {
    tf.dispose(Object.values(xs));
    for (const w of weights.values()) w.dispose();
  }
}

/** max |a − b| over the positions `keep` selects. */
function maxDiff(a: Float32Array, b: Float32Array, keep: (i: number) => boolean = () => true): number {
  assert.is(a.length, b.length, "sizes");
  let d = 0;
  for (let i = 0; i < a.length; i++) if (keep(i)) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

test("peft: tiny random BertModel and LlamaForCausalLM, LoRA-trained by nnetc, load into PeftModel with nnetc's outputs (1e-5), and merge_and_unload() too, padded and unpadded", async () => {
  requireTorch();
  python("hf_reference.py", "tiny", dir);
  writeTokens(path.join(dir, "tokens.jsonl"), 64, 11);
  const cases = [
    { kind: "bert", file: "spec/peft/peft.nnet", leaves: null, modules: 7 },
    { kind: "llama", file: "spec/peft/llama.nnet", leaves: ["down_proj", "o_proj", "q_proj", "v_proj"], modules: 8 },
  ] as const;
  for (const c of cases) {
    const runDir = path.join(dir, `run-${c.kind}`);
    const out = path.join(dir, `adapter-${c.kind}`);
    const tr = await runNode([CLI, "train", c.file, "--data", dir, "--init-from", path.join(dir, c.kind), "--layout", "huggingface", "--out", runDir, "--backend", "wasm"], { timeoutMs: 240_000 });
    assert.is(tr.code, 0, tr.stderr);
    // the base comes from the run's recorded init (no --base)
    const ex = await runNode([CLI, "compile", c.file, "--target", "peft", "--weights", runDir, "-o", out]);
    assert.is(ex.code, 0, ex.stderr);
    assert.match(ex.stdout, /wrote .*adapter_model\.safetensors/);
    const cfg = JSON.parse(readFileSync(path.join(out, "adapter_config.json"), "utf8"));
    assert.is(cfg.peft_type, "LORA");
    assert.is(cfg.r, 4);
    assert.is(cfg.lora_alpha, 8);
    assert.is(cfg.bias, "none");
    assert.is(cfg.fan_in_fan_out, false);
    assert.is(cfg.inference_mode, true);
    assert.is(cfg.task_type, c.kind === "bert" ? "FEATURE_EXTRACTION" : "CAUSAL_LM");
    assert.is(cfg.base_model_name_or_path, path.join(dir, c.kind));
    // BERT's "dense" leaf would also select the layers left alone (attention.output.dense, output.dense): full paths
    if (c.leaves) assert.equal(cfg.target_modules, c.leaves);
    else assert.ok((cfg.target_modules as string[]).includes("encoder.layer.1.intermediate.dense") && (cfg.target_modules as string[]).includes("pooler.dense"), JSON.stringify(cfg.target_modules));
    const st = decodeSafetensors(new Uint8Array(readFileSync(path.join(out, "adapter_model.safetensors"))));
    assert.is(Object.keys(st.tensors).length, 2 * c.modules);
    const q = c.kind === "bert" ? "base_model.model.encoder.layer.0.attention.self.query" : "base_model.model.model.layers.0.self_attn.q_proj";
    assert.equal(st.tensors[`${q}.lora_A.weight`]!.shape, [4, 32]);
    assert.equal(st.tensors[`${q}.lora_B.weight`]!.shape, [32, 4]);
    // an existing adapter is kept without --force
    const again = await runNode([CLI, "compile", c.file, "--target", "peft", "--weights", runDir, "-o", out]);
    assert.is(again.code, 2);
    assert.match(again.stderr, /already exist.*--force/);

    // the same inputs through nnetc's run and through PEFT
    const r = rng(c.kind.length * 13);
    const steps = Math.max(...LENGTHS);
    const ids: number[] = [];
    const mask: number[] = [];
    for (const n of LENGTHS) for (let t = 0; t < steps; t++) {
      ids.push(t < n ? 1 + Math.floor(r() * 98) : 0);
      mask.push(t < n ? 1 : 0);
    }
    const feeds: Record<string, HostTensor> = { ids: i32(ids, [LENGTHS.length, steps]), mask: i32(mask, [LENGTHS.length, steps]) };
    if (c.kind === "bert") feeds.segments = i32(ids.map((_, i) => (i % steps >= 3 ? 1 : 0)), [LENGTHS.length, steps]);
    writeFileSync(path.join(dir, `in-${c.kind}.safetensors`), encodeSafetensors(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [`${c.kind}.${k}`, v]))));
    console.log(`    ${python("peft_reference.py", path.join(dir, c.kind), out, path.join(dir, `in-${c.kind}.safetensors`), path.join(dir, `out-${c.kind}.safetensors`)).trim()}`);
    const want = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, `out-${c.kind}.safetensors`)))).tensors;
    const m = modelOf(c.file);
    const y = (k: string) => want[k]!.data as Float32Array;
    let padded = 0;
    let rows = 0;
    let adapterEffect = 0;
    for (const [name, v] of Object.entries(forward(m, runDir, feeds))) {
      // per-position outputs: real tokens only (neither side defines padding positions)
      const width = v.shape.length === 3 ? v.shape[2]! : 0;
      const real = (i: number) => !width || mask[Math.floor(i / width)] === 1;
      for (const tag of ["peft", "merged"]) padded = Math.max(padded, maxDiff(v.data, y(`${tag}.padded.${name}`), real));
      adapterEffect = Math.max(adapterEffect, maxDiff(y(`base.padded.${name}`), y(`peft.padded.${name}`), real));
    }
    LENGTHS.forEach((n, row) => {
      const one = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, i32(Array.from((t.data as Int32Array).subarray(row * steps, row * steps + n)), [1, n])]));
      for (const [name, v] of Object.entries(forward(m, runDir, one))) for (const tag of ["peft", "merged"]) rows = Math.max(rows, maxDiff(v.data, y(`${tag}.row${row}.${name}`)));
    });
    console.log(`    ${c.kind}: nnetc's LoRA run vs PeftModel and its merge_and_unload(): max |Δ| ${padded.toExponential(1)} padded ${LENGTHS.length}×${steps}, ${rows.toExponential(1)} every row unpadded; the adapters move the base's outputs by up to ${adapterEffect.toExponential(1)}`);
    assert.ok(adapterEffect > 1e-3, `the adapters hardly change the outputs (${adapterEffect}): the comparison would not see a wrong export`);
    assert.ok(padded <= TOLERANCE, `padded batch: PEFT differs from nnetc by ${padded}`);
    assert.ok(rows <= TOLERANCE, `unpadded rows: PEFT differs from nnetc by ${rows}`);
  }
});

/** A run folder for `m` by hand: the base checkpoint's weights (others zero, `tweak`ed), adapters of small values. */
function fakeRun(m: IRModel, base: string, name: string, tweak: (w: Record<string, HostTensor>) => void = () => {}): string {
  const runDir = path.join(dir, name);
  mkdirSync(runDir, { recursive: true });
  const pre = loadPretrained(m, { from: base, layout: "huggingface", map: [], allowMissing: true, allowExtra: true }).weights;
  const w: Record<string, HostTensor> = {};
  for (const p of m.params) w[p.name] = pre[p.name] ?? { dtype: "F32", shape: [...p.shape], data: Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, (_, i) => (isAdapter(p) ? Math.sin(i) * 0.1 : 0)) };
  tweak(w);
  writeFileSync(path.join(runDir, "model.safetensors"), encodeSafetensors(w, { format: "nnetc", model: m.name }));
  const ad = Object.fromEntries(m.params.filter(isAdapter).map((p) => [p.name, w[p.name]!]));
  if (Object.keys(ad).length) writeFileSync(path.join(runDir, "adapters.safetensors"), encodeSafetensors(ad, { format: "nnetc-lora", model: m.name, rank: "4", alpha: "8" }));
  return runDir;
}

const PLAN = (targets: string) => `
dataset d {
  source jsonl(path: "tokens.jsonl")
  field ids: i32[12] = ids
  field next: i32[12] = next
}
train TinyGPT2 on d {
  loss      cross_entropy(logits, next)
  optimizer adam(lr: 1e-2)
  phase adapt {
    freeze "**"
    lora   rank: 4, alpha: 8, ${targets}
    epochs 1
  }
}
`;

test("peft: what PEFT cannot express is a RunError naming it: no adapters, a layer the checkpoint lacks, GPT-2's packed c_attn, changed base weights", async () => {
  const rejects = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: Error) => {
      assert.ok(e instanceof RunError, `not a RunError: ${e.stack}`);
      assert.match(e.message, re);
      return true;
    });
  const bert = path.join(dir, "bert");
  assert.ok(existsSync(bert), "the first test saved the tiny models");
  const lora = modelOf("spec/peft/peft.nnet");
  // a model without LoRA; a run folder without adapters.safetensors
  const plain = modelOf("spec/huggingface/tiny.nnet", undefined, "TinyBert");
  rejects(() => peftAdapter(plain, fakeRun(plain, bert, "plain"), bert), /model TinyBert has no LoRA adapters/);
  const noAdapters = fakeRun(lora, bert, "no-adapters");
  rmSync(path.join(noAdapters, "adapters.safetensors"));
  rejects(() => peftAdapter(lora, noAdapters, bert), /has no adapters\.safetensors.*lora phase/);
  rejects(() => peftAdapter(lora, path.join(dir, "nowhere"), bert), /not a run folder/);
  // an adapter on a layer the checkpoint does not have (a new head)
  const src = readFileSync(path.join(ROOT, "spec/peft/peft.nnet"), "utf8");
  const headed = modelOf("spec/peft/peft.nnet", src.replace("output pooled = sequence -> take(0, axis: 1) -> dense(32, activation: tanh) as pooler", "pooled = sequence -> take(0, axis: 1) -> dense(32, activation: tanh) as pooler\n  output pooled2 = pooled -> dense(32) as head").replace('target: "pooler"', 'target: "head"').replace("mse(pooled, y)", "mse(pooled2, y)"));
  rejects(() => peftAdapter(headed, fakeRun(headed, bert, "headed"), bert), /layer head has an adapter but no module in .*bert/);
  // GPT-2's query projection is a third of c_attn
  const gptSrc = readFileSync(path.join(ROOT, "spec/huggingface/tiny.nnet"), "utf8");
  const gpt = modelOf("spec/huggingface/tiny.nnet", gptSrc + PLAN('target: "**/attn/query", target: "**/c_fc"'), "TinyGPT2");
  rejects(() => peftAdapter(gpt, fakeRun(gpt, path.join(dir, "gpt2"), "gpt"), path.join(dir, "gpt2")), /DecoderLayer\/attn\/query's adapter is on a projection that .* packs .*h\.0\.attn\.c_attn .*GPT-2's c_attn/);
  // GPT-2's c_fc and attention output are Conv1D modules of their own: fan_in_fan_out
  const gptOk = modelOf("spec/huggingface/tiny.nnet", gptSrc + PLAN('target: "**/attn/output", target: "**/c_fc"'), "TinyGPT2");
  const a = peftAdapter(gptOk, fakeRun(gptOk, path.join(dir, "gpt2"), "gpt-ok"), path.join(dir, "gpt2"));
  // (the leaf c_proj would select the MLP's c_proj too: full paths)
  assert.equal(a.config.target_modules, ["transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_fc", "transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_fc"]);
  assert.is(a.config.fan_in_fan_out, true);
  // a run that changed a weight PEFT takes from the checkpoint
  rejects(() => peftAdapter(lora, fakeRun(lora, bert, "changed", (w) => ((w["Bert/embeddings_norm/gamma"]!.data as Float32Array)[0]! += 0.5)), bert), /changed 1 weight that PEFT takes from .*Bert\/embeddings_norm\/gamma/);
  // lora base: int8 (QLoRA-style): adapted kernels held as the int8 quantization of the checkpoint's are the
  // checkpoint's as far as PEFT goes (the adapters were trained over their int8 form) — when the adapters say so
  const adaptedKernels = lora.nodes.flatMap((n) => ((n.attrs.lora as string[] | undefined) ?? []).map((g) => `${n.name}/${g ? `${g}/` : ""}kernel`));
  assert.ok(adaptedKernels.length > 0);
  const int8 = fakeRun(lora, bert, "int8", (w) => Object.assign(w, dequantizeWeights(quantizeWeights(Object.fromEntries(adaptedKernels.map((k) => [k, w[k]!])), "int8"))));
  rejects(() => peftAdapter(lora, int8, bert), /changed \d+ weights? that PEFT takes from/);
  const adFile = path.join(int8, "adapters.safetensors");
  const ad = decodeSafetensors(new Uint8Array(readFileSync(adFile)));
  writeFileSync(adFile, encodeSafetensors(ad.tensors, { ...ad.metadata, base: "int8" }));
  assert.equal(Object.keys(peftAdapter(lora, int8, bert).tensors).length, 2 * adaptedKernels.length);
  // the CLI: a clear message and exit 2, no stack trace, nothing written
  const cli = await runNode([CLI, "compile", "spec/peft/peft.nnet", "--target", "peft", "--weights", noAdapters, "--base", bert, "-o", path.join(dir, "never")]);
  assert.is(cli.code, 2, cli.stderr);
  assert.match(cli.stderr, /^nnetc: .*has no adapters\.safetensors/);
  assert.not.match(cli.stderr, /\n\s+at /);
  assert.not.ok(existsSync(path.join(dir, "never", "adapter_config.json")));
  const noBase = await runNode([CLI, "compile", "spec/peft/peft.nnet", "--target", "peft", "--weights", noAdapters, "-o", path.join(dir, "never")]);
  assert.is(noBase.code, 2, noBase.stderr);
  assert.match(noBase.stderr, /needs the Hugging Face model the LoRA run started from: give --base DIR/);
});

test.run();
