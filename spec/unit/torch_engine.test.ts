// The torch engine (GitHub issue 14) against the tfjs engine: the same steps give the same weights and
// optimizer slots (SGD with momentum, Adam with L2 decay and clipping, AdamW, RMSprop), a plan with two
// phases, a frozen backbone and early stopping gives the same epoch records, and a run folder is one format:
// written by either engine, evaluated, exported to ONNX and resumed by the other. Plus every zoo model takes a
// training step on the torch engine (VGG16 and BERT-base included), and the usage errors.
import * as tf from "@tensorflow/tfjs-core";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { optimize } from "../../compiler/passes/index.js";
import { initBackend } from "../../runtime/backend.js";
import { decodeSafetensors, encodeSafetensors, type HostTensor } from "../../runtime/checkpoint/index.js";
import type { Split } from "../../runtime/data/index.js";
import { Rng } from "../../runtime/data/rng.js";
import { TfjsEngine, type PhaseSetup, type StepEngine } from "../../runtime/engine.js";
import { interpreted } from "../../runtime/interpret.js";
import { startTorch } from "../../runtime/torch/engine.js";
import { memoryHost, ROOT, runNode } from "../helpers.js";
import { nontrivialHost } from "./matrix.worker.js";
import { PYTHON, randomSplit, records, requireTorch, writeBlobs } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-torch-engine-"));

test.before(async () => {
  await initBackend("wasm");
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("torch engine: the project's Python has torch (Debian's python3-torch)", () => {
  requireTorch();
});

// ── one step on each engine ─────────────────────────────────────────────────────────────────────────

const NET = `model Net {
  input image: f32[batch, 8, 8, 2]
  input seq: f32[batch, 5, 4]
  c = image -> conv2d(4, 3, padding: same) -> batchnorm -> relu -> depthwise_conv2d(3, multiplier: 2) -> separable_conv2d(4, 3) -> global_avg_pool2d
  s = seq -> lstm(3, return_sequences: true) -> gru(3, bidirectional: true, return_sequences: true) -> layernorm -> global_max_pool1d
  a = seq -> attention(2, causal: true) -> global_avg_pool1d
  output logits = concat(c, s, a, axis: -1) -> dense(5)
}`;

/**
 * Weights whose gradient is zero in exact arithmetic: softmax is invariant to the key bias (it adds the same
 * q·b_k to every score of a row). Both engines' gradients for it are rounding noise, which rmsprop divides by its
 * own root mean square into steps of the learning rate's size, so they are compared only by name and shape.
 */
const ZERO_GRADIENT = /(^|\/)attention\/key\/bias(\/|$)/;

function maxRelDiff(a: Record<string, HostTensor>, b: Record<string, HostTensor>): { worst: number; name: string } {
  let worst = { worst: 0, name: "" };
  assert.equal(Object.keys(a).sort(), Object.keys(b).sort());
  for (const k of Object.keys(a)) {
    if (ZERO_GRADIENT.test(k)) {
      assert.equal(a[k]!.shape.join(","), b[k]!.shape.join(","), k);
      continue;
    }
    const x = a[k]!.data as Float32Array;
    const y = b[k]!.data as Float32Array;
    assert.equal(a[k]!.shape.join(","), b[k]!.shape.join(","), k);
    const scale = Math.max(1, ...Array.from(x, Math.abs));
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]! - y[i]!) / scale;
      if (!(d <= worst.worst)) worst = { worst: d, name: k };
    }
  }
  return worst;
}

const OPTIMIZERS: [string, PhaseSetup["optimizer"], number, PhaseSetup["clip"]][] = [
  ["sgd with momentum", { fn: "sgd", args: { lr: 0.05, momentum: 0.9, nesterov: true } }, 0, null],
  ["adam with L2 decay and norm clipping", { fn: "adam", args: { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weight_decay: 0 } }, 1e-3, { norm: 0.5 }],
  ["adamw with value clipping", { fn: "adamw", args: { lr: 0.01, weight_decay: 0.05 } }, 0, { value: 0.01 }],
  ["rmsprop with momentum", { fn: "rmsprop", args: { lr: 0.005, rho: 0.9, momentum: 0.5 } }, 0, null],
];

