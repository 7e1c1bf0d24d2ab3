// The ONNX Runtime engine (eval/predict --engine onnx, runtime/onnx_engine.ts) against the tfjs engine: every
// zoo model under a size bound, at -O2 on seeded weights (batchnorm statistics away from 0 and 1), gives the
// same outputs for a random batch of 2 and the same loss and metrics over a 2-row split (two batches of 1),
// to 1e-5 of each value's size; an int8 file runs with its int8 weights behind DequantizeLinear; the CLI runs
// both engines to the same numbers; a layer with no ONNX form is NN6001 at predict time; and onnxruntime-node
// that cannot be loaded is NN7021.
import * as tf from "@tensorflow/tfjs-core";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mainModel } from "../../compiler/emit/index.js";
import type { IRModel, IRModule } from "../../compiler/ir/types.js";
import { optimize } from "../../compiler/passes/index.js";
import { initBackend } from "../../runtime/backend.js";
import { encodeSafetensors, type HostTensor } from "../../runtime/checkpoint/index.js";
import type { Split } from "../../runtime/data/index.js";
import { Rng } from "../../runtime/data/rng.js";
import { deriveWeights, disposeDerived } from "../../runtime/derive.js";
import { evaluateTfjs } from "../../runtime/engine.js";
import { interpreted, run } from "../../runtime/interpret.js";
import { loadOrt, startOnnx } from "../../runtime/onnx_engine.js";
import { quantizeWeights } from "../../runtime/quantize.js";
import { RunError } from "../../runtime/errors.js";
import type { PlanSpec } from "../../runtime/spec.js";
import { trainedWeights } from "../../runtime/train.js";
import { fingerprint, loadTrained } from "../../runtime/weights.js";
import { ROOT, runNode } from "../helpers.js";
import { batchFor, load, seededHost } from "./onnx_equiv.worker.js";

const CLI = path.join(ROOT, "dist/compiler/cli/main.js");
/** Models above either bound are left out (seconds each in the interpreter): bert_base, gpt2_small, llama, minilm_spam, resnet50, vgg16 by weights, mobilenet_v2 by its 224×224×3 input. */
const MAX_WEIGHTS = 5_000_000;
const MAX_INPUT = 100_000;
const TOL = 1e-5;

/** |a − b| ≤ 1e-5 · max(1, |b|) everywhere; the largest |a − b| for the log. */
function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string): number {
  assert.is(a.length, b.length, `${what}: lengths`);
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)) continue; // both undefined (autoencoder's mae on batches of 1)
    const e = Math.abs(a[i]! - b[i]!);
    assert.ok(e <= TOL * Math.max(1, Math.abs(b[i]!)), `${what}[${i}]: onnx ${a[i]} vs tfjs ${b[i]}`);
    d = Math.max(d, e);
  }
  return d;
}

type Rows = Record<string, { dtype: "float32" | "int32"; shape: number[]; data: Float32Array | Int32Array }>;

/** A split over in-memory rows (inputs and loss targets by field name). */
function memorySplit(rows: Rows): Split {
  const size = Object.values(rows)[0]!.shape[0]!;
  return {
    size,
    fields: {},
    batch(idx) {
      const out: Rows = {};
      for (const [k, v] of Object.entries(rows)) {
        const per = v.data.length / size;
        const data = v.dtype === "int32" ? new Int32Array(idx.length * per) : new Float32Array(idx.length * per);
        for (let i = 0; i < idx.length; i++) data.set(v.data.subarray(idx[i]! * per, (idx[i]! + 1) * per), i * per);
        out[k] = { dtype: v.dtype, shape: [idx.length, ...v.shape.slice(1)], data };
      }
      return out;
    },
  };
}

/** Targets for the plan's loss terms that read dataset fields: class ids below the output's classes (cross-entropy), else floats in [0, 1) of the output's shape. */
function targetsFor(plan: PlanSpec, outputs: Record<string, tf.Tensor>, inputs: Rows, rand: () => number): Rows {
  const out: Rows = {};
  for (const t of [...plan.loss, ...plan.metrics.map((mt) => ({ fn: "metric", prediction: String(mt.args.prediction), target: String(mt.args.target), targetIsOutput: false, targetValue: undefined }))]) {
    if (t.targetIsOutput || t.targetValue !== undefined || inputs[t.target] || out[t.target]) continue;
    const y = outputs[t.prediction]!;
    if (plan.loss.find((l) => l.target === t.target)?.fn === "cross_entropy" || t.fn === "cross_entropy") {
      const shape = y.shape.slice(0, -1);
      const classes = y.shape[y.shape.length - 1]!;
      out[t.target] = { dtype: "int32", shape, data: Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.floor(rand() * classes)) };
    } else out[t.target] = { dtype: "float32", shape: [...y.shape], data: Float32Array.from({ length: y.size }, rand) };
  }
  return out;
}

