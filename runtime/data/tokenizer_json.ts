// A Hugging Face tokenizer.json (what `tokenizer.save()` and `save_pretrained` write) as one of nnetc's
// vocabularies: a WordPiece model (BERT family: model.vocab, the BertNormalizer's lowercase) or a byte-level
// BPE model (GPT-2 family: model.vocab and model.merges, as "a b" strings or [a, b] pairs). The tokenizing is
// then wordpiece.ts's or bpe.ts's, which equal Hugging Face's tokenizers on those models. Anything else
// (Unigram, SentencePiece-style BPE with byte fallback) is refused with what the file holds.
import type { Vocabulary } from "./tokenize.js";
import { BPE_LIMITS } from "./bpe.js";
import { WORDPIECE_LIMITS, WORDPIECE_SPECIALS } from "./wordpiece.js";

/** A tokenizer.json's vocabulary; a message saying why the file is not one nnetc reads. */
export function parseTokenizerJson(text: string): Vocabulary | string {
  if (text.length > Math.max(BPE_LIMITS.bytes, WORDPIECE_LIMITS.bytes) * 2) return `it is over ${(BPE_LIMITS.bytes * 2) >> 20} MB`;
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    return `it is not JSON (${(e as Error).message})`;
  }
  const model = (j as { model?: { type?: unknown; vocab?: unknown; merges?: unknown; byte_fallback?: unknown } } | null)?.model;
  if (!model || typeof model !== "object") return 'it has no "model" (a tokenizer.json names its model: WordPiece, BPE, …)';
  const vocab = model.vocab;
  if (!vocab || typeof vocab !== "object" || Array.isArray(vocab)) return `its model (${String(model.type)}) has no token → id vocabulary`;
  const entries = Object.entries(vocab as Record<string, unknown>);
  if (entries.length > WORDPIECE_LIMITS.tokens) return `its vocabulary has ${entries.length} tokens; at most ${WORDPIECE_LIMITS.tokens} are read`;
  const tokens: string[] = new Array(entries.length);
  for (const [t, id] of entries) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= entries.length || tokens[id] !== undefined) return `token ${JSON.stringify(t)} has id ${JSON.stringify(id)}: ids must be 0…${entries.length - 1}, each once`;
    tokens[id] = t;
  }
  if (model.type === "WordPiece") {
    const missing = WORDPIECE_SPECIALS.filter((s) => !(s in (vocab as object)));
    if (missing.length) return `it lacks ${missing.join(", ")}: a BERT vocabulary has [PAD], [UNK], [CLS] and [SEP]`;
    const norm = (j as { normalizer?: { type?: string; lowercase?: boolean } }).normalizer;
    if (norm && norm.type !== "BertNormalizer") return `its WordPiece model has a ${String(norm.type)} normalizer; nnetc reads BERT's (BertNormalizer)`;
    return { split: "wordpiece", lowercase: norm?.lowercase !== false, size: tokens.length, tokens };
  }
  if (model.type === "BPE") {
    const pre = (j as { pre_tokenizer?: { type?: string } }).pre_tokenizer;
    if (model.byte_fallback === true || pre?.type !== "ByteLevel") return `its BPE model is not byte-level (pre_tokenizer ${String(pre?.type)}${model.byte_fallback ? ", byte_fallback" : ""}); nnetc reads GPT-2's byte-level BPE`;
    if (!Array.isArray(model.merges)) return "its BPE model has no merges";
    if (model.merges.length > BPE_LIMITS.merges) return `it has ${model.merges.length} merges; at most ${BPE_LIMITS.merges} are read`;
    const merges: string[] = [];
    for (const [i, m] of model.merges.entries()) {
      const pair = typeof m === "string" ? m.split(" ") : Array.isArray(m) ? m : [];
      if (pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string" || !pair[0] || !pair[1]) return `merge ${i + 1} is not a pair of symbols: ${JSON.stringify(m).slice(0, 80)}`;
      merges.push(`${pair[0]} ${pair[1]}`);
    }
    return { split: "bpe", lowercase: false, size: tokens.length, tokens, merges };
  }
  return `its model is ${String(model.type)}; nnetc reads WordPiece (BERT) and byte-level BPE (GPT-2) tokenizers`;
}
