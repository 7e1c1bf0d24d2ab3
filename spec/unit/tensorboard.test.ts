// TensorBoard event files of nnetc train, read back by TensorBoard's own reader (EventAccumulator, tensorboard
// pinned in runtime/torch/requirements.txt): a two-phase plan with validation and warmup -> cosine trained on
// tfjs and on torch; the scalars equal metrics.jsonl, the learning rates the schedule, the histograms the
// weights, the graph the IR; a resumed run appends a file and TensorBoard keeps one value per step. Also the
// TFRecord framing, TensorFlow's histogram buckets (property), --no-tensorboard and train's last line.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fc from "fast-check";
import { decodeSafetensors } from "../../runtime/checkpoint/index.js";
import { histogram, histogramLimits, maskedCrc32c, tfRecord } from "../../runtime/tensorboard.js";
import { Schedule } from "../../runtime/optim.js";
import { trainingSteps, type PlanSpec } from "../../runtime/spec.js";
import { optimize } from "../../compiler/passes/index.js";
import { sha256 } from "../../runtime/run_folder.js";
import { compileText, ROOT } from "../helpers.js";
import { PYTHON } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");

const PROGRAM = `model Small {
  input x: f32[batch, 4]
  features = x -> dense(16, activation: relu)
  output logits = features -> dense(4)
}
dataset d {
  source csv("data.csv")
  split  test: 0.2, seed: 3
  field x: f32[4] = features
  field label: i32 = label
}
train Small on d {
  loss cross_entropy(logits, label)
  metrics accuracy
  seed 7
  optimizer adam(lr: 1e-2)
  schedule warmup(epochs: 1) -> cosine
  validation 0.2
  batch 16
  checkpoint every: 1, keep: 5
  phase a { epochs 2 }
  phase b { freeze features; optimizer sgd(lr: 0.05); epochs 2 }
}
`;
/** 200 rows: 160 train (128 of them trained on, 32 validation: 8 steps per epoch), 40 test. */
const STEPS_PER_EPOCH = 8;

function workdir(): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-tb-"));
  let s = 1;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const rows = ["features,label"];
  for (let i = 0; i < 200; i++) {
    const x = [rand(), rand(), rand(), rand()];
    rows.push(`${x.map((v) => v.toFixed(4)).join(" ")},${(x[0]! + x[1]! > 0 ? 1 : 0) + (x[2]! - x[3]! > 0 ? 2 : 0)}`);
  }
  writeFileSync(path.join(dir, "data.csv"), rows.join("\n") + "\n");
  const file = path.join(dir, "m.nnet");
  writeFileSync(file, PROGRAM);
  return { dir, file };
}

function cli(args: string[], cwd: string): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: "utf8", timeout: 180_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

interface Read {
  scalars: Record<string, [number, number][]>;
  histograms: Record<string, { step: number; min: number; max: number; num: number; buckets: number }[]>;
  nodes?: { name: string; op: string; input: string[] }[];
}

/** One TensorBoard run folder as TensorBoard's EventAccumulator reads it (everything kept: size_guidance 0). */
function readRun(dir: string): Read {
  const script = `
import sys, json
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "histograms": 0, "tensors": 0, "compressedHistograms": 0, "images": 0, "audio": 0})
ea.Reload()
tags = ea.Tags()
r = {"scalars": {t: [[e.step, e.value] for e in ea.Scalars(t)] for t in tags["scalars"]},
     "histograms": {t: [{"step": e.step, "min": e.histogram_value.min, "max": e.histogram_value.max, "num": e.histogram_value.num, "buckets": sum(e.histogram_value.bucket)} for e in ea.Histograms(t)] for t in tags["histograms"]}}
if tags["graph"]:
    r["nodes"] = [{"name": n.name, "op": n.op, "input": list(n.input)} for n in ea.Graph().node]
print(json.dumps(r))
`;
  const r = spawnSync(PYTHON, ["-c", script, dir], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) assert.unreachable(`TensorBoard's reader failed on ${dir} (${PYTHON}: pip install -r runtime/torch/requirements.txt): ${r.stderr.slice(-1500)}`);
  return JSON.parse(r.stdout) as Read;
}

const f32 = Math.fround;
const records = (run: string) => readFileSync(path.join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, number | string>);

