// npm run bench:augment — issue 16's augmentation targets on models/fashion_cnn.nnet and the real Fashion-MNIST:
// (1) overfitting: the zoo plan (early stopping off, --epochs, default 15) trained on the first --n (default
// 5,000) training images, with and without augmentation (random_flip(horizontal) -> random_crop(28, padding: 2)),
// validation accuracy per epoch and test accuracy; (2) cost: the median epoch time of both runs, and the data
// pipeline alone (one epoch's batches of 128, preprocessed on the host) with and without the random steps.
// --engine torch|tfjs (default torch), --backend for tfjs (default wasm). A benchmark, not a test: nothing is asserted.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { flag, median, opt, ROOT } from "./common.js";
import { loadDataset } from "../runtime/data/index.js";
import { compile } from "../compiler/index.js";

const N = Number(opt("n", "5000"));
const EPOCHS = Number(opt("epochs", "15"));
const ENGINE = opt("engine", "torch");
const BACKEND = opt("backend", "wasm");
const DATA = opt("data", "/usr/share/datasets/fashion-mnist");
const AUGMENT = opt("augment", "random_flip(horizontal) -> random_crop(28, padding: 2)");
const KEEP = flag("keep");
const CLI = path.join(ROOT, "dist/nnetc.mjs");

/** The first n records of an IDX file (gzip), written gzip to `to`. */
function headIdx(from: string, to: string, n: number): void {
  const b = gunzipSync(readFileSync(from));
  const dims = b[3]!;
  const shape = Array.from({ length: dims }, (_, i) => b.readUInt32BE(4 + 4 * i));
  const per = shape.slice(1).reduce((a, c) => a * c, 1);
  const head = Buffer.from(b.subarray(0, 4 + 4 * dims));
  head.writeUInt32BE(n, 4);
  writeFileSync(to, gzipSync(Buffer.concat([head, b.subarray(4 + 4 * dims, 4 + 4 * dims + n * per)])));
}

const tmp = mkdtempSync(path.join(os.tmpdir(), "nnetc-bench-augment-"));
try {
  headIdx(path.join(DATA, "train-images-idx3-ubyte.gz"), path.join(tmp, "train-images-idx3-ubyte.gz"), N);
  headIdx(path.join(DATA, "train-labels-idx1-ubyte.gz"), path.join(tmp, "train-labels-idx1-ubyte.gz"), N);
  for (const f of ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]) copyFileSync(path.join(DATA, f), path.join(tmp, f));
  const zoo = readFileSync(path.join(ROOT, "models/fashion_cnn.nnet"), "utf8").replace(/\n\s*early_stop[^\n]*/, "").replace(/(\n\s*epochs\s+)\d+/, `$1${EPOCHS}`);
  const plain = path.join(tmp, "plain.nnet");
  const augmented = path.join(tmp, "augmented.nnet");
  writeFileSync(plain, zoo);
  const field = /(field image: f32\[28, 28, 1\] = images -> scale\(1 \/ 255\) -> reshape\(\[28, 28, 1\]\))/;
  if (!field.test(zoo)) throw new Error("models/fashion_cnn.nnet's image field has changed: update bench/augment.ts");
  writeFileSync(augmented, zoo.replace(field, `$1 -> ${AUGMENT}`));

  // The data pipeline alone: one epoch of batches of 128 with the random steps active, and without.
  const pipeline: Record<string, number[]> = { plain: [], augmented: [] };
  for (const [name, file] of [["plain", plain], ["augmented", augmented]] as const) {
    const { module } = compile(file, readFileSync(file, "utf8"), { readFile: (f) => ({ text: readFileSync(f, "utf8") }) });
    const ds = module.datasets.find((d) => d.name === "fashion_mnist")!;
    const data = await loadDataset(ds as never, { dataDir: tmp, baseDir: tmp, seed: 1 });
    for (let rep = 0; rep < 5; rep++) {
      const split = data.train.augmented?.(1, rep) ?? data.train;
      const t0 = performance.now();
      for (let i = 0; i < split.size; i += 128) split.batch(Uint32Array.from({ length: Math.min(128, split.size - i) }, (_, k) => i + k));
      pipeline[name]!.push(performance.now() - t0);
    }
  }

  const runs: Record<string, { val: number[]; seconds: number[]; test: number; loss: number }> = {};
  for (const [name, file] of [["plain", plain], ["augmented", augmented]] as const) {
    const out = path.join(tmp, `run-${name}`);
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [CLI, "train", file, "--data", tmp, "--out", out, "--engine", ENGINE, ...(ENGINE === "tfjs" ? ["--backend", BACKEND] : []), "--json"], { encoding: "utf8", maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`train ${name} failed:\n${(r.stderr ?? "").slice(-3000)}`);
    console.error(`  ${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const epochs = readFileSync(path.join(out, "metrics.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { val_accuracy: number; seconds: number; loss: number });
    const test = JSON.parse(readFileSync(path.join(out, "test.json"), "utf8")) as { accuracy: number };
    runs[name] = { val: epochs.map((e) => e.val_accuracy), seconds: epochs.map((e) => e.seconds), test: test.accuracy, loss: epochs[epochs.length - 1]!.loss };
  }
  const p = runs.plain!;
  const a = runs.augmented!;
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  console.log(`Fashion-MNIST, first ${N} training images (10% of them for validation), ${EPOCHS} epochs, models/fashion_cnn.nnet's plan without early stopping; engine ${ENGINE}${ENGINE === "tfjs" ? ` (${BACKEND})` : ""}; augmentation: ${AUGMENT}`);
  console.log(`epoch  val acc plain  val acc augmented`);
  for (let i = 0; i < EPOCHS; i++) console.log(`${String(i + 1).padStart(5)}  ${pct(p.val[i]!).padStart(13)}  ${pct(a.val[i]!).padStart(17)}`);
  console.log(`final training loss: plain ${p.loss.toFixed(4)}, augmented ${a.loss.toFixed(4)}`);
  console.log(`best val acc: plain ${pct(Math.max(...p.val))}, augmented ${pct(Math.max(...a.val))}; test acc (10,000 images): plain ${pct(p.test)}, augmented ${pct(a.test)}`);
  const mp = median(p.seconds);
  const ma = median(a.seconds);
  console.log(`median epoch: plain ${mp.toFixed(2)} s, augmented ${ma.toFixed(2)} s (×${(ma / mp).toFixed(2)})`);
  const dp = median(pipeline.plain!);
  const da = median(pipeline.augmented!);
  console.log(`data pipeline alone, one epoch of ${Math.round(N * 0.9)}-ish samples: plain ${dp.toFixed(0)} ms, augmented ${da.toFixed(0)} ms (median of 5)`);
} finally {
  if (!KEEP) rmSync(tmp, { recursive: true, force: true });
  else console.error(`kept ${tmp}`);
}