for (const [label, optimizer, weightDecay, clip] of OPTIMIZERS) {
  test(`torch engine: three steps of ${label} give the tfjs engine's weights and optimizer slots (1e-4)`, async () => {
    const res = compile("net.nnet", NET, memoryHost());
    assert.equal(res.diagnostics.map((d) => d.message), []);
    const m = optimize(res.module, { level: 1, mode: "train" }).module.models[0]!;
    const host = nontrivialHost(m, 3);
    const split = randomSplit(m, 24, 4);
    const frozen = ["batchnorm"];
    const setup: PhaseSetup = {
      trainable: m.params.filter((p) => p.trainable && !frozen.includes(p.layer)).map((p) => p.name),
      frozenLayers: frozen,
      optimizer,
      weightDecay,
      decays: m.params.filter((p) => /(kernel|embeddings)$/.test(p.role)).map((p) => p.name),
      clip,
      loss: [{ fn: "cross_entropy", prediction: "logits", target: "label", weight: 1, args: {} }],
      accumulate: 1,
    };
    const vars = new Map(m.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape), true, p.name)]));
    const engines: StepEngine[] = [new TfjsEngine(interpreted(m), vars), await startTorch(m, { device: "cpu", precision: "fp32", level: 1 }, host)];
    const after: Record<string, HostTensor>[] = [];
    const slots: Record<string, HostTensor>[] = [];
    for (const e of engines) {
      await e.beginPhase(setup);
      const order = Uint32Array.from([5, 1, 9, 20, 3, 7, 11, 0, 2, 14, 8, 6]);
      const losses = await e.trainSteps({ split, batches: [order.subarray(0, 4), order.subarray(4, 8), order.subarray(8, 12)], lrs: [optimizer.args.lr as number, 0.5 * (optimizer.args.lr as number), 0.25 * (optimizer.args.lr as number)], firstStep: 0, seed: 1, collect: null });
      assert.is(losses.length, 3);
      after.push(await e.getWeights());
      slots.push(await e.optimizerState());
    }
    const w = maxRelDiff(after[0]!, after[1]!);
    const s = maxRelDiff(slots[0]!, slots[1]!);
    console.log(`    ${label}: weights max rel |Δ| ${w.worst.toExponential(1)} (${w.name}), slots ${s.worst.toExponential(1)} (${s.name}), ${Object.keys(slots[0]!).length} slots`);
    assert.ok(w.worst <= 1e-4, `weights differ: ${w.name} by ${w.worst}`);
    assert.ok(s.worst <= 1e-4, `optimizer slots differ: ${s.name} by ${s.worst}`);
    // The frozen batchnorm kept its statistics on both engines; the trained ones moved.
    for (const k of ["batchnorm/moving_mean", "batchnorm/gamma"]) assert.equal(Array.from(after[1]![k]!.data as Float32Array), Array.from(host[k]!.data as Float32Array), k);
    // Slots cross engines: the tfjs engine's state loads into the torch engine and comes back the same.
    await engines[1]!.loadOptimizerState(slots[0]!);
    const back = maxRelDiff(slots[0]!, await engines[1]!.optimizerState());
    assert.ok(back.worst <= 1e-7, `slots changed crossing engines: ${back.name}`);
    for (const e of engines) await e.dispose();
    for (const v of vars.values()) v.dispose();
  });
}

// ── a plan on both engines, and one run folder ────────────────────────────────────────────────────

function blobs(): void {
  const rng = new Rng(8);
  writeBlobs(path.join(dir, "blobs.jsonl"), 480, rng);
  writeBlobs(path.join(dir, "blobs_test.jsonl"), 96, rng);
  copyFileSync(path.join(ROOT, "spec/torch/phases.nnet"), path.join(dir, "phases.nnet"));
}

/**
 * Largest difference between two runs' records: losses, rates and other continuous values relative to
 * max(1, |v|); accuracy-like metrics (counts of right predictions) may differ by one validation sample whose
 * two largest logits are closer than the engines' float rounding (about 1e-6).
 */
