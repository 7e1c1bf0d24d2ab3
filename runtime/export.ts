// Deployable weights: pruned and/or quantized safetensors files, written by `nnetc compile --prune/--quantize`
// and by a training plan's export step. An int8 file from a plan also records the activation ranges of every
// pruned-or-quantized layer's input and output, measured on training samples (calibration), under the
// metadata key `activation_ranges` (see ActivationRanges), for exporters that quantize activations.
import * as tf from "@tensorflow/tfjs-core";
import * as path from "node:path";
import { encodeSafetensors, writeFileAtomic, type HostTensor } from "./checkpoint/index.js";
import type { SavedData, Split } from "./data/index.js";
import { packVocabularies, type Vocabularies } from "./data/tokenize.js";
import type { Net, Weights } from "./interpret.js";
import { pruneWeights, sparsityOf } from "./prune.js";
import { encodeSparse, quantizeWeights, SPARSE_KEY, type QuantKind } from "./quantize.js";

/** The metadata key of an int8 file's calibrated activation ranges. */
export const ACTIVATION_RANGES_KEY = "activation_ranges";

/**
 * JSON under `activation_ranges`: per layer name, [min, max] of its first input and of its output (after
 * a fused activation such as conv2d(…, activation: relu)) over `samples` training samples in inference mode.
 * A layer applied more than once (a shared layer) gets the union of its ranges.
 */
export interface ActivationRanges {
  samples: number;
  layers: Record<string, { input: [number, number]; output: [number, number] }>;
}

export interface Transform {
  /** Post-training magnitude pruning (layer scope) of these kernels. */
  prune?: { sparsity: number; weights: readonly string[] };
  quantize?: QuantKind;
  /** Tensors to store sparse where that is smaller (the prunable kernels). */
  sparse?: readonly string[];
}

/** The file kind: "pruned", "int8", "float16", "pruned.int8", "pruned.float16". */
export function weightKind(t: Transform): string {
  return [...(t.prune ? ["pruned"] : []), ...(t.quantize ? [t.quantize] : [])].join(".");
}

/**
 * Pruned and/or quantized host weights (kernels with enough zeros stored sparse), the metadata that says
 * which are sparse, and the fraction of the pruned kernels that is zero.
 */
export function transformWeights(host: Record<string, HostTensor>, t: Transform): { tensors: Record<string, HostTensor>; metadata: Record<string, string>; sparsity: number | null } {
  let w = host;
  let sparsity: number | null = null;
  if (t.prune) {
    w = pruneWeights(host, { sparsity: t.prune.sparsity, scope: "layer", weights: t.prune.weights }).weights;
    sparsity = sparsityOf(w, t.prune.weights).sparsity;
  }
  const { tensors, shapes } = encodeSparse(t.quantize ? quantizeWeights(w, t.quantize) : w, t.sparse ?? []);
  return { tensors, metadata: Object.keys(shapes).length ? { [SPARSE_KEY]: JSON.stringify(shapes) } : {}, sparsity };
}

/** Min/max of each listed layer's input and output over a split, batch by batch, in inference mode. */
export function calibrate(net: Net, weights: Weights, split: Split, layers: ReadonlySet<string>, batch = 128): ActivationRanges {
  const ranges: ActivationRanges["layers"] = {};
  const widen = (r: [number, number] | undefined, t: tf.Tensor): [number, number] => {
    const lo = tf.min(t).dataSync()[0]!;
    const hi = tf.max(t).dataSync()[0]!;
    return r ? [Math.min(r[0], lo), Math.max(r[1], hi)] : [lo, hi];
  };
  for (let start = 0; start < split.size; start += batch) {
    const idx = Array.from({ length: Math.min(batch, split.size - start) }, (_, i) => start + i);
    const raw = split.batch(idx);
    tf.tidy(() => {
      const inputs = Object.fromEntries(net.inputs.map((i) => [i.name, tf.tensor(raw[i.name]!.data, raw[i.name]!.shape, raw[i.name]!.dtype)]));
      net.forward(weights, inputs, {
        training: false,
        observe: (layer, ins, out) => {
          if (!layers.has(layer) || !ins[0]) return;
          tf.tidy(() => {
            const r = ranges[layer];
            ranges[layer] = { input: widen(r?.input, ins[0]!), output: widen(r?.output, out) };
          });
        },
      });
    });
  }
  return { samples: split.size, layers: ranges };
}

