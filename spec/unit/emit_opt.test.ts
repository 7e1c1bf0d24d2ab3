// Emitted modules consume the optimized IR: at -O2 a model with batchnorm gets an inference forward pass with
// batchnorm folded into the convolutions (derived weights), which predict() runs. It must compute what the
// unoptimized model computes (within 1e-4), follow weight changes made by trainStep() (and by hand, after
// weightsChanged()), and release what it derived. -O1 emits no second pass for a model whose inference form
// only drops dropout.
import * as tf from "@tensorflow/tfjs-core";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { run } from "../../runtime/interpret.js";
import { ROOT } from "../helpers.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
// Inside the package, so that the emitted module's `import "nnetc/runtime"` resolves to this build.
const DIR = path.join(ROOT, "dist/tmp-emit-opt");

const SOURCE = `model Folded {
  input image: f32[batch, 8, 8, 3]
  x = image -> conv2d(8, 3, padding: same, bias: false) -> batchnorm -> relu
  y = x -> depthwise_conv2d(3, padding: same) -> batchnorm -> relu -> dropout(0.1)
  output logits = y -> global_avg_pool2d -> dense(3)
}
dataset d {
  source csv("data.csv")
  field image: f32[8, 8, 3] = image
  field label: i32 = label
}
train Folded on d {
  loss      cross_entropy(logits, label)
  optimizer sgd(lr: 0.1)
  seed      3
}
`;

interface Api {
  def: { infer?: { params: { name: string; derive?: unknown }[] } };
  create(o?: { seed?: number }): Promise<{ weights: Map<string, tf.Variable> }>;
  predict(m: unknown, x: object): { logits: tf.Tensor };
  trainStep(m: unknown, b: object): number;
  dispose(m: unknown): void;
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

async function emitted(level: string): Promise<{ api: Api; code: string }> {
  const out = path.join(DIR, `O${level}`);
  const r = cli(["compile", path.join(DIR, "folded.nnet"), "--target", "js", `-O${level}`, "-o", out]);
  assert.is(r.code, 0, r.err);
  const file = path.join(out, "folded.js");
  const mod = (await import(pathToFileURL(file).href)) as { default: Api };
  return { api: mod.default, code: readFileSync(file, "utf8") };
}

function reference(m: IRModel, w: Map<string, tf.Variable>, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => run(m, w, { image: x }, { training: false }).outputs.logits!);
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

test.before(() => {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  writeFileSync(path.join(DIR, "folded.nnet"), SOURCE);
});

test("-O1 emits one forward pass for a model whose inference form only drops dropout", async () => {
  const { api, code } = await emitted("1");
  assert.is(api.def.infer, undefined);
  assert.not.match(code, /function inferFolded/);
});

test("-O2: predict() runs the folded inference pass, equal to the unoptimized model, and follows weight changes", async () => {
  const { api, code } = await emitted("2");
  assert.match(code, /function inferFolded/);
  assert.match(code, /batchnorm folded into the layer before it/);
  const derived = api.def.infer!.params.filter((p) => p.derive).map((p) => p.name);
  assert.equal(derived.sort(), ["conv2d/bias", "conv2d/kernel", "depthwise_conv2d/bias", "depthwise_conv2d/depthwise_kernel"]);
  const ir = compile("folded.nnet", SOURCE, { readFile: () => ({ error: "no imports" }) }).module.models[0]!;

  const before = tf.memory().numTensors;
  const m = await api.create({ seed: 5 });
  const x = tf.randomUniform([4, 8, 8, 3], 0, 1, "float32", 1);
  const y0 = api.predict(m, { image: x }).logits;

  // Batchnorm statistics away from 0 and 1, set by hand: predict() keeps its derived weights until told.
  for (const [name, v] of m.weights) if (/moving_(mean|variance)|gamma|beta/.test(name)) tf.tidy(() => v.assign(tf.randomUniform(v.shape, 0.5, 1.5, "float32", name.length)));
  const stale = api.predict(m, { image: x }).logits;
  assert.is(maxDiff(stale, y0), 0, "derived weights are cached between calls");
  const nn = await import("nnetc/runtime");
  nn.weightsChanged(m as never);
  const y1 = api.predict(m, { image: x }).logits;
  const r1 = reference(ir, m.weights, x);
  assert.ok(maxDiff(y1, y0) > 1e-3, "the new statistics change the outputs");
  assert.ok(maxDiff(y1, r1) <= 1e-4, `folded vs unoptimized: ${maxDiff(y1, r1)}`);

  // trainStep() changes the weights (and batchnorm's moving statistics): the next predict() derives anew.
  const batch = { image: x, label: tf.tensor1d([0, 1, 2, 1], "int32") };
  for (let i = 0; i < 3; i++) api.trainStep(m, batch);
  const y2 = api.predict(m, { image: x }).logits;
  const r2 = reference(ir, m.weights, x);
  assert.ok(maxDiff(y2, y1) > 1e-4, "training changed the outputs");
  assert.ok(maxDiff(y2, r2) <= 1e-4, `after trainStep, folded vs unoptimized: ${maxDiff(y2, r2)}`);

  for (const t of [y0, stale, y1, r1, y2, r2, x, batch.label]) t.dispose();
  api.dispose(m);
  assert.is(tf.memory().numTensors, before, "dispose() releases the weights, the derived weights and the optimizer state");
});

test("nnetc compile --print-passes lists the passes for training and for inference", () => {
  const r = cli(["compile", path.join(DIR, "folded.nnet"), "-O2", "--print-passes", "-o", path.join(DIR, "passes")]);
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /-O2 for training \(forward, fit, trainStep\): .*fuse-relu/);
  assert.match(r.err, /-O2 for inference \(predict, evaluate\): .*fold-batchnorm/);
});

test.after(() => rmSync(DIR, { recursive: true, force: true }));

test.run();
