// Augmentation (runtime/data/steps.ts's random steps): the runtime's step table and the compiler's PREPROCESS
// agree; each random step is active only in a training epoch's view of a split (Split.augmented), draws the
// same for a sample whatever its batch, differently in another epoch, and passes samples through everywhere
// else (random_crop: its centre); geometry is checked against hand-made images; and through the CLI, a run
// killed with SIGKILL and resumed ends as an uninterrupted augmented run does, while the test split the trainer
// measures is the plain one (its test loss equals `nnetc eval`'s).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AttrValue } from "../../compiler/ir/types.js";
import { PREPROCESS } from "../../compiler/plan/tables.js";
import type { Column } from "../../runtime/data/columns.js";
import { DataError } from "../../runtime/data/errors.js";
import { loadDataset, subset } from "../../runtime/data/index.js";
import { compileField, type Draw, STEP_KERNELS } from "../../runtime/data/steps.js";
import { buildVocabulary } from "../../runtime/data/tokenize.js";
import type { DatasetSpec, FieldSpec } from "../../runtime/spec.js";
import { ROOT, trainKilledAfter } from "../helpers.js";
import { requireTorch } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-augment-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

/** A column of n images h × w × c whose values say where they are: sample·1000 + y·100 + x·10 + channel. */
function images(n: number, h: number, w: number, c: number): Column {
  const data = new Float32Array(n * h * w * c);
  for (let s = 0; s < n; s++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) data[((s * h + y) * w + x) * c + k] = s * 1000 + y * 100 + x * 10 + k + 1;
  return {
    kind: "num",
    name: "image",
    int: false,
    shape: [h, w, c],
    gather(rows, out) {
      const size = h * w * c;
      for (let i = 0; i < rows.length; i++) (out as Float32Array).set(data.subarray(rows[i]! * size, (rows[i]! + 1) * size), i * size);
    },
  } as Column;
}

function field(shape: number[], ...steps: [string, Record<string, AttrValue>][]): FieldSpec {
  return { name: "image", dtype: "f32", shape, column: "image", steps: steps.map(([fn, args]) => ({ fn, args })) };
}

function run(f: FieldSpec, col: Column, rows: number[], draw: Draw | null): Float32Array {
  return compileField(f, col, () => { throw new Error("no vocabulary"); }).run(col, rows, draw).data as Float32Array;
}

const EPOCH0: Draw = { seed: 11, epoch: 0 };
const EPOCH1: Draw = { seed: 11, epoch: 1 };

test("the runtime's step table and the compiler's PREPROCESS name the same steps, and agree on which are random", () => {
  assert.equal(Object.keys(STEP_KERNELS).sort(), Object.keys(PREPROCESS).sort());
  for (const [name, k] of Object.entries(STEP_KERNELS)) assert.is(k.random === true, PREPROCESS[name]!.random === true, name);
});

const RANDOM: [string, Record<string, AttrValue>][] = [
  ["random_flip", { mode: "both" }],
  ["random_crop", { size: 6, padding: 2 }],
  ["random_rotation", { degrees: 30 }],
  ["random_translate", { fraction: 0.3 }],
  ["random_zoom", { fraction: 0.3 }],
  ["color_jitter", { brightness: 0.4, contrast: 0.4, saturation: 0.4 }],
  ["random_erasing", { probability: 0.9 }],
  ["gaussian_noise", { std: 0.5 }],
];

test("every random image step: identity outside training, per-sample draws independent of the batch, new draws each epoch", () => {
  const col = images(40, 6, 6, 3);
  const rows = Array.from({ length: 40 }, (_, i) => i);
  const plain = run(field([6, 6, 3]), col, rows, null);
  for (const [fn, a] of RANDOM) {
    const f = field([6, 6, 3], [fn, a]);
    // random_crop(6, padding: 2) outside training is the centre 6 × 6 of the 10 × 10 padded image: the image.
    assert.equal(run(f, col, rows, null), plain, `${fn} outside training`);
    const e0 = run(f, col, rows, EPOCH0);
    assert.equal(run(f, col, rows, { ...EPOCH0 }), e0, `${fn}: the same draws again`);
    assert.not.equal(e0, plain, `${fn} changes some sample in training`);
    assert.not.equal(run(f, col, rows, EPOCH1), e0, `${fn}: another epoch draws anew`);
    // A sample's draws depend on its row, not on the batch it is in.
    const some = [17, 3, 29];
    const alone = run(f, col, some, EPOCH0);
    const size = 6 * 6 * 3;
    some.forEach((r, i) => assert.equal(Array.from(alone.subarray(i * size, (i + 1) * size)), Array.from(e0.subarray(r * size, (r + 1) * size)), `${fn}: row ${r} in another batch`));
  }
});

