// Conv2DBackpropFilter for the wasm backend, composed of the backend's own XNNPACK-backed kernels.
//
//   dW[kh, kw, c, o] = sum over n, i, j of  xPadded[n, i*sH + kh, j*sW + kw, c] * dy[n, i, j, o]
//
// This is one matrix product with the huge dimension M = N*outH*outW contracted. The wasm
// BatchMatMul is fast only without transposes, and it packs its second operand on every call, so
// the cost is dominated by how big that packed operand is. Two strategies, chosen by which operand
// is smaller:
//
//  "gemm" (im2col): when fH*fW*C <= 2*outC. The im2col matrix [M, C*fH*fW] is produced by ONE
//     DepthwiseConv2dNative of x with a constant one-hot filter [fH, fW, C, fH*fW] (channel
//     multiplier fH*fW), which applies strides and padding natively; dy is transposed to [outC, M]
//     and BatchMatMul(dyT, col) gives [outC, C*fH*fW] -> transposed to [fH, fW, C, outC].
//  "conv": otherwise. dW is itself a convolution: input x transposed to [C, H, W, N] (batch C,
//     channels N), filter dy transposed to [outH, outW, N, outC], strides 1 and dilations
//     (sH, sW); the [C, fH', fW', outC] result (fH' >= fH) is cropped and transposed.
// (The factor 2 is measured: XNNPACK's convolution is less efficient than its GEMM when each of its C
// images has only fH*fW output pixels, so "gemm" also wins while its packed operand is up to ~2x larger.)
//
// Every intermediate is freed (WasmOps); the accumulation is float32 inside XNNPACK.
import * as tf from "@tensorflow/tfjs-core";
import { assertFloat32, KernelArgs, sizeOf, WasmOps, withOps } from "./wasm_ops.js";

type TensorInfo = tf.TensorInfo;
export type Conv2DBackpropFilterStrategy = "auto" | "gemm" | "conv";

export function conv2DBackpropFilterWasm(args: KernelArgs, strategy: Conv2DBackpropFilterStrategy = "auto"): TensorInfo {
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  assertFloat32("Conv2DBackpropFilter", ["x", x], ["dy", dy]);
  const dataFormat = tf.backend_util.convertConv2DDataFormat(attrs.dataFormat ?? "NHWC");
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad,
    attrs.dimRoundingMode, false, dataFormat);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: oH, outWidth: oW, outChannels: oC } = info;
  const { filterHeight: fH, filterWidth: fW, strideHeight: sH, strideWidth: sW } = info;
  const expectedDy = dataFormat === "channelsLast" ? [N, oH, oW, oC] : [N, oC, oH, oW];
  if (!tf.util.arraysEqual(dy.shape, expectedDy)) {
    throw new Error(`Conv2DBackpropFilter (wasm): dy has shape [${dy.shape}], expected [${expectedDy}]`);
  }
  const filterShape = [fH, fW, C, oC];

  return withOps(args.backend, (ops) => {
    if (sizeOf(filterShape) === 0 || N * oH * oW === 0 || H * W === 0) return ops.zeros(filterShape);
    let xs = x, dys = dy;
    if (dataFormat === "channelsFirst") {
      xs = ops.transpose(x, [0, 2, 3, 1]);
      dys = ops.transpose(dy, [0, 2, 3, 1]);
    }
    const top = info.padInfo.top, left = info.padInfo.left;
    // Bottom/right padding that makes the last window fit exactly (windows past the input read zeros);
    // when negative the input has unused trailing rows and the result is cropped instead.
    const bottom = Math.max(0, (oH - 1) * sH + fH - H - top);
    const right = Math.max(0, (oW - 1) * sW + fW - W - left);
    const pad: tf.backend_util.ExplicitPadding = [[0, 0], [top, bottom], [left, right], [0, 0]];
    const useGemm = strategy === "gemm" || (strategy === "auto" && fH * fW * C <= 2 * oC);
    const g: Geometry = { N, C, oH, oW, oC, fH, fW, sH, sW, pad };
    return useGemm ? viaIm2col(ops, xs, dys, g) : viaConv(ops, xs, dys, g);
  });
}

interface Geometry {
  N: number; C: number; oH: number; oW: number; oC: number;
  fH: number; fW: number; sH: number; sW: number;
  pad: tf.backend_util.ExplicitPadding;
}

/** [fH, fW, C, fH*fW] with a 1 where the output channel (c, k) picks input channel c at tap k. */
function oneHotPatchFilter(ops: WasmOps, fH: number, fW: number, C: number): TensorInfo {
  const K = fH * fW;
  const v = new Float32Array(K * C * K);
  for (let k = 0; k < K; k++) for (let c = 0; c < C; c++) v[(k * C + c) * K + k] = 1;
  return ops.fromValues([fH, fW, C, K], "float32", v);
}

function viaIm2col(ops: WasmOps, x: TensorInfo, dy: TensorInfo, g: Geometry): TensorInfo {
  const { N, C, oH, oW, oC, fH, fW, sH, sW, pad } = g;
  const K = fH * fW, M = N * oH * oW;
  const identity = K === 1 && sH === 1 && sW === 1 && pad.every(([a, b]) => a === 0 && b === 0);
  // A 1x1, stride-1, unpadded filter: the im2col matrix is x itself.
  let col = identity ? x : ops.run("DepthwiseConv2dNative", { x, filter: oneHotPatchFilter(ops, fH, fW, C) },
    { strides: [sH, sW], dilations: [1, 1], pad });
  if (col.shape[1] !== oH || col.shape[2] !== oW) col = ops.slice(col, [0, 0, 0, 0], [N, oH, oW, C * K]);
  // dy [M, oC] -> [oC, M]; as a 3-D transpose it is about twice as fast as the 2-D one in wasm.
  const dyT = ops.transpose(ops.reshape(dy, [N, oH * oW, oC]), [2, 0, 1]);
  const prod = ops.run("BatchMatMul", { a: ops.reshape(dyT, [1, oC, M]), b: ops.reshape(col, [1, M, C * K]) },
    { transposeA: false, transposeB: false });
  return ops.transpose(ops.reshape(prod, [oC, C, fH, fW]), [2, 3, 1, 0]);
}

function viaConv(ops: WasmOps, x: TensorInfo, dy: TensorInfo, g: Geometry): TensorInfo {
  const { C, oC, fH, fW, sH, sW, pad } = g;
  const xT = ops.transpose(x, [3, 1, 2, 0]); // [C, H, W, N]
  const dyT = ops.transpose(dy, [1, 2, 0, 3]); // [oH, oW, N, oC]
  let out = ops.run("Conv2D", { x: xT, filter: dyT },
    { strides: [1, 1], dilations: [sH, sW], pad, dataFormat: "NHWC" });
  if (out.shape[1] !== fH || out.shape[2] !== fW) out = ops.slice(out, [0, 0, 0, 0], [C, fH, fW, oC]);
  return ops.transpose(out, [1, 2, 0, 3]);
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: "wasm",
  kernelFunc: (args) => conv2DBackpropFilterWasm(args),
};