const ZOO = ["autoencoder", "bert_base", "char_gpt", "dcgan", "fashion_cnn", "fashion_transfer", "gpt2_small", "lenet5", "llama", "minibert", "minilm_spam", "mlp", "mobilenet_v2", "resnet50", "resnet_cifar", "spam_tfidf", "speech_cnn", "text_classifier", "unet", "vae", "vgg16"];
const elements = (s: readonly (number | string)[]) => s.slice(1).reduce<number>((a, d) => a * (typeof d === "number" ? d : 8), 1);

function zoo(): { file: string; mod: IRModule; m: IRModel; skip: string | null }[] {
  return ZOO.map((f) => {
    const mod = load(`${f}.nnet`);
    const m = mainModel(mod)!;
    const weights = m.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
    const input = Math.max(...m.inputs.map((i) => elements(i.shape)));
    return { file: f, mod, m, skip: weights > MAX_WEIGHTS ? `${(weights / 1e6).toFixed(1)} M weights` : input > MAX_INPUT ? `${input} input values per sample` : null };
  });
}

test.before(async () => {
  await initBackend("wasm");
});

test("onnx engine: the table is the zoo (a new model joins it)", () => {
  const files = readdirSync(path.join(ROOT, "models")).filter((f) => f.endsWith(".nnet")).map((f) => f.replace(/\.nnet$/, "")).sort();
  assert.equal(ZOO, files);
});