/** Everything the event files must say about a finished run in `run`, with its TensorBoard folder `tb`. */
function checkRun(run: string, tb: string): void {
  const recs = records(run);
  assert.is(recs.length, 4);
  const train = readRun(path.join(tb, "train"));
  const val = readRun(path.join(tb, "validation"));
  // Per epoch: every loss and metric at the step that ended the epoch, train and validation, as metrics.jsonl holds them.
  for (const [key, run_, tag] of [["loss", train, "epoch_loss"], ["accuracy", train, "epoch_accuracy"], ["val_loss", val, "epoch_loss"], ["val_accuracy", val, "epoch_accuracy"]] as const) {
    assert.equal(run_.scalars[tag], recs.map((r) => [r.step, f32(r[key] as number)]), `${tag} (${key})`);
  }
  assert.equal(train.scalars.epoch, recs.map((r) => [r.step, r.epoch]));
  // Per step: one loss and one rate for each of the 32 steps; the rates are the schedule's, phase by phase.
  const steps = Array.from({ length: 4 * STEPS_PER_EPOCH }, (_, i) => i + 1);
  assert.equal(train.scalars.batch_loss!.map((p) => p[0]), steps, "one batch_loss per step");
  assert.ok(train.scalars.batch_loss!.every((p) => Number.isFinite(p[1]) && p[1] > 0));
  const res = compileText(PROGRAM, path.join(run, "m.nnet"));
  const plan = res.module.plans[0]! as unknown as PlanSpec;
  const model = res.module.models[0]!;
  const expected = plan.phases.flatMap((ph) => {
    const sched = new Schedule(ph.schedule, trainingSteps(plan, ph, model.params).baseLr, STEPS_PER_EPOCH, ph.epochs);
    return Array.from({ length: ph.epochs * STEPS_PER_EPOCH }, (_, k) => f32(sched.lr(k)));
  });
  assert.equal(train.scalars.learning_rate!.map((p) => p[1]), expected, "learning_rate: warmup -> cosine, restarted in phase b at sgd's 0.05");
  assert.equal(train.scalars.learning_rate!.filter((p) => p[0] % STEPS_PER_EPOCH === 0).map((p) => p[1]), recs.map((r) => f32(r.lr as number)), "the epoch's last rate is metrics.jsonl's lr");
  // Histograms: every weight at every epoch's end; counts are the element counts; the last one's range is the final model's.
  const final = decodeSafetensors(readFileSync(path.join(run, "model.safetensors"))).tensors;
  assert.equal(Object.keys(train.histograms).sort(), Object.keys(final).sort());
  for (const [name, t] of Object.entries(final)) {
    const h = train.histograms[name]!;
    const n = t.shape.reduce((a, b) => a * b, 1);
    assert.equal(h.map((e) => e.step), recs.map((r) => r.step), name);
    assert.ok(h.every((e) => e.num === n && e.buckets === n), `${name}: ${n} values in the buckets`);
    const data = Array.from(t.data as Float32Array);
    assert.is(h[3]!.min, Math.min(...data), `${name} min`);
    assert.is(h[3]!.max, Math.max(...data), `${name} max`);
  }
  // The frozen layer of phase b does not move: its histograms at epochs 2, 3, 4 agree.
  const k = train.histograms["dense/kernel"]!;
  assert.ok(k[1]!.min === k[3]!.min && k[1]!.max === k[3]!.max);
  // The graph: one node per IR node of the training forward pass (-O1), with the IR's edges.
  const ir = optimize(res.module, { level: 1, mode: "train" }).module.models[0]!;
  assert.equal(train.nodes!.map((n) => n.op), ir.nodes.map((n) => n.op));
  const names = new Map(ir.nodes.map((n, i) => [n.id, train.nodes![i]!.name]));
  assert.equal(train.nodes!.map((n) => n.input), ir.nodes.map((n) => n.inputs.map((i) => names.get(i)!)));
}

test("tfjs: TensorBoard reads the run's scalars, rates, histograms and graph; resume appends a file and keeps one value per step", () => {
  const { dir, file } = workdir();
  const run = path.join(dir, "run");
  const r = cli(["train", file, "--out", run], dir);
  assert.is(r.code, 0, r.err);
  checkRun(run, path.join(run, "tensorboard"));
  // Train's last line: the next commands, with the actual paths.
  const last = r.out.trim().split("\n").pop()!;
  assert.is(last, `next: nnetc eval ${file} --weights ${run}  ·  nnetc predict ${file} --weights ${run} --input test:4  ·  nnetc plot ${run}  ·  nnetc compile ${file} --target onnx --weights ${run} -o ${run}/model.onnx`);
  assert.match(r.out, `TensorBoard: tensorboard --logdir ${run}/tensorboard`);
  // The run manifest lists the event files with their checksums.
  const manifest = () => JSON.parse(readFileSync(path.join(run, "run-manifest.json"), "utf8")).files as { path: string; bytes: number; sha256: string }[];
  const events = manifest().filter((f) => f.path.startsWith("tensorboard/"));
  assert.is(events.length, 2, "train/ and validation/");
  for (const e of events) assert.is(sha256(readFileSync(path.join(run, e.path))), e.sha256);

  // A crash in epoch 2 (the phase's schedule mid-way): the checkpoints after epoch 1 are gone and the event file's last record is cut.
  for (const c of readdirSync(path.join(run, "checkpoints")).sort().slice(1)) rmSync(path.join(run, "checkpoints", c), { recursive: true });
  const first = path.join(run, "tensorboard/train", readdirSync(path.join(run, "tensorboard/train"))[0]!);
  truncateSync(first, statSync(first).size - 5);
  const before = readFileSync(first);
  const again = cli(["train", file, "--out", run, "--resume"], dir);
  assert.is(again.code, 0, again.err);
  assert.is(readdirSync(path.join(run, "tensorboard/train")).length, 2, "a new file; the old one is not rewritten");
  assert.ok(readFileSync(first).equals(before), "the earlier file is left as it was");
  checkRun(run, path.join(run, "tensorboard"));
  assert.is(manifest().filter((f) => f.path.startsWith("tensorboard/")).length, 4);
});

