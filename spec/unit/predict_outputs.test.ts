// nnetc predict as people read it: class names saved with the run (and checked by eval and --resume), the top
// classes with their probabilities (softmax of the logits, against the JSON's own logits), raw files prepared by
// the dataset's own steps (an image, a text file, a folder: the same numbers as the dataset's samples give), a
// bad file named, a run without class names printing ids, and random rows for float inputs.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { initBackend } from "../../runtime/backend.js";
import { initWeights } from "../../runtime/init.js";
import { run } from "../../runtime/interpret.js";
import { cutModel, gridPng, randomInputs, topClasses } from "../../runtime/predict.js";
import { DataError } from "../../runtime/data/index.js";
import { rawFiles, rawSplit } from "../../runtime/data/raw.js";
import type { DatasetSpec } from "../../runtime/spec.js";
import { compileText, expectClean, ROOT } from "../helpers.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-predict-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
const jsonRows = (out: string) => out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.index !== undefined);

const COLOURS: Record<string, [number, number, number]> = { blue: [20, 40, 230], green: [30, 220, 40], red: [235, 30, 25] };

/** 8 × 8 PNGs of one colour per class folder, with a little seeded noise. */
async function colourFolder(dir: string, per: number): Promise<void> {
  let s = 7;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  for (const [name, rgb] of Object.entries(COLOURS)) {
    mkdirSync(path.join(dir, name), { recursive: true });
    for (let i = 0; i < per; i++) {
      const px = Buffer.alloc(8 * 8 * 3);
      for (let k = 0; k < px.length; k++) px[k] = Math.max(0, Math.min(255, rgb[k % 3]! + Math.round((rand() - 0.5) * 40)));
      await sharp(px, { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(path.join(dir, name, `${i}.png`));
    }
  }
}

const IMAGE_MODEL = `model Tiny {
  input image: f32[batch, 8, 8, 3]
  output logits = image -> flatten -> dense(3)
}

dataset colours {
  source image_folder(path: "imgs", size: 8)
  field image: f32[8, 8, 3] = image -> scale(1 / 255)
  field label: i32 = label
}

train Tiny on colours {
  loss      cross_entropy(logits, label)
  optimizer adam(lr: 0.05)
  batch     6
  epochs    6
  seed      1
}
`;

const imgDir = path.join(TMP, "img");
const imgNnet = path.join(imgDir, "tiny.nnet");
const imgRun = path.join(imgDir, "run");

test("image_folder: the run saves its class names; predict of PNG files prints the top classes by name", async () => {
  mkdirSync(imgDir, { recursive: true });
  await colourFolder(path.join(imgDir, "imgs"), 6);
  writeFileSync(imgNnet, IMAGE_MODEL);
  const t = cli(["train", imgNnet, "--out", imgRun, "--backend", "cpu"]);
  assert.is(t.code, 0, t.err);
  const info = JSON.parse(readFileSync(path.join(imgRun, "model.json"), "utf8")) as { classes?: string[]; columns?: Record<string, number[]> };
  assert.equal(info.classes, ["blue", "green", "red"]);
  assert.equal(info.columns?.image, [8, 8, 3]);
  const files = ["red", "blue"].map((c) => path.join(imgDir, "imgs", c, "0.png"));
  const r = cli(["predict", imgNnet, "--weights", imgRun, "--input", ...files, "--top", "2", "--backend", "cpu"]);
  assert.is(r.code, 0, r.err);
  const lines = r.out.trim().split("\n");
  assert.is(lines.length, 2, r.out);
  assert.match(lines[0]!, new RegExp(`^${files[0]!.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}  red [01]\\.\\d{3}  \\w+ [01]\\.\\d{3}$`));
  assert.match(lines[1]!, /  blue [01]\.\d{3}  \w+ [01]\.\d{3}$/);
  // A quantized file carries the class names (and column shapes) in its metadata, as it carries the vocabulary.
  const q = cli(["compile", imgNnet, "--quantize", "float16", "--weights", imgRun, "-o", path.join(imgDir, "q")]);
  assert.is(q.code, 0, q.err);
  const fromQ = cli(["predict", imgNnet, "--weights", path.join(imgDir, "q", "tiny.float16.safetensors"), "--input", files[0]!, "--top", "1", "--backend", "cpu"]);
  assert.is(fromQ.code, 0, fromQ.err);
  assert.match(fromQ.out.trim(), /  red [01]\.\d{3}$/);
});

test("--json: ids, names and probabilities, the softmax of the row's own logits; a folder is one row per image", () => {
  const r = cli(["predict", imgNnet, "--weights", imgRun, "--input", path.join(imgDir, "imgs", "green"), "--json", "--backend", "cpu"]);
  assert.is(r.code, 0, r.err);
  const rows = jsonRows(r.out) as { file: string; logits: number[]; logits_class: number; logits_name: string; logits_top: { class: number; name: string; probability: number }[] }[];
  assert.is(rows.length, 6);
  assert.equal(rows.map((x) => path.basename(x.file)), ["0.png", "1.png", "2.png", "3.png", "4.png", "5.png"]);
  for (const row of rows) {
    const e = row.logits.map((x) => Math.exp(x));
    const sum = e.reduce((a, b) => a + b, 0);
    assert.is(row.logits_top.length, 3);
    for (const t of row.logits_top) {
      assert.ok(Math.abs(t.probability - e[t.class]! / sum) < 1e-6, `${t.probability} vs ${e[t.class]! / sum}`);
      assert.is(t.name, ["blue", "green", "red"][t.class]);
    }
    assert.ok(row.logits_top[0]!.probability >= row.logits_top[1]!.probability);
    assert.is(row.logits_name, "green");
    assert.is(row.logits_class, 1);
  }
});

test("a raw image gives the numbers the dataset gives the same file (predict of nnetc data's sample as JSON)", () => {
  // The training split's first sample is blue/0.png (class folders sorted, no hold-out).
  const d = cli(["data", imgNnet, "-n", "1"]);
  assert.is(d.code, 0, d.err);
  const sample = JSON.parse(d.out.trim().split("\n")[0]!) as { image: number[][][]; "label.class": string };
  assert.is(sample["label.class"], "blue");
  writeFileSync(path.join(imgDir, "sample.json"), JSON.stringify({ image: [sample.image] }));
  const viaJson = cli(["predict", imgNnet, "--weights", imgRun, "--input", path.join(imgDir, "sample.json"), "--json", "--backend", "cpu"]);
  const viaFile = cli(["predict", imgNnet, "--weights", imgRun, "--input", path.join(imgDir, "imgs", "blue", "0.png"), "--json", "--backend", "cpu"]);
  assert.is(viaJson.code, 0, viaJson.err);
  assert.is(viaFile.code, 0, viaFile.err);
  const a = jsonRows(viaJson.out)[0]!.logits as number[];
  const b = jsonRows(viaFile.out)[0]!.logits as number[];
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5, `${a} vs ${b}`);
});

test("a bad file is named; a missing one too", () => {
  const bad = path.join(imgDir, "notes.png");
  writeFileSync(bad, "not an image");
  const r = cli(["predict", imgNnet, "--weights", imgRun, "--input", bad, "--backend", "cpu"]);
  assert.is(r.code, 2, r.err);
  assert.ok(r.err.includes(bad) && /not a PNG, JPEG or WebP image|cannot decode/.test(r.err), r.err);
  const missing = cli(["predict", imgNnet, "--weights", imgRun, "--input", path.join(imgDir, "nope.png"), "--backend", "cpu"]);
  assert.is(missing.code, 2);
  assert.ok(missing.err.includes("nope.png") && missing.err.includes("no such file"), missing.err);
});

test("eval and --resume refuse class folders that no longer agree with the run's; a run without class names prints ids", () => {
  const moved = path.join(TMP, "moved");
  cpSync(imgDir, moved, { recursive: true });
  renameSync(path.join(moved, "imgs", "green"), path.join(moved, "imgs", "yellow"));
  const nnet = path.join(moved, "tiny.nnet");
  const ev = cli(["eval", nnet, "--weights", path.join(moved, "run"), "--backend", "cpu"]);
  assert.is(ev.code, 2, ev.err);
  assert.ok(ev.err.includes("trained with the classes blue, green, red") && ev.err.includes("blue, red, yellow"), ev.err);
  const re = cli(["train", nnet, "--out", path.join(moved, "run"), "--resume", "--epochs", "8", "--backend", "cpu"]);
  assert.is(re.code, 2, re.err);
  assert.ok(re.err.includes("trained with the classes blue, green, red"), re.err);
  // An older run: model.json without classes (and checkpoints without them) still loads; ids are printed. Runs
  // before run folders had checksums have no run-manifest.json either (with it, the edited model.json is NN7031).
  rmSync(path.join(moved, "run", "run-manifest.json"));
  const old = path.join(moved, "run", "model.json");
  const info = JSON.parse(readFileSync(old, "utf8")) as Record<string, unknown>;
  delete info.classes;
  writeFileSync(old, JSON.stringify(info));
  const p = cli(["predict", nnet, "--weights", path.join(moved, "run"), "--input", path.join(moved, "imgs", "red", "1.png"), "--top", "1", "--backend", "cpu"]);
  assert.is(p.code, 0, p.err);
  assert.match(p.out.trim(), /red\/1\.png  2 [01]\.\d{3}$/);
});

const TEXT_MODEL = `model Words {
  input ids: i32[batch, 12]
  output logits = ids -> embedding(40, 8) -> global_avg_pool1d -> dense(2)
}

dataset notes {
  source text_folder(path: "texts")
  field ids: i32[12] = text -> tokenize(vocab: 40, max_len: 12)
  field label: i32 = label
}

train Words on notes {
  loss      cross_entropy(logits, label)
  optimizer adam(lr: 0.05)
  batch     4
  epochs    4
  seed      1
}
`;

test("text_folder: a text file is tokenized with the run's vocabulary: the same ids and outputs as the dataset's sample", () => {
  const dir = path.join(TMP, "text");
  const words = { cats: ["cat purrs softly", "the cat sleeps", "a cat and a mouse", "cat naps in sun"], dogs: ["dog barks loud", "the dog runs", "a dog and a ball", "dog digs in mud"] };
  for (const [cls, texts] of Object.entries(words)) {
    mkdirSync(path.join(dir, "texts", cls), { recursive: true });
    texts.forEach((t, i) => writeFileSync(path.join(dir, "texts", cls, `${i}.txt`), t));
  }
  const nnet = path.join(dir, "words.nnet");
  writeFileSync(nnet, TEXT_MODEL);
  const t = cli(["train", nnet, "--out", path.join(dir, "run"), "--backend", "cpu"]);
  assert.is(t.code, 0, t.err);
  const d = cli(["data", nnet, "-n", "1", "--start", "5"]); // dogs/1.txt
  const sample = JSON.parse(d.out.trim().split("\n")[0]!) as { ids: number[] };
  writeFileSync(path.join(dir, "ids.json"), JSON.stringify({ ids: [sample.ids] }));
  const a = jsonRows(cli(["predict", nnet, "--weights", path.join(dir, "run"), "--input", path.join(dir, "ids.json"), "--json", "--backend", "cpu"]).out)[0]!;
  const r = cli(["predict", nnet, "--weights", path.join(dir, "run"), "--input", path.join(dir, "texts", "dogs", "1.txt"), "--json", "--backend", "cpu"]);
  assert.is(r.code, 0, r.err);
  const b = jsonRows(r.out)[0]!;
  assert.equal(b.logits, a.logits);
  assert.equal((b.logits_top as { name: string }[]).map((x) => x.name).sort(), ["cats", "dogs"]);
});

const BLOBS = `model Mlp {
  input x: f32[batch, 4]
  output y = x -> dense(3)
}

dataset table {
  source jsonl(path: "t.jsonl")
  field x: f32[4] = x
  field label: i32 = k
}

train Mlp on table {
  loss      cross_entropy(y, label)
  optimizer adam(lr: 0.05)
  batch     4
  epochs    2
  seed      1
}
`;

test("a source without class names (jsonl) prints class ids; random:N needs float inputs and is seeded", () => {
  const dir = path.join(TMP, "csv");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "t.jsonl"), Array.from({ length: 12 }, (_, i) => JSON.stringify({ x: [i % 3, (i * 7) % 5, i % 2, 1], k: i % 3 })).join("\n") + "\n");
  const nnet = path.join(dir, "mlp.nnet");
  writeFileSync(nnet, BLOBS);
  const t = cli(["train", nnet, "--out", path.join(dir, "run"), "--backend", "cpu"]);
  assert.is(t.code, 0, t.err);
  const p = cli(["predict", nnet, "--weights", path.join(dir, "run"), "--input", "test:2", "--backend", "cpu"]);
  assert.is(p.code, 0, p.err);
  const lines = p.out.trim().split("\n");
  assert.is(lines.length, 2);
  assert.match(lines[0]!, /^0  [0-2] [01]\.\d{3}  [0-2] [01]\.\d{3}  [0-2] [01]\.\d{3}$/);
  const r1 = cli(["predict", nnet, "--weights", path.join(dir, "run"), "--input", "random:3", "--seed", "4", "--json", "--backend", "cpu"]);
  const r2 = cli(["predict", nnet, "--weights", path.join(dir, "run"), "--input", "random:3", "--seed", "4", "--json", "--backend", "cpu"]);
  const r3 = cli(["predict", nnet, "--weights", path.join(dir, "run"), "--input", "random:3", "--seed", "5", "--json", "--backend", "cpu"]);
  assert.is(r1.code, 0, r1.err);
  assert.is(jsonRows(r1.out).length, 3);
  assert.equal(jsonRows(r1.out), jsonRows(r2.out));
  assert.not.equal(jsonRows(r1.out), jsonRows(r3.out));
  const words = cli(["predict", path.join(TMP, "text", "words.nnet"), "--weights", path.join(TMP, "text", "run"), "--input", "random:2", "--backend", "cpu"]);
  assert.is(words.code, 2);
  assert.ok(words.err.includes('input "ids" of model "Words" holds i32 values'), words.err);
});

