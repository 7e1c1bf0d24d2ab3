// The ctc loss (runtime/objective.ts ctcLoss: the forward algorithm in log space with tfjs ops) against PyTorch's
// F.ctc_loss, value and gradient, on random scores with padding, repeated labels, one label, an empty sequence and
// one no alignment fits; the same records on tfjs and torch for a small speech-style model trained on frames that
// encode symbols; and sum(value), a per-sample sum averaged over the batch, against a hand computation.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../runtime/backend.js";
import { lossTensor } from "../../runtime/objective.js";
import type { LossSpec } from "../../runtime/spec.js";
import { codes, compileText, ROOT } from "../helpers.js";
import { PYTHON, records, requireTorch } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-ctc-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 400_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

let seed = 7;
const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;

interface Case {
  name: string;
  T: number;
  C: number;
  labels: number[][];
  blank?: number;
  ignore?: number;
}

const CASES: Case[] = [
  { name: "padding and repeats", T: 8, C: 5, labels: [[1, 1, 2, 0], [3, 0, 0, 0], [2, 4, 2, 1]] },
  { name: "one label", T: 5, C: 4, labels: [[2], [3]] },
  { name: "empty, infeasible (4 ones need 7 frames), full", T: 6, C: 6, labels: [[1, 1, 1, 1, 0], [0, 0, 0, 0, 0], [5, 4, 3, 2, 1], [2, 2, 0, 0, 0]] },
  { name: "blank last, padded with it", T: 7, C: 4, blank: 3, labels: [[0, 1, 3], [2, 2, 0]] },
  { name: "padding -1 (ignore)", T: 9, C: 5, ignore: -1, labels: [[1, 2, -1, -1], [3, 3, 4, -1], [4, 1, 4, 2]] },
  { name: "one frame per label", T: 3, C: 5, labels: [[1, 2, 3], [4, 4, 0]] },
];

test("ctc: value and gradient equal PyTorch's F.ctc_loss (reduction mean, zero_infinity) on random scores", async () => {
  requireTorch();
  await initBackend("cpu");
  const cases = CASES.map((c) => ({ ...c, logits: c.labels.map(() => Array.from({ length: c.T }, () => Array.from({ length: c.C }, () => 3 * (rand() - 0.5)))) }));
  const file = path.join(TMP, "cases.json");
  writeFileSync(file, JSON.stringify(cases));
  const py = `
import json, sys, torch
import torch.nn.functional as F
out = []
for c in json.load(open(sys.argv[1])):
    x = torch.tensor(c["logits"], dtype=torch.float64, requires_grad=True)
    blank = c.get("blank", 0)
    pad = {blank, c.get("ignore", blank)}
    seqs = [[v for v in row if v not in pad] for row in c["labels"]]
    L = max(1, max(len(s) for s in seqs))
    targets = torch.tensor([s + [blank] * (L - len(s)) for s in seqs], dtype=torch.long)
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    b, t, _ = x.shape
    loss = F.ctc_loss(F.log_softmax(x, -1).transpose(0, 1), targets, torch.full((b,), t, dtype=torch.long), lengths, blank=blank, reduction="mean", zero_infinity=True)
    loss.backward()
    out.append({"loss": loss.item(), "grad": x.grad.reshape(-1).tolist()})
print(json.dumps(out))
`;
  const r = spawnSync(PYTHON, ["-c", py, file], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  const ref = JSON.parse(r.stdout) as { loss: number; grad: number[] }[];
  cases.forEach((c, i) => {
    const term: LossSpec = { fn: "ctc", prediction: "frames", target: "labels", weight: 1, args: { blank: c.blank ?? 0, ignore: c.ignore ?? null } };
    const x = tf.tensor3d(c.logits);
    const y = tf.tensor2d(c.labels, undefined, "int32");
    const { value, grad } = tf.valueAndGrad((s: tf.Tensor) => lossTensor(term, s, y))(x);
    const got = value.dataSync()[0]!;
    assert.ok(Math.abs(got - ref[i]!.loss) < 1e-4 * Math.max(1, Math.abs(ref[i]!.loss)), `${c.name}: loss ${got}, torch ${ref[i]!.loss}`);
    const g = grad.dataSync();
    let worst = 0;
    ref[i]!.grad.forEach((v, k) => (worst = Math.max(worst, Math.abs(g[k]! - v))));
    assert.ok(worst < 1e-4, `${c.name}: gradient differs by ${worst}`);
    assert.ok(ref[i]!.loss > 0 && ref[i]!.grad.some((v) => Math.abs(v) > 1e-3), `${c.name}: a case that tests something`);
  });
});

/** −log p(labels | frames) by enumerating every path of classes over the frames and collapsing it (repeats merged, blanks dropped). */
function bruteForce(logits: number[][], seq: number[], blank: number): number {
  const T = logits.length;
  const C = logits[0]!.length;
  const logp = logits.map((row) => {
    const m = Math.max(...row);
    const z = Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) + m;
    return row.map((v) => v - z);
  });
  let total = 0;
  for (let code = 0; code < C ** T; code++) {
    const path: number[] = [];
    for (let t = 0, c = code; t < T; t++, c = Math.floor(c / C)) path.push(c % C);
    const collapsed = path.filter((k, t) => k !== blank && (t === 0 || k !== path[t - 1]));
    if (collapsed.length === seq.length && collapsed.every((k, i) => k === seq[i])) total += Math.exp(path.reduce((a, k, t) => a + logp[t]![k]!, 0));
  }
  return -Math.log(total);
}

