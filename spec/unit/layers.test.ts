// Every layer kind runs forward and backward on the wasm backend with the same results as on the cpu
// backend, and the gradients of the main kinds agree with finite differences.
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { OpKind } from "../../compiler/ir/ops.js";
import { OPS } from "../../compiler/ir/ops.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { initBackend } from "../../runtime/backend.js";
import { initWeights } from "../../runtime/init.js";
import { run } from "../../runtime/interpret.js";
import { Rng } from "../../runtime/data/rng.js";
import { compileText, expectClean } from "../helpers.js";
import { CASES, inputsFor, modelOf } from "../op_cases.js";

/** Loss = Σ output · fixed random weights; returns the loss and the gradients of every trainable weight. */
function lossAndGrads(m: IRModel, backend: string, seed: number): { loss: number; grads: Map<string, Float32Array> } {
  tf.setBackend(backend);
  const rng = new Rng(seed);
  const weights = initWeights(m.params, () => rng.next());
  const raw = inputsFor(m, rng);
  const inputs = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.dtype)]));
  const trainable = m.params.filter((p) => p.trainable).map((p) => weights.get(p.name)!);
  const names = new Map(m.params.filter((p) => p.trainable).map((p) => [weights.get(p.name)!.name, p.name]));
  let loss = 0;
  const gradMap = new Map<string, Float32Array>();
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const { outputs, updates } = run(m, weights, inputs, { training: true, seed: () => 7 });
      for (const [, t] of updates) t.dispose();
      let total = tf.scalar(0);
      for (const o of Object.values(outputs)) {
        const mix = tf.tensor(Array.from({ length: o.size }, (_, i) => Math.sin(i + 1)), o.shape);
        total = tf.add(total, tf.sum(tf.mul(o, mix)));
      }
      return total as tf.Scalar;
    }, trainable);
    loss = value.dataSync()[0]!;
    for (const [k, g] of Object.entries(grads)) gradMap.set(names.get(k)!, Float32Array.from(g.dataSync() as Float32Array));
  });
  const res = { loss, grads: gradMap };
  for (const t of Object.values(inputs)) t.dispose();
  for (const w of weights.values()) w.dispose();
  return res;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst;
}

test.before(async () => {
  await initBackend("wasm");
});

test("every op the language has is covered by a case here", () => {
  const covered = new Set(CASES.map(([k]) => k));
  const missing = Object.keys(OPS).filter((k) => !OPS[k as OpKind].internal && !covered.has(k as OpKind));
  assert.equal(missing, []);
});

for (const [kind, src] of CASES) {
  test(`${kind}: forward and gradients on wasm equal the cpu backend's`, () => {
    const m = modelOf(src);
    const wasm = lossAndGrads(m, "wasm", 11);
    const cpu = lossAndGrads(m, "cpu", 11);
    assert.ok(Math.abs(wasm.loss - cpu.loss) <= 1e-3 * Math.max(1, Math.abs(cpu.loss)), `loss ${wasm.loss} vs ${cpu.loss}`);
    assert.ok(wasm.grads.size === m.params.filter((p) => p.trainable).length || m.params.length === 0);
    for (const [name, g] of cpu.grads) {
      const d = maxRelDiff(wasm.grads.get(name)!, g);
      assert.ok(d <= 1e-3, `${name}: gradients differ by ${d}`);
    }
    tf.setBackend("wasm");
  });
}

/** Central differences in float32 on a few weights of the model, compared with autodiff on wasm. */
function numericCheck(src: string): void {
  const m = modelOf(src);
  tf.setBackend("wasm");
  const { grads } = lossAndGrads(m, "wasm", 5);
  const rng = new Rng(5);
  const weights = initWeights(m.params, () => rng.next());
  const raw = inputsFor(m, rng);
  const inputs = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.dtype)]));
  const lossAt = () =>
    tf.tidy(() => {
      const { outputs } = run(m, weights, inputs, { training: false });
      let total = tf.scalar(0);
      for (const o of Object.values(outputs)) total = tf.add(total, tf.sum(tf.mul(o, tf.tensor(Array.from({ length: o.size }, (_, i) => Math.sin(i + 1)), o.shape))));
      return total.dataSync()[0]!;
    });
  const eps = 1e-2;
  for (const p of m.params.filter((q) => q.trainable)) {
    const v = weights.get(p.name)!;
    const base = Float32Array.from(v.dataSync() as Float32Array);
    for (const i of [0, Math.floor(base.length / 2), base.length - 1]) {
      const at = (delta: number) => {
        const w = Float32Array.from(base);
        w[i] = w[i]! + delta;
        v.assign(tf.tensor(w, v.shape));
        return lossAt();
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      v.assign(tf.tensor(base, v.shape));
      const auto = grads.get(p.name)![i]!;
      assert.ok(Math.abs(numeric - auto) <= 2e-2 * Math.max(1, Math.abs(auto)), `${p.name}[${i}]: autodiff ${auto}, finite differences ${numeric}`);
    }
  }
  for (const t of Object.values(inputs)) t.dispose();
  for (const w of weights.values()) w.dispose();
}

