// Which models `nnetc generate` (and an emitted module's generate()) can continue a prompt with: the one rule,
// read from the IR by the CLI (runtime/commands.ts, through generate.ts) and by the TypeScript emitter, which
// writes its answer into the module (nn.DecoderSpec) so that nnetc/runtime never needs the IR. No tfjs here.
import type { IRModel } from "../compiler/ir/types.js";
import { RunError } from "./errors.js";

/** A decoder's parts: its token input, padding mask input (if any), next-token logits output and longest sequence. */
export interface DecoderParts {
  ids: string;
  mask: string | null;
  logits: string;
  maxLen: number;
  /** Rows of the token embedding (the ids a prompt may hold), null when the model has no embedding. */
  vocabSize: number | null;
}

/** A decoder as the generation loop needs it: its parts, and why the key/value cache cannot serve it (null when it can). */
export interface DecoderSpec extends DecoderParts {
  cacheProblem: string | null;
}

/** The defaults of `nnetc generate` and of an emitted module's generate() (greedy unless a sampling option is given). */
export const GENERATE_DEFAULTS = { maxNew: 64, temperature: 1, seed: 0, cache: true } as const;

/** Ops that compute each position from that position alone (so a cached step sees only new tokens). */
const POSITIONWISE = new Set(["input", "constant", "dense", "tied_dense", "layernorm", "rmsnorm", "dropout", "embedding", "add", "sub", "mul", "div", "relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "leaky_relu", "elu", "identity", "cast"]);

/** Why `m` is not a decoder nnetc can generate with, or its parts. */
export function decoderProblem(m: IRModel): { parts: DecoderParts } | { problem: string } {
  const masks = new Set(m.nodes.filter((n) => n.op === "attention" && n.attrs.mask).map((n) => n.inputs[n.inputs.length - 1]!));
  const ints = m.inputs.filter((i) => i.dtype.startsWith("i") && i.shape.length === 2);
  const ids = ints.find((i) => !masks.has(i.node));
  const mask = ints.find((i) => masks.has(i.node));
  const extra = m.inputs.filter((i) => i !== ids && i !== mask);
  // the token embedding: the one the ids go into, else the model's first
  const emb = ids && m.nodes.find((n) => n.op === "embedding" && n.inputs[0] === ids.node);
  const vocabSize = (emb && m.params.find((p) => p.layer === emb.name && p.role === "embeddings")?.shape[0]) ?? m.params.find((p) => p.role === "embeddings")?.shape[0] ?? null;
  // next-token logits: a [batch, seq, vocab] output, one value per token of that embedding (an encoder's hidden states are not)
  const perToken = (d: number | string | undefined) => vocabSize === null || typeof d !== "number" || d === vocabSize;
  const logits = m.outputs.map((o) => ({ o, n: m.nodes.find((n) => n.id === o.node)! })).find(({ n }) => n.shape?.length === 3 && perToken(n.shape[2]));
  if (!ids || extra.length || !logits) {
    return { problem: `model "${m.name}" is not a decoder nnetc can generate with: it needs one integer input of token ids [batch, seq] (and optionally its padding mask), no other input, and an output of next-token logits [batch, seq, vocab] (one per token of its embedding)` };
  }
  const seq = ids.shape[1]!;
  const bound = typeof seq === "number" ? seq : m.dims.find((d) => d.name === seq)?.max;
  const pos = m.nodes.filter((n) => n.op === "pos_embedding").map((n) => n.attrs.max_len as number);
  const maxLen = Math.min(bound ?? Infinity, ...pos);
  if (!Number.isFinite(maxLen)) return { problem: `model "${m.name}" bounds no sequence length: declare it (ids: i32[batch, seq <= 1024])` };
  return { parts: { ids: ids.name, mask: mask?.name ?? null, logits: logits.o.name, maxLen, vocabSize } };
}

/** The model's token input, mask input (if any) and logits output; a RunError when it is not a decoder. */
export function decoderParts(m: IRModel): DecoderParts {
  const d = decoderProblem(m);
  if ("problem" in d) throw new RunError(`generate: ${d.problem}`);
  return d.parts;
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

/** decoderParts() and cacheProblem() together. */
export function decoderSpec(m: IRModel): DecoderSpec {
  return { ...decoderParts(m), cacheProblem: cacheProblem(m) };
}
