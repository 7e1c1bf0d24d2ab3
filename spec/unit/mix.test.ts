// mixup and cutmix (plan settings `mixup alpha:` and `cutmix alpha:`): the draws (Beta(alpha, alpha) by its
// moments, cutmix's box and λ's correction by hand, partners a permutation, a function of (seed, epoch, batch)
// alone), the mixed inputs by hand, a mixed step's loss against the mixed one-hot (mixed value) target computed
// apart, on tfjs and torch alike; end to end, tfjs and torch give the same epochs, a run killed with SIGKILL and
// resumed ends as an uninterrupted one, and the test split is never mixed; the checker's refusals.
import * as tf from "@tensorflow/tfjs-core";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { optimize } from "../../compiler/passes/index.js";
import { initBackend } from "../../runtime/backend.js";
import type { HostTensor } from "../../runtime/checkpoint/index.js";
import { Rng } from "../../runtime/data/rng.js";
import { TfjsEngine, type PhaseSetup, type StepEngine } from "../../runtime/engine.js";
import { interpreted } from "../../runtime/interpret.js";
import { beta, cutBox, drawMix, mixInputs, mixRng, type MixSpec } from "../../runtime/mix.js";
import { lossTensor } from "../../runtime/objective.js";
import { startTorch } from "../../runtime/torch/engine.js";
import { memoryHost, ROOT, trainKilledAfter } from "../helpers.js";
import { nontrivialHost } from "./matrix.worker.js";
import { randomSplit, requireTorch } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(tmpdir(), "nnetc-mix-"));
test.before(async () => {
  await initBackend("wasm");
});
test.after(() => rmSync(TMP, { recursive: true, force: true }));

test("λ ~ Beta(alpha, alpha): mean 1/2 and variance 1/(4(2·alpha + 1)) over 20,000 batches; alpha 1 is uniform", () => {
  for (const alpha of [0.2, 1, 2]) {
    const xs = Array.from({ length: 20000 }, (_, b) => beta(alpha, mixRng(7, 3, b, 0)));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length;
    const want = 1 / (4 * (2 * alpha + 1));
    assert.ok(xs.every((x) => x >= 0 && x <= 1));
    assert.ok(Math.abs(mean - 0.5) < 0.01, `alpha ${alpha}: mean ${mean}`);
    assert.ok(Math.abs(variance - want) < 0.05 * want, `alpha ${alpha}: variance ${variance}, want ${want}`);
    if (alpha === 1) {
      const below = xs.filter((x) => x < 0.25).length / xs.length;
      assert.ok(Math.abs(below - 0.25) < 0.015, `P(λ < 1/4) = ${below}`);
    }
  }
});

test("cutmix's box: sides h·√(1-λ) about the centre, clipped to the image, λ corrected to the box's area (by hand)", () => {
  const at = (cy: number, cx: number) => {
    const picks = [cy, cx];
    return { int: () => picks.shift()! } as unknown as Rng;
  };
  // λ 0.75 in 32 × 32: a 16 × 16 box; centred it covers a quarter; in the corner it is cut to 8 × 8.
  assert.equal(cutBox(0.75, 32, 32, at(16, 16)), { box: [8, 24, 8, 24], lambda: 0.75 });
  assert.equal(cutBox(0.75, 32, 32, at(0, 0)), { box: [0, 8, 0, 8], lambda: 1 - 64 / 1024 });
  // 4 × 6, λ 0.5: sides floor(4·0.707) = 2, floor(6·0.707) = 4, about (3, 5): rows 2…3, columns 3…5 (clipped at 6).
  assert.equal(cutBox(0.5, 4, 6, at(3, 5)), { box: [2, 4, 3, 6], lambda: 1 - 6 / 24 });
  // λ 1 pastes nothing; λ 0 (almost) everything.
  assert.equal(cutBox(1, 8, 8, at(4, 4)).lambda, 1);
  assert.equal(cutBox(0, 8, 8, at(4, 4)), { box: [0, 8, 0, 8], lambda: 0 });
});

const SPEC: MixSpec = { mixup: 0.4, cutmix: 1, inputs: ["image", "extra"], images: ["image"], size: [4, 4], terms: ["labels"] };

