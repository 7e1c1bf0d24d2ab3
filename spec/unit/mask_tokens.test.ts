// mask_tokens (runtime/data/steps.ts): masked-language modelling's inputs and targets from one text. An ids
// field and a labels field of the same text pick the same positions (they depend on the seed and the sample's
// row only); specials and padding are never picked; picked positions become [MASK] / a random ordinary token /
// themselves at about 80/10/10; unpicked labels are the padding id (cross_entropy's ignore). Dynamic masking
// (the default): a training epoch's view picks afresh from (run seed, epoch, row), still alike in ids and
// labels; validation, test and eval see the seed's fixed picks; through the CLI a run killed and resumed ends
// as an uninterrupted one, and the trainer's test loss is eval's.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AttrValue } from "../../compiler/ir/types.js";
import type { Column } from "../../runtime/data/columns.js";
import { DataError } from "../../runtime/data/errors.js";
import { loadDataset } from "../../runtime/data/index.js";
import { compileField, type Draw } from "../../runtime/data/steps.js";
import { buildVocabulary, type Vocabulary } from "../../runtime/data/tokenize.js";
import { parseWordPieceVocab } from "../../runtime/data/wordpiece.js";
import type { DatasetSpec, FieldSpec } from "../../runtime/spec.js";
import { ROOT, trainKilledAfter } from "../helpers.js";
import { requireTorch } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-mask-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

const WORDS = ["the", "free", "money", "meeting", "at", "ten", "offer", "now", "click", "here", "today", "win", "cash", "report", "attached", "please", "see"];
const VOCAB = parseWordPieceVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...WORDS, "!", "."].join("\n"), true) as Vocabulary;
const LEN = 24;

function texts(n: number, seed: number): string[] {
  let s = seed;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % WORDS.length;
  return Array.from({ length: n }, (_, i) => Array.from({ length: 3 + (i % 25) }, () => WORDS[next()]).join(" "));
}

function field(name: string, ...steps: [string, Record<string, AttrValue>][]): FieldSpec {
  return { name, dtype: "i32", shape: [LEN], column: "text", steps: [["tokenize", { vocab: "vocab.txt", max_len: LEN }] as [string, Record<string, AttrValue>], ...steps].map(([fn, args]) => ({ fn, args })) };
}

function run(f: FieldSpec, data: string[], rows: number[], vocab: Vocabulary = VOCAB, draw: Draw | null = null): Int32Array {
  const column: Column = { kind: "text", name: "text", data };
  return compileField(f, column, () => vocab).run(column, rows, draw).data as Int32Array;
}

const ALL = (n: number) => Array.from({ length: n }, (_, i) => i);

/** ids and labels agree, specials and padding are never picked, about 15% picked, 80/10/10. */
function checkMasking(plain: Int32Array, ids: Int32Array, labels: Int32Array): void {
  let ordinary = 0;
  let picked = 0;
  let masks = 0;
  let kept = 0;
  for (let i = 0; i < plain.length; i++) {
    const id = plain[i]!;
    if (id <= 4) {
      // [PAD] [UNK] [CLS] [SEP] [MASK]: unchanged, never a target.
      if (id !== 1) assert.is(ids[i], id, `special ${id} at ${i} changed`);
      if (id !== 1) assert.is(labels[i], 0);
      continue;
    }
    ordinary++;
    if (labels[i] === 0) {
      assert.is(ids[i], id, `an unpicked token changed at ${i}`);
      continue;
    }
    picked++;
    assert.is(labels[i], id, "a picked position's label is its original id");
    if (ids[i] === 4) masks++;
    else if (ids[i] === id) kept++;
    else assert.ok(ids[i]! >= 5 && ids[i]! < VOCAB.size, `a random replacement ${ids[i]} is an ordinary token`);
  }
  const rate = picked / ordinary;
  assert.ok(Math.abs(rate - 0.15) < 0.01, `picked ${rate} of ${ordinary} ordinary tokens`);
  assert.ok(Math.abs(masks / picked - 0.8) < 0.03, `[MASK] for ${masks / picked} of the picks`);
  // The 10% random draws can hit the token itself (1 in 19 here).
  assert.ok(Math.abs(kept / picked - (0.1 + 0.1 / 19)) < 0.025, `kept ${kept / picked}`);
}

test("mask_tokens: ids and labels of one text agree; specials and padding never masked; about 15% picked, 80/10/10", () => {
  const data = texts(2000, 7);
  const rows = ALL(data.length);
  const plain = run(field("plain"), data, rows);
  checkMasking(plain, run(field("ids", ["mask_tokens", { rate: 0.15 }]), data, rows), run(field("targets", ["mask_tokens", { rate: 0.15, labels: true }]), data, rows));
});

