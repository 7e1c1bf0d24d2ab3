// Engine "onnx" the way a browser runs it, checked in Node: a module as nnetc's bundler plugin makes it for a
// browser build (the emitted code plus the models' inference graphs, compiler/loader/plugin.ts's
// inferenceCode) is loaded with load/create(…, { engine: "onnx", ort }) on onnxruntime-web (its Node build: the
// same wasm kernels as in a page), so the session comes from the registered graph (runtime/onnx_session.ts),
// not from compiling the .nnet file again. Its outputs must be the tfjs engine's to 1e-5 and Node's own
// engine "onnx" (onnxruntime-node) ones; an int8 file given as bytes runs int8 behind DequantizeLinear.
// spec/unit/browser.test.ts runs the same path in Chromium.
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compileForImport } from "../../compiler/loader/hooks.js";
import { inferenceCode, pinSource } from "../../compiler/loader/plugin.js";
import { encodeSafetensors } from "../../runtime/checkpoint/safetensors.js";
import * as nn from "../../runtime/node.js";
import { quantizeWeights } from "../../runtime/quantize.js";
import { readHostWeights } from "../../runtime/steps.js";
import { fingerprint } from "../../runtime/weights.js";
import { ROOT } from "../helpers.js";

const TOLERANCE = 1e-5;
const OUT = path.join(ROOT, "dist/spec/tmp-onnx-web");

type Def = nn.ModelDef<Record<string, tf.Tensor>, Record<string, tf.Tensor>>;
interface Emitted {
  def: Def;
  create(o?: nn.CreateOptions): Promise<nn.Model<Record<string, tf.Tensor>, Record<string, tf.Tensor>>>;
}

/** models/NAME.nnet as the plugin makes it for a browser (its source pinned to the file, so Node's engine "onnx" finds it too), imported. */
async function browserModule(name: string): Promise<Emitted> {
  const file = path.join(ROOT, "models", `${name}.nnet`);
  const r = await compileForImport(file, { cache: false });
  const code = await inferenceCode(pinSource(r.code, file, "node"), file);
  mkdirSync(OUT, { recursive: true });
  // Inside the package, so that "nnetc/runtime" resolves (by self-reference) as in the bundle.
  const out = path.join(OUT, `${name}.mjs`);
  writeFileSync(out, code);
  return ((await import(pathToFileURL(out).href)) as { default: Emitted }).default;
}

const ortWeb = async () => (await import("onnxruntime-web")) as unknown;

/** Seeded inputs for a model's float inputs, batch 3. */
function inputsOf(def: Def): Record<string, tf.Tensor> {
  return Object.fromEntries(def.inputs.map((inp, i) => [inp.name, tf.randomUniform([3, ...inp.shape.slice(1).map(Number)], 0, 1, "float32", 11 + i)]));
}

function maxDiff(a: Record<string, tf.Tensor>, b: Record<string, tf.Tensor>): number {
  let worst = 0;
  for (const k of Object.keys(a)) {
    assert.ok(b[k], `output ${k}`);
    assert.equal(b[k]!.shape, a[k]!.shape, `output ${k}'s shape`);
    const x = a[k]!.dataSync();
    const y = b[k]!.dataSync();
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  return worst;
}

for (const name of ["mlp", "fashion_cnn"]) {
  test(`models/${name}.nnet: engine onnx on onnxruntime-web from the plugin's inference graph equals tfjs and onnxruntime-node (1e-5)`, async () => {
    const m = await browserModule(name);
    const tfjs = await m.create({ seed: 3, backend: "cpu" });
    const web = await m.create({ seed: 3, backend: "cpu", engine: "onnx", ort: await ortWeb() });
    const node = await m.create({ seed: 3, backend: "cpu", engine: "onnx" });
    const inputs = inputsOf(m.def);
    const want = nn.predict(tfjs, inputs);
    const got = await nn.predictAsync(web, inputs);
    const d = maxDiff(want, got);
    assert.ok(d <= TOLERANCE, `onnxruntime-web vs tfjs: ${d}`);
    const dn = maxDiff(await nn.predictAsync(node, inputs), got);
    assert.ok(dn <= TOLERANCE, `onnxruntime-web vs onnxruntime-node: ${dn}`);
    assert.ok(web.onnx!.stats.nodes > 0 && web.onnx!.stats.int8 === 0);
    console.log(`    ${name}: ${web.onnx!.stats.nodes} ONNX nodes, max |web - tfjs| ${d.toExponential(1)}, |web - node| ${dn.toExponential(1)}`);
    [tfjs, web, node].forEach((x) => nn.dispose(x));
  });
}

test("an int8 file given as bytes runs int8 behind DequantizeLinear on onnxruntime-web, as tfjs computes with the same weights (1e-5)", async () => {
  const m = await browserModule("mlp");
  const seeded = await m.create({ seed: 5, backend: "cpu" });
  const bytes = encodeSafetensors(quantizeWeights(await readHostWeights(seeded.weights), "int8"), { format: "nnetc", model: m.def.name, fingerprint: fingerprint(m.def), quantized: "int8" });
  const tfjs = await m.create({ weights: bytes, backend: "cpu" });
  const web = await m.create({ weights: bytes, backend: "cpu", engine: "onnx", ort: await ortWeb() });
  assert.is(web.onnx!.stats.int8, 2, "both kernels stay int8");
  const inputs = inputsOf(m.def);
  const d = maxDiff(nn.predict(tfjs, inputs), await nn.predictAsync(web, inputs));
  assert.ok(d <= TOLERANCE, `int8 on onnxruntime-web vs tfjs: ${d}`);
  console.log(`    mlp int8: 2 int8 kernels, max |web - tfjs| ${d.toExponential(1)}`);
  [seeded, tfjs, web].forEach((x) => nn.dispose(x));
});

test("an ort option that is no onnxruntime module is refused with what to pass", async () => {
  const m = await browserModule("mlp");
  const err = await m.create({ seed: 1, backend: "cpu", engine: "onnx", ort: { version: "1" } }).then(
    () => null,
    (e: Error) => `${e.constructor.name}: ${e.message}`,
  );
  assert.match(String(err), /RunError: engine "onnx": the ort option is not an onnxruntime module \(onnxruntime-node, onnxruntime-web\)/);
});

test.run();