test("a batch's mix is a function of (seed, epoch, batch, worker): partners a permutation of the batch, mixup or cutmix about half each", () => {
  const idx = Uint32Array.from([11, 4, 27, 8, 15, 3]);
  const at = { seed: 7, epoch: 2, batch: 5, rank: 0 };
  const a = drawMix(SPEC, idx, at);
  assert.equal(drawMix(SPEC, idx, at), a);
  assert.equal([...a.partners].sort((x, y) => x - y), [...idx].sort((x, y) => x - y));
  for (const other of [{ ...at, seed: 8 }, { ...at, epoch: 3 }, { ...at, batch: 6 }, { ...at, rank: 1 }]) assert.not.equal(drawMix(SPEC, idx, other).lambda, a.lambda);
  let cut = 0;
  for (let b = 0; b < 2000; b++) {
    const m = drawMix(SPEC, idx, { ...at, batch: b });
    if (m.box) {
      cut++;
      assert.equal(m.fields, ["image"]);
      const [y0, y1, x0, x1] = m.box;
      assert.ok(Math.abs(m.lambda - (1 - ((y1 - y0) * (x1 - x0)) / 16)) < 1e-12);
    } else assert.equal(m.fields, ["image", "extra"]);
  }
  assert.ok(Math.abs(cut / 2000 - 0.5) < 0.05, `${cut} of 2000 batches cutmix`);
  assert.is(drawMix({ ...SPEC, cutmix: null }, idx, at).box, null);
  assert.ok(drawMix({ ...SPEC, mixup: null }, idx, at).box);
});

test("mixInputs by hand: mixup blends λ·x_a + (1-λ)·x_b, cutmix pastes the partner's box; other fields stay the batch's own", () => {
  const own = { image: tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2, 1]), label: tf.tensor1d([0, 1], "int32") };
  const partner = { image: tf.tensor4d([10, 20, 30, 40, 50, 60, 70, 80], [2, 2, 2, 1]), label: tf.tensor1d([1, 0], "int32") };
  const up = mixInputs(own, partner, { lambda: 0.25, partners: new Uint32Array(2), box: null, fields: ["image"] });
  assert.equal(Array.from(up.image!.dataSync()), [7.75, 15.5, 23.25, 31, 38.75, 46.5, 54.25, 62]);
  assert.is(up.label, own.label);
  const cut = mixInputs(own, partner, { lambda: 0.75, partners: new Uint32Array(2), box: [0, 1, 1, 2], fields: ["image"] });
  assert.equal(Array.from(cut.image!.dataSync()), [1, 20, 3, 4, 5, 60, 7, 8]);
  tf.dispose([...Object.values(own), ...Object.values(partner), up.image!, cut.image!]);
});

// ── a mixed step on each engine against the mixed target computed apart ─────────────────────────────

const NET = `model Net {
  input image: f32[batch, 4, 4, 2]
  h = image -> conv2d(3, 3, padding: same) -> relu -> flatten
  output logits = h -> dense(5)
  output value = h -> dense(1)
}`;