const NUMERIC: [string, string][] = [
  ["dense", `input x: f32[batch, 6]\n output y = x -> dense(4, activation: tanh)`],
  ["conv2d (stride 2, same)", `input x: f32[batch, 5, 5, 2]\n output y = x -> conv2d(3, 3, stride: 2, padding: same)`],
  ["depthwise_conv2d", `input x: f32[batch, 5, 5, 2]\n output y = x -> depthwise_conv2d(3, multiplier: 2)`],
  ["embedding", `input ids: i32[batch, 5]\n output y = ids -> embedding(9, 3)`],
  ["lstm", `input x: f32[batch, 3, 2]\n output y = x -> lstm(3)`],
  ["attention", `input x: f32[batch, 4, 4]\n output y = x -> attention(2, causal: true)`],
  ["groupnorm", `input x: f32[batch, 3, 2, 4]\n output y = x -> conv2d(4, 1) -> groupnorm(2)`],
  ["avg_pool2d (explicit padding, ceil_mode)", `input x: f32[batch, 5, 5, 2]\n output y = x -> conv2d(2, 1) -> avg_pool2d(2, stride: 2, padding: 1, ceil_mode: true)`],
  ["conv1d (explicit [left, right]) and avg_pool1d (padding, ceil_mode)", `input x: f32[batch, 6, 2]\n output y = x -> conv1d(2, 3, padding: [2, 1]) -> avg_pool1d(2, stride: 2, padding: 1, ceil_mode: true)`],
  ["slice (step)", `input x: f32[batch, 7, 2]\n output y = x -> dense(3) -> slice(1, -1, step: 2)`],
];

for (const [name, src] of NUMERIC) {
  test(`${name}: autodiff on wasm agrees with finite differences`, () => numericCheck(src));
}

/** Runs a one-op model on fixed inputs and weights (by role) on wasm; returns the output's values and shape. */
function forward(src: string, x: { data: number[]; shape: number[] }, roles: Record<string, number[]> = {}): { data: number[]; shape: number[] } {
  const m = modelOf(src);
  tf.setBackend("wasm");
  const weights = new Map(m.params.map((p) => [p.name, tf.variable(tf.tensor(roles[p.name.split("/").pop()!]!, p.shape))]));
  const input = tf.tensor(x.data, x.shape);
  const y = run(m, weights, { x: input }, { training: false }).outputs[m.outputs[0]!.name]!;
  const out = { data: Array.from(y.dataSync()), shape: y.shape };
  tf.dispose([y, input, ...weights.values()]);
  return out;
}

const near = (got: number[], want: number[], what: string) => assert.ok(got.length === want.length && got.every((v, i) => Math.abs(v - want[i]!) < 1e-4), `${what}: ${got} vs ${want}`);

test("groupnorm and instancenorm equal hand-computed values (γ [2, 1], β [0, 0.5])", () => {
  // One sample, two positions, two channels: [[1, 3], [5, 7]].
  const x = { data: [1, 3, 5, 7], shape: [1, 2, 2] };
  const w = { gamma: [2, 1], beta: [0, 0.5] };
  // One group: mean 4, variance (9 + 1 + 1 + 9) / 4 = 5 over all four values.
  const r5 = 1 / Math.sqrt(5 + 1e-5);
  near(forward(`input x: f32[batch, 2, 2]\n output y = x -> groupnorm(1)`, x, w).data, [2 * -3 * r5, -1 * r5 + 0.5, 2 * 1 * r5, 3 * r5 + 0.5], "groupnorm(1)");
  // One channel per group (= instancenorm): channel 0 is {1, 5}, channel 1 {3, 7}: each ±2 around its mean, variance 4.
  const r4 = 2 / Math.sqrt(4 + 1e-5);
  const inst = [2 * -r4, -r4 + 0.5, 2 * r4, r4 + 0.5];
  near(forward(`input x: f32[batch, 2, 2]\n output y = x -> groupnorm(2)`, x, w).data, inst, "groupnorm(2)");
  near(forward(`input x: f32[batch, 2, 2]\n output y = x -> instancenorm`, x, w).data, inst, "instancenorm");
});

