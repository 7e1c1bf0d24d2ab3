// The wasm training kernels (runtime/kernels): each compared with the cpu backend (or, where the cpu
// backend is wrong — depthwise backprops with dilation — with a reference built from the forward op
// by linearity), then gradients of conv2d / depthwiseConv2d / separableConv2d / gather on wasm
// against the cpu backend and against central finite differences.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as tf from "@tensorflow/tfjs-core";
// Gradients of tfjs-core's ops are registered by the union package's Node bundle (as in
// runtime/backend.ts); it also brings the cpu backend.
import "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { conv2DBackpropFilterWasm, registerWasmTrainingKernels, wasmTrainingKernelConfigs } from "../../runtime/kernels/index.js";

const test = suite("wasm training kernels");

type Backend = "wasm" | "cpu";
type Shape4 = [number, number, number, number];
type Pad = "same" | "valid" | number | tf.backend_util.ExplicitPadding;

// ---------------------------------------------------------------- helpers

/** Deterministic uniform values in [-1, 1) (mulberry32). */
function rand(shape: number[], seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(shape.reduce((p, x) => p * x, 1));
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296 * 2 - 1;
  }
  return out;
}

async function use(backend: Backend): Promise<void> {
  if (tf.engine().backendName !== backend) await tf.setBackend(backend);
}

/** Runs `f` on `backend` inside tidy and returns the values of its result(s) as float64 arrays. */
async function on(backend: Backend, f: () => tf.Tensor | tf.Tensor[]): Promise<Float64Array[]> {
  await use(backend);
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const values = list.map((t) => Float64Array.from(t.dataSync()));
  tf.dispose(list);
  return values;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** max |actual - expected| <= tol * max(1, max |expected|): absolute for small values, relative for large. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, label: string): void {
  assert.is(actual.length, expected.length, `${label}: length`);
  let worst = 0, at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= worst)) [worst, at] = [d, i]; // also catches NaN
  }
  const scale = Math.max(1, maxAbs(expected));
  assert.ok(worst <= tol * scale, `${label}: max diff ${worst} at ${at} (actual ${actual[at]}, expected ${expected[at]}) > ${tol} * ${scale}`);
}

const KERNEL_TOL = 1e-4;

/** The wasm backend's live data buffers (to check that kernels free their intermediates). */
const wasmDataIds = () => (tf.findBackend("wasm") as unknown as { numDataIds(): number }).numDataIds();

let previousBackend: string | null = null;
test.before(async () => {
  previousBackend = tf.engine().backendName; // null when no test file has initialised one
  registerWasmTrainingKernels();
  await tf.setBackend("wasm");
  await tf.ready();
});
test.after(async () => {
  if (previousBackend != null) await tf.setBackend(previousBackend);
});

// ---------------------------------------------------------------- registration

test("registerWasmTrainingKernels registers the missing kernels for wasm only, idempotently", () => {
  const names = ["Conv2DBackpropFilter", "DepthwiseConv2dNativeBackpropFilter", "DepthwiseConv2dNativeBackpropInput", "UnsortedSegmentSum", "Einsum", "NnetcLstmCell", "NnetcLstmCellGrad", "NnetcLstmSeq", "NnetcLstmSeqGrad"];
  assert.equal(wasmTrainingKernelConfigs.map((c) => c.kernelName), names);
  registerWasmTrainingKernels();
  registerWasmTrainingKernels(); // a second call must not throw ("already registered")
  for (const n of names) {
    assert.is(tf.getKernel(n, "wasm"), wasmTrainingKernelConfigs.find((c) => c.kernelName === n), n);
    assert.not.equal(tf.getKernel(n, "cpu")?.kernelFunc, tf.getKernel(n, "wasm")!.kernelFunc);
  }
});

test("an existing wasm kernel is kept", () => {
  const ours = tf.getKernel("Einsum", "wasm")!;
  const theirs: tf.KernelConfig = { kernelName: "Einsum", backendName: "wasm", kernelFunc: () => { throw new Error("theirs"); } };
  tf.unregisterKernel("Einsum", "wasm");
  try {
    tf.registerKernel(theirs);
    registerWasmTrainingKernels();
    assert.is(tf.getKernel("Einsum", "wasm"), theirs);
  } finally {
    tf.unregisterKernel("Einsum", "wasm");
    tf.registerKernel(ours);
  }
});

