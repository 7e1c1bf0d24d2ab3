// The LSTM and GRU of runtime/ops.ts (issue 17: one input matmul per sequence, a hand-written gradient
// and, on wasm, one kernel call per sequence each way) against PyTorch's nn.LSTM / nn.GRU: outputs and the gradients
// of Σ y·mix at the input, kernel, recurrent kernel and bias agree within 1e-5 · max |value|, for both
// directions (`reverse` against PyTorch on the time-flipped sequence), the last state and the whole
// sequence, on the wasm backend (the whole-sequence kernels) and the cpu backend (the same loop of tfjs
// ops); the whole-sequence kernels also against the per-step ones and autodiff, over random shapes.
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { initBackend } from "../../runtime/backend.js";
import { Rng } from "../../runtime/data/rng.js";
import * as ops from "../../runtime/ops.js";
import { PYTHON, requireTorch } from "./torch_shared.js";

const TOLERANCE = 1e-5;
const [B, T, F, H] = [3, 5, 4, 3];

// Reads a list of {kind, x, kernel, rec, bias, reverse, seq, mix} (Keras layouts) from stdin, prints y and the gradients of each.
const REFERENCE = String.raw`
import json, sys, torch
torch.set_default_dtype(torch.float64)
def case(a):
  B, T, F, H = a["shape"]
  x = torch.tensor(a["x"]).reshape(B, T, F).requires_grad_()
  k = torch.tensor(a["kernel"]).reshape(F, -1)
  r = torch.tensor(a["rec"]).reshape(H, -1)
  b = torch.tensor(a["bias"])
  lstm = a["kind"] == "lstm"
  def perm(t):  # Keras (z, r, h) <-> PyTorch (r, z, n) along the last axis (its own inverse); LSTM's (i, f, c, o) is PyTorch's
      return t if lstm else torch.cat([t[..., H:2*H], t[..., :H], t[..., 2*H:]], -1)
  cell = torch.nn.LSTM(F, H, batch_first=True) if lstm else torch.nn.GRU(F, H, batch_first=True)
  with torch.no_grad():
      cell.weight_ih_l0.copy_(perm(k).t()); cell.weight_hh_l0.copy_(perm(r).t())
      cell.bias_ih_l0.copy_(perm(b if lstm else b.reshape(2, -1)[0]))
      cell.bias_hh_l0.copy_(torch.zeros(4 * H) if lstm else perm(b.reshape(2, -1)[1]))
  xs = torch.flip(x, [1]) if a["reverse"] else x
  y, _ = cell(xs)
  if a["reverse"]: y = torch.flip(y, [1])
  y = y if a["seq"] else (y[:, 0] if a["reverse"] else y[:, -1])
  (y * torch.tensor(a["mix"]).reshape(y.shape)).sum().backward()
  gb = cell.bias_ih_l0.grad if lstm else torch.stack([cell.bias_ih_l0.grad, cell.bias_hh_l0.grad])
  return ({"y": y.detach().flatten().tolist(), "x": x.grad.flatten().tolist(), "kernel": perm(cell.weight_ih_l0.grad.t()).flatten().tolist(),
                    "rec": perm(cell.weight_hh_l0.grad.t()).flatten().tolist(), "bias": perm(gb).flatten().tolist()})
print(json.dumps([case(a) for a in json.load(sys.stdin)]))
`;

type Result = Record<"y" | "x" | "kernel" | "rec" | "bias", number[]>;

/** PyTorch's results for every input, in one Python process. */
function torchReference(inputs: object[]): Result[] {
  const r = spawnSync(PYTHON, ["-c", REFERENCE], { input: JSON.stringify(inputs), encoding: "utf8", timeout: 120_000 });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Result[];
}