test("ctc equals the sum over every alignment, enumerated (property: random frames, classes, labels and padding)", async () => {
  await initBackend("cpu");
  const sample = fc
    .record({ T: fc.integer({ min: 1, max: 5 }), C: fc.integer({ min: 2, max: 3 }), L: fc.integer({ min: 1, max: 3 }), B: fc.integer({ min: 1, max: 2 }), blank: fc.integer({ min: 0, max: 2 }), seed: fc.integer({ min: 1, max: 1 << 30 }) })
    .filter((c) => c.blank < c.C);
  fc.assert(
    fc.property(sample, ({ T, C, L, B, blank, seed: s0 }) => {
      let s = s0;
      const r = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
      const logits = Array.from({ length: B }, () => Array.from({ length: T }, () => Array.from({ length: C }, () => 4 * (r() - 0.5))));
      const labels = Array.from({ length: B }, () => Array.from({ length: L }, () => Math.floor(r() * C)));
      let expected = 0;
      labels.forEach((row, b) => {
        const seq = row.filter((k) => k !== blank);
        const nll = bruteForce(logits[b]!, seq, blank);
        expected += (Number.isFinite(nll) ? nll : 0) / Math.max(1, seq.length) / B;
      });
      const term: LossSpec = { fn: "ctc", prediction: "p", target: "y", weight: 1, args: { blank } };
      const got = tf.tidy(() => lossTensor(term, tf.tensor3d(logits), tf.tensor2d(labels, undefined, "int32")).dataSync()[0]!);
      return Math.abs(got - expected) < 1e-4 * Math.max(1, expected);
    }),
    { numRuns: 60, seed: 16 },
  );
});

test("ctc's shapes are checked: scores [batch, time, classes] against integer labels [batch, max_len] (NN3012), no more labels than frames (NN4060), a blank among the classes (NN4061, NN2019)", () => {
  const src = (output: string, field: string, loss = "ctc(symbols, labels)") => `model Reader {
  input frames: f32[batch, 12, 6]
  output symbols = frames -> ${output}
}
dataset utterances {
  source jsonl(path: "frames.jsonl")
  field frames: f32[12, 6] = frames -> reshape([12, 6])
  field labels: ${field} = labels
}
train Reader on utterances { loss ${loss} }
`;
  assert.equal(codes(compileText(src("dense(4)", "i32[3]"))), []);
  assert.equal(codes(compileText(src("dense(4)", "i32[12]"))), [], "as many labels as frames");
  assert.equal(codes(compileText(src("dense(4)", "f32[3]"))), ["NN3012"], "float labels");
  assert.equal(codes(compileText(src("dense(4)", "i32"))), ["NN3012"], "one id per sample");
  assert.equal(codes(compileText(src("flatten -> dense(4)", "i32[3]"))), ["NN3012"], "no time axis");
  assert.equal(codes(compileText(src("dense(4)", "i32[13]"))), ["NN4060"]);
  assert.equal(codes(compileText(src("dense(4)", "i32[3]", "ctc(symbols, labels, blank: 4)"))), ["NN4061"]);
  assert.equal(codes(compileText(src("dense(4)", "i32[3]", "ctc(symbols, labels, blank: 3, ignore: -1)"))), []);
  assert.equal(codes(compileText(src("dense(4)", "i32[3]", "ctc(symbols, labels); metrics accuracy"))), ["NN4008"], "a per-position metric against unaligned labels");
  assert.equal(codes(compileText(src("dense(4)", "i32[3]", "ctc(symbols, labels); mixup alpha: 0.2"))), ["NN4041"], "mixing transcripts");
  assert.equal(codes(compileText(src("dense(4)", "i32[3]", "ctc(symbols, labels, blank: -1)"))), ["NN2019"], "a negative blank is out of the parameter's range");
});