function compareRecords(a: Record<string, number | string>[], b: Record<string, number | string>[], valSamples: number): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    for (const [k, v] of Object.entries(a[i]!)) {
      if (k === "samplesPerSec" || k === "seconds") continue;
      if (typeof v === "string") {
        assert.is(b[i]![k], v, `epoch ${i + 1} ${k}`);
        continue;
      }
      const d = Math.abs(v - (b[i]![k] as number));
      if (/accuracy|f1|precision|recall/.test(k)) assert.ok(d <= 2.5 / valSamples, `epoch ${i + 1} ${k}: ${v} vs ${b[i]![k]}`);
      else worst = Math.max(worst, d / Math.max(1, Math.abs(v)));
    }
  }
  return worst;
}

/** `nnet`'s plan trained on both engines side by side, into DIR/<tfjs> and DIR/<torch>; both must succeed. */
async function bothEngines(nnet: string, tfjsRun: string, torchRun: string): Promise<[Awaited<ReturnType<typeof runNode>>, Awaited<ReturnType<typeof runNode>>]> {
  const [t, p] = await Promise.all([
    runNode([CLI, "train", nnet, "--out", path.join(dir, tfjsRun), "--backend", "wasm", "--json"], { timeoutMs: 300_000 }),
    runNode([CLI, "train", nnet, "--out", path.join(dir, torchRun), "--engine", "torch", "--json"], { timeoutMs: 300_000 }),
  ]);
  assert.is(t.code, 0, t.stderr);
  assert.is(p.code, 0, p.stderr);
  return [t, p];
}

test("torch engine: a plan with two phases, a frozen backbone and early stopping gives the tfjs engine's epoch records", async () => {
  blobs();
  const [t, p] = await bothEngines(path.join(dir, "phases.nnet"), "tfjs", "torch");
  assert.match(p.stdout, /"event":"engine","engine":"torch"/);
  const a = records(path.join(dir, "tfjs"));
  const b = records(path.join(dir, "torch"));
  assert.is(b.length, a.length, "the same number of epochs (early stopping decided the same)");
  assert.ok(a.some((r) => r.phase === "head") && a.length < 12, `early stopping ended the head phase: ${a.length} epochs`);
  const worst = compareRecords(a, b, 96);
  console.log(`    ${a.length} epochs (${a.map((r) => `${r.phase} ${(r.loss as number).toFixed(4)}`).join(", ")}); largest difference ${worst.toExponential(1)}`);
  assert.ok(worst <= 1e-4, `epoch records differ by ${worst}`);
  const events = (s: string) => s.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  const stops = (s: string) => events(s).filter((e) => e.event === "early_stop" || e.event === "restore_best").map((e) => `${e.event}:${e.bestEpoch ?? e.epoch}`);
  assert.equal(stops(p.stdout), stops(t.stdout));
  const testA = JSON.parse(readFileSync(path.join(dir, "tfjs/test.json"), "utf8")) as Record<string, number>;
  const testB = JSON.parse(readFileSync(path.join(dir, "torch/test.json"), "utf8")) as Record<string, number>;
  assert.ok(Math.abs(testA.loss! - testB.loss!) <= 1e-4, `test loss ${testA.loss} vs ${testB.loss}`);
});

test("torch engine: pruning masks hold through training on both engines, and the epochs agree", async () => {
  copyFileSync(path.join(ROOT, "spec/torch/prune.nnet"), path.join(dir, "prune.nnet"));
  await bothEngines(path.join(dir, "prune.nnet"), "prune-tfjs", "prune-torch");
  const worst = compareRecords(records(path.join(dir, "prune-tfjs")), records(path.join(dir, "prune-torch")), 96);
  assert.ok(worst <= 1e-4, `epoch records differ by ${worst}`);
  for (const run of ["prune-tfjs", "prune-torch"]) {
    const w = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, run, "model.safetensors")))).tensors;
    for (const k of ["dense/kernel", "dense_1/kernel"]) {
      const v = w[k]!.data as Float32Array;
      const zeros = v.filter((x) => x === 0).length;
      assert.is(zeros, Math.floor(v.length / 2), `${run}: ${k} has ${zeros} zeros of ${v.length}`);
    }
    assert.ok((w["conv2d/kernel"]!.data as Float32Array).every((x) => x !== 0), `${run}: the excluded conv2d was pruned`);
  }
  console.log(`    pruned 50% of both dense kernels; 3 epochs agree to ${worst.toExponential(1)}`);
});

