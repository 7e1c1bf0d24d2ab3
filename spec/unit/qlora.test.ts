// lora base: int8 (QLoRA-style, issue 15): the frozen base kernels are held as int8 with per-output-channel
// scales while the adapters train in float32. The int8 forward equals the float forward on weights PyTorch
// quantizes and dequantizes itself; the tfjs and torch engines train alike and the loss falls; the engines hold
// the base in about a quarter of its float32 bytes; checkpoints hold it exactly (resume ends as an uninterrupted
// run, eval measures training's test loss); the merged inference form (-O1) and its ONNX export compute what
// the int8-base adapter model computes.
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { exportOnnx } from "../../compiler/emit/onnx/index.js";
import { optimize } from "../../compiler/passes/index.js";
import { loraLines } from "../../compiler/summary.js";
import { initBackend } from "../../runtime/backend.js";
import { decodeSafetensors, type HostTensor } from "../../runtime/checkpoint/index.js";
import { Rng } from "../../runtime/data/rng.js";
import { deriveWeights, disposeDerived } from "../../runtime/derive.js";
import { TfjsEngine } from "../../runtime/engine.js";
import { interpreted, run } from "../../runtime/interpret.js";
import { disposePacked, packedHost, packInt8, weightValue } from "../../runtime/qbase.js";
import { dequantizeWeights, quantizeWeights } from "../../runtime/quantize.js";
import { startTorch } from "../../runtime/torch/engine.js";
import { memoryHost, ROOT, runNode } from "../helpers.js";
import { nontrivialHost } from "./matrix.worker.js";
import { PYTHON, requireTorch, writeBlobs } from "./torch_shared.js";

