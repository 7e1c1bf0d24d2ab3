// Micro benchmark: Conv2DBackpropFilter (the filter gradient of every conv layer, every training
// step) for the Fashion-MNIST CNN shapes, on the wasm backend (runtime/kernels) vs the cpu backend.
//
//   npm run build && node dist/bench/kernels.js [--reps N] [--cpu-reps N] [--no-cpu] [--strategies]
//
// Each repetition gets fresh x and dy tensors (new data ids, so no XNNPACK operator cache is reused,
// as in training), made outside the timed region; the time is the kernel call through the engine,
// which is synchronous on both backends. The cpu backend is plain JavaScript and takes about a
// minute per call on the second shape: it gets fewer repetitions (--cpu-reps, default 3).
// --strategies also times the two wasm strategies (im2col GEMM / convolution) separately.
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { conv2DBackpropFilterWasm, registerWasmTrainingKernels, type Conv2DBackpropFilterStrategy } from "../runtime/kernels/index.js";

interface Case {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
}

const CASES: Case[] = [
  { name: "conv1 x[128,28,28,1]  -> 3x3x32", x: [128, 28, 28, 1], filter: [3, 3, 1, 32] },
  { name: "conv2 x[128,13,13,32] -> 3x3x64", x: [128, 13, 13, 32], filter: [3, 3, 32, 64] },
];

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function time(c: Case, reps: number, strategy?: Conv2DBackpropFilterStrategy): number[] {
  const attrs = { strides: 1, pad: "valid", dataFormat: "NHWC", filterShape: c.filter } as const;
  const [n, h, w] = c.x;
  const [fh, fw, , oc] = c.filter;
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const x = tf.randomNormal(c.x);
    const dy = tf.randomNormal([n, h - fh + 1, w - fw + 1, oc]);
    const t0 = performance.now();
    const out = strategy
      ? tf.engine().makeTensorFromTensorInfo(conv2DBackpropFilterWasm({ inputs: { x, dy }, backend: tf.backend(), attrs: attrs as unknown as tf.NamedAttrMap }, strategy))
      : (tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor);
    out.dataSync(); // no-op wait on both backends (synchronous), kept for honesty
    times.push(performance.now() - t0);
    tf.dispose([x, dy, out]);
  }
  return times;
}

async function main(): Promise<void> {
  const reps = arg("--reps", 15);
  const cpuReps = arg("--cpu-reps", 3);
  const withCpu = !process.argv.includes("--no-cpu");
  const strategies = process.argv.includes("--strategies");
  registerWasmTrainingKernels();
  tf.env().set("PROD", true);
  const fmt = (ms: number) => `${ms.toFixed(1).padStart(8)} ms`;
  console.log(`Conv2DBackpropFilter, median of ${reps} (wasm) / ${cpuReps} (cpu) runs, valid padding, stride 1`);
  for (const c of CASES) {
    await tf.setBackend("wasm");
    await tf.ready();
    time(c, 2); // warm-up
    const wasm = median(time(c, reps));
    let line = `${c.name}   wasm ${fmt(wasm)}`;
    if (strategies) {
      for (const s of ["gemm", "conv"] as const) line += `   [${s} ${fmt(median(time(c, reps, s)))}]`;
    }
    if (withCpu) {
      await tf.setBackend("cpu");
      const cpu = median(time(c, cpuReps));
      line += `   cpu ${fmt(cpu)}   speed-up x${(cpu / wasm).toFixed(0)}`;
    }
    console.log(line);
  }
}

await main();
