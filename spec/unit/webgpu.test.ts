// The webgpu backend (runtime/webgpu.ts): every op kind of the registry forward and backward on webgpu against
// the cpu backend (the table of spec/op_cases.ts, as layers.test runs it on wasm), and short MLP and CNN
// training runs whose losses match the cpu backend's. On a machine without a GPU it runs on Mesa's llvmpipe
// (OpenGL ES, compatibility mode), so every size here is tiny.
//
// webgpu that cannot start fails this file loudly: the suite expects it (scripts/setup.mjs installs Mesa).
// NNETC_WEBGPU_TESTS=0 skips the file, saying so, on a machine where WebGPU cannot run at all.
import * as tf from "@tensorflow/tfjs-core";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { IRModel } from "../../compiler/ir/types.js";
import { initBackend } from "../../runtime/backend.js";
import { initWeights } from "../../runtime/init.js";
import { run } from "../../runtime/interpret.js";
import { Rng } from "../../runtime/data/rng.js";
import { adapterName, isSoftwareAdapter, releaseWebgpu } from "../../runtime/webgpu.js";
import { ROOT, runNode } from "../helpers.js";
import { CASES, inputsFor, modelOf } from "../op_cases.js";

const test = suite("webgpu backend");
const skip = process.env.NNETC_WEBGPU_TESTS === "0";

/** Loss = Σ output · fixed weights, and the gradients of every trainable weight, read asynchronously (webgpu has no synchronous read in Node). */
async function lossAndGrads(m: IRModel, backend: string, seed: number): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  await tf.setBackend(backend);
  const rng = new Rng(seed);
  const weights = initWeights(m.params, () => rng.next());
  const raw = inputsFor(m, rng);
  const inputs = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.dtype)]));
  const trainable = m.params.filter((p) => p.trainable).map((p) => weights.get(p.name)!);
  const names = new Map(m.params.filter((p) => p.trainable).map((p) => [weights.get(p.name)!.name, p.name]));
  const { value, grads } = tf.tidy(() => {
    const r = tf.variableGrads(() => {
      const { outputs, updates } = run(m, weights, inputs, { training: true, seed: () => 7 });
      for (const [, t] of updates) t.dispose();
      let total = tf.scalar(0);
      for (const o of Object.values(outputs)) {
        const mix = tf.tensor(Array.from({ length: o.size }, (_, i) => Math.sin(i + 1)), o.shape);
        total = tf.add(total, tf.sum(tf.mul(o, mix)));
      }
      return total as tf.Scalar;
    }, trainable);
    return { value: tf.keep(r.value), grads: Object.fromEntries(Object.entries(r.grads).map(([k, g]) => [k, tf.keep(g)])) };
  });
  const loss = (await value.data())[0]!;
  const gradMap = new Map<string, Float32Array>();
  for (const [k, g] of Object.entries(grads)) gradMap.set(names.get(k)!, Float32Array.from((await g.data()) as Float32Array));
  tf.dispose([value, ...Object.values(grads), ...Object.values(inputs), ...weights.values()]);
  return { loss, grads: gradMap };
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst;
}

/** Why webgpu did not start (every test then fails with it). */
let startError: string | null = null;
test.before(async () => {
  if (skip) return void console.log("  NNETC_WEBGPU_TESTS=0: the webgpu tests are skipped");
  try {
    const b = await initBackend("webgpu");
    console.log(`  webgpu: ${b.reason}`);
  } catch (e) {
    startError = `${(e as Error).message} (NNETC_WEBGPU_TESTS=0 skips these tests where WebGPU cannot run)`;
  }
});

/** False when the tests are skipped; fails the test when webgpu did not start. */
function ready(): boolean {
  if (skip) return false;
  if (startError) assert.unreachable(startError);
  return true;
}
test.after(() => releaseWebgpu());

