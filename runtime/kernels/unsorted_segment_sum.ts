// UnsortedSegmentSum for the wasm backend (the gradient of gather / embedding lookups).
//
//   out[s, ...] = sum over every index p of segmentIds with segmentIds[p] == s  of  x[p, ...]
//
// segmentIds' shape must be a prefix of x's shape (TensorFlow semantics; tfjs only ever passes 1-D
// ids); ids outside [0, numSegments) are dropped. One pass over x, accumulated in float64, result in
// x's dtype (float32 or int32).
import * as tf from "@tensorflow/tfjs-core";
import { KernelArgs, sizeOf, WasmBackend } from "./wasm_ops.js";

type TensorInfo = tf.TensorInfo;

export function unsortedSegmentSumWasm(args: KernelArgs): TensorInfo {
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = args.attrs as unknown as tf.UnsortedSegmentSumAttrs;
  const backend = args.backend as WasmBackend;
  if (x.dtype !== "float32" && x.dtype !== "int32") throw new Error(`UnsortedSegmentSum (wasm): x must be float32 or int32, got ${x.dtype}`);
  if (segmentIds.dtype !== "int32") throw new Error(`UnsortedSegmentSum (wasm): segmentIds must be int32, got ${segmentIds.dtype}`);
  if (!Number.isInteger(numSegments) || numSegments < 0) throw new Error(`UnsortedSegmentSum (wasm): numSegments must be a non-negative integer, got ${numSegments}`);
  const idRank = segmentIds.shape.length;
  if (!tf.util.arraysEqual(x.shape.slice(0, idRank), segmentIds.shape)) {
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`);
  }
  const innerShape = x.shape.slice(idRank);
  const inner = sizeOf(innerShape);
  const count = sizeOf(segmentIds.shape);
  const acc = new Float64Array(numSegments * inner);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  if (acc.length > 0 && count > 0) {
    const xv = backend.typedArrayFromHeap(x);
    const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
    for (let p = 0; p < count; p++) {
      const s = ids[p]!;
      if (s < 0 || s >= numSegments) continue;
      const o = s * inner, xo = p * inner;
      for (let k = 0; k < inner; k++) acc[o + k] += xv[xo + k]!;
    }
  }
  if (acc.length > 0) backend.typedArrayFromHeap(out).set(acc);
  return out;
}

export const unsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: "wasm",
  kernelFunc: unsortedSegmentSumWasm,
};
