// Training kernels the tfjs wasm backend (4.22) lacks. Without them, on wasm, the gradient of a
// conv2d fails with "Conv2DBackpropFilter not registered for wasm", and likewise for depthwise /
// separable convolutions, gather (embedding) gradients and einsum.
//
//   import "@tensorflow/tfjs-backend-wasm";
//   registerWasmTrainingKernels();
//   await tf.setBackend("wasm");
//
// Registration can happen before or after the wasm backend is initialised (none of these kernels
// needs a setup function); the wasm kernels they are built from are looked up when they run.
import * as tf from "@tensorflow/tfjs-core";
import { conv2DBackpropFilterConfig } from "./conv2d_backprop_filter.js";
import { depthwiseConv2dNativeBackpropFilterConfig, depthwiseConv2dNativeBackpropInputConfig } from "./depthwise_backprop.js";
import { einsumConfig } from "./einsum.js";
import { lstmCellConfigs } from "./lstm_cell.js";
import { lstmSeqConfigs } from "./lstm_seq.js";
import { unsortedSegmentSumConfig } from "./unsorted_segment_sum.js";

export { conv2DBackpropFilterWasm, type Conv2DBackpropFilterStrategy } from "./conv2d_backprop_filter.js";
export { depthwiseConv2dNativeBackpropFilterWasm, depthwiseConv2dNativeBackpropInputWasm } from "./depthwise_backprop.js";
export { einsumWasm } from "./einsum.js";
export { unsortedSegmentSumWasm } from "./unsorted_segment_sum.js";

/** Every kernel this module can provide for the wasm backend. */
export const wasmTrainingKernelConfigs: readonly tf.KernelConfig[] = [
  conv2DBackpropFilterConfig,
  depthwiseConv2dNativeBackpropFilterConfig,
  depthwiseConv2dNativeBackpropInputConfig,
  unsortedSegmentSumConfig,
  einsumConfig,
  ...lstmCellConfigs,
  ...lstmSeqConfigs,
];

/**
 * Registers, for backendName "wasm", each of the kernels above that the registry does not already
 * have (a later tfjs release that ships its own keeps it). Idempotent.
 */
export function registerWasmTrainingKernels(): void {
  for (const config of wasmTrainingKernelConfigs) {
    if (tf.getKernel(config.kernelName, "wasm") == null) tf.registerKernel(config);
  }
}
