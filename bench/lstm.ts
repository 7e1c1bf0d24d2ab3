// npm run bench:lstm — training speed of the BiLSTM of models/text_classifier.nnet (embedding 20000×64,
// bidirectional lstm(64) over 200 steps, max pool, dense(2); batch 64, Adam, dropout on) on generated
// token data, for four LSTM implementations measured alternately in the same process, so that load on
// the machine falls on all alike:
//   fused     runtime/ops.ts lstm: one input matmul for the sequence, a hand-written gradient (BPTT); on
//             wasm one kernel call for the forward over all steps and one for the backward (lstm_seq.ts)
//   cell      the same with one cell kernel call per step each way (lstm_cell.ts), as before lstm_seq.ts
//   autodiff  the same forward ops recorded on the tape (what the hand-written gradient replaces)
//   old       the implementation before issue 17 (kept below, here only): autodiff through a loop that
//             split the gates per step and added the bias per step
// "fused" also has global_max_pool1d's current gradient (ops.globalMax), the others tf.max's own (a
// broadcasting Equal, slow on wasm), as they had. --profile NAME: one step of one variant under tf.profile.
// Prints samples/s (wall and CPU time) per repetition and the medians' ratios; also the first step's
// loss under each (they must agree). A benchmark, not a test: nothing is asserted.
//
//   npm run build && node dist/bench/lstm.js [--backend wasm] [--repeats 5] [--steps 3] [--batch 64] [--len 200] [--only fused,cell,old] [--profile fused]
import * as tf from "@tensorflow/tfjs-core";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { compile } from "../compiler/index.js";
import { initBackend } from "../runtime/backend.js";
import { initWeights } from "../runtime/init.js";
import { IMPLS, run } from "../runtime/interpret.js";
import * as ops from "../runtime/ops.js";
import { median, opt, ROOT } from "./common.js";

const BACKEND = opt("backend", "wasm");
const REPEATS = Number(opt("repeats", "5"));
const STEPS = Number(opt("steps", "3"));
const BATCH = Number(opt("batch", "64"));
const LEN = Number(opt("len", "200"));
const ONLY = opt("only", "fused,cell,autodiff,old").split(",");
/** --profile NAME: one training step of that variant under tf.profile, kernel time by kernel name, then exit. */
const PROFILE = opt("profile", "");

/** The LSTM before issue 17 (runtime/ops.ts at ee08718), unchanged but for the GRU branch left out. */
function oldLstm(x: tf.Tensor, w: ops.RecurrentWeights, o: ops.RecurrentOptions): tf.Tensor {
  const x3 = x as tf.Tensor3D;
  const steps = x3.shape[1];
  const batch = x3.shape[0];
  const rec = w.recurrentKernel as tf.Tensor2D;
  const proj = tf.reshape(tf.matMul(tf.reshape(x3, [-1, x3.shape[2]]), w.kernel as tf.Tensor2D), [batch, steps, -1]);
  let h: tf.Tensor2D = tf.zeros([batch, o.units]);
  let cell: tf.Tensor2D = tf.zeros([batch, o.units]);
  const outs: tf.Tensor2D[] = [];
  const order = [...Array(steps).keys()];
  if (o.reverse) order.reverse();
  const perStep = tf.split(tf.transpose(proj, [1, 0, 2]), steps, 0).map((t) => tf.reshape(t, [batch, -1]) as tf.Tensor2D);
  for (const t of order) {
    const z = tf.add(tf.add(perStep[t]!, tf.matMul(h, rec)), w.bias);
    const [i, f, g, og] = tf.split(z, 4, 1) as tf.Tensor2D[];
    cell = tf.add(tf.mul(tf.sigmoid(f!), cell), tf.mul(tf.sigmoid(i!), tf.tanh(g!)));
    h = tf.mul(tf.sigmoid(og!), tf.tanh(cell));
    outs.push(h);
  }
  if (!o.returnSequences) return h;
  if (o.reverse) outs.reverse();
  return tf.stack(outs, 1);
}

