// npm run bench:onnx: inference samples/s of the exported ONNX model in onnxruntime-node (CPU) against our
// runtime (the interpreter at -O2 on the wasm backend), same weights, same batch, interleaved runs, median of
// RUNS (default 5) after one warm-up each; the ratio and the largest output difference. Reported, never asserted.
// MODELS=fashion_cnn,mlp,resnet50,mobilenet_v2 BATCH=32 RUNS=5 BACKEND=wasm by default; ORT_THREADS=N pins onnxruntime's threads.
import * as tf from "@tensorflow/tfjs-core";
import * as os from "node:os";
import * as ort from "onnxruntime-node";
import { exportOnnx } from "../compiler/emit/onnx/index.js";
import { initBackend } from "../runtime/backend.js";
import { run } from "../runtime/interpret.js";
import { median } from "./common.js";
import { seededInferenceModel } from "./seeded.js";

const BATCH = Number(process.env.BATCH ?? 32);
const RUNS = Number(process.env.RUNS ?? 5);
/** ORT_THREADS=1 compares one thread with one thread (the wasm backend runs on one). */
const THREADS = process.env.ORT_THREADS ? Number(process.env.ORT_THREADS) : undefined;

const backend = await initBackend(process.env.BACKEND ?? "wasm");
console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}; ours: interpreter -O2 on ${backend.name} (${backend.reason}); onnxruntime-node ${ort.env.versions.common} CPU, ${THREADS ? `${THREADS} thread${THREADS > 1 ? "s" : ""}` : "default threads"}; batch ${BATCH}, median of ${RUNS} interleaved runs after 1 warm-up each`);
console.log("model".padEnd(14) + "ours samples/s".padStart(16) + "ORT samples/s".padStart(15) + "ORT / ours".padStart(12) + "max |Δ|".padStart(10));

for (const name of (process.env.MODELS ?? "fashion_cnn,mlp,resnet50,mobilenet_v2").split(",")) {
  const { model: m2, weights, rand } = await seededInferenceModel(name);
  const bytes = exportOnnx(m2, weights, { producerVersion: "bench" }).bytes!;
  const session = await ort.InferenceSession.create(bytes, THREADS ? { intraOpNumThreads: THREADS, interOpNumThreads: 1 } : {});
  const tw = new Map([...weights].map(([k, w]) => [k, tf.variable(tf.tensor("data" in w ? w.data : new Float32Array(0), [...w.shape]), false)]));
  const input = m2.inputs[0]!;
  const shape = [BATCH, ...input.shape.slice(1).map((d) => (typeof d === "number" ? d : 8))];
  const xs = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand);
  const x = tf.tensor(xs, shape);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor("float32", xs, shape) };
  const ours = () => tf.tidy(() => Object.values(run(m2, tw, { [input.name]: x }, { training: false }).outputs)[0]!.dataSync() as Float32Array);
  const theirs = async () => (await session.run(feeds))[session.outputNames[0]!]!.data as Float32Array;
  const ya = ours();
  const yb = await theirs();
  let d = 0;
  for (let i = 0; i < ya.length; i++) d = Math.max(d, Math.abs(ya[i]! - yb[i]!));
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    ours();
    ta.push(performance.now() - t);
    t = performance.now();
    await theirs();
    tb.push(performance.now() - t);
  }
  const a = BATCH / (median(ta) / 1000);
  const b = BATCH / (median(tb) / 1000);
  console.log(name.padEnd(14) + a.toFixed(1).padStart(16) + b.toFixed(1).padStart(15) + `${(b / a).toFixed(2)}×`.padStart(12) + d.toExponential(1).padStart(10));
  await session.release();
  for (const v of tw.values()) v.dispose();
  x.dispose();
}
