// Pruning and the export step: magnitude masks reach the sparsity exactly (property), a phase's pruned
// weights stay zero through fine-tuning and in the final model, resume keeps the masks (a resumed run ends
// with the same weights as an uninterrupted one), pruned weights compute what hand-zeroed weights compute,
// the int8 export records activation ranges, and the CLI (compile --prune, summary --weights) on the run.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { initBackend } from "../../runtime/backend.js";
import { decodeSafetensors, encodeSafetensors, listCheckpoints, readCheckpoint, toFloat32, type HostTensor } from "../../runtime/checkpoint/index.js";
import { ACTIVATION_RANGES_KEY, type ActivationRanges } from "../../runtime/export.js";
import { interpreted, run } from "../../runtime/interpret.js";
import { decodeMasks, encodeMasks, magnitudeMasks, pruneWeights } from "../../runtime/prune.js";
import { densify, encodeSparse, SPARSE_KEY } from "../../runtime/quantize.js";
import { InterruptedError, train, trainedWeights } from "../../runtime/train.js";
import { fingerprint, loadTrained } from "../../runtime/weights.js";
import type { IRModule } from "../../compiler/ir/types.js";
import { compileText, expectClean, ROOT } from "../helpers.js";
import { irProblems } from "../ir-schema.js";

const zerosOf = (d: ArrayLike<number>) => Array.prototype.filter.call(d, (x: number) => x === 0).length;

test("sparse storage round-trips F32, F16 and I8 tensors through a safetensors file, and only where it is smaller", () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.constant(0), fc.integer({ min: -127, max: 127 })), { minLength: 1, maxLength: 80 }), fc.constantFrom("F32" as const, "F16" as const, "I8" as const), (ints, dtype) => {
      const data = dtype === "I8" ? Int8Array.from(ints) : Float32Array.from(ints, (v) => v / 8);
      const host: Record<string, HostTensor> = { "k/kernel": { dtype, shape: [ints.length], data } as HostTensor, "k/bias": { dtype: "F32", shape: [1], data: Float32Array.of(0) } };
      const { tensors, shapes } = encodeSparse(host, ["k/kernel"]);
      const file = decodeSafetensors(encodeSafetensors(tensors, Object.keys(shapes).length ? { [SPARSE_KEY]: JSON.stringify(shapes) } : {}));
      const width = dtype === "F32" ? 4 : dtype === "F16" ? 2 : 1;
      const nonzero = ints.filter((v) => v !== 0).length;
      assert.is("k/kernel" in shapes, nonzero * width + Math.ceil(ints.length / 8) < ints.length * width);
      const dense = densify(file.tensors, file.metadata);
      assert.equal(Object.keys(dense).sort(), ["k/bias", "k/kernel"]);
      assert.equal([...toFloat32(dense["k/kernel"]!)], [...toFloat32(host["k/kernel"]!)]);
    }),
    { numRuns: 200 },
  );
});

test("magnitudeMasks: exactly floor(s·n) zeros, the smallest magnitudes, per layer or globally; previous masks are kept", () => {
  const arr = fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -100, max: 100 }), { minLength: 1, maxLength: 60 });
  fc.assert(
    fc.property(fc.array(arr, { minLength: 1, maxLength: 4 }), fc.double({ min: 0, max: 0.999, noNaN: true }), fc.constantFrom("layer" as const, "global" as const), (tensors, s, scope) => {
      const values = new Map(tensors.map((t, i) => [`l${i}/kernel`, Float32Array.from(t)] as const));
      const names = [...values.keys()];
      const masks = magnitudeMasks(values, { sparsity: s, scope, weights: names });
      const groups = scope === "layer" ? names.map((n) => [n]) : [names];
      for (const g of groups) {
        const pruned: number[] = [];
        const kept: number[] = [];
        for (const n of g) values.get(n)!.forEach((v, i) => (masks.get(n)![i] ? kept : pruned).push(Math.abs(v)));
        assert.is(pruned.length, Math.floor(s * (pruned.length + kept.length)));
        if (pruned.length && kept.length) assert.ok(Math.max(...pruned) <= Math.min(...kept));
      }
      // Pruning again at a lower sparsity changes nothing; a mask round-trips through checkpoint state.
      const again = magnitudeMasks(values, { sparsity: s / 2, scope, weights: names }, masks);
      for (const n of names) assert.equal([...again.get(n)!], [...masks.get(n)!]);
      const back = decodeMasks(JSON.parse(JSON.stringify(encodeMasks(masks))), "test");
      for (const n of names) assert.equal([...back.get(n)!], [...masks.get(n)!]);
    }),
    { numRuns: 150 },
  );
});