/** The autodiff variant of the fused forward (runtime/ops.ts lstmTimeMajor with autodiff). */
function autodiffLstm(x: tf.Tensor, w: ops.RecurrentWeights, o: ops.RecurrentOptions): tf.Tensor {
  const y = ops.lstmTimeMajor(tf.transpose(x, [1, 0, 2]) as tf.Tensor3D, w, o.units, o.returnSequences, o.reverse, "autodiff");
  return o.returnSequences ? tf.transpose(y, [1, 0, 2]) : y;
}

/** The per-step cell kernels with the hand-written gradient (runtime/ops.ts before the whole-sequence kernels). */
function cellLstm(x: tf.Tensor, w: ops.RecurrentWeights, o: ops.RecurrentOptions): tf.Tensor {
  const y = ops.lstmTimeMajor(tf.transpose(x, [1, 0, 2]) as tf.Tensor3D, w, o.units, o.returnSequences, o.reverse, "cell");
  return o.returnSequences ? tf.transpose(y, [1, 0, 2]) : y;
}

type Lstm = typeof ops.lstm;
const VARIANTS: Record<string, Lstm> = { fused: ops.lstm, cell: cellLstm, autodiff: autodiffLstm, old: oldLstm };
/**
 * global_max_pool1d as it is (ops.globalMax: its gradient avoids the wasm backend's broadcasting Equal) for
 * "fused", and as it was (tf.max and its own gradient) for the variants that stand for earlier states.
 */
const CURRENT_POOL = IMPLS.global_max_pool1d;
const OLD_POOL: (typeof IMPLS)["global_max_pool1d"] = (c) => tf.max(c.x[0]!, 1);
const POOL: Record<string, (typeof IMPLS)["global_max_pool1d"]> = { fused: CURRENT_POOL, cell: OLD_POOL, autodiff: OLD_POOL, old: OLD_POOL };

