// The zoo's VAE (models/vae.nnet: conv2d_transpose, sample_normal, kl_normal) trains as written on small data the
// test makes (IDX files of 96 drawn 28 × 28 shapes): on tfjs (wasm) its loss falls and both terms are reported
// each epoch; on torch the same; and kl_normal is checked against its formula on both engines. Its decoder alone
// (predict --from sample_normal) turns random latents into a PNG grid of samples.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import * as tf from "@tensorflow/tfjs-core";
import sharp from "sharp";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { initBackend } from "../../runtime/backend.js";
import { lossTensor } from "../../runtime/objective.js";
import { ROOT } from "../helpers.js";
import { requireTorch } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-vae-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

/** IDX images (rectangles and rings at random places) and labels, gzipped, as Fashion-MNIST's files are named. */
function shapes(dir: string, n: number, prefix: string): void {
  let s = 3;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  const px = Buffer.alloc(n * 784);
  for (let i = 0; i < n; i++) {
    const cy = 8 + Math.floor(rand() * 12);
    const cx = 8 + Math.floor(rand() * 12);
    const r = 4 + Math.floor(rand() * 4);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const d = Math.hypot(y - cy, x - cx);
        const on = i % 2 ? Math.abs(y - cy) <= r && Math.abs(x - cx) <= r : d <= r && d >= r - 2;
        px[i * 784 + y * 28 + x] = on ? 230 : 0;
      }
    }
  }
  const head = (magic: number, dims: number[]) => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b.writeUInt32BE(magic, 0);
    dims.forEach((d, k) => b.writeUInt32BE(d, 4 + 4 * k));
    return b;
  };
  writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte.gz`), gzipSync(Buffer.concat([head(0x0803, [n, 28, 28]), px])));
  writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte.gz`), gzipSync(Buffer.concat([head(0x0801, [n]), Buffer.from(Array.from({ length: n }, (_, i) => i % 2))])));
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const records = (dir: string) => readFileSync(path.join(dir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);

test("kl_normal is -½ Σ (1 + log_var - mean² - e^log_var) per sample, averaged over the batch", async () => {
  await initBackend("cpu");
  const m = tf.tensor2d([[0.5, -1], [0, 2]]);
  const lv = tf.tensor2d([[0.1, -0.3], [0, 1]]);
  const want = [[0.5, -1, 0.1, -0.3], [0, 2, 0, 1]].map(([a, b, c, d]) => -0.5 * (1 + c! - a! * a! - Math.exp(c!) + 1 + d! - b! * b! - Math.exp(d!)));
  const got = lossTensor({ fn: "kl_normal", prediction: "mean", target: "log_var", targetIsOutput: true, weight: 1, args: {} }, m, lv).dataSync()[0]!;
  assert.ok(Math.abs(got - (want[0]! + want[1]!) / 2) < 1e-5, `${got} vs ${(want[0]! + want[1]!) / 2}`);
});

test("models/vae.nnet trains on drawn shapes (wasm): the loss falls, recon_loss and kl_normal_loss are reported", () => {
  shapes(TMP, 96, "train");
  shapes(TMP, 32, "t10k");
  const out = path.join(TMP, "wasm");
  const r = cli(["train", path.join(ROOT, "models/vae.nnet"), "--data", TMP, "--epochs", "4", "--batch", "16", "--backend", "wasm", "--out", out]);
  assert.is(r.code, 0, r.err);
  const recs = records(out);
  assert.is(recs.length, 4);
  for (const e of recs) assert.ok(Number.isFinite(e.recon_loss) && Number.isFinite(e.kl_normal_loss), JSON.stringify(e));
  assert.ok(recs[3]!.loss < recs[0]!.loss, `loss ${recs.map((e) => e.loss.toFixed(1)).join(" → ")}`);
  assert.ok(Math.abs(recs[0]!.loss - (784 * recs[0]!.recon_loss! + recs[0]!.kl_normal_loss!)) < 1e-2 * recs[0]!.loss, "the total is 784 · recon + KL");
  const t = JSON.parse(readFileSync(path.join(out, "test.json"), "utf8")) as { loss: number };
  assert.ok(Number.isFinite(t.loss), "the test split is measured (the mean code, no sampling)");
});

test("the trained decoder alone (--from sample_normal) on random latents: a PNG grid of the samples, tile for tile the sigmoid of the logits", async () => {
  const run = path.join(TMP, "wasm");
  const png = path.join(TMP, "samples.png");
  const args = ["predict", path.join(ROOT, "models/vae.nnet"), "--weights", run, "--from", "sample_normal", "--input", "random:16", "--seed", "1", "--backend", "wasm"];
  const r = cli([...args, "--grid", png]);
  assert.is(r.code, 0, r.err);
  assert.ok(r.err.includes("4 × 4 tiles, 118 × 118 pixels; pixels: the sigmoid of the logits"), r.err);
  assert.is(r.out.trim().split("\n").length, 16, "one line per sample");
  assert.is((await sharp(readFileSync(png)).metadata()).channels, 1, "a grey PNG");
  const { data, info } = await sharp(readFileSync(png)).toColourspace("b-w").raw().toBuffer({ resolveWithObject: true });
  // 4 × 4 tiles of 28 × 28, 2 grey pixels between them
  assert.equal([info.width, info.height, info.channels], [4 * 28 + 3 * 2, 4 * 28 + 3 * 2, 1]);
  const j = cli([...args, "--json"]);
  assert.is(j.code, 0, j.err);
  const rows = j.out.trim().split("\n").map((l) => JSON.parse(l) as { index?: number; recon?: number[][][] }).filter((x) => x.recon);
  assert.is(rows.length, 16);
  const tiles: number[][] = [];
  for (let k = 0; k < 16; k++) {
    const tile: number[] = [];
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const px = data[(Math.floor(k / 4) * 30 + y) * info.width + (k % 4) * 30 + x]!;
        const want = Math.round(255 / (1 + Math.exp(-rows[k]!.recon![y]![x]![0]!)));
        assert.ok(Math.abs(px - want) <= 1, `tile ${k} (${y}, ${x}): ${px} vs ${want}`);
        tile.push(px);
      }
    }
    tiles.push(tile);
  }
  assert.is(data[28 * info.width + 5], 128, "the gap between tile rows is grey");
  // not blank: each tile has contrast, and different latents give different images
  for (const t of tiles) assert.ok(Math.max(...t) - Math.min(...t) > 20, `a tile spans ${Math.min(...t)}..${Math.max(...t)}`);
  assert.ok(tiles.some((t) => t.some((v, i) => Math.abs(v - tiles[0]![i]!) > 5)), "the samples differ");
  // the encoder's outputs are not computed from the cut: --grid names what is there
  const bad = cli([...args, "--grid", `mean=${png}`]);
  assert.is(bad.code, 2);
  assert.ok(bad.err.includes('no output "mean" computed from sample_normal (it has recon)'), bad.err);
  const unknown = cli(["predict", path.join(ROOT, "models/vae.nnet"), "--weights", run, "--from", "latent", "--input", "random:2", "--backend", "wasm"]);
  assert.is(unknown.code, 2);
  assert.ok(unknown.err.includes('--from latent: model "VAE" has no layer or binding of that name (its layers: conv2d,'), unknown.err);
});