// ---------------------------------------------------------------- Conv2DBackpropFilter

interface ConvCase {
  x: Shape4; filter: Shape4; strides: number | [number, number]; pad: Pad;
  rounding?: "floor" | "round" | "ceil"; format?: "NHWC" | "NCHW";
}

const CONV_CASES: ConvCase[] = [
  { x: [2, 7, 7, 3], filter: [3, 3, 3, 4], strides: 1, pad: "same" },
  { x: [2, 9, 8, 3], filter: [3, 3, 3, 40], strides: 2, pad: "valid" }, // auto -> im2col GEMM
  { x: [3, 9, 9, 5], filter: [5, 3, 5, 6], strides: 2, pad: "same" },
  { x: [3, 11, 10, 1], filter: [5, 3, 1, 16], strides: [2, 1], pad: "same" }, // GEMM, odd sizes
  { x: [1, 6, 6, 2], filter: [1, 1, 2, 3], strides: 1, pad: "valid" },
  { x: [2, 8, 7, 4], filter: [1, 1, 4, 5], strides: 2, pad: "same" },
  { x: [2, 7, 7, 2], filter: [3, 3, 2, 20], strides: 2, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], strides: 2, pad: 1, rounding: "ceil" },
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 4], strides: 2, pad: 1, rounding: "round" },
  { x: [2, 3, 7, 6], filter: [3, 3, 3, 4], strides: 1, pad: "same", format: "NCHW" },
];

function convLabel(c: ConvCase): string {
  return `x[${c.x}] f[${c.filter}] s${JSON.stringify(c.strides)} ${JSON.stringify(c.pad)}${c.rounding ? " " + c.rounding : ""}${c.format === "NCHW" ? " NCHW" : ""}`;
}

test("Conv2DBackpropFilter matches the cpu backend (auto, im2col GEMM and convolution strategies)", async () => {
  let seed = 100;
  for (const c of CONV_CASES) {
    const format = c.format ?? "NHWC";
    const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, c.rounding, false, tf.backend_util.convertConv2DDataFormat(format));
    const xv = rand(c.x, seed++), dyv = rand(info.outShape, seed++);
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: format, dimRoundingMode: c.rounding, filterShape: c.filter } as unknown as tf.NamedAttrMap;
    const viaEngine = () => tf.engine().runKernel("Conv2DBackpropFilter", { x: tf.tensor(xv, c.x), dy: tf.tensor(dyv, info.outShape) }, attrs) as tf.Tensor;
    const [expected] = await on("cpu", viaEngine);
    const [auto] = await on("wasm", viaEngine);
    assertClose(auto!, expected!, KERNEL_TOL, `auto ${convLabel(c)}`);
    for (const strategy of ["gemm", "conv"] as const) {
      const [got] = await on("wasm", () => {
        const inputs = { x: tf.tensor(xv, c.x), dy: tf.tensor(dyv, info.outShape) };
        return tf.engine().makeTensorFromTensorInfo(conv2DBackpropFilterWasm({ inputs, backend: tf.backend(), attrs }, strategy));
      });
      assertClose(got!, expected!, KERNEL_TOL, `${strategy} ${convLabel(c)}`);
    }
  }
});

test("Conv2DBackpropFilter matches the cpu backend on a larger batch", async () => {
  const c: ConvCase = { x: [16, 13, 13, 8], filter: [3, 3, 8, 16], strides: 1, pad: "valid" };
  const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad);
  const xv = rand(c.x, 7), dyv = rand(info.outShape, 8);
  const f = () => tf.engine().runKernel("Conv2DBackpropFilter", { x: tf.tensor(xv, c.x), dy: tf.tensor(dyv, info.outShape) },
    { strides: 1, pad: "valid", dataFormat: "NHWC", filterShape: c.filter } as unknown as tf.NamedAttrMap) as tf.Tensor;
  const [expected] = await on("cpu", f);
  const [got] = await on("wasm", f);
  assertClose(got!, expected!, KERNEL_TOL, "batch 16");
});

// ---------------------------------------------------------------- depthwise backprops

interface DwCase { x: Shape4; filter: Shape4; strides: number | [number, number]; dilations: number | [number, number]; pad: Pad; rounding?: "floor" | "round" | "ceil" }