test("random_flip, random_crop, random_translate and random_erasing move or fill whole pixels as they say", () => {
  const col = images(64, 5, 7, 2);
  const rows = Array.from({ length: 64 }, (_, i) => i);
  const at = (d: Float32Array, s: number, y: number, x: number, k: number, h = 5, w = 7) => d[((s * h + y) * w + x) * 2 + k]!;
  const src = (s: number, y: number, x: number, k: number) => s * 1000 + y * 100 + x * 10 + k + 1;
  // Flips: each sample is the image or its mirror, and both kinds occur.
  const flip = run(field([5, 7, 2], ["random_flip", { mode: "horizontal" }]), col, rows, EPOCH0);
  let mirrored = 0;
  for (let s = 0; s < 64; s++) {
    const m = at(flip, s, 0, 0, 0) !== src(s, 0, 0, 0);
    mirrored += m ? 1 : 0;
    for (let y = 0; y < 5; y++) for (let x = 0; x < 7; x++) assert.is(at(flip, s, y, x, 1), src(s, y, m ? 6 - x : x, 1));
  }
  assert.ok(mirrored > 16 && mirrored < 48, `${mirrored} of 64 mirrored`);
  // Crops: a 3 × 3 window of the image padded by 1 — values are the source's, or 0 where the window leaves it.
  const crop = run(field([3, 3, 2], ["random_crop", { size: 3, padding: 1 }]), col, rows, EPOCH0);
  const offsets = new Set<string>();
  for (let s = 0; s < 64; s++) {
    // Find the window from its first real pixel.
    let found = false;
    for (let oy = -1; oy <= 3 && !found; oy++) {
      for (let ox = -1; ox <= 5 && !found; ox++) {
        let ok = true;
        for (let y = 0; y < 3 && ok; y++) for (let x = 0; x < 3 && ok; x++) {
          const sy = oy + y;
          const sx = ox + x;
          const want = sy < 0 || sy >= 5 || sx < 0 || sx >= 7 ? 0 : src(s, sy, sx, 0);
          ok = at(crop, s, y, x, 0, 3, 3) === want;
        }
        if (ok) (found = true), offsets.add(`${oy},${ox}`);
      }
    }
    assert.ok(found, `sample ${s}: not a window of the padded image`);
  }
  assert.ok(offsets.size > 10, `${offsets.size} distinct windows`);
  const centre = run(field([3, 3, 2], ["random_crop", { size: 3, padding: 1 }]), col, [4], null);
  assert.is(centre[0], src(4, 1, 2, 0), "outside training: the centre window");
  // Translation by whole pixels: every value is a source pixel's (of the same sample) or 0.
  const shifted = run(field([5, 7, 2], ["random_translate", { fraction: 0.4 }]), col, rows, EPOCH0);
  for (let i = 0; i < shifted.length; i++) {
    const v = shifted[i]!;
    const s = Math.floor(i / 70);
    assert.ok(v === 0 || (Math.floor((v - 1) / 1000) === s && Number.isInteger(v)), `translate: ${v} at ${i}`);
  }
  // Erasing with probability 1: one rectangle of zeros (its area within the bounds), the rest untouched.
  const erased = run(field([5, 7, 2], ["random_erasing", { probability: 1, min_area: 0.1, max_area: 0.4 }]), col, rows, EPOCH0);
  for (let s = 0; s < 64; s++) {
    const zeros: [number, number][] = [];
    for (let y = 0; y < 5; y++) for (let x = 0; x < 7; x++) {
      if (at(erased, s, y, x, 0) === 0) zeros.push([y, x]);
      else assert.is(at(erased, s, y, x, 0), src(s, y, x, 0));
    }
    assert.ok(zeros.length >= 1, `sample ${s}: nothing erased`);
    const ys = zeros.map((z) => z[0]);
    const xs = zeros.map((z) => z[1]);
    const box = (Math.max(...ys) - Math.min(...ys) + 1) * (Math.max(...xs) - Math.min(...xs) + 1);
    assert.is(box, zeros.length, `sample ${s}: the erased pixels are a rectangle`);
  }
});