function ours(kind: "lstm" | "gru", inp: { x: number[]; kernel: number[]; rec: number[]; bias: number[]; mix: number[] }, o: ops.RecurrentOptions, biasShape: number[]): Result {
  return tf.tidy(() => {
    const g = H * (kind === "lstm" ? 4 : 3);
    const x = tf.tensor(inp.x, [B, T, F]);
    const k = tf.tensor(inp.kernel, [F, g]);
    const r = tf.tensor(inp.rec, [H, g]);
    const b = tf.tensor(inp.bias, biasShape);
    const f = (x: tf.Tensor, k: tf.Tensor, r: tf.Tensor, b: tf.Tensor) => (kind === "lstm" ? ops.lstm : ops.gru)(x, { kernel: k, recurrentKernel: r, bias: b }, o);
    const y = f(x, k, r, b);
    const grads = tf.grads((x, k, r, b) => tf.sum(tf.mul(f(x, k, r, b), tf.tensor(inp.mix, y.shape))))([x, k, r, b]);
    const arr = (t: tf.Tensor) => Array.from(t.dataSync());
    return { y: arr(y), x: arr(grads[0]!), kernel: arr(grads[1]!), rec: arr(grads[2]!), bias: arr(grads[3]!) };
  });
}

const CASES: { kind: "lstm" | "gru"; reverse: boolean; seq: boolean; resetAfter?: boolean }[] = [
  { kind: "lstm", reverse: false, seq: false },
  { kind: "lstm", reverse: false, seq: true },
  { kind: "lstm", reverse: true, seq: true },
  { kind: "lstm", reverse: true, seq: false },
  { kind: "gru", reverse: false, seq: true },
  { kind: "gru", reverse: true, seq: false },
];

const inputs = CASES.map((c, n) => {
  const rng = new Rng(11 + n);
  const u = (k: number, s = 1) => Array.from({ length: k }, () => (rng.next() * 2 - 1) * s);
  const g = H * (c.kind === "lstm" ? 4 : 3);
  const biasShape = c.kind === "lstm" ? [g] : [2, g];
  return { biasShape, x: u(B * T * F, 2), kernel: u(F * g, 0.8), rec: u(H * g, 0.8), bias: u(biasShape.reduce((a, b) => a * b), 0.5), mix: u(B * (c.seq ? T : 1) * H) };
});
let wanted: Result[] = [];

test.before(async () => {
  requireTorch();
  await initBackend("wasm");
  wanted = torchReference(CASES.map((c, n) => ({ ...inputs[n]!, kind: c.kind, shape: [B, T, F, H], reverse: c.reverse, seq: c.seq })));
});

CASES.forEach((c, n) => {
  test(`${c.kind} (${c.reverse ? "backward" : "forward"}, ${c.seq ? "sequence" : "last state"}): outputs and gradients equal PyTorch's on wasm and cpu`, () => {
    const want = wanted[n]!;
    for (const backend of ["wasm", "cpu"]) {
      tf.setBackend(backend);
      const got = ours(c.kind, inputs[n]!, { units: H, returnSequences: c.seq, reverse: c.reverse, resetAfter: true }, inputs[n]!.biasShape);
      for (const key of Object.keys(want) as (keyof Result)[]) {
        const scale = Math.max(...want[key].map(Math.abs));
        const worst = Math.max(...got[key].map((v, i) => Math.abs(v - want[key][i]!)));
        assert.ok(got[key].length === want[key].length && worst <= TOLERANCE * scale, `${backend} ${key}: max |Δ| ${worst} > ${TOLERANCE} · ${scale}`);
      }
    }
    tf.setBackend("wasm");
  });
});