test("an idx dataset's model takes a PNG: grey at the IDX images' size, the numbers nnetc data gives the same image", async () => {
  const run = path.join(TMP, "wasm");
  const nnet = path.join(ROOT, "models/vae.nnet");
  const d = cli(["data", nnet, "--data", TMP, "-n", "1"]);
  assert.is(d.code, 0, d.err);
  const sample = JSON.parse(d.out.trim().split("\n")[0]!) as { image: number[][][] };
  // the sample as an RGB PNG at twice the size (resized back to 28 × 28: each pixel of a 2 × 2 block is equal)
  const rgb = Buffer.alloc(56 * 56 * 3);
  for (let y = 0; y < 56; y++) for (let x = 0; x < 56; x++) rgb.fill(Math.round(sample.image[y >> 1]![x >> 1]![0]! * 255), (y * 56 + x) * 3, (y * 56 + x) * 3 + 3);
  const png = path.join(TMP, "shape.png");
  await sharp(rgb, { raw: { width: 56, height: 56, channels: 3 } }).png().toFile(png);
  writeFileSync(path.join(TMP, "shape.json"), JSON.stringify({ image: [sample.image] }));
  const [a, b] = [path.join(TMP, "shape.json"), png].map((input) => {
    const r = cli(["predict", nnet, "--weights", run, "--input", input, "--json", "--backend", "wasm"]);
    assert.is(r.code, 0, r.err);
    return JSON.parse(r.out.trim().split("\n").pop()!) as { mean: number[] };
  });
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(a!.mean[i]! - b!.mean[i]!) < 1e-4, `${a!.mean} vs ${b!.mean}`);
  assert.equal(JSON.parse(readFileSync(path.join(run, "model.json"), "utf8")).columns, { images: [28, 28] }, "the column size is saved with the run");
});