/** n samples of 12 frames × 6 features: 1 to 3 symbols (1–3), each 3 frames of its own feature, silence around. */
function writeFrames(file: string, n: number): void {
  let s = 3;
  const r = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const count = 1 + (i % 3);
    const labels = Array.from({ length: count }, () => 1 + Math.floor(r() * 3));
    const frames: number[] = [];
    const at = Array<number>(12).fill(0);
    labels.forEach((l, k) => [0, 1, 2].forEach((j) => (at[k * 4 + j] = l)));
    for (let t = 0; t < 12; t++) for (let f = 0; f < 6; f++) frames.push(Number(((f === at[t] ? 1 : 0) + 0.3 * (r() - 0.5)).toFixed(3)));
    lines.push(JSON.stringify({ frames, labels: [...labels, 0, 0, 0].slice(0, 3) }));
  }
  writeFileSync(file, lines.join("\n") + "\n");
}

const SPEECH = (loss: string) => `model Reader {
  input frames: f32[batch, 12, 6]
  output symbols = frames -> conv1d(16, 3, padding: same, activation: relu) -> dense(4)
}
dataset utterances {
  source jsonl(path: "frames.jsonl")
  field frames: f32[12, 6] = frames -> reshape([12, 6])
  field labels: i32[3] = labels
}
train Reader on utterances {
  loss       ${loss}
  optimizer  adam(lr: 0.01)
  batch      16
  epochs     4
  validation 0.25
  seed       3
}
`;

test("ctc trains a speech-style reader of symbol frames: the loss falls, the same records on tfjs and torch", () => {
  writeFrames(path.join(TMP, "frames.jsonl"), 96);
  const f = path.join(TMP, "reader.nnet");
  writeFileSync(f, SPEECH("ctc(symbols, labels)"));
  const a = cli(["train", f, "--backend", "cpu", "--out", path.join(TMP, "reader-tfjs")]);
  assert.is(a.code, 0, a.err);
  const x = records(path.join(TMP, "reader-tfjs"));
  assert.ok((x[3]!.loss as number) < 0.6 * (x[0]!.loss as number), `the ctc loss falls: ${x.map((e) => e.loss).join(", ")}`);
  assert.ok((x[3]!.val_loss as number) < (x[0]!.val_loss as number), "and on validation");
  requireTorch();
  const b = cli(["train", f, "--engine", "torch", "--out", path.join(TMP, "reader-torch")]);
  assert.is(b.code, 0, b.err);
  const z = records(path.join(TMP, "reader-torch"));
  for (let i = 0; i < 4; i++) for (const k of ["loss", "val_loss"]) assert.ok(Math.abs((x[i]![k] as number) - (z[i]![k] as number)) < 2e-4 * Math.max(1, x[i]![k] as number), `epoch ${i + 1} ${k}: tfjs ${x[i]![k]}, torch ${z[i]![k]}`);
});

