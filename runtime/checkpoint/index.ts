// The checkpoint layer: safetensors files, checkpoint folders in a run's output, TensorFlow.js weights.
// Plain typed arrays only; nothing here depends on TensorFlow.js.
export * from "./errors.js";
export * from "./safetensors.js";
export * from "./store.js";
export * from "./tfjs.js";
