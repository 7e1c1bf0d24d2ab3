// Conv2DBackpropInput for the wasm backend, computed as a forward convolution so that it runs on
// XNNPACK: the gradient of a convolution with respect to its input is the convolution of the output
// gradient — zero-interleaved for strides > 1 and padded — with the kernel flipped in space and its
// input/output channels swapped. tfjs-backend-wasm 4.22's own kernel is a plain loop that took 40% of a
// CNN training step.
import * as tf from "@tensorflow/tfjs-core";
import { withOps, type KernelArgs } from "./wasm_ops.js";

let fallback: tf.KernelFunc | null = null;

function conv2dBackpropInputWasm(args: KernelArgs): tf.TensorInfo {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const a = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const info = tf.backend_util.computeConv2DInfo(a.inputShape, filter.shape as [number, number, number, number], a.strides, 1, a.pad, a.dimRoundingMode, false, a.dataFormat === "NCHW" ? "channelsFirst" : "channelsLast");
  const [b, ih, iw, ci] = a.inputShape;
  const [kh, kw, , co] = filter.shape as [number, number, number, number];
  const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
  const { top, left } = info.padInfo;
  const hd = (oh - 1) * sh + 1;
  const wd = (ow - 1) * sw + 1;
  const pt = kh - 1 - top;
  const pl = kw - 1 - left;
  const pb = ih + kh - 1 - pt - hd;
  const pr = iw + kw - 1 - pl - wd;
  if (a.dataFormat === "NCHW" || pt < 0 || pl < 0 || pb < 0 || pr < 0 || dy.dtype !== "float32") return fallback!(args as never) as tf.TensorInfo;
  return withOps(args.backend, (ops) => {
    let g = dy;
    if (sh > 1 || sw > 1) {
      // Interleave zeros: [b, oh, ow, co] → [b, oh, 1, ow, 1, co] → pad → [b, oh·sh, ow·sw, co] → crop.
      const six = ops.reshape(dy, [b, oh, 1, ow, 1, co]);
      const padded = ops.run("PadV2", { x: six }, { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 });
      g = ops.slice(ops.reshape(padded, [b, oh * sh, ow * sw, co]), [0, 0, 0, 0], [b, hd, wd, co]);
    }
    const flipped = ops.run("Reverse", { x: filter }, { dims: [0, 1] });
    const swapped = ops.transpose(flipped, [0, 1, 3, 2]);
    return ops.run("Conv2D", { x: g, filter: swapped }, { strides: [1, 1], pad: [[0, 0], [pt, pb], [pl, pr], [0, 0]], dataFormat: "NHWC", dilations: [1, 1], dimRoundingMode: undefined } as unknown as tf.NamedAttrMap);
  });
  void ci;
}

/** Replace the wasm backend's Conv2DBackpropInput (idempotent); unusual geometries use the original. */
export function registerConv2DBackpropInput(): void {
  const existing = tf.getKernel(tf.Conv2DBackpropInput, "wasm");
  if (existing?.kernelFunc === (conv2dBackpropInputWasm as unknown)) return;
  if (existing) {
    fallback = existing.kernelFunc;
    tf.unregisterKernel(tf.Conv2DBackpropInput, "wasm");
  }
  // The original's setup (its wasm function bindings) still has to run: we fall back to it.
  tf.registerKernel({ kernelName: tf.Conv2DBackpropInput, backendName: "wasm", kernelFunc: conv2dBackpropInputWasm as unknown as tf.KernelFunc, ...(existing?.setupFunc ? { setupFunc: existing.setupFunc } : {}) });
}
