// --target tfjs-layers: every zoo model whose layers Keras has is exported with seeded weights, loaded by
// TensorFlow.js's own tf.loadLayersModel (tfjs-layers, which nnetc's runtime never uses), and run on a
// random batch: its outputs equal the interpreter's within 1e-4. The models that cannot be exported give
// NN6020 naming the first layer without a Keras equivalent (golden list below; the CLI case is in
// spec/diagnostics/NN6020-*). Also: the files round-trip through loadTrained, and the CLI writes them.
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { kerasModel } from "../../compiler/emit/keras.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { initBackend } from "../../runtime/backend.js";
import { loadTfjsWeights } from "../../runtime/checkpoint/index.js";
import { Rng } from "../../runtime/data/rng.js";
import { initWeights } from "../../runtime/init.js";
import { run } from "../../runtime/interpret.js";
import { layersModelFiles, writeLayersModel } from "../../runtime/layers_export.js";
import { hostWeights } from "../../runtime/train.js";
import { golden, memoryHost, ROOT, runNode } from "../helpers.js";

const MODELS = path.join(ROOT, "models");
const files = readdirSync(MODELS).filter((f) => f.endsWith(".nnet")).sort();
/** Exported and compared; the 224×224 ImageNet models run one sample, the others two. */
const BATCH: Record<string, number> = { VGG16: 1, ResNet50: 1, MobileNetV2: 1 };
/** Models with more weights than this are compared only with NNETC_FULL_ZOO=1 (see below). */
const BIG = 30_000_000;

function load(file: string) {
  const rel = path.join("models", file);
  return compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), memoryHost());
}

/** A random batch for a model's inputs: normal floats, or ids below 100 for integer inputs. */
function batchFor(m: IRModel, n: number, rng: Rng): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const inp of m.inputs) {
    const shape = [n, ...inp.shape.slice(1).map((d) => (typeof d === "number" ? d : 8))];
    const size = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: size }, () => (rng.next() * 2 - 1) * 1.5);
    out[inp.name] = inp.dtype.startsWith("i") ? tf.tensor(Int32Array.from(data, (v) => Math.floor(Math.abs(v) * 60)), shape, "int32") : tf.tensor(data, shape, "float32");
  }
  return out;
}

/** The largest |a − b| over two output tensors. */
function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.equal(a.shape, b.shape, "output shapes differ");
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

const report: string[] = [];

/** Export m with seeded weights, load it with tf.loadLayersModel, and compare outputs on a random batch. */
async function compare(m: IRModel, where: string, corrupt?: string): Promise<number> {
  const k = kerasModel(m);
  assert.ok(k.model, `${m.name}: ${k.diagnostics.map((d) => d.message).join("; ")}`);
  const rng = new Rng(11);
  const weights = initWeights(m.params, () => rng.next());
  // Random moving statistics, so that inference-mode batchnorm is exercised (fresh ones are 0 and 1).
  for (const p of m.params) if (p.role === "moving_mean" || p.role === "moving_variance") weights.get(p.name)!.assign(tf.tensor(Float32Array.from({ length: p.shape[0]! }, () => (p.role === "moving_mean" ? rng.next() - 0.5 : 0.5 + rng.next())), p.shape));
  const host = hostWeights(weights);
  if (corrupt) host[corrupt] = { ...host[corrupt]!, data: (host[corrupt]!.data as Float32Array).map((v) => v + 0.01) };
  const files = layersModelFiles(k.model!.topology, m.params.map((p) => [k.model!.weightNames[p.name]!, host[p.name]!]), "test");
  const json = JSON.parse(files.modelJson) as { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
  const keras = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0]!.weights, weightData: files.shard.buffer as ArrayBuffer }));
  const n = BATCH[m.name] ?? 2;
  const inputs = batchFor(m, n, rng);
  const ours = tf.tidy(() => run(m, weights, inputs, { training: false }).outputs);
  const theirs = keras.predict(m.inputs.map((i) => inputs[i.name]!)) as tf.Tensor | tf.Tensor[];
  const list = Array.isArray(theirs) ? theirs : [theirs];
  const worst = Math.max(...m.outputs.map((o, i) => maxDiff(ours[o.name]!, list[i]!)));
  if (!corrupt) {
    report.push(`${where} ${m.name}: exported, ${keras.layers.length} Keras layers, max |Δ| ${worst.toExponential(2)} (batch ${n})`);
    assert.ok(worst <= 1e-4, `${m.name}: outputs differ by ${worst}`);
  }
  tf.dispose([...Object.values(ours), ...list, ...Object.values(inputs)]);
  keras.dispose();
  for (const w of weights.values()) w.dispose();
  return worst;
}


