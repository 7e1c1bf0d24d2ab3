// The pass manager and the clean-up passes: golden before/after IR for each sample in spec/passes/ (UPDATE=1
// rewrites them), the IR verified after every pass on every zoo model, training mode keeping every weight,
// and equivalence: the interpreter gives the same outputs before and after optimization.
import * as tf from "@tensorflow/tfjs-core";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import type { IRModel, IRModule } from "../../compiler/ir/types.js";
import { optimize, passesFor, PASSES, printModel, verifyModel, type PassMode } from "../../compiler/passes/index.js";
import { initBackend } from "../../runtime/backend.js";
import { initWeights } from "../../runtime/init.js";
import { deriveWeights, disposeDerived } from "../../runtime/derive.js";
import { run } from "../../runtime/interpret.js";
import { golden, memoryHost, ROOT, runNode } from "../helpers.js";
import { irProblems } from "../ir-schema.js";

const SAMPLES = path.join(ROOT, "spec/passes");
const samples = readdirSync(SAMPLES).filter((f) => f.endsWith(".nnet")).sort();
const zoo = readdirSync(path.join(ROOT, "models")).filter((f) => f.endsWith(".nnet")).sort();

function load(rel: string): IRModule {
  const r = compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), memoryHost());
  assert.equal(r.diagnostics.filter((d) => d.severity === "error").map((d) => d.message), [], rel);
  return r.module;
}

test("passes: one ordered list, unique names, each valid in some mode, -O0 runs none", () => {
  const names = PASSES.map((p) => p.name);
  assert.equal(new Set(names).size, names.length);
  for (const p of PASSES) assert.ok(p.modes.length > 0 && p.doc.length > 0, p.name);
  assert.equal(passesFor(0, "infer"), []);
  assert.ok(passesFor(1, "infer").length >= 4);
});

for (const f of samples) {
  test(`passes: spec/passes/${f} before and after each pass, for inference and for training`, () => {
    const mod = load(`spec/passes/${f}`);
    const parts: string[] = [];
    for (const mode of ["infer", "train"] as PassMode[]) {
      parts.push(`== -O2, ${mode} ==`, "before:", printModel(mod.models[0]!));
      optimize(mod, {
        level: 2,
        mode,
        onStage: (s, m) => {
          assert.equal(verifyModel(m), [], `${s.pass} (${mode})`);
          if (s.changed) parts.push(`after ${s.pass}:`, printModel(m));
        },
      });
    }
    golden(`spec/passes/${f.replace(/\.nnet$/, ".txt")}`, parts.join("\n"));
  });
}

test("passes: every zoo model stays well formed after every pass; training keeps every weight", () => {
  for (const f of zoo) {
    const mod = load(`models/${f}`);
    for (const mode of ["infer", "train"] as PassMode[]) {
      const out = optimize(mod, { level: 2, mode, onStage: (s, m) => assert.equal(verifyModel(m), [], `${f}: ${s.pass} (${mode})`) });
      if (mode === "train") {
        out.module.models.forEach((m, i) => assert.equal(m.params.map((p) => p.name), mod.models[i]!.params.map((p) => p.name), `${f}: training must keep the weights`));
      }
    }
  }
});

test("passes: optimized IR (derived weights included) is valid against spec/ir.schema.json", () => {
  for (const f of ["resnet50.nnet", "mobilenet_v2.nnet", "bert_base.nnet"]) {
    const opt = optimize(load(`models/${f}`), { level: 2, mode: "infer" }).module;
    assert.equal(irProblems(JSON.parse(JSON.stringify(opt))), [], f);
  }
  const derived = optimize(load("models/resnet50.nnet"), { level: 2, mode: "infer" }).module.models[0]!.params.filter((p) => p.derive);
  assert.is(derived.length, 2 * 53, "ResNet-50's 53 batchnorms are folded (a kernel and a bias each)");
});

test("passes: --after NAME stops after that pass; an unknown name is refused", () => {
  const mod = load("spec/passes/noops.nnet");
  const { stages } = optimize(mod, { level: 1, mode: "infer", after: "remove-noops" });
  assert.equal(stages.map((s) => s.pass), ["remove-noops"]);
  assert.throws(() => optimize(mod, { level: 1, mode: "infer", after: "no-such-pass" }), /unknown pass "no-such-pass"/);
});

/** Outputs of a model on inputs, in inference mode, from weights by name. */
function outputs(m: IRModel, weights: Map<string, tf.Variable>, inputs: Record<string, tf.Tensor>): Record<string, Float32Array> {
  const w = deriveWeights(m.params, weights);
  const out = tf.tidy(() => {
    const r = run(m, w, inputs, { training: false });
    return Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, v.dataSync() as Float32Array]));
  });
  disposeDerived(w, weights);
  return out;
}

const EQUIV = [...samples.map((f) => `spec/passes/${f}`), ...["bert_base.nnet", "fashion_cnn.nnet", "text_classifier.nnet", "gpt2_small.nnet", "mobilenet_v2.nnet", "resnet50.nnet"].map((f) => `models/${f}`)];