test("an emitted module's trainStep trains with ctc: its loss is lossTensor's on the model's outputs, and falls", async () => {
  // Inside the package, so that the emitted module's `import "nnetc/runtime"` resolves to this build.
  const dir = path.join(ROOT, "dist/tmp-ctc");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(path.join(dir, "reader.nnet"), SPEECH("ctc(symbols, labels)"));
    const r = cli(["compile", path.join(dir, "reader.nnet"), "--target", "js"]);
    assert.is(r.code, 0, r.err);
    const mod = (await import(pathToFileURL(path.join(dir, "reader.js")).href)) as {
      create(o?: object): Promise<unknown>;
      predict(m: unknown, x: object): { symbols: tf.Tensor };
      trainStep(m: unknown, b: object): number;
      dispose(m: unknown): void;
    };
    writeFrames(path.join(dir, "frames.jsonl"), 8);
    const rows = readFileSync(path.join(dir, "frames.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { frames: number[]; labels: number[] });
    const frames = tf.tensor3d(rows.flatMap((x) => x.frames), [8, 12, 6]);
    const labels = tf.tensor2d(rows.map((x) => x.labels), [8, 3], "int32");
    const m = await mod.create({ seed: 1 });
    const term: LossSpec = { fn: "ctc", prediction: "symbols", target: "labels", weight: 1, args: { blank: 0, ignore: null } };
    const before = lossTensor(term, mod.predict(m, { frames }).symbols, labels).dataSync()[0]!;
    const steps = Array.from({ length: 30 }, () => mod.trainStep(m, { frames, labels }));
    assert.ok(Math.abs(steps[0]! - before) < 1e-5, `trainStep's loss ${steps[0]}, lossTensor ${before}`);
    assert.ok(steps[29]! < 0.5 * steps[0]!, `the loss falls: ${steps[0]} -> ${steps[29]}`);
    mod.dispose(m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sum(value): each sample's values summed, averaged over the batch (by hand); a KL term summed by sum trains as kl_normal on tfjs and torch; sum of integers is NN4008", async () => {
  await initBackend("cpu");
  const v = [[[1, -2, 3], [0.5, 4, -1]], [[2, 2, 2], [-3, 0, 1]]];
  const hand = (1 - 2 + 3 + 0.5 + 4 - 1 + (2 + 2 + 2 - 3 + 0 + 1)) / 2;
  const term: LossSpec = { fn: "sum", prediction: "pen", target: "pen", targetIsOutput: true, weight: 1, args: {} };
  assert.ok(Math.abs(lossTensor(term, tf.tensor3d(v), tf.tensor3d(v)).dataSync()[0]! - hand) < 1e-6, "sum by hand");
  const dir = path.join(TMP, "sum");
  spawnSync("mkdir", ["-p", dir]);
  let s = 5;
  const r = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  writeFileSync(path.join(dir, "pts.jsonl"), Array.from({ length: 64 }, () => JSON.stringify({ x: [r(), r(), r(), r()] })).join("\n") + "\n");
  const program = (loss: string) => `model V {
  input x: f32[batch, 4]
  h = x -> dense(8, activation: relu)
  output mean = h -> dense(2)
  output log_var = h -> dense(2)
  output kl = (log_var + 1 - square(mean) - exp(log_var)) * -0.5
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
  writeFileSync(path.join(dir, "hand.nnet"), program("mse(recon, x) + sum(kl)"));
  const a = cli(["train", path.join(dir, "builtin.nnet"), "--backend", "cpu", "--out", path.join(dir, "builtin")]);
  const b = cli(["train", path.join(dir, "hand.nnet"), "--backend", "cpu", "--out", path.join(dir, "hand")]);
  assert.is(a.code, 0, a.err);
  assert.is(b.code, 0, b.err);
  const x = records(path.join(dir, "builtin"));
  const y = records(path.join(dir, "hand"));
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs((x[i]!.kl_normal_loss as number) - (y[i]!.kl_loss as number)) < 1e-5, `epoch ${i + 1}: kl_normal ${x[i]!.kl_normal_loss}, sum(kl) ${y[i]!.kl_loss}`);
    assert.ok(Math.abs((x[i]!.val_loss as number) - (y[i]!.val_loss as number)) < 1e-5, `epoch ${i + 1} val_loss`);
  }
  requireTorch();
  const t = cli(["train", path.join(dir, "hand.nnet"), "--engine", "torch", "--out", path.join(dir, "hand-torch")]);
  assert.is(t.code, 0, t.err);
  const z = records(path.join(dir, "hand-torch"));
  for (let i = 0; i < 3; i++) for (const k of ["loss", "kl_loss", "val_kl_loss"]) assert.ok(Math.abs((y[i]![k] as number) - (z[i]![k] as number)) < 2e-4, `epoch ${i + 1} ${k}: tfjs ${y[i]![k]}, torch ${z[i]![k]}`);
  writeFileSync(path.join(dir, "bad.nnet"), program("mse(recon, x) + sum(ids)").replace("output recon", "output ids = kl -> cast(i32)\n  output recon"));
  const bad = cli(["check", path.join(dir, "bad.nnet")]);
  assert.is(bad.code, 1, bad.out + bad.err);
  assert.match(bad.err, /NN4008.*sum: "ids" holds i32, not floats/);
});

test.run();
