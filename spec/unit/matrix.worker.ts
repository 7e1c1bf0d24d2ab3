// The differential test matrix's worker (spec/unit/matrix.test.ts): every model of one .nnet file, in a
// process of its own (big models each get a fresh wasm heap), × every -O level × every target of TARGETS,
// each compared with the -O0 interpreter on the same input and the same non-trivial weights (seeded
// initialisation, then batchnorm moving statistics, gammas, betas and every bias drawn away from 0 and 1,
// so that folding bugs show). Weights are made once per model. Prints one JSON line (a Cell) per cell.
// Run: node matrix.worker.js FILE.nnet [--gate=MODEL@TARGET…] (gated cells are not run)
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import * as ort from "onnxruntime-node";
import { emitCode } from "../../compiler/emit/index.js";
import { kerasModel } from "../../compiler/emit/keras.js";
import { exportOnnx } from "../../compiler/emit/onnx/index.js";
import { emitTorch } from "../../compiler/emit/torch.js";
import { compile, type CompileResult } from "../../compiler/index.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { optimize, PASSES, type OptLevel } from "../../compiler/passes/index.js";
import { decodeSafetensors, encodeSafetensors, type HostTensor } from "../../runtime/checkpoint/index.js";
import { initBackend } from "../../runtime/backend.js";
import { Rng } from "../../runtime/data/rng.js";
import { deriveWeights, disposeDerived } from "../../runtime/derive.js";
import * as nn from "../../runtime/node.js";
import { run } from "../../runtime/interpret.js";
import { layersModelFiles } from "../../runtime/layers_export.js";
import { finalWeights, modelHostWeights } from "../../runtime/onnx.js";
import { TorchProcess } from "../../runtime/torch/process.js";
import { toTorchStateDict } from "../../runtime/torch_layout.js";
import { memoryHost, ROOT } from "../helpers.js";
import { batchFor, maxAbsDiff } from "./onnx_equiv.worker.js";

/**
 * max |Δ| ≤ TOLERANCE · max |y_ref|, per output: relative to the output's own size, so that a model whose
 * outputs are small (a deep stack at initialisation) is held to the same standard. An output that is zero
 * everywhere checks nothing and fails its cell.
 */
export const TOLERANCE = 1e-4;

/** The pass manager's levels: 0 and every level a pass starts at. */
export const LEVELS: OptLevel[] = [...new Set<OptLevel>([0, ...PASSES.map((p) => p.level)])].sort((a, b) => a - b);

/** One cell's result, as the worker prints it. */
export interface Cell {
  file: string;
  model: string;
  level: OptLevel;
  target: string;
  /** checked: compared (ok says whether within tolerance); inexpressible: the target says why it cannot; error: it threw. */
  status: "checked" | "inexpressible" | "error";
  ok?: boolean;
  /** The output with the largest |Δ| / scale, its max |Δ| and its scale max |y_ref| (the output's own size). */
  output?: string;
  diff?: number | null;
  scale?: number;
  reason?: string;
  error?: string;
  ms: number;
}

/** What a target gets for one (model, level): everything is made once per model or per level. */
export interface CellInput {
  res: CompileResult;
  file: string;
  /** The checked model (-O0) and the same model optimized for inference at `level`. */
  checked: IRModel;
  model: IRModel;
  level: OptLevel;
  /** The checked model's weights: on the host, and as tfjs variables (shared by every cell). */
  host: Record<string, HostTensor>;
  vars: Map<string, tf.Variable>;
  batch: ReturnType<typeof batchFor>;
  inputs: Record<string, tf.Tensor>;
}

/** A target's answer: the model's outputs (in model.outputs order), or why it cannot express the model. */
export type Outcome = { outputs: ArrayLike<number>[] } | { inexpressible: string };

export interface Target {
  name: string;
  /** Run one (model, level). A numbered diagnostic is "cannot express"; anything thrown fails the cell. */
  run(c: CellInput): Promise<Outcome>;
}

/** "NN6020: reason" for a target's refusal. */
const refusal = (d: { code: string; message: string }[]): Outcome => ({ inexpressible: d.map((x) => `${x.code}: ${x.message}`).join("; ") });

