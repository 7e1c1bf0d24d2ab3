// Which models `nnetc generate` (and an emitted module's generate()) can continue a prompt with: the one rule,
// read from the IR by the CLI (runtime/commands.ts, through generate.ts) and by the TypeScript emitter, which
// writes its answer into the module (nn.DecoderSpec) so that nnetc/runtime never needs the IR. No tfjs here.
// Two kinds: a decoder (one integer token input, optionally its padding mask) and an encoder–decoder (two
// integer token inputs: the decoder's, the one that flows into a causal self-attention without passing through
// a cross-attention's key/value side, and the source, read by the encoder; each optionally with a padding mask).
import type { IRModel } from "../compiler/ir/types.js";
import { RunError } from "./errors.js";

/** An encoder–decoder's source: its token input, padding mask input (if any) and longest sequence. */
export interface SourceParts {
  ids: string;
  mask: string | null;
  maxLen: number;
  /** The source's length is a number (not a bounded dimension): shorter sources are padded to it. */
  fixed: boolean;
  /** Rows of the embedding the source ids go into, null when there is none. */
  vocabSize: number | null;
}

/** A decoder's parts: its token input, padding mask input (if any), next-token logits output and longest sequence. */
export interface DecoderParts {
  ids: string;
  mask: string | null;
  logits: string;
  maxLen: number;
  /** Rows of the token embedding (the ids a prompt may hold), null when the model has no embedding. */
  vocabSize: number | null;
  /** An encoder–decoder's source (the encoder's input); null (or absent, in modules emitted before) for a decoder. */
  source?: SourceParts | null;
}

/** A decoder as the generation loop needs it: its parts, and why the key/value cache cannot serve it (null when it can). */
export interface DecoderSpec extends DecoderParts {
  cacheProblem: string | null;
}

/** The defaults of `nnetc generate` and of an emitted module's generate() (greedy unless a sampling option is given). */
export const GENERATE_DEFAULTS = { maxNew: 64, temperature: 1, seed: 0, cache: true } as const;

/** Tokens a decoder without a prompt starts from, the first the decoder's vocabulary has (else --start / options.start). */
export const START_TOKENS = ["[CLS]", "<s>", "<|endoftext|>"] as const;

