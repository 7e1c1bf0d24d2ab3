// Text generation with a decoder (`nnetc generate`): a model with an integer token input [batch, seq] (and
// optionally a padding mask of the same shape) and next-token logits [batch, seq, vocab]. Each step runs the
// model, takes the last position's logits and picks a token: greedy (argmax), or sampled at a temperature from
// the top-k / top-p (nucleus) candidates with a seeded generator. With the key/value cache (default where the
// model allows it) the prompt runs once and each later step feeds one token: every causal self-attention layer
// keeps its keys and values (interpret.ts RunOptions.cache) and positional embeddings continue at the offset;
// without it every step recomputes the whole sequence. Both give the same tokens (spec/unit/generate.test.ts).
import * as tf from "@tensorflow/tfjs-core";
import type { IRModel } from "../compiler/ir/types.js";
import { Rng } from "./data/rng.js";
import { RunError } from "./errors.js";
import { run, type Weights } from "./interpret.js";

export interface GenerateOptions {
  maxNew: number;
  /** Argmax at every step (temperature, topK and topP unused). */
  greedy: boolean;
  temperature: number;
  topK: number | null;
  topP: number | null;
  seed: number;
  /** Ids that end the generation (not emitted). */
  stop: readonly number[];
  /** Use the key/value cache (when the model allows it). */
  cache: boolean;
  /** Called with each new id as it is chosen (streaming). */
  onToken?: (id: number) => void;
}

export interface GenerateResult {
  ids: number[];
  /** Why it ended: max_new reached, a stop token, or the model's longest sequence. */
  ended: "max_new" | "stop" | "length";
  cached: boolean;
  /** Seconds of decoding (the prompt's step included) and new tokens per second. */
  seconds: number;
  tokensPerSec: number;
}

