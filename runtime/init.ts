// Weight initialisation from the IR's initializer names, Keras-compatible, driven by a seeded generator
// so that `--seed` reproduces a run exactly.
import * as tf from "@tensorflow/tfjs-core";

export type Random = () => number;

/** What initialisation needs of a weight. */
export interface ParamInit {
  name: string;
  shape: readonly number[];
  init: string;
  trainable: boolean;
}

/** Fan-in and fan-out as Keras computes them: receptive field × channels for kernels. */
function fans(shape: readonly number[]): [number, number] {
  if (shape.length < 1) return [1, 1];
  if (shape.length === 1) return [shape[0]!, shape[0]!];
  if (shape.length === 2) return [shape[0]!, shape[1]!];
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return [shape[shape.length - 2]! * receptive, shape[shape.length - 1]! * receptive];
}

function gaussian(rand: Random): number {
  let u = 0;
  while (u === 0) u = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Rows of a [rows, cols] matrix made orthonormal (Gram–Schmidt on Gaussian rows; rows ≤ cols). */
function orthogonal(rows: number, cols: number, rand: Random): Float32Array {
  const transpose = rows > cols;
  const [r, c] = transpose ? [cols, rows] : [rows, cols];
  const m = Array.from({ length: r }, () => Float64Array.from({ length: c }, () => gaussian(rand)));
  for (let i = 0; i < r; i++) {
    const v = m[i]!;
    for (let j = 0; j < i; j++) {
      const u = m[j]!;
      let dot = 0;
      for (let k = 0; k < c; k++) dot += v[k]! * u[k]!;
      for (let k = 0; k < c; k++) v[k] -= dot * u[k]!;
    }
    let norm = 0;
    for (let k = 0; k < c; k++) norm += v[k]! * v[k]!;
    norm = Math.sqrt(norm) || 1;
    for (let k = 0; k < c; k++) v[k] /= norm;
  }
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < r; i++) for (let k = 0; k < c; k++) out[transpose ? k * cols + i : i * cols + k] = m[i]![k]!;
  return out;
}

/** The initial values of one weight. */
export function initialValues(p: ParamInit, rand: Random): Float32Array {
  const n = p.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  switch (p.init) {
    case "zeros":
      return out;
    case "ones":
      return out.fill(1);
    case "glorot_uniform": {
      const [fi, fo] = fans(p.shape);
      const limit = Math.sqrt(6 / (fi + fo));
      for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * limit;
      return out;
    }
    case "lora_a": {
      // A LoRA adapter's A [in, rank]: PEFT's kaiming_uniform(a=√5) on its [rank, in], U(±1/√in).
      const limit = 1 / Math.sqrt(p.shape[0]!);
      for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * limit;
      return out;
    }
    case "normal_002":
      // N(0, 0.02²) (Box–Muller), as ViT's class token and BERT's embeddings.
      for (let i = 0; i < n; i++) out[i] = 0.02 * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      return out;
    case "embedding_uniform":
      for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * 0.05;
      return out;
    case "orthogonal": {
      const rows = p.shape[0]!;
      return orthogonal(rows, n / rows, rand);
    }
    case "lstm_bias": {
      // Keras unit_forget_bias: zeros, with the forget gate (second quarter) at 1.
      const units = n / 4;
      out.fill(1, units, 2 * units);
      return out;
    }
  }
  throw new Error(`unknown initializer "${p.init}" for ${p.name}`);
}

/** Create a variable per weight. Non-trainable weights (moving statistics) are variables too. */
export function initWeights(params: readonly ParamInit[], rand: Random): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  // In tidy: the initial tensor would otherwise stay alive (sharing the variable's data) after the variable is disposed.
  for (const p of params) out.set(p.name, tf.tidy(() => tf.variable(tf.tensor(initialValues(p, rand), [...p.shape], "float32"), p.trainable)));
  return out;
}