test.before(async () => {
  await initBackend("wasm");
});

for (const f of files) {
  test(`tfjs-layers: models/${f} exports and loads with tf.loadLayersModel, or says which layer cannot`, async () => {
    const res = load(f);
    for (const m of res.module.models) {
      const k = kerasModel(m);
      if (!k.model) {
        assert.is(k.diagnostics.length, 1);
        assert.is(k.diagnostics[0]!.code, "NN6020");
        report.push(`${f} ${m.name}: not exported: ${k.diagnostics[0]!.message}`);
        continue;
      }
      const size = m.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
      if (size > BIG && !process.env.NNETC_FULL_ZOO) {
        // VGG16's 138M weights take minutes to draw, copy and load on a small machine: its layers are
        // checked to be ones TensorFlow.js registers (the same kinds the smaller models compare equal with).
        const layers = (k.model.topology.config as { layers: { class_name: string }[] }).layers;
        const known = tf.serialization.SerializationMap.getMap().classNameMap;
        for (const l of layers) assert.ok(l.class_name === "InputLayer" || l.class_name in known, `${l.class_name} is not a TensorFlow.js layer`);
        report.push(`${f} ${m.name}: exported, ${layers.length} Keras layers, ${(size / 1e6).toFixed(0)}M weights: outputs compared only with NNETC_FULL_ZOO=1`);
        continue;
      }
      await compare(m, f);
    }
  });
}

/** Every other op the table maps, in two small models beyond the zoo: each equals the interpreter. */
const KITCHEN = `
model Images {
  input image: f32[batch, 12, 12, 3]
  a = image -> zero_pad2d(1) -> conv2d(8, 3, stride: 2, activation: leaky_relu) -> batchnorm(scale: false)
  b = a -> depthwise_conv2d(3, padding: same, multiplier: 2, activation: elu) -> separable_conv2d(8, 3, padding: same, dilation: 2, activation: silu)
  c = b -> upsample2d(2) -> avg_pool2d(2, padding: same) -> conv2d(8, 1, activation: gelu)
  d = concat(a, c, axis: -1) -> max_pool2d(3, stride: 2, padding: same)
  e = (d * (d -> sigmoid)) + d -> transpose([0, 2, 1, 3]) -> global_max_pool2d -> dense(6, activation: tanh)
  f = a -> global_avg_pool2d -> dense(6, activation: relu6) -> layernorm -> softmax
  output y = e + f -> reshape([2, 3]) -> softmax(axis: 2) -> reshape([6]) -> elu -> leaky_relu(alpha: 0.1) -> gelu -> relu6
}

model Sequences {
  input ids: i32[batch, 7]
  input feats: f32[batch, 7, 4]
  x = ids -> embedding(100, 6)
  y = feats -> conv1d(6, 3, padding: same, dilation: 2, activation: relu) -> avg_pool1d(1)
  s = concat(x, y) -> lstm(5, return_sequences: true) -> gru(4, reset_after: false, return_sequences: true)
  t = s -> lstm(3, bidirectional: true, return_sequences: true) -> max_pool1d(2, padding: same) -> global_avg_pool1d
  u = x -> lstm(3, bidirectional: true) -> dropout(0.5) -> identity -> dense(2, activation: silu)
  output out = concat(t, u, y -> global_max_pool1d) -> dense(3)
}
`;

