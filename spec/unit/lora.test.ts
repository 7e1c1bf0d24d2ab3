// LoRA (issue 15): the plan setting adds adapters to the model (lora_a [in, rank], lora_b [rank, out] on each
// matched dense layer and attention projection), a lora phase trains the adapters and leaves the adapted base
// weights as they are, the tfjs and torch engines take the same steps, the run folder holds the adapters alone,
// and the merged export (ONNX: W + scale·A·B) computes what the adapter model computes.
import * as tf from "@tensorflow/tfjs-core";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { exportOnnx } from "../../compiler/emit/onnx/index.js";
import { optimize } from "../../compiler/passes/index.js";
import { initBackend } from "../../runtime/backend.js";
import { deriveWeights, disposeDerived } from "../../runtime/derive.js";
import { decodeSafetensors, type HostTensor } from "../../runtime/checkpoint/index.js";
import { Rng } from "../../runtime/data/rng.js";
import { TfjsEngine, type PhaseSetup, type StepEngine } from "../../runtime/engine.js";
import { interpreted, run } from "../../runtime/interpret.js";
import { isAdapter, phaseTrainable } from "../../runtime/spec.js";
import { startTorch } from "../../runtime/torch/engine.js";
import { memoryHost, ROOT, runNode } from "../helpers.js";
import { nontrivialHost } from "./matrix.worker.js";
import { randomSplit, requireTorch, writeBlobs } from "./torch_shared.js";

const FILE = "spec/lora/lora.nnet";
const CLI = path.join(ROOT, "dist/nnetc.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-lora-"));

const load = (src = readFileSync(path.join(ROOT, FILE), "utf8")) => compile(FILE, src, memoryHost());

