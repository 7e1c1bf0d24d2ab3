// Post-training weight quantization: int8 (symmetric, per output channel) and float16 round trips, and
// `nnetc compile --quantize` on a trained model: the file sizes, and eval/predict on the quantized weights.
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeSafetensors, toFloat32, type HostTensor } from "../../runtime/checkpoint/index.js";
import { dequantizeWeights, quantizeWeights } from "../../runtime/quantize.js";
import { ROOT, runNode } from "../helpers.js";

test("int8: per-channel symmetric, error at most half a step of each channel; float16: within float16 rounding", () => {
  const data = Float32Array.from({ length: 6 * 4 }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 4)));
  const host: Record<string, HostTensor> = { "d/kernel": { dtype: "F32", shape: [6, 4], data }, "d/bias": { dtype: "F32", shape: [4], data: Float32Array.of(0.1, -0.2, 0.3, 0.4) } };
  const q = quantizeWeights(host, "int8");
  assert.is(q["d/kernel"]!.dtype, "I8");
  assert.is(q["d/bias"]!.dtype, "F32", "biases stay float32");
  assert.equal(q["d/kernel:scale"]!.shape, [4]);
  const back = dequantizeWeights(q);
  assert.equal(Object.keys(back).sort(), ["d/bias", "d/kernel"], "scales are not weights");
  const scale = toFloat32(q["d/kernel:scale"]!);
  const k = toFloat32(back["d/kernel"]!);
  for (let i = 0; i < data.length; i++) assert.ok(Math.abs(k[i]! - data[i]!) <= scale[i % 4]! / 2 + 1e-7, `element ${i}`);
  const h = toFloat32(dequantizeWeights(quantizeWeights(host, "float16"))["d/kernel"]!);
  for (let i = 0; i < data.length; i++) assert.ok(Math.abs(h[i]! - data[i]!) <= Math.abs(data[i]!) * 2 ** -11 + 1e-7, `f16 element ${i}`);
});

test("nnetc compile --quantize int8|float16: smaller files that eval and predict read, with nearly the same results", async () => {
  const dir = path.join(ROOT, "dist/tmp-quantize");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let s = 21;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const rows = ["features,label"];
  for (let i = 0; i < 400; i++) {
    const x = Array.from({ length: 8 }, rand);
    rows.push(`${x.map((v) => v.toFixed(4)).join(" ")},${(x[0]! + x[1]! > 0 ? 1 : 0) + (x[2]! > x[3]! ? 2 : 0)}`);
  }
  writeFileSync(path.join(dir, "data.csv"), rows.join("\n") + "\n");
  writeFileSync(
    path.join(dir, "q.nnet"),
    `model Q {\n  input x: f32[batch, 8]\n  h = x -> dense(256, activation: relu) -> dense(256, activation: relu)\n  output logits = h -> dense(4)\n}\n` +
      `dataset d {\n  source csv("data.csv")\n  split test: 0.25, seed: 1\n  field x: f32[8] = features\n  field label: i32 = label\n}\n` +
      `train Q on d {\n  loss cross_entropy(logits, label)\n  metrics accuracy\n  optimizer adam(lr: 1e-2)\n  batch 32\n  epochs 8\n  seed 5\n}\n`,
  );
  const cli = (args: string[]) => runNode([path.join(ROOT, "dist/nnetc.mjs"), ...args]);
  const file = path.join(dir, "q.nnet");
  const trained = await cli(["train", file, "--out", path.join(dir, "run"), "--backend", "wasm"]);
  assert.is(trained.code, 0, trained.stderr);
  const [i8, f16, bad, none] = await Promise.all([
    cli(["compile", file, "--quantize", "int8", "--weights", path.join(dir, "run")]),
    cli(["compile", file, "--quantize", "float16", "--weights", path.join(dir, "run")]),
    cli(["compile", file, "--quantize", "int4", "--weights", path.join(dir, "run")]),
    cli(["compile", file, "--quantize", "int8"]),
  ]);
  assert.is(i8.code, 0, i8.stderr);
  assert.is(f16.code, 0, f16.stderr);
  assert.match(i8.stdout, /wrote .*q\.int8\.safetensors \(int8: [\d,]+ bytes, [\d.]+% of float32's [\d,]+\)/);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--quantize int4: choose int8 or float16/);
  assert.is(none.code, 2);
  assert.match(none.stderr, /--quantize needs --weights RUN/);
  const full = statSync(path.join(dir, "run/model.safetensors")).size;
  const int8 = statSync(path.join(dir, "q.int8.safetensors")).size;
  const half = statSync(path.join(dir, "q.float16.safetensors")).size;
  assert.ok(int8 / full <= 0.27, `int8 is ${((100 * int8) / full).toFixed(1)}% of float32`);
  assert.ok(half / full < 0.55, `float16 is ${((100 * half) / full).toFixed(1)}% of float32`);
  assert.is(decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, "q.int8.safetensors")))).metadata.quantized, "int8");
  const evalOf = async (w: string) => {
    const r = await cli(["eval", file, "--weights", w, "--json", "--backend", "wasm"]);
    assert.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").pop()!) as { loss: number; accuracy: number };
  };
  const [e32, e8, e16] = await Promise.all([evalOf(path.join(dir, "run")), evalOf(path.join(dir, "q.int8.safetensors")), evalOf(path.join(dir, "q.float16.safetensors"))]);
  assert.ok(e32.accuracy > 0.6, `the model learned something (${e32.accuracy})`);
  assert.ok(Math.abs(e8.accuracy - e32.accuracy) <= 0.03, `int8 accuracy ${e8.accuracy} vs ${e32.accuracy}`);
  assert.ok(Math.abs(e16.accuracy - e32.accuracy) <= 0.01, `float16 accuracy ${e16.accuracy} vs ${e32.accuracy}`);
  assert.ok(Math.abs(e16.loss - e32.loss) < 1e-2, `float16 loss ${e16.loss} vs ${e32.loss}`);
  rmSync(dir, { recursive: true, force: true });
});

test.run();
