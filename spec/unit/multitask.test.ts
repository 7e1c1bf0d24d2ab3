// Multi-task plans: with several loss terms, each term's own value is reported per epoch, on the training side
// and on validation (Keras's OUTPUT_loss), and the total is their weighted sum; every metric is measured on
// both sides, whichever output it reads; the terms can be monitored; tfjs and torch report the same.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../runtime/backend.js";
import { lossTensor } from "../../runtime/objective.js";
import { lossTermNames } from "../../runtime/spec.js";
import { ROOT } from "../helpers.js";
import { requireTorch } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-multitask-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

function setup(): string {
  let s = 9;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296) * 2 - 1;
  const rows = ["features,label,value"];
  for (let i = 0; i < 600; i++) {
    const x = [rand(), rand(), rand(), rand()];
    rows.push(`${x.map((v) => v.toFixed(4)).join(" ")},${x[0]! + x[1]! > 0 ? 1 : 0},${(x[2]! * 2 - x[3]!).toFixed(4)}`);
  }
  writeFileSync(path.join(TMP, "data.csv"), rows.join("\n") + "\n");
  const file = path.join(TMP, "m.nnet");
  writeFileSync(
    file,
    `model Two {
  input x: f32[batch, 4]
  h = x -> dense(16, activation: relu)
  output logits = h -> dense(2)
  output value = h -> dense(1) -> reshape([1])
}
dataset d {
  source csv("data.csv")
  split  test: 0.2, seed: 3
  field x: f32[4] = features
  field label: i32 = label
  field target: f32[1] = value -> reshape([1])
}
train Two on d {
  loss       cross_entropy(logits, label) + 0.5 * mse(value, target)
  optimizer  adam(lr: 1e-2)
  batch      16
  epochs     3
  validation 0.2
  metrics    accuracy(logits, label), mse(value, target)
  early_stop monitor: val_value_loss, patience: 5
  seed       5
}
`,
  );
  return file;
}

