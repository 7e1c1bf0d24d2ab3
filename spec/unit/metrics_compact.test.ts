// Metrics over many classes (a language model's vocabulary at every position) take memory per row, not per
// class: rows of more than COMPACT_CLASSES classes are reduced as they are collected (runtime/objective.ts,
// runtime/torch/engine.py `metric_part`) to their argmax, the number of classes above the target and −log p(target).
// The metrics computed from compact rows equal those from the whole scores, and both engines agree on a small
// language model's evaluation. (Before, an MLM over 8,000 words wrote 4.9 GB of test logits and failed.)
import * as tf from "@tensorflow/tfjs-core";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { optimize } from "../../compiler/passes/index.js";
import { initBackend } from "../../runtime/backend.js";
import type { HostTensor } from "../../runtime/checkpoint/index.js";
import type { Split } from "../../runtime/data/index.js";
import { Rng } from "../../runtime/data/rng.js";
import { TfjsEngine } from "../../runtime/engine.js";
import { interpreted } from "../../runtime/interpret.js";
import { collectHost, COMPACT_CLASSES, concatCollected, metricValue, type Collected } from "../../runtime/objective.js";
import type { CallSpec } from "../../runtime/spec.js";
import { startTorch } from "../../runtime/torch/engine.js";
import { memoryHost } from "../helpers.js";
import { requireTorch } from "./torch_shared.js";

test.before(async () => {
  await initBackend("wasm");
});

const METRICS: CallSpec[] = [
  { fn: "accuracy", args: {} },
  { fn: "top_k", args: { k: 5 } },
  { fn: "f1", args: { average: "macro" } },
  { fn: "precision", args: { average: "micro" } },
  { fn: "perplexity", args: { ignore: 0 } },
  { fn: "accuracy", args: { ignore: 0 } },
  { fn: "top_k", args: { k: 5, ignore: 0 } },
];

test("compact rows: the same metrics as the whole scores, for logits and probabilities, in one part or many", () => {
  const rng = new Rng(4);
  const classes = 300;
  const rows = 500;
  assert.ok(classes > COMPACT_CLASSES);
  const scores = Float32Array.from({ length: rows * classes }, () => rng.next() * 6 - 3);
  const targets = Float32Array.from({ length: rows }, () => Math.floor(rng.next() * classes));
  // make some rows right, so that accuracy is not 0
  for (let r = 0; r < rows; r += 3) scores[r * classes + targets[r]!] = 9;
  const whole: Collected = { scores, classes, targets, rows };
  const compact = collectHost(scores, classes, targets, true);
  assert.ok(compact.compact, "collected compact");
  assert.is(compact.scores.length, 0, "no scores kept");
  const parts = concatCollected([0, 120, 121, 400].map((from, i, a) => collectHost(scores.subarray(from * classes, (a[i + 1] ?? rows) * classes), classes, targets.subarray(from, a[i + 1] ?? rows), true)));
  for (const logits of [true, false]) {
    const probs = logits ? scores : scores.map((v) => Math.abs(v) / 40);
    const w: Collected = { ...whole, scores: probs };
    const c = collectHost(probs, classes, targets, true);
    for (const m of METRICS) {
      const want = metricValue(m, w, logits);
      const got = metricValue(m, c, logits);
      assert.ok(Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want)), `${m.fn} (${logits ? "logits" : "probabilities"}): ${got} vs ${want}`);
      if (logits) assert.ok(Math.abs(metricValue(m, parts, true) - want) <= 1e-9 * Math.max(1, Math.abs(want)), `${m.fn} from parts`);
    }
  }
  assert.ok(metricValue(METRICS[0]!, compact, true) > 0.3);
  // ignore: padding positions count for nothing in accuracy and top_k, as in perplexity and the loss
  const pad = collectHost(Float32Array.from([5, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 5, 0, 0, 0, 5]), 4, [0, 1, 2, 3], true);
  assert.is(metricValue({ fn: "accuracy", args: {} }, pad, true), 0.75);
  assert.is(metricValue({ fn: "accuracy", args: { ignore: 0 } }, pad, true), 2 / 3);
  assert.is(metricValue({ fn: "top_k", args: { k: 1, ignore: 0 } }, pad, true), 2 / 3);
  // Few classes stay whole (auc and regression metrics read them).
  assert.not.ok(collectHost(scores.subarray(0, rows * 10), 10, targets.map((t) => t % 10), true).compact);
});

const LM = `model LM {
  input ids: i32[batch, 12]
  output logits = ids -> embedding(200, 16) -> attention(2, causal: true) -> dense(200)
}
dataset d {
  source jsonl(path: "x.jsonl")
  field ids: i32[12] = ids
  field next: i32[12] = next
}
train LM on d {
  loss    cross_entropy(logits, next, ignore: 0)
  metrics accuracy(ignore: 0), top_k(k: 5), perplexity(ignore: 0), f1(average: macro)
}
`;

