// Text → token ids. Words are runs of letters, marks, digits and underscores (with inner apostrophes:
// "don't"); every other non-space character is a token of its own. Characters are Unicode code points.
// A vocabulary is built from the training split only: ids 0 = padding, 1 = unknown, then the most frequent
// tokens (ties in code-unit order), at most `vocab` ids in all. It is plain JSON, saved with the model.
// `tokenize(vocab: "vocab.txt", …)` reads BERT's WordPiece vocabulary instead (wordpiece.ts), and
// `tokenize(vocab: "encoder.json", merges: "vocab.bpe", …)` GPT-2's byte-level BPE (bpe.ts).
import { bpePadId, decodeBpe, encodeBpe } from "./bpe.js";
import { decodeHf, encodeHf, hfProblem } from "./hf_tokenizer.js";
import { vectorizeProblem } from "./vectorize.js";
import { encodeWordPiece, specialId, WORDPIECE_SPECIALS } from "./wordpiece.js";

export type SplitMode = "word" | "char";

export interface Vocabulary {
  /** How the text was cut (wordpiece: BERT's, from a vocab.txt); reusing a vocabulary with other settings is an error. */
  split: SplitMode | "wordpiece" | "bpe" | "hf";
  lowercase: boolean;
  /** The vocab size asked for (ids are < size). */
  size: number;
  /** id → token; tokens[0] is the padding token "<pad>" and tokens[1] the unknown token "<unk>" (wordpiece: vocab.txt's lines). */
  tokens: string[];
  /** bpe: vocab.bpe's merges ("a b"), best first. */
  merges?: string[];
  /** hf: a tokenizer.json run by @huggingface/tokenizers (hf_tokenizer.ts): its text, tokenizer_config.json's fields it reads, and the id that pads. */
  hf?: { tokenizer: string; config: Record<string, string | boolean | string[]>; pad: number };
  /** A vocabulary read from files: their names and the SHA-256 of their bytes (vocab file, then merges), so a run tells when the dataset's file has changed since. */
  files?: { name: string; sha256: string }[];
  /** A vectorize step's vocabulary (vectorize.ts): its settings, and for tf_idf the IDF weight of each id. */
  vectorize?: { mode: "binary" | "count" | "tf_idf"; ngrams: number; norm: "l2" | "none"; idf?: number[] };
}

/** Vocabularies by dataset field name. */
export type Vocabularies = Record<string, Vocabulary>;

export const PAD_ID = 0;
export const UNK_ID = 1;
export const PAD_TOKEN = "<pad>";
export const UNK_TOKEN = "<unk>";

const WORD = /[\p{L}\p{M}\p{N}_]+(?:'[\p{L}\p{M}\p{N}_]+)*|[^\s\p{L}\p{M}\p{N}_]/gu;

/** Cut a text into tokens (at most `limit` of them, from the start). */
export function tokenizeText(text: string, split: SplitMode, lowercase: boolean, limit = Infinity): string[] {
  const t = lowercase ? text.toLowerCase() : text;
  const out: string[] = [];
  if (limit <= 0) return out;
  if (split === "char") {
    for (const ch of t) if (out.push(ch) >= limit) break;
    return out;
  }
  if (limit === Infinity) return t.match(WORD) ?? [];
  const re = new RegExp(WORD.source, "gu");
  for (let m = re.exec(t); m; m = re.exec(t)) if (out.push(m[0]) >= limit) break;
  return out;
}

/** Count tokens over texts and keep the `size - 2` most frequent. */
export function buildVocabulary(texts: Iterable<string>, opts: { size: number; split: SplitMode; lowercase: boolean }): Vocabulary {
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const tok of tokenizeText(text, opts.split, opts.lowercase)) counts.set(tok, (counts.get(tok) ?? 0) + 1);
  }
  const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const keep = Math.max(0, opts.size - 2);
  return { split: opts.split, lowercase: opts.lowercase, size: opts.size, tokens: [PAD_TOKEN, UNK_TOKEN, ...ranked.slice(0, keep).map((e) => e[0])] };
}

const lookups = new WeakMap<Vocabulary, Map<string, number>>();

/** A built vocabulary's token → id map (ids from 2, below its size), made once per vocabulary. */
export function lookup(v: Vocabulary): Map<string, number> {
  let m = lookups.get(v);
  if (!m) {
    m = new Map();
    for (let i = 2; i < v.tokens.length && i < v.size; i++) if (!m.has(v.tokens[i]!)) m.set(v.tokens[i]!, i);
    lookups.set(v, m);
  }
  return m;
}

/** Token ids of `text`, truncated to maxLen and padded with 0, written to out[offset … offset+maxLen). */
export function encodeText(text: string, v: Vocabulary, maxLen: number, out: Int32Array = new Int32Array(maxLen), offset = 0): Int32Array {
  if (v.split === "wordpiece") return encodeWordPiece(text, v, maxLen, out, offset);
  if (v.split === "bpe") return encodeBpe(text, v, maxLen, out, offset);
  if (v.split === "hf") return encodeHf(text, v, maxLen, out, offset);
  const m = lookup(v);
  const toks = tokenizeText(text, v.split, v.lowercase, maxLen);
  const n = Math.min(maxLen, toks.length);
  for (let i = 0; i < n; i++) out[offset + i] = m.get(toks[i]!) ?? UNK_ID;
  out.fill(PAD_ID, offset + n, offset + maxLen);
  return out;
}

