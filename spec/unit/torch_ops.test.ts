// The PyTorch lowering of every op of the registry (GitHub issue 14), table-driven: CASES is a
// Record over OpKind, so an op added to compiler/ir/ops.ts without a case here does not compile, and a case
// whose model does not use its op fails. Each op's model is emitted by compiler/emit/torch.ts, run by the
// torch engine's process (runtime/torch/engine.py, Debian's python3-torch) on weights converted by
// runtime/torch_layout.ts, and compared with the interpreter on TensorFlow.js's cpu backend with the same
// non-trivial weights (random batchnorm statistics, biases, gammas) and inputs: max |Δ| ≤ 1e-5 · max |y|.
// Also: the state_dict conversion is the inverse of layout: torch loading, for every model here and in the zoo.
import * as tf from "@tensorflow/tfjs-core";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { emitTorch } from "../../compiler/emit/torch.js";
import { compile } from "../../compiler/index.js";
import { OPS, type OpKind } from "../../compiler/ir/ops.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { optimize } from "../../compiler/passes/index.js";
import { initBackend } from "../../runtime/backend.js";
import { decodeSafetensors, encodeSafetensors, type HostTensor } from "../../runtime/checkpoint/index.js";
import { Rng } from "../../runtime/data/rng.js";
import { run } from "../../runtime/interpret.js";
import { mapPretrained } from "../../runtime/pretrained.js";
import { TorchProcess } from "../../runtime/torch/process.js";
import { toTorchStateDict } from "../../runtime/torch_layout.js";
import { memoryHost, ROOT, runNode } from "../helpers.js";
import { nontrivialHost } from "./matrix.worker.js";
import { requireTorch } from "./torch_shared.js";

const TOLERANCE = 1e-5;

