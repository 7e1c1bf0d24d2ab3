// The weights an ONNX export needs: trained ones (a run, checkpoint, .safetensors, tfjs model.json or an
// int8/float16 quantized file) or the seeded initial ones, plus the weights optimization passes derive
// (folded batchnorm), as host arrays for the pure graph builder in compiler/emit/onnx/.
import * as tf from "@tensorflow/tfjs-core";
import { readFileSync } from "node:fs";
import type { IRModel } from "../compiler/ir/types.js";
import type { ExportWeight, Int8Weight } from "../compiler/emit/onnx/index.js";
import { decodeSafetensors, toFloat32, type HostTensor } from "./checkpoint/index.js";
import { initBackend } from "./backend.js";
import { Rng } from "./data/rng.js";
import { deriveWeights, disposeDerived } from "./derive.js";
import { initialValues } from "./init.js";
import { hostWeight } from "./train.js";
import { fingerprint, loadTrained } from "./weights.js";

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
  const out = new Map<string, Int8Weight>();
  if (!file.endsWith(".safetensors")) return out;
  const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(file)));
  if (metadata.quantized !== "int8") return out;
  for (const [name, t] of Object.entries(tensors)) {
    const scale = tensors[`${name}:scale`];
    if (t.dtype === "I8" && scale) out.set(name, { shape: t.shape, q: t.data as Int8Array, scale: toFloat32(scale) });
  }
  return out;
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

/**
 * The export's weights from the unoptimized model's (`host`, float): int8 ones kept quantized where
 * `quantized` has them, derived ones computed.
 */
export async function finalWeights(exported: IRModel, host: Record<string, HostTensor>, quantized: ReadonlyMap<string, Int8Weight> = new Map()): Promise<Omit<ExportWeights, "from">> {
  const float = (name: string): Float32Array => {
    const t = host[name];
    if (!t) throw new Error(`no weight "${name}"`);
    return t.dtype === "F32" && t.data instanceof Float32Array ? t.data : toFloat32(t);
  };
  const weights = new Map<string, ExportWeight>();
  let int8 = 0;
  const derived = exported.params.filter((p) => p.derive);
  for (const p of exported.params) {
    if (p.derive) continue;
    const q = quantized.get(p.name);
    if (q) {
      weights.set(p.name, q);
      int8++;
    } else weights.set(p.name, { shape: p.shape, data: float(p.name) });
  }
  if (derived.length) {
    // The backend already running (tests, benchmarks), else the plain JavaScript one: a few multiplications.
    if (!tf.engine().backendName) await initBackend("cpu");
    // Only the source weights the derivations read become tensors.
    const needed = new Set<string>();
    for (const p of derived) for (const v of Object.values(p.derive!.args)) if (typeof v === "string" && host[v]) needed.add(v);
    const source = new Map<string, tf.Variable>();
    for (const name of needed) source.set(name, tf.variable(tf.tensor(float(name), host[name]!.shape, "float32"), false));
    const values = deriveWeights(derived, source);
    for (const p of derived) weights.set(p.name, { shape: p.shape, data: values.get(p.name)!.dataSync() as Float32Array });
    disposeDerived(values, source);
    for (const v of source.values()) v.dispose();
  }
  return { weights, int8 };
}
