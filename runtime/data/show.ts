// `nnetc data FILE [--dataset D] [--split train|test] [-n N] [--start K]`: what a model is fed, sample by
// sample, as JSON lines — each field after its preprocessing, shaped as declared; a tokenized field also as
// its tokens ("FIELD.tokens", padding left out), a vectorized one also as its non-zero n-grams ("FIELD.terms"); a label of a source that names its classes also as the class
// name ("FIELD.class"). Only the data layer runs (no TensorFlow.js, no model).
import type { DatasetSpec } from "../spec.js";
import { DataError } from "./errors.js";
import { loadDataset } from "./index.js";
import { decodeIds } from "./tokenize.js";

export interface ShowDataOptions {
  dataset: DatasetSpec;
  /** The .nnet file's folder (paths in the dataset are relative to it) and --data. */
  baseDir: string;
  dataDir: string | null;
  /** The plan's seed (a held-out test split depends on it), else 0. */
  seed: number;
  split: "train" | "test";
  /** Show the training split as augmented in this epoch (1-based), with `seed`'s draws. */
  epoch?: number;
  start: number;
  count: number;
  out: (line: string) => void;
  log: (message: string) => void;
}

/** At most this many samples per call: every one is a JSON line (an image is hundreds of numbers). */
export const SHOW_MAX = 10_000;

/** Nested arrays of `data` in the per-sample `shape` (a scalar for []). */
function nest(data: ArrayLike<number>, shape: readonly number[], at = 0): unknown {
  if (!shape.length) return data[at];
  const [n, ...rest] = shape;
  const step = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: n! }, (_, i) => nest(data, rest, at + i * step));
}

/** Print `count` samples of the split from `start`; returns how many were printed. */
export async function showData(o: ShowDataOptions): Promise<number> {
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > SHOW_MAX) throw new DataError(`-n ${o.count}: give a number of samples from 1 to ${SHOW_MAX}`);
  if (!Number.isInteger(o.start) || o.start < 0) throw new DataError(`--start ${o.start}: give a sample index ≥ 0`);
  const data = await loadDataset(o.dataset, { dataDir: o.dataDir, baseDir: o.baseDir, seed: o.seed, log: o.log });
  for (const n of data.notes) o.log(`note: ${n}`);
  const plain = o.split === "test" ? data.test : data.train;
  // An epoch's augmented view: what training epoch N (train.ts draws with its 0-based number) feeds the model.
  const split = o.epoch !== undefined && plain ? (plain.augmented?.(o.seed, o.epoch - 1) ?? plain) : plain;
  if (!split) throw new DataError(`dataset "${o.dataset.name}" has no test split (no test source and no split test: …); use --split train`);
  if (o.start >= split.size) throw new DataError(`--start ${o.start}: the ${o.split} split of dataset "${o.dataset.name}" has ${split.size} samples (0 to ${split.size - 1})`);
  const end = Math.min(split.size, o.start + o.count);
  const names = Object.keys(split.fields);
  // Token ids are shown as tokens too; a field that goes on past tokenize (attention_mask, shift…) is not ids.
  const tokenized = new Set(o.dataset.fields.filter((f) => { const last = f.steps[f.steps.length - 1]; return last?.fn === "tokenize" || (last?.fn === "mask_tokens" && last.args?.labels !== true); }).map((f) => f.name));
  const vectorized = new Set(o.dataset.fields.filter((f) => f.steps[f.steps.length - 1]?.fn === "vectorize").map((f) => f.name));
  // A batch at a time: an image field is per-sample hundreds of numbers, and text fields are preprocessed per batch.
  for (let from = o.start; from < end; from += 256) {
    const idx = Uint32Array.from({ length: Math.min(256, end - from) }, (_, i) => from + i);
    const batch = split.batch(idx);
    for (let i = 0; i < idx.length; i++) {
      const line: Record<string, unknown> = { split: o.split, index: idx[i] };
      for (const name of names) {
        const t = batch[name]!;
        const per = t.shape.slice(1);
        const size = per.reduce((a, b) => a * b, 1);
        const values = t.data.subarray(i * size, (i + 1) * size);
        line[name] = nest(values, per);
        const vocab = data.vocab[name];
        if (vocab && tokenized.has(name)) line[`${name}.tokens`] = decodeIds(values, vocab);
        // A vectorized text: its non-zero columns by n-gram (<unk> for the unknown ones).
        if (vocab?.vectorize && vectorized.has(name)) line[`${name}.terms`] = Object.fromEntries(Array.from(values, (x, j) => [vocab.tokens[j] ?? `#${j}`, x] as const).filter(([, x]) => x !== 0).map(([t, x]) => [t, Math.round(x * 1e6) / 1e6]));
        if (data.classes && !per.length && t.dtype === "int32" && values[0]! >= 0 && values[0]! < data.classes.length) line[`${name}.class`] = data.classes[values[0]!];
      }
      o.out(JSON.stringify(line) + "\n");
    }
  }
  return end - o.start;
}