test.before(async () => {
  await initBackend("wasm");
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("lora: adapters become weights of the matched layers; the phase trains them and the head, not the adapted base weights", () => {
  const res = load();
  assert.equal(res.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  const m = res.module.models[0]!;
  const adapters = m.params.filter(isAdapter).map((p) => `${p.name} [${p.shape.join(", ")}]`);
  assert.equal(adapters, ["proj/lora_a [16, 2]", "proj/lora_b [2, 16]", "attn/query/lora_a [16, 2]", "attn/query/lora_b [2, 16]", "attn/value/lora_a [16, 2]", "attn/value/lora_b [2, 16]"]);
  assert.equal(m.nodes.find((n) => n.name === "attn")!.attrs.lora, ["query", "value"]);
  assert.is(m.nodes.find((n) => n.name === "attn")!.attrs.lora_scale, 2);
  const [warm, adapt] = res.module.plans[0]!.phases;
  assert.equal(adapt!.lora!.targets, ["proj", "attn/query", "attn/value"]);
  // warm: everything but the adapters; adapt: the adapters and the head (proj and attn are frozen)
  assert.equal(phaseTrainable(m.params, warm!).filter(isAdapter), []);
  assert.equal(phaseTrainable(m.params, adapt!).map((p) => p.name), [...m.params.filter(isAdapter).map((p) => p.name), "head/kernel", "head/bias"].sort((a, b) => m.params.findIndex((p) => p.name === a) - m.params.findIndex((p) => p.name === b)));
  // without the freeze, the adapted projections' base weights still stay; the key/output projections train
  const open = load(readFileSync(path.join(ROOT, FILE), "utf8").replace('freeze "proj", "attn"', "")).module;
  const names = phaseTrainable(open.models[0]!.params, open.plans[0]!.phases[1]!).map((p) => p.name);
  for (const n of ["proj/kernel", "attn/query/kernel", "attn/value/bias"]) assert.not.ok(names.includes(n), n);
  for (const n of ["attn/key/kernel", "attn/output/bias", "head/kernel"]) assert.ok(names.includes(n), n);
});

test("lora: a target that matches nothing is NN4030, phases that disagree NN4031", () => {
  const src = readFileSync(path.join(ROOT, FILE), "utf8");
  const a = load(src.replace('target: "attn/value"', 'target: "attn/values"'));
  assert.equal(a.diagnostics.map((d) => d.code), ["NN4030"]);
  assert.match(a.diagnostics[0]!.hint ?? "", /attn\/query/);
  const b = load(src.replace("  phase warm {\n    epochs 1\n  }", '  phase warm {\n    lora rank: 4, target: "proj"\n    epochs 1\n  }'));
  assert.equal(b.diagnostics.map((d) => d.code), ["NN4031"]);
});

test("lora: three steps of a lora phase give the same weights on the tfjs and torch engines; adapted base weights do not move", async () => {
  requireTorch();
  const res = load();
  const m = optimize(res.module, { level: 1, mode: "train" }).module.models[0]!;
  const phase = res.module.plans[0]!.phases[1]!;
  const host = nontrivialHost(m, 4);
  const split = randomSplit(m, 24, 2, 4);
  const setup: PhaseSetup = {
    trainable: phaseTrainable(m.params, phase).map((p) => p.name),
    frozenLayers: phase.frozenLayers,
    optimizer: { fn: "adam", args: { lr: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } },
    weightDecay: 0,
    decays: [],
    clip: null,
    loss: [{ fn: "cross_entropy", prediction: "logits", target: "label", weight: 1, args: {} }],
    accumulate: 1,
  };
  const vars = new Map(m.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape), true, p.name)]));
  const engines: StepEngine[] = [new TfjsEngine(interpreted(m), vars), await startTorch(m, { device: "cpu", precision: "fp32", level: 1 }, host)];
  const after: Record<string, HostTensor>[] = [];
  for (const e of engines) {
    await e.beginPhase(setup);
    const order = Uint32Array.from([5, 1, 9, 20, 3, 7, 11, 0, 2, 14, 8, 6]);
    await e.trainSteps({ split, batches: [order.subarray(0, 4), order.subarray(4, 8), order.subarray(8, 12)], lrs: [1e-2, 1e-2, 1e-2], firstStep: 0, seed: 1, collect: null });
    after.push(await e.getWeights());
  }
  for (const e of engines) await e.dispose();
  let worst = 0;
  for (const [k, v] of Object.entries(after[0]!)) {
    const a = v.data as Float32Array;
    const b = after[1]![k]!.data as Float32Array;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(a[i]!)));
  }
  console.log(`    tfjs vs torch after three LoRA steps: max rel |Δ| ${worst.toExponential(1)} over ${Object.keys(after[0]!).length} weights`);
  assert.ok(worst <= 1e-4, `engines differ by ${worst}`);
  const same = (k: string) => Array.from(after[1]![k]!.data as Float32Array).every((v, i) => v === (host[k]!.data as Float32Array)[i]);
  for (const k of ["proj/kernel", "attn/query/kernel", "attn/value/bias", "attn/key/kernel"]) assert.ok(same(k), `${k} moved`);
  for (const k of ["proj/lora_b", "attn/query/lora_a", "head/kernel"]) assert.not.ok(same(k), `${k} did not move`);
});

