// The PyTorch round trip against a real engine. spec/interop/torch_roundtrip.py (Debian's python3-torch,
// /usr/bin/python3) trains a small CNN, writes its state_dict as safetensors in PyTorch's layout, test
// inputs and PyTorch's outputs; spec/interop/torchnet.nnet, the same architecture, loads the weights with
// its plan's `init … layout: torch` and must reproduce the outputs within 1e-4, then fine-tunes with the
// plan's phase (a frozen block) through `nnetc train`. Without torch the test fails and says how to get it.
import * as tf from "@tensorflow/tfjs-core";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { initBackend } from "../../runtime/backend.js";
import { decodeSafetensors, type HostTensor } from "../../runtime/checkpoint/index.js";
import { RunError } from "../../runtime/errors.js";
import { run } from "../../runtime/interpret.js";
import { mapPretrained, readWeightsFile, type InitSpec } from "../../runtime/pretrained.js";
import { trainedWeights } from "../../runtime/train.js";
import { PYTHON, requireTorch } from "./torch_shared.js";
import { memoryHost, ROOT, runNode } from "../helpers.js";
import { irProblems } from "../ir-schema.js";

const NNET = path.join(ROOT, "spec/interop/torchnet.nnet");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-torch-"));
let meta: { input_shape: number[]; output_shape: number[]; loss_first: number; loss_last: number; loss_eval: number; torch: string };

