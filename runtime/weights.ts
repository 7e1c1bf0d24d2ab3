// Trained weights from wherever a user keeps them: a run folder (model.safetensors, else its newest
// checkpoint), one checkpoint folder, a .safetensors file, or a TensorFlow.js model.json.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { verifyRunFile } from "./run_folder.js";
import { damagedCheckpoints, decodeSafetensors, encodeSafetensors, latestCheckpoint, loadTfjsWeights, readCheckpoint, toFloat32, WEIGHTS_FILE, type HostTensor } from "./checkpoint/index.js";
import { readSavedData, type LoadedData, type SavedData } from "./data/index.js";
import { unpackVocabularies } from "./data/tokenize.js";
import { RunError } from "./errors.js";
import { densify, dequantizeWeights } from "./quantize.js";
import { isHuggingFaceFolder, type HfModel } from "./huggingface.js";
import { loadPretrained } from "./pretrained.js";

/**
 * Weights and vocabularies of a trained run: DIR/model.safetensors, else the newest checkpoint. Given the
 * model, a Hugging Face model folder (config.json) is read too, as `init` reads it (layout huggingface).
 */
export function loadTrained(dir: string, fp: string, what = "--weights", net?: HfModel): { weights: Record<string, HostTensor>; vocab?: LoadedData["vocab"]; from: string } & SavedData {
  if (!existsSync(dir)) throw new RunError(`${what} ${dir}: no such file or folder`);
  if (net && isHuggingFaceFolder(dir)) return { weights: loadPretrained(net, { from: dir, layout: "huggingface", map: [], allowMissing: false, allowExtra: true }).weights, from: dir };
  // A TensorFlow.js model.json (+ its weight shards): weights are matched by name.
  if (dir.endsWith(".json") && !existsSync(path.join(dir, "manifest.json"))) return { weights: loadTfjsWeights(dir), from: dir };
  const single = dir.endsWith(".safetensors") && statSync(dir).isFile();
  const model = single ? dir : path.join(dir, "model.safetensors");
  const info = path.join(single ? path.dirname(dir) : dir, "model.json");
  if (existsSync(model)) {
    // A run folder's run-manifest.json records the sha256 of every file the run wrote (NN7031 on a mismatch).
    verifyRunFile(model);
    if (existsSync(info)) verifyRunFile(info);
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(model)));
    if (metadata.fingerprint && metadata.fingerprint !== fp) throw new RunError(`${model} was trained for a different model (its weights do not match this file's layers)`);
    // A quantized file (nnetc compile --quantize) carries its vocabulary, classes and column shapes in its metadata.
    const json = (s: string | undefined): unknown => {
      try {
        return s === undefined ? undefined : JSON.parse(s);
      } catch {
        return undefined;
      }
    };
    const meta = metadata.vocab || metadata.classes || metadata.columns ? { vocab: json(metadata.vocab) as LoadedData["vocab"], classes: json(metadata.classes), columns: json(metadata.columns) } : existsSync(info) ? (JSON.parse(readFileSync(info, "utf8")) as { vocab?: LoadedData["vocab"]; classes?: unknown; columns?: unknown }) : {};
    const vocab = unpackVocabularies(meta.vocab);
    return { weights: dequantizeWeights(densify(tensors, metadata)), ...(vocab ? { vocab } : {}), ...readSavedData(meta), from: model };
  }
  const ck = existsSync(path.join(dir, "manifest.json")) ? dir : latestCheckpoint(dir);
  const damaged = ck === dir ? [] : damagedCheckpoints(dir);
  if (!ck) throw new RunError(`${what} ${dir}: no model.safetensors and no checkpoint in it${damaged.length ? ` that can be read (${damaged.map((d) => `${d.dir}: ${d.why}`).join("; ")})` : ""}`);
  // The newest checkpoint is damaged: say so by name, and which older one is used.
  for (const d of damaged) process.stderr.write(`warning: checkpoint ${d.dir} is damaged (${d.why}); using the older ${ck}\n`);
  const c = readCheckpoint(ck, { fingerprint: fp });
  const extra = c.state.extra as { vocab?: unknown; classes?: unknown; columns?: unknown } | undefined;
  const vocab = unpackVocabularies(extra?.vocab);
  return { weights: c.weights, ...(vocab ? { vocab } : {}), ...readSavedData(extra), from: ck };
}

/** A fingerprint of a model's weights (names and shapes): a checkpoint only loads into the same model. */
export function fingerprint(m: { params: readonly { name: string; shape: readonly number[]; trainable: boolean }[] }): string {
  return createHash("sha256").update(JSON.stringify(m.params.map((p) => [p.name, p.shape, p.trainable]))).digest("hex").slice(0, 16);
}

/** What a weights file holds, for `nnetc summary --weights`: its kind, size on disk, and zeros per weight. */
export interface WeightsInfo {
  file: string;
  /** float32, or what nnetc compile --prune/--quantize or an export step wrote: int8, pruned.float16, … */
  kind: string;
  bytes: number;
  /** The size of the same weights as a float32 safetensors file. */
  float32Bytes: number;
  counts: Record<string, { count: number; zeros: number }>;
}

/** Reads no tensors library: summary stays a compile-time command. */
export function weightsInfo(where: string, fp: string): WeightsInfo {
  const trained = loadTrained(where, fp);
  const from = trained.from;
  const file = from.endsWith(".safetensors") || from.endsWith(".json") ? from : path.join(from, WEIGHTS_FILE);
  let kind = "float32";
  let meta: Record<string, string> = {};
  if (file.endsWith(".safetensors")) {
    meta = decodeSafetensors(new Uint8Array(readFileSync(file))).metadata;
    kind = [...(meta.pruned !== undefined ? ["pruned"] : []), ...(meta.quantized ? [meta.quantized] : [])].join(".") || "float32";
  }
  const counts: WeightsInfo["counts"] = {};
  for (const [name, t] of Object.entries(trained.weights)) {
    const d = toFloat32(t);
    let zeros = 0;
    for (let i = 0; i < d.length; i++) if (d[i] === 0) zeros++;
    counts[name] = { count: d.length, zeros };
  }
  return { file, kind, bytes: statSync(file).size, float32Bytes: encodeSafetensors(trained.weights, { format: "nnetc", ...(meta.model ? { model: meta.model } : {}), fingerprint: fp }).length, counts };
}