/** IMPLS.lstm with another LSTM function (interpret.ts's adapter, written out). */
function implWith(f: Lstm): (typeof IMPLS)["lstm"] {
  return (c) => {
    const w = (p: string) => ({ kernel: c.w(`${p}kernel`), recurrentKernel: c.w(`${p}recurrent_kernel`), bias: c.w(`${p}bias`) });
    const o = { units: Number(c.a.units), returnSequences: !!c.a.return_sequences };
    if (!c.a.bidirectional) return f(c.x[0]!, w(""), { ...o, reverse: false });
    return tf.concat([f(c.x[0]!, w("forward/"), { ...o, reverse: false }), f(c.x[0]!, w("backward/"), { ...o, reverse: true })], -1);
  };
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function main(): Promise<void> {
  const choice = await initBackend(BACKEND);
  const rel = "models/text_classifier.nnet";
  const res = compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), { readFile: (f) => ({ text: readFileSync(path.join(ROOT, f), "utf8") }) });
  const m = res.module.models[0]!;
  const vocab = 20000;
  let s = 3;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const tokens = tf.tensor2d(Array.from({ length: BATCH * LEN }, () => Math.floor(rand() * vocab)), [BATCH, LEN], "int32");
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: BATCH }, () => Math.floor(rand() * 2)), "int32"), 2);
  const init = initWeights(m.params, () => rand());
  const initial = new Map([...init].map(([k, v]) => [k, v.clone()]));
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}; backend ${choice.name} (${choice.reason}); batch ${BATCH} × ${LEN} tokens, ${STEPS} Adam step(s) per run, medians of ${REPEATS}`);

  /** STEPS training steps from the same initial weights; returns samples/s (wall, CPU) and the first loss. */
  const train = (name: string): { wall: number; cpu: number; loss: number } => {
    IMPLS.lstm = implWith(VARIANTS[name]!);
    IMPLS.global_max_pool1d = POOL[name]!;
    for (const [k, v] of init) v.assign(initial.get(k)!);
    const opt = tf.train.adam(2e-3);
    const vars = m.params.filter((p) => p.trainable).map((p) => init.get(p.name)!);
    let loss = NaN;
    const t0 = performance.now();
    const c0 = cpuMs();
    for (let i = 0; i < STEPS; i++) {
      const l = opt.minimize(() => {
        const out = run(m, init, { tokens }, { training: true, seed: () => 7 + i }).outputs.logits!;
        return tf.losses.softmaxCrossEntropy(labels, out) as tf.Scalar;
      }, true, vars);
      const v = l!.dataSync()[0]!;
      if (i === 0) loss = v;
      l!.dispose();
    }
    const wall = performance.now() - t0;
    const cpu = cpuMs() - c0;
    opt.dispose();
    return { wall: (STEPS * BATCH) / (wall / 1000), cpu: (STEPS * BATCH) / (cpu / 1000), loss };
  };

  if (PROFILE) {
    train(PROFILE); // warm-up, and the variant's LSTM and pooling
    const opt = tf.train.adam(2e-3);
    const vars = m.params.filter((p) => p.trainable).map((p) => init.get(p.name)!);
    const t0 = performance.now();
    const info = await tf.profile(() => {
      opt.minimize(() => tf.losses.softmaxCrossEntropy(labels, run(m, init, { tokens }, { training: true, seed: () => 7 }).outputs.logits!) as tf.Scalar, false, vars);
    });
    const wall = performance.now() - t0;
    const by = new Map<string, [number, number]>();
    for (const k of info.kernels) {
      const e = by.get(k.name) ?? [0, 0];
      by.set(k.name, [e[0] + 1, e[1] + (typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0)]);
    }
    const total = [...by.values()].reduce((a, [, ms]) => a + ms, 0);
    console.log(`${PROFILE}: one step ${wall.toFixed(0)} ms wall under tf.profile, ${info.kernels.length} kernel calls, ${total.toFixed(0)} ms inside kernels (the rest: engine/tape bookkeeping, profiling)`);
    for (const [name, [n, ms]] of [...by].sort((a, b) => b[1][1] - a[1][1]).slice(0, 20)) console.log(`  ${name.padEnd(28)} ${String(n).padStart(6)} calls ${ms.toFixed(1).padStart(8)} ms`);
    opt.dispose();
    return;
  }
  const names = ONLY.filter((n) => VARIANTS[n]);
  for (const n of names) train(n); // warm-up (XNNPACK operators, JIT)
  const got: Record<string, { wall: number[]; cpu: number[]; loss: number }> = Object.fromEntries(names.map((n) => [n, { wall: [], cpu: [], loss: NaN }]));
  for (let r = 0; r < REPEATS; r++) {
    const line: string[] = [];
    for (const n of r % 2 ? [...names].reverse() : names) {
      const t = train(n);
      got[n]!.wall.push(t.wall);
      got[n]!.cpu.push(t.cpu);
      got[n]!.loss = t.loss;
      line.push(`${n} ${t.wall.toFixed(1)} (cpu ${t.cpu.toFixed(1)})`);
    }
    console.log(`  run ${r + 1}: ${line.join(", ")} samples/s; tensors ${tf.memory().numTensors}`);
  }
  for (const n of names) console.log(`${n.padEnd(9)} ${median(got[n]!.wall).toFixed(1).padStart(7)} samples/s (CPU-time ${median(got[n]!.cpu).toFixed(1)}), first loss ${got[n]!.loss.toFixed(6)}`);
  const base = got.old ?? got[names[names.length - 1]!]!;
  for (const n of names) if (got[n] !== base) console.log(`${n} / ${got.old ? "old" : "last"}: ${(median(got[n]!.wall) / median(base.wall)).toFixed(2)}× wall, ${(median(got[n]!.cpu) / median(base.cpu)).toFixed(2)}× CPU time`);
}

await main();