test("compact rows: the tfjs and torch engines evaluate a 200-token language model alike", async () => {
  requireTorch();
  const res = compile("lm.nnet", LM, memoryHost());
  assert.equal(res.diagnostics.map((d) => d.message), []);
  const module = optimize(res.module, { level: 1, mode: "train" }).module;
  const m = module.models[0]!;
  const plan = module.plans[0]!;
  const rng = new Rng(6);
  const n = 40;
  const ids = Int32Array.from({ length: n * 12 }, () => Math.floor(rng.next() * 200));
  const next = Int32Array.from({ length: n * 12 }, (_, i) => (i % 12 > 8 ? 0 : ids[i]! % 50 + 1));
  const split: Split = {
    size: n,
    fields: {} as never,
    batch: (idx) => {
      const pick = (a: Int32Array) => Int32Array.from(Array.from(idx).flatMap((r) => Array.from(a.subarray(r * 12, (r + 1) * 12))));
      return { ids: { dtype: "int32", shape: [idx.length, 12], data: pick(ids) }, next: { dtype: "int32", shape: [idx.length, 12], data: pick(next) } } as never;
    },
  };
  const host: Record<string, HostTensor> = Object.fromEntries(m.params.map((p) => [p.name, { dtype: "F32", shape: [...p.shape], data: Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => rng.next() - 0.5) } as HostTensor]));
  const vars = new Map(m.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape), true, p.name)]));
  const a = await new TfjsEngine(interpreted(m), vars).evaluate(plan as never, split, 16);
  const torch = await startTorch(m, { device: "cpu", precision: "fp32", level: 1 }, host);
  let b;
  try {
    b = await torch.evaluate(plan as never, split, 16);
  } finally {
    await torch.dispose();
  }
  tf.dispose([...vars.values()]);
  console.log(`    tfjs: loss ${a.loss.toFixed(5)} ${JSON.stringify(a.metrics)}\n    torch: loss ${b.loss.toFixed(5)} ${JSON.stringify(b.metrics)}`);
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-4 * a.loss);
  assert.equal(Object.keys(a.metrics).sort(), Object.keys(b.metrics).sort());
  for (const k of Object.keys(a.metrics)) assert.ok(Math.abs(a.metrics[k]! - b.metrics[k]!) <= 1e-4 * Math.max(1, Math.abs(a.metrics[k]!)), `${k}: ${a.metrics[k]} vs ${b.metrics[k]}`);
  // perplexity is the exponential of the loss (ignore: 0 in both)
  assert.ok(Math.abs(Math.log(a.metrics.perplexity!) - a.loss) <= 1e-4 * a.loss, `perplexity ${a.metrics.perplexity} vs exp(loss ${a.loss})`);
});

test("a regression target as wide as many classes (an autoencoder's image) is kept whole: mse and mae as computed by hand; soft class rows still give class ids", () => {
  const rng = new Rng(9);
  const rows = 6;
  const width = 784; // > COMPACT_CLASSES
  const scores = Float32Array.from({ length: rows * width }, () => rng.next());
  const image = Float32Array.from({ length: rows * width }, () => rng.next());
  const c = collectHost(scores, width, image, false);
  assert.not.ok(c.compact, "an image target is not class rows");
  let se = 0;
  let ae = 0;
  for (let i = 0; i < scores.length; i++) {
    se += (scores[i]! - image[i]!) ** 2;
    ae += Math.abs(scores[i]! - image[i]!);
  }
  const mae = metricValue({ fn: "mae", args: {} }, c, false);
  const mse = metricValue({ fn: "mse", args: {} }, c, false);
  assert.ok(Math.abs(mae - ae / scores.length) < 1e-6, `mae ${mae} vs ${ae / scores.length}`);
  assert.ok(Math.abs(mse - se / scores.length) < 1e-6, `mse ${mse} vs ${se / scores.length}`);
  // Smoothed one-hot rows (label smoothing, mixup) are class rows: their argmax is the class.
  const classes = COMPACT_CLASSES + 6;
  const soft = new Float32Array(rows * classes).fill(0.1 / classes);
  for (let r = 0; r < rows; r++) soft[r * classes + ((r * 7) % classes)]! += 0.9;
  const s = collectHost(Float32Array.from({ length: rows * classes }, () => rng.next()), classes, soft, false);
  assert.ok(s.compact, "soft class rows are collected compact");
  assert.equal(Array.from(s.targets), Array.from({ length: rows }, (_, r) => (r * 7) % classes));
});

test.run();
