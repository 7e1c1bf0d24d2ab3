// An emitted module's model on ONNX Runtime in Node (MODEL.load(from, { engine: "onnx" })): the model's .nnet
// file (the module's `source`) compiled again, its inference form (-O2) exported to ONNX in memory with the
// loaded weights and run by onnxruntime-node (runtime/onnx_engine.ts), or the `ort` module given. Loaded only
// for engine "onnx", so nnetc/runtime stays free of the compiler and of onnxruntime otherwise. In a browser
// (this module is empty there: package.json's "browser" field) the same OnnxSession runs onnxruntime-web on the
// inference graph nnetc's bundler plugin ships with the module (runtime/index.ts's registerInference).
import { existsSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { HostTensor } from "./checkpoint/index.js";
import { RunError } from "./errors.js";
import { loadOrt, startOnnx, type OnnxSession } from "./onnx_engine.js";
import { int8Tensors } from "./onnx.js";
import { fingerprint } from "./weights.js";

/** The ONNX session of an emitted model `def` with `weights` (host, nnetc names; `from`: the file they came from, so an int8 file exports as int8). */
export async function onnxSessionFor(def: { name: string; source: URL; params: readonly { name: string; shape: readonly number[]; trainable: boolean }[] }, weights: { weights: Record<string, HostTensor>; from: string }, ort?: unknown): Promise<OnnxSession> {
  const file = def.source.protocol === "file:" ? fileURLToPath(def.source) : null;
  if (!file || !existsSync(file)) throw new RunError(`load(…, { engine: "onnx" }): ${def.name} is exported to ONNX from its .nnet file, ${file ?? def.source.href}, which is not there; ship it beside the module, or use the default engine`);
  const { compile } = await import("../compiler/index.js");
  const { optimize } = await import("../compiler/passes/index.js");
  const { readSource } = await import("../compiler/read_source.js");
  const { pathChecker, projectRoot } = await import("../compiler/root.js");
  const main = readSource(file);
  if ("error" in main) throw new RunError(`load(…, { engine: "onnx" }): cannot read ${file}: ${main.error}`);
  // read as the CLI reads: within the limits, imports confined to the file's project root
  const res = compile(file, main.text, { readFile: (f) => readSource(path.isAbsolute(f) ? f : path.resolve(f)), checkPath: pathChecker(projectRoot(file)) });
  const m = res.module.models.find((x) => x.name === def.name);
  if (!m || res.diagnostics.some((d) => d.severity === "error") || fingerprint(m) !== fingerprint(def)) throw new RunError(`load(…, { engine: "onnx" }): ${file} no longer compiles to the module's ${def.name} (it changed since nnetc compile): compile the module again`);
  const fast = optimize({ ...res.module, models: [m] }, { level: 2, mode: "infer" }).module.models[0]!;
  return startOnnx(m, fast, weights, ort === undefined ? {} : { ort });
}

/** Node's onnxruntime (onnxruntime-node), for a module whose inference graph came with it (runtime/index.ts's registerInference). */
export const nodeOrt = (): Promise<unknown> => loadOrt();

/** The int8 tensors of the file weights were read from by path (none when `from` names no int8 .safetensors file). */
export const fileInt8 = (from: string) => (existsSync(from) ? int8Tensors(from) : undefined);