test("lora: the inference form (-O1's merge-lora: kernel + scale·A·B, derived at load) and its ONNX export compute what the adapter model computes (1e-5), with no adapter left", async () => {
  const res = load();
  const m0 = res.module.models[0]!;
  const m = optimize(res.module, { level: 1, mode: "infer" }).module.models[0]!;
  assert.equal(m.params.filter(isAdapter), [], "the inference model has no adapters");
  assert.ok(m.nodes.every((n) => n.attrs.lora === undefined && n.attrs.lora_scale === undefined));
  assert.equal(m.params.filter((p) => p.derive?.fn === "merge_lora").map((p) => p.name).sort(), ["attn/query/kernel", "attn/value/kernel", "proj/kernel"]);
  const host = nontrivialHost(m0, 5);
  // adapters away from their initial zero, so that merging matters
  for (const p of m0.params.filter((w) => /lora_b$/.test(w.role))) (host[p.name]!.data as Float32Array).forEach((_, i, a) => (a[i] = Math.sin(i + p.name.length) * 0.3));
  const source = new Map(m0.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape), false)]));
  const derived = deriveWeights(m.params, source);
  const rng = new Rng(9);
  const x = Float32Array.from({ length: 3 * 8 * 16 }, () => rng.next() * 2 - 1);
  const want = tf.tidy(() => run(m0, source as never, { x: tf.tensor(x, [3, 8, 16]) }, { training: false }).outputs.logits!.dataSync() as Float32Array);
  const merged = tf.tidy(() => run(m, derived as never, { x: tf.tensor(x, [3, 8, 16]) }, { training: false }).outputs.logits!.dataSync() as Float32Array);
  const without = tf.tidy(() => run(m, source as never, { x: tf.tensor(x, [3, 8, 16]) }, { training: false }).outputs.logits!.dataSync() as Float32Array);
  const weights = new Map(m.params.map((p) => [p.name, { shape: p.shape, data: derived.get(p.name)!.dataSync() as Float32Array }]));
  disposeDerived(derived, source);
  tf.dispose([...source.values()]);
  const diff = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => Math.max(s, Math.abs(v - b[i]!)), 0);
  assert.ok(diff(without, want) > 1e-3, "the adapters change the outputs (else merging proves nothing)");
  const dm = diff(merged, want);
  assert.ok(dm <= 1e-5, `the -O1 inference model differs by ${dm}`);
  const out = exportOnnx(m, weights, { producerVersion: "test" });
  assert.equal(out.diagnostics, []);
  const session = await ort.InferenceSession.create(out.bytes!);
  const y = (await session.run({ [session.inputNames[0]!]: new ort.Tensor("float32", x, [3, 8, 16]) }))[session.outputNames[0]!]!.data as Float32Array;
  await session.release();
  const d = diff(y, want);
  console.log(`    merged (-O1) vs adapter model: max |Δ| ${dm.toExponential(1)}; its ONNX: ${d.toExponential(1)}; ${(out.bytes as Uint8Array).length} bytes`);
  assert.ok(d <= 1e-5, `merged export differs by ${d}`);
  assert.not.match(Buffer.from(out.bytes as Uint8Array).toString("latin1"), /lora_/);
});

test("lora: nnetc train writes the adapters alone beside the model, and the adapted base weights are the pretrained ones", async () => {
  const rng = new Rng(8);
  writeBlobs(path.join(dir, "blobs.jsonl"), 480, rng);
  writeBlobs(path.join(dir, "blobs_test.jsonl"), 96, rng);
  copyFileSync(path.join(ROOT, FILE), path.join(dir, "lora.nnet"));
  const r = await runNode([CLI, "train", path.join(dir, "lora.nnet"), "--out", path.join(dir, "run"), "--backend", "wasm"], { timeoutMs: 120_000 });
  assert.is(r.code, 0, r.stderr);
  const ad = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, "run/adapters.safetensors"))));
  assert.equal(Object.keys(ad.tensors).sort(), ["attn/query/lora_a", "attn/query/lora_b", "attn/value/lora_a", "attn/value/lora_b", "proj/lora_a", "proj/lora_b"]);
  assert.is(ad.metadata?.rank, "2");
  const all = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, "run/model.safetensors")))).tensors;
  for (const [k, v] of Object.entries(ad.tensors)) assert.equal(Array.from(v.data as Float32Array), Array.from(all[k]!.data as Float32Array), k);
  console.log(`    adapters.safetensors ${statSync(path.join(dir, "run/adapters.safetensors")).size} B, model.safetensors ${statSync(path.join(dir, "run/model.safetensors")).size} B`);
});

test.run();
