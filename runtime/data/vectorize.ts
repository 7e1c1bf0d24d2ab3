// Text → one vector per sample, as Keras's TextVectorization does with output_mode multi_hot, count or tf_idf:
// words (or characters) and their n-grams up to `ngrams`, counted against a vocabulary fitted on the training
// split — the `vocab - 2` most frequent n-grams (ties in code-unit order), slot 0 unused (padding in token-id
// vocabularies), slot 1 every unknown n-gram — and, for tf_idf, each n-gram's inverse document frequency
// log(1 + documents / (1 + documents with it)), fitted on the same split (the unknown slot takes the mean).
// The vocabulary, its weights and the settings are plain JSON in the Vocabulary, saved with the run.
import { lookup, tokenizeText, UNK_ID, PAD_TOKEN, UNK_TOKEN, type SplitMode, type Vocabulary } from "./tokenize.js";

export type VectorizeMode = "binary" | "count" | "tf_idf";

export interface VectorizeSettings {
  mode: VectorizeMode;
  ngrams: number;
  norm: "l2" | "none";
}

/** Distinct n-grams counted while fitting: past this, the rarest are dropped (deterministically) and counting goes on. */
export const VECTORIZE_LIMITS = { distinct: 2_000_000, ngrams: 5 };

/** The n-grams of a token list: unigrams, then bigrams, … up to n, each joined by a space. */
export function ngramsOf(tokens: readonly string[], n: number, each: (gram: string) => void): void {
  for (let k = 1; k <= n; k++) {
    for (let i = 0; i + k <= tokens.length; i++) each(k === 1 ? tokens[i]! : tokens.slice(i, i + k).join(" "));
  }
}

/** Fit a vectorizer's vocabulary (and IDF weights) on the training texts. */
export function buildVectorizer(texts: Iterable<string>, opts: { size: number; split: SplitMode; lowercase: boolean } & VectorizeSettings): Vocabulary {
  const tf = new Map<string, number>();
  const df = new Map<string, number>();
  let docs = 0;
  let floor = 0;
  for (const text of texts) {
    docs++;
    const seen = new Set<string>();
    ngramsOf(tokenizeText(text, opts.split, opts.lowercase), opts.ngrams, (g) => {
      tf.set(g, (tf.get(g) ?? 0) + 1);
      seen.add(g);
    });
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
    while (tf.size > VECTORIZE_LIMITS.distinct) {
      floor++;
      for (const [g, c] of tf) if (c <= floor) (tf.delete(g), df.delete(g));
    }
  }
  const ranked = [...tf].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const kept = ranked.slice(0, Math.max(0, opts.size - 2)).map((e) => e[0]);
  const vectorize: Vocabulary["vectorize"] = { mode: opts.mode, ngrams: opts.ngrams, norm: opts.norm };
  if (opts.mode === "tf_idf") {
    const w = kept.map((g) => Math.log(1 + docs / (1 + (df.get(g) ?? 0))));
    const mean = w.length ? w.reduce((a, b) => a + b, 0) / w.length : Math.log(1 + docs);
    vectorize.idf = [0, mean, ...w];
  }
  return { split: opts.split, lowercase: opts.lowercase, size: opts.size, tokens: [PAD_TOKEN, UNK_TOKEN, ...kept], vectorize };
}

/** Write the vector of `text` to out[offset … offset + vocab.size). */
export function vectorizeText(text: string, v: Vocabulary, out: Float32Array, offset: number): void {
  const s = v.vectorize!;
  const ids = lookup(v);
  ngramsOf(tokenizeText(text, v.split as SplitMode, v.lowercase), s.ngrams, (g) => {
    const id = ids.get(g) ?? UNK_ID;
    if (s.mode === "binary") out[offset + id] = 1;
    else out[offset + id]! += 1;
  });
  if (s.mode === "tf_idf") for (let i = 1; i < v.size && i < s.idf!.length; i++) out[offset + i]! *= s.idf![i]!;
  if (s.norm === "l2") {
    let sq = 0;
    for (let i = 0; i < v.size; i++) sq += out[offset + i]! ** 2;
    if (sq > 0) {
      const k = 1 / Math.sqrt(sq);
      for (let i = 0; i < v.size; i++) out[offset + i]! *= k;
    }
  }
}

/** A saved vectorizer's settings, checked: a message, or null. */
export function vectorizeProblem(o: Record<string, unknown>): string | null {
  const s = o.vectorize as Record<string, unknown> | undefined;
  if (s === undefined) return null;
  if (typeof s !== "object" || s === null) return "its vectorize settings are not an object";
  if (s.mode !== "binary" && s.mode !== "count" && s.mode !== "tf_idf") return `its vectorize mode is ${JSON.stringify(s.mode)}`;
  if (!Number.isInteger(s.ngrams) || (s.ngrams as number) < 1 || (s.ngrams as number) > VECTORIZE_LIMITS.ngrams) return "its n-gram length is not an integer from 1 to 5";
  if (s.norm !== "l2" && s.norm !== "none") return `its norm is ${JSON.stringify(s.norm)}`;
  if (s.mode === "tf_idf" && !(Array.isArray(s.idf) && s.idf.length === (o.tokens as unknown[]).length && s.idf.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0))) return "its IDF weights are not one finite number ≥ 0 per token";
  return null;
}
