// The runtime's commands (train, eval, predict) as the CLI calls them: options in, printed results and
// an exit code out. Loaded lazily by the CLI, so commands that need no tensors never load TensorFlow.js.
import { errorText, PluginError } from "../compiler/plugin/api.js";
import * as tf from "@tensorflow/tfjs-core";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import type { IRModel, IRModule, IRPlan } from "../compiler/ir/types.js";
import { deriveWeights } from "./derive.js";
import { initBackend, BackendError, memoryLimit, type BackendChoice } from "./backend.js";
import { releaseWebgpu } from "./webgpu.js";
import { estimateTrainingMemory, fmtBytes, fmtEstimate, largestBatch } from "../compiler/memory.js";
import { CheckpointError, encodeSafetensors, writeFileAtomic, type HostTensor } from "./checkpoint/index.js";
import { savedMetadata, transformWeights, weightKind, type Transform } from "./export.js";
import type { QuantKind } from "./quantize.js";
import { DataError, loadDataset } from "./data/index.js";
import { packVocabularies } from "./data/tokenize.js";
import { generateIds, interpreted, run } from "./interpret.js";
import { checkPromptIds, decoderParts, encodePrompt, encodeSource, startIds, stopIds } from "./generate.js";
import { generationVocabulary, readVocabularyFile } from "./vocab_file.js";
import { loadTrained } from "./weights.js";
import { exportWeights, modelHostWeights } from "./onnx.js";
import { hostWeight } from "./steps.js";
import { runError } from "./run_diagnostics.js";
import { exportOnnx } from "../compiler/emit/onnx/index.js";
import { LOSSES } from "../compiler/plan/tables.js";
import type { LabelRange } from "./data/index.js";
import { classOutputs, cutModel, describeRow, gridPng, gridSigmoid, isImageShape, predictionRow, randomInputs, topClasses, type OutputValues } from "./predict.js";
import type { Diagnostic, DiagnosticKey } from "../compiler/diagnostics.js";
import { batchTensors, checkFiniteResult, DivergedError, evaluate, fingerprint, InterruptedError, RunError, train, trainedWeights } from "./train.js";
import { layersModelFiles, writeLayersModel } from "./layers_export.js";
import type { InitSpec } from "./pretrained.js";
import { encodeTorchStateDict } from "./torch_layout.js";
import type { TorchRunOptions } from "./torch/engine.js";
import { TENSORBOARD_DIR } from "./run_folder.js";
import { tensorboardDirProblem } from "./tensorboard.js";

/** The torch engine's module, loaded only for --engine torch. */
const torchEngine = () => import("./torch/engine.js");
/** The ONNX Runtime engine's module (and onnxruntime-node), loaded only for --engine onnx. */
const onnxEngine = () => import("./onnx_engine.js");

/** eval and predict on ONNX Runtime: `fast` (the inference model) exported with trained weights, for the length of `f`. */
async function withOnnx<T>(o: RunCommandOptions, m: IRModel, fast: IRModel, trained: { weights: Record<string, HostTensor>; from: string }, f: (e: import("./onnx_engine.js").OnnxSession) => Promise<T>): Promise<T> {
  const { startOnnx, loadOrt } = await onnxEngine();
  const e = await startOnnx(m, fast, trained, { producerVersion: o.onnx!.version });
  const ort = await loadOrt();
  const int8 = e.stats.int8 ? `, ${e.stats.int8} int8 weights by DequantizeLinear` : "";
  (o.err ?? stderr)(engineLine(o, e, `onnxruntime-node ${ort.env.versions.common}, CPU, -O${o.onnx!.level}: ${e.stats.nodes} ONNX nodes${int8}`) + "\n");
  try {
    return await f(e);
  } finally {
    await e.dispose();
  }
}

function engineLine(o: RunCommandOptions, e: { name: string }, detail: string): string {
  return o.json ? JSON.stringify({ event: "engine", engine: e.name, detail }) : `engine: ${e.name} (${detail})`;
}

/** eval and predict on the torch engine: model `name` with trained weights, for the length of `f`. */
async function withTorch<T>(o: RunCommandOptions, torch: TorchRunOptions, name: string, trained: { weights: Record<string, HostTensor>; from: string }, f: (e: import("./torch/engine.js").TorchEngine) => Promise<T>): Promise<T> {
  const { startTorch } = await torchEngine();
  const tm = (o.trainModule ?? o.module).models.find((x) => x.name === name)!;
  const e = await startTorch(tm, torch, Object.fromEntries(tm.params.map((p) => [p.name, hostWeight(trained.weights, p.name, p.shape, trained.from)])));
  try {
    return await f(e);
  } finally {
    await e.dispose();
  }
}

export interface RunCommandOptions {
  file: string;
  module: IRModule;
  /** eval and predict: the module optimized for inference (-O1/-O2); its weights derive from `module`'s. */
  inference?: IRModule;
  model?: string;
  backend?: string;
  dataDir?: string;
  json?: boolean;
  out?: (s: string) => void;
  err?: (s: string) => void;
  /** --engine torch: where and how (absent: TensorFlow.js). */
  torch?: TorchRunOptions;
  /** --engine torch, eval and predict: the module optimized for training at the -O level (what the engine runs). */
  trainModule?: IRModule;
  /** --engine onnx (eval and predict; train refuses it, NN7020): `inference` exported to ONNX in memory, run by onnxruntime-node. */
  onnx?: { level: number; version: string };
}

const stdout = (s: string) => process.stdout.write(s);
const stderr = (s: string) => process.stderr.write(s);

/**
 * Map the runtime's errors to exit codes: user-fixable problems 2, divergence 1, Ctrl-C 130. At the end the
 * webgpu backend's device, if one was started, is destroyed (Dawn must not keep the process alive).
 */
async function guarded(o: RunCommandOptions, f: () => Promise<number>): Promise<number> {
  try {
    return await guardedRun(o, f);
  } finally {
    releaseWebgpu();
  }
}

