// Slice and SplitV for the wasm backend as plain row copies. tfjs-backend-wasm 4.22 slices through a
// generic per-element path (about 2 ms to cut one 64×128 step out of a [200, 64, 128] tensor), which made
// a recurrent layer over 200 steps spend 90% of its time slicing. Rows of the innermost axis are copied
// with TypedArray.set instead.
import * as tf from "@tensorflow/tfjs-core";
import type { KernelArgs, WasmBackend } from "./wasm_ops.js";

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/** Copy the box [begin, begin + size) of x into a new tensor. */
function copyBox(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const n = size.reduce((a, b) => a * b, 1);
  if (n === 0) return out;
  const dst = backend.typedArrayFromHeap(out);
  const src = backend.typedArrayFromHeap(x);
  const rank = x.shape.length;
  if (rank === 0) {
    dst[0] = src[0]!;
    return out;
  }
  const st = strides(x.shape);
  // Merge trailing axes that are taken whole into one contiguous row.
  let inner = rank - 1;
  while (inner > 0 && begin[inner] === 0 && size[inner] === x.shape[inner]) inner--;
  const row = size.slice(inner).reduce((a, b) => a * b, 1);
  const outer = size.slice(0, inner);
  const idx = new Array<number>(inner).fill(0);
  let o = 0;
  for (;;) {
    let off = begin[inner]! * st[inner]!;
    for (let i = 0; i < inner; i++) off += (begin[i]! + idx[i]!) * st[i]!;
    dst.set(src.subarray(off, off + row), o);
    o += row;
    let i = inner - 1;
    while (i >= 0 && ++idx[i]! === outer[i]) idx[i--] = 0;
    if (i < 0) break;
  }
  return out;
}

function sliceWasm(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const a = args.attrs as unknown as tf.SliceAttrs;
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, a.begin, a.size);
  return copyBox(args.backend as WasmBackend, x, begin, size);
}

function splitWasm(args: KernelArgs): tf.TensorInfo[] {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const a = args.attrs as unknown as tf.SplitVAttrs;
  const axis = tf.util.parseAxisParam(a.axis, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, a.numOrSizeSplits, axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  const size = [...x.shape];
  return sizes.map((s) => {
    size[axis] = s;
    const out = copyBox(args.backend as WasmBackend, x, [...begin], [...size]);
    begin[axis] += s;
    return out;
  });
}

function replace(name: string, kernelFunc: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]): void {
  const existing = tf.getKernel(name, "wasm");
  if ((existing?.kernelFunc as { nnetc?: boolean } | undefined)?.nnetc) return;
  if (existing) tf.unregisterKernel(name, "wasm");
  const f = kernelFunc as unknown as tf.KernelFunc & { nnetc?: boolean };
  f.nnetc = true;
  tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc: f, ...(existing?.setupFunc ? { setupFunc: existing.setupFunc } : {}) });
}

/** Replace wasm's Slice and SplitV with row-copying versions (idempotent). */
export function registerFastSlicing(): void {
  replace(tf.Slice, sliceWasm);
  replace(tf.SplitV, splitWasm);
}
