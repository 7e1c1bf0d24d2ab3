// A correct and faster MaxPoolGrad for the wasm backend. tfjs-backend-wasm 4.22's own kernel drops
// gradients for windows that are not square (e.g. the [1, k] windows of 1-D pooling), so a text CNN on
// wasm silently learned from wrong gradients, and it took a quarter of a CNN training step. This one
// routes each output gradient to the first maximum of its window, as the cpu backend does, scanning
// channels innermost.
import * as tf from "@tensorflow/tfjs-core";
import type { KernelArgs, WasmBackend } from "./wasm_ops.js";

function maxPoolGradWasm(args: KernelArgs): tf.TensorInfo {
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const a = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const backend = args.backend as WasmBackend;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Allocate the output first: allocating can grow the heap, which invalidates earlier views of it.
  const out = backend.makeOutput(input.shape, "float32");
  const acc = backend.typedArrayFromHeap(out) as Float32Array;
  acc.fill(0);
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  // Channels are innermost (NHWC): scan each window position across all channels at once.
  const best = new Float32Array(ch);
  const at = new Int32Array(ch);
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const h0 = oh * strideHeight - top;
      for (let ow = 0; ow < outWidth; ow++) {
        const w0 = ow * strideWidth - left;
        at.fill(-1);
        for (let fh = 0; fh < filterHeight; fh++) {
          const h = h0 + fh;
          if (h < 0 || h >= inHeight) continue;
          for (let fw = 0; fw < filterWidth; fw++) {
            const w = w0 + fw;
            if (w < 0 || w >= inWidth) continue;
            const base = ((b * inHeight + h) * inWidth + w) * ch;
            for (let c = 0; c < ch; c++) {
              const v = x[base + c]!;
              if (at[c]! < 0 || v > best[c]!) {
                best[c] = v;
                at[c] = base + c;
              }
            }
          }
        }
        const gBase = ((b * outHeight + oh) * outWidth + ow) * ch;
        for (let c = 0; c < ch; c++) if (at[c]! >= 0) acc[at[c]!] += g[gBase + c]!;
      }
    }
  }
  return out;
}

/** Replace the wasm backend's MaxPoolGrad with this one (idempotent). */
export function registerMaxPoolGrad(): void {
  const existing = tf.getKernel(tf.MaxPoolGrad, "wasm");
  if (existing?.kernelFunc === (maxPoolGradWasm as unknown)) return;
  if (existing) tf.unregisterKernel(tf.MaxPoolGrad, "wasm");
  tf.registerKernel({ kernelName: tf.MaxPoolGrad, backendName: "wasm", kernelFunc: maxPoolGradWasm as unknown as tf.KernelFunc, ...(existing?.setupFunc ? { setupFunc: existing.setupFunc } : {}) });
}