async function guardedRun(o: RunCommandOptions, f: () => Promise<number>): Promise<number> {
  const err = o.err ?? stderr;
  try {
    return await f();
  } catch (e) {
    if (e instanceof InterruptedError) {
      err(`nnetc: ${e.message}\n`);
      return 130;
    }
    if (e instanceof DivergedError) {
      err(`nnetc: ${e.message}\n`);
      return 1;
    }
    if (e instanceof PluginError) {
      // A plugin's function threw (its op, loss, metric, source, step or callback): NN8005 names the plugin, never NN9001.
      err(`${runError("pluginThrew", { plugin: e.plugin, file: e.file, what: e.what, message: errorText(e.error) }).report()}\n`);
      return 2;
    }
    if (e instanceof RunError) {
      if (e.numbered && !e.diagnostic) e = runError(e.numbered.key as DiagnosticKey, e.numbered.args as never);
      err(`${(e as RunError).report()}\n`);
      return 2;
    }
    if (e instanceof DataError && e.code) {
      // NN5010–NN5013: the data layer's particulars, rendered with the table's code and hint.
      err(`${runError(e.code, { detail: e.message }).report()}\n`);
      return 2;
    }
    if (e instanceof BackendError || e instanceof DataError || e instanceof CheckpointError) {
      err(`nnetc: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

/** The torch engine's options and Python checked first (nothing is read before a refusal), then TensorFlow.js's backend. */
async function backend(o: RunCommandOptions): Promise<BackendChoice> {
  if (o.torch) (await torchEngine()).checkTorchOptions(o.torch);
  const b = await initBackend(o.backend);
  const line = o.json ? JSON.stringify({ event: "backend", backend: b.name, reason: b.reason }) : `backend: ${b.name} (${b.reason})`;
  (o.json ? o.out ?? stdout : o.err ?? stderr)(line + "\n");
  return b;
}

/**
 * NN7012 before anything is allocated: the plan's training step estimated (compiler/memory.ts) at the batch it
 * will run, against the backend's memory. The torch engine holds its tensors itself and is not checked.
 */
function checkTrainingMemory(o: TrainCommandOptions, plan: IRPlan, b: BackendChoice): void {
  const model = o.module.models.find((m) => m.name === plan.model)!;
  const e = estimateTrainingMemory(model, plan, o.module.datasets, o.batch);
  const limit = memoryLimit(b.name);
  if (e.total <= limit.bytes) return;
  throw runError("trainingMemory", { model: model.name, batch: e.batch, estimate: fmtEstimate(e), total: fmtBytes(e.total), backend: b.name, limit: fmtBytes(limit.bytes), limitWhat: limit.what, fits: Math.min(largestBatch(e, limit.bytes), e.batch - 1) }, plan.span);
}

export interface TrainCommandOptions extends RunCommandOptions {
  /** --init-from FILE [--map MAP.json] [--layout nnetc|torch|huggingface] [--allow-missing] [--allow-extra]: replaces the plan's init. */
  init?: { from: string; map?: string; layout?: string; allowMissing?: boolean; allowExtra?: boolean };
  epochs?: number;
  batch?: number;
  outDir?: string;
  resume?: boolean;
  /** --force: a new run in a folder that holds one (its files moved into OUT/replaced-TIME/). */
  force?: boolean;
  seed?: number;
  /** --tensorboard DIR: where TensorBoard's event files go (default OUT/tensorboard); null: --no-tensorboard. */
  tensorboard?: string | null;
}

/** A path or name as a shell word (quoted when it holds anything beyond [A-Za-z0-9_./:=@%+-]). */
const shellWord = (s: string) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** What to run after `nnetc train FILE` into `outDir`: eval, predict, plot and compile, with the actual paths. */
export function nextCommands(file: string, outDir: string, model?: string): string[] {
  const f = shellWord(file);
  const w = shellWord(outDir);
  const m = model ? ` --model ${shellWord(model)}` : "";
  return [`nnetc eval ${f}${m} --weights ${w}`, `nnetc predict ${f}${m} --weights ${w} --input test:4`, `nnetc plot ${w}`, `nnetc compile ${f} --target onnx --weights ${w} -o ${shellWord(path.join(outDir, "model.onnx"))}`];
}

/**
 * The class-id fields of `plan` (NN5010, checked when the splits are built): each integer dataset field that is
 * the target of a loss over classes (cross_entropy, focal, dice), with its prediction's number of classes (the
 * last dimension of the output, known from the compiled model's shapes) and the loss's `ignore` id. A field that
 * several terms read takes the fewest classes.
 */
export function labelRanges(module: IRModule, plan: IRPlan): Record<string, LabelRange> {
  const model = module.models.find((m) => m.name === plan.model);
  const out: Record<string, LabelRange> = {};
  if (!model) return out;
  for (const t of plan.loss) {
    if (t.targetIsOutput || t.targetValue !== undefined || LOSSES[t.fn]?.target !== "classes") continue;
    const field = module.datasets.flatMap((d) => d.fields).find((f) => f.name === t.target);
    if (!field || !["i8", "i32", "i64"].includes(field.dtype)) continue;
    const node = model.nodes.find((n) => n.id === model.outputs.find((x) => x.name === t.prediction)?.node);
    const classes = node?.shape?.[node.shape.length - 1];
    if (typeof classes !== "number" || (out[t.target] && out[t.target]!.classes <= classes)) continue;
    const ignore = typeof t.args.ignore === "number" ? [t.args.ignore] : [];
    out[t.target] = { classes, ignore, by: `${t.prediction} has ${classes} class${classes === 1 ? "" : "es"}: ${t.fn}(${t.prediction}, ${t.target})` };
  }
  return out;
}

export async function trainCommand(o: TrainCommandOptions): Promise<number> {
  return guarded(o, async () => {
    if (o.onnx) throw runError("onnxNoTraining", { command: "train" });
    const out = o.out ?? stdout;
    const err = o.err ?? stderr;
    const plan = o.model ? o.module.plans.find((p) => p.model === o.model) : o.module.plans[0];
    if (!plan) throw new RunError(o.model ? `no training plan for model "${o.model}" in ${o.file}` : `${o.file} has no training plan: add train Model on dataset { … }`);
    const outDir = o.outDir ?? path.join("runs", plan.model.toLowerCase());
    const tensorboard = o.tensorboard === null ? null : (o.tensorboard ?? path.join(outDir, TENSORBOARD_DIR));
    const tbProblem = tensorboard ? tensorboardDirProblem(tensorboard) : null;
    if (tbProblem) throw runError("tensorboardDir", { dir: tensorboard!, why: tbProblem });
    const chosen = await backend(o);
    if (!o.torch) checkTrainingMemory(o, plan, chosen);
    const stop = { requested: false };
    const onSigint = () => {
      if (stop.requested) process.exit(130);
      stop.requested = true;
      err("\nstopping: saving a checkpoint (Ctrl-C again to quit without saving)\n");
    };
    process.on("SIGINT", onSigint);
    const tty = !o.json && !!process.stderr.isTTY;
    let lastDraw = 0;
    try {
      const irModel = o.module.models.find((m) => m.name === plan.model)!;
      const torch = o.torch;
      const r = await train({
        file: o.file,
        module: o.module,
        net: interpreted(irModel),
        ...(torch?.distributed ? { distributed: { rank: torch.distributed.rank, world: torch.distributed.world } } : {}),
        ...(torch
          ? {
              engine: async (start: Record<string, HostTensor>) => {
                const { startTorch } = await torchEngine();
                const e = await startTorch(irModel, torch, start);
                (o.json ? out : err)(engineLine(o, e, `PyTorch ${e.versions.torch}, device ${torch.device}, ${torch.precision}`) + "\n");
                return e;
              },
            }
          : {}),
        plan: plan.name,
        labels: labelRanges(o.module, plan),
        dataDir: o.dataDir ?? null,
        ...(o.epochs !== undefined ? { epochs: o.epochs } : {}),
        ...(o.batch !== undefined ? { batch: o.batch } : {}),
        outDir,
        resume: !!o.resume,
        ...(o.force ? { force: true } : {}),
        command: ["nnetc", ...process.argv.slice(2)].join(" "),
        ...(o.seed !== undefined ? { seed: o.seed } : {}),
        ...(o.init ? { init: initFromOptions(o.init, plan.init) } : {}),
        tensorboard,
        graph: irModel,
        json: !!o.json,
        log: (line) => {
          if (tty) err("\r\x1b[2K");
          out(line + "\n");
        },
        ...(tty
          ? {
              progress: (line: string) => {
                const now = Date.now();
                if (now - lastDraw < 100) return;
                lastDraw = now;
                err(`\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 120) - 1)}`);
              },
            }
          : {}),
        stop,
      });
      if (tty) err("\r\x1b[2K");
      const next = nextCommands(o.file, r.outDir, o.model);
      if (o.json) out(JSON.stringify({ event: "done", outDir: r.outDir, samplesPerSec: r.samplesPerSec, test: r.test, ...(tensorboard ? { tensorboard } : {}), next }) + "\n");
      else {
        out(`saved ${path.join(r.outDir, "model.safetensors")} (metrics: ${path.join(r.outDir, "metrics.jsonl")}${tensorboard ? `; TensorBoard: tensorboard --logdir ${shellWord(tensorboard)}` : ""})\n`);
        if (r.test) out(`test ${Object.entries(r.test).map(([k, v]) => `${k} ${v.toFixed(4)}`).join("  ")}\n`);
        out(`next: ${next.join("  ·  ")}\n`);
      }
      return 0;
    } finally {
      process.off("SIGINT", onSigint);
    }
  });
}


/** The init of --init-from and its companions; layout and allowances default to the plan's init setting. */
function initFromOptions(o: NonNullable<TrainCommandOptions["init"]>, plan: IRModule["plans"][number]["init"]): InitSpec {
  if (o.layout !== undefined && o.layout !== "nnetc" && o.layout !== "torch" && o.layout !== "huggingface") throw new RunError(`--layout ${o.layout}: use nnetc (names as nnetc writes them), torch (a PyTorch state_dict) or huggingface (a model folder: config.json, model.safetensors)`);
  let map: InitSpec["map"] = plan?.map ?? [];
  if (o.map !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(o.map, "utf8"));
    } catch (e) {
      throw new RunError(`--map ${o.map}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : `not valid JSON (${(e as Error).message})`}; give a JSON object {"name in the file": "layer or layer/role", …}`);
    }
    if (!json || typeof json !== "object" || Array.isArray(json) || !Object.entries(json).every(([k, v]) => k !== "" && typeof v === "string" && v !== "")) {
      throw new RunError(`--map ${o.map}: expected a JSON object of non-empty names, {"name in the file": "layer or layer/role", …}`);
    }
    map = Object.entries(json as Record<string, string>).map(([from, to]) => ({ from, to }));
  }
  return { from: o.from, layout: (o.layout as InitSpec["layout"] | undefined) ?? plan?.layout ?? "nnetc", map, allowMissing: !!o.allowMissing || !!plan?.allowMissing, allowExtra: !!o.allowExtra || !!plan?.allowExtra };
}

/** The model to run for inference: its optimized form when the CLI made one, else the model itself. */
function inferenceModel(o: RunCommandOptions, m: IRModel): IRModel {
  return o.inference?.models.find((x) => x.name === m.name) ?? m;
}

export interface EvalCommandOptions extends RunCommandOptions {
  weights: string;
}

export async function evalCommand(o: EvalCommandOptions): Promise<number> {
  return guarded(o, async () => {
    const out = o.out ?? stdout;
    const plan = o.model ? o.module.plans.find((p) => p.model === o.model) : o.module.plans[0];
    if (!plan) throw new RunError(`${o.file} has no training plan, so there is no test data or metric to evaluate`);
    const m = o.module.models.find((x) => x.name === plan.model)!;
    await backend(o);
    const trained = loadTrained(o.weights, fingerprint(m), "--weights", m);
    const ds = o.module.datasets.find((d) => d.name === plan.dataset)!;
    const data = await loadDataset(ds, { dataDir: o.dataDir ?? null, baseDir: path.dirname(o.file), seed: 0, labels: labelRanges(o.module, plan), ...(trained.vocab ? { vocab: trained.vocab } : {}), ...(trained.classes ? { classes: trained.classes } : {}) });
    const split = data.test ?? data.train;
    let r: { loss: number; metrics: Record<string, number> };
    if (o.torch) {
      const torch = o.torch;
      r = await withTorch(o, torch, plan.model, trained, (e) => {
        (o.err ?? stderr)(engineLine(o, e, `PyTorch ${e.versions.torch}, device ${torch.device}, ${torch.precision}`) + "\n");
        return e.evaluate(plan, split, 256);
      });
    }
    else if (o.onnx) {
      r = await withOnnx(o, m, inferenceModel(o, m), trained, (e) => e.evaluate(plan, split, 256));
    }
    else {
      const weights = trainedWeights(m.params, trained);
      const fast = inferenceModel(o, m);
      r = await evaluate(interpreted(fast), plan, deriveWeights(fast.params, weights), split, 256);
    }
    checkFiniteResult(r, `${data.test ? "the test split" : "the training split"} of dataset "${ds.name}" (${split.size} samples)`, null);
    const res = { split: data.test ? "test" : "train", samples: split.size, loss: r.loss, ...r.metrics };
    out(o.json ? JSON.stringify(res) + "\n" : `${res.split} (${split.size.toLocaleString("en-US")} samples): ${Object.entries(res).filter(([k]) => k !== "split" && k !== "samples").map(([k, v]) => `${k} ${(v as number).toFixed(4)}`).join("  ")}\n`);
    return 0;
  });
}

export interface PredictCommandOptions extends RunCommandOptions {
  weights: string;
  /**
   * What to predict on: a JSON file ({"input": [[…], …]} or a list of {"input": …} objects), "test" / "test:N",
   * "random:N" (N(0, 1) rows for float inputs), or raw files and folders (images, text files) prepared by the
   * dataset's own steps.
   */
  input: string | string[];
  /** Classification outputs: how many of the most likely classes to print (default 3). */
  top?: number;
  /** --input random:N's seed (default 0). */
  seed?: number;
  /** Run the model from this layer or binding on, fed as an input of that name (a VAE's decoder: --from sample_normal). */
  from?: string;
  /** --grid [OUTPUT=]FILE.png: an image-valued output's samples as one PNG grid. */
  grid?: string;
}

export async function predictCommand(o: PredictCommandOptions): Promise<number> {
  return guarded(o, async () => {
    const out = o.out ?? stdout;
    const m = o.model ? o.module.models.find((x) => x.name === o.model) : o.module.models[0];
    if (!m) throw new RunError(`${o.file} has no model${o.model ? ` named "${o.model}"` : ""}`);
    if (o.from !== undefined && o.torch) throw new RunError("--from runs the model from a layer on the tfjs engine; drop --engine torch");
    const args = typeof o.input === "string" ? [o.input] : o.input;
    if (!args.length) throw new RunError("--input: give a JSON file, test:N, random:N, or image/text files or folders");
    const plan = o.module.plans.find((p) => p.model === m.name);
    const ds = plan && o.module.datasets.find((d) => d.name === plan.dataset);
    const fast = o.from !== undefined ? cutModel(inferenceModel(o, m), o.from) : inferenceModel(o, m);
    // The inputs to fill: the model's, or the cut model's (--from).
    const want = o.from !== undefined ? fast : m;
    const grid = o.grid !== undefined ? parseGrid(o.grid) : null;
    await backend(o);
    const trained = loadTrained(o.weights, fingerprint(m), "--weights", m);
    let inputs: Record<string, tf.Tensor>;
    /** Each row's file, for raw files. */
    let files: string[] | null = null;
    const test = args.length === 1 ? /^test(?::(\d+))?$/.exec(args[0]!) : null;
    const random = args.length === 1 ? /^random:(\d+)$/.exec(args[0]!) : null;
    if (test) {
      if (!ds) throw new RunError(`--input ${args[0]}: model "${m.name}" has no training plan with a dataset`);
      const data = await loadDataset(ds, { dataDir: o.dataDir ?? null, baseDir: path.dirname(o.file), seed: 0, ...(trained.vocab ? { vocab: trained.vocab } : {}), ...(trained.classes ? { classes: trained.classes } : {}) });
      const split = data.test ?? data.train;
      const n = Math.min(split.size, Number(test[1] ?? 10));
      const batch = batchTensors(split, Array.from({ length: n }, (_, i) => i));
      inputs = Object.fromEntries(want.inputs.map((i) => {
        if (!batch[i.name]) throw new RunError(`--input ${args[0]}: the dataset has no field "${i.name}" for input "${i.name}"${o.from !== undefined ? " (--from makes it an input: give it with random:N or a JSON file)" : ""}`);
        return [i.name, batch[i.name]!];
      }));
    } else if (random) {
      inputs = randomInputs(want, Number(random[1]), o.seed ?? 0);
    } else if (args.length === 1 && /\.json$/i.test(args[0]!)) {
      inputs = jsonInputs(args[0]!, want);
    } else {
      if (!ds) throw new RunError(`--input ${args.join(" ")}: model "${m.name}" has no training plan with a dataset, whose steps would prepare raw files; give a JSON file`);
      const { rawFiles, rawSplit, rawTarget } = await import("./data/raw.js");
      const names = want.inputs.map((i) => i.name);
      // An older run without saved column shapes: the field's declared [h, w, …] (an IDX image is [h, w]).
      const target = rawTarget(ds, names, trained.columns, (f) => (f.shape.slice(0, 2).every((d) => typeof d === "number") ? (f.shape.slice(0, 2) as number[]) : undefined));
      files = await rawFiles(args, target.kind);
      const split = await rawSplit(ds, names, files, target, trained.vocab);
      inputs = batchTensors(split, Array.from({ length: files.length }, (_, i) => i));
    }
    let res: Record<string, OutputValues>;
    if (o.torch) {
      const host = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { dtype: t.dtype === "int32" ? "I32" : "F32", shape: t.shape, data: t.dataSync() } as HostTensor]));
      const got = await withTorch(o, o.torch, m.name, trained, (e) => e.predict(host));
      res = Object.fromEntries(m.outputs.map((x) => [x.name, { shape: got[x.name]!.shape, data: Float32Array.from(got[x.name]!.data as Float32Array) }]));
    } else if (o.onnx) {
      const host = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { shape: t.shape, data: t.dataSync() as Float32Array | Int32Array }]));
      const got = await withOnnx(o, m, fast, trained, (e) => e.run(host));
      res = Object.fromEntries(Object.entries(got).map(([k, v]) => [k, { shape: v.shape, data: v.data instanceof Float32Array ? v.data : Float32Array.from(v.data) }]));
    } else {
      const weights = trainedWeights(m.params, trained);
      const fastWeights = deriveWeights(fast.params, weights);
      const outputs = tf.tidy(() => run(fast, fastWeights, inputs, { training: false }).outputs);
      res = {};
      // Read asynchronously: webgpu in Node has no synchronous read.
      for (const [k, v] of Object.entries(outputs)) res[k] = { shape: v.shape, data: Float32Array.from((await v.data()) as Float32Array) };
      tf.dispose(Object.values(outputs));
    }
    for (const t of Object.values(inputs)) t.dispose();
    const n = Object.values(res)[0]?.shape[0] ?? 0;
    const k = o.top ?? 3;
    const classes = classOutputs(fast, plan, Object.fromEntries(Object.entries(res).map(([name, v]) => [name, v.shape])), trained.classes);
    for (let i = 0; i < n; i++) {
      if (o.json) {
        const row = { index: i, ...(files ? { file: files[i] } : {}), ...predictionRow(res, i, classes, k) };
        out(JSON.stringify(row) + "\n");
      } else {
        const parts = Object.entries(res).map(([name, v]) => {
          const c = classes.get(name);
          const what = c ? topClasses(v, i, c, k).map((t) => `${t.name ?? t.id} ${t.p.toFixed(3)}`).join("  ") : describeRow(v, i);
          return Object.keys(res).length > 1 || !c ? `${name}: ${what}` : what;
        });
        out(`${files ? files[i] : i}  ${parts.join("  |  ")}\n`);
      }
    }
    if (grid) {
      const images = Object.keys(res).filter((x) => isImageShape(res[x]!.shape));
      const name = grid.output ?? (images.length === 1 ? images[0]! : null);
      if (name === null) throw new RunError(`--grid ${o.grid}: ${images.length ? `model "${m.name}" has several image-valued outputs (${images.join(", ")}): name one, --grid OUTPUT=FILE.png` : `no output of model "${m.name}" is image-valued (per sample [h, w] or [h, w, 1|3]): ${Object.entries(res).map(([x, v]) => `${x} [${v.shape.slice(1).join(", ")}]`).join(", ")}`}`);
      const v = res[name];
      if (!v) throw new RunError(`--grid ${o.grid}: model "${m.name}" has no output "${name}"${o.from !== undefined ? ` computed from ${o.from}` : ""} (it has ${Object.keys(res).join(", ")})`);
      if (!isImageShape(v.shape)) throw new RunError(`--grid ${o.grid}: output "${name}" is [${v.shape.slice(1).join(", ")}] per sample, not an image ([h, w] or [h, w, 1|3])`);
      if (!existsSync(path.dirname(path.resolve(grid.file)))) throw new RunError(`--grid ${o.grid}: the folder of ${grid.file} does not exist`);
      const g = await gridPng(v, gridSigmoid(plan, name));
      writeFileAtomic(grid.file, g.png);
      (o.err ?? stderr)(`wrote ${grid.file} (${n} sample${n === 1 ? "" : "s"} of ${name} [${v.shape.slice(1).join(", ")}], ${g.cols} × ${g.rows} tiles, ${g.width} × ${g.height} pixels; pixels: ${g.scale})\n`);
    }
    return 0;
  });
}

/** --grid FILE.png or --grid OUTPUT=FILE.png. */
function parseGrid(s: string): { output: string | null; file: string } {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(s);
  const file = m ? m[2]! : s;
  if (!/\.png$/i.test(file)) throw new RunError(`--grid ${s}: give a .png file (--grid FILE.png, or --grid OUTPUT=FILE.png)`);
  return { output: m ? m[1]! : null, file };
}

/** --input FILE.json: {"input": [[…], …]} or a list of {"input": …} objects, shaped to the model's inputs. */
function jsonInputs(file: string, m: IRModel): Record<string, tf.Tensor> {
  if (!existsSync(file)) throw new RunError(`--input ${file}: no such file (give a JSON file, test:N for the first N test samples, random:N, or image/text files)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new RunError(`--input ${file}: not valid JSON (${(e as Error).message})`);
  }
  const rows = Array.isArray(json) ? json : [json];
  const inputs: Record<string, tf.Tensor> = {};
  for (const inp of m.inputs) {
    const values = rows.flatMap((r) => {
      const v = (r as Record<string, unknown>)[inp.name];
      if (v === undefined) throw new RunError(`--input ${file}: no value for input "${inp.name}"`);
      return Array.isArray(v) && Array.isArray(v[0]) && rows.length === 1 ? (v as unknown[]) : [v];
    });
    const t = tf.tensor(values as number[], undefined, inp.dtype.startsWith("i") ? "int32" : "float32");
    const want = inp.shape.slice(1).map((d) => (typeof d === "number" ? d : -1));
    const bad = () => new RunError(`--input ${file}: input "${inp.name}" has shape [${t.shape}] but the model expects [batch, ${inp.shape.slice(1).join(", ")}]`);
    // Nested lists give their own shape (symbolic sizes taken from them); flat ones are reshaped to the
    // declared sizes, which needs every size but the batch known.
    if (t.rank === inp.shape.length && want.every((d, i) => d === -1 || t.shape[i + 1] === d)) inputs[inp.name] = t;
    else if (want.includes(-1)) throw bad();
    else {
      try {
        inputs[inp.name] = tf.reshape(t, [-1, ...want]);
      } catch {
        throw bad();
      }
    }
  }
  return inputs;
}

