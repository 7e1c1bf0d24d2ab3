// Multithreaded WebAssembly in Node: tfjs-backend-wasm's threaded-SIMD build (XNNPACK on a pthreadpool of
// emscripten pthreads, which are worker_threads in Node), started as tfjs's own init() cannot start it there.
// Node-only, imported only dynamically (runtime/backend.ts), and emptied in browser bundles (package.json's
// "browser" field): browsers run tfjs's own threaded start-up when the page is cross-origin isolated.
//
// Why tfjs's init() does not give threads in Node (tfjs-backend-wasm 4.22):
//  1. WASM_HAS_MULTITHREAD_SUPPORT is false whenever IS_NODE (flags_wasm.ts, tfjs issue #3830);
//  2. the pthread worker is a blob: URL (locateFile('….worker.js') → URL.createObjectURL(new Blob([source]))) and
//     mainScriptUrlOrBlob is a Blob of the factory's source: worker_threads load neither;
//  3. and even started (both blobs as files), get_threads_count() stays 1: backend.cc caps the pool at
//     `num_cores = emscripten_num_logical_cores() / 2` (it assumes two hyperthreads per core), computed once by a
//     global constructor, so on a 2-vCPU machine every setThreadsCount(n) becomes min(n, 8, 2 / 2) = 1.
// Here: the worker script is a .cjs file (the worker source tfjs ships, as tfjs's own blob holds it), the main
// script is the factory's own file in wasm-out/ (the worker evaluates it with importScripts, i.e. fs + eval),
// and instantiateWasm (emscripten's hook for instantiating the module yourself) answers the wasm's import
// emscripten_num_logical_cores with twice the cores we want, so the cap is that number. Then BackendWasm's
// constructor runs init_with_threads_count(n) as in browsers.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs-core";

const require = createRequire(import.meta.url);

interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  tfjs?: unknown;
  PThread?: { runningWorkers: unknown[]; unusedWorkers: unknown[] };
}
type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

/** The pthread worker script as a file worker_threads can start (written once per content, atomically). */
function workerFile(source: string): string {
  // tfjs puts it in a Blob with "\n" escaped (backend_wasm.ts): the source holds "\n" in string literals.
  const text = source.replace(/\n/g, "\\n");
  const file = path.join(os.tmpdir(), `nnetc-tfjs-wasm-pthread-${createHash("sha256").update(text).digest("hex").slice(0, 16)}.cjs`);
  if (!existsSync(file) || readFileSync(file, "utf8") !== text) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  }
  return file;
}

/**
 * Register tfjs's "wasm" backend as the threaded-SIMD build with `threads` threads (call before tf.setBackend("wasm")).
 * The kernels registered for "wasm" (tfjs's and ours) are the same for both builds.
 */
export async function registerThreadedWasm(threads: number): Promise<void> {
  const wasmPkg = (await import("@tensorflow/tfjs-backend-wasm")) as unknown as {
    BackendWasm: new (m: EmscriptenModule) => tf.KernelBackend;
    setThreadsCount(n: number): void;
  };
  if (!(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"))) throw new Error("this WebAssembly engine has no SIMD, which the threaded build needs");
  const out = path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js"));
  const mainScript = path.join(out, "tfjs-backend-wasm-threaded-simd.js");
  const factory = require(mainScript) as Factory;
  const worker = workerFile((require(path.join(out, "tfjs-backend-wasm-threaded-simd.worker.js")) as { wasmWorkerContents: string }).wasmWorkerContents);
  const wasmFile = path.join(out, "tfjs-backend-wasm-threaded-simd.wasm");
  wasmPkg.setThreadsCount(threads);
  if (tf.findBackendFactory("wasm")) tf.removeBackend("wasm");
  tf.registerBackend(
    "wasm",
    async () => {
      let fail!: (e: unknown) => void;
      const failed = new Promise<never>((_, reject) => (fail = reject));
      const module = await Promise.race([
        factory({
          locateFile: (p: string) => (p.endsWith(".worker.js") ? worker : path.join(out, p)),
          mainScriptUrlOrBlob: mainScript,
          instantiateWasm(info: { env: Record<string, unknown> }, receive: (i: WebAssembly.Instance, m: WebAssembly.Module) => void) {
            const imports = { ...info, env: { ...info.env, emscripten_num_logical_cores: () => 2 * threads } };
            WebAssembly.instantiate(readFileSync(wasmFile), imports as WebAssembly.Imports).then((r) => receive(r.instance, r.module), fail);
            return {};
          },
          onAbort: (what: unknown) => fail(new Error(`the threaded wasm build aborted: ${String(what)}`)),
        }),
        failed,
      ]);
      module.tfjs = {
        init: module.cwrap("init", null, []),
        initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
        getThreadsCount: module.cwrap("get_threads_count", "number", []),
        registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
        disposeData: module.cwrap("dispose_data", null, ["number"]),
        dispose: module.cwrap("dispose", null, []),
      };
      const backend = new wasmPkg.BackendWasm(module); // init_with_threads_count: the pool's threads start here
      // A running pthread is a ref'd worker (emscripten's runPthread), and XNNPACK's pool threads never end: they
      // would keep Node alive after the program's last line. They only ever work inside a call from this thread.
      for (const w of [...(module.PThread?.runningWorkers ?? []), ...(module.PThread?.unusedWorkers ?? [])]) (w as { unref?: () => void }).unref?.();
      return backend;
    },
    2, // tfjs-backend-wasm's WASM_PRIORITY
  );
}