test("torch engine: --checkpoint-activations trains exactly as without it (batchnorm statistics and dropout masks included)", async () => {
  blobs();
  const nnet = path.join(dir, "checkpoint.nnet");
  copyFileSync(path.join(ROOT, "spec/torch/checkpoint.nnet"), nnet);
  const code = await runNode([CLI, "compile", nnet, "--target", "pytorch", "--checkpoint-activations", "-o", "-"]);
  assert.is(code.code, 0, code.stderr);
  assert.is((code.stdout.match(/= _checkpointed\(block_Unit(_1)?, /g) ?? []).length, 2, "each of the two Unit instances is checkpointed");
  const [plain, ckpt] = await Promise.all(
    [[], ["--checkpoint-activations"]].map((flags, i) => runNode([CLI, "train", nnet, "--engine", "torch", "--out", path.join(dir, `ckpt${i}`), "--json", ...flags], { timeoutMs: 300_000 })),
  );
  assert.is(plain!.code, 0, plain!.stderr);
  assert.is(ckpt!.code, 0, ckpt!.stderr);
  const a = records(path.join(dir, "ckpt0"));
  const b = records(path.join(dir, "ckpt1"));
  assert.is(a.length, 3);
  const worst = compareRecords(a, b, 96);
  const wa = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, "ckpt0/model.safetensors")))).tensors;
  const wb = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, "ckpt1/model.safetensors")))).tensors;
  let worstW = 0;
  for (const [k, t] of Object.entries(wa)) {
    const x = t.data as Float32Array;
    const y = wb[k]!.data as Float32Array;
    for (let i = 0; i < x.length; i++) worstW = Math.max(worstW, Math.abs(x[i]! - y[i]!) / Math.max(1, Math.abs(x[i]!)));
  }
  assert.ok(Object.keys(wa).some((k) => k.endsWith("moving_mean")), "the run has batchnorm statistics");
  console.log(`    3 epochs with and without checkpointing: records ${worst.toExponential(1)}, weights and batchnorm statistics ${worstW.toExponential(1)}`);
  assert.ok(worst <= 1e-6, `epoch records differ by ${worst}`);
  assert.ok(worstW <= 1e-6, `weights differ by ${worstW} (a batchnorm updated twice, or other dropout masks?)`);
  // Only with the torch engine, and for compile only with --target pytorch.
  const refused = await runNode([CLI, "train", nnet, "--checkpoint-activations", "--out", path.join(dir, "never")]);
  assert.is(refused.code, 2);
  assert.match(refused.stderr, /--checkpoint-activations goes with --engine torch/);
});

