// Loads the weights of a TensorFlow.js model saved as model.json + binary shards, without TensorFlow.js.
//
// model.json holds "weightsManifest": [{ paths: [shard files, relative to model.json], weights: [{ name,
// shape, dtype: "float32" | "int32" | "bool", quantization?: { dtype: "uint8" | "uint16" | "float16",
// scale?, min?, original_dtype? } }] }]. Each group's shards are concatenated in order and its weights
// lie one after another in that byte stream, little-endian. Quantized weights are dequantized as
// TensorFlow.js does: uint8/uint16 → q × scale + min (rounded for int32 weights), float16 → float32.

import * as fs from "node:fs";
import * as path from "node:path";
import { CheckpointError } from "./errors.js";
import { copyBytes, f16ToF32, numElements, type HostTensor } from "./safetensors.js";

export { CheckpointError } from "./errors.js";

type WeightDtype = "float32" | "int32" | "bool";
type QuantDtype = "uint8" | "uint16" | "float16";

const WEIGHT_BYTES: Record<WeightDtype, number> = { float32: 4, int32: 4, bool: 1 };
const QUANT_BYTES: Record<QuantDtype, number> = { uint8: 1, uint16: 2, float16: 2 };

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: WeightDtype;
  quantization?: { dtype: QuantDtype; scale: number; min: number };
  count: number;
  bytes: number;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function bad(file: string, what: string): CheckpointError {
  return new CheckpointError("TFJS_MODEL_JSON", `${file}: ${what}; re-export the model with TensorFlow.js (model.save) or the tensorflowjs converter`, { file });
}

function parseWeight(file: string, group: number, w: unknown): WeightSpec {
  if (!isObj(w) || typeof w["name"] !== "string") throw bad(file, `weightsManifest[${group}] has a weight without a name`);
  const name = w["name"];
  const shape = w["shape"];
  if (!Array.isArray(shape)) throw bad(file, `weight "${name}" has no shape`);
  const count = numElements(shape);
  if (Number.isNaN(count)) throw bad(file, `weight "${name}" has shape ${JSON.stringify(shape)}, which is not a list of non-negative integers`);
  const dtype = w["dtype"];
  if (dtype !== "float32" && dtype !== "int32" && dtype !== "bool") {
    throw new CheckpointError(
      "TFJS_DTYPE",
      `${file}: weight "${name}" has dtype ${JSON.stringify(dtype)}; only float32, int32 and bool weights can be loaded. Convert the model's weights to float32`,
      { file },
    );
  }
  const q = w["quantization"];
  if (q === undefined || q === null) return { name, shape: shape.slice(), dtype, count, bytes: count * WEIGHT_BYTES[dtype] };
  if (!isObj(q)) throw bad(file, `weight "${name}" has a malformed quantization entry`);
  const qd = q["dtype"];
  if (qd !== "uint8" && qd !== "uint16" && qd !== "float16") {
    throw new CheckpointError(
      "TFJS_DTYPE",
      `${file}: weight "${name}" is quantized as ${JSON.stringify(qd)}; supported quantizations are uint8, uint16 and float16. Re-export it without quantization or with one of those`,
      { file },
    );
  }
  if (dtype === "bool" || (qd === "float16" && dtype !== "float32")) {
    throw new CheckpointError("TFJS_DTYPE", `${file}: weight "${name}" is a ${dtype} weight quantized as ${qd}, which TensorFlow.js does not define; re-export it without quantization`, { file });
  }
  let scale = 1;
  let min = 0;
  if (qd !== "float16") {
    if (typeof q["scale"] !== "number" || typeof q["min"] !== "number" || !Number.isFinite(q["scale"]) || !Number.isFinite(q["min"])) {
      throw bad(file, `weight "${name}" is quantized as ${qd} but has no numeric scale and min`);
    }
    scale = q["scale"];
    min = q["min"];
  }
  return { name, shape: shape.slice(), dtype, quantization: { dtype: qd, scale, min }, count, bytes: count * QUANT_BYTES[qd] };
}

