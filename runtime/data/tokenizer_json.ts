// A Hugging Face tokenizer.json (what `tokenizer.save()` and `save_pretrained` write) as one of nnetc's
// vocabularies: a WordPiece model (BERT family: model.vocab, the BertNormalizer's lowercase) or a byte-level
// BPE model (GPT-2 family: model.vocab and model.merges, as "a b" strings or [a, b] pairs). The tokenizing is
// then wordpiece.ts's or bpe.ts's, which equal Hugging Face's tokenizers on those models (and are shown equal
// to Python's on their own). Any other tokenizer.json — Unigram, SentencePiece-style BPE with byte fallback,
// a WordPiece or byte-level BPE with other pre-tokenizers or framing (RoBERTa's <s> … </s>) — is run by
// @huggingface/tokenizers (hf_tokenizer.ts), and one the library cannot load is refused with what it holds.
import type { Vocabulary } from "./tokenize.js";
import { BPE_LIMITS } from "./bpe.js";
import { hfVocabulary } from "./hf_tokenizer.js";
import { WORDPIECE_LIMITS, WORDPIECE_SPECIALS } from "./wordpiece.js";
import { jsonProblem } from "./errors.js";

/** A tokenizer.json's vocabulary (with tokenizer_config.json's text when one is beside it); a message saying why the file is not one nnetc reads. */
export function parseTokenizerJson(text: string, configText: string | null = null): Vocabulary | string {
  if (text.length > Math.max(BPE_LIMITS.bytes, WORDPIECE_LIMITS.bytes) * 2) return `it is over ${(BPE_LIMITS.bytes * 2) >> 20} MB`;
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    return `it is not JSON (${jsonProblem(e)})`;
  }
  const model = (j as { model?: { type?: unknown; vocab?: unknown; merges?: unknown; byte_fallback?: unknown } } | null)?.model;
  if (!model || typeof model !== "object") return 'it has no "model" (a tokenizer.json names its model: WordPiece, BPE, Unigram, …)';
  const type = (c: unknown) => (c && typeof c === "object" ? (c as { type?: unknown }).type : null);
  const { normalizer, pre_tokenizer, post_processor } = j as Record<string, unknown>;
  // What nnetc's own tokenizers compute; anything else goes to the library.
  const ownWordPiece = model.type === "WordPiece" && (normalizer == null || type(normalizer) === "BertNormalizer") && type(pre_tokenizer) === "BertPreTokenizer" && (post_processor == null || type(post_processor) === "BertProcessing" || bertTemplate(post_processor));
  const ownBpe = model.type === "BPE" && model.byte_fallback !== true && type(pre_tokenizer) === "ByteLevel" && (pre_tokenizer as { add_prefix_space?: unknown }).add_prefix_space !== true && (pre_tokenizer as { use_regex?: unknown }).use_regex !== false && normalizer == null && (post_processor == null || type(post_processor) === "ByteLevel");
  if (!ownWordPiece && !ownBpe) return hfVocabulary(text, configText);
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
    return { split: "wordpiece", lowercase: norm?.lowercase !== false, size: tokens.length, tokens };
  }
  if (model.type === "BPE") {
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
  return hfVocabulary(text, configText);
}

/** BERT's template, [CLS] $A [SEP], which wordpiece.ts frames a text with. */
function bertTemplate(p: unknown): boolean {
  const o = p as { type?: unknown; single?: unknown };
  if (o.type !== "TemplateProcessing" || !Array.isArray(o.single)) return false;
  const parts = o.single.map((x: { SpecialToken?: { id?: unknown }; Sequence?: { id?: unknown } }) => (x?.SpecialToken ? String(x.SpecialToken.id) : x?.Sequence ? `$${String(x.Sequence.id)}` : "?"));
  return parts.join(" ") === "[CLS] $A [SEP]";
}
