// Text generation with a decoder (`nnetc generate`, and generate() of an emitted TypeScript module): a model
// with an integer token input [batch, seq] (and optionally a padding mask of the same shape) and next-token
// logits [batch, seq, vocab] (the rule is decoder.ts's). Each step runs the model, takes the last position's
// logits and picks a token: greedy (argmax), or sampled at a temperature from the top-k / top-p (nucleus)
// candidates with a seeded generator. With the key/value cache (default where the model allows it) the prompt
// runs once and each later step feeds one token: every causal self-attention layer keeps its keys and values
// (Step.cache, which the interpreter and emitted forward passes both honour) and positional embeddings
// continue at the offset; without it every step recomputes the whole sequence. An encoder–decoder also takes
// the source's ids (o.source), fed whole at every step; with the cache each cross-attention keeps the source's
// keys and values from the first step and the encoder runs only then. Both give the same tokens
// (spec/unit/generate.test.ts, generate_encdec.test.ts). The loop runs any Net (interpreted, or an emitted forward pass) and loads
// nothing of the compiler: nnetc/runtime imports it.
import * as tf from "@tensorflow/tfjs-core";
import type { Vocabulary } from "./data/tokenize.js";
import { Rng } from "./data/rng.js";
import { encodeText, padId } from "./data/tokenize.js";
import { START_TOKENS, type DecoderSpec } from "./decoder.js";
import { hfAfter } from "./data/hf_tokenizer.js";
import { RunError } from "./errors.js";
import type { Net, Weights } from "./interpret.js";

export { cacheProblem, decoderParts, decoderProblem, decoderSpec, GENERATE_DEFAULTS, START_TOKENS, type DecoderParts, type DecoderSpec, type SourceParts } from "./decoder.js";

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
  /** An encoder–decoder's source ids (required there, refused for a decoder). */
  source?: readonly number[];
  /** The id a source is padded with to a fixed length (default 0). */
  sourcePad?: number;
}

