// WordPiece: BERT's tokenizer, from a vocab.txt (one token per line, the line number its id), computing what
// Hugging Face `tokenizers`' BertWordPieceTokenizer computes (spec/unit/wordpiece.test.ts checks it on the
// SpamAssassin corpus against the Python package):
//   normalize   drop NUL, U+FFFD and other control characters (Cc Cf Co Cs, except \t \n \r), turn
//               white space into " ", put spaces around CJK ideographs, then — for uncased vocabularies —
//               strip accents (NFD, drop marks Mn) and lowercase code point by code point;
//   pre-split   on white space, and every punctuation character (ASCII symbols and Unicode P*) alone;
//   WordPiece   each word greedily, longest known prefix first, continuations written "##…"; a word with a
//               part not in the vocabulary, or longer than 100 characters, is [UNK];
//   frame       [CLS] tokens [SEP], truncated to max_len, padded with [PAD].

import type { Vocabulary } from "./tokenize.js";

/** The special tokens a WordPiece vocabulary must hold. */
export const WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] as const;

/** Longest word WordPiece splits (in code points); a longer one is [UNK], as in BERT. */
const MAX_WORD_CHARS = 100;

/** Limits on a vocab.txt: what a file can make us hold. */
export const WORDPIECE_LIMITS = { bytes: 16 << 20, tokens: 1 << 20, tokenChars: 200 } as const;

/** A WordPiece vocabulary from vocab.txt's text; a message naming the line when it is not one. */
export function parseWordPieceVocab(text: string, lowercase: boolean): Vocabulary | string {
  if (text.length > WORDPIECE_LIMITS.bytes) return `it is over ${WORDPIECE_LIMITS.bytes >> 20} MB`;
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  if (lines.length > WORDPIECE_LIMITS.tokens) return `it has ${lines.length} lines; at most ${WORDPIECE_LIMITS.tokens} tokens are read`;
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!;
    if (t === "" || /\s/u.test(t)) return `line ${i + 1} ${t === "" ? "is empty" : "holds white space"}: a vocab.txt has one token per line`;
    if ([...t].length > WORDPIECE_LIMITS.tokenChars) return `line ${i + 1} is a token of over ${WORDPIECE_LIMITS.tokenChars} characters`;
    if (seen.has(t)) return `line ${i + 1} repeats the token ${JSON.stringify(t)}`;
    seen.add(t);
  }
  const missing = WORDPIECE_SPECIALS.filter((s) => !seen.has(s));
  if (missing.length) return `it lacks ${missing.join(", ")}: a BERT vocabulary has [PAD], [UNK], [CLS] and [SEP]`;
  return { split: "wordpiece", lowercase, size: lines.length, tokens: lines };
}

// Control, format, private-use and surrogate characters (Cc Cf Co Cs); unassigned code points (Cn) stay, as
// in Hugging Face's normalizer, and become [UNK].
const CONTROL = /[\0\uFFFD]|(?![\t\n\r])[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/gu;
const WHITE = /[\t\n\r\p{White_Space}]/gu;
const MARK = /\p{Mn}/gu;

function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126) || /\p{P}/u.test(ch);
}