test("slice, squeeze and expand_dims equal hand-computed values and shapes", () => {
  // x[0] = [[0, 1, 2], [3, 4, 5]] (2 steps × 3 features)
  const x = { data: [0, 1, 2, 3, 4, 5], shape: [1, 2, 3] };
  const sl = forward(`input x: f32[batch, 2, 3]\n output y = x -> slice(1, axis: -1)`, x);
  assert.equal(sl, { data: [1, 2, 4, 5], shape: [1, 2, 2] });
  assert.equal(forward(`input x: f32[batch, 2, 3]\n output y = x -> slice(-1)`, x), { data: [3, 4, 5], shape: [1, 1, 3] });
  assert.equal(forward(`input x: f32[batch, 2, 3]\n output y = x -> slice(0, -2, axis: 2)`, x), { data: [0, 3], shape: [1, 2, 1] });
  assert.equal(forward(`input x: f32[batch, 2, 3]\n output y = x -> slice(0, 1) -> squeeze(1)`, x), { data: [0, 1, 2], shape: [1, 3] });
  assert.equal(forward(`input x: f32[batch, 2, 3]\n output y = x -> expand_dims(-1)`, x).shape, [1, 2, 3, 1]);
  assert.equal(forward(`input x: f32[batch, 2, 3]\n output y = x -> expand_dims(1)`, x).shape, [1, 1, 2, 3]);
  // Steps, as Python's x[:, a:b:s]: y[0] = [0, 1, …, 9] along axis 1.
  const r = { data: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], shape: [1, 10, 1] };
  const step = (args: string) => forward(`input x: f32[batch, 10, 1]\n output y = x -> slice(${args})`, r);
  assert.equal(step("0, step: 3"), { data: [0, 3, 6, 9], shape: [1, 4, 1] });
  assert.equal(step("1, 9, step: 3"), { data: [1, 4, 7], shape: [1, 3, 1] });
  assert.equal(step("-4, step: 2"), { data: [6, 8], shape: [1, 2, 1] });
  assert.equal(step("2, -1, step: 10"), { data: [2], shape: [1, 1, 1] });
  assert.equal(forward(`input x: f32[batch, 2, 3]\n output y = x -> slice(0, axis: -1, step: 2)`, x), { data: [0, 2, 3, 5], shape: [1, 2, 2] });
});

test("1-D convolutions and pools with explicit padding and ceil_mode equal hand-computed values (PyTorch's)", () => {
  // x[0] = [1, 2, 3, 4, 5] along steps, one channel.
  const x = { data: [1, 2, 3, 4, 5], shape: [1, 5, 1] };
  const neg = { data: x.data.map((v) => -v), shape: x.shape };
  const op = (o: string) => `input x: f32[batch, 5, 1]\n output y = x -> ${o}`;
  // Kernel [1, 1] without bias: sums of neighbours over [0, 0, 1, 2, 3, 4, 5, 0] ([left, right] = [2, 1]).
  assert.equal(forward(op("conv1d(1, 2, padding: [2, 1], bias: false)"), x, { kernel: [1, 1] }), { data: [0, 1, 3, 5, 7, 9, 5], shape: [1, 7, 1] });
  assert.equal(forward(op("conv1d(1, 3, stride: 2, padding: 1, bias: false)"), x, { kernel: [1, 1, 1] }), { data: [3, 9, 9], shape: [1, 3, 1] });
  // Padding 1 each end: windows {0, 1}, {2, 3}, {4, 5}, divided by 2 (zeros counted).
  assert.equal(forward(op("avg_pool1d(2, stride: 2, padding: 1)"), x), { data: [0.5, 2.5, 4.5], shape: [1, 3, 1] });
  // ceil_mode: the last window {5} overhangs and divides by 1.
  assert.equal(forward(op("avg_pool1d(2, stride: 2, ceil_mode: true)"), x), { data: [1.5, 3.5, 5], shape: [1, 3, 1] });
  // Max: padding never wins, even over negative values.
  assert.equal(forward(op("max_pool1d(2, stride: 2, padding: 1)"), neg), { data: [-1, -2, -4], shape: [1, 3, 1] });
  assert.equal(forward(op("max_pool1d(2, stride: 2, ceil_mode: true)"), x), { data: [2, 4, 5], shape: [1, 3, 1] });
  // PyTorch's rule: padding 1 + ceil would give ceil((5 + 2 - 2) / 2) + 1 = 4 windows, the last starting in the trailing padding: 3.
  assert.equal(forward(op("max_pool1d(2, stride: 2, padding: 1, ceil_mode: true)"), x), { data: [1, 3, 5], shape: [1, 3, 1] });
});

