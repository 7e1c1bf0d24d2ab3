// npm run bench:infer: inference samples/s of the interpreter at -O2 against -O0, side by side in one run,
// for fashion_cnn and resnet50 at batch 32 on the wasm backend, with the largest output difference.
// Targets (issue 5): ≥ 1.3× at -O2, outputs equal within 1e-4. Reported, never asserted.
// `npm run bench:infer -- --engine onnx`: the ONNX Runtime engine (runtime/onnx_engine.ts, what eval/predict
// --engine onnx run) against a bare onnxruntime-node session on the same exported bytes (-O2), interleaved:
// mlp, fashion_cnn, resnet50 and bert_base (sequence SEQ=128; BERT at batch BERT_BATCH=8), the engine's
// samples/s over raw ORT's (issue 17's target: ≥ 0.95×). ORT_THREADS=N pins both sessions' threads.
// Besides wall-clock samples/s it reports the speed-up in CPU time (user + system of this process): on a
// shared machine other processes stretch the wall clock of both levels unevenly, much less their CPU time
// (the wasm backend runs on one thread).
import * as tf from "@tensorflow/tfjs-core";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { compile } from "../compiler/index.js";
import type { IRModel } from "../compiler/ir/types.js";
import { optimize } from "../compiler/passes/index.js";
import { initBackend } from "../runtime/backend.js";
import { deriveWeights } from "../runtime/derive.js";
import { initWeights } from "../runtime/init.js";
import { run } from "../runtime/interpret.js";
import { median, opt, ROOT } from "./common.js";

const BATCH = Number(process.env.BATCH ?? 32);
const RUNS = Number(process.env.RUNS ?? 7);

if (opt("engine", "tfjs") === "onnx") {
  await (await import("./infer_onnx.js")).benchOnnx();
  process.exit(0);
}

const backend = await initBackend(process.env.BACKEND ?? "wasm");
console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}, backend ${backend.name}; batch ${BATCH}, median of ${RUNS} interleaved runs after 1 warm-up each`);
console.log("model".padEnd(14) + "nodes -O0→-O2".padStart(16) + "-O0 samples/s".padStart(15) + "-O2 samples/s".padStart(15) + "speed-up".padStart(10) + "CPU-time speed-up".padStart(19) + "max |Δ|".padStart(11));

/** CPU milliseconds (user + system) this process has used. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

for (const name of (process.env.MODELS ?? "fashion_cnn,resnet50").split(",")) {
  const rel = `models/${name}.nnet`;
  const res = compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), { readFile: (f) => ({ text: readFileSync(path.join(ROOT, f), "utf8") }) });
  const plan = res.module.plans[0];
  const m0 = res.module.models.find((m) => m.name === plan?.model) ?? res.module.models[0]!;
  const m2 = optimize({ ...res.module, models: [m0] }, { level: 2, mode: "infer" }).module.models[0]!;
  let s = 3;
  const weights = initWeights(m0.params, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32));
  // Batchnorm statistics away from 0 and 1, as after training.
  for (const p of m0.params) if (/^(moving_mean|moving_variance|gamma|beta)$/.test(p.role)) weights.get(p.name)!.assign(tf.randomUniform(p.shape, 0.5, 1.5, "float32", 5));
  const derived = deriveWeights(m2.params, weights);
  const input = m0.inputs[0]!;
  const x = tf.randomUniform([BATCH, ...input.shape.slice(1).map((d) => (typeof d === "number" ? d : 8))], 0, 1, "float32", 9);
  const forward = (m: IRModel, w: Map<string, tf.Variable>) => tf.tidy(() => Object.values(run(m, w, { [input.name]: x }, { training: false }).outputs)[0]!.dataSync());
  // Warm both up, then interleave their runs so that neither gets a warmer (or more fragmented) heap.
  forward(m0, weights);
  forward(m2, derived);
  const t0: number[] = [];
  const t2: number[] = [];
  const c0: number[] = [];
  const c2: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const [m, w, ts, cs] of [[m0, weights, t0, c0], [m2, derived, t2, c2]] as const) {
      const t = performance.now();
      const c = cpuMs();
      forward(m, w);
      cs.push(cpuMs() - c);
      ts.push(performance.now() - t);
    }
  }
  const a = BATCH / (median(t0) / 1000);
  const b = BATCH / (median(t2) / 1000);
  const cpu = median(c0) / median(c2);
  const ya = forward(m0, weights);
  const yb = forward(m2, derived);
  let d = 0;
  for (let i = 0; i < ya.length; i++) d = Math.max(d, Math.abs(ya[i]! - yb[i]!));
  console.log(name.padEnd(14) + `${m0.nodes.length}→${m2.nodes.length}`.padStart(16) + a.toFixed(1).padStart(15) + b.toFixed(1).padStart(15) + `${(b / a).toFixed(2)}×`.padStart(10) + `${cpu.toFixed(2)}×`.padStart(19) + d.toExponential(1).padStart(11));
}