/** The id padding is written with: [PAD] (WordPiece), <|endoftext|> (GPT-2's BPE), the tokenizer's (hf_tokenizer.ts), else 0. */
export function padId(v: Vocabulary): number {
  return v.split === "wordpiece" ? specialId(v, "[PAD]") : v.split === "bpe" ? bpePadId(v) : v.split === "hf" ? v.hf!.pad : PAD_ID;
}

/** Tokens of ids (padding dropped); for inspection and tests. */
export function decodeIds(ids: ArrayLike<number>, v: Vocabulary): string[] {
  const out: string[] = [];
  const pad = padId(v);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id === pad) continue;
    out.push(v.tokens[id] ?? UNK_TOKEN);
  }
  return out;
}

/** The text of ids (generation's output): bytes for byte-level BPE, WordPiece's `##` pieces joined and its special tokens dropped, the tokenizer's decoder (hf), else tokens joined by a space (word) or nothing (char). */
export function decodeText(ids: ArrayLike<number>, v: Vocabulary): string {
  if (v.split === "bpe") return decodeBpe(ids, v);
  if (v.split === "hf") return decodeHf(ids, v);
  const toks = Array.from(ids, (id) => v.tokens[id] ?? UNK_TOKEN);
  if (v.split === "wordpiece") return toks.filter((t) => !/^\[(PAD|CLS|SEP)\]$/.test(t)).map((t, i) => (t.startsWith("##") ? t.slice(2) : i ? ` ${t}` : t)).join("");
  return toks.join(v.split === "char" ? "" : " ");
}

/**
 * Vocabularies as saved (model.json, checkpoints, quantized files): one shared by several fields (the ids and
 * the attention_mask of one tokenizer file) is written once, the others holding `{ "same_as": FIELD }`.
 */
export function packVocabularies(v: Vocabularies): Record<string, Vocabulary | { same_as: string }> {
  const out: Record<string, Vocabulary | { same_as: string }> = {};
  const first = new Map<Vocabulary, string>();
  for (const [field, voc] of Object.entries(v)) {
    const at = first.get(voc);
    if (at !== undefined) out[field] = { same_as: at };
    else {
      first.set(voc, field);
      out[field] = voc;
    }
  }
  return out;
}

/** Saved vocabularies as packVocabularies wrote them (or as older runs did, one per field), each field's its own entry. */
export function unpackVocabularies(saved: unknown): Vocabularies | undefined {
  if (!saved || typeof saved !== "object" || Array.isArray(saved)) return undefined;
  const raw = saved as Record<string, unknown>;
  const out: Vocabularies = {};
  for (const [field, voc] of Object.entries(raw)) {
    const ref = (voc as { same_as?: unknown } | null)?.same_as;
    const target = typeof ref === "string" ? raw[ref] : undefined;
    // a reference to another reference or to nothing stays as it is: vocabularyProblem names it
    out[field] = (typeof ref === "string" && target && typeof target === "object" && !("same_as" in target) ? target : voc) as Vocabulary;
  }
  return out;
}

/** Check that a value loaded from disk is a vocabulary; returns a message or null. */
export function vocabularyProblem(v: unknown): string | null {
  if (typeof v !== "object" || v === null) return "it is not an object";
  const o = v as Record<string, unknown>;
  if (o.split !== "word" && o.split !== "char" && o.split !== "wordpiece" && o.split !== "bpe" && o.split !== "hf") return `its split is ${JSON.stringify(o.split)}, not "word", "char", "wordpiece", "bpe" or "hf"`;
  if (o.split === "bpe" && !(Array.isArray(o.merges) && o.merges.every((m) => typeof m === "string"))) return "its BPE merges are not a list of strings";
  if (typeof o.lowercase !== "boolean") return "its lowercase flag is missing";
  if (!Number.isInteger(o.size) || (o.size as number) < 2) return "its size is not an integer ≥ 2";
  if (!Array.isArray(o.tokens) || o.tokens.length < 2 || !o.tokens.every((t) => typeof t === "string")) return "its tokens are not a list of strings";
  if (o.files !== undefined && !(Array.isArray(o.files) && o.files.every((f) => f && typeof f.name === "string" && typeof f.sha256 === "string" && /^[0-9a-f]{64}$/.test(f.sha256)))) return "its files are not a list of names with SHA-256 sums";
  if (o.split === "hf") return hfProblem(o);
  const vp = vectorizeProblem(o);
  if (vp) return vp;
  if (o.split === "wordpiece" && !WORDPIECE_SPECIALS.every((s) => (o.tokens as string[]).includes(s))) return `its WordPiece tokens lack one of ${WORDPIECE_SPECIALS.join(", ")}`;
  return null;
}
