// Helpers for writing kernels on top of the tfjs wasm backend.
//
// A kernel registered for "wasm" receives the BackendWasm instance as `backend`. We only rely on its
// public surface (makeOutput, typedArrayFromHeap, disposeData, readSync), declared below so that this
// module does not import @tensorflow/tfjs-backend-wasm (the runtime loads backends lazily).
import * as tf from "@tensorflow/tfjs-core";

type TensorInfo = tf.TensorInfo;

/** The part of BackendWasm (tfjs-backend-wasm/dist/backend_wasm.d.ts) these kernels use. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): TensorInfo;
  /** A view on the wasm heap: invalid as soon as the heap grows (any later allocation). */
  typedArrayFromHeap(t: TensorInfo): tf.TypedArray;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
}

/** The argument every kernel function receives. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap | TensorInfo[];
  backend: {};
  attrs?: tf.NamedAttrMap;
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The wasm backend's own kernel function for `name`, or a clear error when it is not registered. */
export function wasmKernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, "wasm");
  if (k == null) throw new Error(`nnetc kernels: the wasm backend has no '${name}' kernel (is @tensorflow/tfjs-backend-wasm loaded?)`);
  return k.kernelFunc;
}

/**
 * Runs wasm kernels and remembers every intermediate so that one `dispose()` frees them all.
 * `keep(t)` takes a result out of that list; use it for the value a kernel returns.
 */
export class WasmOps {
  private readonly temps: TensorInfo[] = [];

  constructor(readonly backend: WasmBackend) {}

  run(name: string, inputs: tf.NamedTensorInfoMap | TensorInfo[], attrs: tf.NamedAttrMap = {}): TensorInfo {
    const out = wasmKernel(name)({ inputs: inputs as tf.NamedTensorInfoMap, backend: this.backend, attrs }) as TensorInfo;
    this.temps.push(out);
    return out;
  }

  /** A tensor made here (not by a kernel) that should be freed with the intermediates. */
  track(t: TensorInfo): TensorInfo {
    this.temps.push(t);
    return t;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run("Reshape", { x }, { shape });
  }

  /** Transpose, reduced to a (free) reshape when `perm` only moves axes of size 1. */
  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    const outShape = perm.map((p) => x.shape[p]!);
    const moved = perm.filter((p) => x.shape[p] !== 1);
    if (moved.every((p, i) => i === 0 || p > moved[i - 1]!)) return this.reshape(x, outShape);
    return this.run("Transpose", { x }, { perm });
  }

  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    return this.run("Slice", { x }, { begin, size });
  }

  /** float32 (or the given dtype) zeros made directly on the heap. */
  zeros(shape: number[], dtype: tf.DataType = "float32"): TensorInfo {
    const out = this.track(this.backend.makeOutput(shape, dtype));
    if (sizeOf(shape) > 0) this.backend.typedArrayFromHeap(out).fill(0);
    return out;
  }

  /** A tensor holding `values`, copied onto the heap. */
  fromValues(shape: number[], dtype: tf.DataType, values: tf.backend_util.BackendValues): TensorInfo {
    return this.track(this.backend.makeOutput(shape, dtype, undefined, values));
  }

  keep(t: TensorInfo): TensorInfo {
    const i = this.temps.lastIndexOf(t);
    if (i >= 0) this.temps.splice(i, 1);
    return t;
  }

  dispose(): void {
    for (const t of this.temps.splice(0)) this.backend.disposeData(t.dataId);
  }
}

/** Runs `body` with a fresh WasmOps, frees every intermediate afterwards (also on error) and returns the kept result. */
export function withOps(backend: {}, body: (ops: WasmOps) => TensorInfo): TensorInfo {
  const ops = new WasmOps(backend as WasmBackend);
  try {
    return ops.keep(body(ops));
  } finally {
    ops.dispose();
  }
}

export function assertFloat32(kernel: string, ...ts: [string, TensorInfo][]): void {
  for (const [name, t] of ts) {
    if (t.dtype !== "float32") throw new Error(`${kernel} (wasm): ${name} must be float32, got ${t.dtype}`);
  }
}
