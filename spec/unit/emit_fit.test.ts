// An emitted module's whole-plan API against `nnetc train` on small synthetic data: fit() follows the
// file's plan (two phases, a frozen layer, dropout, a schedule, validation, early stopping) and produces the
// same per-epoch losses and the same weights as the CLI with the same seed; save() writes what `nnetc eval`
// reads; load() gives the same predictions; bad inputs are refused with a clear error.
import * as tf from "@tensorflow/tfjs-core";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeSafetensors } from "../../runtime/checkpoint/index.js";
import { ROOT } from "../helpers.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
// Inside the package, so that the emitted module's `import "nnetc/runtime"` resolves to this build.
const DIR = path.join(ROOT, "dist/tmp-fit");

function dataset(n: number): void {
  let s = 5;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const rows = ["features,label"];
  for (let i = 0; i < n; i++) {
    const x = [rand(), rand(), rand(), rand()];
    rows.push(`${x.map((v) => v.toFixed(4)).join(" ")},${(x[0]! + x[1]! > 0 ? 1 : 0) + (x[2]! - x[3]! > 0 ? 2 : 0)}`);
  }
  writeFileSync(path.join(DIR, "data.csv"), rows.join("\n") + "\n");
}

const SOURCE = `/// A small classifier with dropout, trained in two phases.
model Small {
  input x: f32[batch, 4]
  features = x -> dense(16, activation: relu) -> dropout(0.2)
  output logits = features -> dense(4)
}
dataset d {
  source csv("data.csv")
  split  test: 0.2, seed: 3
  field x: f32[4] = features
  field label: i32 = label
}
train Small on d {
  loss       cross_entropy(logits, label)
  metrics    accuracy
  validation 0.1
  seed       11
  phase warm {
    epochs    2
    batch     16
    optimizer adam(lr: 1e-2)
    schedule  cosine()
  }
  phase head {
    epochs     2
    batch      32
    optimizer  sgd(lr: 0.05, momentum: 0.9)
    freeze     features
    early_stop monitor: val_loss, patience: 3
  }
}
`;

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const losses = (run: string) =>
  readFileSync(path.join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { epoch: number; loss: number; val_loss: number; phase: string });

interface Emitted {
  create(o?: { seed?: number; weights?: string }): Promise<{ weights: Map<string, tf.Variable> }>;
  fit(m: unknown, o: object): Promise<{ epochs: unknown[] }>;
  predict(m: unknown, x: object): { logits: tf.Tensor };
  trainStep(m: unknown, b: object): number;
  evaluate(m: unknown, o?: object): Promise<Record<string, number>>;
  save(m: unknown, dir: string, o?: object): Promise<void>;
  load(dir: string, o?: object): Promise<unknown>;
  predictAsync(m: unknown, x: object): Promise<{ logits: tf.Tensor }>;
  dispose(m: unknown): void;
  plan: { phases: { name: string; frozenLayers: string[] }[] };
}

let mod: Emitted;

test.before(async () => {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  dataset(400);
  writeFileSync(path.join(DIR, "small.nnet"), SOURCE);
  const r = cli(["compile", path.join(DIR, "small.nnet"), "--target", "js"]);
  assert.is(r.code, 0, r.err);
  mod = (await import(pathToFileURL(path.join(DIR, "small.js")).href)) as Emitted;
});
test.after(() => rmSync(DIR, { recursive: true, force: true }));