const FILE = "spec/lora/qlora.nnet";
const CLI = path.join(ROOT, "dist/nnetc.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-qlora-"));
const SRC = readFileSync(path.join(ROOT, FILE), "utf8");
const load = (src = SRC) => compile(FILE, src, memoryHost());
const diff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => Math.max(s, Math.abs(v - b[i]!)), 0);
const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 180_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
};
const epochs = (run: string) => readFileSync(path.join(run, "metrics.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);
const tensors = (f: string) => decodeSafetensors(new Uint8Array(readFileSync(f)));
const ADAPTED = ["proj/kernel", "attn/query/kernel", "attn/value/kernel"];
const INT8 = ["proj/kernel", "attn/query/kernel", "attn/key/kernel", "attn/value/kernel", "attn/output/kernel"];

test.before(async () => {
  await initBackend("wasm");
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("summary: a LoRA phase's sizes are in KB under a megabyte and in MB above (all-MiniLM-L6-v2's frozen base)", async () => {
  const r = await runNode([path.join(ROOT, "dist/nnetc.mjs"), "summary", path.join(ROOT, "models/minilm_spam.nnet"), "--model", "MiniLMSpamLoRA"]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /73,728 adapter weights \(288\.0 KB\); trains 74,498 of 22,639,874 weights \(0\.33%\); frozen base 22,565,376 weights float32 \(86\.1 MB\)/);
});

test("qlora: base: int8 holds the adapted kernels and the other frozen dense/attention kernels as int8; summary says so; NN4032, NN4033", () => {
  const res = load();
  assert.equal(res.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  const m = res.module.models[0]!;
  const lora = res.module.plans[0]!.phases[0]!.lora!;
  assert.is(lora.base, "int8");
  assert.equal(lora.quantize, INT8); // the head trains: it stays float32
  const line = loraLines(m, res.module.plans).join("\n");
  assert.match(line, /trains 260 of 1,620 weights \(16\.05%\); frozen base 1,360 weights: 5 kernels int8 \(1\.6 KB with scales, 5\.0 KB as float32\)/);
  // without the freeze, attn/key and attn/output train: only the adapted kernels are int8
  assert.equal(load(SRC.replace('    freeze "proj", "attn"\n', "")).module.plans[0]!.phases[0]!.lora!.quantize, ADAPTED);
  // base: float32 (the default) quantizes nothing, and summary says the base is float32
  const plain = load(SRC.replace(", base: int8", ""));
  assert.is(plain.module.plans[0]!.phases[0]!.lora!.quantize, undefined);
  assert.match(loraLines(plain.module.models[0]!, plain.module.plans).join(""), /frozen base 1,360 weights float32 \(5\.3 KB\)/);
  // a later phase that trains an int8 base kernel (the adapted proj, attn/query, attn/value): NN4032, once each
  const later = load(SRC.replace("    epochs 3\n  }\n}", "    epochs 3\n  }\n  phase polish {\n    freeze \"attn\"\n    epochs 1\n  }\n}"));
  assert.equal(later.diagnostics.map((d) => d.code), ["NN4032"]);
  assert.match(later.diagnostics[0]!.message, /phase polish trains the kernel of proj, which lora base: int8 holds as int8 from phase adapt on/);
  // ...but a phase before the lora phase trains them in float32 as ever
  assert.equal(load(SRC.replace("  phase adapt {", "  phase warm {\n    epochs 1\n  }\n  phase adapt {")).diagnostics, []);
  // pruning an int8 base kernel: NN4033
  const pruned = load(SRC.replace("    epochs 3\n", "    epochs 3\n    prune sparsity: 0.5, exclude: \"head\"\n"));
  assert.equal(pruned.diagnostics.map((d) => `${d.code} ${d.message}`), ["NN4033 phase adapt prunes the kernels of proj, attn/query, attn/value, which lora base: int8 holds as int8 from phase adapt on"]);
  // a misspelt storage: the signature's own diagnostic, naming the choices
  const bad = load(SRC.replace("base: int8", "base: int4"));
  assert.ok(bad.diagnostics.length === 1 && /int8/.test(`${bad.diagnostics[0]!.message} ${bad.diagnostics[0]!.hint ?? ""}`), JSON.stringify(bad.diagnostics));
});

test("qlora: property: any float kernel, quantized, packed four int8 to an int32 and unpacked on tfjs, gives exactly dequantizeWeights' q·scale", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 7 }), fc.array(fc.float({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 63, maxLength: 63 }), (rows, cols, pool) => {
      const data = Float32Array.from({ length: rows * cols }, (_, i) => pool[i % pool.length]! * (1 + (i % 5)));
      const q = quantizeWeights({ w: { dtype: "F32", shape: [rows, cols], data } }, "int8");
      const want = dequantizeWeights(q).w!.data as Float32Array;
      const v = packInt8(q.w!, q["w:scale"]!, "w");
      const got = tf.tidy(() => weightValue(v).dataSync() as Float32Array);
      const host = packedHost(v)!;
      assert.equal(Array.from(host.q.data as Int8Array), Array.from(q.w!.data as Int8Array));
      disposePacked(v);
      assert.equal(Array.from(got), Array.from(want));
    }),
    { numRuns: 60, seed: 15 },
  );
});

/** The kernels quantized and dequantized by PyTorch itself (symmetric, per output channel: the last axis in nnetc's layout). */
function torchDequantized(host: Record<string, HostTensor>, names: readonly string[]): Record<string, Float32Array> {
  const input = JSON.stringify(Object.fromEntries(names.map((k) => [k, { shape: host[k]!.shape, data: Array.from(host[k]!.data as Float32Array) }])));
  const py = `
import json, sys, torch
out = {}
for k, t in json.load(sys.stdin).items():
    w = torch.tensor(t["data"], dtype=torch.float32).reshape(t["shape"])
    scale = w.abs().amax(dim=0) / 127
    q = torch.clamp(torch.round(w / scale), -127, 127)
    out[k] = (q * scale).flatten().tolist()
print(json.dumps(out))`;
  const r = spawnSync(PYTHON, ["-c", py], { input, encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  return Object.fromEntries(Object.entries(JSON.parse(r.stdout) as Record<string, number[]>).map(([k, v]) => [k, Float32Array.from(v)]));
}

test("qlora: the int8-base forward (tfjs packed int8, torch int8 buffers) equals the float forward on PyTorch-dequantized kernels (1e-5); the engines hold the base in about a quarter of its bytes", async () => {
  requireTorch();
  const res = load();
  const m = optimize(res.module, { level: 1, mode: "train" }).module.models[0]!;
  const names = res.module.plans[0]!.phases[0]!.lora!.quantize!;
  const host = nontrivialHost(m, 4); // lora_b away from zero: the adapters take part
  const q = quantizeWeights(Object.fromEntries(names.map((k) => [k, host[k]!])), "int8");
  const ref = torchDequantized(host, names);
  const rng = new Rng(9);
  const x = Float32Array.from({ length: 3 * 8 * 16 }, () => rng.next() * 2 - 1);
  const forward = (w: Map<string, tf.Variable>) => tf.tidy(() => run(m, w, { x: tf.tensor(x, [3, 8, 16]) }, { training: false }).outputs.logits!.dataSync() as Float32Array);
  const vars = (h: Record<string, HostTensor | Float32Array>) => new Map(m.params.map((p) => [p.name, tf.variable(tf.tensor((h[p.name] as HostTensor)?.data as Float32Array ?? h[p.name], p.shape), false)]));

  const reference = vars({ ...host, ...ref });
  const want = forward(reference);
  const float = vars(host);
  const unquantized = forward(float);
  tf.dispose([...reference.values(), ...float.values()]);

  const weights = vars(host);
  const engine = new TfjsEngine(interpreted(m), weights);
  const before = tf.memory().numBytes;
  const fb = await engine.weightBytes();
  await engine.setQuantized(q);
  const after = tf.memory().numBytes;
  const ib = await engine.weightBytes();
  const got = forward(weights);
  // the engine gives the int8 kernels back as quantizeWeights made them
  const back = await engine.getWeights();
  for (const k of names) assert.equal([back[k]!.dtype, Array.from(back[k]!.data as Int8Array)], ["I8", Array.from(q[k]!.data as Int8Array)], k);
  await engine.dispose();
  tf.dispose([...weights.values()]);

  const torch = await startTorch(m, { device: "cpu", precision: "fp32", level: 1 }, host);
  let tb: { float: number; int8: number }, tq: { float: number; int8: number }, viaTorch: Float32Array;
  try {
    tb = await torch.weightBytes();
    await torch.setQuantized(q);
    tq = await torch.weightBytes();
    viaTorch = (await torch.predict({ x: { dtype: "F32", shape: [3, 8, 16], data: x } })).logits!.data as Float32Array;
    const w = await torch.getWeights();
    for (const k of names) assert.equal(Array.from(w[k]!.data as Int8Array), Array.from(q[k]!.data as Int8Array), k);
  } finally {
    await torch.dispose();
  }

  const dq = diff(unquantized, want);
  const dt = diff(got, want);
  const dp = diff(viaTorch, want);
  const baseFloat = names.reduce((s, k) => s + 4 * host[k]!.data.length, 0);
  console.log(`    int8 forward vs PyTorch-dequantized reference: tfjs ${dt.toExponential(1)}, torch ${dp.toExponential(1)} (the float32 base differs by ${dq.toExponential(1)})`);
  console.log(`    frozen base kernels: float32 ${baseFloat} B; tfjs engine int8 + scales ${ib.int8} B (weights ${fb.float} → ${ib.float + ib.int8} B, tf.memory ${before} → ${after} B); torch int8 + scales ${tq.int8} B (params+buffers ${tb.float} → ${tq.float + tq.int8} B)`);
  assert.ok(dq > 1e-4, "int8 changes the outputs (else the comparison proves nothing)");
  assert.ok(dt <= 1e-5, `tfjs int8 forward differs by ${dt}`);
  assert.ok(dp <= 1e-5, `torch int8 forward differs by ${dp}`);
  // 1 byte a value (tfjs: four to an int32) + a float32 scale per output channel: 1,600 of 5,120 bytes here
  const scales = names.reduce((s, k) => s + 4 * host[k]!.shape[1]!, 0);
  assert.is(ib.int8, baseFloat / 4 + scales);
  assert.is(tq.int8, baseFloat / 4 + scales);
  assert.is(fb.float - ib.float, baseFloat);
  assert.is(tb.float - tq.float, baseFloat);
  assert.is(before - after, baseFloat - ib.int8);
});

test("qlora: nnetc train on tfjs and torch: the loss falls and the engines agree per epoch (2e-4); the run holds the int8 base exactly: resume ends as the uninterrupted run, eval measures training's test loss", async () => {
  requireTorch();
  const rng = new Rng(8);
  writeBlobs(path.join(dir, "blobs.jsonl"), 480, rng);
  writeBlobs(path.join(dir, "blobs_test.jsonl"), 96, rng);
  const file = path.join(dir, "qlora.nnet");
  copyFileSync(path.join(ROOT, FILE), file);
  const tfjsRun = path.join(dir, "tfjs");
  const a = cli(["train", file, "--out", tfjsRun, "--backend", "wasm", "--json"]);
  assert.is(a.code, 0, a.err);
  assert.match(a.out, /"event":"quantize","phase":"adapt","kernels":5,"float32_bytes":5120,"int8_bytes":1600/);
  const b = cli(["train", file, "--out", path.join(dir, "torch"), "--engine", "torch"]);
  assert.is(b.code, 0, b.err);
  const ta = epochs(tfjsRun);
  const tb = epochs(path.join(dir, "torch"));
  assert.is(ta.length, 3);
  let worst = 0;
  ta.forEach((e, i) => (worst = Math.max(worst, Math.abs(e.loss! - tb[i]!.loss!))));
  console.log(`    losses per epoch: tfjs ${ta.map((e) => e.loss!.toFixed(4)).join(", ")}; torch ${tb.map((e) => e.loss!.toFixed(4)).join(", ")}; max |Δ| ${worst.toExponential(1)}`);
  assert.ok(worst <= 2e-4, `engines differ by ${worst}`);
  assert.ok(ta[2]!.loss! < ta[0]!.loss! - 0.1, "the loss falls");

  // model.safetensors: the int8 base as I8 + per-channel scales, the rest float32; the adapters alone beside it
  const model = tensors(path.join(tfjsRun, "model.safetensors")).tensors;
  assert.equal(Object.keys(model).filter((k) => model[k]!.dtype === "I8").sort(), [...INT8].sort());
  for (const k of INT8) assert.is(model[`${k}:scale`]!.dtype, "F32");
  const torchModel = tensors(path.join(dir, "torch", "model.safetensors")).tensors;
  for (const k of INT8) assert.equal(Array.from(torchModel[k]!.data as Int8Array), Array.from(model[k]!.data as Int8Array), `${k}: the engines quantized alike`);
  const ad = tensors(path.join(tfjsRun, "adapters.safetensors"));
  assert.is(ad.metadata?.base, "int8");
  assert.equal(Object.keys(ad.tensors).filter((k) => !/lora_[ab]$/.test(k)), []);

  // Resume from the checkpoint after epoch 1 (int8 already held) ends bit for bit as the uninterrupted run.
  const resumed = path.join(dir, "resumed");
  cpSync(tfjsRun, resumed, { recursive: true });
  const ckpts = readdirSync(path.join(resumed, "checkpoints")).sort();
  for (const c of ckpts.slice(1)) rmSync(path.join(resumed, "checkpoints", c), { recursive: true });
  rmSync(path.join(resumed, "model.safetensors"));
  const ckptWeights = readdirSync(path.join(resumed, "checkpoints", ckpts[0]!)).filter((f) => f.includes("weights") || f.includes("model"));
  assert.ok(ckptWeights.length > 0, "the checkpoint holds weights");
  const r = cli(["train", file, "--out", resumed, "--backend", "wasm", "--resume"]);
  assert.is(r.code, 0, r.err);
  assert.not.match(r.out, /lora base int8/, "a resumed run takes the int8 base from the checkpoint");
  assert.ok(Buffer.compare(readFileSync(path.join(resumed, "model.safetensors")), readFileSync(path.join(tfjsRun, "model.safetensors"))) === 0, "the resumed run ends with other weights");

  // eval of the run reads the int8 base (dequantized on load): training's test loss to 1e-6
  const trained = JSON.parse(readFileSync(path.join(tfjsRun, "test.json"), "utf8")) as { loss: number };
  const ev = cli(["eval", file, "--weights", tfjsRun, "--backend", "wasm", "--json"]);
  assert.is(ev.code, 0, ev.err);
  const evLoss = (JSON.parse(ev.out.trim().split("\n").pop()!) as { loss: number }).loss;
  assert.ok(Math.abs(trained.loss - evLoss) < 1e-6, `test loss ${trained.loss} in training, ${evLoss} by eval`);
});

test("qlora: the merged inference form (-O1: dequantized kernel + scale·A·B) and its ONNX export compute what the int8-base adapter model computes (1e-5)", async () => {
  const res = load();
  const m0 = res.module.models[0]!;
  const m = optimize(res.module, { level: 1, mode: "infer" }).module.models[0]!;
  // the trained run's weights as eval reads them: int8 kernels dequantized on load
  const saved = tensors(path.join(dir, "tfjs", "model.safetensors")).tensors;
  const host = dequantizeWeights(saved);
  const source = new Map(m0.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape), false)]));
  const derived = deriveWeights(m.params, source);
  const rng = new Rng(11);
  const x = Float32Array.from({ length: 4 * 8 * 16 }, () => rng.next() * 2 - 1);
  const forward = (model: typeof m, w: Map<string, tf.Variable>) => tf.tidy(() => run(model, w, { x: tf.tensor(x, [4, 8, 16]) }, { training: false }).outputs.logits!.dataSync() as Float32Array);
  const merged = forward(m, derived);
  const weights = new Map(m.params.map((p) => [p.name, { shape: p.shape, data: Float32Array.from(derived.get(p.name)!.dataSync() as Float32Array) }]));
  disposeDerived(derived, source);
  tf.dispose([...source.values()]);
  // the adapter model as training ran it: int8 kernels packed in the engine, adapters in float32
  const vars = new Map(m0.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape), false)]));
  const engine = new TfjsEngine(interpreted(m0), vars);
  await engine.setQuantized(Object.fromEntries(Object.entries(saved).filter(([k]) => INT8.some((n) => k === n || k === `${n}:scale`))));
  const want = forward(m0, vars);
  await engine.dispose();
  tf.dispose([...vars.values()]);
  const dm = diff(merged, want);
  const out = exportOnnx(m, weights, { producerVersion: "test" });
  assert.equal(out.diagnostics, []);
  const session = await ort.InferenceSession.create(out.bytes!);
  const y = (await session.run({ [session.inputNames[0]!]: new ort.Tensor("float32", x, [4, 8, 16]) }))[session.outputNames[0]!]!.data as Float32Array;
  await session.release();
  const d = diff(y, want);
  console.log(`    merged (-O1) vs int8-base adapter model: max |Δ| ${dm.toExponential(1)}; its ONNX: ${d.toExponential(1)}`);
  assert.ok(dm <= 1e-5, `merged differs by ${dm}`);
  assert.ok(d <= 1e-5, `ONNX differs by ${d}`);
});

test.run();