test("raw files that are not images: a DataError naming the file, never a crash (property)", async () => {
  const dir = path.join(TMP, "junk");
  mkdirSync(dir, { recursive: true });
  const ds = { name: "d", source: { fn: "image_folder", args: { path: "x", size: 8 } }, test: null, split: {}, filter: null, fields: [{ name: "image", dtype: "f32", shape: [8, 8, 3], column: "image", steps: [] }] } as unknown as DatasetSpec;
  const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  let k = 0;
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), fc.boolean(), async (bytes, magic) => {
      const file = path.join(dir, `f${k++}.png`);
      writeFileSync(file, Buffer.from([...(magic ? PNG : []), ...bytes]));
      try {
        await rawSplit(ds, ["image"], await rawFiles([file], "image"), { kind: "image", column: "image", shape: [8, 8, 3] }, undefined);
        return false;
      } catch (e) {
        return e instanceof DataError && e.message.includes(file);
      }
    }),
    { seed: 16, numRuns: 40 },
  );
  // a folder with no images in it
  const empty = path.join(TMP, "empty");
  mkdirSync(empty, { recursive: true });
  writeFileSync(path.join(empty, "notes.txt"), "x");
  await rawFiles([empty], "image").then(
    () => assert.unreachable("an empty folder"),
    (e: Error) => assert.ok(e instanceof DataError && e.message.includes(`${empty}: the folder holds no images (.png, .jpg, .jpeg, .webp)`), e.message),
  );
});