export interface QuantizeCommandOptions extends RunCommandOptions {
  weights: string;
  /** Quantize to this kind (absent: prune only). */
  kind?: QuantKind;
  /** Post-training magnitude pruning (layer scope) of these kernels first. */
  prune?: { sparsity: number; weights: readonly string[] };
  /** Kernels stored sparse where that is smaller (the model's prunable ones). */
  sparse?: readonly string[];
  /** Folder for FILE.<kind>.safetensors (default: beside the .nnet file). */
  outDir?: string;
  /** Replace an existing file of that name. */
  force?: boolean;
}

/**
 * Weights for deployment: FILE.<kind>.safetensors with kind int8, float16, pruned, pruned.int8 or
 * pruned.float16, read by eval, predict and load(). An existing file is kept unless `force`.
 */
export async function quantizeCommand(o: QuantizeCommandOptions): Promise<number> {
  return guarded(o, async () => {
    // Without --model: the model of the first plan, else the last (the emitted module's default export).
    const m = o.model ? o.module.models.find((x) => x.name === o.model) : (o.module.models.find((x) => x.name === o.module.plans[0]?.model) ?? o.module.models[o.module.models.length - 1]);
    if (!m) throw new RunError(`${o.file} has no model${o.model ? ` named "${o.model}"` : ""}`);
    const fp = fingerprint(m);
    const t: Transform = { ...(o.prune ? { prune: o.prune } : {}), ...(o.kind ? { quantize: o.kind } : {}), ...(o.sparse ? { sparse: o.sparse } : {}) };
    const kind = weightKind(t);
    const file = path.join(o.outDir ?? path.dirname(o.file), `${path.basename(o.file).replace(/\.nnet$/, "")}.${kind}.safetensors`);
    if (existsSync(file) && !o.force) throw new RunError(`${file} already exists; pass --force to replace it, or -o DIR to write elsewhere`);
    const trained = loadTrained(o.weights, fp, "--weights", m);
    const { tensors, metadata, sparsity } = transformWeights(trained.weights, t);
    const bytes = encodeSafetensors(tensors, { ...metadata, format: "nnetc", model: m.name, fingerprint: fp, ...(o.kind ? { quantized: o.kind } : {}), ...(o.prune ? { pruned: String(o.prune.sparsity) } : {}), ...(trained.vocab ? { vocab: JSON.stringify(packVocabularies(trained.vocab)) } : {}), ...savedMetadata(trained) });
    const full = encodeSafetensors(trained.weights, { format: "nnetc", model: m.name, fingerprint: fp });
    writeFileAtomic(file, bytes);
    const zeros = sparsity !== null ? `, ${(100 * sparsity).toFixed(1)}% of ${o.prune!.weights.length} kernels zero` : "";
    (o.out ?? stdout)(`wrote ${file} (${kind}: ${bytes.length.toLocaleString("en-US")} bytes, ${((100 * bytes.length) / full.length).toFixed(1)}% of float32's ${full.length.toLocaleString("en-US")}${zeros})\n`);
    return 0;
  });
}