test("fit() runs the file's plan exactly as nnetc train does: same losses per epoch, same final weights", async () => {
  const viaCli = cli(["train", path.join(DIR, "small.nnet"), "--out", path.join(DIR, "run-cli"), "--backend", "wasm"]);
  assert.is(viaCli.code, 0, viaCli.err);
  const m = await mod.create({ backend: "wasm" } as never);
  const r = await mod.fit(m, { out: path.join(DIR, "run-fit"), log: false });
  const a = losses(path.join(DIR, "run-cli"));
  const b = losses(path.join(DIR, "run-fit"));
  assert.equal(b.map((x) => x.phase), ["warm", "warm", "head", "head"]);
  assert.is(r.epochs.length, 4);
  assert.is(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i]!.loss - b[i]!.loss) <= 1e-6, `epoch ${i + 1}: train loss ${a[i]!.loss} (cli) vs ${b[i]!.loss} (fit)`);
    assert.ok(Math.abs(a[i]!.val_loss - b[i]!.val_loss) <= 1e-6, `epoch ${i + 1}: val loss`);
  }
  const wa = decodeSafetensors(new Uint8Array(readFileSync(path.join(DIR, "run-cli/model.safetensors")))).tensors;
  const wb = decodeSafetensors(new Uint8Array(readFileSync(path.join(DIR, "run-fit/model.safetensors")))).tensors;
  for (const k of Object.keys(wa)) {
    const x = wa[k]!.data as Float32Array;
    const y = wb[k]!.data as Float32Array;
    let d = 0;
    for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
    assert.ok(d <= 1e-6, `${k}: max abs diff ${d}`);
  }
  // The trained model object holds the trained weights.
  const mine = m.weights.get("dense_1/kernel")!.dataSync();
  assert.ok(Math.abs(mine[0]! - (wb["dense_1/kernel"]!.data as Float32Array)[0]!) < 1e-7);
  mod.dispose(m);
});

test("fit() stops at an abort signal with a checkpoint, and { resume: true } ends where an uninterrupted fit ends", async () => {
  const out = path.join(DIR, "run-abort");
  const stop = new AbortController();
  const m = await mod.create({ backend: "wasm" } as never);
  await mod.fit(m, { out, log: false, signal: stop.signal, onEpoch: (r: { epoch: number }) => r.epoch === 1 && stop.abort() }).then(
    () => assert.unreachable("fit should stop at the signal"),
    (e: Error) => assert.match(e.message, /interrupted: saved a checkpoint at epoch 2, batch 0 .*--resume/),
  );
  mod.dispose(m);
  const again = await mod.create({ backend: "wasm" } as never);
  await mod.fit(again, { out, log: false, resume: true });
  const [a, b] = [losses(path.join(DIR, "run-fit")), losses(out)];
  assert.equal(b.map((x) => x.epoch), [1, 2, 3, 4], "each epoch once");
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]!.loss - b[i]!.loss) <= 1e-6, `epoch ${i + 1}: ${a[i]!.loss} uninterrupted vs ${b[i]!.loss} resumed`);
  mod.dispose(again);
});

test("save() writes what nnetc eval reads; load() predicts the same; evaluate() agrees with nnetc eval", async () => {
  const m = await mod.create({ seed: 3 });
  const x = tf.tensor2d([[0.5, -0.2, 0.1, 0.9], [-1, 1, 0, 0.3]]);
  for (let i = 0; i < 5; i++) mod.trainStep(m, { x, label: tf.tensor1d([1, 2], "int32") });
  const out = path.join(DIR, "saved");
  await mod.save(m, out);
  // An existing model is not overwritten by accident.
  await mod.save(m, out).then(
    () => assert.unreachable("save over an existing model should be refused"),
    (e: Error) => assert.match(e.message, /already holds a saved model.*overwrite: true/),
  );
  const back = await mod.load(out);
  const [p, q] = [mod.predict(m, { x }).logits, mod.predict(back, { x }).logits];
  assert.equal(Array.from(p.dataSync()), Array.from(q.dataSync()));
  const ours = await mod.evaluate(back);
  const theirs = cli(["eval", path.join(DIR, "small.nnet"), "--weights", out, "--json", "--backend", "wasm"]);
  assert.is(theirs.code, 0, theirs.err);
  const t = JSON.parse(theirs.out.trim().split("\n").pop()!) as Record<string, number>;
  assert.ok(Math.abs(ours.loss! - t.loss!) < 1e-5, `evaluate ${ours.loss} vs nnetc eval ${t.loss}`);
  assert.is(ours.accuracy, t.accuracy);
  mod.dispose(m);
  mod.dispose(back);
});