const records = (dir: string) => readFileSync(path.join(dir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 180_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test("lossTermNames: OUTPUT_loss, then OUTPUT_FN_loss, then OUTPUT_TARGET_loss when names would repeat", () => {
  assert.equal(lossTermNames([{ prediction: "a", target: "t", fn: "mse" }, { prediction: "b", target: "t", fn: "mse" }]), ["a_loss", "b_loss"]);
  assert.equal(lossTermNames([{ prediction: "a", target: "t", fn: "mse" }, { prediction: "a", target: "t", fn: "mae" }]), ["a_mse_loss", "a_mae_loss"]);
  assert.equal(lossTermNames([{ prediction: "a", target: "t", fn: "mse" }, { prediction: "a", target: "u", fn: "mse" }]), ["a_t_loss", "a_u_loss"]);
});

let file = "";

test("tfjs: every term and every metric on both sides; the total is the weighted sum of the terms", () => {
  file = setup();
  const out = path.join(TMP, "tfjs");
  const r = cli(["train", file, "--backend", "cpu", "--out", out]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out + r.err, /logits_loss [\d.]+\s+value_loss [\d.]+/);
  const recs = records(out);
  assert.is(recs.length, 3);
  for (const e of recs) {
    for (const k of ["loss", "logits_loss", "value_loss", "accuracy", "mse", "val_loss", "val_logits_loss", "val_value_loss", "val_accuracy", "val_mse"]) assert.ok(Number.isFinite(e[k]), `${k} in ${JSON.stringify(e)}`);
    assert.ok(Math.abs(e.loss! - (e.logits_loss! + 0.5 * e.value_loss!)) < 1e-5, `train: ${e.loss} vs ${e.logits_loss} + 0.5 · ${e.value_loss}`);
    assert.ok(Math.abs(e.val_loss! - (e.val_logits_loss! + 0.5 * e.val_mse!)) < 1e-5, "validation: the mse term is the mse metric");
    assert.ok(Math.abs(e.val_value_loss! - e.val_mse!) < 1e-6);
  }
  assert.ok(recs[2]!.value_loss! < recs[0]!.value_loss!, "the regression term falls");
});

test("torch: the same records as tfjs", () => {
  requireTorch();
  const out = path.join(TMP, "torch");
  const r = cli(["train", file, "--engine", "torch", "--out", out]);
  assert.is(r.code, 0, r.err);
  const a = records(path.join(TMP, "tfjs"));
  const b = records(out);
  for (let i = 0; i < 3; i++) {
    for (const k of ["loss", "logits_loss", "value_loss", "accuracy", "mse", "val_logits_loss", "val_value_loss", "val_accuracy", "val_mse"]) assert.ok(Math.abs(a[i]![k]! - b[i]![k]!) < 2e-4, `epoch ${i + 1} ${k}: tfjs ${a[i]![k]}, torch ${b[i]![k]}`);
  }
});

test("a term's name is a monitor; a misspelt one is NN diagnostic with the term names offered", () => {
  const bad = path.join(TMP, "bad.nnet");
  writeFileSync(bad, readFileSync(file, "utf8").replace("monitor: val_value_loss", "monitor: val_valeu_loss"));
  const r = cli(["check", bad]);
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /val_valeu_loss/);
  assert.match(r.err, /val_value_loss/);
});

test("dice and focal: hand-computed values on tfjs; the same per-term records on tfjs and torch", async () => {
  await initBackend("cpu");
  const logits = tf.tensor2d([[2, 0, -1], [0.5, 0.5, 0], [-1, 3, 0]]);
  const ids = tf.tensor1d([0, 2, 1], "int32");
  const p = [[2, 0, -1], [0.5, 0.5, 0], [-1, 3, 0]].map((r) => { const e = r.map(Math.exp); const z = e.reduce((a, b) => a + b); return e.map((x) => x / z); });
  const y = [0, 2, 1];
  const pt = y.map((c, i) => p[i]![c]!);
  const focal = pt.reduce((acc, q) => acc - 0.25 * (1 - q) ** 2 * Math.log(q), 0) / 3;
  const dice = 1 - [0, 1, 2].reduce((acc, c) => { const inter = y.reduce((a, t, i) => a + (t === c ? p[i]![c]! : 0), 0); const sp = p.reduce((a, r) => a + r[c]!, 0); return acc + (2 * inter + 1) / (sp + 1 + 1); }, 0) / 3;
  const term = (fn: string) => ({ fn, prediction: "logits", target: "label", weight: 1, args: {} });
  assert.ok(Math.abs(lossTensor(term("focal"), logits, ids).dataSync()[0]! - focal) < 1e-6, "focal");
  assert.ok(Math.abs(lossTensor(term("dice"), logits, ids).dataSync()[0]! - dice) < 1e-6, "dice");
  requireTorch();
  const f = path.join(TMP, "df.nnet");
  writeFileSync(f, readFileSync(file, "utf8").replace("cross_entropy(logits, label) + 0.5 * mse(value, target)", "cross_entropy(logits, label) + dice(logits, label) + focal(logits, label, gamma: 1.5)").replace("monitor: val_value_loss", "monitor: val_logits_dice_loss"));
  const a = cli(["train", f, "--backend", "cpu", "--out", path.join(TMP, "df-tfjs")]);
  const b = cli(["train", f, "--engine", "torch", "--out", path.join(TMP, "df-torch")]);
  assert.is(a.code, 0, a.err);
  assert.is(b.code, 0, b.err);
  const x = records(path.join(TMP, "df-tfjs"));
  const z = records(path.join(TMP, "df-torch"));
  for (let i = 0; i < 3; i++) for (const k of ["loss", "logits_cross_entropy_loss", "logits_dice_loss", "logits_focal_loss", "val_logits_dice_loss"]) assert.ok(Math.abs(x[i]![k]! - z[i]![k]!) < 2e-4, `epoch ${i + 1} ${k}: tfjs ${x[i]![k]}, torch ${z[i]![k]}`);
  assert.ok(x[2]!.logits_dice_loss! < x[0]!.logits_dice_loss!, "the Dice term falls");
});

test("cosine: 1 - cos per row (hand-computed; orthogonal rows 1, opposite 2, a zero row 1); the same records on tfjs and torch", async () => {
  await initBackend("cpu");
  const pred = tf.tensor2d([[3, 4], [1, 0], [1, 1], [0, 0]]);
  const target = tf.tensor2d([[6, 8], [0, 2], [-1, -1], [1, 0]]);
  const term = { fn: "cosine", prediction: "value", target: "target", weight: 1, args: {} };
  assert.ok(Math.abs(lossTensor(term, pred, target).dataSync()[0]! - (0 + 1 + 2 + 1) / 4) < 1e-6);
  requireTorch();
  const f = path.join(TMP, "cos.nnet");
  // The regression head predicts the features' direction: 4 numbers against the 4 features.
  writeFileSync(f, readFileSync(file, "utf8").replace("output value = h -> dense(1) -> reshape([1])", "output value = h -> dense(4)").replace("field target: f32[1] = value -> reshape([1])", "field target: f32[4] = features").replace("0.5 * mse(value, target)", "cosine(value, target)"));
  const a = cli(["train", f, "--backend", "cpu", "--out", path.join(TMP, "cos-tfjs")]);
  const b = cli(["train", f, "--engine", "torch", "--out", path.join(TMP, "cos-torch")]);
  assert.is(a.code, 0, a.err);
  assert.is(b.code, 0, b.err);
  const x = records(path.join(TMP, "cos-tfjs"));
  const z = records(path.join(TMP, "cos-torch"));
  for (let i = 0; i < 3; i++) for (const k of ["loss", "value_loss", "val_value_loss"]) assert.ok(Math.abs(x[i]![k]! - z[i]![k]!) < 2e-4, `epoch ${i + 1} ${k}: tfjs ${x[i]![k]}, torch ${z[i]![k]}`);
  assert.ok(x[2]!.value_loss! < x[0]!.value_loss!, `the cosine term falls: ${x.map((e) => e.value_loss!.toFixed(4)).join(" → ")}`);
});

test("subtracting a loss is NN4004, as spec/language.md §10.2 says (a negative term has no minimum)", () => {
  const bad = path.join(TMP, "sub.nnet");
  writeFileSync(bad, readFileSync(file, "utf8").replace("+ 0.5 * mse(value, target)", "- 0.5 * mse(value, target)"));
  const r = cli(["check", bad]);
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /NN4004/);
  assert.match(r.err, /not subtracted/);
  const spec = readFileSync(path.join(ROOT, "spec/language.md"), "utf8");
  assert.match(spec, /Losses are never subtracted/);
});

test.run();