const GAN = `model Gan {
  input noise: f32[batch, 4]
  input image: f32[batch, 3, 3, 1]
  fake = noise -> dense(9, activation: sigmoid) -> reshape([3, 3, 1])
  layer critic = dense(1)
  output real_score = image -> flatten -> critic
  output fake_score = fake -> flatten -> critic
  output sample = fake
}
`;

test("--from: the cut model computes what the whole model computes from the same intermediate value", async () => {
  await initBackend("cpu");
  const res = compileText(readFileSync(path.join(ROOT, "models/vae.nnet"), "utf8"), "vae.nnet");
  expectClean(res);
  const m = res.module.models[0]!;
  const dec = cutModel(m, "sample_normal");
  assert.equal(dec.inputs.map((i) => [i.name, i.shape]), [["sample_normal", ["batch", 2]]]);
  assert.equal(dec.outputs.map((o) => o.name), ["recon"]);
  assert.ok(!dec.nodes.some((n) => n.name.startsWith("conv2d") && !n.name.startsWith("conv2d_transpose")), "the encoder is gone");
  let s = 9;
  const weights = initWeights(m.params, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32));
  const image = tf.randomUniform([3, 28, 28, 1], 0, 1, "float32", 2);
  let z: tf.Tensor | null = null;
  const whole = tf.tidy(() => run(m, weights, { image }, { training: false, observe: (name, _x, out) => void (name === "sample_normal" && (z = tf.keep(out.clone()))) }).outputs.recon!.dataSync());
  assert.ok(z, "sample_normal ran");
  const cut = tf.tidy(() => run(dec, weights, { sample_normal: z! }, { training: false }).outputs.recon!.dataSync());
  assert.is(cut.length, whole.length);
  for (let i = 0; i < cut.length; i++) assert.ok(Math.abs(cut[i]! - whole[i]!) < 1e-5, `${i}: ${cut[i]} vs ${whole[i]}`);
  tf.dispose([image, z!, ...weights.values()]);
  // From an input: the outputs computed from the noise alone, without the real images.
  const gan = compileText(GAN);
  expectClean(gan);
  const g = cutModel(gan.module.models[0]!, "noise");
  assert.equal(g.inputs.map((i) => i.name), ["noise"]);
  assert.equal(g.outputs.map((o) => o.name), ["fake_score", "sample"]);
  const r = randomInputs(g, 5, 3);
  assert.equal(r.noise!.shape, [5, 4]);
  const d = Array.from(r.noise!.dataSync());
  const mean = d.reduce((a, b) => a + b, 0) / d.length;
  assert.ok(Math.abs(mean) < 1 && d.every((x) => Number.isFinite(x)), `mean ${mean}`);
  tf.dispose(Object.values(r));
});