test("load(dir, { engine: \"onnx\" }): predictAsync() and evaluate() on onnxruntime-node give what the tfjs engine gives (1e-5); predict(), trainStep() and fit() refuse the model", async () => {
  const m = await mod.create({ seed: 4 });
  const x = tf.tensor2d([[0.5, -0.2, 0.1, 0.9], [-1, 1, 0, 0.3], [0.3, 0.3, -0.7, 0.2]]);
  for (let i = 0; i < 3; i++) mod.trainStep(m, { x: x.slice(0, 2), label: tf.tensor1d([1, 2], "int32") });
  const out = path.join(DIR, "saved-onnx");
  await mod.save(m, out);
  const tfjs = await mod.load(out);
  const onnx = await mod.load(out, { engine: "onnx" });
  const [p, q] = [mod.predict(tfjs, { x }).logits, (await mod.predictAsync(onnx, { x })).logits];
  assert.equal(q.shape, [3, 4]);
  const [a, b] = [p.dataSync(), q.dataSync()];
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-5, `logit ${i}: tfjs ${a[i]} vs onnx ${b[i]}`);
  // predictAsync on a tfjs model is predict.
  assert.equal(Array.from((await mod.predictAsync(tfjs, { x })).logits.dataSync()), Array.from(a));
  const [ea, eb] = [await mod.evaluate(tfjs), await mod.evaluate(onnx)];
  assert.ok(Math.abs(ea.loss! - eb.loss!) <= 1e-5, `evaluate: tfjs ${ea.loss} vs onnx ${eb.loss}`);
  assert.is(eb.accuracy, ea.accuracy);
  assert.throws(() => mod.predict(onnx, { x }), /loaded with engine "onnx", which runs inference only: use await predictAsync/);
  assert.throws(() => mod.trainStep(onnx, { x, label: tf.tensor1d([1, 2, 0], "int32") }), /trainStep: Small was loaded with engine "onnx"/);
  await mod.fit(onnx, { log: false }).then(
    () => assert.unreachable("fit on an ONNX model"),
    (e: Error) => assert.match(e.message, /fit: Small was loaded with engine "onnx"/),
  );
  for (const k of [m, tfjs, onnx]) mod.dispose(k);
});

test("predict() and trainStep() refuse inputs of the wrong shape, dtype or name, saying what the model needs", async () => {
  const m = await mod.create();
  const cases: [object, RegExp][] = [
    [{ x: tf.zeros([2, 5]) }, /input "x" of Small has shape \[2, 5\].*needs float32 \[batch, 4\]: dimension 1 is 5, not 4/],
    [{ x: tf.zeros([2, 2, 4]) }, /rank 3 instead of 2/],
    [{ x: tf.zeros([2, 4], "int32") }, /floats are expected/],
    [{ y: tf.zeros([2, 4]) }, /input "x" of Small is missing or not a tensor/],
  ];
  for (const [inputs, re] of cases) assert.throws(() => mod.predict(m, inputs), re);
  assert.throws(() => mod.trainStep(m, { x: tf.zeros([2, 4]) }), /the batch has no "label" tensor/);
  mod.dispose(m);
});

test("load() refuses what is not this model's weights, naming the path", async () => {
  await mod.load(path.join(DIR, "no-such-run")).then(
    () => assert.unreachable("loading nothing should fail"),
    (e: Error) => assert.match(e.message, /^weights .*no-such-run: no such file or folder$/),
  );
  const other = path.join(DIR, "other.safetensors");
  const { encodeSafetensors } = await import("../../runtime/checkpoint/index.js");
  writeFileSync(other, encodeSafetensors({ "dense/kernel": { dtype: "F32", shape: [1], data: new Float32Array(1) } }, { format: "nnetc", model: "Other", fingerprint: "0123456789abcdef" }));
  await mod.load(other).then(
    () => assert.unreachable("another model's weights should be refused"),
    (e: Error) => assert.match(e.message, /other\.safetensors was trained for a different model/),
  );
});

test("the emitted module embeds the plan's constants, phases and frozen layers included", () => {
  assert.equal(mod.plan.phases.map((p) => p.name), ["warm", "head"]);
  assert.equal(mod.plan.phases[1]!.frozenLayers, ["dense"]);
});

test("the emitted module is locked to its generator's version: nnetc/runtime refuses another", async () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
  const nn = await import("../../runtime/index.js");
  const { VERSION } = await import("../../compiler/emit/index.js");
  assert.is(nn.VERSION, pkg.version, "runtime/index.ts VERSION is package.json's");
  assert.is(VERSION, pkg.version, "compiler/emit/index.ts VERSION is package.json's");
  assert.match(readFileSync(path.join(DIR, "small.js"), "utf8"), `nn.requireVersion("${pkg.version}");`);
  assert.throws(() => nn.requireVersion("0.0.1"), /generated by nnetc 0\.0\.1 but nnetc\/runtime is .*run nnetc compile again/);
});

test.run();