function f32(file: string): Float32Array {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

function model() {
  const res = compile(path.join(dir, "torchnet.nnet"), readFileSync(NNET, "utf8"), memoryHost());
  assert.equal(res.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  return { m: res.module.models[0]!, plan: res.module.plans[0]! };
}

test.before(async () => {
  await initBackend("wasm");
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test("torch: the project's Python has torch, and the script trains and writes the weights", () => {
  requireTorch();
  copyFileSync(NNET, path.join(dir, "torchnet.nnet"));
  const r = spawnSync(PYTHON, [path.join(ROOT, "spec/interop/torch_roundtrip.py"), dir], { encoding: "utf8", timeout: 120_000 });
  assert.is(r.status, 0, r.stderr);
  meta = JSON.parse(readFileSync(path.join(dir, "meta.json"), "utf8")) as typeof meta;
  assert.ok(meta.loss_last < meta.loss_first, `PyTorch's loss should fall: ${meta.loss_first} → ${meta.loss_last}`);
});

test("torch: the .nnet model with PyTorch's weights (layout: torch) reproduces PyTorch's outputs within 1e-4", () => {
  const { m, plan } = model();
  const init = { ...plan.init!, from: path.join(dir, plan.init!.from) };
  const mapped = mapPretrained(m.params, readWeightsFile(init.from, "init"), init);
  assert.equal(mapped.missing, []);
  assert.equal(mapped.ignored, ["bn1.num_batches_tracked", "bn2.num_batches_tracked"]);
  const weights = trainedWeights(m.params, { weights: mapped.weights, from: init.from });
  const x = tf.tensor(f32(path.join(dir, "input.f32")), meta.input_shape);
  const want = f32(path.join(dir, "output.f32"));
  const got = tf.tidy(() => run(m, weights, { image: x }, { training: false }).outputs.logits!.dataSync() as Float32Array);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  const scale = Math.max(...Array.from(want, Math.abs));
  console.log(`PyTorch ${meta.torch} round trip: max |Δ| ${worst.toExponential(2)} over ${want.length} logits (largest |logit| ${scale.toFixed(2)})`);
  assert.ok(worst <= 1e-4, `outputs differ from PyTorch's by ${worst}`);
  x.dispose();
  for (const w of weights.values()) w.dispose();
});

test("torch: nnetc train continues from PyTorch's weights with the plan's phase, the frozen block unchanged", async () => {
  const out = path.join(dir, "run");
  const r = await runNode([path.join(ROOT, "dist/compiler/cli/main.js"), "train", path.join(dir, "torchnet.nnet"), "--out", out, "--backend", "wasm", "--json"], { timeoutMs: 120_000 });
  assert.is(r.code, 0, r.stderr + r.stdout);
  const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  const init = events.find((e) => e.event === "init")!;
  assert.is(init.loaded, 16);
  const epochs = events.filter((e) => typeof e.epoch === "number" && typeof e.loss === "number");
  assert.is(epochs.length, 2);
  // From PyTorch's weights the first epoch's loss is already near PyTorch's final one, far below a fresh start's.
  const first = epochs[0]!.loss as number;
  console.log(`fine-tune: PyTorch loss ${meta.loss_first.toFixed(3)} → ${meta.loss_last.toFixed(3)} (eval ${meta.loss_eval.toFixed(3)}); nnetc epochs ${epochs.map((e) => (e.loss as number).toFixed(3)).join(", ")}`);
  assert.ok(first < (meta.loss_first + meta.loss_eval) / 2, `first fine-tune epoch's loss ${first} is not near PyTorch's trained ${meta.loss_eval}`);
  const saved = decodeSafetensors(new Uint8Array(readFileSync(path.join(out, "model.safetensors")))).tensors;
  const { m, plan } = model();
  const start = mapPretrained(m.params, readWeightsFile(path.join(dir, "torchnet.safetensors"), "init"), { ...plan.init!, from: "torchnet.safetensors" }).weights;
  const same = (k: string) => Array.from(saved[k]!.data as Float32Array).every((v, i) => v === (start[k]!.data as Float32Array)[i]);
  for (const k of ["conv1/kernel", "conv1/bias", "bn1/gamma", "bn1/beta", "bn1/moving_mean", "bn1/moving_variance"]) assert.ok(same(k), `${k} is frozen and should stay PyTorch's`);
  for (const k of ["fc/kernel", "conv2/kernel", "dw/depthwise_kernel"]) assert.not.ok(same(k), `${k} should have been fine-tuned`);
});

test("torch: the plan's init lowers to IR that validates against spec/ir.schema.json", () => {
  const res = compile("torchnet.nnet", readFileSync(NNET, "utf8"), memoryHost());
  const init = res.module.plans[0]!.init!;
  assert.equal([init.from, init.layout, init.map.map((e) => `${e.from} -> ${e.to}`), init.allowMissing, init.allowExtra], ["torchnet.safetensors", "torch", ["classifier -> fc"], false, false]);
  assert.equal(irProblems(JSON.parse(JSON.stringify(res.module))), []);
});

// ── mapping errors: names, shapes, allowances ──────────────────────────────────────────────────────

const params = [
  { name: "conv/kernel", layer: "conv", role: "kernel", shape: [3, 3, 2, 4] },
  { name: "conv/bias", layer: "conv", role: "bias", shape: [4] },
  { name: "head/kernel", layer: "head", role: "kernel", shape: [4, 3] },
  { name: "head/bias", layer: "head", role: "bias", shape: [3] },
];
const t = (shape: number[], fill = (i: number) => i): HostTensor => ({ dtype: "F32", shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => fill(i)) });
const spec = (o: Partial<InitSpec> = {}): InitSpec => ({ from: "w.safetensors", layout: "torch", map: [], allowMissing: false, allowExtra: false, ...o });
const torchFile = () => ({ "conv.weight": t([4, 2, 3, 3]), "conv.bias": t([4]), "fc.weight": t([3, 4]), "fc.bias": t([3]) });

function fails(f: () => unknown, ...parts: RegExp[]): void {
  try {
    f();
  } catch (e) {
    assert.instance(e, RunError);
    for (const p of parts) assert.match((e as Error).message, p);
    return;
  }
  assert.unreachable("expected a RunError");
}

test("torch: map entries rename modules; OIHW and [out, in] become HWIO and [in, out]", () => {
  const r = mapPretrained(params, torchFile(), spec({ map: [{ from: "fc", to: "head" }] }));
  assert.equal(Object.keys(r.weights).sort(), ["conv/bias", "conv/kernel", "head/bias", "head/kernel"]);
  // conv.weight[o][i][h][w] = ((o·2 + i)·3 + h)·3 + w  →  kernel[h][w][i][o]
  const k = r.weights["conv/kernel"]!;
  assert.equal(k.shape, [3, 3, 2, 4]);
  assert.is(k.data[((1 * 3 + 2) * 2 + 1) * 4 + 3], ((3 * 2 + 1) * 3 + 1) * 3 + 2);
  const d = r.weights["head/kernel"]!;
  assert.equal(d.shape, [4, 3]);
  assert.is(d.data[1 * 3 + 2], 2 * 4 + 1); // fc.weight[2][1]
});

test("torch: missing, extra and mis-shaped tensors are errors that list the names and say what to do", () => {
  fails(() => mapPretrained(params, torchFile(), spec()), /2 of the model's 4 weights: head\/kernel, head\/bias/, /allow_missing/);
  fails(() => mapPretrained(params, { ...torchFile(), "fc.weight": t([3, 5]) }, spec({ map: [{ from: "fc", to: "head" }] })), /"fc\.weight" \[3, 5\] \(\[5, 3\] after converting the torch layout\) → "head\/kernel" needs \[4, 3\]/);
  fails(() => mapPretrained(params, { ...torchFile(), "aux.weight": t([2]) }, spec({ map: [{ from: "fc", to: "head" }] })), /1 tensor of the file match no weight of the model: aux\.weight/, /allow_extra/);
  const ok = mapPretrained(params, { "conv.weight": t([4, 2, 3, 3]), "aux.weight": t([2]) }, spec({ allowMissing: true, allowExtra: true }));
  assert.equal(ok.missing, ["conv/bias", "head/kernel", "head/bias"]);
  assert.equal(ok.ignored, ["aux.weight"]);
  // nnetc layout: names as they are, nothing transposed.
  fails(() => mapPretrained(params, { "conv/kernel": t([4, 2, 3, 3]) }, spec({ layout: "nnetc", allowMissing: true })), /"conv\/kernel" \[4, 2, 3, 3\] → "conv\/kernel" needs \[3, 3, 2, 4\]/);
});

test("torch: LSTM biases add up and GRU gates are reordered (r, z, n) → (z, r, h)", () => {
  const u = 2;
  const lstm = [
    { name: "rnn/kernel", layer: "rnn", role: "kernel", shape: [3, 4 * u] },
    { name: "rnn/recurrent_kernel", layer: "rnn", role: "recurrent_kernel", shape: [u, 4 * u] },
    { name: "rnn/bias", layer: "rnn", role: "bias", shape: [4 * u] },
  ];
  const r = mapPretrained(lstm, { "rnn.weight_ih_l0": t([4 * u, 3]), "rnn.weight_hh_l0": t([4 * u, u]), "rnn.bias_ih_l0": t([4 * u]), "rnn.bias_hh_l0": t([4 * u], () => 10) }, spec());
  assert.equal(Array.from(r.weights["rnn/bias"]!.data as Float32Array), [10, 11, 12, 13, 14, 15, 16, 17]);
  assert.equal(r.weights["rnn/kernel"]!.shape, [3, 4 * u]);
  const gru = [
    { name: "g/kernel", layer: "g", role: "kernel", shape: [3, 3 * u] },
    { name: "g/recurrent_kernel", layer: "g", role: "recurrent_kernel", shape: [u, 3 * u] },
    { name: "g/bias", layer: "g", role: "bias", shape: [2, 3 * u] },
  ];
  const g = mapPretrained(gru, { "g.weight_ih_l0": t([3 * u, 3]), "g.weight_hh_l0": t([3 * u, u]), "g.bias_ih_l0": t([3 * u]), "g.bias_hh_l0": t([3 * u], (i) => 10 + i) }, spec());
  assert.equal(Array.from(g.weights["g/bias"]!.data as Float32Array), [2, 3, 0, 1, 4, 5, 12, 13, 10, 11, 14, 15]);
});

test("torch: a whole-tensor map entry into an attention projection is transposed like any Linear (regression, issue 13)", () => {
  // Square [out, in] matrices: before the fix the shape check passed and the kernel stayed untransposed.
  const attn = ["query", "key", "value", "output"].flatMap((g) => [
    { name: `enc/attn/${g}/kernel`, layer: "enc/attn", role: `${g}/kernel`, shape: [3, 3] },
    { name: `enc/attn/${g}/bias`, layer: "enc/attn", role: `${g}/bias`, shape: [3] },
  ]);
  const hf = (p: string) => ({
    [`${p}.attention.self.query.weight`]: t([3, 3]), [`${p}.attention.self.query.bias`]: t([3]),
    [`${p}.attention.self.key.weight`]: t([3, 3]), [`${p}.attention.self.key.bias`]: t([3]),
    [`${p}.attention.self.value.weight`]: t([3, 3]), [`${p}.attention.self.value.bias`]: t([3]),
    [`${p}.attention.output.dense.weight`]: t([3, 3]), [`${p}.attention.output.dense.bias`]: t([3]),
  });
  const whole = ["query", "key", "value"].flatMap((g) => [`l0.attention.self.${g}.weight -> enc/attn/${g}/kernel`, `l0.attention.self.${g}.bias -> enc/attn/${g}/bias`]).concat(["l0.attention.output.dense.weight -> enc/attn/output/kernel", "l0.attention.output.dense.bias -> enc/attn/output/bias"]);
  const prefix = ["l0.attention.self -> enc/attn", "l0.attention.output.dense -> enc/attn/output"];
  for (const entries of [whole, prefix]) {
    const map = entries.map((e) => ({ from: e.split(" -> ")[0]!, to: e.split(" -> ")[1]! }));
    const r = mapPretrained(attn, hf("l0"), spec({ map }));
    for (const g of ["query", "key", "value", "output"]) {
      const k = r.weights[`enc/attn/${g}/kernel`]!;
      assert.is(k.data[0 * 3 + 1], 1 * 3 + 0, `${g}: kernel[0][1] = weight[1][0] (${entries === whole ? "whole-tensor" : "prefix"} entries)`);
    }
  }
  // nn.MultiheadAttention: in_proj_weight [3·E, E] is query, key and value; out_proj is the output.
  const packed = mapPretrained(attn, { "mha.in_proj_weight": t([9, 3]), "mha.in_proj_bias": t([9]), "mha.out_proj.weight": t([3, 3]), "mha.out_proj.bias": t([3]) }, spec({ map: [{ from: "mha", to: "enc/attn" }] }));
  assert.equal(Array.from(packed.weights["enc/attn/key/bias"]!.data as Float32Array), [3, 4, 5]);
  assert.is(packed.weights["enc/attn/value/kernel"]!.data[2 * 3 + 0], 6 * 3 + 2); // in_proj_weight[6 + 0][2]
});

test("torch: nnetc train --init-from with --map and --layout, and its usage errors", async () => {
  const cli = path.join(ROOT, "dist/compiler/cli/main.js");
  const bad = await runNode([cli, "train", NNET, "--map", "m.json"]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /go with --init-from FILE/);
  const mapFile = path.join(dir, "map.json");
  rmSync(mapFile, { force: true });
  const missing = await runNode([cli, "train", path.join(dir, "torchnet.nnet"), "--init-from", path.join(dir, "torchnet.safetensors"), "--layout", "torch", "--map", mapFile, "--out", path.join(dir, "run2"), "--backend", "wasm"]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /--map .*map\.json: no such file/);
  // Without the plan's map entry the classifier matches nothing: the error names it and the fix.
  const noMap = await runNode([cli, "train", path.join(dir, "torchnet.nnet"), "--init-from", path.join(dir, "torchnet.safetensors"), "--layout", "torch", "--map", path.join(ROOT, "spec/interop/empty-map.json"), "--out", path.join(dir, "run3"), "--backend", "wasm"]);
  assert.is(noMap.code, 2, noMap.stderr);
  assert.match(noMap.stderr, /no values for 2 of the model's 16 weights: fc\/kernel, fc\/bias/);
});

test("torch: any file contents either map or give a RunError (property)", () => {
  const name = fc.constantFrom("conv", "fc", "head", "conv.sub", "x", "rnn", "bn", "attn", "attn.query", "attn.out_proj", "sep.depthwise", "sep.pointwise", "sep");
  const role = fc.constantFrom("weight", "bias", "running_mean", "running_var", "num_batches_tracked", "weight_ih_l0", "bias_hh_l0_reverse", "kernel", "", "in_proj_weight", "in_proj_bias", "q_proj_weight");
  const shape = fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 4 });
  const file = fc.dictionary(fc.tuple(name, role).map(([a, b]) => (b ? `${a}.${b}` : a)), shape, { maxKeys: 8 });
  const opts = fc.record({ layout: fc.constantFrom("torch" as const, "nnetc" as const), allowMissing: fc.boolean(), allowExtra: fc.boolean(), map: fc.array(fc.record({ from: name, to: fc.constantFrom("conv", "head", "head/kernel", "nope", "attn", "attn/query", "attn/query/kernel", "sep", "rnn/bias") }), { maxLength: 3 }) });
  // Besides conv and head: an attention layer (roles with a module group), a separable conv, an LSTM.
  const all = [
    ...params,
    ...["query", "key", "value", "output"].flatMap((g) => [{ name: `attn/${g}/kernel`, layer: "attn", role: `${g}/kernel`, shape: [2, 2] }, { name: `attn/${g}/bias`, layer: "attn", role: `${g}/bias`, shape: [2] }]),
    { name: "sep/depthwise_kernel", layer: "sep", role: "depthwise_kernel", shape: [3, 3, 2, 1] },
    { name: "sep/pointwise_kernel", layer: "sep", role: "pointwise_kernel", shape: [1, 1, 2, 4] },
    { name: "sep/bias", layer: "sep", role: "bias", shape: [4] },
    { name: "rnn/kernel", layer: "rnn", role: "kernel", shape: [3, 8] },
    { name: "rnn/recurrent_kernel", layer: "rnn", role: "recurrent_kernel", shape: [2, 8] },
    { name: "rnn/bias", layer: "rnn", role: "bias", shape: [8] },
  ];
  fc.assert(
    fc.property(file, opts, (f, o) => {
      const tensors = Object.fromEntries(Object.entries(f).map(([k, s]) => [k, t(s)]));
      try {
        const r = mapPretrained(all, tensors, spec(o));
        for (const [k, v] of Object.entries(r.weights)) assert.equal(v.shape, all.find((p) => p.name === k)!.shape);
      } catch (e) {
        if (!(e instanceof RunError)) throw e;
      }
    }),
    { numRuns: 600, seed: 7 },
  );
});

test.run();