test("torch engine: its run folder is evaluated by the tfjs engine with the same metrics, and exported to ONNX with the same outputs", async () => {
  const nnet = path.join(dir, "phases.nnet");
  const run = path.join(dir, "torch");
  const e = await runNode([CLI, "eval", nnet, "--weights", run, "--backend", "wasm", "--json"]);
  assert.is(e.code, 0, e.stderr);
  const tfjs = JSON.parse(e.stdout.trim().split("\n").pop()!) as Record<string, number>;
  const written = JSON.parse(readFileSync(path.join(run, "test.json"), "utf8")) as Record<string, number>;
  for (const k of Object.keys(written)) assert.ok(Math.abs(written[k]! - tfjs[k]!) <= 1e-4, `${k}: torch ${written[k]} vs tfjs ${tfjs[k]}`);
  // ONNX from the torch run, against the torch engine's own predictions on the same four samples.
  const onnxFile = path.join(dir, "blobs.onnx");
  const x = await runNode([CLI, "compile", nnet, "--target", "onnx", "-O2", "--weights", run, "-o", onnxFile]);
  assert.is(x.code, 0, x.stderr);
  const samples = readFileSync(path.join(dir, "blobs.jsonl"), "utf8").trim().split("\n").slice(0, 4).map((l) => ({ image: (JSON.parse(l) as { image: number[] }).image }));
  writeFileSync(path.join(dir, "four.json"), JSON.stringify(samples));
  const pr = await runNode([CLI, "predict", nnet, "--weights", run, "--input", path.join(dir, "four.json"), "--json", "--engine", "torch"]);
  assert.is(pr.code, 0, pr.stderr);
  const rows = pr.stdout.trim().split("\n").map((l) => JSON.parse(l) as { logits?: number[] }).filter((r) => r.logits);
  assert.is(rows.length, 4);
  const session = await ort.InferenceSession.create(onnxFile);
  const feed = new ort.Tensor("float32", Float32Array.from(samples.flatMap((r) => r.image)), [4, 8, 8, 2]);
  const got = (await session.run({ [session.inputNames[0]!]: feed }))[session.outputNames[0]!]!.data as Float32Array;
  await session.release();
  const want = rows.flatMap((r) => r.logits!);
  const worst = want.reduce((w, v, i) => Math.max(w, Math.abs(v - got[i]!)), 0);
  console.log(`    ONNX (-O2, from the torch run) vs the torch engine: max |Δ| ${worst.toExponential(1)} over ${want.length} logits`);
  assert.ok(worst <= 1e-4 * Math.max(1, ...want.map(Math.abs)), `ONNX differs from torch by ${worst}`);
});