export interface OnnxCommandOptions extends RunCommandOptions {
  /** The model to export (the module's default export). */
  model: string;
  /** The module optimized for inference at `level`: what is exported. */
  inference: IRModule;
  level: number;
  weights?: string;
  /** The .onnx file, or "-" for stdout. */
  outFile: string;
  version: string;
  /** Reports NN6xxx diagnostics (the CLI renders them with the source). */
  report: (d: Diagnostic[]) => void;
}

/** nnetc compile --target onnx: the inference model and its weights as one ONNX file (opset 17). */
export async function onnxCommand(o: OnnxCommandOptions): Promise<number> {
  return guarded(o, async () => {
    const m = o.module.models.find((x) => x.name === o.model)!;
    const fast = inferenceModel(o, m);
    const seed = o.module.plans.find((p) => p.model === m.name)?.seed ?? 0;
    const w = await exportWeights(m, fast, { ...(o.weights !== undefined ? { weights: o.weights } : {}), seed });
    const r = exportOnnx(fast, w.weights, { producerVersion: o.version, metadata: { weights: w.from, optimization: `-O${o.level}` } });
    if (!r.bytes) {
      o.report(r.diagnostics);
      return 1;
    }
    if (o.outFile === "-") process.stdout.write(r.bytes);
    else writeFileAtomic(o.outFile, r.bytes);
    const where = o.outFile === "-" ? "stdout" : o.outFile;
    const int8 = w.int8 ? `, ${w.int8} int8 weights dequantized by DequantizeLinear` : "";
    const note = o.weights === undefined ? " (untrained: pass --weights RUN for trained ones)" : "";
    (o.err ?? stderr)(`wrote ${where} (ONNX opset 17, -O${o.level}: ${r.stats.nodes} nodes, ${r.stats.transposes} transposes, ${r.bytes.length.toLocaleString("en-US")} bytes; weights: ${w.from}${note}${int8})\n`);
    return 0;
  });
}