test("pools with explicit padding and ceil_mode equal hand-computed values (PyTorch's: −∞ for max, zeros counted for avg)", () => {
  // x[0] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], one channel.
  const x = { data: [1, 2, 3, 4, 5, 6, 7, 8, 9], shape: [1, 3, 3, 1] };
  const neg = { data: x.data.map((v) => -v), shape: x.shape };
  const pool = (op: string) => `input x: f32[batch, 3, 3, 1]\n output y = x -> ${op}`;
  // Padding 1 around: windows {1}, {2, 3}, {4, 7}, {5, 6, 8, 9}, each divided by 4.
  assert.equal(forward(pool("avg_pool2d(2, stride: 2, padding: 1)"), x), { data: [0.25, 1.25, 2.75, 7], shape: [1, 2, 2, 1] });
  // ceil_mode: the last window of each axis overhangs by one and divides by what is inside.
  assert.equal(forward(pool("avg_pool2d(2, stride: 2, ceil_mode: true)"), x), { data: [3, 4.5, 7.5, 9], shape: [1, 2, 2, 1] });
  // Max: padding never wins, even over negative values (zeros would give 0 in the corner).
  assert.equal(forward(pool("max_pool2d(2, stride: 2, padding: 1)"), neg), { data: [-1, -2, -4, -5], shape: [1, 2, 2, 1] });
  assert.equal(forward(pool("max_pool2d(2, stride: 2, ceil_mode: true)"), x), { data: [5, 6, 8, 9], shape: [1, 2, 2, 1] });
  // PyTorch's rule: with padding 1, ceil((3 + 2 - 2) / 2) + 1 = 3 windows would start at 4, inside the trailing padding: 2.
  assert.equal(forward(pool("max_pool2d(2, stride: 2, padding: 1, ceil_mode: true)"), x).shape, [1, 2, 2, 1]);
});

/** PyTorch's max_pool2d / avg_pool2d (count_include_pad=True, ceil_mode) on one [h, w] channel, written out. */
function torchPool(kind: "max" | "avg", x: number[][], k: number, st: number, p: number, ceil: boolean): number[][] {
  const outSize = (n: number) => {
    let o = (ceil ? Math.ceil : Math.floor)((n + 2 * p - k) / st) + 1;
    if (ceil && (o - 1) * st >= n + p) o--;
    return o;
  };
  const [h, w] = [x.length, x[0]!.length];
  const win = (o: number, n: number) => {
    const start = o * st - p;
    const end = Math.min(start + k, n + p);
    return { from: Math.max(start, 0), to: Math.min(end, n), count: end - start };
  };
  return Array.from({ length: outSize(h) }, (_, i) =>
    Array.from({ length: outSize(w) }, (_, j) => {
      const [a, b] = [win(i, h), win(j, w)];
      let acc = kind === "max" ? -Infinity : 0;
      for (let r = a.from; r < a.to; r++) for (let c = b.from; c < b.to; c++) acc = kind === "max" ? Math.max(acc, x[r]![c]!) : acc + x[r]![c]!;
      return kind === "max" ? acc : acc / (a.count * b.count);
    }),
  );
}

