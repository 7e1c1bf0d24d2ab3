// vectorize (runtime/data/vectorize.ts): Keras TextVectorization's binary / count / tf_idf outputs over words
// and n-grams, the vocabulary and IDF weights fitted on the training split only, saved with the run and reused
// by eval (a changed setting refused); property: vectors are finite, l2 ones have unit length.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AttrValue } from "../../compiler/ir/types.js";
import type { Column } from "../../runtime/data/columns.js";
import { compileField } from "../../runtime/data/steps.js";
import { vocabularyProblem } from "../../runtime/data/tokenize.js";
import { buildVectorizer, vectorizeText } from "../../runtime/data/vectorize.js";
import type { FieldSpec } from "../../runtime/spec.js";
import { ROOT } from "../helpers.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-vectorize-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

const DOCS = ["the cat sat", "the cat ran", "a dog ran far", "The Cat!"];

test("vocabulary: the most frequent n-grams of the training texts, ties in code-unit order, after <pad> and <unk>", () => {
  const v = buildVectorizer(DOCS, { size: 7, split: "word", lowercase: true, mode: "count", ngrams: 2, norm: "none" });
  // counts: the 3, cat 3, "the cat" 3, ran 2, then 1s: "!", "a", "a dog", …
  assert.equal(v.tokens, ["<pad>", "<unk>", "cat", "the", "the cat", "ran", "!"]);
  assert.is(v.vectorize?.idf, undefined);
  assert.is(vocabularyProblem(v), null);
});

test("binary, count and tf_idf vectors are Keras's: tf × log(1 + N / (1 + df)), unknown n-grams in column 1", () => {
  const tfidf = buildVectorizer(DOCS, { size: 6, split: "word", lowercase: true, mode: "tf_idf", ngrams: 1, norm: "none" });
  // tokens: <pad> <unk> cat the ran !  (cat, the: 3 each in 3 documents; ran 2 in 2; "!" 1 in 1)
  assert.equal(tfidf.tokens, ["<pad>", "<unk>", "cat", "the", "ran", "!"]);
  const idf = (df: number) => Math.log(1 + 4 / (1 + df));
  const w = tfidf.vectorize!.idf!;
  for (const [i, df] of [[2, 3], [3, 3], [4, 2], [5, 1]] as const) assert.ok(Math.abs(w[i]! - idf(df)) < 1e-12, `idf of ${tfidf.tokens[i]}`);
  assert.ok(Math.abs(w[1]! - (idf(3) * 2 + idf(2) + idf(1)) / 4) < 1e-12, "the unknown column takes the mean weight");
  const out = new Float32Array(6);
  vectorizeText("cat cat zebra ran", tfidf, out, 0);
  assert.ok(Math.abs(out[2]! - 2 * idf(3)) < 1e-6 && Math.abs(out[4]! - idf(2)) < 1e-6 && Math.abs(out[1]! - w[1]!) < 1e-6 && out[0] === 0 && out[3] === 0);
  const bin = buildVectorizer(DOCS, { size: 6, split: "word", lowercase: true, mode: "binary", ngrams: 1, norm: "none" });
  const b = new Float32Array(6);
  vectorizeText("cat cat zebra ran", bin, b, 0);
  assert.equal(Array.from(b), [0, 1, 1, 0, 1, 0]);
  const l2 = buildVectorizer(DOCS, { size: 6, split: "word", lowercase: true, mode: "count", ngrams: 1, norm: "l2" });
  const c = new Float32Array(6);
  vectorizeText("cat cat zebra ran", l2, c, 0);
  const n = Math.sqrt(4 + 1 + 1);
  assert.ok([0, 1 / n, 2 / n, 0, 1 / n, 0].every((x, i) => Math.abs(c[i]! - x) < 1e-6));
});

