// Transposed matrix products on the wasm backend. tfjs-backend-wasm 4.22 sends BatchMatMul and
// _FusedMatMul with transposeA or transposeB down a slow path (10× slower for a 128×784 · 128×256
// product), and every dense layer's gradient asks for one. Transposing the operand first with the
// backend's Transpose kernel and multiplying without flags takes the fast XNNPACK path.
import * as tf from "@tensorflow/tfjs-core";
import { withOps, type KernelArgs } from "./wasm_ops.js";

function wrap(name: string): void {
  const existing = tf.getKernel(name, "wasm");
  if (!existing || (existing.kernelFunc as { nnetcWrapped?: boolean }).nnetcWrapped) return;
  const original = existing.kernelFunc;
  const kernelFunc = ((args: KernelArgs) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    if (!attrs.transposeA && !attrs.transposeB) return original(args as never);
    const inputs = args.inputs as Record<string, tf.TensorInfo>;
    return withOps(args.backend, (ops) => {
      const swap = (t: tf.TensorInfo) => {
        const perm = [...t.shape.keys()];
        [perm[perm.length - 1], perm[perm.length - 2]] = [perm[perm.length - 2]!, perm[perm.length - 1]!];
        return ops.run("Transpose", { x: t }, { perm });
      };
      const a = attrs.transposeA ? swap(inputs.a!) : inputs.a!;
      const b = attrs.transposeB ? swap(inputs.b!) : inputs.b!;
      return ops.track(original({ ...args, inputs: { ...inputs, a, b }, attrs: { ...args.attrs, transposeA: false, transposeB: false } } as never) as tf.TensorInfo);
    });
  }) as tf.KernelFunc & { nnetcWrapped?: boolean };
  kernelFunc.nnetcWrapped = true;
  tf.unregisterKernel(name, "wasm");
  tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc, ...(existing.setupFunc ? { setupFunc: existing.setupFunc } : {}) });
}

/** Route transposed products through explicit transposes (idempotent). */
export function registerTransposedMatMul(): void {
  wrap(tf.BatchMatMul);
  wrap(tf._FusedMatMul);
}