const EPOCH0: Draw = { seed: 11, epoch: 0 };
const EPOCH1: Draw = { seed: 11, epoch: 1 };

test("mask_tokens: dynamic masking — each training epoch picks afresh (ids and labels alike, 80/10/10); outside training, and with dynamic: false, the seed's fixed picks", () => {
  const data = texts(2000, 7);
  const rows = ALL(data.length);
  const plain = run(field("plain"), data, rows);
  const ids = field("ids", ["mask_tokens", { rate: 0.15 }]);
  const labels = field("targets", ["mask_tokens", { rate: 0.15, labels: true }]);
  const fixed = run(ids, data, rows);
  const at = (draw: Draw | null, f = ids) => run(f, data, rows, VOCAB, draw);
  for (const d of [EPOCH0, EPOCH1]) checkMasking(plain, at(d), at(d, labels));
  const [e0, e1] = [at(EPOCH0), at(EPOCH1)];
  assert.equal(at({ ...EPOCH0 }), e0, "the same epoch draws the same again");
  // Per sample: another epoch, another masking (a row of a few tokens may draw no pick twice).
  let differ = 0;
  let eligible = 0;
  const l0 = at(EPOCH0, labels);
  const l1 = at(EPOCH1, labels);
  for (const r of rows) {
    const a = Array.from(l0.subarray(r * LEN, (r + 1) * LEN));
    const b = Array.from(l1.subarray(r * LEN, (r + 1) * LEN));
    if (a.every((x) => x === 0) && b.every((x) => x === 0)) continue;
    eligible++;
    if (a.join() !== b.join()) differ++;
  }
  assert.ok(eligible > 1800 && differ / eligible > 0.97, `${differ} of ${eligible} rows masked differently in epochs 1 and 2`);
  assert.not.equal(Array.from(e0), Array.from(fixed), "a training epoch is not the fixed masking");
  assert.not.equal(Array.from(at({ seed: 12, epoch: 0 })), Array.from(e0), "another run seed, other picks");
  assert.not.equal(Array.from(run(field("ids", ["mask_tokens", { rate: 0.15, seed: 1 }]), data, rows, VOCAB, EPOCH0)), Array.from(e0), "another step seed, other picks");
  // A training epoch's picks do not depend on the batch.
  const some = [1999, 5, 700, 6];
  const part = run(ids, data, some, VOCAB, EPOCH1);
  some.forEach((r, k) => assert.equal(Array.from(part.subarray(k * LEN, (k + 1) * LEN)), Array.from(e1.subarray(r * LEN, (r + 1) * LEN))));
  // dynamic: false is static masking: the same picks in every epoch, the fixed ones.
  const stat = field("ids", ["mask_tokens", { rate: 0.15, dynamic: false }]);
  assert.equal(at(EPOCH0, stat), fixed);
  assert.equal(at(EPOCH1, stat), fixed);
});

test("mask_tokens: the same picks for a sample in every batch and order (by its row), others for another seed", () => {
  const data = texts(300, 3);
  const f = field("ids", ["mask_tokens", { rate: 0.3 }]);
  const whole = run(f, data, ALL(300));
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 299 }), { minLength: 1, maxLength: 40 }), (rows) => {
      const part = run(f, data, rows);
      rows.forEach((r, k) => assert.equal(Array.from(part.subarray(k * LEN, (k + 1) * LEN)), Array.from(whole.subarray(r * LEN, (r + 1) * LEN))));
    }),
    { numRuns: 50 },
  );
  const other = run(field("ids", ["mask_tokens", { rate: 0.3, seed: 1 }]), data, ALL(300));
  assert.not.equal(Array.from(other), Array.from(whole));
});

test("mask_tokens: a vocabulary built from the data masks with <unk>; labels are 0 elsewhere", () => {
  const data = texts(500, 11);
  const built = buildVocabulary(data, { size: 12, split: "word", lowercase: true });
  const f = (name: string, args: Record<string, AttrValue>): FieldSpec => ({ name, dtype: "i32", shape: [LEN], column: "text", steps: [{ fn: "tokenize", args: { vocab: 12, max_len: LEN } }, { fn: "mask_tokens", args }] });
  const plain = run({ name: "p", dtype: "i32", shape: [LEN], column: "text", steps: [{ fn: "tokenize", args: { vocab: 12, max_len: LEN } }] }, data, ALL(500), built);
  const ids = run(f("ids", {}), data, ALL(500), built);
  const labels = run(f("labels", { labels: true }), data, ALL(500), built);
  let picked = 0;
  for (let i = 0; i < plain.length; i++) {
    if (plain[i]! < 2) assert.is(labels[i], 0);
    if (labels[i] !== 0) {
      picked++;
      assert.is(labels[i], plain[i]);
      assert.ok(ids[i] === 1 || (ids[i]! >= 2 && ids[i]! < 12));
    } else assert.is(ids[i], plain[i]);
  }
  assert.ok(picked > 0);
});