/** The tfjs outputs of a forward pass as host arrays (in m.outputs order); the tensors are freed. */
function hostOutputs(m: IRModel, outputs: Record<string, tf.Tensor>): Float32Array[] {
  const list = m.outputs.map((o) => outputs[o.name]!);
  const data = list.map((t) => t.dataSync() as Float32Array);
  tf.dispose(list);
  return data;
}

// ── the targets ─────────────────────────────────────────────────────────────────────────────────────

/** runtime/interpret.ts on the optimized IR; derived (folded) weights computed from the checked model's. */
const interpreter: Target = {
  name: "interpreter",
  async run(c) {
    const derived = deriveWeights(c.model.params.filter((p) => p.derive), c.vars);
    try {
      const weights = new Map([...c.vars, ...derived]);
      return { outputs: hostOutputs(c.model, tf.tidy(() => run(c.model, weights, c.inputs, { training: false }).outputs)) };
    } finally {
      disposeDerived(derived, c.vars);
    }
  },
};

/** Emitted modules, one per (file, level), written inside the package so that `nnetc/runtime` resolves to this build. */
const EMITTED = path.join(ROOT, "dist/tmp-matrix", String(process.pid));
const emitted = new Map<string, Promise<Record<string, unknown>>>();

function emittedModule(res: CompileResult, file: string, level: OptLevel): Promise<Record<string, unknown>> {
  const key = `${file}\0${level}`;
  let mod = emitted.get(key);
  if (!mod) {
    const out = path.join(EMITTED, `${path.basename(file, ".nnet")}.O${level}.mjs`);
    mkdirSync(EMITTED, { recursive: true });
    writeFileSync(out, emitCode(res, { file, outFile: out, flavor: "js", level }));
    emitted.set(key, (mod = import(pathToFileURL(out).href) as Promise<Record<string, unknown>>));
  }
  return mod;
}

/** compiler/emit (js flavour at the level) → import → nn.predict, which derives its own folded weights. */
const emittedTarget: Target = {
  name: "emitted",
  async run(c) {
    const mod = await emittedModule(c.res, c.file, c.level);
    const api = Object.values(mod).find((x): x is { def: nn.ModelDef<unknown, unknown> } => !!x && typeof x === "object" && "def" in x && (x as { def: { name?: string } }).def.name === c.checked.name);
    if (!api) throw new Error(`the emitted module has no API object for ${c.checked.name}`);
    // A model on the matrix's weights (no copy): predict() runs the inference forward pass when there is one.
    const model: nn.Model<unknown, unknown> = { def: api.def, weights: c.vars, backend: tf.getBackend(), seed: null, vocab: undefined, trainer: null, rng: [] };
    try {
      return { outputs: hostOutputs(c.model, nn.predict(model, c.inputs) as Record<string, tf.Tensor>) };
    } finally {
      nn.weightsChanged(model); // frees what predict() derived
    }
  },
};

/** compiler/emit/onnx at the level (weights from runtime/onnx.ts, derived ones computed) in onnxruntime-node. */
const onnx: Target = {
  name: "onnx",
  async run(c) {
    const { weights } = await finalWeights(c.model, c.host);
    const r = exportOnnx(c.model, weights, { producerVersion: "matrix" });
    if (!r.bytes) return refusal(r.diagnostics);
    const session = await ort.InferenceSession.create(r.bytes);
    try {
      const feeds = Object.fromEntries(c.model.inputs.map((inp, i) => [session.inputNames[i]!, new ort.Tensor(c.batch[inp.name]!.dtype, c.batch[inp.name]!.data, c.batch[inp.name]!.shape)]));
      const got = await session.run(feeds);
      return { outputs: c.model.outputs.map((_, i) => Float64Array.from(got[session.outputNames[i]!]!.data as ArrayLike<number>, Number)) };
    } finally {
      await session.release();
    }
  },
};