export interface TorchWeightsCommandOptions extends RunCommandOptions {
  model: string;
  /** Trained weights (a run folder, checkpoint, .safetensors or model.json). */
  weights: string;
  outFile: string;
}

/**
 * compile --target pytorch --weights RUN: the model's trained weights as its PyTorch module's state_dict
 * (runtime/torch_layout.ts: PyTorch's names and layouts), a .safetensors file for `load_state_dict`.
 */
export async function torchWeightsCommand(o: TorchWeightsCommandOptions): Promise<number> {
  return guarded(o, async () => {
    const m = o.module.models.find((x) => x.name === o.model)!;
    const { host, from } = modelHostWeights(m, { weights: o.weights, seed: 0 });
    const { bytes, tensors } = encodeTorchStateDict(m.params, host, m.params, { format: "pt", nnetc_weights: from });
    writeFileAtomic(o.outFile, bytes);
    (o.out ?? stdout)(`wrote ${o.outFile} (${tensors} tensors of the ${m.name} module's state_dict, from ${from})\n`);
    return 0;
  });
}

export interface PeftCommandOptions extends RunCommandOptions {
  /** The model whose LoRA adapters to export (the module's default export). */
  model: string;
  /** The LoRA run's folder. */
  weights: string;
  /** The Hugging Face model folder the run started from (absent: the run's recorded init, else the plan's). */
  base?: string;
  outDir: string;
  force?: boolean;
}