test("torch engine: Ctrl-C saves the torch run mid-plan, and the tfjs engine resumes it to the uninterrupted run's records", async () => {
  const nnet = path.join(dir, "phases.nnet");
  const run = path.join(dir, "mixed");
  const child = spawn(process.execPath, [CLI, "train", nnet, "--out", run, "--engine", "torch", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let sent = false;
  child.stdout.on("data", (b: Buffer) => {
    out += b;
    // After the second epoch (the first phase's end), interrupt: the run saves a checkpoint and exits 130.
    if (!sent && (out.match(/"event":"epoch"/g) ?? []).length >= 2) {
      sent = true;
      child.kill("SIGINT");
    }
  });
  child.stderr.on("data", (b: Buffer) => (err += b));
  const code = await new Promise<number | null>((r) => child.on("close", r));
  assert.ok(sent, `the run ended before it could be interrupted: ${out}`);
  assert.is(code, 130, err);
  const done = records(run).length;
  assert.ok(done >= 2 && done < records(path.join(dir, "tfjs")).length, `${done} epochs before the interruption`);
  const resumed = await runNode([CLI, "train", nnet, "--out", run, "--resume", "--backend", "wasm", "--json"], { timeoutMs: 300_000 });
  assert.is(resumed.code, 0, resumed.stderr);
  const a = records(path.join(dir, "tfjs"));
  const b = records(run);
  assert.is(b.length, a.length);
  const worst = compareRecords(a, b, 96);
  console.log(`    interrupted after ${done} epochs on torch, resumed on tfjs: ${b.length} epochs, largest difference ${worst.toExponential(1)}`);
  assert.ok(worst <= 1e-4, `the resumed run's records differ by ${worst}`);
});

// ── the zoo, and what a user gets wrong ────────────────────────────────────────────────────────────

test("torch engine: every zoo model takes training steps at a small input (VGG16 and BERT-base included)", async () => {
  const zoo = readdirSync(path.join(ROOT, "models")).filter((f) => f.endsWith(".nnet")).sort();
  for (const f of zoo) {
    const t0 = performance.now();
    const res = compile(`models/${f}`, readFileSync(path.join(ROOT, "models", f), "utf8"), memoryHost());
    const module = optimize(res.module, { level: 1, mode: "train" }).module;
    const plan = module.plans[0]!;
    const m = module.models.find((x) => x.name === plan.model)!;
    const ds = module.datasets.find((d) => d.name === plan.dataset)!;
    // Two samples: inputs at their declared shapes (symbolic sizes 8), loss targets in range.
    const rng = new Rng(2);
    const n = 2;
    const fields: Record<string, { dtype: "float32" | "int32"; shape: number[]; data: Float32Array | Int32Array }> = {};
    // Small inputs: symbolic sizes (GPT-2's and BERT's sequence) 8, whatever length the dataset pads to.
    const small = (d: number | string) => (typeof d === "number" ? d : 8);
    for (const fd of ds.fields) {
      const asInput = m.inputs.find((i) => i.name === fd.name);
      const term0 = plan.loss.find((l) => l.target === fd.name);
      const pred = term0 && m.nodes.find((x) => x.id === m.outputs.find((o) => o.name === term0.prediction)!.node)!.shape!;
      const shape = asInput ? asInput.shape.slice(1).map(small) : pred && fd.dtype.startsWith("i") ? pred.slice(1, -1).map(small) : fd.shape.map(small);
      const per = shape.reduce((a, b) => a * b, 1);
      const term = plan.loss.find((l) => l.target === fd.name);
      const out = term && m.nodes.find((x) => x.id === m.outputs.find((o) => o.name === term.prediction)!.node)!.shape!;
      const classes = out ? (out[out.length - 1] as number) : 2;
      const input = m.inputs.find((i) => i.name === fd.name);
      const ids = input && m.nodes.find((x) => x.op === "embedding" && x.inputs.includes(input.node))?.attrs.vocab;
      fields[fd.name] = fd.dtype.startsWith("i") ? { dtype: "int32", shape, data: Int32Array.from({ length: n * per }, () => Math.floor(rng.next() * ((ids as number | undefined) ?? classes))) } : { dtype: "float32", shape, data: Float32Array.from({ length: n * per }, () => rng.next()) };
    }
    const split: Split = {
      size: n,
      fields: {} as never,
      batch: (idx) => Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { ...v, shape: [idx.length, ...v.shape] }])) as never,
    };
    // Small pseudo-random kernels, zero biases, unit scales and variances (what an initialisation gives).
    const start = Object.fromEntries(m.params.map((p) => {
      const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
      if (/(moving_variance|gamma)$/.test(p.role)) data.fill(1);
      else if (!/(bias|beta|moving_mean)$/.test(p.role)) for (let i = 0; i < data.length; i++) data[i] = ((Math.imul(i + 1, 2654435761) >>> 0) / 2 ** 32 - 0.5) * 0.05;
      return [p.name, { dtype: "F32", shape: [...p.shape], data } as HostTensor];
    }));
    const e = await startTorch(m, { device: "cpu", precision: "fp32", level: 1 }, start);
    try {
      const ph = plan.phases[0]!;
      await e.beginPhase({ trainable: m.params.filter((p) => p.trainable).map((p) => p.name), frozenLayers: [], optimizer: { fn: "sgd", args: { lr: 0.01 } }, weightDecay: 0, decays: [], clip: ph.clip, loss: plan.loss, accumulate: 1 });
      const all = Uint32Array.from([0, 1]);
      const losses = await e.trainSteps({ split, batches: [all, all, all], lrs: [0.01, 0.01, 0.01], firstStep: 0, seed: 3, collect: null });
      console.log(`    ${f.padEnd(22)} ${m.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0).toLocaleString("en-US").padStart(12)} weights  losses ${losses.map((l) => l.toFixed(4)).join(" → ")}  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      assert.ok(losses.every(Number.isFinite), `${f}: ${losses}`);
      // (A loss already at exactly 0 — 20,000 random features fit two samples in one step — has nowhere to go.)
      assert.ok(losses[1] !== losses[0] && (losses[2] !== losses[1] || losses[1] === 0), `${f}: the steps changed nothing: ${losses}`);
    } finally {
      await e.dispose();
    }
  }
});

test("torch engine: a PyTorch exception in the model is NN7010 at the .nnet layer it comes from, exit 2", async () => {
  const nnet = path.join(ROOT, "models/text_classifier.nnet");
  const res = compile(nnet, readFileSync(nnet, "utf8"), memoryHost());
  const m = res.module.models[0]!;
  const weights = path.join(dir, "tc.safetensors");
  writeFileSync(weights, encodeSafetensors(nontrivialHost(m, 4)));
  // Token ids past the embedding's vocabulary (20000).
  writeFileSync(path.join(dir, "ids.json"), JSON.stringify({ tokens: [Array(200).fill(25_000)] }));
  const r = await runNode([CLI, "predict", nnet, "--weights", weights, "--input", path.join(dir, "ids.json"), "--engine", "torch"], { env: { ...process.env, NO_COLOR: "1" } });
  assert.is(r.code, 2, r.stderr);
  // The compiler's own rendering: the layer's place, a code frame with carets under it, a hint.
  const line = readFileSync(nnet, "utf8").split("\n")[5]!;
  const col = line.indexOf("embedding(") + 1;
  assert.ok(
    r.stderr.includes(`${nnet}:6:${col} - error NN7010: the torch engine failed in embedding layer "embedding": IndexError: index out of range in self (model.py:`),
    r.stderr,
  );
  assert.ok(r.stderr.includes(` 6 | ${line}\n   | ${" ".repeat(col - 1)}${"^".repeat("embedding(20000, 64)".length)}\n`), r.stderr);
  assert.match(r.stderr, /hint: the layer's PyTorch code is `nnetc compile --target pytorch -o -`/);
  assert.not.match(r.stderr, /Traceback|at .*\.js:\d+/);
});

test("torch engine: an engine process that dies is NN7011, exit 2, and leaves no run folder", async () => {
  // A Python that passes the checks, then dies as the engine starts (as a killed or crashed one would).
  const shim = path.join(dir, "dying-python");
  writeFileSync(shim, `#!/bin/sh\nif [ "$2" = "--hello" ]; then exec ${PYTHON} "$@"; fi\necho "Fatal Python error: Segmentation fault" >&2\nexit 139\n`, { mode: 0o755 });
  const out = path.join(dir, "died");
  const r = await runNode([CLI, "train", path.join(ROOT, "spec/diagnostics/NN7004-unknown-device/input.nnet"), "--engine", "torch", "--out", out], { env: { ...process.env, NNETC_PYTHON: shim } });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /nnetc: error NN7011: the torch engine failed: its process exited with code 139:\nFatal Python error: Segmentation fault\n  hint: if the message names memory/);
  assert.not.ok(existsSync(out), "a run that never started leaves no folder");
});

test("torch engine: usage errors are one line and exit code 2 (no CUDA here, engine flags; the rest: spec/diagnostics/NN700x)", async () => {
  const nnet = path.join(ROOT, "models/mlp.nnet");
  const cases: [string[], RegExp, Record<string, string>?][] = [
    [["--engine", "torch", "--device", "cuda"], /error NN7005: --device cuda: PyTorch .* sees no CUDA device/],
    [["--engine", "torch", "--device", "cuda:1"], /error NN7005: --device cuda:1: PyTorch .* sees no CUDA device/],
    [["--engine", "jax"], /--engine jax: choose tfjs, torch or onnx/],
    [["--engine", "torch", "--backend", "wasm"], /--backend chooses TensorFlow.js's backend; with --engine torch use --device/],
    [["--device", "cuda"], /--device and --precision go with --engine torch/],
  ];
  for (const [flags, message, env] of cases) {
    const r = await runNode([CLI, "train", nnet, "--epochs", "1", "--out", path.join(dir, "never"), ...flags], env ? { env: { ...process.env, ...env } } : {});
    assert.is(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.not.match(r.stderr, /at .*\.js:\d+|Traceback/);
    // Refused before Fashion-MNIST (60,000 images) is read.
    assert.not.match(r.stderr, /reading|fashion/i, `${flags.join(" ")} read data before refusing: ${r.stderr}`);
  }
});

test.run();