const DW_CASES: DwCase[] = [
  { x: [2, 7, 7, 3], filter: [3, 3, 3, 1], strides: 1, dilations: 1, pad: "same" },
  { x: [2, 9, 8, 2], filter: [3, 3, 2, 2], strides: 2, dilations: 1, pad: "valid" },
  { x: [3, 8, 9, 4], filter: [5, 3, 4, 2], strides: 2, dilations: 1, pad: "same" },
  { x: [2, 6, 5, 3], filter: [1, 1, 3, 2], strides: 1, dilations: 1, pad: "valid" },
  { x: [2, 9, 9, 2], filter: [3, 3, 2, 2], strides: 1, dilations: 2, pad: "same" },
  { x: [1, 10, 9, 3], filter: [3, 3, 3, 1], strides: 1, dilations: [2, 1], pad: "valid" },
  { x: [2, 7, 8, 2], filter: [3, 3, 2, 1], strides: 2, dilations: 1, pad: [[0, 0], [1, 0], [2, 1], [0, 0]] },
  { x: [2, 8, 8, 2], filter: [3, 3, 2, 2], strides: 2, dilations: 1, pad: 1, rounding: "ceil" },
];

const dwLabel = (c: DwCase) => `x[${c.x}] f[${c.filter}] s${JSON.stringify(c.strides)} d${JSON.stringify(c.dilations)} ${JSON.stringify(c.pad)}${c.rounding ? " " + c.rounding : ""}`;
const isOne = (v: number | [number, number]) => (Array.isArray(v) ? v.every((x) => x === 1) : v === 1);

/**
 * The reference backprops from the forward op on cpu, by linearity: dW[k] = <dy, fwd(x, e_k)> for
 * each filter element k, and dx[n] = dy[n] . fwd(E, w) with E the batch of one-hot images.
 */
async function depthwiseReference(c: DwCase, xv: Float32Array, wv: Float32Array, dyv: Float32Array, outShape: number[]): Promise<{ dW: Float64Array; dx: Float64Array }> {
  await use("cpu");
  const fwd = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.depthwiseConv2d(x, w, c.strides, c.pad as "same", "NHWC", c.dilations, c.rounding);
  const dW = new Float64Array(wv.length);
  tf.tidy(() => {
    const x = tf.tensor4d(xv, c.x), dy = tf.tensor(dyv, outShape);
    for (let k = 0; k < wv.length; k++) {
      const e = new Float32Array(wv.length);
      e[k] = 1;
      dW[k] = tf.sum(tf.mul(dy, fwd(x, tf.tensor4d(e, c.filter)))).dataSync()[0]!;
    }
  });
  const [n, h, w, ch] = c.x;
  const pixels = h * w * ch;
  const dxT = tf.tidy(() => {
    const eye = tf.reshape(tf.eye(pixels), [pixels, h, w, ch]) as tf.Tensor4D;
    const responses = tf.reshape(fwd(eye, tf.tensor4d(wv, c.filter)), [pixels, -1]);
    return tf.matMul(tf.tensor(dyv, [n, responses.shape[1]!]), responses, false, true);
  });
  const dx = Float64Array.from(dxT.dataSync());
  dxT.dispose();
  return { dW, dx };
}

