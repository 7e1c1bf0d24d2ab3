// Adversarial training (spec §10.9): `alternate { step … }` lowers to steps that each keep their own optimizer,
// frozen layers and loss terms (a number as a target is a constant of the prediction's shape); a noise field
// draws N(0, 1) per sample and epoch (random_normal). Checked here: the IR and its diagnostics; that a step
// trains only its own weights; that each step's loss is reported (STEP_loss, val_STEP_loss) and the total is
// their sum; that an interrupted run resumes exactly (both optimizers' slots are in the checkpoint); that tfjs
// and torch give the same losses; and that the zoo's DCGAN trains on drawn images.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import sharp from "sharp";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { IRModule } from "../../compiler/ir/types.js";
import { initBackend } from "../../runtime/backend.js";
import { decodeSafetensors, latestCheckpoint, readCheckpoint, type HostTensor } from "../../runtime/checkpoint/index.js";
import { Rng } from "../../runtime/data/rng.js";
import { initWeights } from "../../runtime/init.js";
import { interpreted } from "../../runtime/interpret.js";
import { hostWeights, InterruptedError, train } from "../../runtime/train.js";
import { codes, compileText, expectClean, ROOT } from "../helpers.js";
import { irProblems } from "../ir-schema.js";
import { requireTorch } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-gan-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

// Real "images": 4 numbers near (0.9, 0.1, 0.8, 0.2); the generator maps 8 numbers of noise to 4.
const rows: string[] = [];
{
  let s = 7;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  for (let i = 0; i < 96; i++) rows.push(JSON.stringify({ x: [0.9, 0.1, 0.8, 0.2].map((v) => +(v + 0.05 * (rand() - 0.5)).toFixed(4)) }));
  writeFileSync(path.join(TMP, "pts.jsonl"), rows.join("\n") + "\n");
}

const MODEL = `model G {
  input noise: f32[batch, 8]
  input image: f32[batch, 4]
  layer d_hidden = dense(8, activation: relu)
  layer d_score = dense(1)
  fake = noise -> dense(16, activation: relu) -> dense(4, activation: sigmoid)
  output sample = fake
  output real_score = image -> d_hidden -> d_score
  output fake_score = fake -> d_hidden -> d_score
}
dataset pts {
  source jsonl(path: "pts.jsonl")
  field image: f32[4] = x
  field noise: f32[8] = random_normal()
}
`;

const DISC = `step disc {
      optimizer adam(lr: 1e-2, beta1: 0.5)
      freeze    "dense*"
      loss      binary_cross_entropy(real_score, 1) + binary_cross_entropy(fake_score, 0)
    }`;
const GEN = `step gen {
      optimizer adam(lr: 2e-2, beta1: 0.5)
      freeze    "d_*"
      loss      binary_cross_entropy(fake_score, 1)
    }`;

function source(steps: string[], extra = ""): string {
  return `${MODEL}
train G on pts {
  batch      16
  epochs     3
  seed       1
  validation 0.25${extra}
  alternate {
    ${steps.join("\n    ")}
  }
}
`;
}

function fileOf(name: string, text: string): string {
  const f = path.join(TMP, name);
  writeFileSync(f, text);
  return f;
}