test("property: max_pool2d and avg_pool2d with explicit padding and ceil_mode compute PyTorch's pooling, at the shapes the shape rule says", () => {
  const config = fc.record({ kind: fc.constantFrom("max" as const, "avg" as const), h: fc.integer({ min: 1, max: 8 }), w: fc.integer({ min: 1, max: 8 }), k: fc.integer({ min: 1, max: 4 }), st: fc.integer({ min: 1, max: 3 }), p: fc.integer({ min: 0, max: 2 }), ceil: fc.boolean(), seed: fc.integer({ min: 1, max: 1000 }) });
  let ran = 0;
  fc.assert(
    fc.property(config, ({ kind, h, w, k, st, p, ceil, seed }) => {
      const r = compileText(`model M {\n input x: f32[batch, ${h}, ${w}, 1]\n output y = x -> ${kind}_pool2d(${k}, stride: ${st}, padding: ${p}, ceil_mode: ${ceil})\n}`);
      const errors = r.diagnostics.filter((d) => d.severity === "error").map((d) => d.code);
      // Refused: padding over half the window (NN2019), a window larger than the padded input (NN3004).
      if (errors.length) {
        assert.ok((2 * p > k && errors[0] === "NN2019") || (h + 2 * p < k || w + 2 * p < k ? errors[0] === "NN3004" : false), `${kind} ${h}×${w} k${k} s${st} p${p} ceil ${ceil}: ${errors}`);
        return;
      }
      const rng = new Rng(seed);
      const grid = Array.from({ length: h }, () => Array.from({ length: w }, () => rng.next() * 2 - 1));
      const want = torchPool(kind, grid, k, st, p, ceil);
      const got = forward(`input x: f32[batch, ${h}, ${w}, 1]\n output y = x -> ${kind}_pool2d(${k}, stride: ${st}, padding: ${p}, ceil_mode: ${ceil})`, { data: grid.flat(), shape: [1, h, w, 1] });
      assert.equal(got.shape, [1, want.length, want[0]!.length, 1]);
      assert.equal(r.module.models[0]!.nodes.find((n) => n.op === `${kind}_pool2d`)!.shape, ["batch", want.length, want[0]!.length, 1]);
      near(got.data, want.flat(), `${kind} ${h}×${w} k${k} s${st} p${p} ceil ${ceil}`);
      ran++;
    }),
    { seed: 7, numRuns: 150 },
  );
  assert.ok(ran > 50, `only ${ran} configurations compiled`);
});

/** PyTorch's max_pool1d / avg_pool1d (count_include_pad=True, ceil_mode) on one channel of n steps, written out. */
function torchPool1d(kind: "max" | "avg", x: number[], k: number, st: number, p: number, ceil: boolean): number[] {
  const n = x.length;
  let out = (ceil ? Math.ceil : Math.floor)((n + 2 * p - k) / st) + 1;
  if (ceil && (out - 1) * st >= n + p) out--;
  return Array.from({ length: out }, (_, o) => {
    const start = o * st - p;
    const end = Math.min(start + k, n + p);
    let acc = kind === "max" ? -Infinity : 0;
    for (let i = Math.max(start, 0); i < Math.min(end, n); i++) acc = kind === "max" ? Math.max(acc, x[i]!) : acc + x[i]!;
    return kind === "max" ? acc : acc / (end - start);
  });
}

test("property: max_pool1d and avg_pool1d with explicit padding and ceil_mode compute PyTorch's pooling, at the shapes the shape rule says", () => {
  const config = fc.record({ kind: fc.constantFrom("max" as const, "avg" as const), n: fc.integer({ min: 1, max: 12 }), k: fc.integer({ min: 1, max: 5 }), st: fc.integer({ min: 1, max: 4 }), p: fc.integer({ min: 0, max: 3 }), ceil: fc.boolean(), seed: fc.integer({ min: 1, max: 1000 }) });
  let ran = 0;
  fc.assert(
    fc.property(config, ({ kind, n, k, st, p, ceil, seed }) => {
      const body = `input x: f32[batch, ${n}, 1]\n output y = x -> ${kind}_pool1d(${k}, stride: ${st}, padding: ${p}, ceil_mode: ${ceil})`;
      const r = compileText(`model M {\n${body}\n}`);
      const errors = r.diagnostics.filter((d) => d.severity === "error").map((d) => d.code);
      // Refused: padding over half the window (NN2019), a window larger than the padded input (NN3004).
      if (errors.length) {
        assert.ok((2 * p > k && errors[0] === "NN2019") || (n + 2 * p < k && errors[0] === "NN3004"), `${kind} n${n} k${k} s${st} p${p} ceil ${ceil}: ${errors}`);
        return;
      }
      const rng = new Rng(seed);
      const xs = Array.from({ length: n }, () => rng.next() * 2 - 1);
      const want = torchPool1d(kind, xs, k, st, p, ceil);
      const got = forward(body, { data: xs, shape: [1, n, 1] });
      assert.equal(got.shape, [1, want.length, 1]);
      assert.equal(r.module.models[0]!.nodes.find((nd) => nd.op === `${kind}_pool1d`)!.shape, ["batch", want.length, 1]);
      near(got.data, want, `${kind} n${n} k${k} s${st} p${p} ceil ${ceil}`);
      ran++;
    }),
    { seed: 11, numRuns: 200 },
  );
  assert.ok(ran > 80, `only ${ran} configurations compiled`);
});