/** The Hugging Face folder a run started from: --base, else the init its model.json records, else the plan's `init` (layout huggingface). */
function peftBase(o: PeftCommandOptions, m: IRModel): string {
  if (o.base !== undefined) return o.base;
  const info = path.join(o.weights, "model.json");
  let rec: { from: string; layout: string } | undefined;
  try {
    rec = existsSync(info) ? (JSON.parse(readFileSync(info, "utf8")) as { init?: { from: string; layout: string } }).init : undefined;
  } catch (e) {
    throw new RunError(`${info} is not JSON (${(e as Error).message}); give the base with --base DIR`);
  }
  if (rec?.layout === "huggingface") return rec.from;
  const init = o.module.plans.find((p) => p.model === m.name)?.init;
  if (init?.layout === "huggingface" && !rec) return path.resolve(path.dirname(o.file), init.from);
  const had = rec ?? init;
  throw new RunError(`--target peft needs the Hugging Face model the LoRA run started from: give --base DIR (its folder: config.json and model.safetensors)${had ? `; the run started from ${had.from} with layout ${had.layout}, not a Hugging Face model folder` : ", or set the plan's init … layout: huggingface"}`);
}

/** nnetc compile --target peft: a LoRA run's adapters as DIR/adapter_config.json + DIR/adapter_model.safetensors for PeftModel.from_pretrained. */
export async function peftCommand(o: PeftCommandOptions): Promise<number> {
  return guarded(o, async () => {
    const m = o.module.models.find((x) => x.name === o.model)!;
    const base = peftBase(o, m);
    const { peftAdapter, writePeftAdapter } = await import("./peft.js");
    const a = peftAdapter(m, o.weights, base);
    const w = writePeftAdapter(o.outDir, a, !!o.force);
    const c = a.config;
    const out = o.out ?? stdout;
    out(`wrote ${w.model} and ${w.config} (PEFT LoRA adapter of ${c.base_model_name_or_path} (${a.family}): ${a.modules.length} modules, r ${c.r}, lora_alpha ${c.lora_alpha}, target_modules ${(c.target_modules as string[]).join(", ")}; ${w.bytes.toLocaleString("en-US")} bytes)\n`);
    if (a.outside.length) out(`note: ${a.outside.length} weights of ${m.name} have no tensor in the base checkpoint and are not in PEFT's model: ${a.outside.slice(0, 8).join(", ")}${a.outside.length > 8 ? ", …" : ""}\n`);
    return 0;
  });
}