/** compiler/emit/keras + runtime/layers_export.ts, loaded by TensorFlow.js's own tf.loadLayersModel. */
const tfjsLayers: Target = {
  name: "tfjs-layers",
  async run(c) {
    // `nnetc compile --target tfjs-layers` exports the checked model: it has no -O.
    if (c.level !== 0) return { inexpressible: "exports the checked (-O0) model only: compile --target tfjs-layers takes no -O" };
    const k = kerasModel(c.checked);
    if (!k.model) return refusal(k.diagnostics);
    const names = k.model.weightNames;
    const files = layersModelFiles(k.model.topology, c.checked.params.filter((p) => p.name in names).map((p) => [names[p.name]!, c.host[p.name]!]), "matrix");
    const json = JSON.parse(files.modelJson) as { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
    const keras = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0]!.weights, weightData: files.shard.buffer as ArrayBuffer }));
    try {
      const y = keras.predict(c.checked.inputs.map((i) => c.inputs[i.name]!)) as tf.Tensor | tf.Tensor[];
      const list = Array.isArray(y) ? y : [y];
      return { outputs: hostOutputs(c.checked, Object.fromEntries(c.checked.outputs.map((o, i) => [o.name, list[i]!]))) };
    } finally {
      keras.dispose();
    }
  },
};

/** The torch engine's process, one per worker, started on first use. */
let torchProcess: Promise<TorchProcess> | null = null;
const TORCH_DIR = path.join(ROOT, "dist/tmp-matrix", `torch-${process.pid}`);

/**
 * compiler/emit/torch at the level (the IR optimized for training: one forward, run in eval mode) in the
 * torch engine's process (runtime/torch/engine.py), weights converted by runtime/torch_layout.ts.
 */
const torchTarget: Target = {
  name: "torch",
  async run(c) {
    const trainIR = optimize({ ...c.res.module, models: [c.checked] }, { level: c.level, mode: "train" }).module;
    const r = emitTorch(trainIR, { displayPath: c.file, sourceText: () => undefined, version: "matrix", level: c.level });
    if (!r.text) return refusal(r.diagnostics);
    mkdirSync(TORCH_DIR, { recursive: true });
    const stem = path.join(TORCH_DIR, `${c.checked.name}.O${c.level}`);
    writeFileSync(`${stem}.py`, r.text);
    const sd: Record<string, HostTensor> = {};
    const f32 = Object.fromEntries(Object.entries(c.host).map(([k, v]) => [k, { shape: v.shape, data: v.data as Float32Array }]));
    for (const [k, v] of toTorchStateDict(trainIR.models[0]!.params, f32)) sd[k] = { dtype: "F32", shape: v.shape, data: v.data };
    writeFileSync(`${stem}.weights.safetensors`, encodeSafetensors(sd));
    writeFileSync(`${stem}.inputs.safetensors`, encodeSafetensors(Object.fromEntries(Object.entries(c.batch).map(([k, v]) => [k, { dtype: v.dtype === "int32" ? "I32" : "F32", shape: v.shape, data: v.data }]))));
    const engine = await (torchProcess ??= TorchProcess.start());
    await engine.request("load", { model: stem, path: `${stem}.py`, class: r.classes[c.checked.name], weights: `${stem}.weights.safetensors` });
    try {
      await engine.request("forward", { model: stem, inputs: `${stem}.inputs.safetensors`, outputs: `${stem}.outputs.safetensors`, training: false });
    } finally {
      await engine.request("unload", { model: stem });
    }
    const got = decodeSafetensors(new Uint8Array(readFileSync(`${stem}.outputs.safetensors`))).tensors;
    return { outputs: c.checked.outputs.map((o) => got[o.name]?.data as ArrayLike<number>) };
  },
};

/**
 * THE targets of the matrix. A target enters by being listed here: every (model, level) cell runs it.
 * `run` returns the outputs, or `{ inexpressible }` with the numbered diagnostic (or the fact) that says
 * why the target cannot express the model; a cell it claims to express must equal the -O0 interpreter,
 * and a throw (not a diagnostic) fails.
 */
export const TARGETS: readonly Target[] = [
  interpreter,
  emittedTarget,
  onnx,
  tfjsLayers,
  torchTarget,
];

// ── weights and the cells of one model ──────────────────────────────────────────────────────────────