// ── a small plan trained in-process ─────────────────────────────────────────────────────────────────

const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-prune-"));
let s = 7;
const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
const rows = ["features,label"];
for (let i = 0; i < 240; i++) {
  const x = Array.from({ length: 8 }, rand);
  rows.push(`${x.map((v) => v.toFixed(4)).join(" ")},${(x[0]! + x[1]! > 0 ? 1 : 0) + (x[2]! > x[3]! ? 2 : 0)}`);
}
writeFileSync(path.join(dir, "data.csv"), rows.join("\n") + "\n");
const FILE = path.join(dir, "p.nnet");
const SOURCE = `model P {
  input x: f32[batch, 8]
  h = x -> dense(16, activation: relu) -> dense(32, activation: relu)
  output logits = h -> dense(4)
}
dataset d {
  source csv("data.csv")
  split test: 0.25, seed: 1
  field x: f32[8] = features
  field label: i32 = label
}
train P on d {
  loss cross_entropy(logits, label)
  metrics accuracy
  optimizer adam(lr: 1e-2)
  batch 32
  seed 5
  checkpoint every: 1, keep: 10
  export quantize: int8, calibration: 64
  phase warm { epochs 1 }
  phase finetune {
    prune sparsity: 0.6, exclude: "dense_2"
    lr 1e-3
    epochs 2
  }
}
`;
writeFileSync(FILE, SOURCE);

function compiled(): IRModule {
  const r = compileText(SOURCE, FILE);
  expectClean(r);
  return r.module;
}

async function trainRun(out: string, opts: { resume?: boolean; stopAfterEpoch?: number } = {}) {
  const module = compiled();
  const stop = { requested: false };
  return train({
    file: FILE,
    module,
    net: interpreted(module.models[0]!),
    dataDir: null,
    outDir: out,
    resume: !!opts.resume,
    log: () => {},
    json: false,
    stop,
    onEpoch: (r) => {
      if (r.epoch === opts.stopAfterEpoch) stop.requested = true;
    },
  });
}

const weightsOf = (file: string) => decodeSafetensors(new Uint8Array(readFileSync(file))).tensors;

test("the IR of prune and export validates against the schema, with the pruned kernels resolved", () => {
  const m = compiled();
  assert.equal(irProblems(JSON.parse(JSON.stringify(m))), []);
  const ft = m.plans[0]!.phases[1]!;
  assert.equal(ft.prune!.weights, ["dense/kernel", "dense_1/kernel"]);
  assert.is(m.plans[0]!.phases[0]!.prune, undefined);
  assert.equal(m.plans[0]!.export!.weights, ["dense/kernel", "dense_1/kernel", "dense_2/kernel"]);
});

test("a phase's prune: exact sparsity of the smallest weights at its start, zeros kept through fine-tuning and in the final model", async () => {
  await initBackend("cpu");
  const out = path.join(dir, "a");
  const r = await trainRun(out);
  assert.ok(r.exported, "the export step ran");
  // The checkpoint after the warm phase holds the weights that were pruned.
  const ck = listCheckpoints(out);
  const before = readCheckpoint(ck.find((c) => readCheckpoint(c).state.epoch === 1)!).weights;
  const expected = magnitudeMasks(new Map(["dense/kernel", "dense_1/kernel"].map((n) => [n, toFloat32(before[n]!)] as const)), { sparsity: 0.6, scope: "layer", weights: ["dense/kernel", "dense_1/kernel"] });
  const final = weightsOf(path.join(out, "model.safetensors"));
  for (const [name, mask] of expected) {
    const w = toFloat32(final[name]!);
    assert.is(zerosOf(mask), Math.floor(0.6 * w.length), `${name}: mask size`);
    for (let i = 0; i < w.length; i++) if (!mask[i]) assert.is(w[i], 0, `${name}[${i}] was pruned`);
    assert.is(zerosOf(w), zerosOf(mask), `${name}: only pruned values are zero`);
    const b = toFloat32(before[name]!);
    assert.ok(w.some((x, i) => mask[i] && x !== b[i]), `${name}: fine-tuning changed the kept weights`);
  }
  assert.is(zerosOf(toFloat32(final["dense_2/kernel"]!)), 0, "the excluded layer is not pruned");
  // The last checkpoint carries the same masks.
  const last = readCheckpoint(ck[ck.length - 1]!);
  const saved = decodeMasks((last.state.extra as { masks?: unknown }).masks, "checkpoint");
  for (const [name, mask] of expected) assert.equal([...saved.get(name)!], [...mask]);
});

