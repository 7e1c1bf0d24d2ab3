// The weights an ONNX export needs: trained ones (a run, checkpoint, .safetensors, tfjs model.json or an
// int8/float16 quantized file) or the seeded initial ones, plus the weights optimization passes derive
// (folded batchnorm), as host arrays for the pure graph builder in compiler/emit/onnx/.
import { readFileSync } from "node:fs";
import type { IRModel } from "../compiler/ir/types.js";
import type { ExportWeight, Int8Weight } from "../compiler/emit/onnx/index.js";
import { decodeSafetensors, type HostTensor } from "./checkpoint/index.js";
import { Rng } from "./data/rng.js";
import { initialValues } from "./init.js";
import { finalWeights } from "./onnx_session.js";
import { int8Of } from "./quantize.js";
import { hostWeight } from "./train.js";
import { fingerprint, loadTrained } from "./weights.js";

/** The export's weights from host values: platform-neutral, in runtime/onnx_session.ts. */
export { finalWeights };

export interface ExportWeights {
  /** Every weight of the exported (optimized) model, by name. */
  weights: Map<string, ExportWeight>;
  /** Where they came from, in words: "runs/mlp/model.safetensors" or "initial weights, seed 42". */
  from: string;
  /** How many weights stay int8 (a quantized file). */
  int8: number;
}

/**
 * The int8 tensors of an int8-quantized safetensors file (nnetc compile --quantize int8), kept quantized:
 * name → int8 values and per-channel scales. Empty for any other file.
 */
export function int8Tensors(file: string): Map<string, Int8Weight> {
  if (!file.endsWith(".safetensors")) return new Map();
  const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(file)));
  return int8Of(tensors, metadata);
}

/**
 * Weights for exporting `exported` (the optimized form of `model`): from `weightsPath` when given, else
 * initialized from `seed` exactly as create({ seed }) does. Derived weights need TensorFlow.js (the cpu
 * backend is enough); the rest stay on the host.
 */
export async function exportWeights(model: IRModel, exported: IRModel, o: { weights?: string; seed: number }): Promise<ExportWeights> {
  const { host, from } = modelHostWeights(model, o);
  return { ...(await finalWeights(exported, host, o.weights !== undefined ? int8Tensors(from) : new Map())), from };
}

/**
 * Every weight of `model` on the host, for the exporters (ONNX, tfjs-layers): trained ones from
 * `o.weights` (checked against the model's names and shapes), else initialized from `o.seed` exactly as
 * create({ seed }) and a fresh `nnetc train` do. No TensorFlow.js.
 */
export function modelHostWeights(model: IRModel, o: { weights?: string; seed: number }): { host: Record<string, HostTensor>; from: string } {
  if (o.weights !== undefined) {
    const trained = loadTrained(o.weights, fingerprint(model), "--weights", model);
    const host: Record<string, HostTensor> = {};
    for (const p of model.params) host[p.name] = hostWeight(trained.weights, p.name, p.shape, trained.from);
    return { host, from: trained.from };
  }
  const rng = new Rng(o.seed);
  const host: Record<string, HostTensor> = {};
  for (const p of model.params) host[p.name] = { dtype: "F32", shape: [...p.shape], data: initialValues(p, () => rng.next()) };
  return { host, from: `initial weights, seed ${o.seed}` };
}
