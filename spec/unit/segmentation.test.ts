// Segmentation: image_mask_folder pairs images with PNG masks by base name (grey level = class id; images
// resized bilinearly, masks by nearest neighbour), iou and dice are per-class means, and the zoo's U-Net
// (models/unet.nnet: conv2d_transpose, concat skips) trains on drawn shapes the test makes, on wasm and torch.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadDataset } from "../../runtime/data/index.js";
import { collectHost, metricValue } from "../../runtime/objective.js";
import type { DatasetSpec } from "../../runtime/spec.js";
import { ROOT } from "../helpers.js";
import { requireTorch } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-seg-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

/** n images of `size` with a disc (class 1) or a square (class 2) on a grey background, and their masks. */
async function shapes(dir: string, n: number, size: number): Promise<void> {
  mkdirSync(path.join(dir, "images"), { recursive: true });
  mkdirSync(path.join(dir, "masks"), { recursive: true });
  let s = 11;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  for (let i = 0; i < n; i++) {
    const rgb = Buffer.alloc(size * size * 3, 90);
    const mask = Buffer.alloc(size * size);
    const kind = 1 + (i % 2);
    const r = Math.floor(size * (0.15 + 0.1 * rand()));
    const cy = r + Math.floor(rand() * (size - 2 * r));
    const cx = r + Math.floor(rand() * (size - 2 * r));
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inside = kind === 1 ? Math.hypot(y - cy, x - cx) <= r : Math.abs(y - cy) <= r && Math.abs(x - cx) <= r;
        if (!inside) continue;
        mask[y * size + x] = kind;
        rgb.set(kind === 1 ? [220, 60, 40] : [40, 80, 220], (y * size + x) * 3);
      }
    }
    const name = `s${String(i).padStart(3, "0")}`;
    await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 95 }).toFile(path.join(dir, "images", `${name}.jpg`));
    await sharp(mask, { raw: { width: size, height: size, channels: 1 } }).png().toFile(path.join(dir, "masks", `${name}.png`));
  }
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 400_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const records = (dir: string) => readFileSync(path.join(dir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);

test("iou and dice: per-class means over the classes that occur", () => {
  // 3 classes, 6 positions; scores pick the predicted class.
  const targets = [0, 0, 1, 1, 2, 2];
  const pred = [0, 1, 1, 1, 2, 0];
  const scores = new Float32Array(6 * 3);
  pred.forEach((p, r) => (scores[r * 3 + p] = 5));
  const c = collectHost(scores, 3, targets, true);
  // class 0: tp 1, fp 1, fn 1 → IoU 1/3, Dice 2/4; class 1: tp 2, fp 1 → 2/3, 4/5; class 2: tp 1, fn 1 → 1/2, 2/3.
  const iou = metricValue({ fn: "iou", args: {} }, c, true);
  const dice = metricValue({ fn: "dice", args: {} }, c, true);
  assert.ok(Math.abs(iou - (1 / 3 + 2 / 3 + 1 / 2) / 3) < 1e-9, `iou ${iou}`);
  assert.ok(Math.abs(dice - (1 / 2 + 4 / 5 + 2 / 3) / 3) < 1e-9, `dice ${dice}`);
});

test("image_mask_folder: images and masks paired by name, masks resized by nearest neighbour; a missing mask is named", async () => {
  const dir = path.join(TMP, "small");
  await shapes(dir, 4, 16);
  const ds = {
    name: "d",
    source: { fn: "image_mask_folder", args: { images: "images", masks: "masks", size: 8 } },
    test: null,
    split: {},
    filter: null,
    fields: [
      { name: "image", dtype: "f32", shape: [8, 8, 3], column: "image", steps: [] },
      { name: "mask", dtype: "i32", shape: [8, 8], column: "mask", steps: [] },
    ],
  } as unknown as DatasetSpec;
  const data = await loadDataset(ds, { dataDir: null, baseDir: dir, seed: 0 });
  assert.is(data.train.size, 4);
  const b = data.train.batch([0, 1, 2, 3]);
  assert.equal(b.mask!.shape, [4, 8, 8]);
  const values = new Set(Array.from(b.mask!.data));
  assert.ok([...values].every((v) => v === 0 || v === 1 || v === 2) && values.has(1) && values.has(2), `class ids ${[...values]}`);
  rmSync(path.join(dir, "masks", "s002.png"));
  try {
    await loadDataset(ds, { dataDir: null, baseDir: dir, seed: 0 });
    assert.unreachable("a missing mask must be refused");
  } catch (e) {
    assert.match((e as Error).message, /s002\.jpg has no mask: .* needs a s002\.png/);
  }
});

test("an image and its mask flip together (one group); outside training neither flips", async () => {
  const dir = path.join(TMP, "joint");
  await shapes(dir, 24, 16);
  const field = (name: string, dtype: string, shape: number[], steps: { fn: string; args: Record<string, unknown> }[]) => ({ name, dtype, shape, column: name, steps });
  const ds = {
    name: "d",
    source: { fn: "image_mask_folder", args: { images: "images", masks: "masks", size: 16 } },
    test: null,
    split: {},
    filter: null,
    fields: [
      field("image", "f32", [16, 16, 3], [{ fn: "scale", args: { factor: 1 } }, { fn: "random_flip", args: { mode: "both", group: "g" } }]),
      field("mask", "i32", [16, 16], [{ fn: "random_flip", args: { mode: "both", group: "g" } }]),
    ],
  } as unknown as DatasetSpec;
  const data = await loadDataset(ds, { dataDir: null, baseDir: dir, seed: 0 });
  const idx = Array.from({ length: 24 }, (_, i) => i);
  const plain = data.train.batch(idx);
  const aug = data.train.augmented!(5, 0).batch(idx);
  assert.not.equal(Array.from(aug.mask!.data), Array.from(plain.mask!.data), "some masks flipped");
  // Wherever the mask says disc (1) the image is red, square (2) blue, background grey: still aligned.
  let checked = 0;
  for (let p = 0; p < 24 * 256; p++) {
    const m = aug.mask!.data[p]!;
    const [r, , b] = [aug.image!.data[p * 3]!, aug.image!.data[p * 3 + 1]!, aug.image!.data[p * 3 + 2]!];
    if (m === 1) (assert.ok(r > b + 60, `pixel ${p}: mask 1 but image ${r},${b}`), checked++);
    if (m === 2) (assert.ok(b > r + 60, `pixel ${p}: mask 2 but image ${r},${b}`), checked++);
  }
  assert.ok(checked > 100);
});

test("models/unet.nnet trains on drawn shapes (wasm): the loss falls; accuracy, iou and dice are reported", async () => {
  await shapes(path.join(TMP, "shapes"), 48, 64);
  const out = path.join(TMP, "wasm");
  const r = cli(["train", path.join(ROOT, "models/unet.nnet"), "--data", TMP, "--epochs", "3", "--backend", "wasm", "--out", out]);
  assert.is(r.code, 0, r.err);
  const recs = records(out);
  assert.is(recs.length, 3);
  assert.ok(recs[2]!.loss < recs[0]!.loss, `loss ${recs.map((e) => e.loss.toFixed(3)).join(" → ")}`);
  for (const k of ["accuracy", "iou", "dice"]) assert.ok(recs[2]![k]! > 0 && recs[2]![k]! <= 1, `${k} ${recs[2]![k]}`);
  const t = JSON.parse(readFileSync(path.join(out, "test.json"), "utf8")) as Record<string, number>;
  assert.ok(t.iou! > 0 && t.dice! >= t.iou!, `test iou ${t.iou}, dice ${t.dice} (Dice ≥ IoU always)`);
});

test("models/unet.nnet trains on torch too, and tfjs eval of its run measures what it measured", () => {
  requireTorch();
  const out = path.join(TMP, "torch");
  const r = cli(["train", path.join(ROOT, "models/unet.nnet"), "--data", TMP, "--epochs", "3", "--engine", "torch", "--out", out]);
  assert.is(r.code, 0, r.err);
  const recs = records(out);
  assert.ok(recs[2]!.loss < recs[0]!.loss, `loss ${recs.map((e) => e.loss.toFixed(3)).join(" → ")}`);
  const t = JSON.parse(readFileSync(path.join(out, "test.json"), "utf8")) as Record<string, number>;
  const ev = cli(["eval", path.join(ROOT, "models/unet.nnet"), "--data", TMP, "--weights", out, "--backend", "cpu", "--json"]);
  assert.is(ev.code, 0, ev.err);
  const e = JSON.parse(ev.out.trim().split("\n").pop()!) as Record<string, number>;
  assert.ok(Math.abs(e.loss! - t.loss!) < 1e-3 * Math.max(1, t.loss!) && Math.abs(e.iou! - t.iou!) < 1e-3, `eval ${JSON.stringify(e)} vs torch ${JSON.stringify(t)}`);
});

test.run();