/** Each op's model: its body (inputs, layers, outputs), using that op. One entry per op kind, by type. */
const CASES: Record<Exclude<OpKind, "input">, string> = {
  constant: `input x: f32[batch, 5]
  output y = x * 2.5 + 1`,
  dense: `input x: f32[batch, 6]
  input s: f32[batch, 3, 6]
  output y = x -> dense(4, activation: gelu)
  output z = s -> dense(5, bias: false, activation: leaky_relu)
  output w = x -> dense(3, activation: softmax)`,
  tied_dense: `input ids: i32[batch, 5]
  layer t = embedding(11, 6)
  output y = ids -> t -> tied_dense(t, bias: true)
  output z = ids -> t -> tied_dense(t)`,
  parameter: `input x: f32[batch, 3, 4]
  output a = concat(x -> parameter([1, 4], init: normal), x, axis: 1)
  output b = x -> parameter(5) -> dense(2)`,
  conv1d: `input x: f32[batch, 9, 4]
  output a = x -> conv1d(6, 3, stride: 2, padding: same)
  output b = x -> conv1d(4, 3, padding: causal, dilation: 2, activation: relu)
  output c = x -> conv1d(6, 2, groups: 2, padding: same, activation: tanh)
  output d = x -> conv1d(4, 3, stride: 2, padding: 2)
  output e = x -> conv1d(6, 3, padding: [0, 3], dilation: 2, groups: 2)
  output f = x -> conv1d(3, 5, padding: [2, 1], activation: relu)`,
  conv2d: `input x: f32[batch, 9, 8, 4]
  output a = x -> conv2d(6, 3, stride: 2, padding: same, activation: relu6)
  output b = x -> conv2d(4, [2, 3], padding: same, dilation: 2, groups: 2, activation: silu)
  output c = x -> conv2d(5, 3, bias: false, activation: gelu)
  output d = x -> conv2d(3, 2, padding: same, activation: elu)
  output e = x -> conv2d(4, 3, stride: 2, padding: 1)
  output f = x -> conv2d(3, [3, 2], padding: [0, 1, 2, 1], dilation: 2)
  output g = x -> conv2d(4, 7, stride: 2, padding: 3, groups: 2)`,
  depthwise_conv2d: `input x: f32[batch, 9, 8, 3]
  output a = x -> depthwise_conv2d(3, stride: 2, padding: same, multiplier: 2)
  output b = x -> depthwise_conv2d([3, 2], dilation: 2, padding: same, activation: sigmoid)
  output c = x -> depthwise_conv2d(2, padding: same, bias: false)
  output d = x -> depthwise_conv2d(3, stride: 2, padding: 1)
  output e = x -> depthwise_conv2d(3, padding: [1, 2], dilation: 2)`,
  separable_conv2d: `input x: f32[batch, 9, 8, 3]
  output a = x -> separable_conv2d(5, 3, padding: same, multiplier: 2, activation: relu)
  output b = x -> separable_conv2d(3, 2, stride: 2)
  output c = x -> separable_conv2d(4, 2, padding: same, bias: false)
  output d = x -> separable_conv2d(3, 3, padding: [1, 0, 2, 1])`,
  max_pool1d: `input x: f32[batch, 9, 3]
  output a = x -> max_pool1d(2, padding: same)
  output b = x -> max_pool1d(3, stride: 2)
  output c = x -> max_pool1d(3, stride: 2, padding: 1)
  output d = x -> max_pool1d(2, stride: 2, ceil_mode: true)
  output e = x -> max_pool1d(2, stride: 2, padding: 1, ceil_mode: true)
  output f = x -> max_pool1d(4, stride: 3, padding: 2, ceil_mode: true)`,
  avg_pool1d: `input x: f32[batch, 9, 3]
  output a = x -> avg_pool1d(2, padding: same)
  output b = x -> avg_pool1d(3, stride: 2, padding: same)
  output c = x -> avg_pool1d(2)
  output d = x -> avg_pool1d(3, stride: 2, padding: 1)
  output e = x -> avg_pool1d(2, stride: 2, ceil_mode: true)
  output f = x -> avg_pool1d(2, stride: 2, padding: 1, ceil_mode: true)
  output g = x -> avg_pool1d(4, stride: 3, padding: 2, ceil_mode: true)`,
  max_pool2d: `input x: f32[batch, 7, 6, 3]
  output a = x -> max_pool2d(2, padding: same)
  output b = x -> max_pool2d(3, stride: [2, 1])
  output c = x -> max_pool2d([3, 2], stride: 2, padding: same)
  output d = x -> max_pool2d(3, stride: 2, padding: 1)
  output e = x -> max_pool2d(3, stride: 2, ceil_mode: true)
  output f = x -> max_pool2d(2, stride: 2, padding: 1, ceil_mode: true)
  output g = x -> max_pool2d([3, 2], stride: [2, 3], padding: [1, 1], ceil_mode: true)`,
  avg_pool2d: `input x: f32[batch, 7, 6, 3]
  output a = x -> avg_pool2d(2, padding: same)
  output b = x -> avg_pool2d(3, stride: [2, 1])
  output c = x -> avg_pool2d(3, stride: 2, padding: same)
  output d = x -> avg_pool2d(3, stride: 2, padding: 1)
  output e = x -> avg_pool2d(3, stride: 2, ceil_mode: true)
  output f = x -> avg_pool2d(2, stride: 2, padding: 1, ceil_mode: true)
  output g = x -> avg_pool2d([3, 2], stride: [2, 3], padding: [1, 1], ceil_mode: true)`,
  global_avg_pool1d: `input x: f32[batch, 5, 3]
  output y = x -> global_avg_pool1d`,
  global_max_pool1d: `input x: f32[batch, 5, 3]
  output y = x -> global_max_pool1d`,
  global_avg_pool2d: `input x: f32[batch, 4, 5, 3]
  output y = x -> global_avg_pool2d`,
  global_max_pool2d: `input x: f32[batch, 4, 5, 3]
  output y = x -> global_max_pool2d`,
  zero_pad2d: `input x: f32[batch, 4, 5, 3]
  output a = x -> zero_pad2d([1, 2])
  output b = x -> zero_pad2d(1)`,
  upsample2d: `input x: f32[batch, 3, 4, 2]
  output a = x -> upsample2d([2, 3])
  output b = x -> upsample2d`,
  batchnorm: `input x: f32[batch, 4, 5, 3]
  input v: f32[batch, 6]
  output a = x -> batchnorm
  output b = v -> batchnorm(center: false, scale: false, epsilon: 0.01)
  output c = v -> batchnorm(center: false)`,
  layernorm: `input x: f32[batch, 4, 6]
  output y = x -> layernorm(epsilon: 0.001)`,
  rmsnorm: `input x: f32[batch, 4, 6]
  output y = x -> rmsnorm(epsilon: 0.001)`,
  groupnorm: `input x: f32[batch, 3, 4, 6]
  input s: f32[batch, 5, 6]
  input v: f32[batch, 6]
  output a = x -> groupnorm(3)
  output b = s -> groupnorm(2, epsilon: 0.01)
  output c = v -> groupnorm(1)`,
  instancenorm: `input x: f32[batch, 3, 4, 6]
  input s: f32[batch, 5, 6]
  output a = x -> instancenorm
  output b = s -> instancenorm(epsilon: 0.01)`,
  dropout: `input x: f32[batch, 6]
  output y = x -> dropout(0.3) -> dense(2)`,
  embedding: `input ids: i32[batch, 5]
  output y = ids -> embedding(11, 4)`,
  pos_embedding: `input s: f32[batch, n <= 8, 4]
  output y = s -> pos_embedding(8)`,
  lstm: `input x: f32[batch, 5, 3]
  output a = x -> lstm(4)
  output b = x -> lstm(3, return_sequences: true, bidirectional: true)
  output c = x -> lstm(2, bidirectional: true)`,
  gru: `input x: f32[batch, 5, 3]
  output a = x -> gru(4)
  output b = x -> gru(3, return_sequences: true, bidirectional: true)
  output c = x -> gru(2, bidirectional: true)`,
  attention: `input s: f32[batch, 5, 8]
  input ctx: f32[batch, 4, 6]
  output a = s -> attention(2, causal: true)
  output b = attention(s, ctx, heads: 3, key_dim: 4, bias: false)
  output c = s -> attention(4, kv_heads: 2, rotary: true, causal: true, rope_theta: 100)`,
  flatten: `input x: f32[batch, 3, 4, 2]
  output y = x -> flatten`,
  reshape: `input x: f32[batch, n <= 6, 4]
  output a = x -> reshape([n, 2, 2])
  output b = x -> flatten -> reshape([-1, 2])`,
  transpose: `input x: f32[batch, 3, 4, 2]
  output y = x -> transpose([0, 3, 1, 2])`,
  concat: `input a: f32[batch, 3, 4]
  input b: f32[batch, 2, 4]
  output y = concat(a, b, axis: 1)
  output z = concat(a, a, axis: -1)`,
  slice: `input x: f32[batch, 3, 4, 5]
  input s: f32[batch, seq <= 6, 4]
  output a = x -> slice(1, 3)
  output b = x -> slice(-3, axis: -1)
  output c = x -> slice(0, -1, axis: 2)
  output d = s -> slice(1, axis: 1)
  output e = s -> slice(-2, -1)
  output f = s -> slice(1, -2)
  output g = x -> slice(0, step: 2)
  output h = x -> slice(-4, -1, axis: -1, step: 2)
  output i = s -> slice(1, axis: 1, step: 3)
  output j = x -> slice(0, 5, axis: 3, step: 4)`,
  squeeze: `input x: f32[batch, 3, 1, 4]
  output a = x -> squeeze(2)
  output b = x -> reduce_sum(axis: -1, keepdims: true) -> squeeze(-1)`,
  expand_dims: `input x: f32[batch, 3, 4]
  output a = x -> expand_dims(1)
  output b = x -> expand_dims(-1)
  output c = x -> expand_dims(2) -> concat(x -> expand_dims(2), axis: 2)`,
  take: `input x: f32[batch, 3, 4]
  output a = x -> take(-1)
  output b = x -> take(2, axis: 2)`,
  cast: `input x: f32[batch, 4]
  input ids: i32[batch, 4]
  output a = x * 5 -> cast(i32)
  output b = ids -> cast(f32)`,
  add: `input a: f32[batch, 3, 4]
  input b: f32[batch, 1, 4]
  output y = a + b`,
  sub: `input a: f32[batch, 3, 4]
  input b: f32[batch, 3, 1]
  output y = a - b`,
  mul: `input a: f32[batch, 3, 4]
  input b: f32[batch, 3, 4]
  output y = a * b`,
  div: `input a: f32[batch, 3, 4]
  input b: f32[batch, 3, 4]
  output y = a / (b * b + 1)`,
  matmul: `input a: f32[batch, 3, 4]
  input b: f32[batch, 5, 4]
  output y = a @ (b -> transpose([0, 2, 1]))`,
  relu: `input x: f32[batch, 6]
  output y = x -> relu`,
  relu6: `input x: f32[batch, 6]
  output y = x * 8 -> relu6`,
  gelu: `input x: f32[batch, 6]
  output a = x -> gelu
  output b = x -> gelu(approximate: true)`,
  silu: `input x: f32[batch, 6]
  output y = x -> silu`,
  sigmoid: `input x: f32[batch, 6]
  output y = x -> sigmoid`,
  tanh: `input x: f32[batch, 6]
  output y = x -> tanh`,
  softmax: `input x: f32[batch, 3, 4]
  output a = x -> softmax
  output b = x -> softmax(axis: 1)`,
  leaky_relu: `input x: f32[batch, 6]
  output y = x -> leaky_relu(alpha: 0.1)`,
  elu: `input x: f32[batch, 6]
  output a = x -> elu
  output b = x -> elu(alpha: 0.5)`,
  identity: `input x: f32[batch, 6]
  output y = x -> identity -> relu`,
  conv2d_transpose: `input x: f32[batch, 5, 4, 3]
  output a = x -> conv2d_transpose(4, 3, stride: 2)
  output b = x -> conv2d_transpose(2, [2, 3], stride: [2, 1], padding: same, activation: relu)
  output c = x -> conv2d_transpose(3, 1, stride: 3, padding: same, bias: false)
  output d = x -> conv2d_transpose(2, 3, stride: 2, padding: same)`,
  conv1d_transpose: `input x: f32[batch, 5, 3]
  output a = x -> conv1d_transpose(4, 3, stride: 2)
  output b = x -> conv1d_transpose(2, 3, stride: 2, padding: same, activation: relu)
  output c = x -> conv1d_transpose(3, 1, stride: 3, padding: same, bias: false)
  output d = x -> conv1d_transpose(2, 4, padding: same)`,
  sample_normal: `input x: f32[batch, 6]
  m = x -> dense(3)
  v = x -> dense(3)
  output y = sample_normal(m, v) -> tanh`,
  random_normal_like: `input x: f32[batch, 6]
  output y = x + random_normal_like(x, std: 0.5)
  output z = x -> dense(3) -> random_normal_like`,
  softplus: `input x: f32[batch, 6]
  output y = x -> softplus`,
  mish: `input x: f32[batch, 6]
  output y = x -> mish`,
  hardswish: `input x: f32[batch, 6]
  output y = x -> hardswish`,
  hardsigmoid: `input x: f32[batch, 6]
  output y = x -> hardsigmoid`,
  exp: `input x: f32[batch, 6]
  output y = x -> exp`,
  log: `input x: f32[batch, 6]
  output y = x -> softplus -> log`,
  sqrt: `input x: f32[batch, 6]
  output y = x -> exp -> sqrt`,
  abs: `input x: f32[batch, 6]
  output y = x -> abs`,
  neg: `input x: f32[batch, 6]
  output y = x -> neg`,
  square: `input x: f32[batch, 6]
  output y = x -> square`,
  pow: `input x: f32[batch, 6]
  output a = x -> sigmoid -> pow(exponent: 1.5)
  output b = x -> pow(exponent: 3)`,
  clip: `input x: f32[batch, 6]
  output y = x -> clip(min: -0.3, max: 0.4)`,
  reduce_mean: `input x: f32[batch, 3, 4, 2]
  output a = x -> reduce_mean(axis: [1, 2])
  output b = x -> reduce_mean(axis: -1, keepdims: true)`,
  reduce_sum: `input x: f32[batch, 3, 4, 2]
  output a = x -> reduce_sum(axis: [1, 3])
  output b = x -> reduce_sum(axis: 2, keepdims: true)`,
  reduce_max: `input x: f32[batch, 3, 4, 2]
  output a = x -> reduce_max(axis: [1, 2])
  output b = x -> reduce_max(axis: 1, keepdims: true)`,
  reduce_min: `input x: f32[batch, 3, 4, 2]
  output a = x -> reduce_min(axis: [2, 3])
  output b = x -> reduce_min(axis: -2, keepdims: true)`,
};