test("tfjs-layers: every mapped op (convolutions, pooling, norms, recurrent, merges, activations) equals the interpreter", async () => {
  const res = compile("kitchen.nnet", KITCHEN, memoryHost());
  assert.equal(res.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  for (const m of res.module.models) await compare(m, "kitchen.nnet");
});

test("tfjs-layers: PyTorch's explicit padding and ceil_mode on 1-D layers are NN6020 with the reason; their names still export", () => {
  const reason = (body: string) => {
    const res = compile("one.nnet", `model M {\n  input x: f32[batch, 12, 4]\n  output y = x -> ${body} -> flatten\n}\n`, memoryHost());
    assert.equal(res.diagnostics.map((d) => `${d.code} ${d.message}`), []);
    const k = kerasModel(res.module.models[0]!);
    return k.model ? "exported" : k.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ");
  };
  assert.match(reason("conv1d(4, 3, padding: [1, 0])"), /^NN6020 .*explicit padding \(PyTorch's padding=\) has no Keras form on a 1-D layer/);
  assert.match(reason("max_pool1d(3, stride: 2, padding: 1)"), /^NN6020 .*explicit padding .* on a 1-D layer/);
  assert.match(reason("avg_pool1d(2, ceil_mode: true)"), /^NN6020 .*no ceil_mode/);
  assert.match(reason("slice(0, step: 2)"), /^NN6020 /);
  assert.is(reason("conv1d(4, 3, padding: same) -> max_pool1d(2) -> avg_pool1d(2, padding: same)"), "exported");
});

test("tfjs-layers: the comparison sees a weight that is off by 0.01", async () => {
  const m = load("mlp.nnet").module.models[0]!;
  const worst = await compare(m, "mlp.nnet", m.params[0]!.name);
  assert.ok(worst > 1e-3, `a corrupted weight went unnoticed (max |Δ| ${worst})`);
});

test("tfjs-layers: which zoo models export (golden)", () => {
  console.log(report.join("\n"));
  if (process.env.NNETC_FULL_ZOO) return; // the golden lists the default run
  golden("spec/interop/tfjs_layers_zoo.txt", report.map((l) => l.replace(/max \|Δ\| \S+/, "max |Δ| ≤ 1e-4")).join("\n") + "\n");
});

test("tfjs-layers: the written folder loads back through loadTfjsWeights with the same weight names", async () => {
  const res = load("lenet5.nnet");
  const m = res.module.models[0]!;
  const rng = new Rng(3);
  const weights = initWeights(m.params, () => rng.next());
  const host = hostWeights(weights);
  const dir = mkdtempSync(path.join(tmpdir(), "nnetc-layers-"));
  try {
    writeLayersModel(dir, layersModelFiles(kerasModel(m).model!.topology, m.params.map((p) => [p.name, host[p.name]!]), "test"));
    const back = loadTfjsWeights(path.join(dir, "model.json"));
    assert.equal(Object.keys(back).sort(), m.params.map((p) => p.name).sort());
    for (const p of m.params) assert.equal(Array.from(back[p.name]!.data as Float32Array), Array.from(host[p.name]!.data as Float32Array), p.name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    for (const w of weights.values()) w.dispose();
  }
});

test("tfjs-layers: nnetc compile --target tfjs-layers -o DIR writes model.json and its shard", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "nnetc-layers-cli-"));
  try {
    const r = await runNode([path.join(ROOT, "dist/compiler/cli/main.js"), "compile", "models/mlp.nnet", "--target", "tfjs-layers", "-o", dir]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*model\.json/);
    assert.equal(readdirSync(dir).sort(), ["group1-shard1of1.bin", "model.json"]);
    const j = JSON.parse(readFileSync(path.join(dir, "model.json"), "utf8")) as { format: string; modelTopology: { class_name: string } };
    assert.is(j.format, "layers-model");
    assert.is(j.modelTopology.class_name, "Model");
    const bad = await runNode([path.join(ROOT, "dist/compiler/cli/main.js"), "compile", "models/mlp.nnet", "--target", "tfjs-layers"]);
    assert.is(bad.code, 2);
    assert.match(bad.stderr, /needs -o DIR/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
