// models/resnet_cifar.nnet (ResNet-20 with random crops, flips and mixup) trains on a tiny generated image
// folder on wasm: colour classes (noisy red, green and blue PNGs), where a few epochs suffice for the loss to fall.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Rng } from "../../runtime/data/rng.js";
import { ROOT } from "../helpers.js";
import { records } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(tmpdir(), "nnetc-resnet-cifar-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

/** `n` 32 × 32 PNGs per class in `dir`/<class>/: class k is noisy colour k (red, green, blue), at a random brightness. */
async function colours(dir: string, n: number, rng: Rng): Promise<void> {
  const names = ["0_red", "1_green", "2_blue"];
  for (const [k, name] of names.entries()) {
    mkdirSync(path.join(dir, name), { recursive: true });
    for (let i = 0; i < n; i++) {
      const px = Buffer.alloc(32 * 32 * 3);
      const level = 120 + 120 * rng.next();
      for (let p = 0; p < 32 * 32; p++) for (let c = 0; c < 3; c++) px[p * 3 + c] = Math.max(0, Math.min(255, Math.round((c === k ? level : 40) + 60 * (rng.next() - 0.5))));
      await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(dir, name, `${i}.png`));
    }
  }
}

test("models/resnet_cifar.nnet trains on generated colour classes (wasm, mixup and augmentation on): the loss is finite and falls", async () => {
  const rng = new Rng(3);
  await colours(path.join(TMP, "cifar10/train"), 16, rng);
  await colours(path.join(TMP, "cifar10/test"), 4, rng);
  const out = path.join(TMP, "run");
  const r = spawnSync(process.execPath, [CLI, "train", path.join(ROOT, "models/resnet_cifar.nnet"), "--data", TMP, "--epochs", "3", "--batch", "16", "--backend", "wasm", "--out", out], { encoding: "utf8", timeout: 300_000 });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /augmentation: image \(random_crop, random_flip\)/);
  assert.match(r.stdout, /mixing: mixup \(alpha 0\.2\) of image/);
  const recs = records(out) as { loss: number; accuracy: number; val_loss: number }[];
  assert.is(recs.length, 3);
  assert.ok(recs.every((e) => Number.isFinite(e.loss) && Number.isFinite(e.val_loss)), JSON.stringify(recs));
  assert.ok(recs[2]!.loss < 0.7 * recs[0]!.loss, `loss ${recs.map((e) => e.loss.toFixed(3)).join(" → ")}`);
  const t = JSON.parse(readFileSync(path.join(out, "test.json"), "utf8")) as { loss: number; accuracy: number };
  assert.ok(Number.isFinite(t.loss) && t.accuracy >= 0 && t.accuracy <= 1, JSON.stringify(t));
  console.log(`    loss ${recs.map((e) => e.loss.toFixed(3)).join(" → ")}, train accuracy ${recs.map((e) => e.accuracy.toFixed(2)).join(" → ")}, test ${JSON.stringify(t)}`);
});

test.run();
