// The ONNX Runtime engine in Node (`nnetc eval|predict --engine onnx`, an emitted module's load(…, { engine:
// "onnx" })): the inference model exported to ONNX in memory (compiler/emit/onnx, the exporter `compile
// --target onnx` uses, with the same weights: int8 files stay int8 behind DequantizeLinear) and run by
// onnxruntime-node. Inference only: it holds no optimizer and trains nothing (train --engine onnx is NN7020).
// Loss and metrics are measured from its outputs by engine.ts's EvalSums, as on TensorFlow.js.
//
// The session itself is platform-neutral (runtime/onnx_session.ts, which browsers run on onnxruntime-web);
// what is Node's is here: onnxruntime-node, imported lazily and only here, weights read back from their file
// for int8, and NN6001 as a located diagnostic.
import type * as Ort from "onnxruntime-node";
import type { ExportWeight, Int8Weight } from "../compiler/emit/onnx/index.js";
import type { IRModel } from "../compiler/ir/types.js";
import { toFloat32, type HostTensor } from "./checkpoint/index.js";
import { finalWeights, int8Tensors } from "./onnx.js";
import { onnxBytes, OnnxSession, setDefaultOrt, type OnnxSessionOptions } from "./onnx_session.js";
import { diagnosticError, runError } from "./run_diagnostics.js";
import { hostWeight } from "./steps.js";

export { OnnxSession, sessionOptions, type OnnxInput, type OnnxOutput, type OnnxSessionOptions } from "./onnx_session.js";

type OrtModule = typeof Ort;

let ortModule: Promise<OrtModule> | null = null;

/** onnxruntime-node, imported on first use; NN7021 when it cannot be (`specifier`: tests name a missing one). */
export async function loadOrt(specifier = "onnxruntime-node"): Promise<OrtModule> {
  const load = async () => {
    try {
      const m = (await import(specifier)) as OrtModule & { default?: OrtModule };
      return m.InferenceSession ? m : m.default!;
    } catch (e) {
      throw runError("noOnnxRuntime", { why: ((e as Error).message ?? String(e)).split("\n")[0]! });
    }
  };
  if (specifier !== "onnxruntime-node") return load();
  ortModule ??= load().catch((e: unknown) => {
    ortModule = null;
    throw e;
  });
  return ortModule;
}

// In Node a session runs on onnxruntime-node unless given another module.
setDefaultOrt((o) => loadOrt(o.specifier));

/** `model` with its final weights as ONNX bytes; a layer with no ONNX form is NN6001 at that layer, suggesting the tfjs engine. */
export function onnxExport(model: IRModel, weights: ReadonlyMap<string, ExportWeight>, producerVersion = "nnetc"): { bytes: Uint8Array; nodes: number; transposes: number; int8: number } {
  return onnxBytes(model, weights, producerVersion, nn6001);
}

/** NN6001 at the layer with no ONNX form, with the way out for --engine onnx. */
function nn6001(d: Parameters<typeof diagnosticError>[0]): Error {
  return diagnosticError({ ...d, hint: `--engine onnx runs the model's ONNX export: run this model with --engine tfjs (the default)${d.hint ? `, or ${d.hint}` : ""}` });
}

/**
 * A session for `exported` (the inference form of `model`) with trained weights (`trained.from` an int8
 * file: its int8 tensors exported as DequantizeLinear, as compile --target onnx --weights does).
 */
export async function startOnnx(model: IRModel, exported: IRModel, trained: { weights: Record<string, HostTensor>; from: string }, o: OnnxSessionOptions & { producerVersion?: string } = {}): Promise<OnnxSession> {
  const host: Record<string, HostTensor> = {};
  for (const p of model.params) {
    const h = hostWeight(trained.weights, p.name, p.shape, trained.from);
    host[p.name] = h.dtype === "F32" ? h : { dtype: "F32", shape: h.shape, data: toFloat32(h) };
  }
  const { weights } = await finalWeights(exported, host, int8Tensors(trained.from) as Map<string, Int8Weight>);
  return OnnxSession.create(exported, weights, { ...o, onError: nn6001 });
}
