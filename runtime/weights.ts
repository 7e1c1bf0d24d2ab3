// Trained weights from wherever a user keeps them: a run folder (model.safetensors, else its newest
// checkpoint), one checkpoint folder, a .safetensors file, or a TensorFlow.js model.json.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { decodeSafetensors, latestCheckpoint, loadTfjsWeights, readCheckpoint, type HostTensor } from "./checkpoint/index.js";
import type { LoadedData } from "./data/index.js";
import { RunError } from "./errors.js";
import { dequantizeWeights } from "./quantize.js";

/** Weights and vocabularies of a trained run: DIR/model.safetensors, else the newest checkpoint. */
export function loadTrained(dir: string, fp: string, what = "--weights"): { weights: Record<string, HostTensor>; vocab?: LoadedData["vocab"]; from: string } {
  if (!existsSync(dir)) throw new RunError(`${what} ${dir}: no such file or folder`);
  // A TensorFlow.js model.json (+ its weight shards): weights are matched by name.
  if (dir.endsWith(".json") && !existsSync(path.join(dir, "manifest.json"))) return { weights: loadTfjsWeights(dir), from: dir };
  const single = dir.endsWith(".safetensors") && statSync(dir).isFile();
  const model = single ? dir : path.join(dir, "model.safetensors");
  const info = path.join(single ? path.dirname(dir) : dir, "model.json");
  if (existsSync(model)) {
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(model)));
    if (metadata.fingerprint && metadata.fingerprint !== fp) throw new RunError(`${model} was trained for a different model (its weights do not match this file's layers)`);
    // A quantized file (nnetc compile --quantize) carries its vocabulary in its metadata.
    const meta = metadata.vocab ? { vocab: JSON.parse(metadata.vocab) as LoadedData["vocab"] } : existsSync(info) ? (JSON.parse(readFileSync(info, "utf8")) as { vocab?: LoadedData["vocab"] }) : {};
    return { weights: dequantizeWeights(tensors), ...(meta.vocab ? { vocab: meta.vocab } : {}), from: model };
  }
  const ck = existsSync(path.join(dir, "manifest.json")) ? dir : latestCheckpoint(dir);
  if (!ck) throw new RunError(`${what} ${dir}: no model.safetensors and no checkpoint in it`);
  const c = readCheckpoint(ck, { fingerprint: fp });
  const vocab = (c.state.extra as { vocab?: LoadedData["vocab"] } | undefined)?.vocab;
  return { weights: c.weights, ...(vocab ? { vocab } : {}), from: ck };
}

/** A fingerprint of a model's weights (names and shapes): a checkpoint only loads into the same model. */
export function fingerprint(m: { params: readonly { name: string; shape: readonly number[]; trainable: boolean }[] }): string {
  return createHash("sha256").update(JSON.stringify(m.params.map((p) => [p.name, p.shape, p.trainable]))).digest("hex").slice(0, 16);
}