function compiled(text: string, file: string): IRModule {
  const r = compileText(text, file);
  expectClean(r);
  return r.module;
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const records = (dir: string) => readFileSync(path.join(dir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);

test("alternate lowers to steps with their own optimizer, frozen layers and loss terms; numbers are constant targets", () => {
  const m = compiled(source([DISC, GEN]), path.join(TMP, "ir.nnet"));
  assert.equal(irProblems(JSON.parse(JSON.stringify(m))), []);
  const plan = m.plans[0]!;
  assert.equal(plan.alternate!.map((st) => [st.name, st.terms, st.frozenLayers, st.optimizer.args.lr]), [
    ["disc", [0, 1], ["dense", "dense_1"], 1e-2],
    ["gen", [2], ["d_hidden", "d_score"], 2e-2],
  ]);
  assert.equal(plan.loss.map((t) => [t.fn, t.prediction, t.targetValue]), [
    ["binary_cross_entropy", "real_score", 1],
    ["binary_cross_entropy", "fake_score", 0],
    ["binary_cross_entropy", "fake_score", 1],
  ]);
  const noise = m.datasets[0]!.fields.find((f) => f.name === "noise")!;
  assert.equal([noise.column, noise.steps.map((s) => s.fn)], ["", ["random_normal"]]);
  // The formatter keeps the block, and its output is stable.
  const fmt = spawnSync(process.execPath, [CLI, "fmt", "--stdin"], { input: source([DISC, GEN]), encoding: "utf8" });
  assert.is(fmt.status, 0, fmt.stderr);
  assert.match(fmt.stdout, /alternate \{\n {4}step disc \{\n/);
  const again = spawnSync(process.execPath, [CLI, "fmt", "--stdin"], { input: fmt.stdout, encoding: "utf8" });
  assert.is(again.stdout, fmt.stdout);
});

test("alternate's mistakes are numbered diagnostics at their place", () => {
  const cases: [string, string][] = [
    [source([DISC, GEN]).replace("validation 0.25", "validation 0.25\n  loss mse(sample, image)"), "NN4050"],
    [source([DISC, GEN.replace("step gen", "stpe gen")]), "NN4050"],
    [source([DISC, GEN.replace('freeze    "d_*"', 'freeze    "**"')]), "NN4050"],
    [source([DISC, GEN]).replace("  alternate {", "  phase one { epochs 1 }\n  alternate {"), "NN4050"],
    [source([DISC, GEN]).replace("  alternate {", "  mixup alpha: 0.2\n  alternate {"), "NN4050"],
    [source([DISC.replace("real_score, 1)", "real_score, 2)"), GEN]), "NN4051"],
    [source([DISC, GEN.replace("loss      binary_cross_entropy(fake_score, 1)", "epochs 3")]), "NN2026"],
    [source([DISC, GEN]).replace("f32[8] = random_normal()", "f32[4] = x -> random_normal()"), "NN5002"],
  ];
  for (const [text, code] of cases) {
    const r = compileText(text, path.join(TMP, "bad.nnet"));
    assert.ok(codes(r).includes(code), `${code} expected, got ${codes(r).join(", ")} for\n${text.slice(text.indexOf("train"))}`);
  }
});

async function trainIn(text: string, out: string, opts: { resume?: boolean; stopAfterEpoch?: number } = {}) {
  const file = fileOf(`${path.basename(out)}.nnet`, text);
  const module = compiled(text, file);
  const stop = { requested: false };
  return train({
    file,
    module,
    net: interpreted(module.models[0]!),
    dataDir: null,
    outDir: out,
    resume: !!opts.resume,
    log: () => {},
    json: false,
    stop,
    onEpoch: (r) => {
      if (r.epoch === opts.stopAfterEpoch) stop.requested = true;
    },
  });
}

const weightsOf = (dir: string) => decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, "model.safetensors")))).tensors;

function initialWeights(text: string): Record<string, HostTensor> {
  const m = compiled(text, path.join(TMP, "init.nnet")).models[0]!;
  const w = initWeights(interpreted(m).params, (() => {
    const rng = new Rng(1);
    return () => rng.next();
  })());
  const host = hostWeights(w);
  for (const v of w.values()) v.dispose();
  return host;
}

const same = (a: HostTensor, b: HostTensor) => (a.data as Float32Array).every((v, i) => v === (b.data as Float32Array)[i]);

test("a step trains its own weights only: the discriminator's step leaves the generator as it was, and the other way round", async () => {
  await initBackend("cpu");
  for (const [only, trains, keeps] of [
    [DISC, /^d_/, /^dense/],
    [GEN, /^dense/, /^d_/],
  ] as const) {
    const text = source([only]);
    const out = path.join(TMP, `only-${only.slice(5, 9)}`);
    await trainIn(text, out);
    const start = initialWeights(text);
    const end = weightsOf(out);
    for (const [k, w] of Object.entries(end)) {
      if (keeps.test(k)) assert.ok(same(w, start[k]!), `${k} must stay as initialised`);
      if (trains.test(k)) assert.not.ok(same(w, start[k]!), `${k} must train`);
    }
  }
});

test("tfjs: each step's loss is reported on both sides and the total is their sum; a stopped run resumes exactly", async () => {
  await initBackend("cpu");
  const text = source([DISC, GEN]);
  const whole = path.join(TMP, "whole");
  await trainIn(text, whole);
  const recs = records(whole);
  assert.is(recs.length, 3);
  for (const e of recs) {
    for (const k of ["disc_loss", "gen_loss", "val_disc_loss", "val_gen_loss"]) assert.ok(Number.isFinite(e[k]), `${k} in ${JSON.stringify(e)}`);
    assert.ok(Math.abs(e.loss! - (e.disc_loss! + e.gen_loss!)) < 1e-5, "loss = disc_loss + gen_loss");
    assert.ok(Math.abs(e.val_loss! - (e.val_disc_loss! + e.val_gen_loss!)) < 1e-5, "val_loss = the steps' sum");
  }
  // Both optimizers' slots are saved, each under its step's name.
  const ck = readCheckpoint(latestCheckpoint(whole)!, {});
  const keys = Object.keys(ck.optimizer);
  assert.ok(keys.includes("disc:step") && keys.includes("gen:step"), keys.join(", "));
  assert.ok(keys.some((k) => k.startsWith("disc:d_score/kernel/")) && keys.some((k) => k.startsWith("gen:dense/kernel/")), keys.join(", "));
  assert.not.ok(keys.some((k) => k.startsWith("disc:dense/")), "the discriminator's optimizer holds no generator weight");

  const split = path.join(TMP, "split");
  try {
    await trainIn(text, split, { stopAfterEpoch: 1 });
    assert.unreachable("the run should stop");
  } catch (e) {
    assert.instance(e, InterruptedError);
  }
  await trainIn(text, split, { resume: true });
  const a = weightsOf(whole);
  const b = weightsOf(split);
  for (const k of Object.keys(a)) {
    const x = a[k]!.data as Float32Array;
    const y = b[k]!.data as Float32Array;
    const d = Math.max(...x.map((v, i) => Math.abs(v - y[i]!)));
    assert.ok(d < 1e-6, `${k} differs by ${d} after resume`);
  }
  assert.equal(records(split).map((e) => e.gen_loss!.toFixed(6)), recs.map((e) => e.gen_loss!.toFixed(6)));
});