test("torch: the same scalars, rates, histograms and graph; --tensorboard DIR elsewhere; --no-tensorboard writes none", () => {
  const { dir, file } = workdir();
  const run = path.join(dir, "run");
  const tb = path.join(dir, "logs");
  const r = cli(["train", file, "--out", run, "--engine", "torch", "--tensorboard", tb], dir);
  assert.is(r.code, 0, r.err);
  checkRun(run, tb);
  assert.not.ok(existsSync(path.join(run, "tensorboard")));
  const none = cli(["train", file, "--out", path.join(dir, "quiet"), "--epochs", "1", "--no-tensorboard", "--json"], dir);
  assert.is(none.code, 0, none.err);
  assert.not.ok(existsSync(path.join(dir, "quiet/tensorboard")));
  const done = JSON.parse(none.out.trim().split("\n").pop()!) as { event: string; next: string[]; tensorboard?: string };
  assert.is(done.event, "done");
  assert.is(done.tensorboard, undefined);
  assert.equal(done.next.map((c) => c.split(" ")[1]), ["eval", "predict", "plot", "compile"]);
});

test("TFRecord framing: masked CRC32C of TensorFlow's test vector, and the record layout", () => {
  // crc32c("123456789") = 0xe3069283 (RFC 3720); masked: ((c >>> 15) | (c << 17)) + 0xa282ead8.
  const c = 0xe3069283;
  assert.is(maskedCrc32c(Buffer.from("123456789")), ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0);
  const rec = tfRecord(Buffer.from("abc"));
  assert.is(rec.length, 8 + 4 + 3 + 4);
  assert.is(rec.readBigUInt64LE(0), 3n);
  assert.is(rec.readUInt32LE(8), maskedCrc32c(rec.subarray(0, 8)));
  assert.is(rec.subarray(12, 15).toString(), "abc");
  assert.is(rec.readUInt32LE(15), maskedCrc32c(Buffer.from("abc")));
});

test("histograms: TensorFlow's buckets (first limit above the value), empty runs collapsed, every finite value counted once", () => {
  const limits = histogramLimits();
  const mid = limits.indexOf(0);
  assert.ok(limits.every((x, i) => i === 0 || x > limits[i - 1]!), "ascending");
  assert.is(limits[limits.length - 1], Number.MAX_VALUE);
  assert.is(mid, limits.length - 2 - mid, "as many negative limits as positive ones below DBL_MAX");
  assert.is(limits[mid + 1], 1e-12);
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), fc.constantFrom(0, -0, 1e-13, NaN, Infinity)), { minLength: 1, maxLength: 200 }), (xs) => {
      const h = histogram(xs);
      const finite = xs.filter(Number.isFinite);
      assert.is(h.num, finite.length);
      assert.is(h.bucket.reduce((a, b) => a + b, 0), finite.length);
      if (finite.length) {
        assert.is(h.min, Math.min(...finite));
        assert.is(h.max, Math.max(...finite));
      }
      // Each value lies in its bucket: above the previous limit (or equal to it), below its own.
      let lo = -Infinity;
      for (let i = 0; i < h.bucketLimit.length; i++) {
        const inside = finite.filter((x) => x >= lo && x < h.bucketLimit[i]!).length;
        assert.is(h.bucket[i], inside, `bucket ${i} below ${h.bucketLimit[i]}`);
        lo = h.bucketLimit[i]!;
      }
      // No two empty buckets in a row.
      for (let i = 1; i < h.bucket.length; i++) assert.ok(h.bucket[i] !== 0 || h.bucket[i - 1] !== 0);
    }),
    { numRuns: 200 },
  );
});

test.run();
