// The LSTM over a whole sequence for the wasm backend: one kernel call for the forward over all T steps and
// one for the backward (backpropagation through time), so that the engine sees 2 ops where the per-step
// path (lstm_cell.ts) made ~4 per step each way, each with its Tensor objects, tracking and profiling.
// Inside, every step runs the backend's own BatchMatMul kernel (XNNPACK; the recurrent kernel is packed
// once and cached under its tensor id for all steps) on heap buffers made once per call, and the cell's
// element-wise work as lstm_cell.ts does it: JavaScript loops, every σ and tanh one call of the backend's
// Sigmoid kernel over the step (tanh x = 2σ(2x) − 1). Gate order i, f, c (g), o (Keras's).
//
//   NnetcLstmSeq      (proj [T, B, 4U], rec [U, 4U]; reverse)             → (hs, cs [T, B, U], act [T, B, 5U])
//       proj: every step's input projection with the bias; step k runs at time t = reverse ? T−1−k : k;
//       act = (i, f, g, o, tanh c) per step, what the backward needs (as NnetcLstmCell's)
//   NnetcLstmSeqGrad  (dy, act, cs, rec; reverse, sequences)               → dZ [T, B, 4U]
//       dy [T, B, U] when `sequences`, else [B, U] (the gradient at the last step taken's h);
//       dZ: the gradient at every step's gate pre-activations z = proj + h_prev·rec, from which
//       runtime/ops.ts's lstmTimeMajor makes the input, kernel, recurrent kernel and bias gradients with
//       three matmuls over the whole sequence.
import * as tf from "@tensorflow/tfjs-core";
import { cellOutput, cellState } from "./lstm_cell.js";
import { assertFloat32, type KernelArgs, type WasmBackend, WasmOps } from "./wasm_ops.js";

type TensorInfo = tf.TensorInfo;

export const LSTM_SEQ = "NnetcLstmSeq";
export const LSTM_SEQ_GRAD = "NnetcLstmSeqGrad";