export interface ExportResult {
  file: string;
  kind: string;
  bytes: number;
  float32Bytes: number;
  /** Fraction of the pruned kernels that is zero (null when not pruned). */
  sparsity: number | null;
  /** Layers with activation ranges (0 when not int8, or when the model's forward pass cannot report them). */
  calibrated: number;
  samples: number;
}

export interface ExportOptions {
  outDir: string;
  net: Net;
  weights: Weights;
  fingerprint: string;
  vocab: unknown;
  /** Class names and column shapes (runtime/data: savedData), carried in the file's metadata as the vocabulary is. */
  saved?: SavedData;
  spec: { quantize: QuantKind | null; prune: number | null; weights: readonly string[] };
  /** Training samples for int8 calibration. */
  calibration: Split;
}

/** Class names and column shapes as safetensors metadata (strings), beside the vocabulary. */
export function savedMetadata(d: SavedData | undefined): Record<string, string> {
  return { ...(d?.classes ? { classes: JSON.stringify(d.classes) } : {}), ...(d?.columns ? { columns: JSON.stringify(d.columns) } : {}) };
}

/** A plan's export step: OUT/model.<kind>.safetensors beside model.safetensors, written atomically. */
export function exportWeights(o: ExportOptions): ExportResult {
  const host: Record<string, HostTensor> = {};
  for (const [k, v] of o.weights) host[k] = { dtype: "F32", shape: v.shape, data: Float32Array.from(v.dataSync() as Float32Array) };
  const t: Transform = { ...(o.spec.prune !== null ? { prune: { sparsity: o.spec.prune, weights: o.spec.weights } } : {}), ...(o.spec.quantize ? { quantize: o.spec.quantize } : {}), sparse: o.spec.weights };
  const kind = weightKind(t);
  const { tensors, metadata, sparsity } = transformWeights(host, t);
  let ranges: ActivationRanges | null = null;
  if (o.spec.quantize === "int8") {
    const byName = new Map(o.net.params.map((p) => [p.name, p.layer]));
    const layers = new Set(o.spec.weights.map((w) => byName.get(w)!).filter(Boolean));
    ranges = calibrate(o.net, o.weights, o.calibration, layers);
  }
  const meta = {
    format: "nnetc",
    model: o.net.name,
    fingerprint: o.fingerprint,
    ...(o.spec.quantize ? { quantized: o.spec.quantize } : {}),
    ...(o.spec.prune !== null ? { pruned: String(o.spec.prune) } : {}),
    ...(o.vocab ? { vocab: JSON.stringify(packVocabularies(o.vocab as Vocabularies)) } : {}),
    ...savedMetadata(o.saved),
    ...(ranges && Object.keys(ranges.layers).length ? { [ACTIVATION_RANGES_KEY]: JSON.stringify(ranges) } : {}),
    ...metadata,
  };
  const bytes = encodeSafetensors(tensors, meta);
  const file = path.join(o.outDir, `model.${kind}.safetensors`);
  writeFileAtomic(file, bytes);
  const float32Bytes = encodeSafetensors(host, { format: "nnetc", model: o.net.name, fingerprint: o.fingerprint }).length;
  const calibrated = ranges ? Object.keys(ranges.layers).length : 0;
  return { file, kind, bytes: bytes.length, float32Bytes, sparsity, calibrated, samples: calibrated ? ranges!.samples : 0 };
}