test("mask_tokens: refused before tokenize, with a rate outside (0, 1), and for a vocabulary without a mask token", () => {
  const data = texts(4, 1);
  const throws = (fn: () => unknown, re: RegExp) => {
    try {
      fn();
    } catch (e) {
      assert.instance(e, DataError);
      assert.match((e as Error).message, re);
      return;
    }
    assert.unreachable("no error");
  };
  const column: Column = { kind: "num", name: "label", int: true, shape: [], data: new Int32Array(4), gather: () => undefined } as unknown as Column;
  throws(() => compileField({ name: "label", dtype: "i32", shape: [], column: "label", steps: [{ fn: "mask_tokens", args: {} }] }, column, () => VOCAB), /field "label": mask_tokens masks token ids: put it right after tokenize/);
  throws(() => run(field("ids", ["mask_tokens", { rate: 1 }]), data, ALL(4)), /rate must be between 0 and 1, got 1/);
  const noMask = parseWordPieceVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", ...WORDS].join("\n"), true) as Vocabulary;
  throws(() => run(field("ids", ["mask_tokens", {}]), data, ALL(4), noMask), /needs the vocabulary's mask token \(\[MASK\]\)/);
});

const SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "we eat bread and cheese", "birds fly over the sea", "rain falls on the roof", "the sun warms the stone"];

function corpus(dir: string, n: number): void {
  mkdirSync(dir, { recursive: true });
  let s = 3;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % SENTENCES.length;
  writeFileSync(path.join(dir, "texts.csv"), ["text", ...Array.from({ length: n }, () => `${SENTENCES[next()]} ${SENTENCES[next()]}`)].join("\n") + "\n");
}

function dataset(dynamic: boolean): DatasetSpec {
  const f = (name: string, labels: boolean) => ({ name, dtype: "i32", shape: [12], column: "text", steps: [{ fn: "tokenize", args: { vocab: 40, max_len: 12 } }, { fn: "mask_tokens", args: { rate: 0.3, labels, dynamic } }] });
  return { name: "corpus", source: { fn: "csv", args: { path: "texts.csv" } }, test: null, split: { test: 0.25, seed: 2 }, filter: null, fields: [f("ids", false), f("targets", true)] } as unknown as DatasetSpec;
}

test("mask_tokens in a split: the training view redraws per epoch; the split itself (validation, test) keeps one masking; dynamic: false makes no view", async () => {
  const dir = path.join(TMP, "inproc");
  corpus(dir, 200);
  const data = await loadDataset(dataset(true), { dataDir: null, baseDir: dir, seed: 0 });
  const idx = Uint32Array.from({ length: 40 }, (_, i) => i);
  const ids = (b: { ids?: { data: ArrayLike<number> } }) => Array.from(b.ids!.data);
  const fixed = ids(data.train.batch(idx));
  assert.equal(ids(data.train.batch(idx)), fixed);
  const v0 = data.train.augmented!(3, 0);
  const v1 = data.train.augmented!(3, 1);
  assert.is.not(v0, data.train, "a training epoch's view");
  assert.not.equal(ids(v0.batch(idx)), fixed);
  assert.not.equal(ids(v1.batch(idx)), ids(v0.batch(idx)));
  const tidx = Uint32Array.from({ length: data.test!.size }, (_, i) => i);
  assert.equal(ids(data.test!.batch(tidx)), ids(data.test!.batch(tidx)), "the test split is masked alike each time");
  const still = await loadDataset(dataset(false), { dataDir: null, baseDir: dir, seed: 0 });
  assert.is(still.train.augmented!(3, 0), still.train, "static masking: no view, the same samples every epoch");
  assert.equal(ids(still.train.batch(idx)), fixed, "static masking is the dynamic one's fixed masking");
});

