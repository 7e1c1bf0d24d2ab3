// npm run bench:infer -- --engine onnx (see infer.ts): the ONNX Runtime engine against raw onnxruntime-node on the
// same exported bytes. Both sessions get the same options (runtime/onnx_engine.ts's sessionOptions) and the same
// host inputs; the engine's time includes what eval/predict add around ORT (feeds from host arrays, outputs back
// in the IR's names). Median of RUNS (default 5) interleaved timed runs, each after an untimed one; the sessions' idle threads
// do not spin (each would otherwise slow the other down, tenfold on two cores). Reported, never asserted.
import * as os from "node:os";
import { initBackend } from "../runtime/backend.js";
import { loadOrt, onnxExport, OnnxSession, sessionOptions } from "../runtime/onnx_engine.js";
import { median } from "./common.js";
import { seededInferenceModel } from "./seeded.js";

export async function benchOnnx(): Promise<void> {
  const RUNS = Number(process.env.RUNS ?? 5);
  const SEQ = Number(process.env.SEQ ?? 128);
  const THREADS = process.env.ORT_THREADS ? Number(process.env.ORT_THREADS) : undefined;
  const ort = await loadOrt();
  // Derived weights (folded batchnorm) are computed with TensorFlow.js's plain JavaScript backend.
  await initBackend("cpu");
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}; onnxruntime-node ${ort.env.versions.common} CPU, ${THREADS ? `${THREADS} threads` : "default threads"}; -O2; median of ${RUNS} interleaved timed runs, each after an untimed run of the same session`);
  console.log("model".padEnd(12) + "batch".padStart(7) + "raw ORT samples/s".padStart(19) + "--engine onnx samples/s".padStart(25) + "engine / raw".padStart(14));
  for (const name of (process.env.MODELS ?? "mlp,fashion_cnn,resnet50,bert_base").split(",")) {
    const { model: m2, weights, rand } = await seededInferenceModel(name);
    const x = onnxExport(m2, weights, "bench");
    // Idle threads sleep at once: the two sessions take turns, and one's spinning pool would slow the other.
    const so = { spinning: false, ...(THREADS ? { threads: THREADS } : {}) };
    const engine = await OnnxSession.open(m2, x.bytes, so);
    const raw = await ort.InferenceSession.create(x.bytes, sessionOptions(so));
    const batch = Number(process.env.BATCH ?? (m2.inputs.some((i) => i.dtype.startsWith("i")) ? process.env.BERT_BATCH ?? 8 : 32));
    // Host inputs: floats in [0, 1), token ids below 100, masks of ones; symbolic sizes SEQ.
    const inputs: Record<string, { shape: number[]; data: Float32Array | Int32Array }> = {};
    for (const inp of m2.inputs) {
      const shape = inp.shape.map((d, i) => (i === 0 ? batch : typeof d === "number" ? d : SEQ));
      const n = shape.reduce((a, b) => a * b, 1);
      inputs[inp.name] = inp.dtype.startsWith("i") ? { shape, data: Int32Array.from({ length: n }, () => (inp.name === "mask" ? 1 : Math.floor(rand() * 100))) } : { shape, data: Float32Array.from({ length: n }, rand) };
    }
    const feeds = Object.fromEntries(m2.inputs.map((inp, i) => [raw.inputNames[i]!, new ort.Tensor(inp.dtype.startsWith("i") ? "int32" : "float32", inputs[inp.name]!.data, inputs[inp.name]!.shape)]));
    const ours = () => engine.run(inputs);
    const theirs = () => raw.run(feeds);
    await ours();
    await theirs();
    const ta: number[] = [];
    const tb: number[] = [];
    // Each goes first in every other round, and each timed run follows an untimed run of the same session: a
    // run right after the other session's is several times slower, whichever session it is (fashion_cnn: 17 ms
    // instead of 2 ms on two cores), which would time the switch rather than the engine.
    for (let i = 0; i < RUNS; i++) {
      for (const [f, ts] of (i % 2 ? [[ours, ta], [theirs, tb]] : [[theirs, tb], [ours, ta]]) as [() => Promise<unknown>, number[]][]) {
        await f();
        const t = performance.now();
        await f();
        ts.push(performance.now() - t);
      }
    }
    const a = batch / (median(tb) / 1000);
    const b = batch / (median(ta) / 1000);
    console.log(name.padEnd(12) + String(batch).padStart(7) + a.toFixed(1).padStart(19) + b.toFixed(1).padStart(25) + `${(b / a).toFixed(3)}×`.padStart(14));
    await engine.dispose();
    await raw.release();
  }
}