function decodeWeight(spec: WeightSpec, bytes: Uint8Array): HostTensor {
  const own = copyBytes(bytes); // aligned copy (Buffer#slice would alias)
  const dv = new DataView(own.buffer);
  const n = spec.count;
  const q = spec.quantization;
  if (!q) {
    if (spec.dtype === "bool") return { dtype: "BOOL", shape: spec.shape, data: own };
    if (spec.dtype === "int32") {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      return { dtype: "I32", shape: spec.shape, data: out };
    }
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
    return { dtype: "F32", shape: spec.shape, data: out };
  }
  const read = q.dtype === "uint8" ? (i: number) => own[i]! : (i: number) => dv.getUint16(i * 2, true);
  if (q.dtype === "float16") {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = f16ToF32(read(i));
    return { dtype: "F32", shape: spec.shape, data: out };
  }
  if (spec.dtype === "int32") {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.round(read(i) * q.scale + q.min);
    return { dtype: "I32", shape: spec.shape, data: out };
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = read(i) * q.scale + q.min;
  return { dtype: "F32", shape: spec.shape, data: out };
}

/**
 * Reads a TensorFlow.js model.json and its weight shards and returns the weights by name (F32, I32 or
 * BOOL tensors). Throws CheckpointError when model.json is missing or malformed (TFJS_MODEL_JSON), a
 * shard is missing (TFJS_SHARD), a group's shards hold a different number of bytes than its weights need
 * (TFJS_SIZE), or a dtype/quantization is unsupported (TFJS_DTYPE).
 */
export function loadTfjsWeights(modelJsonPath: string): Record<string, HostTensor> {
  const file = modelJsonPath;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      "TFJS_MODEL_JSON",
      code === "ENOENT" ? `${file} does not exist; pass the path of the model.json that TensorFlow.js saved` : `${file} cannot be read (${(e as Error).message})`,
      { file, cause: e },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError("TFJS_MODEL_JSON", `${file} is not valid JSON (${(e as Error).message}); pass the model.json that TensorFlow.js saved`, { file, cause: e });
  }
  if (!isObj(json) || !Array.isArray(json["weightsManifest"])) {
    throw bad(file, `has no "weightsManifest" list, so it is not a TensorFlow.js model.json with weights`);
  }
  const dir = path.dirname(file);
  const out: Record<string, HostTensor> = {};
  const groups = json["weightsManifest"] as unknown[];
  groups.forEach((g, gi) => {
    if (!isObj(g) || !Array.isArray(g["paths"]) || !Array.isArray(g["weights"]) || !g["paths"].every((p) => typeof p === "string" && p !== "")) {
      throw bad(file, `weightsManifest[${gi}] needs "paths" (a list of file names) and "weights" (a list)`);
    }
    const specs = (g["weights"] as unknown[]).map((w) => parseWeight(file, gi, w));
    const parts: Buffer[] = [];
    for (const rel of g["paths"] as string[]) {
      const p = path.resolve(dir, rel);
      try {
        parts.push(fs.readFileSync(p));
      } catch (e) {
        throw new CheckpointError(
          "TFJS_SHARD",
          `weight shard ${p} (listed in ${file}) ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "is missing" : `cannot be read (${(e as Error).message})`}; copy every shard file next to model.json`,
          { file: p, cause: e },
        );
      }
    }
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const need = specs.reduce((s, w) => s + w.bytes, 0);
    if (data.length !== need) {
      throw new CheckpointError(
        "TFJS_SIZE",
        `the shards of weightsManifest[${gi}] in ${file} (${(g["paths"] as string[]).join(", ")}) hold ${data.length} bytes but its ${specs.length} weights need ${need}; ` +
          `the shards are truncated or belong to another model. Re-export the model`,
        { file },
      );
    }
    let at = 0;
    for (const spec of specs) {
      if (Object.prototype.hasOwnProperty.call(out, spec.name)) throw bad(file, `weight "${spec.name}" appears twice`);
      Object.defineProperty(out, spec.name, {
        value: decodeWeight(spec, data.subarray(at, at + spec.bytes)),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      at += spec.bytes;
    }
  });
  return out;
}