test("depthwise backprops (filter and input) match the cpu backend and the forward op's adjoint", async () => {
  let seed = 300;
  for (const c of DW_CASES) {
    const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, c.dilations, c.pad, c.rounding, true);
    const xv = rand(c.x, seed++), wv = rand(c.filter, seed++), dyv = rand(info.outShape, seed++);
    const filterAttrs = { strides: c.strides, dilations: c.dilations, pad: c.pad, dimRoundingMode: c.rounding, filterShape: c.filter } as unknown as tf.NamedAttrMap;
    const inputAttrs = { strides: c.strides, dilations: c.dilations, pad: c.pad, dimRoundingMode: c.rounding, inputShape: c.x } as unknown as tf.NamedAttrMap;
    const backprops = () => [
      tf.engine().runKernel("DepthwiseConv2dNativeBackpropFilter", { x: tf.tensor(xv, c.x), dy: tf.tensor(dyv, info.outShape) }, filterAttrs) as tf.Tensor,
      tf.engine().runKernel("DepthwiseConv2dNativeBackpropInput", { dy: tf.tensor(dyv, info.outShape), filter: tf.tensor(wv, c.filter) }, inputAttrs) as tf.Tensor,
    ];
    const [dW, dx] = await on("wasm", backprops);
    const ref = await depthwiseReference(c, xv, wv, dyv, info.outShape);
    assertClose(dW!, ref.dW, KERNEL_TOL, `filter vs adjoint ${dwLabel(c)}`);
    assertClose(dx!, ref.dx, KERNEL_TOL, `input vs adjoint ${dwLabel(c)}`);
    if (isOne(c.dilations)) { // the cpu backend's backprops ignore dilations
      const [cpuW, cpuX] = await on("cpu", backprops);
      assertClose(dW!, cpuW!, KERNEL_TOL, `filter vs cpu ${dwLabel(c)}`);
      assertClose(dx!, cpuX!, KERNEL_TOL, `input vs cpu ${dwLabel(c)}`);
    }
  }
});

// ---------------------------------------------------------------- UnsortedSegmentSum

test("UnsortedSegmentSum matches the cpu backend", async () => {
  const cases: { x: number[]; ids: number[]; n: number }[] = [
    { x: [7, 3], ids: [0, 4, 1, 4, 4, 2, 0], n: 5 },
    { x: [6], ids: [2, 2, 0, 1, 2, 0], n: 4 }, // segment 3 empty
    { x: [5, 2, 3], ids: [1, 0, 1, 1, 0], n: 2 },
    { x: [4, 5], ids: [0, 0, 0, 0], n: 1 },
    { x: [9, 4], ids: [8, 1, 3, 3, 0, 8, 8, 2, 7], n: 10 },
  ];
  let seed = 500;
  for (const c of cases) {
    const xv = rand(c.x, seed++);
    const f = () => tf.unsortedSegmentSum(tf.tensor(xv, c.x), tf.tensor1d(c.ids, "int32"), c.n);
    const [expected] = await on("cpu", f);
    const [got] = await on("wasm", f);
    assertClose(got!, expected!, KERNEL_TOL, `x[${c.x}] ids ${c.ids}`);
  }
});

test("UnsortedSegmentSum: int32 values, ids out of range dropped, ids of rank 2", async () => {
  await use("wasm");
  const ints = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], "int32"), tf.tensor1d([1, 1, 0], "int32"), 3));
  assert.is(ints.dtype, "int32");
  assert.equal(Array.from(ints.dataSync()), [5, 6, 4, 6, 0, 0]);
  ints.dispose();
  const dropped = tf.tidy(() => tf.engine().runKernel("UnsortedSegmentSum", { x: tf.tensor1d([1, 2, 3, 4]), segmentIds: tf.tensor1d([0, -1, 2, 1], "int32") }, { numSegments: 2 }) as tf.Tensor);
  assert.equal(Array.from(dropped.dataSync()), [1, 4]);
  dropped.dispose();
  const rank2 = tf.tidy(() => tf.engine().runKernel("UnsortedSegmentSum", { x: tf.tensor3d([[[1], [2]], [[3], [4]]]), segmentIds: tf.tensor2d([[1, 0], [1, 1]], [2, 2], "int32") }, { numSegments: 2 }) as tf.Tensor);
  assert.equal(rank2.shape, [2, 1]);
  assert.equal(Array.from(rank2.dataSync()), [2, 8]);
  rank2.dispose();
});

// ---------------------------------------------------------------- Einsum