/** BERT's normalization of a text (above). */
export function normalizeBert(text: string, lowercase: boolean): string {
  let t = text.replace(CONTROL, "").replace(WHITE, " ");
  let spaced = "";
  for (const ch of t) spaced += isCjk(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
  t = spaced;
  if (lowercase) {
    t = t.normalize("NFD").replace(MARK, "");
    let lower = "";
    for (const ch of t) lower += ch.toLowerCase();
    t = lower;
  }
  return t;
}

/** Words: runs of non-space, non-punctuation characters, and each punctuation character alone. */
export function preTokenizeBert(normalized: string): string[] {
  const out: string[] = [];
  let word = "";
  for (const ch of normalized) {
    if (ch === " ") {
      if (word) out.push(word);
      word = "";
    } else if (isPunctuation(ch)) {
      if (word) out.push(word);
      out.push(ch);
      word = "";
    } else word += ch;
  }
  if (word) out.push(word);
  return out;
}

const ids = new WeakMap<Vocabulary, Map<string, number>>();

function idsOf(v: Vocabulary): Map<string, number> {
  let m = ids.get(v);
  if (!m) {
    m = new Map(v.tokens.map((t, i) => [t, i]));
    ids.set(v, m);
  }
  return m;
}

/** The id of a special token of `v` ([PAD], [UNK], [CLS], [SEP]). */
export function specialId(v: Vocabulary, token: (typeof WORDPIECE_SPECIALS)[number]): number {
  return idsOf(v).get(token)!;
}

/** WordPiece ids of one word (or [UNK]'s alone), appended to `out` while it is shorter than `limit`. */
function wordPieces(word: string, m: Map<string, number>, unk: number, out: number[]): void {
  const chars = [...word];
  if (chars.length > MAX_WORD_CHARS) {
    out.push(unk);
    return;
  }
  const pieces: number[] = [];
  for (let start = 0; start < chars.length; ) {
    let end = chars.length;
    let id: number | undefined;
    for (; end > start; end--) {
      id = m.get((start > 0 ? "##" : "") + chars.slice(start, end).join(""));
      if (id !== undefined) break;
    }
    if (id === undefined) {
      out.push(unk);
      return;
    }
    pieces.push(id);
    start = end;
  }
  out.push(...pieces);
}

/** [CLS] pieces [SEP] of `text`, truncated to maxLen and padded with [PAD], written to out[offset … offset+maxLen). */
export function encodeWordPiece(text: string, v: Vocabulary, maxLen: number, out: Int32Array = new Int32Array(maxLen), offset = 0): Int32Array {
  const m = idsOf(v);
  const body = piecesOf(text, v, Math.max(0, maxLen - 2));
  const framed = maxLen >= 2 ? [m.get("[CLS]")!, ...body, m.get("[SEP]")!] : [m.get("[CLS]")!].slice(0, maxLen);
  out.set(framed, offset);
  out.fill(m.get("[PAD]")!, offset + framed.length, offset + maxLen);
  return out;
}

/** The WordPiece ids of a text's first `room` pieces (no framing). */
function piecesOf(text: string, v: Vocabulary, room: number): number[] {
  const m = idsOf(v);
  const unk = m.get("[UNK]")!;
  const pieces: number[] = [];
  for (const w of preTokenizeBert(normalizeBert(text, v.lowercase))) {
    if (pieces.length >= room) break;
    wordPieces(w, m, unk, pieces);
  }
  return pieces.slice(0, room);
}

/**
 * A pair of texts as BERT reads them, `[CLS] a [SEP] b [SEP]`, truncated as Hugging Face's tokenizers do by
 * default (longest_first: the shorter text keeps up to half of the room, the longer takes the rest; of two of
 * equal length the second gets the odd piece), then padded. `segments`, when given, gets each position's token
 * type: 0 for [CLS] a [SEP], 1 for b [SEP], 0 for padding.
 */
export function encodeWordPiecePair(a: string, b: string, v: Vocabulary, maxLen: number, out: Int32Array, offset: number, segments?: Int32Array): void {
  const m = idsOf(v);
  const room = Math.max(0, maxLen - 3);
  // Whole: which text is the longer decides the truncation, as in Hugging Face's.
  let pa = piecesOf(a, v, Infinity);
  let pb = piecesOf(b, v, Infinity);
  if (pa.length + pb.length > room) {
    const firstLonger = pa.length > pb.length;
    const shorter = Math.min(firstLonger ? pb.length : pa.length, Math.floor(room / 2));
    if (firstLonger) {
      pb = pb.slice(0, shorter);
      pa = pa.slice(0, room - shorter);
    } else {
      pa = pa.slice(0, shorter);
      pb = pb.slice(0, room - shorter);
    }
  }
  const cls = m.get("[CLS]")!;
  const sep = m.get("[SEP]")!;
  const first = [cls, ...pa, sep];
  const framed = [...first, ...pb, sep].slice(0, maxLen);
  out.set(framed, offset);
  out.fill(m.get("[PAD]")!, offset + framed.length, offset + maxLen);
  if (segments) {
    segments.fill(0, offset, offset + maxLen);
    segments.fill(1, offset + Math.min(first.length, maxLen), offset + framed.length);
  }
}