test("software adapters are told from hardware ones by the adapter info", () => {
  const llvmpipe = { vendor: "", architecture: "", device: "llvmpipe-llvm-15-0-6-256-bits-", description: "OpenGL version OpenGL ES 3.2 Mesa 22.3.6" };
  assert.ok(isSoftwareAdapter(llvmpipe));
  assert.ok(isSoftwareAdapter({ vendor: "google", architecture: "swiftshader", device: "", description: "" }));
  assert.ok(isSoftwareAdapter({ vendor: "mesa", device: "lavapipe" }));
  assert.ok(isSoftwareAdapter({ vendor: "nvidia", isFallbackAdapter: true }));
  assert.not.ok(isSoftwareAdapter({ vendor: "nvidia", architecture: "hopper", device: "", description: "NVIDIA H100 80GB HBM3" }));
  assert.not.ok(isSoftwareAdapter({ vendor: "intel", architecture: "gen-12lp", device: "", description: "" }));
  assert.is(adapterName(llvmpipe), "llvmpipe-llvm-15-0-6-256-bits- (OpenGL version OpenGL ES 3.2 Mesa 22.3.6)");
  assert.is(adapterName({ vendor: "nvidia", architecture: "hopper" }), "nvidia hopper");
});

test("the automatic choice takes webgpu only on a hardware adapter, and says why not", async () => {
  if (!ready()) return;
  const auto = await initBackend();
  // Without tfjs-node: webgpu on a GPU, else wasm saying why not (here: no GPU device, or only llvmpipe).
  if (auto.name === "wasm") assert.match(auto.reason, /no WebGPU GPU \((no GPU device|only a software adapter)/);
  if (auto.name === "webgpu") assert.not.match(auto.reason, /software/);
  await initBackend("webgpu");
});

const report: string[] = [];
for (const [kind, src] of CASES) {
  test(`${kind}: forward and gradients on webgpu equal the cpu backend's`, async () => {
    if (!ready()) return;
    const m = modelOf(src);
    const gpu = await lossAndGrads(m, "webgpu", 11);
    const cpu = await lossAndGrads(m, "cpu", 11);
    const dl = Math.abs(gpu.loss - cpu.loss) / Math.max(1, Math.abs(cpu.loss));
    let dg = 0;
    for (const [name, g] of cpu.grads) {
      assert.ok(gpu.grads.has(name), `${name}: no gradient on webgpu`);
      dg = Math.max(dg, maxRelDiff(gpu.grads.get(name)!, g));
    }
    report.push(`${kind}\t${dl.toExponential(1)}\t${dg.toExponential(1)}`);
    assert.ok(dl <= 1e-3, `loss ${gpu.loss} vs ${cpu.loss}`);
    assert.ok(dg <= 1e-3, `gradients differ by ${dg}`);
  });
}
// ---------------------------------------------------------------- training: nnetc train --backend webgpu vs cpu

// Under dist/: the emitted module imports nnetc/runtime, which resolves from inside the package.
const TMP = mkdtempSync(path.join(ROOT, "dist/tmp-webgpu-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

/** 96 rows: 16 pixels in [-1, 1) and a label, the quadrant of the brightest pixel (a CNN can learn it). */
function writeData(): void {
  let s = 3;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const rows = ["pixels,label"];
  for (let i = 0; i < 96; i++) {
    const px = Array.from({ length: 16 }, rand);
    const at = px.indexOf(Math.max(...px));
    rows.push(`${px.map((v) => v.toFixed(4)).join(" ")},${(Math.floor(at / 8) * 2 + Math.floor((at % 4) / 2))}`);
  }
  writeFileSync(path.join(TMP, "quads.csv"), rows.join("\n") + "\n");
}

writeData();

const DATASET = `dataset quads {
  source csv("quads.csv")
  split test: 0.25, seed: 2
  field image: f32[4, 4, 1] = pixels -> reshape([4, 4, 1])
  field label: i32 = label
}`;
const PLAN = (model: string) => `train ${model} on quads {
  loss cross_entropy(logits, label)
  optimizer adam(lr: 1e-2)
  metrics accuracy
  batch 16
  epochs 2
  validation 0.1
  seed 7
}`;
const MODELS = {
  mlp: `model Mlp {\n  input image: f32[batch, 4, 4, 1]\n  output logits = image -> flatten -> dense(16, activation: relu) -> dense(4)\n}`,
  cnn: `model Cnn {\n  input image: f32[batch, 4, 4, 1]\n  output logits = image -> conv2d(4, 3, padding: same, activation: relu) -> batchnorm -> max_pool2d(2) -> flatten -> dense(4)\n}`,
};

interface Epochs {
  losses: number[];
  test: number;
  backend: string;
}

async function train(file: string, backend: string): Promise<Epochs> {
  const r = await runNode([path.join(ROOT, "dist/nnetc.mjs"), "train", file, "--backend", backend, "--out", path.join(TMP, `run-${path.basename(file, ".nnet")}-${backend}`), "--json"], { timeoutMs: 120_000 });
  assert.is(r.code, 0, `${backend}: ${r.stderr}`);
  const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { event: string; loss?: number; backend?: string; test?: { loss: number } });
  return {
    losses: events.filter((e) => e.event === "epoch").map((e) => e.loss!),
    test: events.find((e) => e.event === "done")!.test!.loss,
    backend: events.find((e) => e.event === "backend")!.backend!,
  };
}

for (const [name, model] of Object.entries(MODELS)) {
  test(`${name}: nnetc train --backend webgpu gives the cpu backend's losses (1e-4), and the process exits`, async () => {
    if (!ready()) return;
    const file = path.join(TMP, `${name}.nnet`);
    writeFileSync(file, `${model}\n${DATASET}\n${PLAN(model.split(" ")[1]!)}\n`);
    const [gpu, cpu] = [await train(file, "webgpu"), await train(file, "cpu")];
    assert.is(gpu.backend, "webgpu");
    assert.is(gpu.losses.length, 2);
    const diffs = [...gpu.losses.map((l, k) => Math.abs(l - cpu.losses[k]!)), Math.abs(gpu.test - cpu.test)];
    report.push(`${name} training: epoch and test loss differences ${diffs.map((d) => d.toExponential(1)).join(", ")}`);
    assert.ok(Math.max(...diffs) <= 1e-4, `losses ${[...gpu.losses, gpu.test]} vs ${[...cpu.losses, cpu.test]}`);
    assert.ok(gpu.losses[1]! < gpu.losses[0]!, "the loss goes down");
  });
}

test("an emitted module's load(run, { backend: \"webgpu\" }) predicts what the cpu backend predicts; fit() trains on webgpu", async () => {
  if (!ready()) return;
  const file = path.join(TMP, "mlp.nnet");
  const r = await runNode([path.join(ROOT, "dist/nnetc.mjs"), "compile", file, "--target", "js"]);
  assert.is(r.code, 0, r.stderr);
  type Loaded = { weights: Map<string, tf.Variable> };
  const mod = (await import(pathToFileURL(path.join(TMP, "mlp.js")).href)) as {
    load(from: string, o?: { backend?: string }): Promise<Loaded>;
    predict(m: Loaded, x: object): { logits: tf.Tensor };
    fit(m: Loaded, o: object): Promise<{ epochs: { loss: number }[] }>;
    dispose(m: Loaded): void;
  };
  const x = Array.from({ length: 32 }, (_, i) => Math.sin(i));
  const predictOn = async (backend: string) => {
    const m = await mod.load(path.join(TMP, "run-mlp-cpu"), { backend });
    assert.is(tf.getBackend(), backend);
    const input = tf.tensor(x, [2, 4, 4, 1]);
    const { logits } = mod.predict(m, { image: input });
    const values = Float32Array.from((await logits.data()) as Float32Array);
    tf.dispose([input, logits]);
    return { m, values };
  };
  const gpu = await predictOn("webgpu");
  const cpu = await predictOn("cpu");
  mod.dispose(cpu.m);
  assert.ok(maxRelDiff(gpu.values, cpu.values) < 1e-5, `${gpu.values} vs ${cpu.values}`);
  await tf.setBackend("webgpu");
  const fitted = await mod.fit(gpu.m, { data: TMP, out: path.join(TMP, "fit-run"), epochs: 1, log: false });
  assert.ok(Number.isFinite(fitted.epochs[0]!.loss));
  mod.dispose(gpu.m);
});

test("report", () => {
  if (process.env.WEBGPU_REPORT) console.log(report.join("\n"));
});

test.run();