test("gaussian_noise has the asked spread; color_jitter's brightness scales each sample by one factor in range", () => {
  const col = images(50, 8, 8, 1);
  const rows = Array.from({ length: 50 }, (_, i) => i);
  const plain = run(field([8, 8, 1]), col, rows, null);
  const noisy = run(field([8, 8, 1], ["gaussian_noise", { std: 0.5 }]), col, rows, EPOCH0);
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < plain.length; i++) {
    const d = noisy[i]! - plain[i]!;
    sum += d;
    sq += d * d;
  }
  const mean = sum / plain.length;
  const std = Math.sqrt(sq / plain.length - mean * mean);
  assert.ok(Math.abs(mean) < 0.05 && Math.abs(std - 0.5) < 0.04, `noise mean ${mean}, std ${std}`);
  const bright = run(field([8, 8, 1], ["color_jitter", { brightness: 0.3 }]), col, rows, EPOCH0);
  for (let s = 0; s < 50; s++) {
    const f = bright[s * 64]! / plain[s * 64]!;
    assert.ok(f >= 0.7 - 1e-6 && f <= 1.3 + 1e-6, `factor ${f}`);
    for (let i = 0; i < 64; i++) assert.ok(Math.abs(bright[s * 64 + i]! - plain[s * 64 + i]! * f) < 1e-3 * plain[s * 64 + i]!);
  }
  // saturation needs RGB
  assert.throws(() => run(field([8, 8, 1], ["color_jitter", { saturation: 0.2 }]), col, rows, null), (e: unknown) => e instanceof DataError && /RGB/.test((e as Error).message));
});

test("random_rotation turns about the centre (a centred square keeps its centre); random_zoom scales about it", () => {
  // One bright pixel at the centre of a 9 × 9 image stays at the centre under any rotation or zoom.
  const data = new Float32Array(20 * 81);
  for (let s = 0; s < 20; s++) data[s * 81 + 40] = 1;
  const col: Column = { kind: "num", name: "image", int: false, shape: [9, 9], gather: (r, out) => r.length && (out as Float32Array).set(data.subarray(0, r.length * 81)) } as Column;
  const rows = Array.from({ length: 20 }, (_, i) => i);
  for (const [fn, a] of [["random_rotation", { degrees: 90 }], ["random_zoom", { fraction: 0.2 }]] as const) {
    const out = run(field([9, 9], [fn, a]), col, rows, EPOCH0);
    for (let s = 0; s < 20; s++) assert.ok(Math.abs(out[s * 81 + 40]! - 1) < 1e-5 || out[s * 81 + 40]! > 0.3, `${fn}: centre ${out[s * 81 + 40]}`);
  }
});

test("token_dropout replaces ordinary tokens by <unk> at about its rate; padding stays", () => {
  const texts = Array.from({ length: 300 }, (_, i) => "alpha beta gamma delta epsilon zeta eta theta".split(" ").slice(0, 2 + (i % 7)).join(" "));
  const col: Column = { kind: "text", name: "text", data: texts };
  const vocab = buildVocabulary(texts, { size: 20, split: "word", lowercase: true });
  const f: FieldSpec = { name: "ids", dtype: "i32", shape: [10], column: "text", steps: [{ fn: "tokenize", args: { vocab: 20, max_len: 10 } }, { fn: "token_dropout", args: { rate: 0.25 } }] };
  const rows = texts.map((_, i) => i);
  const p = compileField(f, col, () => vocab);
  const plain = p.run(col, rows, null).data;
  const drop = p.run(col, rows, EPOCH0).data;
  let tokens = 0;
  let dropped = 0;
  for (let i = 0; i < plain.length; i++) {
    if (plain[i] === 0) assert.is(drop[i], 0);
    else {
      tokens++;
      if (drop[i] !== plain[i]) (dropped++, assert.is(drop[i], 1));
    }
  }
  assert.ok(Math.abs(dropped / tokens - 0.25) < 0.04, `${dropped} of ${tokens}`);
});