export interface ExportLayersCommandOptions extends RunCommandOptions {
  /** The model to export and its Keras topology (compiler/emit/keras.ts). */
  model: string;
  topology: Record<string, unknown>;
  /** Keras's name for each weight (compiler/emit/keras.ts). */
  weightNames: Record<string, string>;
  /** Trained weights (a run folder, checkpoint, .safetensors or model.json); without it, seeded initial weights. */
  weights?: string;
  outDir: string;
}

/** nnetc compile --target tfjs-layers: DIR/model.json + DIR/group1-shard1of1.bin for tf.loadLayersModel. */
export async function exportLayersCommand(o: ExportLayersCommandOptions): Promise<number> {
  return guarded(o, async () => {
    const m = o.module.models.find((x) => x.name === o.model)!;
    // Trained weights, or those a fresh training run starts from: the plan's seed, else 0.
    const { host } = modelHostWeights(m, { ...(o.weights ? { weights: o.weights } : {}), seed: o.module.plans.find((p) => p.model === m.name)?.seed ?? 0 });
    mkdirSync(o.outDir, { recursive: true });
    // Only the weights the topology carries: a layer no output reads is not in a Keras model.
    const exported = m.params.filter((p) => Object.prototype.hasOwnProperty.call(o.weightNames, p.name));
    const files = layersModelFiles(o.topology, exported.map((p) => [o.weightNames[p.name]!, host[p.name]!]), "nnetc 0.1.0");
    const file = writeLayersModel(o.outDir, files);
    (o.out ?? stdout)(`wrote ${file} and ${path.join(o.outDir, "group1-shard1of1.bin")} (${exported.length} weights${exported.length < m.params.length ? `; ${m.params.length - exported.length} of layers no output reads left out` : ""}, ${files.shard.length.toLocaleString("en-US")} bytes${o.weights ? "" : ", initial weights: pass --weights RUN for trained ones"})\n`);
    return 0;
  });
}

export interface GenerateCommandOptions extends RunCommandOptions {
  /** A run folder (or checkpoint, or safetensors in nnetc's names), or a Hugging Face model folder (config.json). */
  weights: string;
  prompt?: string;
  /** Token ids instead of text: "5,17,42". */
  promptIds?: string;
  /** An encoder–decoder's source: text (tokenized with the source's vocabulary), or ids "5,17,42". */
  source?: string;
  sourceIds?: string;
  /** The decoder's first token without a prompt (an id or a token), instead of the vocabulary's [CLS], <s> or <|endoftext|>. */
  start?: string;
  maxNew: number;
  greedy: boolean;
  temperature: number;
  topK: number | null;
  topP: number | null;
  seed: number;
  /** Stop tokens: ids, or tokens of the vocabulary. */
  stop: string[];
  cache: boolean;
  /** A tokenizer file (tokenizer.json, vocab.txt, or encoder.json with merges), instead of the run's or the dataset's. */
  tokenizer?: string;
  merges?: string;
}

/** The vocabulary generate encodes and decodes with: --tokenizer, else the run's saved one, else the plan dataset's tokenize file; null for ids only. */
function generationVocab(o: GenerateCommandOptions, m: IRModel, ids: string, saved: Record<string, import("./data/index.js").Vocabulary> | undefined): import("./data/index.js").Vocabulary | null {
  if (o.tokenizer) return readVocabularyFile(o.tokenizer, o.merges, "--tokenizer");
  return generationVocabulary(saved, ids, o.module.plans.find((p) => p.model === m.name), o.module.datasets, path.dirname(o.file));
}

