// Backend selection: the best TensorFlow.js backend present, in the order tensorflow (tfjs-node, or
// tfjs-node-gpu for CUDA) → webgpu on a hardware GPU → wasm (SIMD) → cpu, overridable with --backend (webgpu
// asked for by name also runs on a software rasterizer: llvmpipe, SwiftShader). The run says which and why.
import * as tf from "@tensorflow/tfjs-core";
// The gradients of tfjs-core's ops are registered by the union package's Node bundle (tfjs-core's own
// Node bundle leaves them out); importing it also brings the cpu backend.
import "@tensorflow/tfjs";

export type BackendName = "tensorflow" | "webgpu" | "wasm" | "cpu";
export const BACKENDS: readonly BackendName[] = ["tensorflow", "webgpu", "wasm", "cpu"];

export interface BackendChoice {
  name: BackendName;
  /** One line for the user: what runs and why (and how to get something faster). */
  reason: string;
}

/** A requested backend that cannot be used: reported with exit code 2. */
export class BackendError extends Error {}

async function tryNode(): Promise<string | null> {
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    try {
      await import(pkg);
      if (tf.findBackend("tensorflow")) return pkg;
    } catch {
      // not installed, or its native library is missing: try the next
    }
  }
  return null;
}

// Multithreaded wasm in Node (NNETC_WASM_THREADS): tfjs's own start-up gives one thread there (flags, blob workers and
// a cap of half the logical cores: runtime/wasm_threads_node.ts says why and how it starts the threaded build instead).
/** Most threads: tfjs-backend-wasm's threaded build pre-starts 8 pthread workers and XNNPACK's pool takes at most 8. */
const MAX_WASM_THREADS = 8;

/**
 * The wasm backend's threads asked for by NNETC_WASM_THREADS (Node only): unset or 1, the single-threaded SIMD
 * build; 2–8, the threaded-SIMD build with that many; "auto", one per available core (at most 8).
 */
export function wasmThreadsWanted(): number {
  const v = typeof process === "undefined" ? undefined : process.env?.NNETC_WASM_THREADS?.trim();
  if (v === undefined || v === "") return 1;
  if (v === "auto") {
    const os = process.getBuiltinModule?.("node:os") as typeof import("node:os") | undefined;
    return Math.max(1, Math.min(MAX_WASM_THREADS, os?.availableParallelism() ?? 1));
  }
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_WASM_THREADS) {
    throw new BackendError(`NNETC_WASM_THREADS must be a number of threads from 1 to ${MAX_WASM_THREADS}, or "auto" (one per core), not "${v}"`);
  }
  return Number(v);
}

async function tryWasm(threads: number): Promise<boolean> {
  try {
    await import("@tensorflow/tfjs-backend-wasm");
    if (threads > 1) {
      // package.json's "browser" field empties wasm_threads_node.js in browser bundles: there tfjs starts its own.
      const { registerThreadedWasm } = (await import("./wasm_threads_node.js")) as Partial<typeof import("./wasm_threads_node.js")>;
      if (registerThreadedWasm) await registerThreadedWasm(threads);
    }
    const { registerWasmTrainingKernels } = await import("./kernels/index.js");
    const { registerMaxPoolGrad } = await import("./kernels/max_pool_grad.js");
    const { registerConv2DBackpropInput } = await import("./kernels/conv2d_backprop_input.js");
    const { registerTransposedMatMul } = await import("./kernels/batch_matmul.js");
    const { registerFastSlicing } = await import("./kernels/slice.js");
    registerWasmTrainingKernels();
    registerTransposedMatMul();
    registerFastSlicing();
    registerMaxPoolGrad();
    registerConv2DBackpropInput();
    return await tf.setBackend("wasm");
  } catch (e) {
    if (threads > 1) throw new BackendError(`NNETC_WASM_THREADS=${threads}: the threaded wasm build could not start (${(e as Error).message ?? String(e)}); unset it for one thread`);
    return false;
  }
}

/** The threads the wasm backend's XNNPACK pool runs (tfjs's getThreadsCount()), 1 when that is unknown. */
export function wasmThreadCount(): number {
  const b = tf.findBackend("wasm") as unknown as { wasm?: { tfjs?: { getThreadsCount?: () => number } } } | null;
  return Math.max(1, b?.wasm?.tfjs?.getThreadsCount?.() ?? 1);
}

/** The cpu backend greets Node users with a banner about tfjs-node on first use; we say it ourselves. */
function quietCpu(): void {
  const cpu = tf.findBackend("cpu") as unknown as { firstUse?: boolean } | null;
  if (cpu) cpu.firstUse = false;
}

