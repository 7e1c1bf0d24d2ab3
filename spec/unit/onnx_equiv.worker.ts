// ONNX export against the interpreter, in a process of its own (big models each get a fresh heap): for each
// zoo file given, export the inference model (-O level) with seeded weights (batchnorm statistics moved
// away from 0 and 1, as after training), run it in onnxruntime-node on a random batch of 2 and the
// interpreter on the same weights, and print one JSON line with the largest difference. The .onnx files
// are left in OUT for the ONNX checker.
// Run by spec/unit/onnx.test.ts: node onnx_equiv.worker.js OUT LEVEL:FILE.nnet… (LEVEL 0, 1 or 2)
import * as tf from "@tensorflow/tfjs-core";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import * as ort from "onnxruntime-node";
import { exportOnnx } from "../../compiler/emit/onnx/index.js";
import { mainModel } from "../../compiler/emit/index.js";
import { compile } from "../../compiler/index.js";
import type { IRModel, IRModule } from "../../compiler/ir/types.js";
import { optimize } from "../../compiler/passes/index.js";
import type { HostTensor } from "../../runtime/checkpoint/index.js";
import { initBackend } from "../../runtime/backend.js";
import { Rng } from "../../runtime/data/rng.js";
import { initialValues } from "../../runtime/init.js";
import { run } from "../../runtime/interpret.js";
import { finalWeights } from "../../runtime/onnx.js";
import { memoryHost, ROOT } from "../helpers.js";

export interface EquivLine {
  file: string;
  onnx: string;
  maxDiff: number;
  nodes: number;
  transposes: number;
  bytes: number;
  ms: number;
  error?: string;
}

/** Random inputs of batch 2 (1 for big images): floats in [0, 1), token ids below the smallest vocabulary reading them; other symbolic sizes 8. */
export function batchFor(m: IRModel, rand: () => number): Record<string, { dtype: "float32" | "int32"; shape: number[]; data: Float32Array | Int32Array }> {
  const out: Record<string, { dtype: "float32" | "int32"; shape: number[]; data: Float32Array | Int32Array }> = {};
  for (const inp of m.inputs) {
    // Batch 2; 1 for 224×224 images (VGG16, ResNet-50), to keep the interpreter's part of the test short.
    const perSample = inp.shape.slice(1).reduce<number>((x, d) => x * (typeof d === "number" ? d : 8), 1);
    const shape = inp.shape.map((d, i) => (typeof d === "number" ? d : i === 0 ? (perSample > 100_000 ? 1 : 2) : Math.min(8, m.dims.find((x) => x.name === d)?.max ?? 8)));
    const n = shape.reduce((a, b) => a * b, 1);
    const masks = m.nodes.some((x) => x.op === "attention" && x.attrs.mask && x.inputs[x.inputs.length - 1] === inp.node);
    if (masks) {
      // A padding mask: each row's first k ≥ 1 positions are tokens (1), the rest padding (0).
      const [rows, steps] = [shape[0]!, n / shape[0]!];
      const data = new Int32Array(n);
      for (let r = 0; r < rows; r++) for (let t = 0, k = 1 + Math.floor(rand() * steps); t < k; t++) data[r * steps + t] = 1;
      out[inp.name] = { dtype: inp.dtype.startsWith("i") ? "int32" : "float32", shape, data: inp.dtype.startsWith("i") ? data : Float32Array.from(data) };
    } else if (inp.dtype.startsWith("i")) {
      const vocab = Math.min(...m.nodes.filter((x) => x.op === "embedding" && x.inputs.includes(inp.node)).map((x) => x.attrs.vocab as number), 50);
      out[inp.name] = { dtype: "int32", shape, data: Int32Array.from({ length: n }, () => Math.floor(rand() * vocab)) };
    } else out[inp.name] = { dtype: "float32", shape, data: Float32Array.from({ length: n }, () => rand()) };
  }
  return out;
}