test("property: any text gives finite values; l2 vectors have length 1 or 0; the field's shape is [vocab]", () => {
  const texts = ["free money now", "meeting at ten", "click here to win", "see the report"];
  const v = buildVectorizer(texts, { size: 12, split: "word", lowercase: true, mode: "tf_idf", ngrams: 3, norm: "l2" });
  const col: Column = { kind: "text", name: "text", data: [] };
  const f: FieldSpec = { name: "x", dtype: "f32", shape: [12], column: "text", steps: [{ fn: "vectorize", args: { vocab: 12, ngrams: 3, norm: "l2" } as Record<string, AttrValue> }] };
  fc.assert(
    fc.property(fc.array(fc.string({ unit: "grapheme", maxLength: 60 }), { minLength: 1, maxLength: 8 }), (batch) => {
      const c: Column = { ...col, data: batch } as Column;
      const t = compileField(f, c, () => v).run(c, batch.map((_, i) => i));
      assert.equal(t.shape, [batch.length, 12]);
      for (let s = 0; s < batch.length; s++) {
        let sq = 0;
        for (let i = 0; i < 12; i++) {
          const x = t.data[s * 12 + i]!;
          assert.ok(Number.isFinite(x) && x >= 0);
          sq += x * x;
        }
        assert.ok(sq === 0 || Math.abs(sq - 1) < 1e-5, `|v|² = ${sq}`);
      }
    }),
    { numRuns: 200 },
  );
});

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test("CLI: a TF-IDF linear model trains; the vectorizer is fitted on the training split only and saved; eval reuses it; a changed setting is refused", () => {
  const dir = path.join(TMP, "cli");
  spawnSync("mkdir", ["-p", dir]);
  const spam = ["win free cash now", "click here for free money", "cheap offer win prize", "free prize click now"];
  const ham = ["meeting moved to ten", "see the report attached", "lunch at noon tomorrow", "notes from the meeting"];
  const rows = (n: number, extra: string) => ["text,label", ...Array.from({ length: n }, (_, i) => `"${(i % 2 ? spam : ham)[(i >> 1) % 4]}${i % 3 === 0 ? extra : ""}",${i % 2}`)].join("\n") + "\n";
  writeFileSync(path.join(dir, "train.csv"), rows(300, ""));
  // Words only the test source has: they must not enter the vocabulary.
  writeFileSync(path.join(dir, "test.csv"), rows(100, " zzqtestonly zzqtestonly"));
  const program = (ngrams: number) => `model Lin {
  input words: f32[batch, 80]
  output logits = words -> dense(2)
}
dataset mail {
  source csv("train.csv")
  test   csv("test.csv")
  field words: f32[80] = text -> vectorize(vocab: 80, mode: tf_idf, ngrams: ${ngrams}, norm: l2)
  field label: i32 = label
}
train Lin on mail {
  loss      cross_entropy(logits, label)
  optimizer adam(lr: 5e-2)
  batch     16
  epochs    5
  metrics   accuracy
  seed      3
}
`;
  const file = path.join(dir, "m.nnet");
  writeFileSync(file, program(2));
  const out = path.join(dir, "run");
  const r = cli(["train", file, "--backend", "cpu", "--out", out]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out + r.err, /fitting the tf_idf vectorizer of field "words"/);
  const test_ = JSON.parse(readFileSync(path.join(out, "test.json"), "utf8")) as { accuracy: number; loss: number };
  assert.ok(test_.accuracy > 0.95, `test accuracy ${test_.accuracy}`);
  const saved = (JSON.parse(readFileSync(path.join(out, "model.json"), "utf8")) as { vocab: Record<string, { tokens: string[]; vectorize: { idf: number[]; ngrams: number } }> }).vocab.words;
  assert.is(saved.vectorize.ngrams, 2);
  assert.is(saved.vectorize.idf.length, saved.tokens.length);
  assert.ok(saved.tokens.includes("free money") && saved.tokens.includes("the meeting"), "bigrams are in the vocabulary");
  assert.not.ok(saved.tokens.some((t) => t.includes("zzqtestonly")), "fitted on the training split only");
  const ev = cli(["eval", file, "--weights", out, "--backend", "cpu", "--json"]);
  assert.is(ev.code, 0, ev.err);
  assert.ok(Math.abs((JSON.parse(ev.out.trim().split("\n").pop()!) as { loss: number }).loss - test_.loss) < 1e-5, "eval measures what training measured");
  // nnetc data shows a vectorized field's non-zero n-grams by name.
  const shown = cli(["data", file, "-n", "1"]);
  assert.is(shown.code, 0, shown.err);
  const terms = (JSON.parse(shown.out.split("\n")[0]!) as Record<string, Record<string, number>>)["words.terms"]!;
  assert.ok(Object.keys(terms).length >= 3 && Object.values(terms).every((x) => x > 0), JSON.stringify(terms));
  writeFileSync(file, program(1));
  const changed = cli(["eval", file, "--weights", out, "--backend", "cpu"]);
  assert.is(changed.code, 2, changed.err);
  assert.match(changed.err, /saved vectorizer of field "words" was fitted with vocab: 80, mode: tf_idf, ngrams: 2.*now says .*ngrams: 1/);
});

test.run();
