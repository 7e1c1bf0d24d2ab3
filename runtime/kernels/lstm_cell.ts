// The LSTM cell's element-wise work for the wasm backend, one kernel call per time step each way
// (runtime/ops.ts lstmTimeMajor calls them when registered, and composes tfjs ops otherwise). Composed,
// a step is ~12 tfjs ops forward and ~20 backward, each with the engine's bookkeeping, and
// tfjs-backend-wasm's Tanh is a scalar loop several times slower than its (XNNPACK) Sigmoid. Here the
// arithmetic is JavaScript loops on the wasm heap, and every σ and tanh is one call of the backend's
// Sigmoid kernel over the whole step (tanh x = 2σ(2x) − 1): JavaScript's Math.exp and Math.tanh would
// cost 30× the arithmetic. Gate order i, f, c (g), o (Keras's).
//
//   NnetcLstmCell     (p, q, cPrev)                        → (h, c, act)
//       z = p + q (the step's input projection with the bias, and h_prev · recurrent_kernel)
//       i, f, o = σ(z_i, z_f, z_o); g = tanh(z_g); c = f·cPrev + i·g; h = o·tanh(c)
//       act [batch, 5·units] = (i, f, g, o, tanh c), what the backward step needs
//   NnetcLstmCellGrad (dhOut, dhNext, dcNext, act, cPrev)  → (dz, dcPrev)
//       dh = dhOut + dhNext; dc = dcNext + dh·o·(1 − tanh²c); dz = ∂/∂z; dcPrev = dc·f
import * as tf from "@tensorflow/tfjs-core";
import { assertFloat32, type KernelArgs, type WasmBackend, WasmOps } from "./wasm_ops.js";

type TensorInfo = tf.TensorInfo;

export const LSTM_CELL = "NnetcLstmCell";
export const LSTM_CELL_GRAD = "NnetcLstmCellGrad";

/**
 * A step's cell state from σ of its gates `sv` ([B, 4U], the g gate's pre-activation doubled, so g = 2σ − 1):
 * c = f·cPrev + i·g into `cv` at `co`, 2c into `c2v` (for tanh c = 2σ(2c) − 1), and (i, f, g, o) into the
 * [B, 5U] rows of `av` at `ao`. `cp` null: no previous state (0). Shared by the per-step and the sequence kernels.
 */
export function cellState(sv: Float32Array, cp: Float32Array | null, cpo: number, cv: Float32Array, co: number, c2v: Float32Array, av: Float32Array, ao: number, B: number, U: number): void {
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < U; j++) {
      const z = b * 4 * U + j;
      const a = ao + b * 5 * U + j;
      const n = b * U + j;
      const i = sv[z]!;
      const f = sv[z + U]!;
      const g = 2 * sv[z + 2 * U]! - 1;
      const cn = (cp ? f * cp[cpo + n]! : 0) + i * g;
      cv[co + n] = cn;
      c2v[n] = 2 * cn;
      av[a] = i;
      av[a + U] = f;
      av[a + 2 * U] = g;
      av[a + 3 * U] = sv[z + 3 * U]!;
    }
  }
}

/** h = o·tanh c from σ(2c) `scv` ([B, U]): tanh c into the fifth slot of `av`'s rows at `ao`, h into `hv` at `ho` (and `hp`). */
export function cellOutput(scv: Float32Array, av: Float32Array, ao: number, hv: Float32Array, ho: number, B: number, U: number, hp?: Float32Array): void {
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < U; j++) {
      const a = ao + b * 5 * U + j;
      const n = b * U + j;
      const tc = 2 * scv[n]! - 1;
      av[a + 4 * U] = tc;
      const h = av[a + 3 * U]! * tc;
      hv[ho + n] = h;
      if (hp) hp[n] = h;
    }
  }
}

function lstmCellWasm(args: KernelArgs): TensorInfo[] {
  const { p, q, cPrev } = args.inputs as { p: TensorInfo; q: TensorInfo; cPrev: TensorInfo };
  assertFloat32(LSTM_CELL, ["p", p], ["q", q], ["cPrev", cPrev]);
  const backend = args.backend as WasmBackend;
  const ops = new WasmOps(backend);
  try {
    const [batch, U] = cPrev.shape as [number, number];
    const view = (t: TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;
    // A view on the heap is invalid after any allocation: each phase allocates first, then takes its views.
    const zz = ops.track(backend.makeOutput([batch, 4 * U], "float32"));
    {
      const [pv, qv, zv] = [view(p), view(q), view(zz)];
      for (let k = 0; k < zv.length; k++) zv[k] = pv[k]! + qv[k]!;
      for (let b = 0; b < batch; b++) for (let k = b * 4 * U + 2 * U, e = k + U; k < e; k++) zv[k] = 2 * zv[k]!;
    }
    const s = ops.run("Sigmoid", { x: zz });
    const c2 = ops.track(backend.makeOutput([batch, U], "float32"));
    const hOut = backend.makeOutput([batch, U], "float32");
    const cOut = backend.makeOutput([batch, U], "float32");
    const actOut = backend.makeOutput([batch, 5 * U], "float32");
    {
      cellState(view(s), view(cPrev), 0, view(cOut), 0, view(c2), view(actOut), 0, batch, U);
    }
    const sc = ops.run("Sigmoid", { x: c2 });
    {
      cellOutput(view(sc), view(actOut), 0, view(hOut), 0, batch, U);
    }
    return [hOut, cOut, actOut];
  } finally {
    ops.dispose();
  }
}

function lstmCellGradWasm(args: KernelArgs): TensorInfo[] {
  const { dhOut, dhNext, dcNext, act, cPrev } = args.inputs as Record<"dhOut" | "dhNext" | "dcNext" | "act" | "cPrev", TensorInfo>;
  assertFloat32(LSTM_CELL_GRAD, ["dhOut", dhOut!], ["dhNext", dhNext!], ["dcNext", dcNext!], ["act", act!], ["cPrev", cPrev!]);
  const backend = args.backend as WasmBackend;
  const [batch, U] = cPrev!.shape as [number, number];
  const dzOut = backend.makeOutput([batch, 4 * U], "float32");
  const dcPrevOut = backend.makeOutput([batch, U], "float32");
  const [dho, dhn, dcn, av, cp, dz, dcp] = [dhOut!, dhNext!, dcNext!, act!, cPrev!, dzOut, dcPrevOut].map((t) => backend.typedArrayFromHeap(t) as Float32Array) as Float32Array[];
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < U; j++) {
      const k = b * 4 * U + j;
      const a = b * 5 * U + j;
      const n = b * U + j;
      const i = av![a]!;
      const f = av![a + U]!;
      const g = av![a + 2 * U]!;
      const o = av![a + 3 * U]!;
      const tc = av![a + 4 * U]!;
      const dh = dho![n]! + dhn![n]!;
      const dc = dcn![n]! + dh * o * (1 - tc * tc);
      dz![k] = dc * g * i * (1 - i);
      dz![k + U] = dc * cp![n]! * f * (1 - f);
      dz![k + 2 * U] = dc * i * (1 - g * g);
      dz![k + 3 * U] = dh * tc * o * (1 - o);
      dcp![n] = dc * f;
    }
  }
  return [dzOut, dcPrevOut];
}

export const lstmCellConfigs: readonly tf.KernelConfig[] = [
  { kernelName: LSTM_CELL, backendName: "wasm", kernelFunc: lstmCellWasm as unknown as tf.KernelFunc },
  { kernelName: LSTM_CELL_GRAD, backendName: "wasm", kernelFunc: lstmCellGradWasm as unknown as tf.KernelFunc },
];