/**
 * The checked model's weights: the seeded initialisation (as create({ seed }) makes it), then, from a seeded
 * Rng, batchnorm moving_mean ~ U(-0.5, 0.5), moving_variance ~ U(0.5, 1.5), every gamma ~ U(0.5, 1.5),
 * every beta and bias ~ U(-0.2, 0.2) (batchnorm and layernorm alike), every LoRA lora_b too (it starts at zero): fresh weights (0, 1, no bias)
 * hide folding bugs.
 */
export function nontrivialHost(m: IRModel, seed: number): Record<string, HostTensor> {
  const { host } = modelHostWeights(m, { seed });
  const rng = new Rng(seed + 1);
  const draw: [RegExp, number, number][] = [[/^moving_mean$/, -0.5, 0.5], [/^(moving_variance|gamma)$/, 0.5, 1.5], [/(^|\/)(beta|bias)$/, -0.2, 0.2], [/(^|\/)lora_b$/, -0.2, 0.2]];
  for (const p of m.params) {
    const d = draw.find(([re]) => re.test(p.role));
    if (!d) continue;
    const data = host[p.name]!.data as Float32Array;
    for (let i = 0; i < data.length; i++) data[i] = d[1] + (d[2] - d[1]) * rng.next();
  }
  return host;
}

async function cells(res: CompileResult, file: string, checked: IRModel, gates: ReadonlySet<string>, emit: (c: Cell) => void): Promise<void> {
  const host = nontrivialHost(checked, 7);
  const vars = new Map(checked.params.map((p) => [p.name, tf.tidy(() => tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape, "float32"), false))]));
  const rng = new Rng(11);
  const batch = batchFor(checked, () => rng.next());
  const inputs = Object.fromEntries(Object.entries(batch).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.dtype)]));
  // The reference: the -O0 interpreter, inference mode.
  const ref = hostOutputs(checked, tf.tidy(() => run(checked, vars, inputs, { training: false }).outputs));
  const scale = ref.map((y) => y.reduce((s, v) => Math.max(s, Math.abs(v)), 0));
  for (const level of LEVELS) {
    const model = level === 0 ? checked : optimize({ ...res.module, models: [checked] }, { level, mode: "infer" }).module.models[0]!;
    for (const t of TARGETS) {
      if (gates.has(`${checked.name}@${t.name}`)) continue;
      const t0 = performance.now();
      const cell = { file, model: checked.name, level, target: t.name };
      try {
        const r = await t.run({ res, file, checked, model, level, host, vars, batch, inputs });
        const ms = Math.round(performance.now() - t0);
        if ("inexpressible" in r) {
          emit({ ...cell, status: "inexpressible", reason: r.inexpressible, ms });
          continue;
        }
        // The output whose |Δ| is largest relative to its scale.
        let worst = { output: "", diff: 0, scale: 1, ratio: -1 };
        checked.outputs.forEach((o, i) => {
          const diff = maxAbsDiff(r.outputs[i] ?? [], ref[i]!);
          const ratio = scale[i]! > 0 ? diff / scale[i]! : Infinity;
          if (ratio > worst.ratio) worst = { output: o.name, diff, scale: scale[i]!, ratio };
        });
        emit({ ...cell, status: "checked", ok: worst.ratio <= TOLERANCE, output: worst.output, diff: Number.isFinite(worst.diff) ? worst.diff : null, scale: worst.scale, ms });
      } catch (e) {
        emit({ ...cell, status: "error", error: String((e as Error).stack ?? e), ms: Math.round(performance.now() - t0) });
      }
    }
  }
  tf.dispose(Object.values(inputs));
  for (const v of vars.values()) v.dispose();
}

const [file, ...flags] = process.argv.slice(2);
if (file && import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await initBackend("wasm");
  const res = compile(file, readFileSync(path.join(ROOT, file), "utf8"), memoryHost());
  const print = (c: Cell) => process.stdout.write(JSON.stringify(c) + "\n");
  try {
    const gates = new Set(flags.filter((f) => f.startsWith("--gate=")).map((f) => f.slice("--gate=".length)));
    for (const m of res.module.models) await cells(res, file, m, gates, print);
  } finally {
    rmSync(EMITTED, { recursive: true, force: true });
    rmSync(TORCH_DIR, { recursive: true, force: true });
    const engine = torchProcess as Promise<TorchProcess> | null;
    if (engine) await (await engine).close();
  }
}
