// Multithreaded wasm in Node (NNETC_WASM_THREADS, runtime/wasm_threads_node.ts): the threaded-SIMD build starts,
// tfjs reports the threads asked for (getThreadsCount, which tfjs's own start-up caps at half the logical cores:
// 1 on a 2-vCPU machine), computes what the one-thread build computes (a conv2d/dense forward and its gradients),
// the process ends by itself (the pthread workers do not hold it), and a bad value is refused with a message.
// Each case is a fresh Node process: the backend is chosen once per process.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ROOT, runNode } from "../helpers.js";

/** A conv2d + dense forward and gradients on seeded inputs, on the wasm backend; prints threads, reason and values. */
const PROBE = `
import * as tf from "@tensorflow/tfjs-core";
import { initBackend, wasmThreadCount } from "./dist/runtime/backend.js";
const wasm = await import("@tensorflow/tfjs-backend-wasm");
const choice = await initBackend("wasm");
let s = 5;
const r = (n) => Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5);
const x = tf.tensor4d(r(8 * 20 * 20 * 3), [8, 20, 20, 3]);
const k = tf.variable(tf.tensor4d(r(3 * 3 * 3 * 16), [3, 3, 3, 16]));
const d = tf.variable(tf.tensor2d(r(18 * 18 * 16 * 10), [18 * 18 * 16, 10]));
const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tf.matMul(tf.reshape(tf.relu(tf.conv2d(x, k, 1, "valid")), [8, -1]), d))));
const sum = (t) => Array.from(t.dataSync()).reduce((a, b) => a + b, 0);
console.log(JSON.stringify({ threads: wasm.getThreadsCount(), ours: wasmThreadCount(), reason: choice.reason, value: value.dataSync()[0], gk: sum(grads[k.name]), gd: sum(grads[d.name]), first: Array.from(grads[k.name].dataSync().slice(0, 4)) }));
`;

async function probe(threads: string | undefined): Promise<{ code: number | null; out: Record<string, unknown> | null; stderr: string; ms: number }> {
  const env = { ...process.env };
  if (threads === undefined) delete env.NNETC_WASM_THREADS;
  else env.NNETC_WASM_THREADS = threads;
  const r = await runNode(["--input-type=module", "-e", PROBE], { cwd: ROOT, env, timeoutMs: 90_000 });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  return { code: r.code, out: line ? (JSON.parse(line) as Record<string, unknown>) : null, stderr: r.stderr, ms: r.ms };
}

test("NNETC_WASM_THREADS=2: tfjs reports 2 threads, the results are the one-thread build's, and the process ends by itself", async () => {
  const [one, two] = [await probe(undefined), await probe("2")];
  assert.is(one.code, 0, one.stderr);
  assert.is(two.code, 0, `${two.stderr} (exit ${two.code} after ${Math.round(two.ms)} ms: a pthread worker holding the process is killed at the timeout)`);
  assert.is(one.out!.threads, 1);
  assert.match(String(one.out!.reason), /one thread/);
  assert.is(two.out!.threads, 2, "tf.wasm getThreadsCount()");
  assert.is(two.out!.ours, 2);
  assert.match(String(two.out!.reason), /WebAssembly with SIMD, 2 threads/);
  for (const key of ["value", "gk", "gd"]) {
    const [a, b] = [Number(one.out![key]), Number(two.out![key])];
    assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(a)), `${key}: one thread ${a}, two threads ${b}`);
  }
  assert.equal(two.out!.first, one.out!.first, "the first kernel gradients, exactly");
});

test("NNETC_WASM_THREADS: a value that is not 1–8 or auto is refused, naming the variable", async () => {
  for (const bad of ["0", "9", "two", "-1"]) {
    const r = await probe(bad);
    assert.is.not(r.code, 0, bad);
    assert.match(r.stderr, new RegExp(`NNETC_WASM_THREADS must be a number of threads from 1 to 8, or "auto" \\(one per core\\), not "${bad}"`));
  }
  const auto = await probe("auto");
  assert.is(auto.code, 0, auto.stderr);
  assert.ok(Number(auto.out!.threads) >= 1);
});

test.run();
