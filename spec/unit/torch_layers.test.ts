// The weight-loading round trip for every layer kind with weights (GitHub issue 13). spec/interop/
// torch_layers.py (Debian's python3-torch, /usr/bin/python3) builds spec/interop/torch_layers.nnet's models
// from PyTorch's own modules with non-trivial weights, and writes their state_dicts under three kinds of
// names — the torch convention (module names = layer names), prefix map entries (nested as real checkpoints
// nest them, Hugging Face's attention.self / attention.output.dense split included) and one whole-tensor map
// entry per tensor — plus seeded inputs and PyTorch's outputs. Each form loads with `layout: torch` and the
// -O0 interpreter must reproduce every output within 1e-5 of its size (max(1, max |y|)). Which layer kinds have weights is not listed
// here: every op kind that owns weights in any model of models/ or spec/ must occur in torch_layers.nnet.
import * as tf from "@tensorflow/tfjs-core";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { initBackend } from "../../runtime/backend.js";
import { mapPretrained, readWeightsFile } from "../../runtime/pretrained.js";
import { run } from "../../runtime/interpret.js";
import { trainedWeights } from "../../runtime/train.js";
import { PYTHON, requireTorch } from "./torch_shared.js";
import { memoryHost, nnetFilesUnder, ROOT } from "../helpers.js";

const NNET = "spec/interop/torch_layers.nnet";
const TOLERANCE = 1e-5;
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-torch-layers-"));

type Json = { shape: number[]; data: number[] };
let maps: Record<"prefix" | "whole", Record<string, string[]>>;
let inputs: Record<string, Record<string, Json>>;
let outputs: Record<string, Record<string, Json>>;

const models = (): IRModel[] => {
  const res = compile(NNET, readFileSync(path.join(ROOT, NNET), "utf8"), memoryHost());
  assert.equal(res.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  return res.module.models;
};

test.before(async () => {
  await initBackend("wasm");
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("torch layers: the project's Python has torch, and the script writes the three forms", () => {
  requireTorch();
  const r = spawnSync(PYTHON, [path.join(ROOT, "spec/interop/torch_layers.py"), dir], { encoding: "utf8", timeout: 120_000 });
  assert.is(r.status, 0, r.stderr);
  const read = (f: string) => JSON.parse(readFileSync(path.join(dir, f), "utf8"));
  maps = read("maps.json");
  inputs = read("inputs.json");
  outputs = read("outputs.json");
});

test("torch layers: every op kind that owns weights in models/ or spec/ is in the round trip", () => {
  const withWeights = (ms: IRModel[]) => new Set(ms.flatMap((m) => m.nodes.filter((n) => m.params.some((p) => p.layer === n.name)).map((n) => n.op)));
  const everywhere = new Set<string>();
  for (const f of [...nnetFilesUnder("models"), ...nnetFilesUnder("spec")]) {
    const res = compile(f, readFileSync(path.join(ROOT, f), "utf8"), memoryHost());
    if (!res.diagnostics.some((d) => d.severity === "error")) for (const op of withWeights(res.module.models)) everywhere.add(op);
  }
  const here = withWeights(models());
  assert.equal([...everywhere].filter((op) => !here.has(op)).sort(), [], "op kinds with weights missing from spec/interop/torch_layers.nnet");
  console.log(`    ${here.size} layer kinds with weights: ${[...here].sort().join(", ")}`);
});

for (const form of ["convention", "prefix", "whole"] as const) {
  test(`torch layers: ${form} names load with layout: torch and reproduce PyTorch's outputs within ${TOLERANCE}`, () => {
    for (const m of models()) {
      const file = path.join(dir, `${form}.${m.name}.safetensors`);
      const entries = form === "convention" ? [] : maps[form][m.name];
      if (!entries) {
        assert.is(m.name, "Packed", "only nn.MultiheadAttention's packed in_proj has no whole-tensor form");
        continue;
      }
      const map = entries.map((e) => {
        const [from, to] = e.split(" -> ");
        return { from: from!, to: to! };
      });
      const r = mapPretrained(m.params, readWeightsFile(file, "init"), { from: file, layout: "torch", map, allowMissing: false, allowExtra: false });
      assert.equal(r.missing, []);
      assert.ok(r.ignored.every((n) => n.endsWith("num_batches_tracked")), `ignored: ${r.ignored.join(", ")}`);
      const weights = trainedWeights(m.params, { weights: r.weights, from: file });
      const feeds = Object.fromEntries(m.inputs.map((i) => [i.name, tf.tensor(inputs[m.name]![i.name]!.data, inputs[m.name]![i.name]!.shape, i.dtype === "i32" ? "int32" : "float32")]));
      try {
        const got = tf.tidy(() => {
          const ys = run(m, weights, feeds, { training: false }).outputs;
          return Object.fromEntries(Object.entries(ys).map(([k, v]) => [k, v.dataSync() as Float32Array]));
        });
        for (const o of m.outputs) {
          const want = outputs[m.name]![o.name]!;
          const y = got[o.name]!;
          assert.is(y.length, want.data.length, `${m.name}.${o.name}: size`);
          let worst = 0;
          for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i]! - want.data[i]!));
          const scale = want.data.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
          console.log(`    ${form.padEnd(10)} ${`${m.name}.${o.name}`.padEnd(20)} max |Δ| ${worst.toExponential(1)}  (max |y| ${scale.toFixed(2)})`);
          assert.ok(worst <= TOLERANCE * Math.max(1, scale), `${form}: ${m.name}.${o.name} differs from PyTorch's by ${worst} (max |y| ${scale})`);
        }
      } finally {
        tf.dispose(Object.values(feeds));
        for (const w of weights.values()) w.dispose();
      }
    }
  });
}

test.run();