for (const rel of EQUIV) {
  test(`passes ≡: ${rel} computes the same after -O2 for inference (interpreter, same weights; ≤ 1e-4)`, async () => {
    await initBackend("wasm");
    const mod = load(rel);
    const opt = optimize(mod, { level: 2, mode: "infer" }).module;
    let s = 99;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (const [i, m] of mod.models.entries()) {
      // Small symbolic sizes; integer inputs are ids in {0, 1}.
      const size = (d: number | string, k: number) => (typeof d === "number" ? d : k === 0 ? (rel.includes("resnet") ? 1 : 2) : 5);
      const inputs = Object.fromEntries(
        m.inputs.map((inp) => {
          const shape = inp.shape.map(size);
          const n = shape.reduce((a, b) => a * b, 1);
          return [inp.name, inp.dtype.startsWith("i") ? tf.tensor(Int32Array.from({ length: n }, () => Math.floor(rand() * 2)), shape, "int32") : tf.tensor(Float32Array.from({ length: n }, () => rand() * 2 - 1), shape)];
        }),
      );
      const weights = initWeights(m.params, rand);
      // Trained-looking batchnorm statistics (fresh ones are 0 and 1, which would hide a folding mistake).
      for (const p of m.params) if (/moving_(mean|variance)$|gamma$|beta$/.test(p.role)) weights.get(p.name)!.assign(tf.add(tf.mul(tf.randomUniform(p.shape, 0, 1, "float32", 7), 0.5), p.role === "moving_mean" || p.role === "beta" ? -0.25 : 0.75));
      const a = outputs(m, weights, inputs);
      const b = outputs(opt.models[i]!, weights, inputs);
      for (const k of Object.keys(a)) {
        let d = 0;
        for (let j = 0; j < a[k]!.length; j++) d = Math.max(d, Math.abs(a[k]![j]! - b[k]![j]!));
        assert.ok(d <= 1e-4, `${m.name}.${k}: max abs diff ${d}`);
      }
      tf.dispose([...weights.values(), ...Object.values(inputs)]);
    }
  });
}

test("nnetc summary -O2 shows the optimized model and what changed from -O0", async () => {
  const r = await runNode([path.join(ROOT, "dist/nnetc.mjs"), "summary", "models/resnet50.nnet", "-O2", "--json"]);
  assert.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { layers: { type: string }[]; optimized: { level: number; nodes: number[]; params: number[]; flops: number[] } };
  assert.is(s.optimized.level, 2);
  assert.equal(s.optimized.nodes, [177, 89]);
  assert.ok(s.optimized.params[1]! < s.optimized.params[0]!, "folding batchnorms removes their statistics");
  assert.ok(s.optimized.flops[1]! < s.optimized.flops[0]!);
  assert.not.ok(s.layers.some((l) => l.type === "batchnorm"), "no batchnorm left in ResNet-50 at -O2");
  const text = await runNode([path.join(ROOT, "dist/nnetc.mjs"), "summary", "models/resnet50.nnet", "-O2"]);
  assert.match(text.stdout, /-O2 for inference, from -O0: nodes 177 → 89, params 25,636,712 → /);
});

test("nnetc eval and predict run the inference-optimized model: -O2 agrees with -O0 on a trained batchnorm model", async () => {
  const dir = path.join(ROOT, "dist/tmp-passes-cli");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let s = 11;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const rows = ["features,label"];
  for (let i = 0; i < 300; i++) {
    const x = [rand(), rand(), rand(), rand()];
    rows.push(`${x.map((v) => v.toFixed(4)).join(" ")},${x[0]! * x[1]! > 0 ? 1 : 0}`);
  }
  writeFileSync(path.join(dir, "data.csv"), rows.join("\n") + "\n");
  writeFileSync(
    path.join(dir, "bn.nnet"),
    `model BN {\n  input x: f32[batch, 4]\n  h = x -> dense(16) -> batchnorm -> relu -> dense(16, bias: false) -> batchnorm -> relu\n  output logits = h -> dense(2)\n}\n` +
      `dataset d {\n  source csv("data.csv")\n  split test: 0.2, seed: 1\n  field x: f32[4] = features\n  field label: i32 = label\n}\n` +
      `train BN on d {\n  loss cross_entropy(logits, label)\n  metrics accuracy\n  optimizer adam(lr: 1e-2)\n  batch 32\n  epochs 3\n  seed 5\n}\n`,
  );
  const cli = (args: string[]) => runNode([path.join(ROOT, "dist/nnetc.mjs"), ...args]);
  const trained = await cli(["train", path.join(dir, "bn.nnet"), "--out", path.join(dir, "run"), "--backend", "wasm"]);
  assert.is(trained.code, 0, trained.stderr);
  const evals = await Promise.all(["0", "2"].map((O) => cli(["eval", path.join(dir, "bn.nnet"), "--weights", path.join(dir, "run"), "--json", `-O${O}`, "--backend", "wasm"])));
  const [e0, e2] = evals.map((r) => (assert.is(r.code, 0, r.stderr), JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, number>));
  assert.ok(Math.abs(e0!.loss! - e2!.loss!) < 1e-5, `loss ${e0!.loss} at -O0, ${e2!.loss} at -O2`);
  assert.is(e0!.accuracy, e2!.accuracy);
  const preds = await Promise.all(["0", "2"].map((O) => cli(["predict", path.join(dir, "bn.nnet"), "--weights", path.join(dir, "run"), "--input", "test:20", "--json", `-O${O}`, "--backend", "wasm"])));
  const [p0, p2] = preds.map((r) => (assert.is(r.code, 0, r.stderr), r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { index?: number; logits: number[] }).filter((x) => x.index !== undefined)));
  assert.is(p0!.length, 20);
  for (let i = 0; i < 20; i++) for (let k = 0; k < 2; k++) assert.ok(Math.abs(p0![i]!.logits[k]! - p2![i]!.logits[k]!) < 1e-4, `sample ${i}`);
  rmSync(dir, { recursive: true, force: true });
});

test.run();