test("Einsum matches the cpu backend", async () => {
  // [equation, operand shapes, reference where the cpu backend gets it wrong]
  const cases: [string, number[][], ((...t: tf.Tensor[]) => tf.Tensor)?][] = [
    ["ij,jk->ik", [[3, 4], [4, 5]]],
    ["bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]],
    ["bhqd,bhkd->bhqk", [[2, 3, 4, 5], [2, 3, 6, 5]]],
    ["ij,kj->ik", [[3, 4], [5, 4]]],
    ["ab,bc->ca", [[3, 4], [4, 2]]],
    ["ijk,jkl->il", [[2, 3, 4], [3, 4, 5]]],
    ["abc,cd->abd", [[2, 3, 4], [4, 5]]],
    ["ij,ij->ij", [[3, 4], [3, 4]]],
    ["ij,ij->", [[3, 4], [3, 4]]],
    ["i,j->ij", [[3], [4]]],
    ["i,i->", [[5], [5]]],
    ["ij,j->i", [[3, 4], [4]]],
    ["ij->ji", [[3, 4]]],
    ["ijk->kij", [[2, 3, 4]]],
    ["ij->i", [[3, 4]]],
    ["ij->", [[3, 4]]],
    ["ij->ij", [[3, 4]]],
    // an index summed out of one operand alone: (sum_j a_ij) b_k
    ["ij,k->ik", [[3, 4], [5]], (a, b) => tf.outerProduct(tf.sum(a!, 1) as tf.Tensor1D, b as tf.Tensor1D)],
    ["ij,jk->", [[3, 4], [4, 5]], (a, b) => tf.sum(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D))],
  ];
  let seed = 700;
  for (const [eq, shapes, reference] of cases) {
    const vals = shapes.map((s) => rand(s, seed++));
    const operands = () => vals.map((v, i) => tf.tensor(v, shapes[i]!));
    const [expected] = await on("cpu", () => (reference ? reference(...operands()) : tf.einsum(eq, ...operands())));
    const [got] = await on("wasm", () => tf.einsum(eq, ...operands()));
    assertClose(got!, expected!, KERNEL_TOL, eq);
  }
  // int32 (and mixed) operands take the direct loop
  const ints = [[1, 2, 3, 4, 5, 6], [1, -1, 2, 0, 3, 1]];
  for (const [eq, sa, sb] of [["ij,jk->ik", [2, 3], [3, 2]], ["ij,ij->i", [2, 3], [2, 3]]] as const) {
    const f = () => tf.einsum(eq, tf.tensor(ints[0]!, [...sa], "int32"), tf.tensor(ints[1]!, [...sb], "int32"));
    const [expected] = await on("cpu", f);
    const [got] = await on("wasm", f);
    assert.equal(Array.from(got!), Array.from(expected!), eq);
    const mixed = () => tf.einsum(eq, tf.tensor(ints[0]!, [...sa], "int32"), tf.tensor(ints[1]!, [...sb], "float32"));
    assert.equal(Array.from((await on("wasm", mixed))[0]!), Array.from(expected!), `${eq} mixed`);
  }
  await use("wasm");
  const dtype = tf.tidy(() => tf.einsum("ij,jk->ik", tf.ones([2, 2], "int32"), tf.ones([2, 2], "int32")));
  assert.is(dtype.dtype, "int32");
  dtype.dispose();
});

// ---------------------------------------------------------------- no leaks

test("the kernels free every intermediate on the wasm heap", async () => {
  await use("wasm");
  const runs: [string, () => tf.Tensor][] = [
    ["conv gemm", () => tf.engine().makeTensorFromTensorInfo(conv2DBackpropFilterWasm({ inputs: { x: tf.ones([2, 9, 9, 3]), dy: tf.ones([2, 5, 5, 40]) }, backend: tf.backend(), attrs: { strides: 2, pad: "same", dataFormat: "NHWC", filterShape: [5, 3, 3, 40] } as unknown as tf.NamedAttrMap }, "gemm"))],
    ["conv conv", () => tf.engine().makeTensorFromTensorInfo(conv2DBackpropFilterWasm({ inputs: { x: tf.ones([2, 8, 8, 3]), dy: tf.ones([2, 5, 5, 4]) }, backend: tf.backend(), attrs: { strides: 2, pad: 1, dimRoundingMode: "ceil", dataFormat: "NHWC", filterShape: [3, 3, 3, 4] } as unknown as tf.NamedAttrMap }, "conv"))],
    ["conv NCHW", () => tf.engine().runKernel("Conv2DBackpropFilter", { x: tf.ones([2, 3, 7, 6]), dy: tf.ones([2, 4, 7, 6]) }, { strides: 1, pad: "same", dataFormat: "NCHW", filterShape: [3, 3, 3, 4] } as unknown as tf.NamedAttrMap) as tf.Tensor],
    ["depthwise", () => tf.grad((x: tf.Tensor) => tf.sum(tf.depthwiseConv2d(x as tf.Tensor4D, tf.ones([3, 3, 2, 2]) as tf.Tensor4D, 1, "same")))(tf.ones([1, 5, 5, 2]))],
    ["segment sum", () => tf.unsortedSegmentSum(tf.ones([4, 3]), tf.tensor1d([0, 2, 2, 1], "int32"), 3)],
    ["einsum", () => tf.einsum("bij,bkj->bik", tf.ones([2, 3, 4]), tf.ones([2, 5, 4]))],
    ["einsum identity", () => tf.einsum("ij->ij", tf.ones([2, 3]))],
  ];
  for (const [label, f] of runs) {
    tf.dispose(tf.tidy(f)); // warm-up
    const before = wasmDataIds(), tensors = tf.memory().numTensors;
    tf.dispose(tf.tidy(f));
    assert.is(wasmDataIds(), before, `${label}: wasm buffers`);
    assert.is(tf.memory().numTensors, tensors, `${label}: tensors`);
  }
});

