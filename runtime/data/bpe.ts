// Byte-level BPE: GPT-2's tokenizer, from its encoder.json (token → id) and vocab.bpe (merges, best first),
// computing what Hugging Face `tokenizers`' ByteLevelBPETokenizer computes (spec/unit/bpe.test.ts checks it
// against the Python package on the SpamAssassin corpus):
//   pre-split   GPT-2's pattern: contractions, letters, digits and other symbols each with one leading space,
//               runs of white space;
//   bytes       each piece's UTF-8 bytes written as GPT-2's printable stand-ins (byte b < 256 ↦ one code point);
//   merges      repeatedly the adjacent pair of symbols with the best (lowest) rank in vocab.bpe is joined;
//   ids         each final symbol's id in encoder.json; truncated to max_len, padded with <|endoftext|>.
// No lowercasing and no special framing: the text's bytes, all of them, as GPT-2 reads them.

import type { Vocabulary } from "./tokenize.js";
import { jsonProblem } from "./errors.js";

/** GPT-2's end-of-text token: padding, when the vocabulary has it (else id 0). */
export const BPE_PAD = "<|endoftext|>";

/** Limits on encoder.json and vocab.bpe: what files can make us hold. */
export const BPE_LIMITS = { bytes: 16 << 20, tokens: 1 << 20, merges: 1 << 20 } as const;

const PIECE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's byte → printable code point table. */
const BYTE_CHAR: string[] = (() => {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(keep(b) ? b : 256 + n++));
  return out;
})();

/** A BPE vocabulary from encoder.json's and vocab.bpe's texts; a message when they are not one. */
export function parseBpeVocab(encoderJson: string, mergesText: string): Vocabulary | string {
  if (encoderJson.length > BPE_LIMITS.bytes || mergesText.length > BPE_LIMITS.bytes) return `a file is over ${BPE_LIMITS.bytes >> 20} MB`;
  let enc: unknown;
  try {
    enc = JSON.parse(encoderJson);
  } catch (e) {
    return `the vocabulary is not JSON (${jsonProblem(e)})`;
  }
  if (typeof enc !== "object" || enc === null || Array.isArray(enc)) return "the vocabulary is not a JSON object of token → id";
  const entries = Object.entries(enc as Record<string, unknown>);
  if (entries.length > BPE_LIMITS.tokens) return `the vocabulary has ${entries.length} tokens; at most ${BPE_LIMITS.tokens} are read`;
  const tokens: string[] = new Array(entries.length);
  for (const [t, id] of entries) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= entries.length) return `token ${JSON.stringify(t)} has id ${JSON.stringify(id)}: ids must be 0 to ${entries.length - 1}, each once`;
    if (tokens[id as number] !== undefined) return `tokens ${JSON.stringify(tokens[id as number])} and ${JSON.stringify(t)} share id ${id}`;
    tokens[id as number] = t;
  }
  const lines = mergesText.replace(/^\uFEFF/, "").split(/\r?\n/);
  const merges: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === "" || (i === 0 && l.startsWith("#version"))) continue;
    if (merges.length >= BPE_LIMITS.merges) return `the merges have over ${BPE_LIMITS.merges} lines`;
    const parts = l.split(" ");
    if (parts.length !== 2 || !parts[0] || !parts[1]) return `merges line ${i + 1} is not two symbols separated by one space: ${JSON.stringify(l.slice(0, 80))}`;
    merges.push(l);
  }
  return { split: "bpe", lowercase: false, size: tokens.length, tokens, merges };
}

interface Tables {
  ids: Map<string, number>;
  ranks: Map<string, number>;
  cache: Map<string, number[]>;
  pad: number;
  unk: number | undefined;
}

const tables = new WeakMap<Vocabulary, Tables>();

function tablesOf(v: Vocabulary): Tables {
  let t = tables.get(v);
  if (!t) {
    const ids = new Map(v.tokens.map((tok, i) => [tok, i]));
    t = { ids, ranks: new Map((v.merges ?? []).map((m, i) => [m, i])), cache: new Map(), pad: ids.get(BPE_PAD) ?? 0, unk: ids.get("<unk>") };
    tables.set(v, t);
  }
  return t;
}

/** The ids of one pre-split piece (its bytes merged by rank); a symbol the vocabulary lacks is dropped, as Hugging Face does without an unknown token. */
function pieceIds(piece: string, t: Tables): number[] {
  const known = t.cache.get(piece);
  if (known) return known;
  let symbols = Array.from(new TextEncoder().encode(piece), (b) => BYTE_CHAR[b]!);
  while (symbols.length > 1) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i < symbols.length - 1; i++) {
      const r = t.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) break;
    const a = symbols[best]!;
    const b = symbols[best + 1]!;
    const merged: string[] = [];
    for (let i = 0; i < symbols.length; i++) {
      if (i < symbols.length - 1 && symbols[i] === a && symbols[i + 1] === b) {
        merged.push(a + b);
        i++;
      } else merged.push(symbols[i]!);
    }
    symbols = merged;
  }
  const out: number[] = [];
  for (const s of symbols) {
    const id = t.ids.get(s) ?? t.unk;
    if (id !== undefined) out.push(id);
  }
  if (t.cache.size >= 50_000) t.cache.clear();
  t.cache.set(piece, out);
  return out;
}

/** The text of byte-level BPE ids: each token's characters back to their bytes, the bytes as UTF-8. */
export function decodeBpe(ids: ArrayLike<number>, v: Vocabulary): string {
  const byteOf = new Map(BYTE_CHAR.map((ch, b) => [ch, b]));
  const bytes: number[] = [];
  for (let i = 0; i < ids.length; i++) for (const ch of v.tokens[ids[i]!] ?? "") bytes.push(byteOf.get(ch) ?? 63);
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

/** Byte-level BPE ids of `text`, truncated to maxLen and padded, written to out[offset … offset+maxLen). */
export function encodeBpe(text: string, v: Vocabulary, maxLen: number, out: Int32Array = new Int32Array(maxLen), offset = 0): Int32Array {
  const t = tablesOf(v);
  let n = 0;
  const re = new RegExp(PIECE.source, "gu");
  for (let m = re.exec(text); m && n < maxLen; m = re.exec(text)) {
    for (const id of pieceIds(m[0], t)) {
      if (n >= maxLen) break;
      out[offset + n++] = id;
    }
  }
  out.fill(t.pad, offset + n, offset + maxLen);
  return out;
}

/** The padding id of a BPE vocabulary. */
export function bpePadId(v: Vocabulary): number {
  return tablesOf(v).pad;
}