test("topClasses: softmax (stable for large logits), sigmoid for one binary score, sorted, names attached (property)", () => {
  fc.assert(
    fc.property(fc.array(fc.float({ min: -500, max: 500, noNaN: true }), { minLength: 2, maxLength: 12 }), fc.integer({ min: 1, max: 12 }), (row, k) => {
      const v = { shape: [1, row.length], data: Float32Array.from(row) };
      const top = topClasses(v, 0, { probs: "softmax", binary: false, names: row.map((_, i) => `c${i}`) }, k);
      assert.is(top.length, Math.min(k, row.length));
      const max = Math.max(...Array.from(v.data));
      const z = Array.from(v.data).reduce((a, x) => a + Math.exp(x - max), 0);
      for (let i = 0; i < top.length; i++) {
        assert.ok(Math.abs(top[i]!.p - Math.exp(v.data[top[i]!.id]! - max) / z) < 1e-9);
        assert.is(top[i]!.name, `c${top[i]!.id}`);
        if (i) assert.ok(top[i - 1]!.p >= top[i]!.p);
      }
    }),
    { seed: 16, numRuns: 200 },
  );
  const b = topClasses({ shape: [2, 1], data: Float32Array.from([0, 2]) }, 1, { probs: "sigmoid", binary: true, names: ["ham", "spam"] }, 2);
  assert.equal(b.map((x) => x.name), ["spam", "ham"]);
  assert.ok(Math.abs(b[0]!.p - 1 / (1 + Math.exp(-2))) < 1e-12);
});