/** Pick and initialise a backend. `requested` is --backend; undefined means the best one present. */
export async function initBackend(requested?: string): Promise<BackendChoice> {
  if (requested !== undefined && !BACKENDS.includes(requested as BackendName)) {
    throw new BackendError(`unknown backend "${requested}": choose one of ${BACKENDS.join(", ")}`);
  }
  tf.env().set("PROD", true); // no debug checks on every op
  quietCpu();
  if (requested === undefined || requested === "tensorflow") {
    const pkg = await tryNode();
    if (pkg && (await tf.setBackend("tensorflow"))) {
      await tf.ready();
      return { name: "tensorflow", reason: `${requested ? "requested" : "the fastest present"}: native TensorFlow through ${pkg}` };
    }
    if (requested === "tensorflow") {
      throw new BackendError("the tensorflow backend needs @tensorflow/tfjs-node (or -gpu for CUDA) and its native library: npm install @tensorflow/tfjs-node (it downloads libtensorflow while installing)");
    }
  }
  let noGpu = "";
  if (requested === undefined || requested === "webgpu") {
    const { startWebgpu } = await import("./webgpu.js");
    const w = await startWebgpu(requested === "webgpu");
    if (w.ok) {
      await tf.ready();
      const why = requested ? "requested" : "@tensorflow/tfjs-node is not installed; a GPU through WebGPU";
      return { name: "webgpu", reason: `${why}; ${w.software ? "software adapter" : "adapter"} ${w.adapter}${w.software ? " (a CPU rasterizer: slow)" : ""}` };
    }
    if (requested === "webgpu") throw new BackendError(`the webgpu backend could not start: ${w.why} (in Node it needs the webgpu package, Dawn, and a Vulkan, Metal, D3D12 or OpenGL ES driver; Mesa's llvmpipe will do)`);
    noGpu = `, no WebGPU GPU (${w.why})`;
  }
  if (requested === undefined || requested === "wasm") {
    if (await tryWasm(wasmThreadsWanted())) {
      await tf.ready();
      const simd = (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) as boolean;
      const threads = wasmThreadCount() > 1;
      const why = requested ? "requested" : `@tensorflow/tfjs-node is not installed (npm install @tensorflow/tfjs-node for native speed)${noGpu}`;
      return { name: "wasm", reason: `${why}; WebAssembly${simd ? " with SIMD" : ""}, ${threads ? `${wasmThreadCount()} threads` : "one thread"}` };
    }
    if (requested === "wasm") throw new BackendError("the wasm backend could not start (@tensorflow/tfjs-backend-wasm is missing or its .wasm file cannot be loaded)");
  }
  await import("@tensorflow/tfjs-backend-cpu");
  quietCpu();
  if (!(await tf.setBackend("cpu"))) throw new BackendError("no TensorFlow.js backend could start");
  await tf.ready();
  return { name: "cpu", reason: requested ? "requested; plain JavaScript, slow for convolutions" : `neither tfjs-node${noGpu ? ", webgpu" : ""} nor the wasm backend could start${noGpu}; plain JavaScript, slow` };
}

/**
 * The memory a backend's tensors can use, and what bounds it: wasm keeps every tensor in one WebAssembly
 * memory, a 32-bit address space of 4 GiB; cpu and tensorflow keep them outside V8's heap (typed arrays'
 * backing stores, native buffers), so --max-old-space-size does not bound them but the machine (or the
 * container's cgroup limit) does.
 */
export function memoryLimit(name: BackendName): { bytes: number; what: string } {
  if (name === "wasm") return { bytes: 4 * 1024 ** 3, what: "WebAssembly's 32-bit address space" };
  // WebGPU tells no device's memory (only per-buffer limits); browsers have no os/fs: not checked there.
  // Node's modules through process.getBuiltinModule, not imports: this module is also in browser bundles.
  const os = typeof process === "undefined" ? undefined : (process.getBuiltinModule?.("node:os") as typeof import("node:os") | undefined);
  const fs = typeof process === "undefined" ? undefined : (process.getBuiltinModule?.("node:fs") as typeof import("node:fs") | undefined);
  if (name === "webgpu" || !os || !fs) return { bytes: Infinity, what: "not known here" };
  let bytes = os.totalmem();
  let what = "this machine's memory";
  try {
    const max = fs.readFileSync("/sys/fs/cgroup/memory.max", "utf8").trim();
    if (/^\d+$/.test(max) && Number(max) < bytes) {
      bytes = Number(max);
      what = "this container's memory limit";
    }
  } catch {
    // no cgroup v2 limit: the machine's memory
  }
  return { bytes, what };
}

export { tf };