/** Ops that compute each position from that position alone (so a cached step sees only new tokens). */
const POSITIONWISE = new Set(["input", "constant", "dense", "tied_dense", "layernorm", "rmsnorm", "dropout", "embedding", "add", "sub", "mul", "div", "relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "leaky_relu", "elu", "identity", "cast"]);

/** The model's token input, mask input (if any) and logits output; a RunError when it is not a decoder. */
export function decoderParts(m: IRModel): { ids: string; mask: string | null; logits: string; maxLen: number } {
  const masks = new Set(m.nodes.filter((n) => n.op === "attention" && n.attrs.mask).map((n) => n.inputs[n.inputs.length - 1]!));
  const ints = m.inputs.filter((i) => i.dtype.startsWith("i") && i.shape.length === 2);
  const ids = ints.find((i) => !masks.has(i.node));
  const mask = ints.find((i) => masks.has(i.node));
  const extra = m.inputs.filter((i) => i !== ids && i !== mask);
  const logits = m.outputs.map((o) => ({ o, n: m.nodes.find((n) => n.id === o.node)! })).find(({ n }) => n.shape?.length === 3);
  if (!ids || extra.length || !logits) {
    throw new RunError(`generate: model "${m.name}" is not a decoder nnetc can generate with: it needs one integer input of token ids [batch, seq] (and optionally its padding mask), no other input, and an output of next-token logits [batch, seq, vocab]`);
  }
  const seq = ids.shape[1]!;
  const bound = typeof seq === "number" ? seq : m.dims.find((d) => d.name === seq)?.max;
  const pos = m.nodes.filter((n) => n.op === "pos_embedding").map((n) => n.attrs.max_len as number);
  const maxLen = Math.min(bound ?? Infinity, ...pos);
  if (!Number.isFinite(maxLen)) throw new RunError(`generate: model "${m.name}" bounds no sequence length: declare it (ids: i32[batch, seq <= 1024])`);
  return { ids: ids.name, mask: mask?.name ?? null, logits: logits.o.name, maxLen };
}

/** Why the key/value cache cannot serve this model (an op that mixes positions other than causal self-attention), or null. */
export function cacheProblem(m: IRModel): string | null {
  for (const n of m.nodes) {
    if (POSITIONWISE.has(n.op) || n.op === "pos_embedding") continue;
    if (n.op === "softmax" && (n.attrs.axis === -1 || n.attrs.axis === 2)) continue;
    if (n.op === "attention" && n.attrs.causal && n.inputs.length - (n.attrs.mask ? 1 : 0) === 1) continue;
    return `layer ${n.name} (${n.op}${n.op === "attention" ? ", not causal self-attention" : ""}) mixes positions`;
  }
  return null;
}

/** The next id from one position's logits. */
function pick(logits: Float32Array, o: GenerateOptions, rng: Rng): number {
  if (o.greedy || o.temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let cand = Array.from(logits, (l, i) => ({ i, l: l / o.temperature })).sort((a, b) => b.l - a.l);
  if (o.topK !== null) cand = cand.slice(0, Math.max(1, o.topK));
  const max = cand[0]!.l;
  let probs = cand.map((c) => Math.exp(c.l - max));
  let sum = probs.reduce((a, b) => a + b, 0);
  if (o.topP !== null) {
    let acc = 0;
    let keep = 0;
    while (keep < cand.length && acc < o.topP * sum) acc += probs[keep++]!;
    cand = cand.slice(0, Math.max(1, keep));
    probs = probs.slice(0, cand.length);
    sum = probs.reduce((a, b) => a + b, 0);
  }
  let r = rng.next() * sum;
  for (let k = 0; k < cand.length; k++) if ((r -= probs[k]!) <= 0) return cand[k]!.i;
  return cand[cand.length - 1]!.i;
}

/** Generate up to o.maxNew ids after `prompt` (batch 1). */
export function generateIds(m: IRModel, weights: Weights, prompt: readonly number[], o: GenerateOptions): GenerateResult {
  const parts = decoderParts(m);
  if (!prompt.length) throw new RunError("generate: the prompt has no tokens");
  if (prompt.length >= parts.maxLen) throw new RunError(`generate: the prompt has ${prompt.length} tokens; model "${m.name}" reads at most ${parts.maxLen}`);
  const problem = o.cache ? cacheProblem(m) : "not asked for";
  const cached = problem === null;
  const rng = new Rng(o.seed);
  const seq = [...prompt];
  const out: number[] = [];
  const kv = new Map<string, { k: tf.Tensor | null; v: tf.Tensor | null }>();
  let ended: GenerateResult["ended"] = "max_new";
  const t0 = performance.now();
  try {
    while (out.length < o.maxNew) {
      if (seq.length >= parts.maxLen) {
        ended = "length";
        break;
      }
      const offset = cached && out.length ? seq.length - 1 : 0;
      const feed = seq.slice(offset);
      const old = [...kv.values()].flatMap((e) => [e.k, e.v]);
      const last = tf.tidy(() => {
        const inputs: Record<string, tf.Tensor> = { [parts.ids]: tf.tensor2d(feed, [1, feed.length], "int32") };
        if (parts.mask) inputs[parts.mask] = tf.ones([1, feed.length], "int32");
        const y = run(m, weights, inputs, { training: false, ...(cached ? { cache: { offset, kv } } : {}) }).outputs[parts.logits]!;
        return tf.squeeze(tf.slice(y, [0, feed.length - 1, 0], [1, 1, -1])).dataSync() as Float32Array;
      });
      for (const t of old) if (t && ![...kv.values()].some((e) => e.k === t || e.v === t)) t.dispose();
      const id = pick(last, o, rng);
      if (o.stop.includes(id)) {
        ended = "stop";
        break;
      }
      out.push(id);
      seq.push(id);
      o.onToken?.(id);
    }
  } finally {
    for (const e of kv.values()) tf.dispose([e.k, e.v].filter((t): t is tf.Tensor => t !== null));
  }
  const seconds = (performance.now() - t0) / 1000;
  return { ids: out, ended, cached, seconds, tokensPerSec: out.length / Math.max(seconds, 1e-9) };
}