test("torch: the same steps give the same losses as tfjs", () => {
  requireTorch();
  const file = fileOf("both.nnet", source([DISC, GEN]));
  const tfjs = cli(["train", file, "--backend", "cpu", "--out", path.join(TMP, "cli-tfjs")]);
  assert.is(tfjs.code, 0, tfjs.err);
  assert.match(tfjs.out, /disc_loss [\d.]+ {2}gen_loss [\d.]+/);
  const torch = cli(["train", file, "--engine", "torch", "--out", path.join(TMP, "cli-torch")]);
  assert.is(torch.code, 0, torch.err);
  const a = records(path.join(TMP, "cli-tfjs"));
  const b = records(path.join(TMP, "cli-torch"));
  for (let i = 0; i < a.length; i++) {
    for (const k of ["loss", "disc_loss", "gen_loss", "val_disc_loss", "val_gen_loss"]) assert.ok(Math.abs(a[i]![k]! - b[i]![k]!) < 2e-4, `epoch ${i + 1} ${k}: tfjs ${a[i]![k]} torch ${b[i]![k]}`);
  }
});

/** IDX images of drawn rings and squares, gzipped, named as Fashion-MNIST's training files. */
function shapes(dir: string, n: number): void {
  let s = 3;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  const px = Buffer.alloc(n * 784);
  for (let i = 0; i < n; i++) {
    const [cy, cx, r] = [8 + Math.floor(rand() * 12), 8 + Math.floor(rand() * 12), 4 + Math.floor(rand() * 4)];
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
      const d = Math.hypot(y - cy, x - cx);
      px[i * 784 + y * 28 + x] = (i % 2 ? Math.abs(y - cy) <= r && Math.abs(x - cx) <= r : d <= r && d >= r - 2) ? 230 : 0;
    }
  }
  const head = (magic: number, dims: number[]) => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b.writeUInt32BE(magic, 0);
    dims.forEach((d, k) => b.writeUInt32BE(d, 4 + 4 * k));
    return b;
  };
  writeFileSync(path.join(dir, "train-images-idx3-ubyte.gz"), gzipSync(Buffer.concat([head(0x0803, [n, 28, 28]), px])));
  writeFileSync(path.join(dir, "train-labels-idx1-ubyte.gz"), gzipSync(Buffer.concat([head(0x0801, [n]), Buffer.alloc(n)])));
}

test("models/dcgan.nnet trains on drawn shapes (wasm): the steps alternate and both losses are reported", () => {
  const dir = path.join(TMP, "dcgan");
  spawnSync("mkdir", ["-p", dir]);
  shapes(dir, 48);
  const out = path.join(dir, "run");
  const r = cli(["train", path.join(ROOT, "models/dcgan.nnet"), "--data", dir, "--epochs", "2", "--batch", "16", "--backend", "wasm", "--out", out]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /augmentation: noise \(random_normal\)/);
  const recs = records(out);
  assert.is(recs.length, 2);
  for (const e of recs) assert.ok(Number.isFinite(e.discriminator_loss) && Number.isFinite(e.generator_loss), JSON.stringify(e));
  // The discriminator learns first: real and generated images are told apart better than by chance (ln 4).
  assert.ok(recs[1]!.discriminator_loss! < Math.log(4), `discriminator_loss ${recs.map((e) => e.discriminator_loss!.toFixed(3)).join(" → ")}`);
});

test("the trained DCGAN's generator alone (--from noise) on random noise: a 4 × 4 PNG grid of generated images", async () => {
  const dir = path.join(TMP, "dcgan");
  const png = path.join(dir, "samples.png");
  const r = cli(["predict", path.join(ROOT, "models/dcgan.nnet"), "--weights", path.join(dir, "run"), "--data", dir, "--from", "noise", "--input", "random:16", "--seed", "3", "--grid", png, "--backend", "cpu"]);
  assert.is(r.code, 0, r.err);
  const { data, info } = await sharp(readFileSync(png)).toColourspace("b-w").raw().toBuffer({ resolveWithObject: true });
  assert.equal([info.width, info.height], [4 * 28 + 3 * 2, 4 * 28 + 3 * 2]);
  // Each tile is a picture (not one flat value), and the tiles differ: the noise decides them.
  const tile = (t: number) => Array.from({ length: 28 * 28 }, (_, k) => data[(Math.floor(t / 4) * 30 + Math.floor(k / 28)) * info.width + (t % 4) * 30 + (k % 28)]!);
  const tiles = Array.from({ length: 16 }, (_, t) => tile(t));
  for (const t of tiles) assert.ok(Math.max(...t) - Math.min(...t) > 10, "a tile with contrast");
  assert.not.equal(tiles[0], tiles[1]);
});

test.run();