test("a mixed step's loss is cross_entropy against the mixed one-hot labels plus mse against the mixed values, on tfjs and torch (1e-4)", async () => {
  const res = compile("net.nnet", NET, memoryHost());
  assert.equal(res.diagnostics.map((d) => d.message), []);
  const m = optimize(res.module, { level: 1, mode: "train" }).module.models[0]!;
  const host = nontrivialHost(m, 3);
  const base = randomSplit(m, 16, 4);
  // randomSplit gives a `label`; add a value per sample for the mse term.
  const values = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i));
  const split = { ...base, fields: { ...base.fields, v: { dtype: "float32", shape: [1], declared: "f32" } } as never, batch: (idx: ArrayLike<number>) => ({ ...base.batch(idx), v: { data: Float32Array.from(Array.from(idx, (i) => values[i]!)), shape: [idx.length, 1], dtype: "float32" as const } }) };
  const loss = [
    { fn: "cross_entropy", prediction: "logits", target: "label", weight: 1, args: {} },
    { fn: "mse", prediction: "value", target: "v", weight: 0.5, args: {} },
  ];
  const setup: PhaseSetup = { trainable: m.params.map((p) => p.name), frozenLayers: [], optimizer: { fn: "sgd", args: { lr: 0.1 } }, weightDecay: 0, decays: [], clip: null, loss, accumulate: 2, mixTerms: ["labels", "target"] };
  const idx = Uint32Array.from([3, 9, 0, 14, 6, 11]);
  const spec: MixSpec = { mixup: 0.4, cutmix: 1, inputs: ["image"], images: ["image"], size: [4, 4], terms: ["labels", "target"] };
  // A mixup batch whose partners dominate (λ 0.3) and a drawn cutmix batch.
  const mixes = [{ ...drawMix({ ...spec, cutmix: null }, idx, { seed: 1, epoch: 0, batch: 0, rank: 0 }), lambda: 0.3 }, drawMix({ ...spec, mixup: null }, idx, { seed: 1, epoch: 0, batch: 1, rank: 0 })];
  assert.ok(!mixes[0]!.box && mixes[1]!.box && mixes[1]!.lambda > 0.05 && mixes[1]!.lambda < 0.95, JSON.stringify(mixes.map((x) => x.lambda)));
  // Training metrics see each sample's dominant label and the mixed values.
  const rows = (i: ArrayLike<number>, f: string) => Array.from((split.batch(i) as Record<string, { data: ArrayLike<number> }>)[f]!.data);
  const wantLabels = mixes.flatMap((mx) => rows(mx.lambda >= 0.5 ? idx : mx.partners, "label"));
  const wantValues = mixes.flatMap((mx) => rows(idx, "v").map((a, j) => mx.lambda * a + (1 - mx.lambda) * rows(mx.partners, "v")[j]!));

  // The reference: the inputs mixed, cross_entropy against λ·onehot(y_a) + (1-λ)·onehot(y_b), mse against the
  // mixed values, at the starting weights (each step's loss is measured before its update: lr 0 keeps them).
  const net = interpreted(m);
  const weights = new Map(m.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape), true, p.name)]));
  const want = mixes.map((mx) =>
    tf.tidy(() => {
      const t = (i: ArrayLike<number>) => Object.fromEntries(Object.entries(split.batch(i)).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.dtype)]));
      const a = t(idx);
      const b = t(mx.partners);
      const x = mixInputs(a, b, mx);
      const out = net.forward(weights, x, { training: true }).outputs;
      const onehot = tf.add(tf.mul(tf.oneHot(a.label! as tf.Tensor1D, 5), mx.lambda), tf.mul(tf.oneHot(b.label! as tf.Tensor1D, 5), 1 - mx.lambda));
      const ce = lossTensor(loss[0]!, out.logits!, tf.cast(onehot, "float32"));
      const mse = tf.mean(tf.square(tf.sub(out.value!, tf.add(tf.mul(a.v!, mx.lambda), tf.mul(b.v!, 1 - mx.lambda)))));
      return ce.dataSync()[0]! + 0.5 * mse.dataSync()[0]!;
    }),
  );
  for (const w of weights.values()) w.dispose();

  requireTorch();
  const engines: StepEngine[] = [new TfjsEngine(net, new Map(m.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape), true, p.name)]))), await startTorch(m, { device: "cpu", precision: "fp32", level: 1 }, host)];
  const after: Record<string, HostTensor>[] = [];
  try {
    for (const e of engines) {
      await e.beginPhase(setup);
      const got = await e.trainSteps({ split, batches: [idx, idx], lrs: [0, 0], firstStep: 0, seed: 1, collect: { pairs: [["logits", "label"], ["value", "v"]], maxFloats: 1e6 }, mix: mixes });
      for (let i = 0; i < 2; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-4 * Math.max(1, want[i]!), `${e.name} ${mixes[i]!.box ? "cutmix" : "mixup"}: ${got[i]} vs ${want[i]}`);
      const parts = (await e.takeTrainParts()).parts;
      assert.equal(Array.from(parts.get("logits|label")!.targets), wantLabels, `${e.name}: training metrics' labels`);
      const values = parts.get("value|v")!.targets;
      wantValues.forEach((x, j) => assert.ok(Math.abs(values[j]! - x) < 1e-5, `${e.name}: value ${j}: ${values[j]} vs ${x}`));
      // And three real steps move the weights alike on both engines.
      await e.trainSteps({ split, batches: [idx, idx, idx], lrs: [0.1, 0.1, 0.1], firstStep: 2, seed: 1, collect: null, mix: [mixes[0]!, mixes[1]!, mixes[0]!] });
      after.push(await e.getWeights());
    }
  } finally {
    for (const e of engines) await e.dispose();
    for (const w of (engines[0] as TfjsEngine).weights.values()) w.dispose();
  }
  for (const k of Object.keys(after[0]!)) {
    const x = after[0]![k]!.data as Float32Array;
    const y = after[1]![k]!.data as Float32Array;
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - y[i]!) < 1e-4 * Math.max(1, Math.abs(x[i]!)), `${k}[${i}]: tfjs ${x[i]}, torch ${y[i]}`);
    assert.not.equal(Array.from(x), Array.from(host[k]!.data as Float32Array), `${k} moved`);
  }
});

// ── end to end ───────────────────────────────────────────────────────────────────────────────────────

