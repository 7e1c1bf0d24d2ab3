// npm run bench:threads — CNN training on the wasm backend, one thread against the threaded-SIMD build
// (NNETC_WASM_THREADS, runtime/wasm_threads_node.ts): models/fashion_cnn.nnet, batch 128, Adam, dropout on, on
// seeded synthetic images. Each measurement is a fresh process (the backend is chosen once per process), one
// thread and N threads alternately, so that load on the machine falls on both alike. Prints the thread count
// tfjs reports (tf.wasm getThreadsCount), samples/s (wall and CPU time) per run, the medians' ratio, and each
// run's first loss (the two builds must agree). A benchmark, not a test: nothing is asserted.
//
//   npm run build && node dist/bench/wasm_threads.js [--threads 2] [--repeats 3] [--steps 6] [--batch 128]
import * as tf from "@tensorflow/tfjs-core";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { compile } from "../compiler/index.js";
import { initBackend, wasmThreadCount } from "../runtime/backend.js";
import { initWeights } from "../runtime/init.js";
import { run } from "../runtime/interpret.js";
import { flag, median, opt, ROOT } from "./common.js";

const THREADS = opt("threads", "2");
const REPEATS = Number(opt("repeats", "3"));
const STEPS = Number(opt("steps", "6"));
const BATCH = Number(opt("batch", "128"));

interface Measure {
  threads: number;
  reason: string;
  wall: number;
  cpu: number;
  loss: number;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** In the child: one warm-up step, then STEPS Adam steps; samples/s by wall and CPU time. */
async function child(): Promise<Measure> {
  const choice = await initBackend("wasm");
  const rel = "models/fashion_cnn.nnet";
  const res = compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), { readFile: (f) => ({ text: readFileSync(path.join(ROOT, f), "utf8") }) });
  const m = res.module.models[0]!;
  let s = 3;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const image = tf.tensor4d(Float32Array.from({ length: BATCH * 784 }, () => rand()), [BATCH, 28, 28, 1]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: BATCH }, () => Math.floor(rand() * 10)), "int32"), 10);
  const w = initWeights(m.params, () => rand());
  const vars = m.params.filter((p) => p.trainable).map((p) => w.get(p.name)!);
  const opt = tf.train.adam(1e-3);
  const step = (i: number) => {
    const l = opt.minimize(() => tf.losses.softmaxCrossEntropy(labels, run(m, w, { image }, { training: true, seed: () => 7 + i }).outputs.logits!) as tf.Scalar, true, vars)!;
    const v = l.dataSync()[0]!;
    l.dispose();
    return v;
  };
  const loss = step(0); // warm-up: XNNPACK operators, JIT
  const t0 = performance.now();
  const c0 = cpuMs();
  for (let i = 1; i <= STEPS; i++) step(i);
  const wall = performance.now() - t0;
  const cpu = cpuMs() - c0;
  return { threads: wasmThreadCount(), reason: choice.reason, wall: (STEPS * BATCH) / (wall / 1000), cpu: (STEPS * BATCH) / (cpu / 1000), loss };
}

function measure(threads: string): Measure | null {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [self, "--child", "--steps", String(STEPS), "--batch", String(BATCH)], { cwd: ROOT, env: { ...process.env, NNETC_WASM_THREADS: threads }, encoding: "utf8", maxBuffer: 16 << 20 });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (r.status !== 0 || !line) {
    console.log(`  NNETC_WASM_THREADS=${threads} failed (exit ${r.status}):\n${(r.stdout + r.stderr).slice(-2000)}`);
    return null;
  }
  return JSON.parse(line) as Measure;
}

if (flag("child")) {
  console.log(JSON.stringify(await child()));
  process.exit(0);
} else {
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"} (available parallelism ${os.availableParallelism()}), load ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}; node ${process.version}`);
  console.log(`models/fashion_cnn.nnet, batch ${BATCH}, ${STEPS} Adam steps per run after one warm-up step; 1 thread vs NNETC_WASM_THREADS=${THREADS}, ${REPEATS} runs each, alternating`);
  const got: Record<string, Measure[]> = { "1": [], [THREADS]: [] };
  for (let r = 0; r < REPEATS; r++) {
    for (const t of r % 2 ? [THREADS, "1"] : ["1", THREADS]) {
      const x = measure(t);
      if (!x) continue;
      got[t]!.push(x);
      console.log(`  run ${r + 1}, NNETC_WASM_THREADS=${t}: tfjs threads ${x.threads}, ${x.wall.toFixed(1)} samples/s (CPU time ${x.cpu.toFixed(1)}), first loss ${x.loss.toFixed(6)}`);
    }
  }
  const one = got["1"]!;
  const many = got[THREADS]!;
  if (one[0]) console.log(`1 thread:   ${one[0].reason}`);
  if (many[0]) console.log(`${THREADS} threads: ${many[0].reason}`);
  const w1 = median(one.map((x) => x.wall));
  const wn = median(many.map((x) => x.wall));
  console.log(`median samples/s: 1 thread ${w1.toFixed(1)}, ${THREADS} threads ${wn.toFixed(1)}: ${(wn / w1).toFixed(2)}× (load ${os.loadavg()[0]!.toFixed(1)} at the end)`);
}