test("property: slice with a step keeps Python's x[a:b:s] entries", () => {
  const config = fc.record({ n: fc.integer({ min: 1, max: 12 }), a: fc.integer({ min: -12, max: 11 }), b: fc.option(fc.integer({ min: -12, max: 12 }), { nil: null }), s: fc.integer({ min: 1, max: 5 }) });
  let ran = 0;
  fc.assert(
    fc.property(config, ({ n, a, b, s }) => {
      const body = `input x: f32[batch, ${n}, 1]\n output y = x -> slice(${a}${b === null ? "" : `, ${b}`}, step: ${s})`;
      const r = compileText(`model M {\n${body}\n}`);
      const xs = Array.from({ length: n }, (_, i) => i);
      // Python's x[a:b:s], except that nnetc refuses out-of-range and empty slices (NN3017, NN2019) instead of clamping.
      const lo = a < 0 ? a + n : a;
      const hi = b === null ? n : b < 0 ? b + n : b;
      const valid = lo >= 0 && lo < n && hi >= 0 && hi <= n && hi > lo;
      const errors = r.diagnostics.filter((d) => d.severity === "error").map((d) => d.code);
      assert.is(errors.length === 0, valid, `${n} [${a}:${b}:${s}]: ${errors}`);
      if (!valid) return;
      const want = xs.filter((_, i) => i >= lo && i < hi && (i - lo) % s === 0);
      assert.equal(forward(body, { data: xs, shape: [1, n, 1] }), { data: want, shape: [1, want.length, 1] });
      ran++;
    }),
    { seed: 5, numRuns: 200 },
  );
  assert.ok(ran > 40, `only ${ran} slices compiled`);
});

test("random_normal_like: N(0, std²) noise of its input's shape while training or always, zeros otherwise, seeded", () => {
  const m = modelOf(`input x: f32[batch, 4000]\n output y = x -> random_normal_like(std: 0.5)\n output z = x -> random_normal_like(std: 0.5, always: true)`);
  tf.setBackend("wasm");
  const x = tf.ones([1, 4000]);
  const draw = (training: boolean, seed: number) => {
    const { outputs } = run(m, new Map(), { x }, { training, seed: () => seed });
    const out = { y: Array.from(outputs.y!.dataSync()), z: Array.from(outputs.z!.dataSync()) };
    tf.dispose(Object.values(outputs));
    return out;
  };
  const stats = (v: number[]) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) };
  };
  const train = draw(true, 3);
  for (const v of [train.y, train.z]) {
    const { mean, std } = stats(v);
    // 4000 draws: the mean's standard error is 0.5 / √4000 ≈ 0.008, the std's ≈ 0.006.
    assert.ok(Math.abs(mean) < 0.04 && Math.abs(std - 0.5) < 0.03, `mean ${mean}, std ${std}`);
  }
  assert.equal(draw(true, 3).y, train.y, "the same seed draws the same noise");
  assert.not.equal(draw(true, 4).y, train.y, "another seed draws other noise");
  const infer = draw(false, 3);
  assert.ok(infer.y.every((v) => v === 0), "zeros at inference");
  assert.ok(Math.abs(stats(infer.z).std - 0.5) < 0.03, "always: true draws at inference too");
  x.dispose();
});

test.run();