function lstmSeqWasm(args: KernelArgs): TensorInfo[] {
  const { proj, rec } = args.inputs as { proj: TensorInfo; rec: TensorInfo };
  const reverse = !!args.attrs?.reverse;
  assertFloat32(LSTM_SEQ, ["proj", proj], ["rec", rec]);
  const backend = args.backend as WasmBackend;
  const ops = new WasmOps(backend);
  const [T, B, G] = proj.shape as [number, number, number];
  const U = G / 4;
  if (rec.shape[0] !== U || rec.shape[1] !== G) throw new Error(`${LSTM_SEQ}: rec must be [${U}, ${G}], got [${rec.shape}]`);
  const hs = backend.makeOutput([T, B, U], "float32");
  const cs = backend.makeOutput([T, B, U], "float32");
  const act = backend.makeOutput([T, B, 5 * U], "float32");
  try {
    const hPrev = ops.track(backend.makeOutput([B, U], "float32"));
    const zz = ops.track(backend.makeOutput([B, G], "float32"));
    const c2 = ops.track(backend.makeOutput([B, U], "float32"));
    const view = (t: TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;
    const at = (k: number) => (reverse ? T - 1 - k : k);
    for (let k = 0; k < T; k++) {
      const t = at(k);
      const prev = at(k - 1);
      // q = h_prev · rec (none before the first step: h_prev = 0). A view is invalid after any allocation,
      // so every phase allocates first, then takes its views.
      const q = k > 0 ? ops.run("BatchMatMul", { a: hPrev, b: rec }, { transposeA: false, transposeB: false }) : null;
      {
        const pv = view(proj);
        const zv = view(zz);
        const po = t * B * G;
        if (q) {
          const qv = view(q);
          for (let n = 0; n < B * G; n++) zv[n] = pv[po + n]! + qv[n]!;
        } else {
          for (let n = 0; n < B * G; n++) zv[n] = pv[po + n]!;
        }
        for (let b = 0; b < B; b++) for (let n = b * G + 2 * U, e = n + U; n < e; n++) zv[n] = 2 * zv[n]!;
      }
      const s = ops.run("Sigmoid", { x: zz });
      const cv = view(cs);
      cellState(view(s), k > 0 ? cv : null, prev * B * U, cv, t * B * U, view(c2), view(act), t * B * 5 * U, B, U);
      const sc = ops.run("Sigmoid", { x: c2 });
      cellOutput(view(sc), view(act), t * B * 5 * U, view(hs), t * B * U, B, U, view(hPrev));
      for (const x of q ? [q, s, sc] : [s, sc]) backend.disposeData(ops.keep(x).dataId);
    }
    return [hs, cs, act];
  } catch (e) {
    for (const x of [hs, cs, act]) backend.disposeData(x.dataId);
    throw e;
  } finally {
    ops.dispose();
  }
}

function lstmSeqGradWasm(args: KernelArgs): TensorInfo[] {
  const { dy, act, cs, rec } = args.inputs as Record<"dy" | "act" | "cs" | "rec", TensorInfo>;
  const reverse = !!args.attrs?.reverse;
  const sequences = !!args.attrs?.sequences;
  assertFloat32(LSTM_SEQ_GRAD, ["dy", dy!], ["act", act!], ["cs", cs!], ["rec", rec!]);
  const backend = args.backend as WasmBackend;
  const ops = new WasmOps(backend);
  const [T, B, U] = cs!.shape as [number, number, number];
  const G = 4 * U;
  const dZ = backend.makeOutput([T, B, G], "float32");
  try {
    const uT = ops.run("Transpose", { x: rec! }, { perm: [1, 0] });
    const dzStep = ops.track(backend.makeOutput([B, G], "float32"));
    const dc = ops.zeros([B, U]);
    const view = (t: TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;
    const at = (k: number) => (reverse ? T - 1 - k : k);
    let dhNext: TensorInfo | null = null; // dz(next step) · recᵀ
    for (let k = T - 1; k >= 0; k--) {
      const t = at(k);
      const prev = at(k - 1);
      {
        const [dyv, av, cv, dzv, dzs, dcv] = [view(dy!), view(act!), view(cs!), view(dZ), view(dzStep), view(dc)];
        const dhv = dhNext ? view(dhNext) : null;
        // The gradient at this step's own output h: dy[t] (sequences), or dy at the last step taken.
        const dyo = sequences ? t * B * U : k === T - 1 ? 0 : -1;
        const ao = t * B * 5 * U;
        const zo = t * B * G;
        const cpo = prev * B * U;
        for (let b = 0; b < B; b++) {
          for (let j = 0; j < U; j++) {
            const a = ao + b * 5 * U + j;
            const n = b * U + j;
            const z = b * G + j;
            const i = av[a]!;
            const f = av[a + U]!;
            const g = av[a + 2 * U]!;
            const o = av[a + 3 * U]!;
            const tc = av[a + 4 * U]!;
            const dh = (dyo >= 0 ? dyv[dyo + n]! : 0) + (dhv ? dhv[n]! : 0);
            const d = dcv[n]! + dh * o * (1 - tc * tc);
            const cp = k > 0 ? cv[cpo + n]! : 0;
            const di = d * g * i * (1 - i);
            const df = d * cp * f * (1 - f);
            const dg = d * i * (1 - g * g);
            const dO = dh * tc * o * (1 - o);
            dzv[zo + z] = dzs[z] = di;
            dzv[zo + z + U] = dzs[z + U] = df;
            dzv[zo + z + 2 * U] = dzs[z + 2 * U] = dg;
            dzv[zo + z + 3 * U] = dzs[z + 3 * U] = dO;
            dcv[n] = d * f;
          }
        }
      }
      if (dhNext) backend.disposeData(ops.keep(dhNext).dataId);
      dhNext = k > 0 ? ops.run("BatchMatMul", { a: dzStep, b: uT }, { transposeA: false, transposeB: false }) : null;
    }
    return [dZ];
  } catch (e) {
    backend.disposeData(dZ.dataId);
    throw e;
  } finally {
    ops.dispose();
  }
}

export const lstmSeqConfigs: readonly tf.KernelConfig[] = [
  { kernelName: LSTM_SEQ, backendName: "wasm", kernelFunc: lstmSeqWasm as unknown as tf.KernelFunc },
  { kernelName: LSTM_SEQ_GRAD, backendName: "wasm", kernelFunc: lstmSeqGradWasm as unknown as tf.KernelFunc },
];