/** Seeded initial weights of a model, with batchnorm statistics and scales in [0.5, 1.5). */
export function seededHost(m: IRModel, seed: number): Record<string, HostTensor> {
  // A plain LCG, not Rng: GPT-2's 124 M values come out in a second.
  let s = seed >>> 0;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const host: Record<string, HostTensor> = {};
  for (const p of m.params) {
    const data = initialValues(p, rand);
    if (/^(moving_mean|moving_variance|gamma|beta)$/.test(p.role)) for (let i = 0; i < data.length; i++) data[i] = 0.5 + rand();
    host[p.name] = { dtype: "F32", shape: [...p.shape], data };
  }
  return host;
}

/** A zoo file name (models/F) or a path from the repository root. */
export function load(file: string): IRModule {
  const rel = file.includes("/") ? file : path.join("models", file);
  const res = compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), memoryHost());
  if (res.diagnostics.some((d) => d.severity === "error")) throw new Error(`${file} does not compile`);
  return res.module;
}

/** Largest |a − b| over two flat arrays of one length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return Number.isNaN(d) ? Infinity : d;
}

/** A zoo file's main model, or every model of another file (FILE#MODEL in the results). */
function targets(file: string): { label: string; module: IRModule; model: IRModel }[] {
  const mod = load(file);
  if (!file.includes("/")) return [{ label: file, module: mod, model: mainModel(mod)! }];
  return mod.models.map((m) => ({ label: `${file}#${m.name}`, module: mod, model: m }));
}

async function one(file: string, mod: IRModule, m0: IRModel, outDir: string, level: 0 | 1 | 2): Promise<EquivLine> {
  const t0 = performance.now();
  const m = optimize({ ...mod, models: [m0] }, { level, mode: "infer" }).module.models[0]!;
  const { weights } = await finalWeights(m, seededHost(m0, 7));
  const r = exportOnnx(m, weights, { producerVersion: "test" });
  if (!r.bytes) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  const onnx = path.join(outDir, `${file.replace(/\.nnet$/, "").replace(/[^A-Za-z0-9_]+/g, "_")}.O${level}.onnx`);
  writeFileSync(onnx, r.bytes);
  const rng = new Rng(11);
  const batch = batchFor(m, () => rng.next());
  const session = await ort.InferenceSession.create(r.bytes);
  const feeds = Object.fromEntries(m.inputs.map((inp, i) => [session.inputNames[i]!, new ort.Tensor(batch[inp.name]!.dtype, batch[inp.name]!.data, batch[inp.name]!.shape)]));
  const got = await session.run(feeds);
  await session.release();
  const tw = new Map([...weights].map(([k, w]) => [k, tf.variable(tf.tensor("data" in w ? w.data : new Float32Array(0), [...w.shape]), false)]));
  const inputs = Object.fromEntries(Object.entries(batch).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.dtype)]));
  const want = tf.tidy(() => Object.values(run(m, tw, inputs, { training: false }).outputs).map((t) => t.dataSync() as Float32Array));
  for (const v of tw.values()) v.dispose();
  for (const t of Object.values(inputs)) t.dispose();
  let maxDiff = 0;
  m.outputs.forEach((_, i) => (maxDiff = Math.max(maxDiff, maxAbsDiff(got[session.outputNames[i]!]!.data as Float32Array, want[i]!))));
  return { file, onnx, maxDiff, nodes: r.stats.nodes, transposes: r.stats.transposes, bytes: r.bytes.length, ms: Math.round(performance.now() - t0) };
}

const [outDir, ...specs] = process.argv.slice(2);
if (outDir && import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await initBackend(process.env.BACKEND ?? "wasm");
  for (const spec of specs) {
    const [level, file] = spec.split(":") as [string, string];
    for (const { label: f, module, model } of targets(file)) {
      let line: EquivLine;
      try {
        line = await one(f, module, model, outDir, Number(level) as 0 | 1 | 2);
      } catch (e) {
        line = { file: f, onnx: "", maxDiff: Infinity, nodes: 0, transposes: 0, bytes: 0, ms: 0, error: (e as Error).stack ?? String(e) };
      }
      process.stdout.write(JSON.stringify({ ...line, file: `${f} -O${level}`, maxDiff: Number.isFinite(line.maxDiff) ? line.maxDiff : null }) + "\n");
    }
  }
}