/** nnetc generate: a decoder continues a prompt (an encoder–decoder: from its source), tokens streamed as they come. */
export async function generateCommand(o: GenerateCommandOptions): Promise<number> {
  return guarded(o, async () => {
    const out = o.out ?? stdout;
    const err = o.err ?? stderr;
    const m = o.model ? o.module.models.find((x) => x.name === o.model) : o.module.models[0];
    if (!m) throw new RunError(`${o.file} has no model${o.model ? ` named "${o.model}"` : ""}`);
    const parts = decoderParts(m);
    const src = parts.source ?? null;
    const hasSource = o.source !== undefined || o.sourceIds !== undefined;
    if (!src && (hasSource || o.start !== undefined)) throw new RunError(`generate: model "${m.name}" is a decoder, not an encoder–decoder: it takes no ${o.start !== undefined ? "--start" : "--source"}`);
    if (src && !hasSource) throw new RunError(`generate: model "${m.name}" is an encoder–decoder: give its source as --source TEXT or --source-ids 1,2,3`);
    if (o.source !== undefined && o.sourceIds !== undefined) throw new RunError("generate: give the source as --source TEXT or --source-ids 1,2,3 (one of them)");
    if (o.prompt !== undefined && o.promptIds !== undefined) throw new RunError("generate: give the prompt as --prompt TEXT or --prompt-ids 1,2,3 (one of them)");
    if (!src && o.prompt === undefined && o.promptIds === undefined) throw new RunError("generate: give the prompt as --prompt TEXT or --prompt-ids 1,2,3 (one of them)");
    if (src && o.start !== undefined && (o.prompt !== undefined || o.promptIds !== undefined)) throw new RunError("generate: --start is the first token without a prompt: give --start or a prompt, not both");
    await backend(o);
    const { isHuggingFaceFolder } = await import("./huggingface.js");
    let host: Record<string, HostTensor>;
    let saved: Record<string, import("./data/index.js").Vocabulary> | undefined;
    if (isHuggingFaceFolder(o.weights)) {
      const { loadPretrained } = await import("./pretrained.js");
      host = loadPretrained(m, { from: o.weights, layout: "huggingface", map: [], allowMissing: false, allowExtra: true }).weights;
    } else {
      const trained = loadTrained(o.weights, fingerprint(m), "--weights", m);
      host = trained.weights;
      saved = trained.vocab;
    }
    const vocab = generationVocab(o, m, parts.ids, saved);
    let prompt: number[];
    if (o.promptIds !== undefined) {
      prompt = o.promptIds.split(",").map((s) => Number(s.trim()));
      checkPromptIds(prompt, parts.vocabSize, `--prompt-ids ${o.promptIds}`);
    } else if (o.prompt === undefined) {
      // an encoder–decoder without a prompt starts from the decoder's start token
      prompt = startIds(o.start, vocab, "--start");
      checkPromptIds(prompt, parts.vocabSize, `--start ${o.start}`);
    } else {
      if (!vocab) throw new RunError(`generate: model "${m.name}" has no tokenizer (no saved vocabulary, no tokenize file in its dataset): give --tokenizer FILE, or --prompt-ids`);
      prompt = encodePrompt(o.prompt!, vocab, parts.maxLen);
    }
    let source: number[] | undefined;
    let sourceVocab: import("./data/index.js").Vocabulary | null = null;
    if (src) {
      // the source's own vocabulary: the run saves one per dataset field (--tokenizer serves both)
      sourceVocab = generationVocab(o, m, src.ids, saved);
      if (o.sourceIds !== undefined) {
        source = o.sourceIds.split(",").map((s) => Number(s.trim()));
        checkPromptIds(source, src.vocabSize, `--source-ids ${o.sourceIds}`);
      } else {
        if (!sourceVocab) throw new RunError(`generate: model "${m.name}" has no tokenizer for its source ${src.ids} (no saved vocabulary, no tokenize file in its dataset): give --tokenizer FILE, or --source-ids`);
        source = encodeSource(o.source!, sourceVocab, src.maxLen + 1); // one over: too long is an error, not cut
      }
    }
    const stop = stopIds(o.stop, vocab, "--stop");
    const weights = trainedWeights(m.params, { weights: host, from: o.weights });
    const { decodeText, padId } = await import("./data/tokenize.js");
    const shown: number[] = [];
    let printed = "";
    try {
      const r = generateIds(m, weights, prompt, {
        maxNew: o.maxNew,
        greedy: o.greedy,
        temperature: o.temperature,
        topK: o.topK,
        topP: o.topP,
        seed: o.seed,
        stop,
        cache: o.cache,
        ...(source ? { source, sourcePad: sourceVocab ? padId(sourceVocab) : 0 } : {}),
        onToken: (id) => {
          if (o.json) return;
          shown.push(id);
          if (!vocab) return out(`${shown.length > 1 ? " " : ""}${id}`);
          // stream the text decoded so far, holding back an unfinished UTF-8 sequence
          const text = decodeText(shown, vocab);
          const safe = text.endsWith("\uFFFD") ? text.slice(0, -1) : text;
          if (safe.startsWith(printed)) {
            out(safe.slice(printed.length));
            printed = safe;
          }
        },
      });
      if (o.json) out(JSON.stringify({ ...(source ? { source } : {}), prompt, ids: r.ids, ...(vocab ? { text: decodeText(r.ids, vocab) } : {}), ended: r.ended, cache: r.cached, tokensPerSec: r.tokensPerSec, seconds: r.seconds }) + "\n");
      else {
        if (vocab) out(decodeText(r.ids, vocab).slice(printed.length));
        out("\n");
        err(`${r.ids.length} tokens in ${r.seconds.toFixed(2)} s (${r.tokensPerSec.toFixed(1)} tokens/s, ${r.cached ? "key/value cache" : `no cache${o.cache ? `: ${r.cacheProblem}` : ""}`}); ended: ${r.ended}\n`);
      }
    } finally {
      for (const w of weights.values()) w.dispose();
    }
    return 0;
  });
}

export interface ServeCommandOptions extends RunCommandOptions {
  serve: Omit<import("./serve.js").ServeOptions, "log">;
  /** --weights given another number of times than files (NN7072, reported after the backend line like every runtime error). */
  weightsCount?: { files: number; weights: number };
  /** Called once the server listens (tests). */
  onListening?: (s: import("./serve.js").RunningServer) => void;
}

/**
 * nnetc serve: every model loaded, then the server listens until SIGTERM or SIGINT, when it stops accepting,
 * answers every request it accepted, and exits 0.
 */
export async function serveCommand(o: ServeCommandOptions): Promise<number> {
  return guarded(o, async () => {
    if (o.weightsCount) throw runError("serveWeightsCount", o.weightsCount);
    await backend(o);
    const { startServer } = await import("./serve.js");
    const server = await startServer(o.serve);
    o.onListening?.(server);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGTERM", stop);
        process.off("SIGINT", stop);
        void server.close().then(resolve);
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
    });
    return 0;
  });
}