function program(dir: string, extra = ""): string {
  const file = path.join(dir, "mlm.nnet");
  writeFileSync(
    file,
    `model TinyMLM {
  input ids: i32[batch, 12]
  output logits = ids -> embedding(40, 16) -> dense(32, activation: relu) -> dense(40)
}
dataset corpus {
  source csv("texts.csv")
  split  test: 0.25, seed: 2
  field ids:     i32[12] = text -> tokenize(vocab: 40, max_len: 12) -> mask_tokens(rate: 0.3${extra})
  field targets: i32[12] = text -> tokenize(vocab: 40, max_len: 12) -> mask_tokens(rate: 0.3, labels: true${extra})
}
train TinyMLM on corpus {
  loss       cross_entropy(logits, targets, ignore: 0)
  optimizer  adam(lr: 1e-2)
  batch      8
  epochs     4
  validation 0.1
  seed       7
  checkpoint every: 1, keep: 2
}
`,
  );
  return file;
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 180_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const losses = (dir: string) => readFileSync(path.join(dir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { epoch: number; loss: number; val_loss: number });

test("CLI: a dynamically masked run killed with SIGKILL and resumed ends as an uninterrupted one; validation is masked alike each epoch; the trainer's test loss is eval's", async () => {
  const dir = path.join(TMP, "cli");
  corpus(dir, 480);
  const file = program(dir);
  const ref = cli(["train", file, "--backend", "cpu", "--out", path.join(dir, "ref"), "--json"]);
  assert.is(ref.code, 0, ref.err);
  assert.match(ref.out, /"event":"augmentation","fields":\["ids \(mask_tokens\)","targets \(mask_tokens\)"\]/);
  const want = losses(path.join(dir, "ref"));
  assert.is(want.length, 4);

  // Static masking trains to other losses: the dynamic one is in effect.
  const statFile = program(path.join(dir), ", dynamic: false");
  const stat = cli(["train", statFile, "--backend", "cpu", "--out", path.join(dir, "static"), "--json"]);
  assert.is(stat.code, 0, stat.err);
  assert.not.match(stat.out, /"event":"augmentation"/);
  assert.not.equal(losses(path.join(dir, "static")).map((e) => e.loss), want.map((e) => e.loss));
  program(dir);

  const out = path.join(dir, "run");
  await trainKilledAfter([file, "--backend", "cpu", "--out", out], 2);
  const before = losses(out);
  assert.ok(before.length >= 2 && before.length < 4, `killed after ${before.length} epochs`);
  const resumed = cli(["train", file, "--backend", "cpu", "--out", out, "--resume", "--json"]);
  assert.is(resumed.code, 0, resumed.err);
  const got = losses(out);
  assert.equal(got.map((e) => e.epoch), [1, 2, 3, 4]);
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(got[i]!.loss - want[i]!.loss) <= 1e-5 * Math.max(1, want[i]!.loss), `epoch ${i + 1}: ${got[i]!.loss} vs ${want[i]!.loss}`);
    assert.ok(Math.abs(got[i]!.val_loss - want[i]!.val_loss) <= 1e-5 * Math.max(1, want[i]!.val_loss), `epoch ${i + 1} val: ${got[i]!.val_loss} vs ${want[i]!.val_loss}`);
  }
  // nnetc data --epoch N shows epoch N's masking: one per epoch, none of them the fixed one.
  const show = (...a: string[]) => cli(["data", file, "-n", "6", ...a]);
  const e1 = show("--epoch", "1");
  assert.is(e1.code, 0, e1.err);
  assert.is(show("--epoch", "1").out, e1.out);
  assert.is.not(show("--epoch", "2").out, e1.out);
  assert.is.not(show().out, e1.out);
  assert.is(show().out, show().out);
  // The test split is masked alike in training and in eval: the same loss.
  const trained = JSON.parse(readFileSync(path.join(out, "test.json"), "utf8")) as { loss: number };
  const ev = cli(["eval", file, "--weights", out, "--backend", "cpu", "--json"]);
  assert.is(ev.code, 0, ev.err);
  const evLoss = (JSON.parse(ev.out.trim().split("\n").pop()!) as { loss: number }).loss;
  assert.ok(Math.abs(trained.loss - evLoss) < 1e-5, `test loss ${trained.loss} in training, ${evLoss} by eval`);
});

test("CLI: the torch engine masks each epoch as tfjs does (a fresh shard per epoch)", () => {
  requireTorch();
  const dir = path.join(TMP, "cli");
  corpus(dir, 480);
  const file = program(dir);
  const a = cli(["train", file, "--backend", "cpu", "--out", path.join(dir, "eq-tfjs"), "--epochs", "3"]);
  const b = cli(["train", file, "--engine", "torch", "--out", path.join(dir, "eq-torch"), "--epochs", "3"]);
  assert.is(a.code, 0, a.err);
  assert.is(b.code, 0, b.err);
  const x = losses(path.join(dir, "eq-tfjs"));
  const y = losses(path.join(dir, "eq-torch"));
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(x[i]!.loss - y[i]!.loss) < 1e-4, `epoch ${i + 1}: tfjs ${x[i]!.loss}, torch ${y[i]!.loss}`);
    assert.ok(Math.abs(x[i]!.val_loss - y[i]!.val_loss) < 1e-4, `epoch ${i + 1} val: tfjs ${x[i]!.val_loss}, torch ${y[i]!.val_loss}`);
  }
});

test.run();
