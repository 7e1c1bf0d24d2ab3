// The training-memory estimate (compiler/memory.ts) against what TensorFlow.js really holds: the peak of
// tf.memory().numBytes (tf.profile's peakBytes) over one training step of zoo models on the cpu and wasm
// backends, from before the weights exist; and the optimizer slots it counts against those runtime/optim.ts makes.
import * as tf from "@tensorflow/tfjs-core";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { estimateTrainingMemory, largestBatch, optimizerSlots, WASM_LIMIT } from "../../compiler/memory.js";
import { optimize } from "../../compiler/passes/index.js";
import { initBackend } from "../../runtime/backend.js";
import { initWeights } from "../../runtime/init.js";
import { interpreted } from "../../runtime/interpret.js";
import { makeOptimizer } from "../../runtime/optim.js";
import { phaseTrainable } from "../../runtime/spec.js";
import { trainBatch } from "../../runtime/steps.js";
import { OPTIMIZERS } from "../../compiler/plan/tables.js";
import { memoryHost, ROOT } from "../helpers.js";

/** The estimate / measured band every model must stay in. */
const BAND: [number, number] = [0.8, 1.25];
const BATCH = 16;

function zoo(name: string) {
  const file = path.join(ROOT, "models", `${name}.nnet`);
  const res = compile(file, readFileSync(file, "utf8"), memoryHost());
  assert.equal(res.diagnostics.filter((d) => d.severity === "error").length, 0, name);
  return optimize(res.module, { level: 1, mode: "train" }).module;
}

/** Peak bytes TensorFlow.js holds over: weights made, one training step at `batch`, the optimizer's slots. */
async function measure(name: string, batch: number): Promise<{ estimate: number; measured: number }> {
  const mod = zoo(name);
  const plan = mod.plans[0]!;
  const model = mod.models.find((m) => m.name === plan.model)!;
  const phase = plan.phases[0]!;
  const dataset = mod.datasets.find((d) => d.name === phase.dataset)!;
  const before = tf.memory().numBytes;
  let s = 7;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const prof = await tf.profile(() => {
    const inputs: Record<string, tf.Tensor> = {};
    for (const f of dataset.fields) {
      const shape = [batch, ...(f.shape as number[])];
      inputs[f.name] = f.dtype === "i32" ? tf.randomUniformInt(shape, 0, 2) : tf.randomUniform(shape);
    }
    const weights = initWeights(model.params, rand);
    const trainable = phaseTrainable(model.params, phase).map((p) => weights.get(p.name)!);
    const opt = makeOptimizer(phase.optimizer, phase.weightDecay, () => true);
    const r = trainBatch(interpreted(model), weights, plan.loss, trainable, opt, phase.clip, 0.01, inputs, { training: true, seed: () => 1 });
    tf.dispose(Object.values(r.outputs));
    opt.dispose();
    tf.dispose([...weights.values(), ...Object.values(inputs)]);
  });
  return { estimate: estimateTrainingMemory(model, plan, mod.datasets, batch).total, measured: prof.peakBytes - before };
}

// tf.memory() is the engine's count of its tensors' bytes, the same on every backend; the kernels that make
// them differ (wasm's own training kernels, runtime/kernels/), so both are measured.
for (const backend of ["wasm", "cpu"]) {
  test(`the estimate stays within ${BAND[0]}–${BAND[1]}× of the measured peak of one training step (${backend})`, async () => {
    await initBackend(backend);
    const lines: string[] = [];
    for (const name of ["mlp", "lenet5", "fashion_cnn"]) {
      const { estimate, measured } = await measure(name, BATCH);
      const ratio = estimate / measured;
      lines.push(`${name}: estimate ${estimate}, measured ${measured}, ratio ${ratio.toFixed(3)}`);
      assert.ok(ratio >= BAND[0] && ratio <= BAND[1], lines.join("\n"));
    }
    if (process.env.MEMORY_REPORT) console.log(`${backend}:\n${lines.join("\n")}`);
  });
}
test("the optimizer slots counted are those runtime/optim.ts makes, for every optimizer", async () => {
  await initBackend("cpu");
  for (const fn of Object.keys(OPTIMIZERS)) {
    for (const args of [{}, { momentum: 0.9 }, { momentum: 0.9, nesterov: true }] as Record<string, number | boolean>[]) {
      if (!OPTIMIZERS[fn]!.params.some((p) => p.name === "momentum") && Object.keys(args).length) continue;
      const call = { fn, args };
      const w = tf.variable(tf.ones([3, 2]));
      const opt = makeOptimizer(call, 0, () => true);
      opt.step([w], [tf.ones([3, 2])], 0.1);
      const slots = Object.keys(opt.slots(new Map([[w, "w"]]))).filter((k) => k !== "step");
      assert.is(optimizerSlots(call), slots.length, `${fn} ${JSON.stringify(args)}: ${slots.join(", ")}`);
      opt.dispose();
      w.dispose();
    }
  }
});

test("VGG16: the largest batch the wasm backend's 4 GiB holds, by the estimate", () => {
  const mod = zoo("vgg16");
  const plan = mod.plans[0]!;
  const model = mod.models[0]!;
  const e = estimateTrainingMemory(model, plan, mod.datasets, 64);
  // 138,357,544 weights, sgd with momentum: weights, gradients and one slot, 4 bytes each.
  assert.is(e.parts.weights, 138_357_544 * 4);
  assert.is(e.fixed, 3 * 138_357_544 * 4);
  const fits = largestBatch(e, WASM_LIMIT);
  assert.ok(fits >= 1 && fits < 64, String(fits));
  assert.ok(estimateTrainingMemory(model, plan, mod.datasets, fits).total <= WASM_LIMIT);
  assert.ok(estimateTrainingMemory(model, plan, mod.datasets, fits + 1).total > WASM_LIMIT);
});

test("every zoo plan: a finite estimate, linear in the batch, and largestBatch is the boundary of the limit", () => {
  for (const file of readdirSync(path.join(ROOT, "models")).filter((f) => f.endsWith(".nnet"))) {
    const mod = zoo(file.slice(0, -5));
    for (const plan of mod.plans) {
      const model = mod.models.find((m) => m.name === plan.model)!;
      const e = estimateTrainingMemory(model, plan, mod.datasets);
      const p = e.parts;
      assert.ok(Object.values(p).every((v) => Number.isFinite(v) && v >= 0) && e.total >= p.weights + p.data, `${file} ${plan.name}: ${JSON.stringify(e)}`);
      const at = (b: number) => estimateTrainingMemory(model, plan, mod.datasets, b);
      assert.ok(Math.abs(at(3).parts.activations - 3 * at(1).parts.activations) < 1e-6 * at(3).parts.activations + 1, `${file}: activations linear in the batch`);
      for (const limit of [WASM_LIMIT, 256 * 1024 ** 2]) {
        const fits = largestBatch(e, limit);
        if (fits === 0 || fits > 100_000) continue;
        assert.ok(at(fits).total <= limit && at(fits + 1).total > limit, `${file} ${plan.name}: batch ${fits} at ${limit}`);
      }
    }
  }
});

test.run();