test("bad augmentation arguments and shapes are DataErrors naming the field", () => {
  const col = images(2, 4, 4, 1);
  const bad: [FieldSpec, RegExp][] = [
    [field([4, 4, 1], ["random_crop", { size: 9, padding: 1 }]), /random_crop's size must be an integer from 1 to 6/],
    [field([4, 4, 1], ["random_flip", { mode: "diagonal" }]), /horizontal, vertical or both/],
    [field([4, 4, 1], ["random_rotation", { degrees: 200 }]), /\(0, 180\]/],
    [field([16], ["reshape", { shape: [16] }], ["random_flip", {}]), /images of shape \[height, width\]/],
  ];
  for (const [f, re] of bad) assert.throws(() => run(f, col, [0, 1], null), (e: unknown) => e instanceof DataError && re.test((e as Error).message) && /field "image"/.test((e as Error).message));
});

/** CSV images: 4 × 4 with a bright quadrant whose position is the class. */
function imageCsv(dir: string, n: number): void {
  let s = 5;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  const rows = ["pixels,label"];
  for (let i = 0; i < n; i++) {
    const label = i % 4;
    const px = Array.from({ length: 16 }, (_, k) => {
      const y = k >> 2;
      const x = k & 3;
      const on = (y < 2 ? 0 : 2) + (x < 2 ? 0 : 1) === label;
      return ((on ? 0.8 : 0.1) + 0.1 * rand()).toFixed(3);
    });
    rows.push(`${px.join(" ")},${label}`);
  }
  writeFileSync(path.join(dir, "images.csv"), rows.join("\n") + "\n");
}

function program(dir: string, steps: string): string {
  const file = path.join(dir, "m.nnet");
  writeFileSync(
    file,
    `model Tiny {
  input image: f32[batch, 4, 4, 1]
  output logits = image -> flatten -> dense(16, activation: relu) -> dense(4)
}
dataset quads {
  source csv("images.csv")
  split  test: 0.25, seed: 2
  field image: f32[4, 4, 1] = pixels -> reshape([4, 4, 1])${steps}
  field label: i32 = label
}
train Tiny on quads {
  loss       cross_entropy(logits, label)
  optimizer  adam(lr: 1e-2)
  batch      4
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

test("CLI: an augmented run killed with SIGKILL and resumed ends as an uninterrupted one; the trainer's test split is not augmented", async () => {
  const dir = path.join(TMP, "cli");
  rmSync(dir, { recursive: true, force: true });
  spawnSync("mkdir", ["-p", dir]);
  imageCsv(dir, 3000);
  const file = program(dir, " -> random_flip(both) -> gaussian_noise(std: 0.3) -> random_crop(4, padding: 1)");
  const ref = cli(["train", file, "--backend", "cpu", "--out", path.join(dir, "ref"), "--json"]);
  assert.is(ref.code, 0, ref.err);
  assert.match(ref.out, /"event":"augmentation"/);
  const want = losses(path.join(dir, "ref"));
  assert.is(want.length, 4);

  // The same plan without augmentation trains to other losses: the steps are in effect.
  const plainFile = program(path.join(dir), "");
  const plain = cli(["train", plainFile, "--backend", "cpu", "--out", path.join(dir, "plain"), "--json"]);
  assert.is(plain.code, 0, plain.err);
  assert.not.equal(losses(path.join(dir, "plain")).map((e) => e.loss), want.map((e) => e.loss));
  program(dir, " -> random_flip(both) -> gaussian_noise(std: 0.3) -> random_crop(4, padding: 1)");

  const out = path.join(dir, "run");
  await trainKilledAfter([file, "--backend", "cpu", "--out", out], 2, 100);
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
  // nnetc data --epoch N shows what training epoch N was fed: the same each time, not the plain samples.
  const show = (...a: string[]) => cli(["data", file, "-n", "4", ...a]);
  const e1 = show("--epoch", "1");
  assert.is(e1.code, 0, e1.err);
  assert.is(show("--epoch", "1").out, e1.out);
  assert.is.not(show().out, e1.out);
  assert.is.not(show("--epoch", "2").out, e1.out);
  const bad = show("--split", "test", "--epoch", "1");
  assert.is(bad.code, 2, bad.err);
  assert.match(bad.err, /test split is never augmented/);
  // The trainer's test loss is the plain test split's: nnetc eval (which never augments) measures the same.
  const trained = JSON.parse(readFileSync(path.join(out, "test.json"), "utf8")) as { loss: number };
  const ev = cli(["eval", file, "--weights", out, "--backend", "cpu", "--json"]);
  assert.is(ev.code, 0, ev.err);
  const evLoss = (JSON.parse(ev.out.trim().split("\n").pop()!) as { loss: number }).loss;
  assert.ok(Math.abs(trained.loss - evLoss) < 1e-5, `test loss ${trained.loss} in training, ${evLoss} by eval`);
});

test("CLI: the torch engine draws the same augmented epochs as tfjs (a fresh shard per epoch)", () => {
  requireTorch();
  const dir = path.join(TMP, "cli");
  const file = program(dir, " -> gaussian_noise(std: 0.3) -> random_crop(4, padding: 1) -> random_erasing(probability: 0.5)");
  const a = cli(["train", file, "--backend", "cpu", "--out", path.join(dir, "eq-tfjs"), "--epochs", "3"]);
  const b = cli(["train", file, "--engine", "torch", "--out", path.join(dir, "eq-torch"), "--epochs", "3"]);
  assert.is(a.code, 0, a.err);
  assert.is(b.code, 0, b.err);
  const x = losses(path.join(dir, "eq-tfjs"));
  const y = losses(path.join(dir, "eq-torch"));
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(x[i]!.loss - y[i]!.loss) < 1e-4, `epoch ${i + 1}: tfjs ${x[i]!.loss}, torch ${y[i]!.loss}`);
  assert.ok(x[2]!.loss !== x[1]!.loss);
});

test("in process: only a training epoch's view is augmented; a validation subset is the plain samples, its view draws as its split's", async () => {
  const dir = path.join(TMP, "inproc");
  spawnSync("mkdir", ["-p", dir]);
  imageCsv(dir, 200);
  const ds: DatasetSpec = {
    name: "quads",
    source: { fn: "csv", args: { path: "images.csv" } },
    test: null,
    split: { test: 0.25, seed: 2 },
    filter: null,
    fields: [
      { name: "image", dtype: "f32", shape: [4, 4, 1], column: "pixels", steps: [{ fn: "reshape", args: { shape: [4, 4, 1] } }, { fn: "gaussian_noise", args: { std: 1 } }] },
      { name: "label", dtype: "i32", shape: [], column: "label", steps: [] },
    ],
  } as unknown as DatasetSpec;
  const data = await loadDataset(ds, { dataDir: null, baseDir: dir, seed: 0 });
  const idx = Uint32Array.from({ length: 20 }, (_, i) => i);
  const plain = data.train.batch(idx).image!.data;
  const view = data.train.augmented!(3, 0);
  assert.is(data.train.augmented!(3, 0), view, "one object per (seed, epoch)");
  assert.not.equal(Array.from(view.batch(idx).image!.data), Array.from(plain));
  assert.equal(view.batch(idx).label!.data, data.train.batch(idx).label!.data, "labels are not random");
  const val = subset(data.train, idx);
  assert.equal(Array.from(val.batch(idx).image!.data), Array.from(plain), "a validation subset is plain");
  const valView = val.augmented!(3, 0);
  assert.equal(Array.from(valView.batch(idx).image!.data), Array.from(view.batch(idx).image!.data), "a subset's view draws as its split's");
  assert.is(valView.base, val);
});

test.run();