test("models/vae.nnet trains on torch too (ConvTranspose2d, randn_like, kl_normal)", () => {
  requireTorch();
  const out = path.join(TMP, "torch");
  const r = cli(["train", path.join(ROOT, "models/vae.nnet"), "--data", TMP, "--epochs", "4", "--batch", "16", "--engine", "torch", "--out", out]);
  assert.is(r.code, 0, r.err);
  const recs = records(out);
  assert.ok(recs[3]!.loss < recs[0]!.loss, `loss ${recs.map((e) => e.loss.toFixed(1)).join(" → ")}`);
  // Without sampling (the test split), both engines measure the same weights alike: eval on tfjs equals torch's test loss.
  const t = JSON.parse(readFileSync(path.join(out, "test.json"), "utf8")) as { loss: number };
  const ev = cli(["eval", path.join(ROOT, "models/vae.nnet"), "--data", TMP, "--weights", out, "--backend", "cpu", "--json"]);
  assert.is(ev.code, 0, ev.err);
  const l = (JSON.parse(ev.out.trim().split("\n").pop()!) as { loss: number }).loss;
  assert.ok(Math.abs(l - t.loss) < 1e-3 * t.loss, `tfjs eval ${l}, torch test ${t.loss}`);
});

test("a KL term written in the model (mean of an output) trains exactly as kl_normal does, on tfjs and torch; mean of integers is refused", () => {
  const dir = path.join(TMP, "klhand");
  spawnSync("mkdir", ["-p", dir]);
  let s = 5;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  writeFileSync(path.join(dir, "pts.jsonl"), Array.from({ length: 64 }, () => JSON.stringify({ x: [rand(), rand(), rand(), rand()] })).join("\n") + "\n");
  const program = (loss: string) => `model V {
  input x: f32[batch, 4]
  h = x -> dense(8, activation: relu)
  output mean = h -> dense(2)
  output log_var = h -> dense(2)
  output kl = reduce_sum(log_var + 1 - square(mean) - exp(log_var), axis: 1) * -0.5
  output recon = mean -> dense(4)
}
dataset d {
  source jsonl(path: "pts.jsonl")
  field x: f32[4] = x
}
train V on d {
  loss       ${loss}
  optimizer  adam(lr: 1e-2)
  batch      16
  epochs     3
  validation 0.25
  seed       4
}
`;
  writeFileSync(path.join(dir, "builtin.nnet"), program("mse(recon, x) + kl_normal(mean, log_var)"));
  writeFileSync(path.join(dir, "hand.nnet"), program("mse(recon, x) + mean(kl)"));
  const a = cli(["train", path.join(dir, "builtin.nnet"), "--backend", "cpu", "--out", path.join(dir, "builtin")]);
  const b = cli(["train", path.join(dir, "hand.nnet"), "--backend", "cpu", "--out", path.join(dir, "hand")]);
  assert.is(a.code, 0, a.err);
  assert.is(b.code, 0, b.err);
  const x = records(path.join(dir, "builtin"));
  const y = records(path.join(dir, "hand"));
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(x[i]!.kl_normal_loss! - y[i]!.kl_loss!) < 1e-5, `epoch ${i + 1}: kl_normal ${x[i]!.kl_normal_loss}, mean(kl) ${y[i]!.kl_loss}`);
    assert.ok(Math.abs(x[i]!.val_loss! - y[i]!.val_loss!) < 1e-5, `epoch ${i + 1} val_loss`);
  }
  requireTorch();
  const t = cli(["train", path.join(dir, "hand.nnet"), "--engine", "torch", "--out", path.join(dir, "hand-torch")]);
  assert.is(t.code, 0, t.err);
  const z = records(path.join(dir, "hand-torch"));
  for (let i = 0; i < 3; i++) for (const k of ["loss", "kl_loss", "val_kl_loss"]) assert.ok(Math.abs(y[i]![k]! - z[i]![k]!) < 2e-4, `epoch ${i + 1} ${k}: tfjs ${y[i]![k]}, torch ${z[i]![k]}`);
  writeFileSync(path.join(dir, "bad.nnet"), program("mse(recon, x) + mean(ids)").replace("output recon", "output ids = kl -> cast(i32)\n  output recon"));
  const bad = cli(["check", path.join(dir, "bad.nnet")]);
  assert.is(bad.code, 1, bad.out + bad.err);
  assert.match(bad.err, /NN4008.*"ids" holds i32, not floats/);
});

test.run();