// ---------------------------------------------------------------- gradients on wasm

interface GradCase {
  label: string;
  /** Variable shapes, in the order f takes them. */
  shapes: number[][];
  /** The model output whose weighted squares are the loss. */
  f: (...vars: tf.Tensor[]) => tf.Tensor;
}

const GRAD_CASES: GradCase[] = [
  { label: "conv2d 3x3 same", shapes: [[2, 7, 7, 3], [3, 3, 3, 4]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same") },
  { label: "conv2d 3x3 stride 2 valid", shapes: [[2, 9, 8, 2], [3, 3, 2, 5]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, "valid") },
  { label: "conv2d 5x3 stride 2 same (GEMM)", shapes: [[2, 9, 9, 1], [5, 3, 1, 16]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, "same") },
  { label: "conv2d 1x1", shapes: [[3, 6, 5, 4], [1, 1, 4, 2]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "valid") },
  { label: "depthwiseConv2d x1", shapes: [[2, 7, 7, 3], [3, 3, 3, 1]], f: (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same") },
  { label: "depthwiseConv2d x2 stride 2", shapes: [[2, 9, 8, 2], [3, 3, 2, 2]], f: (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, "valid") },
  { label: "separableConv2d", shapes: [[2, 8, 8, 3], [3, 3, 3, 2], [1, 1, 6, 4]], f: (x, d, p) => tf.separableConv2d(x as tf.Tensor4D, d as tf.Tensor4D, p as tf.Tensor4D, 1, "same") },
  { label: "separableConv2d stride 2", shapes: [[2, 9, 9, 2], [3, 3, 2, 1], [1, 1, 2, 3]], f: (x, d, p) => tf.separableConv2d(x as tf.Tensor4D, d as tf.Tensor4D, p as tf.Tensor4D, 2, "valid") },
  { label: "gather (embedding)", shapes: [[10, 4]], f: (t) => tf.gather(t, tf.tensor2d([[1, 2, 1], [9, 0, 1]], [2, 3], "int32")) },
];

/** Loss weights for an output of `size` elements. */
const weights = (size: number, seed: number) => rand([size], seed);

test("gradients on wasm match the cpu backend and central finite differences", async () => {
  let seed = 900;
  for (const c of GRAD_CASES) {
    const values = c.shapes.map((s) => rand(s, seed++));
    const outSize = await on("cpu", () => c.f(...values.map((v, i) => tf.tensor(v, c.shapes[i]!)))).then((o) => o[0]!.length);
    const r = weights(outSize, seed++);
    const loss = (...vars: tf.Tensor[]) => {
      const y = c.f(...vars);
      return tf.sum(tf.mul(tf.reshape(tf.tensor1d(r), y.shape), tf.square(y)));
    };
    const grads = () => tf.grads(loss)(values.map((v, i) => tf.tensor(v, c.shapes[i]!)));
    const onWasm = await on("wasm", grads);
    const onCpu = await on("cpu", grads);
    onWasm.forEach((g, i) => assertClose(g, onCpu[i]!, 1e-4, `${c.label}: d/d${i} vs cpu`));

    // Central differences on wasm. The loss is quadratic in each coordinate, so the central difference is
    // exact up to rounding: with the loss summed in float64 from the float32 outputs, eps = 1e-2 leaves
    // an error of about |y|^2 * 1e-7 / 1e-2 per coordinate.
    await use("wasm");
    const lossAt = (vals: Float32Array[]) => {
      const y = tf.tidy(() => c.f(...vals.map((v, i) => tf.tensor(v, c.shapes[i]!))));
      const yv = y.dataSync();
      y.dispose();
      let s = 0;
      for (let k = 0; k < yv.length; k++) s += r[k]! * yv[k]! * yv[k]!;
      return s;
    };
    const eps = 1e-2;
    values.forEach((v, i) => {
      const g = onWasm[i]!;
      let argmax = 0;
      for (let k = 1; k < g.length; k++) if (Math.abs(g[k]!) > Math.abs(g[argmax]!)) argmax = k;
      const picks = new Set<number>([argmax]);
      const coords = rand([8], seed++);
      for (const u of coords) picks.add(Math.floor(((u + 1) / 2) * v.length));
      for (const k of picks) {
        const plus = values.map((a) => a.slice()), minus = values.map((a) => a.slice());
        plus[i]![k]! += eps;
        minus[i]![k]! -= eps;
        const fd = (lossAt(plus) - lossAt(minus)) / (2 * eps);
        assert.ok(Math.abs(fd - g[k]!) <= 2e-3 * Math.max(1, Math.abs(g[k]!)), `${c.label}: d/d${i}[${k}] = ${g[k]} but finite difference ${fd}`);
      }
    });
  }
});

test("variableGrads of an embedding table on wasm (repeated and unused rows)", async () => {
  const tableValues = rand([6, 3], 1234);
  const run = () => {
    const table = tf.variable(tf.tensor2d(tableValues, [6, 3]));
    const ids = tf.tensor1d([5, 5, 0, 2, 5], "int32");
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tf.gather(table, ids))), [table]);
    const out = [value, grads[table.name]!];
    table.dispose();
    return out;
  };
  const [lossW, gradW] = await on("wasm", run);
  const [lossC, gradC] = await on("cpu", run);
  assertClose(lossW!, lossC!, 1e-5, "loss");
  assertClose(gradW!, gradC!, 1e-5, "grad");
  // d/dtable sum(table[ids]^2) = 2 * table[row] * (times the row is used)
  const counts = [1, 0, 1, 0, 0, 3];
  const expected = Array.from(tableValues, (v, k) => 2 * v * counts[Math.floor(k / 3)]!);
  assertClose(gradW!, expected, 1e-6, "analytic");
});

test("a small CNN training step gives the same updated weights on wasm and cpu", async () => {
  const shapes: Record<string, number[]> = { x: [4, 12, 12, 1], w1: [3, 3, 1, 8], dw: [3, 3, 8, 1], pw: [1, 1, 8, 6], dense: [6 * 4 * 4, 3] };
  const vals: Record<string, Float32Array> = Object.fromEntries(Object.entries(shapes).map(([k, s], i) => [k, rand(s, 2000 + i)]));
  const labels = [0, 2, 1, 2];
  const step = () => {
    const v = (k: string) => tf.variable(tf.tensor(vals[k]!, shapes[k]));
    const [w1, dw, pw, dense] = [v("w1"), v("dw"), v("pw"), v("dense")];
    const x = tf.tensor4d(vals.x!, shapes.x as Shape4);
    const opt = tf.train.sgd(0.1);
    for (let i = 0; i < 3; i++) {
      opt.minimize(() => {
        const h1 = tf.relu(tf.conv2d(x, w1 as tf.Tensor4D, 1, "same"));
        const h2 = tf.relu(tf.separableConv2d(tf.maxPool(h1, 2, 2, "valid"), dw as tf.Tensor4D, pw as tf.Tensor4D, 1, "valid"));
        const logits = tf.matMul(tf.reshape(tf.avgPool(h2, 1, 1, "valid"), [4, -1]), dense as tf.Tensor2D);
        return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, "int32"), 3), logits) as tf.Scalar;
      });
    }
    opt.dispose();
    const out = [w1, dw, pw, dense].map((t) => t.clone());
    tf.dispose([w1, dw, pw, dense]);
    return out;
  };
  const onWasm = await on("wasm", step);
  const onCpu = await on("cpu", step);
  onWasm.forEach((w, i) => assertClose(w, onCpu[i]!, 1e-4, `weights ${i}`));
});

test.run();