/** Ops that compute each position from that position alone (so a cached step sees only new tokens). */
const POSITIONWISE = new Set(["input", "constant", "dense", "tied_dense", "layernorm", "rmsnorm", "dropout", "embedding", "add", "sub", "mul", "div", "relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "leaky_relu", "elu", "identity", "cast"]);

type Node = IRModel["nodes"][number];
const isAttention = (n: Node) => n.op === "attention";
/** An attention node's query/key-value inputs (the mask left out). */
const attnInputs = (n: Node) => n.inputs.slice(0, n.inputs.length - (n.attrs.mask ? 1 : 0));
const isCross = (n: Node) => isAttention(n) && attnInputs(n).length === 2;

/** Node ids reachable from `from` (node ids), following every edge except, with `skipKv`, cross-attention's key/value side and masks. */
function reach(m: IRModel, from: readonly string[], skipKv: boolean): Set<string> {
  const seen = new Set(from);
  for (const n of m.nodes) {
    const ins = skipKv && isAttention(n) ? attnInputs(n).slice(0, 1) : n.inputs;
    if (ins.some((i) => seen.has(i))) seen.add(n.id);
  }
  return seen;
}

/** Nodes computed from the source inputs alone (the encoder: the same at every step of a generation), inputs and constants left out. */
export function sourceOnly(m: IRModel, source: readonly string[]): Set<string> {
  const names = new Set(source);
  const srcIds = m.inputs.filter((i) => names.has(i.name)).map((i) => i.node);
  const fromSource = reach(m, srcIds, false);
  const fromOther = reach(m, m.inputs.filter((i) => !names.has(i.name)).map((i) => i.node), false);
  return new Set(m.nodes.filter((n) => n.op !== "input" && fromSource.has(n.id) && !fromOther.has(n.id)).map((n) => n.id));
}

const memo = new WeakMap<IRModel, Map<string, Set<string>>>();
/** sourceOnly(), computed once per model and source (the interpreter asks at every step). */
export function sourceOnlyCached(m: IRModel, source: readonly string[]): Set<string> {
  let byKey = memo.get(m);
  if (!byKey) memo.set(m, (byKey = new Map()));
  const key = source.join("\0");
  let s = byKey.get(key);
  if (!s) byKey.set(key, (s = sourceOnly(m, source)));
  return s;
}

/** Why `m` is not a decoder (or encoder–decoder) nnetc can generate with, or its parts. */
export function decoderProblem(m: IRModel): { parts: DecoderParts } | { problem: string } {
  const masks = new Set(m.nodes.filter((n) => n.op === "attention" && n.attrs.mask).map((n) => n.inputs[n.inputs.length - 1]!));
  const ints = m.inputs.filter((i) => i.dtype.startsWith("i") && i.shape.length === 2);
  const tokens = ints.filter((i) => !masks.has(i.node));
  const rule = `model "${m.name}" is not a decoder nnetc can generate with: it needs one integer input of token ids [batch, seq] (and optionally its padding mask), or two (an encoder–decoder: the decoder's ids, which flow into a causal self-attention, and the source's, each optionally with its padding mask), no other input, and an output of next-token logits [batch, seq, vocab] (one per token of its embedding)`;
  let ids = tokens.length === 1 ? tokens[0] : undefined;
  let src: (typeof tokens)[number] | undefined;
  let why = "";
  if (tokens.length === 2) {
    // the decoder's ids reach a causal self-attention's queries without crossing a key/value side
    const causal = m.nodes.filter((n) => isAttention(n) && n.attrs.causal && !isCross(n));
    const dec = tokens.filter((t) => {
      const r = reach(m, [t.node], true);
      return causal.some((n) => r.has(n.inputs[0]!));
    });
    if (dec.length === 1) {
      ids = dec[0]!;
      src = tokens.find((t) => t !== ids)!;
    } else why = dec.length ? `: both token inputs flow into a causal self-attention` : `: neither token input flows into a causal self-attention (the decoder's)`;
  }
  // padding masks: an attention's belongs to the tokens its keys come from (a cross-attention's: the source's)
  const fromSrc = src ? reach(m, [src.node], false) : new Set<string>();
  const fromDec = ids ? reach(m, [ids.node], false) : new Set<string>();
  const srcKeys = (n: Node) => fromSrc.has(attnInputs(n).at(-1)!) && !fromDec.has(attnInputs(n).at(-1)!);
  const maskOf = (source: boolean) => {
    const own = new Set(m.nodes.filter((n) => isAttention(n) && n.attrs.mask && srcKeys(n) === source).map((n) => n.inputs[n.inputs.length - 1]!));
    return ints.find((i) => masks.has(i.node) && own.has(i.node));
  };
  const mask = src ? maskOf(false) : ints.find((i) => masks.has(i.node));
  const srcMask = src ? maskOf(true) : undefined;
  const extra = m.inputs.filter((i) => i !== ids && i !== mask && i !== src && i !== srcMask);
  // the token embedding: the one the ids go into, else the model's first
  const embOf = (t: typeof ids) => {
    const e = t && m.nodes.find((n) => n.op === "embedding" && n.inputs[0] === t.node);
    return (e && m.params.find((p) => p.layer === e.name && p.role === "embeddings")?.shape[0]) ?? null;
  };
  const vocabSize = embOf(ids) ?? m.params.find((p) => p.role === "embeddings")?.shape[0] ?? null;
  // next-token logits: a [batch, seq, vocab] output, one value per token of that embedding (an encoder's hidden states are not)
  const perToken = (d: number | string | undefined) => vocabSize === null || typeof d !== "number" || d === vocabSize;
  const logits = m.outputs.map((o) => ({ o, n: m.nodes.find((n) => n.id === o.node)! })).find(({ n }) => n.shape?.length === 3 && perToken(n.shape[2]) && (!src || fromDec.has(n.id)));
  if (!ids || extra.length || !logits) return { problem: rule + why };
  // the longest sequence: the declared bound and the positional embeddings of that stream
  const longest = (t: NonNullable<typeof ids>, stream: Set<string> | null) => {
    const seq = t.shape[1]!;
    const bound = typeof seq === "number" ? seq : m.dims.find((d) => d.name === seq)?.max;
    const pos = m.nodes.filter((n) => n.op === "pos_embedding" && (!stream || stream.has(n.id))).map((n) => n.attrs.max_len as number);
    return Math.min(bound ?? Infinity, ...pos);
  };
  const decStream = src ? reach(m, [ids.node], true) : null;
  const maxLen = longest(ids, decStream);
  if (!Number.isFinite(maxLen)) return { problem: `model "${m.name}" bounds no sequence length: declare it (${ids.name}: i32[batch, seq <= 1024])` };
  let source: SourceParts | null = null;
  if (src) {
    const srcLen = longest(src, reach(m, [src.node], true));
    if (!Number.isFinite(srcLen)) return { problem: `model "${m.name}" bounds no source length: declare it (${src.name}: i32[batch, src <= 1024])` };
    source = { ids: src.name, mask: srcMask?.name ?? null, maxLen: srcLen, fixed: typeof src.shape[1] === "number", vocabSize: embOf(src) };
  }
  return { parts: { ids: ids.name, mask: mask?.name ?? null, logits: logits.o.name, maxLen, vocabSize, source } };
}

/** The model's token input, mask input (if any) and logits output; a RunError when it is not a decoder. */
export function decoderParts(m: IRModel): DecoderParts {
  const d = decoderProblem(m);
  if ("problem" in d) throw new RunError(`generate: ${d.problem}`);
  return d.parts;
}

/**
 * Why the key/value cache cannot serve this model, or null. The decoder's ops must compute each position
 * alone, or be causal self-attention (keys and values appended step by step) or, in an encoder–decoder,
 * cross-attention whose keys and values come from the source alone (computed at the first step and kept:
 * the encoder then runs once). The encoder itself may mix positions as it likes.
 */
export function cacheProblem(m: IRModel): string | null {
  const d = decoderProblem(m);
  const source = "parts" in d && d.parts.source ? d.parts.source : null;
  const enc = source ? sourceOnly(m, [source.ids, ...(source.mask ? [source.mask] : [])]) : new Set<string>();
  for (const n of m.nodes) {
    if (enc.has(n.id)) continue;
    if (isCross(n) && enc.has(n.inputs[1]!)) {
      if (n.attrs.causal || n.attrs.rotary) return `layer ${n.name} (cross-attention, ${n.attrs.causal ? "causal" : "rotary"}) mixes positions`;
      if (enc.has(n.inputs[0]!) || (n.attrs.mask && enc.has(n.inputs[n.inputs.length - 1]!))) return `layer ${n.name} (cross-attention) reads ${enc.has(n.inputs[0]!) ? "queries" : "a mask"} computed from the source alone`;
      continue;
    }
    const reads = n.inputs.find((i) => enc.has(i));
    if (reads) return `layer ${n.name} (${n.op}) reads the encoder's output other than as a cross-attention's keys and values`;
    if (POSITIONWISE.has(n.op) || n.op === "pos_embedding") continue;
    if (n.op === "softmax" && (n.attrs.axis === -1 || n.attrs.axis === 2)) continue;
    if (n.op === "attention" && n.attrs.causal && !isCross(n)) continue;
    return `layer ${n.name} (${n.op}${n.op === "attention" ? ", not causal self-attention" : ""}) mixes positions`;
  }
  return null;
}

/** decoderParts() and cacheProblem() together. */
export function decoderSpec(m: IRModel): DecoderSpec {
  return { ...decoderParts(m), cacheProblem: cacheProblem(m) };
}