/** CSV images: 4 × 4 with a bright quadrant whose position is the class. */
function imageCsv(dir: string, n: number): void {
  let s = 5;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  const rows = ["pixels,label"];
  for (let i = 0; i < n; i++) {
    const label = i % 4;
    const px = Array.from({ length: 16 }, (_, k) => ((((k >> 2) < 2 ? 0 : 2) + ((k & 3) < 2 ? 0 : 1) === label ? 0.8 : 0.1) + 0.1 * rand()).toFixed(3));
    rows.push(`${px.join(" ")},${label}`);
  }
  writeFileSync(path.join(dir, "images.csv"), rows.join("\n") + "\n");
}

function program(dir: string, mix: string): string {
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
  field image: f32[4, 4, 1] = pixels -> reshape([4, 4, 1])
  field label: i32 = label
}
train Tiny on quads {
  loss       cross_entropy(logits, label)
  optimizer  adam(lr: 1e-2)
  metrics    accuracy
  batch      8
  epochs     4
  validation 0.1
  seed       7
  checkpoint every: 1, keep: 2
${mix}}
`,
  );
  return file;
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 180_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
const epochs = (dir: string) => readFileSync(path.join(dir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);
const close = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

test("CLI: a mixed run killed with SIGKILL and resumed ends as an uninterrupted one; torch gives tfjs's epochs; the test split is not mixed", async () => {
  const dir = path.join(TMP, "cli");
  mkdirSync(dir, { recursive: true });
  imageCsv(dir, 600);
  const file = program(dir, "  mixup      alpha: 0.4\n  cutmix     alpha: 1.0\n");
  const ref = cli(["train", file, "--backend", "cpu", "--out", path.join(dir, "ref"), "--json"]);
  assert.is(ref.code, 0, ref.err);
  assert.match(ref.out, /"event":"mix"/);
  const want = epochs(path.join(dir, "ref"));
  assert.is(want.length, 4);
  assert.ok(want.every((e) => Number.isFinite(e.loss) && e.accuracy! >= 0 && e.accuracy! <= 1));

  // Without mixing the same plan trains to other losses: the mix is in effect.
  program(dir, "");
  const plain = cli(["train", file, "--backend", "cpu", "--out", path.join(dir, "plain"), "--json"]);
  assert.is(plain.code, 0, plain.err);
  const plainEpochs = epochs(path.join(dir, "plain"));
  assert.ok(plainEpochs.every((e, i) => Math.abs(e.loss! - want[i]!.loss!) > 1e-3), "a mixed run trains as a plain one");
  // Mixed batches are harder to fit than plain ones: the training loss stays above the plain run's.
  assert.ok(want[3]!.loss! > plainEpochs[3]!.loss!, `mixed ${want[3]!.loss}, plain ${plainEpochs[3]!.loss}`);
  program(dir, "  mixup      alpha: 0.4\n  cutmix     alpha: 1.0\n");

  // The torch engine draws the same mixes.
  const torch = cli(["train", file, "--engine", "torch", "--out", path.join(dir, "torch")]);
  assert.is(torch.code, 0, torch.err);
  epochs(path.join(dir, "torch")).forEach((e, i) => {
    for (const k of ["loss", "accuracy", "val_loss", "val_accuracy"]) assert.ok(close(e[k]!, want[i]![k]!, 1e-4), `epoch ${i + 1} ${k}: torch ${e[k]}, tfjs ${want[i]![k]}`);
  });

  const out = path.join(dir, "run");
  await trainKilledAfter([file, "--backend", "cpu", "--out", out], 2, 50);
  const before = epochs(out);
  assert.ok(before.length >= 2 && before.length < 4, `killed after ${before.length} epochs`);
  const resumed = cli(["train", file, "--backend", "cpu", "--out", out, "--resume", "--json"]);
  assert.is(resumed.code, 0, resumed.err);
  const got = epochs(out);
  assert.equal(got.map((e) => e.epoch), [1, 2, 3, 4]);
  for (let i = 0; i < 4; i++) for (const k of ["loss", "accuracy", "val_loss"]) assert.ok(close(got[i]![k]!, want[i]![k]!, 1e-5), `epoch ${i + 1} ${k}: ${got[i]![k]} vs ${want[i]![k]}`);

  // The trainer's test loss is the plain test split's: nnetc eval (which never mixes) measures the same.
  const trained = JSON.parse(readFileSync(path.join(out, "test.json"), "utf8")) as { loss: number };
  const ev = cli(["eval", file, "--weights", out, "--backend", "cpu", "--json"]);
  assert.is(ev.code, 0, ev.err);
  const evLoss = (JSON.parse(ev.out.trim().split("\n").pop()!) as { loss: number }).loss;
  assert.ok(Math.abs(trained.loss - evLoss) < 1e-5, `test loss ${trained.loss} in training, ${evLoss} by eval`);
});

// ── the checker ──────────────────────────────────────────────────────────────────────────────────────

function codes(model: string, fields: string, plan: string): string[] {
  const src = `${model}