test("resume keeps the masks: interrupted after the first fine-tune epoch and resumed, the run ends with the same weights", async () => {
  const out = path.join(dir, "b");
  try {
    await trainRun(out, { stopAfterEpoch: 2 });
    assert.unreachable("the run should have been interrupted");
  } catch (e) {
    if (!(e instanceof InterruptedError)) throw e;
  }
  await trainRun(out, { resume: true });
  const a = weightsOf(path.join(dir, "a", "model.safetensors"));
  const b = weightsOf(path.join(out, "model.safetensors"));
  for (const name of Object.keys(a)) assert.equal([...toFloat32(b[name]!)], [...toFloat32(a[name]!)], name);
});

test("equivalence: pruned weights compute exactly what weights zeroed by hand compute", async () => {
  const m = compiled().models[0]!;
  // The weights before the fine-tune phase pruned them (the checkpoint of epoch 1).
  const host = readCheckpoint(listCheckpoints(path.join(dir, "a")).find((c) => readCheckpoint(c).state.epoch === 1)!).weights;
  const kernels = ["dense/kernel", "dense_1/kernel", "dense_2/kernel"];
  const { weights: pruned } = pruneWeights(host, { sparsity: 0.5, scope: "layer", weights: kernels });
  // By hand: zero every value whose magnitude is at most the k-th smallest (random floats: no ties).
  const hand: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(host)) {
    const d = Float32Array.from(toFloat32(t));
    if (kernels.includes(name)) {
      const thr = Array.from(d, Math.abs).sort((x, y) => x - y)[Math.floor(0.5 * d.length) - 1]!;
      for (let i = 0; i < d.length; i++) if (Math.abs(d[i]!) <= thr) d[i] = 0;
    }
    hand[name] = { dtype: "F32", shape: t.shape, data: d };
  }
  const x = tf.tensor(Array.from({ length: 5 * 8 }, (_, i) => Math.sin(i)), [5, 8]);
  const outputs = (h: Record<string, HostTensor>) => {
    const w = trainedWeights(m.params, { weights: h, from: "test" });
    const y = tf.tidy(() => Array.from(run(m, w, { x }, { training: false }).outputs.logits!.dataSync()));
    for (const v of w.values()) v.dispose();
    return y;
  };
  const viaFile = path.join(dir, "pruned.safetensors");
  writeFileSync(viaFile, encodeSafetensors(pruned, { format: "nnetc" }));
  const fromPruned = outputs(pruned);
  assert.equal(fromPruned, outputs(hand));
  assert.equal(outputs(loadTrained(viaFile, "").weights), fromPruned, "a pruned file loads to the same outputs");
  assert.not.equal(fromPruned, outputs(host), "pruning changed the outputs");
  x.dispose();
});

