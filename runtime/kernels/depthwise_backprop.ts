// DepthwiseConv2dNativeBackpropFilter / DepthwiseConv2dNativeBackpropInput for the wasm backend, as
// plain loops over the wasm heap (no copies of the inputs), accumulated in float64.
//
// Forward (NHWC, channel multiplier M, output channel c*M + m):
//   y[n, i, j, c*M+m] = sum over kh, kw of  x[n, i*sH + kh*dH - top, j*sW + kw*dW - left, c] * w[kh, kw, c, m]
// (taps outside the input read zero). The backprops are the two adjoints of that bilinear map:
//   dW[kh, kw, c, m] = sum over n, i, j of  x[...] * dy[n, i, j, c*M+m]
//   dx[n, r, s, c]   = sum over i, j, kh, kw, m with (r, s) hit  of  dy[n, i, j, c*M+m] * w[kh, kw, c, m]
// Dilations are honoured (the cpu backend's versions ignore them; tfjs' gradient of depthwiseConv2d
// only ever asks for dilation 1).
import * as tf from "@tensorflow/tfjs-core";
import { assertFloat32, KernelArgs, WasmBackend } from "./wasm_ops.js";

type TensorInfo = tf.TensorInfo;

interface DepthwiseGeometry {
  N: number; H: number; W: number; C: number; mult: number; oH: number; oW: number;
  fH: number; fW: number; sH: number; sW: number; dH: number; dW: number; top: number; left: number;
}

function geometry(kernel: string, xShape: number[], filterShape: number[], dyShape: readonly number[],
  attrs: { strides: number | [number, number]; dilations: number | [number, number]; pad: tf.Conv2DBackpropFilterAttrs["pad"]; dimRoundingMode?: "floor" | "round" | "ceil" }): DepthwiseGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, true);
  const g: DepthwiseGeometry = {
    N: info.batchSize, H: info.inHeight, W: info.inWidth, C: info.inChannels, mult: filterShape[3]!,
    oH: info.outHeight, oW: info.outWidth, fH: info.filterHeight, fW: info.filterWidth,
    sH: info.strideHeight, sW: info.strideWidth, dH: info.dilationHeight, dW: info.dilationWidth,
    top: info.padInfo.top, left: info.padInfo.left,
  };
  const expected = [g.N, g.oH, g.oW, g.C * g.mult];
  if (!tf.util.arraysEqual(dyShape as number[], expected)) {
    throw new Error(`${kernel} (wasm): dy has shape [${dyShape}], expected [${expected}]`);
  }
  if (filterShape[2] !== g.C) throw new Error(`${kernel} (wasm): filter in-channels ${filterShape[2]} != input channels ${g.C}`);
  return g;
}

/**
 * Calls `visit(xOffset, dyOffset, wOffset)` for every (n, i, j, kh, kw) whose tap falls inside the
 * input; offsets point at channel 0 of x[n, r, s, :], dy[n, i, j, :] and w[kh, kw, :, :].
 */
function forEachTap(g: DepthwiseGeometry, visit: (xOff: number, dyOff: number, wOff: number) => void): void {
  const { N, H, W, C, mult, oH, oW, fH, fW, sH, sW, dH, dW, top, left } = g;
  const OC = C * mult;
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < oH; i++) {
      const dyRow = (n * oH + i) * oW;
      for (let kh = 0; kh < fH; kh++) {
        const r = i * sH + kh * dH - top;
        if (r < 0 || r >= H) continue;
        const xRow = (n * H + r) * W;
        for (let j = 0; j < oW; j++) {
          const dyOff = (dyRow + j) * OC;
          for (let kw = 0; kw < fW; kw++) {
            const s = j * sW + kw * dW - left;
            if (s < 0 || s >= W) continue;
            visit((xRow + s) * C, dyOff, (kh * fW + kw) * OC);
          }
        }
      }
    }
  }
}

export function depthwiseConv2dNativeBackpropFilterWasm(args: KernelArgs): TensorInfo {
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const backend = args.backend as WasmBackend;
  assertFloat32("DepthwiseConv2dNativeBackpropFilter", ["x", x], ["dy", dy]);
  const g = geometry("DepthwiseConv2dNativeBackpropFilter", x.shape, attrs.filterShape, dy.shape, attrs);
  const { C, mult } = g;
  const acc = new Float64Array(g.fH * g.fW * C * mult);
  const out = backend.makeOutput([g.fH, g.fW, C, mult], "float32");
  // Views taken after the last allocation, so heap growth cannot detach them.
  const xv = backend.typedArrayFromHeap(x) as Float32Array;
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  if (mult === 1) {
    forEachTap(g, (xOff, dyOff, wOff) => {
      for (let c = 0; c < C; c++) acc[wOff + c] += xv[xOff + c]! * dyv[dyOff + c]!;
    });
  } else {
    forEachTap(g, (xOff, dyOff, wOff) => {
      for (let c = 0, o = 0; c < C; c++) {
        const xval = xv[xOff + c]!;
        for (let m = 0; m < mult; m++, o++) acc[wOff + o] += xval * dyv[dyOff + o]!;
      }
    });
  }
  (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

export function depthwiseConv2dNativeBackpropInputWasm(args: KernelArgs): TensorInfo {
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const backend = args.backend as WasmBackend;
  assertFloat32("DepthwiseConv2dNativeBackpropInput", ["dy", dy], ["filter", filter]);
  const inputShape = Array.from(attrs.inputShape);
  const g = geometry("DepthwiseConv2dNativeBackpropInput", inputShape, filter.shape, dy.shape, attrs);
  const { C, mult } = g;
  const acc = new Float64Array(g.N * g.H * g.W * C);
  const out = backend.makeOutput(inputShape, "float32");
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  const wv = backend.typedArrayFromHeap(filter) as Float32Array;
  if (mult === 1) {
    forEachTap(g, (xOff, dyOff, wOff) => {
      for (let c = 0; c < C; c++) acc[xOff + c] += dyv[dyOff + c]! * wv[wOff + c]!;
    });
  } else {
    forEachTap(g, (xOff, dyOff, wOff) => {
      for (let c = 0, o = 0; c < C; c++) {
        let s = 0;
        for (let m = 0; m < mult; m++, o++) s += dyv[dyOff + o]! * wv[wOff + o]!;
        acc[xOff + c] += s;
      }
    });
  }
  (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

export const depthwiseConv2dNativeBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: "wasm",
  kernelFunc: depthwiseConv2dNativeBackpropFilterWasm,
};

export const depthwiseConv2dNativeBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: "wasm",
  kernelFunc: depthwiseConv2dNativeBackpropInputWasm,
};
