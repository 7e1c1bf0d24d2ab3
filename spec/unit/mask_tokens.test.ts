// mask_tokens (runtime/data/steps.ts): masked-language modelling's inputs and targets from one text. An ids
// field and a labels field of the same text pick the same positions (they depend on the seed and the sample's
// row only); specials and padding are never picked; picked positions become [MASK] / a random ordinary token /
// themselves at about 80/10/10; unpicked labels are the padding id (cross_entropy's ignore).
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AttrValue } from "../../compiler/ir/types.js";
import type { Column } from "../../runtime/data/columns.js";
import { DataError } from "../../runtime/data/errors.js";
import { compileField } from "../../runtime/data/steps.js";
import { buildVocabulary, type Vocabulary } from "../../runtime/data/tokenize.js";
import { parseWordPieceVocab } from "../../runtime/data/wordpiece.js";
import type { FieldSpec } from "../../runtime/spec.js";

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

function run(f: FieldSpec, data: string[], rows: number[], vocab: Vocabulary = VOCAB): Int32Array {
  const column: Column = { kind: "text", name: "text", data };
  return compileField(f, column, () => vocab).run(column, rows).data as Int32Array;
}

const ALL = (n: number) => Array.from({ length: n }, (_, i) => i);

test("mask_tokens: ids and labels of one text agree; specials and padding never masked; about 15% picked, 80/10/10", () => {
  const data = texts(2000, 7);
  const rows = ALL(data.length);
  const plain = run(field("plain"), data, rows);
  const ids = run(field("ids", ["mask_tokens", { rate: 0.15 }]), data, rows);
  const labels = run(field("targets", ["mask_tokens", { rate: 0.15, labels: true }]), data, rows);
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

test.run();