dataset d {
  source jsonl("d.jsonl")
${fields}}
train M on d {
${plan}}
`;
  return compile("m.nnet", src, memoryHost()).diagnostics.map((d) => d.code);
}

const IMAGE = `model M {
  input image: f32[batch, 8, 8, 3]
  input extra: f32[batch, 4]
  h = image -> flatten
  output logits = concat(h, extra, axis: -1) -> dense(3)
  output value = h -> dense(1)
}`;
const IMAGE_FIELDS = "  field image: f32[8, 8, 3] = image\n  field extra: f32[4] = extra\n  field label: i32 = label\n  field v: f32[1] = v\n";

test("checker: what mixes and how (inputs, images, each term's rule), inherited by phases", () => {
  const src = `${IMAGE}
dataset d {
  source jsonl("d.jsonl")
${IMAGE_FIELDS}}
train M on d {
  loss cross_entropy(logits, label) + 0.5 * mse(value, v)
  mixup 0.3
  phase a { epochs 1 }
  phase b { epochs 1
    mixup alpha: 1 }
}
`;
  const r = compile("m.nnet", src, memoryHost());
  assert.equal(r.diagnostics.map((d) => d.message), []);
  const [a, b] = r.module.plans[0]!.phases;
  assert.equal({ ...a!.mix!, span: undefined }, { mixup: 0.3, cutmix: null, inputs: ["image", "extra"], images: [], size: null, terms: ["labels", "target"], span: undefined });
  assert.is(b!.mix!.mixup, 1);
  const cut = compile("m.nnet", src.replace("+ 0.5 * mse(value, v)", "").replace("mixup 0.3", "cutmix"), memoryHost()).module.plans[0]!.phases[0]!.mix!;
  assert.equal([cut.cutmix, cut.mixup, cut.images, cut.size, cut.terms], [1, null, ["image"], [8, 8], ["labels"]]);
});

test("checker: numbered refusals — nothing to mix (NN4040), unmixable losses (NN4041), no dataset target (NN4042), alpha ≤ 0", () => {
  const tokens = `model M {
  input ids: i32[batch, 6]
  output logits = ids -> embedding(vocab: 50, dim: 4) -> global_avg_pool1d -> dense(3)
}`;
  assert.equal(codes(tokens, "  field ids: i32[6] = ids\n  field label: i32 = label\n", "  loss cross_entropy(logits, label)\n  mixup 0.2\n"), ["NN4040"]);
  const flat = `model M {
  input x: f32[batch, 4]
  output logits = x -> dense(3)
}`;
  assert.equal(codes(flat, "  field x: f32[4] = x\n  field label: i32 = label\n", "  loss cross_entropy(logits, label)\n  cutmix 1.0\n"), ["NN4040"]);
  assert.equal(codes(flat, "  field x: f32[4] = x\n  field label: i32 = label\n", "  loss cross_entropy(logits, label)\n  mixup 0.2\n"), []);
  assert.equal(codes(IMAGE, IMAGE_FIELDS, "  loss dice(logits, label)\n  mixup 0.2\n"), ["NN4041"]);
  assert.equal(codes(IMAGE, IMAGE_FIELDS, "  loss cross_entropy(logits, label) + mse(value, v)\n  cutmix 1.0\n"), ["NN4041"]);
  assert.equal(codes(IMAGE, IMAGE_FIELDS, "  loss cross_entropy(logits, label) + mse(value, v)\n  mixup 0.2\n"), []);
  const vae = `model M {
  input x: f32[batch, 4]
  output mean = x -> dense(2)
  output log_var = x -> dense(2)
}`;
  assert.equal(codes(vae, "  field x: f32[4] = x\n", "  loss kl_normal(mean, log_var)\n  mixup 0.2\n"), ["NN4042"]);
  for (const bad of ["mixup 0", "mixup alpha: -1", "cutmix 0"]) {
    const c = codes(IMAGE, IMAGE_FIELDS, `  loss cross_entropy(logits, label)\n  ${bad}\n`);
    assert.is(c.length, 1, bad);
    assert.match(c[0]!, /^NN\d{4}$/, bad);
  }
});

test.run();
