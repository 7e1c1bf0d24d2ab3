// nnetc predict's pieces beyond running the model: the model cut at a layer (--from: a VAE's decoder fed
// latents), random inputs (--input random:N), what an output means (class probabilities with the run's class
// names, top K) and image-valued outputs as one PNG grid (--grid).
import * as tf from "@tensorflow/tfjs-core";
import type { IRModel } from "../compiler/ir/types.js";
import { Rng } from "./data/index.js";
import { encodePng, IMAGE_LIMITS } from "./data/image.js";
import { fromLogits } from "./engine.js";
import { RunError } from "./errors.js";
import type { PlanSpec } from "./spec.js";

/** At most this many random rows (--input random:N). */
export const RANDOM_ROWS = 10_000;

/**
 * --from NAME: `m` with the value of the layer or binding NAME given as an input of that name, keeping the outputs
 * computed from it and the nodes they need (NAME an input: the outputs computed from it). Inputs of `m` those outputs still read stay inputs (a conditional
 * decoder's label). models/vae.nnet with --from sample_normal is its decoder: latents in, `recon` out.
 */
export function cutModel(m: IRModel, from: string): IRModel {
  // An input: the outputs computed from it (a GAN's samples from its noise, without its real images).
  const input = m.inputs.find((i) => i.name === from);
  const byBinding = m.nodes.filter((n) => n.binding === from);
  const byLayer = m.nodes.filter((n) => n.name === from && n.op !== "input");
  const cands = input ? m.nodes.filter((n) => n.id === input.node) : byBinding.length ? [byBinding[byBinding.length - 1]!] : byLayer;
  if (cands.length === 0) {
    const names = [...new Set(m.nodes.filter((n) => n.op !== "input").map((n) => n.name))];
    throw new RunError(`--from ${from}: model "${m.name}" has no layer or binding of that name (its layers: ${names.slice(0, 12).join(", ")}${names.length > 12 ? ", …" : ""})`);
  }
  if (cands.length > 1) throw new RunError(`--from ${from}: layer "${from}" is used ${cands.length} times (a shared layer); name a binding instead (x = … in the model)`);
  const cut = cands[0]!;
  if (!cut.shape || !cut.dtype) throw new RunError(`--from ${from}: the layer has no known shape`);
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  // What each output needs, walking back and stopping at the cut.
  const needs = (start: string): Set<string> => {
    const seen = new Set<string>();
    const stack = [start];
    while (stack.length) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      if (id !== cut.id) stack.push(...byId.get(id)!.inputs);
    }
    return seen;
  };
  const outputs = m.outputs.map((o) => ({ o, need: needs(o.node) })).filter((x) => x.need.has(cut.id));
  if (!outputs.length) throw new RunError(`--from ${from}: no output of model "${m.name}" is computed from it`);
  const keep = new Set(outputs.flatMap((x) => [...x.need]));
  const nodes = m.nodes.filter((n) => keep.has(n.id)).map((n) => (n.id === cut.id ? { ...n, op: "input", name: from, inputs: [], attrs: {} } : n));
  const inputs = [...m.inputs.filter((i) => keep.has(i.node) && i.node !== cut.id), input ?? { name: from, node: cut.id, dtype: cut.dtype, shape: ["batch", ...cut.shape.slice(1)] }];
  return { ...m, inputs, outputs: outputs.map((x) => x.o), nodes };
}

/** N rows of N(0, 1) for every input (all must be float, every size but the batch known), seeded. */
export function randomInputs(m: IRModel, n: number, seed: number): Record<string, tf.Tensor> {
  if (!Number.isInteger(n) || n < 1 || n > RANDOM_ROWS) throw new RunError(`--input random:${n}: give 1 to ${RANDOM_ROWS.toLocaleString("en-US")} rows`);
  const rng = new Rng(seed);
  const normal = () => {
    // Box–Muller; 1 - u keeps the logarithm finite
    const u = 1 - rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  };
  const out: Record<string, tf.Tensor> = {};
  for (const inp of m.inputs) {
    if (!inp.dtype.startsWith("f")) throw new RunError(`--input random:${n}: input "${inp.name}" of model "${m.name}" holds ${inp.dtype} values; random rows are for float inputs (latents, noise)${m.inputs.length === 1 ? "; a decoder inside a larger model can be run alone with --from LAYER" : ""}`);
    const dims = inp.shape.slice(1);
    if (!dims.every((d): d is number => typeof d === "number")) throw new RunError(`--input random:${n}: input "${inp.name}" has the symbolic size [${inp.shape.join(", ")}]; random rows need every size but the batch known`);
    const per = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n * per);
    for (let i = 0; i < data.length; i++) data[i] = normal();
    out[inp.name] = tf.tensor(data, [n, ...dims], "float32");
  }
  return out;
}