export interface GenerateResult {
  ids: number[];
  /** Why it ended: max_new reached, a stop token, or the model's longest sequence. */
  ended: "max_new" | "stop" | "length";
  cached: boolean;
  /** Why the model cannot use the key/value cache (null when it can). */
  cacheProblem: string | null;
  /** Seconds of decoding (the prompt's step included) and new tokens per second. */
  seconds: number;
  tokensPerSec: number;
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

/** Generate up to o.maxNew ids after `prompt` (batch 1) with `net`'s forward pass (training form, inference mode). */
export function generateWith(net: Pick<Net, "name" | "forward">, weights: Weights, parts: DecoderSpec, prompt: readonly number[], o: GenerateOptions): GenerateResult {
  if (!prompt.length) throw new RunError("generate: the prompt has no tokens");
  if (prompt.length >= parts.maxLen) throw new RunError(`generate: the prompt has ${prompt.length} tokens; model "${net.name}" reads at most ${parts.maxLen}`);
  const src = parts.source ?? null;
  if (src && !o.source) throw new RunError(`generate: model "${net.name}" is an encoder–decoder: give it a source`);
  if (!src && o.source) throw new RunError(`generate: model "${net.name}" is a decoder, not an encoder–decoder: it takes no source`);
  if (src && !o.source!.length) throw new RunError("generate: the source has no tokens");
  if (src && o.source!.length > src.maxLen) throw new RunError(`generate: the source has ${o.source!.length} tokens; model "${net.name}" reads at most ${src.maxLen}`);
  // a source of a fixed length is padded to it (its mask, if the model has one, marks the real tokens)
  const srcIds = src ? [...o.source!, ...new Array<number>(src.fixed ? src.maxLen - o.source!.length : 0).fill(o.sourcePad ?? 0)] : [];
  const cached = o.cache && parts.cacheProblem === null;
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
        if (src) {
          inputs[src.ids] = tf.tensor2d(srcIds, [1, srcIds.length], "int32");
          if (src.mask) inputs[src.mask] = tf.tensor2d(srcIds.map((_, i) => (i < o.source!.length ? 1 : 0)), [1, srcIds.length], "int32");
        }
        const cache = { offset, kv, ...(src ? { source: [src.ids, ...(src.mask ? [src.mask] : [])] } : {}) };
        const y = net.forward(weights, inputs, { training: false, ...(cached ? { cache } : {}) }).outputs[parts.logits]!;
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
  return { ids: out, ended, cached, cacheProblem: parts.cacheProblem, seconds, tokensPerSec: out.length / Math.max(seconds, 1e-9) };
}

// ── Text: prompts, stop tokens and the vocabulary, the same for the CLI and emitted modules ─────────────

/** A text prompt as ids: tokenized as the data was, without trailing padding (nor WordPiece's closing [SEP]). */
export function encodePrompt(text: string, vocab: Vocabulary, maxLen: number): number[] {
  const prompt = Array.from(encodeText(text, vocab, maxLen));
  const pad = padId(vocab);
  while (prompt.length && prompt[prompt.length - 1] === pad) prompt.pop();
  // WordPiece closes a text with [SEP]: a continuation starts before it
  if (vocab.split === "wordpiece" && vocab.tokens[prompt[prompt.length - 1]!] === "[SEP]") prompt.pop();
  // a Hugging Face template's closing tokens (T5's </s>) likewise
  if (vocab.split === "hf") {
    const after = hfAfter(vocab);
    if (after.length && after.every((id, i) => prompt[prompt.length - after.length + i] === id)) prompt.length -= after.length;
  }
  return prompt;
}

/** A source text as ids: tokenized as the data was, without trailing padding (generateWith pads a fixed-length source again). */
export function encodeSource(text: string, vocab: Vocabulary, maxLen: number): number[] {
  const ids = Array.from(encodeText(text, vocab, maxLen));
  const pad = padId(vocab);
  while (ids.length && ids[ids.length - 1] === pad) ids.pop();
  return ids;
}

/** An encoder–decoder's first decoder token without a prompt: `start` (an id or a token), else the first of START_TOKENS the vocabulary has. */
export function startIds(start: number | string | undefined, vocab: Vocabulary | null, what: string): number[] {
  if (start !== undefined) return stopIds([start], vocab, what);
  for (const t of START_TOKENS) {
    const id = vocab?.tokens.indexOf(t) ?? -1;
    if (id >= 0) return [id];
  }
  throw new RunError(`generate: the decoder's vocabulary has no start token (${START_TOKENS.join(", ")})${vocab ? "" : " (there is no vocabulary)"}: give ${what} or a prompt`);
}

/** Prompt ids must be integers in [0, vocabSize); `what` names them in the error ("--prompt-ids 1,2"). */
export function checkPromptIds(prompt: readonly number[], vocabSize: number | null, what: string): void {
  const n = vocabSize ?? Infinity;
  if (prompt.some((id) => !Number.isInteger(id) || id < 0 || id >= n)) throw new RunError(`generate: ${what}: ids must be integers in [0, ${n})`);
}

/**
 * Stop ids from ids or tokens of the vocabulary (a string of digits is an id); with none given and a
 * vocabulary, a text ends where the data's texts end: GPT-2's <|endoftext|>, BERT's [SEP], a built vocabulary's padding.
 */
export function stopIds(stop: readonly (number | string)[], vocab: Vocabulary | null, what: string): number[] {
  const ids = stop.map((s) => {
    if (typeof s === "number" || /^\d+$/.test(s)) return Number(s);
    const id = vocab?.tokens.indexOf(s) ?? -1;
    if (id < 0) throw new RunError(`generate: ${what} ${s}: not an id${vocab ? " nor a token of the vocabulary" : " (no vocabulary to look it up in)"}`);
    return id;
  });
  if (vocab && !stop.length) ids.push(vocab.split === "wordpiece" ? vocab.tokens.indexOf("[SEP]") : padId(vocab));
  return ids;
}