test("gridPng: tiles in place, as they are in [0, 1], else min–max over the grid; RGB stays RGB", async () => {
  // three 2 × 2 grey images in [0, 1]: a 2 × 2 grid, the fourth place empty (grey)
  const vals = Float32Array.from([0, 1, 0.5, 0.25, 1, 1, 1, 1, 0, 0, 0, 0]);
  const g = await gridPng({ shape: [3, 2, 2, 1], data: vals }, false);
  assert.equal([g.cols, g.rows, g.width, g.height], [2, 2, 6, 6]);
  assert.ok(g.scale.startsWith("values as they are"));
  const px = (await sharp(g.png).toColourspace("b-w").raw().toBuffer()) as Buffer;
  assert.equal([...px.subarray(0, 6)], [0, 255, 128, 128, 255, 255]);
  assert.equal([...px.subarray(6, 12)], [128, 64, 128, 128, 255, 255]);
  assert.equal([...px.subarray(24, 26)], [0, 0]);
  assert.equal([...px.subarray(28, 30)], [128, 128], "an empty place is grey");
  const scaled = await gridPng({ shape: [1, 1, 2, 3], data: Float32Array.from([-1, 0, 1, 3, 1, -1]) }, false);
  assert.ok(scaled.scale.startsWith("min–max scaled from [-1.000, 3.000]"), scaled.scale);
  const rgb = (await sharp(scaled.png).raw().toBuffer()) as Buffer;
  assert.equal([...rgb], [0, 64, 128, 255, 128, 0]);
});

test.run();
