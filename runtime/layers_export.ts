// Writes a TensorFlow.js layers model: DIR/model.json (the Keras topology from compiler/emit/keras.ts and
// a weights manifest) and DIR/group1-shard1of1.bin (every weight, float32 little-endian, in manifest
// order). tf.loadLayersModel reads the folder; so does loadTrained (--weights DIR/model.json).
import * as path from "node:path";
import { writeFileAtomic, type HostTensor } from "./checkpoint/index.js";

export const LAYERS_SHARD = "group1-shard1of1.bin";

/** model.json text and the shard's bytes for a topology and named float32 weights. Pure. */
export function layersModelFiles(topology: Record<string, unknown>, weights: readonly [string, HostTensor][], generatedBy: string): { modelJson: string; shard: Uint8Array } {
  const total = weights.reduce((s, [, t]) => s + t.data.length, 0);
  const shard = new Uint8Array(total * 4);
  const dv = new DataView(shard.buffer);
  let at = 0;
  for (const [, t] of weights) {
    for (let i = 0; i < t.data.length; i++, at += 4) dv.setFloat32(at, Number(t.data[i]), true);
  }
  const json = {
    format: "layers-model",
    generatedBy,
    convertedBy: null,
    modelTopology: topology,
    weightsManifest: [{ paths: [LAYERS_SHARD], weights: weights.map(([name, t]) => ({ name, shape: t.shape, dtype: "float32" })) }],
  };
  return { modelJson: JSON.stringify(json, null, 1) + "\n", shard };
}

/** Write the two files, each atomically; the shard first, so a model.json never names a missing shard. */
export function writeLayersModel(dir: string, files: { modelJson: string; shard: Uint8Array }): string {
  writeFileAtomic(path.join(dir, LAYERS_SHARD), files.shard);
  const file = path.join(dir, "model.json");
  writeFileAtomic(file, files.modelJson);
  return file;
}