test("onnx engine: every zoo model under the size bound predicts and evaluates as the tfjs engine at -O2 (1e-5)", async () => {
  const skipped: string[] = [];
  for (const { file, mod, m, skip } of zoo()) {
    if (skip) {
      skipped.push(`${file} (${skip})`);
      continue;
    }
    const t0 = performance.now();
    const fast = optimize({ ...mod, models: [m] }, { level: 2, mode: "infer" }).module.models[0]!;
    const host = seededHost(m, 7);
    const trained = { weights: host, from: `${file} seeded` };
    const e = await startOnnx(m, fast, trained);
    const weights = trainedWeights(m.params, trained);
    const derived = deriveWeights(fast.params, weights);
    try {
      const rng = new Rng(11);
      const inputs = batchFor(fast, () => rng.next()) as Rows;
      const got = await e.run(inputs);
      const tensors = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.dtype)]));
      const want = tf.tidy(() => run(fast, derived, tensors, { training: false }).outputs);
      let d = 0;
      for (const o of fast.outputs) {
        assert.equal(got[o.name]!.shape, want[o.name]!.shape, `${file}: ${o.name}'s shape`);
        d = Math.max(d, close(got[o.name]!.data, want[o.name]!.dataSync(), `${file}: ${o.name}`));
      }
      // Eval: the plan's loss and metrics over the same 2 rows with targets, in two batches of 1.
      const plan = mod.plans.find((p) => p.model === m.name) as PlanSpec | undefined;
      let evalLine = "no plan";
      if (plan) {
        const split = memorySplit({ ...inputs, ...targetsFor(plan, want, inputs, () => rng.next()) });
        const a = await e.evaluate(plan, split, 1);
        const b = await evaluateTfjs(interpreted(fast), plan, derived, split, 1);
        assert.ok(Number.isFinite(b.loss), `${file}: tfjs loss ${b.loss}`);
        close([a.loss, ...Object.values(a.metrics), ...(a.terms ?? [])], [b.loss, ...Object.values(b.metrics), ...(b.terms ?? [])], `${file}: loss, ${Object.keys(b.metrics).join(", ")}`);
        assert.equal(Object.keys(a.metrics), Object.keys(b.metrics));
        evalLine = `loss ${a.loss.toFixed(4)} ${Object.entries(a.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(" ")}`;
      }
      tf.dispose([...Object.values(tensors), ...Object.values(want)]);
      console.log(`    ${file.padEnd(18)} max |Δ| ${d.toExponential(1)}  ${String(e.stats.nodes).padStart(4)} nodes  ${evalLine}  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      await e.dispose();
      disposeDerived(derived, weights);
      for (const w of weights.values()) w.dispose();
    }
  }
  console.log(`    left out (size bound): ${skipped.join(", ")}`);
  assert.ok(skipped.length < 10, "most of the zoo runs");
});

test("onnx engine: an int8 file runs with int8 weights behind DequantizeLinear and computes what tfjs computes with them (1e-5)", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-onnx-engine-"));
  try {
    for (const f of ["mlp", "fashion_cnn"]) {
      const mod = load(`${f}.nnet`);
      const m = mainModel(mod)!;
      const file = path.join(dir, `${f}.int8.safetensors`);
      writeFileSync(file, encodeSafetensors(quantizeWeights(seededHost(m, 5), "int8"), { format: "nnetc", model: m.name, fingerprint: fingerprint(m), quantized: "int8" }));
      const trained = loadTrained(file, fingerprint(m), "--weights", m);
      const fast = optimize({ ...mod, models: [m] }, { level: 2, mode: "infer" }).module.models[0]!;
      const e = await startOnnx(m, fast, trained);
      const weights = trainedWeights(m.params, trained);
      const derived = deriveWeights(fast.params, weights);
      const rng = new Rng(3);
      const inputs = batchFor(fast, () => rng.next()) as Rows;
      const got = await e.run(inputs);
      const want = tf.tidy(() => run(fast, derived, Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.dtype)])), { training: false }).outputs);
      assert.ok(e.stats.int8 > 0, `${f}: int8 weights in the export`);
      const d = close(got[fast.outputs[0]!.name]!.data, want[fast.outputs[0]!.name]!.dataSync(), `${f} int8`);
      console.log(`    ${f} int8: ${e.stats.int8} int8 weights, max |Δ| ${d.toExponential(1)}`);
      await e.dispose();
      disposeDerived(derived, weights);
      tf.dispose([...weights.values(), ...Object.values(want)]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("onnx engine: nnetc eval and predict --engine onnx print what --engine tfjs prints; train --engine onnx is refused (NN7020)", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-onnx-cli-"));
  try {
    for (const f of ["input.nnet", "data.jsonl"]) writeFileSync(path.join(dir, f), readFileSync(path.join(ROOT, "spec/diagnostics/NN7020-onnx-no-training", f)));
    const nnet = path.join(dir, "input.nnet");
    const run = path.join(dir, "run");
    const t = await runNode([CLI, "train", nnet, "--out", run, "--epochs", "2"]);
    assert.is(t.code, 0, t.stderr);
    const res: Record<string, { eval: Record<string, number>; rows: { logits: number[] }[] }> = {};
    for (const engine of ["tfjs", "onnx"]) {
      const ev = await runNode([CLI, "eval", nnet, "--weights", run, "--engine", engine, "--json"]);
      assert.is(ev.code, 0, ev.stderr);
      const pr = await runNode([CLI, "predict", nnet, "--weights", run, "--engine", engine, "--input", "test:16", "--json"]);
      assert.is(pr.code, 0, pr.stderr);
      if (engine === "onnx") assert.match(pr.stderr, /"engine":"onnx","detail":"onnxruntime-node [\d.]+, CPU, -O2: \d+ ONNX nodes"/);
      const last = ev.stdout.trim().split("\n").pop()!;
      res[engine] = { eval: JSON.parse(last) as Record<string, number>, rows: pr.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((r) => "index" in r) };
    }
    assert.is(res.onnx!.rows.length, 16);
    close(res.onnx!.rows.flatMap((r) => r.logits), res.tfjs!.rows.flatMap((r) => r.logits), "predict logits");
    close([res.onnx!.eval.loss!], [res.tfjs!.eval.loss!], "eval loss");
    const tr = await runNode([CLI, "train", nnet, "--engine", "onnx", "--out", path.join(dir, "no")]);
    assert.is(tr.code, 2);
    assert.match(tr.stderr, /NN7020/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("onnx engine: a layer with no ONNX form is NN6001 at predict time, naming the layer and suggesting --engine tfjs", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-onnx-6001-"));
  try {
    const src = path.join(ROOT, "spec/diagnostics/NN6001-onnx-reshape-computed-sizes/input.nnet");
    const nnet = path.join(dir, "pairs.nnet");
    writeFileSync(nnet, readFileSync(src));
    // The model has no weights: an empty weights file of its fingerprint.
    const w = path.join(dir, "w.safetensors");
    writeFileSync(w, encodeSafetensors({} as Record<string, HostTensor>, { format: "nnetc", model: "Pairs", fingerprint: fingerprint({ params: [] }) }));
    const x = path.join(dir, "x.json");
    writeFileSync(x, JSON.stringify({ x: [[[[0, 1, 2, 3], [4, 5, 6, 7]], [[8, 9, 10, 11], [12, 13, 14, 15]]]] }));
    const r = await runNode([CLI, "predict", nnet, "--weights", w, "--engine", "onnx", "--input", x]);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /error NN6001: cannot export reshape layer "reshape" to ONNX/);
    assert.match(r.stderr, /--engine tfjs/);
    const tfjs = await runNode([CLI, "predict", nnet, "--weights", w, "--input", x]);
    assert.is(tfjs.code, 0, tfjs.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("onnx engine: onnxruntime-node that cannot be loaded is NN7021", async () => {
  try {
    await loadOrt("onnxruntime-node-that-is-not-installed");
    assert.unreachable("loaded");
  } catch (e) {
    assert.instance(e, RunError);
    assert.match((e as Error).message, /NN7021: --engine onnx needs onnxruntime-node, which cannot be loaded/);
  }
  assert.ok((await loadOrt()).InferenceSession, "the installed one loads");
});

test.run();