const SOURCE = Object.entries(CASES)
  .map(([op, body]) => `model Op_${op} {\n  ${body}\n}\n`)
  .join("\n");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-torch-ops-"));
let engine: TorchProcess | null = null;

function models(): IRModel[] {
  const res = compile("ops.nnet", SOURCE, memoryHost());
  assert.equal(res.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message} @${d.span.start}`), []);
  return optimize(res.module, { level: 0, mode: "train" }).module.models;
}

/** Seeded inputs in [-1.5, 1.5) (negative values matter to pools and activations), token ids below the vocabulary. */
function inputsFor(m: IRModel, rng: Rng): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const inp of m.inputs) {
    const shape = inp.shape.map((d, i) => (typeof d === "number" ? d : i === 0 ? 3 : Math.min(6, m.dims.find((x) => x.name === d)?.max ?? 6)));
    const n = shape.reduce((a, b) => a * b, 1);
    if (inp.dtype.startsWith("i")) out[inp.name] = { dtype: "I32", shape, data: Int32Array.from({ length: n }, () => Math.floor(rng.next() * 11)) };
    else out[inp.name] = { dtype: "F32", shape, data: Float32Array.from({ length: n }, () => 3 * rng.next() - 1.5) };
  }
  return out;
}

test.before(async () => {
  await initBackend("cpu");
});
test.after(async () => {
  await engine?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("torch ops: the project's Python has torch (Debian's python3-torch), and the engine starts", async () => {
  requireTorch();
  engine = await TorchProcess.start();
});

test("torch ops: every case's model uses its op", () => {
  const ms = models();
  for (const op of Object.keys(OPS) as OpKind[]) {
    if (op === "input") continue;
    const m = ms.find((x) => x.name === `Op_${op}`);
    assert.ok(m, `no model for ${op}`);
    assert.ok(m!.nodes.some((n) => n.op === op), `Op_${op} does not use ${op}`);
  }
});

test(`torch ops: every op's forward in PyTorch equals the interpreter on tfjs's cpu backend (max |Δ| ≤ ${TOLERANCE} · max |y|)`, async () => {
  assert.ok(engine, "the engine did not start");
  const ms = models();
  const r = emitTorch({ models: ms, datasets: [], plans: [] } as never, { displayPath: "ops.nnet", sourceText: () => SOURCE, version: "test", level: 0 });
  assert.equal(r.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  const py = path.join(dir, "ops.py");
  writeFileSync(py, r.text!);
  const failures: string[] = [];
  const rng = new Rng(5);
  for (const m of ms) {
    const host = nontrivialHost(m, 17);
    const inputs = inputsFor(m, rng);
    const vars = new Map(m.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape, "float32"), false)]));
    const feeds = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.data as Float32Array | Int32Array, v.shape, v.dtype === "I32" ? "int32" : "float32")]));
    const ref = tf.tidy(() => {
      const ys = run(m, vars, feeds, { training: false }).outputs;
      return Object.fromEntries(m.outputs.map((o) => [o.name, Array.from(ys[o.name]!.dataSync() as Float32Array)]));
    });
    tf.dispose(Object.values(feeds));
    for (const v of vars.values()) v.dispose();
    // The weights in PyTorch's names and layouts, the inputs as they are.
    const f32 = Object.fromEntries(Object.entries(host).map(([k, v]) => [k, { shape: v.shape, data: v.data as Float32Array }]));
    const sd: Record<string, HostTensor> = {};
    for (const [k, v] of toTorchStateDict(m.params, f32)) sd[k] = { dtype: "F32", shape: v.shape, data: v.data };
    const wFile = path.join(dir, `${m.name}.weights.safetensors`);
    const iFile = path.join(dir, `${m.name}.inputs.safetensors`);
    const oFile = path.join(dir, `${m.name}.outputs.safetensors`);
    writeFileSync(wFile, encodeSafetensors(sd));
    writeFileSync(iFile, encodeSafetensors(inputs));
    try {
      await engine!.request("load", { model: m.name, path: py, class: r.classes[m.name], weights: wFile });
      await engine!.request("forward", { model: m.name, inputs: iFile, outputs: oFile, training: false });
      await engine!.request("unload", { model: m.name });
    } catch (e) {
      failures.push(`${m.name}: ${(e as Error).message} (${((e as { frames?: string[] }).frames ?? []).join(" < ")})`);
      continue;
    }
    const got = decodeSafetensors(new Uint8Array(readFileSync(oFile))).tensors;
    for (const o of m.outputs) {
      const want = ref[o.name]!;
      const y = got[o.name];
      if (!y || y.data.length !== want.length) {
        failures.push(`${m.name}.${o.name}: ${y ? `${y.data.length} values, not ${want.length}` : "missing"}`);
        continue;
      }
      const scale = want.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(Number(y.data[i]) - want[i]!));
      if (Number.isNaN(worst) || worst > TOLERANCE * scale) failures.push(`${m.name}.${o.name}: max |Δ| ${worst} (max |y| ${scale})`);
      console.log(`    ${`${m.name}.${o.name}`.padEnd(26)} max |Δ| ${worst.toExponential(1)}  max |y| ${scale.toFixed(2)}`);
    }
  }
  assert.equal(failures, [], failures.join("\n"));
});

test("torch ops: random_normal_like draws N(0, std²) in PyTorch while training (and with always: true), zeros in eval mode", async () => {
  assert.ok(engine, "the engine did not start");
  const src = `model Noise {\n  input x: f32[batch, 2000]\n  output y = x -> random_normal_like(std: 0.5)\n  output z = x -> random_normal_like(std: 0.5, always: true)\n}\n`;
  const res = compile("noise.nnet", src, memoryHost());
  const ms = optimize(res.module, { level: 0, mode: "train" }).module.models;
  const r = emitTorch({ models: ms, datasets: [], plans: [] } as never, { displayPath: "noise.nnet", sourceText: () => src, version: "test", level: 0 });
  const py = path.join(dir, "noise.py");
  writeFileSync(py, r.text!);
  writeFileSync(path.join(dir, "noise.weights.safetensors"), encodeSafetensors({}));
  writeFileSync(path.join(dir, "noise.in.safetensors"), encodeSafetensors({ x: { dtype: "F32", shape: [2, 2000], data: new Float32Array(4000).fill(1) } }));
  await engine!.request("load", { model: "noise", path: py, class: r.classes.Noise, weights: path.join(dir, "noise.weights.safetensors") });
  const stats = (v: ArrayLike<number>) => {
    const a = Array.from(v, Number);
    const mean = a.reduce((x, y) => x + y, 0) / a.length;
    return { mean, std: Math.sqrt(a.reduce((x, y) => x + (y - mean) ** 2, 0) / a.length) };
  };
  for (const training of [true, false]) {
    const out = path.join(dir, `noise.${training}.safetensors`);
    await engine!.request("forward", { model: "noise", inputs: path.join(dir, "noise.in.safetensors"), outputs: out, training });
    const got = decodeSafetensors(new Uint8Array(readFileSync(out))).tensors;
    for (const name of training ? ["y", "z"] : ["z"]) {
      const { mean, std } = stats(got[name]!.data as Float32Array);
      assert.ok(Math.abs(mean) < 0.04 && Math.abs(std - 0.5) < 0.03, `${name} (training: ${training}): mean ${mean}, std ${std}`);
    }
    if (!training) assert.ok(Array.from(got.y!.data as Float32Array).every((v) => v === 0), "zeros in eval mode");
  }
  await engine!.request("unload", { model: "noise" });
});

test("torch ops: the state_dict conversion is the inverse of layout: torch loading (these models and the zoo)", () => {
  const zoo = ["mlp", "fashion_cnn", "lenet5", "autoencoder", "text_classifier", "mobilenet_v2", "resnet50", "bert_base", "gpt2_small", "vgg16", "fashion_transfer"];
  const all = [...models()];
  for (const z of zoo) {
    const res = compile(`models/${z}.nnet`, readFileSync(path.join(ROOT, "models", `${z}.nnet`), "utf8"), memoryHost());
    all.push(...res.module.models);
  }
  for (const m of all) {
    // Small random values per weight (the zoo's big models: only the shapes matter for names).
    const rng = new Rng(3);
    const weights = Object.fromEntries(m.params.map((p) => [p.name, { shape: [...p.shape], data: Float32Array.from({ length: Math.min(p.shape.reduce((a, b) => a * b, 1), 1 << 22) }, () => rng.next() - 0.5) }]));
    for (const p of m.params) if (weights[p.name]!.data.length !== p.shape.reduce((a, b) => a * b, 1)) weights[p.name] = { shape: [...p.shape], data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5) };
    const sd: Record<string, HostTensor> = {};
    for (const [k, v] of toTorchStateDict(m.params, weights)) sd[k] = { dtype: "F32", shape: v.shape, data: v.data };
    const back = mapPretrained(m.params, sd, { from: `${m.name}.safetensors`, layout: "torch", map: [], allowMissing: false, allowExtra: false });
    for (const p of m.params) {
      const a = back.weights[p.name]!.data as Float32Array;
      const b = weights[p.name]!.data;
      assert.equal(back.weights[p.name]!.shape, p.shape, `${m.name}: ${p.name}`);
      let same = a.length === b.length;
      for (let i = 0; same && i < a.length; i++) same = a[i] === b[i];
      assert.ok(same, `${m.name}: ${p.name} changed in the round trip`);
    }
  }
});

test("torch ops: nnetc compile --target pytorch writes the module, and --weights its state_dict, which loads strictly and computes what the interpreter does", async () => {
  assert.ok(engine, "the engine did not start");
  const file = path.join(ROOT, "models/fashion_cnn.nnet");
  const res = compile(file, readFileSync(file, "utf8"), memoryHost());
  const m = res.module.models[0]!;
  // A weights file in nnetc's names (as a run writes them), with non-trivial batchnorm statistics.
  const host = nontrivialHost(m, 23);
  const weights = path.join(dir, "cnn.safetensors");
  writeFileSync(weights, encodeSafetensors(host));
  const out = path.join(dir, "cli");
  mkdirSync(out);
  const cli = await runNode([path.join(ROOT, "dist/nnetc.mjs"), "compile", file, "--target", "pytorch", "-O2", "-o", out, "--weights", weights]);
  assert.is(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /wrote .*fashion_cnn\.py \(FashionCNN; -O2\)/);
  assert.match(cli.stdout, /wrote .*fashion_cnn\.FashionCNN\.safetensors \(\d+ tensors/);
  const rng = new Rng(9);
  const inputs = inputsFor(m, rng);
  writeFileSync(path.join(dir, "cnn.in.safetensors"), encodeSafetensors(inputs));
  await engine!.request("load", { model: "cli", path: path.join(out, "fashion_cnn.py"), class: "FashionCNN", weights: path.join(out, "fashion_cnn.FashionCNN.safetensors") });
  await engine!.request("forward", { model: "cli", inputs: path.join(dir, "cnn.in.safetensors"), outputs: path.join(dir, "cnn.out.safetensors"), training: false });
  const got = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, "cnn.out.safetensors")))).tensors;
  const vars = new Map(m.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape, "float32"), false)]));
  const x = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.data as Float32Array, v.shape, "float32")]));
  const want = tf.tidy(() => Array.from(run(m, vars, x, { training: false }).outputs[m.outputs[0]!.name]!.dataSync()));
  tf.dispose([...vars.values(), ...Object.values(x)]);
  const y = got[m.outputs[0]!.name]!.data;
  const scale = want.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  const worst = want.reduce((a, v, i) => Math.max(a, Math.abs(v - Number(y[i]))), 0);
  assert.ok(worst <= TOLERANCE * scale, `max |Δ| ${worst} (max |y| ${scale})`);
  // Usage errors: several files, -o - with --weights.
  const two = await runNode([path.join(ROOT, "dist/nnetc.mjs"), "compile", file, file, "--target", "pytorch"]);
  assert.is(two.code, 2);
  assert.match(two.stderr, /--target pytorch takes one file/);
  const dash = await runNode([path.join(ROOT, "dist/nnetc.mjs"), "compile", file, "--target", "pytorch", "-o", "-", "--weights", weights]);
  assert.is(dash.code, 2);
  assert.match(dash.stderr, /give -o DIR, not -o -/);
});

test.run();