/** An output's values: shape [batch, …] and row-major data. */
export interface OutputValues {
  shape: number[];
  data: Float32Array;
}

/** A classification output: how its scores become probabilities, and its classes' names when the run saved them. */
export interface ClassOutput {
  /** softmax (logits of cross-entropy), sigmoid (logits of binary cross-entropy, each class on its own), none (probabilities already). */
  probs: "softmax" | "sigmoid" | "none";
  /** One score for two classes (binary cross-entropy on [batch, 1] or [batch]): the probability of class 1. */
  binary: boolean;
  names: string[] | null;
}

const CLASSIFICATION = new Set(["cross_entropy", "focal", "binary_cross_entropy"]);

/** The outputs of `m` that the plan's classification losses read, one score per class per sample. */
export function classOutputs(m: IRModel, plan: PlanSpec | undefined, shapes: Record<string, number[]>, classes: string[] | undefined): Map<string, ClassOutput> {
  const out = new Map<string, ClassOutput>();
  if (!plan) return out;
  for (const o of m.outputs) {
    const term = plan.loss.find((t) => t.prediction === o.name && CLASSIFICATION.has(t.fn));
    const shape = shapes[o.name];
    if (!term || !shape || shape.length > 2) continue;
    const c = shape.length === 2 ? shape[1]! : 1;
    const bce = term.fn === "binary_cross_entropy";
    const binary = bce && c === 1;
    if (!binary && c < 2) continue;
    const logits = fromLogits(plan, o.name);
    const n = binary ? 2 : c;
    out.set(o.name, { probs: logits ? (bce ? "sigmoid" : "softmax") : "none", binary, names: classes && classes.length === n && !term.targetIsOutput ? classes : null });
  }
  return out;
}

/** Sample i's classes by probability, the K most likely. */
export function topClasses(v: OutputValues, i: number, c: ClassOutput, k: number): { id: number; name?: string; p: number }[] {
  const per = v.shape.length === 2 ? v.shape[1]! : 1;
  const row = Array.from(v.data.subarray(i * per, (i + 1) * per));
  let p: number[];
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  if (c.binary) {
    const p1 = c.probs === "sigmoid" ? sig(row[0]!) : row[0]!;
    p = [1 - p1, p1];
  } else if (c.probs === "softmax") {
    const max = Math.max(...row);
    const e = row.map((x) => Math.exp(x - max));
    const s = e.reduce((a, b) => a + b, 0);
    p = e.map((x) => x / s);
  } else p = c.probs === "sigmoid" ? row.map(sig) : row;
  return p
    .map((q, id) => ({ id, ...(c.names ? { name: c.names[id]! } : {}), p: q }))
    .sort((a, b) => b.p - a.p || a.id - b.id)
    .slice(0, k);
}

/**
 * Sample i as `predict --json` prints it (and `nnetc serve`'s predict route answers): every output's values, and
 * for a classification output its top class's id and name and the K most likely classes with probabilities.
 */
export function predictionRow(res: Record<string, OutputValues>, i: number, classes: Map<string, ClassOutput>, k: number): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(res)) {
    row[name] = rowArray(v, i);
    const c = classes.get(name);
    if (c) {
      const top = topClasses(v, i, c, k);
      row[`${name}_class`] = top[0]!.id;
      if (top[0]!.name !== undefined) row[`${name}_name`] = top[0]!.name;
      row[`${name}_top`] = top.map((t) => ({ class: t.id, ...(t.name !== undefined ? { name: t.name } : {}), probability: t.p }));
    } else if (v.shape.length === 2 && v.shape[1]! > 1) row[`${name}_class`] = argmax(v.data.subarray(i * v.shape[1]!, (i + 1) * v.shape[1]!));
  }
  return row;
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