// The wasm whole-sequence kernels (runtime/kernels/lstm_seq.ts) against the per-step cell kernels, the
// forward composed under autodiff, and the cpu backend's composed loop: any shape (a single step, a single
// sample, one unit included), both directions, the last state and the whole sequence.
test("the LSTM's whole-sequence kernels equal the per-step and composed paths (outputs and gradients, any shape)", () => {
  const run = (impl: ops.LstmImpl, a: { T: number; B: number; F: number; H: number; reverse: boolean; seq: boolean }, v: Record<"x" | "k" | "r" | "b" | "mix", number[]>) =>
    tf.tidy(() => {
      const x = tf.tensor3d(v.x, [a.T, a.B, a.F]);
      const [k, r, b] = [tf.tensor2d(v.k, [a.F, 4 * a.H]), tf.tensor2d(v.r, [a.H, 4 * a.H]), tf.tensor1d(v.b)];
      const f = (x: tf.Tensor, k: tf.Tensor, r: tf.Tensor, b: tf.Tensor) => ops.lstmTimeMajor(x as tf.Tensor3D, { kernel: k, recurrentKernel: r, bias: b }, a.H, a.seq, a.reverse, impl);
      const y = f(x, k, r, b);
      const g = tf.grads((x, k, r, b) => tf.sum(tf.mul(f(x, k, r, b), tf.tensor(v.mix, y.shape))))([x, k, r, b]);
      return [y, ...g].map((t) => Array.from(t.dataSync()));
    });
  const shape = fc.record({ T: fc.integer({ min: 1, max: 6 }), B: fc.integer({ min: 1, max: 4 }), F: fc.integer({ min: 1, max: 4 }), H: fc.integer({ min: 1, max: 5 }), reverse: fc.boolean(), seq: fc.boolean(), seed: fc.integer({ min: 1, max: 1 << 30 }) });
  fc.assert(
    fc.property(shape, (a) => {
      const rng = new Rng(a.seed);
      const u = (n: number, s = 1) => Array.from({ length: n }, () => (rng.next() * 2 - 1) * s);
      const v = { x: u(a.T * a.B * a.F, 2), k: u(a.F * 4 * a.H, 0.8), r: u(a.H * 4 * a.H, 0.8), b: u(4 * a.H, 0.5), mix: u((a.seq ? a.T : 1) * a.B * a.H) };
      tf.setBackend("wasm");
      const got = run("auto", a, v);
      const others: [string, number[][]][] = [["wasm cell", run("cell", a, v)]];
      // (Over one step the autodiff forward never uses the recurrent kernel, and tf.grads refuses it.)
      if (a.T > 1) others.push(["wasm autodiff", run("autodiff", a, v)]);
      tf.setBackend("cpu");
      others.push(["cpu", run("auto", a, v)]);
      tf.setBackend("wasm");
      for (const [name, want] of others) {
        want.forEach((w, n) => {
          const scale = Math.max(1e-6, ...w.map(Math.abs));
          const worst = Math.max(0, ...w.map((x, i) => Math.abs(x - got[n]![i]!)));
          assert.ok(w.length === got[n]!.length && worst <= 1e-5 * scale, `${name} [y, dx, dkernel, drec, dbias][${n}] ${JSON.stringify(a)}: max |Δ| ${worst} > 1e-5 · ${scale}`);
        });
      }
    }),
    { numRuns: 40, seed: 17 },
  );
});

test("a one-step GRU and LSTM (autodiff variant) have gradients (tfjs cannot differentiate a split into one part)", () => {
  tf.tidy(() => {
    const x = tf.randomNormal([2, 1, 3]);
    for (const backend of ["wasm", "cpu"]) {
      tf.setBackend(backend);
      const gru = { kernel: tf.randomNormal([3, 6]), recurrentKernel: tf.randomNormal([2, 6]), bias: tf.zeros([2, 6]) };
      const [dx] = tf.grads((x) => tf.sum(ops.gru(x, gru, { units: 2, returnSequences: true, reverse: false, resetAfter: true })))([tf.clone(x)]);
      assert.equal(dx!.shape, [2, 1, 3]);
      assert.ok(Array.from(dx!.dataSync()).some((v) => v !== 0) && Array.from(dx!.dataSync()).every(Number.isFinite));
    }
    tf.setBackend("wasm");
  });
});

test("an LSTM's gradient and forward pass leave no tensors behind (saved states are freed)", () => {
  const x = tf.randomNormal([2, 6, 3]);
  const w = { kernel: tf.randomNormal([3, 8]), recurrentKernel: tf.randomNormal([2, 8]), bias: tf.zeros([8]) };
  const before = tf.memory().numTensors;
  // The wasm kernels' own scratch buffers (backend data no Tensor refers to) are freed too.
  const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
  const beforeData = dataIds();
  tf.tidy(() => {
    tf.grads((x) => tf.sum(ops.lstm(x, w, { units: 2, returnSequences: true, reverse: true })))([x]);
    tf.grads((x) => tf.sum(ops.lstm(x, w, { units: 2, returnSequences: false, reverse: false })))([x]);
    ops.lstm(x, w, { units: 2, returnSequences: false, reverse: false });
  });
  assert.is(tf.memory().numTensors, before);
  assert.is(dataIds(), beforeData);
  tf.dispose([x, w.kernel, w.recurrentKernel, w.bias]);
});

test.run();