test("the export step: model.int8.safetensors with calibrated activation ranges, pruned zeros preserved", () => {
  const file = path.join(dir, "a", "model.int8.safetensors");
  const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(file)));
  assert.is(metadata.quantized, "int8");
  const ranges = JSON.parse(metadata[ACTIVATION_RANGES_KEY]!) as ActivationRanges;
  assert.is(ranges.samples, 64);
  assert.equal(Object.keys(ranges.layers).sort(), ["dense", "dense_1", "dense_2"]);
  for (const r of Object.values(ranges.layers)) for (const [lo, hi] of [r.input, r.output]) assert.ok(lo! <= hi!);
  assert.ok(ranges.layers.dense_1!.input[0] >= 0, "dense_1 reads a relu output");
  assert.equal(ranges.layers.dense_1!.input, ranges.layers.dense!.output, "one layer's output is the next one's input");
  // The pruned kernels are stored sparse (nonzero int8 values and a bit mask), dense_2 dense.
  assert.equal(JSON.parse(metadata[SPARSE_KEY]!), { "dense/kernel": [8, 16], "dense_1/kernel": [16, 32] });
  assert.is(tensors["dense_1/kernel"]!.dtype, "I8");
  assert.equal(tensors["dense_2/kernel"]!.shape, [32, 4]);
  const f32 = weightsOf(path.join(dir, "a", "model.safetensors"));
  const dense = densify(tensors, metadata);
  assert.equal(dense["dense_1/kernel"]!.shape, [16, 32]);
  assert.is(zerosOf(dense["dense_1/kernel"]!.data as Int8Array), zerosOf(toFloat32(f32["dense_1/kernel"]!)), "int8 keeps exactly the pruned zeros");
  const back = loadTrained(file, fingerprint(compiled().models[0]!)).weights;
  for (const [name, t] of Object.entries(f32)) {
    const a = toFloat32(t);
    const b = toFloat32(back[name]!);
    for (let i = 0; i < a.length; i++) assert.ok(a[i] === 0 ? b[i] === 0 : Math.abs(a[i]! - b[i]!) <= Math.abs(a[i]!) / 100 + 0.02, `${name}[${i}]`);
  }
});

test("nnetc compile --prune writes FILE.pruned.safetensors, refuses to overwrite without --force; summary --weights", () => {
  const cli = (args: string[]) => spawnSync(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), ...args], { encoding: "utf8" });
  const run = path.join(dir, "a");
  const first = cli(["compile", FILE, "--prune", "0.75", "--weights", run]);
  assert.is(first.status, 0, first.stderr);
  const m = /wrote .*p\.pruned\.safetensors \(pruned: [\d,]+ bytes, ([\d.]+)% of float32's [\d,]+, 75\.0% of 3 kernels zero\)/.exec(first.stdout);
  assert.ok(m, first.stdout);
  // Stored sparse: a quarter of the kernel values and a bit mask (the header weighs much in so small a model).
  assert.ok(Number(m![1]) < 60, `stored sparse: ${m![1]}% of float32`);
  const again = cli(["compile", FILE, "--prune", "0.75", "--weights", run]);
  assert.is(again.status, 2);
  assert.match(again.stderr, /p\.pruned\.safetensors already exists; pass --force/);
  const forced = cli(["compile", FILE, "--prune", "0.5", "--quantize", "int8", "--weights", run, "--force"]);
  assert.is(forced.status, 0, forced.stderr);
  const bad = cli(["compile", FILE, "--prune", "1", "--weights", run]);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--prune 1: give the fraction of weights to set to zero/);
  const summary = cli(["summary", FILE, "--weights", path.join(dir, "p.pruned.safetensors"), "--json"]);
  assert.is(summary.status, 0, summary.stderr);
  const w = (JSON.parse(summary.stdout) as { weights: { kind: string; params: { total: number; nonzero: number }; sparsity: { kernels: number }; flops: { dense: number[]; sparse: number[] } } }).weights;
  assert.is(w.kind, "pruned");
  assert.ok(Math.abs(w.sparsity.kernels - 0.75) < 0.01, `kernel sparsity ${w.sparsity.kernels}`);
  assert.ok(w.params.nonzero < w.params.total / 3);
  assert.ok(w.flops.sparse[0]! < w.flops.dense[0]! / 2, "skipping zero weights saves FLOPs");
  const text = cli(["summary", FILE, "--weights", path.join(dir, "p.pruned.int8.safetensors")]);
  assert.match(text.stdout, /Weights: .*p\.pruned\.int8\.safetensors \(pruned\.int8\)\n {2}Params: [\d,]+ total, [\d,]+ nonzero/);
  assert.match(text.stdout, /Bytes on disk: [\d,]+ as float32, [\d,]+ as pruned\.int8 \(\d+\.\d%\)/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