/** Sample i of an output as nested arrays (JSON). */
function rowArray(v: OutputValues, i: number): unknown {
  const dims = v.shape.slice(1);
  const per = dims.reduce((a, b) => a * b, 1);
  const flat = Array.from(v.data.subarray(i * per, (i + 1) * per));
  if (!dims.length) return flat[0];
  const nest = (off: number, d: number): unknown => (d === dims.length - 1 ? flat.slice(off, off + dims[d]!) : Array.from({ length: dims[d]! }, (_, j) => nest(off + j * dims.slice(d + 1).reduce((a, b) => a * b, 1), d + 1)));
  return nest(0, 0);
}

/** A short text of sample i of a non-classification output: the values when few, else their range. */
export function describeRow(v: OutputValues, i: number): string {
  const per = v.shape.slice(1).reduce((a, b) => a * b, 1);
  const row = v.data.subarray(i * per, (i + 1) * per);
  const f = (x: number) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : x.toFixed(4));
  if (per <= 8) return `[${Array.from(row, f).join(", ")}]`;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const x of row) {
    min = Math.min(min, x);
    max = Math.max(max, x);
    sum += x;
  }
  return `[${v.shape.slice(1).join("×")}] min ${f(min)} mean ${f(sum / per)} max ${f(max)}`;
}

/** Whether an output is image-valued: per sample [h, w] or [h, w, 1|3]. */
export const isImageShape = (shape: readonly number[]): boolean => (shape.length === 3 && shape[1]! >= 2 && shape[2]! >= 2) || (shape.length === 4 && shape[1]! >= 2 && shape[2]! >= 2 && (shape[3] === 1 || shape[3] === 3));

/** The gap between tiles, in pixels (grey 128). */
export const GRID_GAP = 2;

/**
 * Sample images of an output as one PNG grid, ceil(√N) tiles a row, GRID_GAP pixels of grey between tiles.
 * Values become pixels as: the sigmoid of logits (an output binary cross-entropy reads as logits), then as
 * they are when all lie in [0, 1], else min–max scaled over the whole grid (one scale: tiles compare).
 */
export async function gridPng(v: OutputValues, sigmoid: boolean): Promise<{ png: Uint8Array; cols: number; rows: number; width: number; height: number; scale: string }> {
  const [n, h, w] = v.shape as [number, number, number];
  if (n < 1) throw new RunError("--grid: there are no samples to draw");
  const ch = v.shape.length === 4 ? (v.shape[3] as 1 | 3) : 1;
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const width = cols * w + (cols - 1) * GRID_GAP;
  const height = rows * h + (rows - 1) * GRID_GAP;
  if (width * height > IMAGE_LIMITS.pixels) throw new RunError(`--grid: ${n} tiles of ${h} × ${w} make a ${width} × ${height} image, over ${IMAGE_LIMITS.pixels.toLocaleString("en-US")} pixels; predict fewer rows`);
  const vals = sigmoid ? v.data.map((x) => 1 / (1 + Math.exp(-x))) : v.data;
  let min = Infinity;
  let max = -Infinity;
  for (const x of vals) {
    if (!Number.isFinite(x)) continue;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  const inUnit = min >= 0 && max <= 1;
  const lo = inUnit ? 0 : min;
  const span = inUnit ? 1 : max > min ? max - min : 1;
  const scale = sigmoid ? "the sigmoid of the logits" : inUnit ? "values as they are (all in [0, 1])" : `min–max scaled from [${min.toPrecision(4)}, ${max.toPrecision(4)}]`;
  const px = new Uint8Array(width * height * ch).fill(128);
  const per = h * w * ch;
  for (let k = 0; k < n; k++) {
    const x0 = (k % cols) * (w + GRID_GAP);
    const y0 = Math.floor(k / cols) * (h + GRID_GAP);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w * ch; x++) {
        const t = vals[k * per + y * w * ch + x]!;
        px[((y0 + y) * width + x0) * ch + x] = Number.isFinite(t) ? Math.round(255 * Math.min(1, Math.max(0, (t - lo) / span))) : 0;
      }
    }
  }
  return { png: await encodePng(px, width, height, ch), cols, rows, width, height, scale };
}

/** Whether `--grid` should take an output's sigmoid: the plan reads it as binary cross-entropy logits. */
export function gridSigmoid(plan: PlanSpec | undefined, output: string): boolean {
  return !!plan && plan.loss.some((t) => t.prediction === output && t.fn === "binary_cross_entropy") && fromLogits(plan, output);
}
