// The training loop of a plan: phases (with frozen layers and their own optimizer, rate and schedule),
// validation, metrics, early stopping with restore-best, checkpoints every epoch, resume, Ctrl-C and
// NaN handling. Every run writes metrics.jsonl to its output folder.
import { guardAsync, pluginCallbacks } from "../compiler/plugin/api.js";
import * as tf from "@tensorflow/tfjs-core";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { isAdapter, phaseTrainable, reportedTerms, trainingSteps, type DatasetSpec, type PhaseSpec, type PlanSpec } from "./spec.js";
import { damagedCheckpoints, latestCheckpoint, readCheckpoint, writeCheckpoint, writeFileAtomic, type HostTensor } from "./checkpoint/index.js";
import { acquireRunLock, LOCK_FILE, metricsRecord, moveRunAside, numberedError, recordedFingerprint, removeRunManifest, RUN_FILES, runContents, verifyMetricsPrefix, writeRunManifest, type LockInfo } from "./run_folder.js";
import { DataError, isRedrawnStep, loadDataset, readSavedData, savedData, subset, type LabelRange, type LoadedData, type Split } from "./data/index.js";
import { packVocabularies, unpackVocabularies } from "./data/tokenize.js";
import { Rng, shuffledIndices } from "./data/rng.js";
import { initWeights, type ParamInit } from "./init.js";
import type { Net, Weights } from "./interpret.js";
import { metricName, metricValue } from "./objective.js";
import { Schedule } from "./optim.js";
import { loadPretrained, type InitSpec } from "./pretrained.js";
import { decodeMasks, encodeMasks, magnitudeMasks, sparsityOf, type Masks } from "./prune.js";
import { exportWeights } from "./export.js";
import { dequantizeWeights, quantizeWeights } from "./quantize.js";
import { drawMix } from "./mix.js";
import { fromLogits, pairKey, TfjsEngine, type StepEngine } from "./engine.js";
import { eventFiles, TensorBoardWriter, type GraphModel } from "./tensorboard.js";

export { DivergedError, InterruptedError, RunError } from "./errors.js";
import { DivergedError, InterruptedError, RunError } from "./errors.js";

export interface TrainOptions {
  /** The .nnet file: data paths resolve against its folder, and model.json records it. */
  file: string;
  /** The plans and datasets (a compiled IRModule, or what an emitted module embeds). */
  module: { plans: PlanSpec[]; datasets: DatasetSpec[] };
  /** The plan's model: the interpreter's (interpreted(irModel)) or an emitted module's (nn.net(def)). */
  net: Net;
  /**
   * Train these weights (an emitted module's model) instead of fresh ones, with the generator state that
   * initialised them; they are left alive at the end. Without it the weights are made from the seed.
   */
  start?: { weights: Weights; rng: number[] };
  plan?: string;
  /** Class-id fields and the classes of what they feed (commands.ts labelRanges, from the model's shapes): checked when the splits are built (NN5010). */
  labels?: Readonly<Record<string, LabelRange>>;
  dataDir: string | null;
  epochs?: number;
  batch?: number;
  outDir: string;
  resume: boolean;
  seed?: number;
  /** Called with one line of human-readable progress, or one JSON object per event with --json. */
  log: (line: string) => void;
  json: boolean;
  /** Live progress on a terminal: called often with one line to overwrite. */
  progress?: (line: string) => void;
  /** Called after every epoch with its record. */
  onEpoch?: (record: EpochRecord) => void;
  /** Set to true (e.g. by a SIGINT handler) to stop at the next step with a checkpoint. */
  stop?: { requested: boolean };
  /**
   * Pretrained weights for a new run (nnetc train --init-from); null for none. Default: the plan's `init`,
   * its path resolved against the .nnet file's folder. Not used when resuming or with `start`.
   */
  init?: InitSpec | null;
  /**
   * The engine that runs the steps, made from the starting weights (host copies: it keeps its own); by
   * default TensorFlow.js on the weights' variables (runtime/engine.ts).
   */
  engine?: (start: Record<string, HostTensor>) => Promise<StepEngine>;
  /**
   * One worker of a data-parallel job (the torch engine with DDP): every worker runs this same plan; each
   * step's global batch is `batch × world` samples of the one batch order, of which this worker takes every
   * world-th (from its rank); losses and training metrics are the job's. Rank 0 alone writes the run folder.
   */
  distributed?: { rank: number; world: number };
  /** The command line, recorded in OUT/run.lock for a second trainer's refusal (NN7030). */
  command?: string;
  /** Train into a folder that holds a run: its files are moved into OUT/replaced-TIME/ first (runtime/run_folder.ts). */
  force?: boolean;
  /**
   * Write TensorBoard event files into this folder (runtime/tensorboard.ts: DIR/train, DIR/validation): the loss
   * and learning rate per step, every loss and metric per epoch, weight histograms per epoch. Not set: none
   * (nnetc train sets OUT/tensorboard unless --no-tensorboard). Files under OUT are listed in the run manifest.
   */
  tensorboard?: string | null;
  /** With `tensorboard`: the model's IR, drawn as TensorBoard's graph. */
  graph?: GraphModel;
}

export interface EpochRecord {
  phase: string;
  epoch: number;
  step: number;
  lr: number;
  loss: number;
  samplesPerSec: number;
  seconds: number;
  [metric: string]: number | string;
}

export interface TrainResult {
  epochs: EpochRecord[];
  test: Record<string, number> | null;
  outDir: string;
  samplesPerSec: number;
  /** What the plan's export step wrote, if it has one. */
  exported: import("./export.js").ExportResult | null;
}

interface Cursor {
  phase: number;
  /** Completed epochs within the phase. */
  epoch: number;
  /** Completed epochs over all phases. */
  globalEpoch: number;
  /** Batches done in the current epoch (non-zero only for a checkpoint taken by Ctrl-C). */
  batch: number;
  step: number;
  /** RNG state at the start of the current epoch, before its shuffle. */
  epochRng: number[];
}

const MAX_TRAIN_METRIC_FLOATS = 4_000_000;

/**
 * NN5013: a test or evaluation loss that is NaN or infinite is an error (exit code 2), not {"loss": null} and
 * exit 0; `saved` names the run folder whose weights were saved before the test. Metrics that are NaN by
 * definition (auc of a split with one class) beside a finite loss are left as they are; those beside a NaN loss
 * are named.
 */
export function checkFiniteResult(r: { loss: number; metrics: Record<string, number> }, what: string, saved: string | null): void {
  if (Number.isFinite(r.loss)) return;
  const bad = Object.entries(r.metrics).filter(([, v]) => !Number.isFinite(v)).map(([k, v]) => `${k} ${v}`);
  throw new DataError(`the loss on ${what} is ${r.loss}${bad.length ? ` (and ${bad.join(", ")})` : ""}${saved ? `; the trained weights are saved in ${saved}, but no test.json is written` : ""}`, "nonFiniteResult");
}

export { fingerprint } from "./weights.js";
export { batchTensors, hostWeight, hostWeights, loadHostWeights, readHostWeights, seeder, trainBatch, trainedWeights } from "./steps.js";
import { loadHostWeights, readHostWeights, trainedWeights } from "./steps.js";
export { evaluateTfjs as evaluate, type Evaluation } from "./engine.js";
import { fingerprint } from "./weights.js";

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 0.001 || x === 0 ? x.toFixed(4) : x.toExponential(2);
}

/** Train a plan end to end, holding the run folder's lock (run.lock: one trainer per folder) throughout. */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const plan = o.plan ? o.module.plans.find((p) => p.name === o.plan) : o.module.plans[0];
  if (!plan) throw new RunError(o.plan ? `no training plan for model "${o.plan}"` : `${o.file} has no training plan (train Model on dataset { … })`);
  // Rank 0 writes the run folder and holds its lock; the other workers of a job write nothing.
  if ((o.distributed?.rank ?? 0) !== 0) return trainHeld(o, plan, null);
  const lock = acquireRunLock(o.outDir, { command: o.command ?? "nnetc train", fingerprint: fingerprint(o.net) });
  try {
    const t = lock.tookOver;
    if (t) o.log(o.json ? JSON.stringify({ event: "lock", tookOver: t }) : `note: took over ${path.join(o.outDir, LOCK_FILE)}: the trainer that held it (pid ${t.pid} on ${t.host}, started ${t.started}) is gone`);
    return await trainHeld(o, plan, t);
  } catch (e) {
    // Refused before writing anything: a lock taken over from a crashed trainer stays, as evidence of its run.
    const key = (e as RunError).numbered?.key;
    lock.release({ putBack: key === "runExists" || key === "resumeOtherRun" });
    throw e;
  } finally {
    lock.release();
  }
}

async function trainHeld(o: TrainOptions, plan: PlanSpec, tookOver: LockInfo | null): Promise<TrainResult> {
  const model = o.net;
  const datasets = new Map(o.module.datasets.map((d) => [d.name, d]));
  const fp = fingerprint(model);
  const ckptDir = path.join(o.outDir, "checkpoints");
  const metricsFile = path.join(o.outDir, "metrics.jsonl");

  const world = o.distributed?.world ?? 1;
  const rank = o.distributed?.rank ?? 0;
  if (world > 1 && plan.alternate?.length) throw new RunError("alternate steps (adversarial training) run on one worker only for now: train without --workers");
  /** Rank 0 writes the run folder; the other workers of a job compute the same and write nothing. */
  const writes = rank === 0;

  const note = (message: string) => o.log(o.json ? JSON.stringify({ event: "note", message }) : `note: ${message}`);
  // An existing run is never overwritten: continue it with --resume, choose another --out, or --force
  // (which moves the old run's files into OUT/replaced-TIME/). Our own lock is not a run; one taken over is.
  const held = () => [...runContents(o.outDir).filter((n) => n !== LOCK_FILE), ...(tookOver ? [`${LOCK_FILE} of pid ${tookOver.pid}`] : [])];
  if (writes && !o.resume) {
    const holds = held();
    if (holds.length) {
      if (!o.force) throw numberedError("runExists", { dir: o.outDir, holds: holds.join(", ") }, `${o.outDir} already holds a training run (${holds.join(", ")})`);
      const aside = moveRunAside(o.outDir, runContents(o.outDir));
      note(`--force: moved the previous run's files (${holds.join(", ")}) into ${aside}`);
    }
  }
  const damaged = existsSync(ckptDir) ? damagedCheckpoints(o.outDir) : [];
  const previous = existsSync(ckptDir) ? latestCheckpoint(o.outDir) : null;
  if (o.resume && !previous) {
    if (world > 1) throw new RunError(`--resume: ${o.outDir} has no checkpoint to resume from (worker ${rank} looked there: every machine of the job needs the run folder)`);
    if (damaged.length) {
      const d = damaged[0]!;
      throw numberedError("runFileCorrupt", { file: d.dir, why: `${d.why}, and there is no earlier checkpoint` }, `${d.dir} is not the file the run wrote: ${d.why}`);
    }
    // No checkpoint yet: start from scratch, but only in an empty folder or this plan's own run (same model fingerprint).
    const holds = held();
    const recorded = recordedFingerprint(o.outDir, tookOver);
    if (holds.length && recorded !== fp) {
      const why = recorded ? `it holds a run of another model (fingerprint ${recorded}; this plan's is ${fp})` : `it holds ${holds.join(", ")}, with no record of the model they belong to`;
      throw numberedError("resumeOtherRun", { dir: o.outDir, why }, `--resume: ${o.outDir} has no checkpoint to resume from, and ${why}`);
    }
    note(`--resume: ${o.outDir} has no checkpoint yet; starting the run from scratch`);
  }
  for (const d of previous ? damaged : []) o.log(o.json ? JSON.stringify({ event: "warning", checkpoint: d.dir, why: d.why, using: previous }) : `warning: checkpoint ${d.dir} is damaged (${d.why}); resuming from the older ${previous}`);

  const ckpt = previous ? readCheckpoint(previous, { fingerprint: fp }) : null;
  const extra = (ckpt?.state.extra ?? {}) as { seed?: number; cursor?: Cursor; best?: unknown; vocab?: LoadedData["vocab"]; classes?: unknown; columns?: unknown; schedule?: Schedule["state"]; masks?: unknown };
  const savedClasses = readSavedData(extra).classes;
  const seed = extra.seed ?? o.seed ?? plan.seed ?? Math.floor(Math.random() * 2 ** 31);

  // Data: the plan's dataset, and any other dataset a phase trains on.
  const loaded = new Map<string, LoadedData>();
  const loadData = async (ds: DatasetSpec) => {
    if (!loaded.has(ds.name)) {
      loaded.set(ds.name, await loadDataset(ds, { dataDir: o.dataDir, baseDir: path.dirname(o.file), seed, ...(o.labels ? { labels: o.labels } : {}), ...(extra.vocab ? { vocab: unpackVocabularies(extra.vocab)! } : {}), ...(savedClasses && ds.name === plan.dataset ? { classes: savedClasses } : {}), log: (m) => o.log(o.json ? JSON.stringify({ event: "note", message: m }) : m) }));
    }
    return loaded.get(ds.name)!;
  };
  const main = await loadData(datasets.get(plan.dataset)!);
  for (const n of main.notes) o.log(o.json ? JSON.stringify({ event: "note", message: n }) : `note: ${n}`);

  // A seeded validation split held out from the training data (the same on resume).
  const splitFor = (d: LoadedData) => {
    if (plan.validation <= 0) return { train: d.train, val: null as Split | null };
    const order = shuffledIndices(d.train.size, new Rng(seed ^ 0x5eed));
    const nVal = Math.max(1, Math.round(d.train.size * plan.validation));
    return { train: subset(d.train, order.subarray(nVal)), val: subset(d.train, order.subarray(0, nVal)) };
  };

  const rng = o.start ? Rng.from(o.start.rng) : new Rng(seed);
  // The weights are drawn here whatever the engine (the same seed gives the same start on every engine),
  // then replaced by the checkpoint's or the pretrained ones.
  const weights = o.start ? o.start.weights : initWeights(model.params, () => rng.next());
  // lora base: int8 kernels come back from the checkpoint as they were quantized (I8 + per-channel scales).
  const heldInt8 = ckpt ? Object.fromEntries(Object.entries(ckpt.weights).filter(([k, v]) => v.dtype === "I8" || (k.endsWith(":scale") && ckpt.weights[k.slice(0, -":scale".length)]?.dtype === "I8"))) : {};
  if (ckpt) loadHostWeights(weights, Object.keys(heldInt8).length ? dequantizeWeights(ckpt.weights) : ckpt.weights, previous!);
  // Pretrained weights replace the fresh ones (drawn all the same, so the run's random stream is unchanged).
  const init = o.init !== undefined ? o.init : plan.init ? { ...plan.init, from: path.resolve(path.dirname(o.file), plan.init.from) } : null;
  if (init && !ckpt && !o.start) {
    const r = loadPretrained(model, init);
    for (const [k, h] of Object.entries(r.weights)) weights.get(k)!.assign(tf.tensor(h.data as Float32Array, h.shape, "float32"));
    const n = Object.keys(r.weights).length;
    o.log(o.json ? JSON.stringify({ event: "init", from: init.from, layout: init.layout, loaded: n, kept: r.missing, ignored: r.ignored }) : `init: ${n} of ${model.params.length} weights from ${init.from} (layout ${init.layout})${r.missing.length ? `; ${r.missing.length} keep their initial values` : ""}${r.ignored.length ? `; ${r.ignored.length} tensors of the file ignored` : ""}`);
  }
  // The engine that runs the steps: TensorFlow.js on these variables, or another one (which takes a copy).
  let engine: StepEngine;
  if (o.engine) {
    engine = await o.engine(await readHostWeights(weights));
    if (!o.start) for (const w of weights.values()) w.dispose();
  } else engine = new TfjsEngine(model, weights);
  const ownsWeights = !o.start && !o.engine;
  if (o.start && plan.phases.some((ph) => ph.lora?.base === "int8")) {
    await engine.dispose();
    throw new RunError("lora base: int8 trains on the interpreter or the torch engine (nnetc train), not in an emitted module's own training loop: use base: float32 there");
  }
  const quantized = new Set(Object.keys(heldInt8).filter((k) => heldInt8[k]!.dtype === "I8"));
  if (quantized.size) await engine.setQuantized(heldInt8);
  // Whatever happens (Ctrl-C, divergence, a bad file), the engine and its process end with the run.
  let tb: TensorBoardWriter | null = null;
  try {
    // Made only now: a run that fails on its data, weights or engine leaves no empty folder behind.
    if (writes) mkdirSync(o.outDir, { recursive: true });
    // The run's files are about to change: the old manifest no longer describes them (written again at the end).
    if (writes) removeRunManifest(o.outDir);
    // metrics.jsonl must still begin with what it held when the checkpoint was written.
    if (writes && ckpt) verifyMetricsPrefix(metricsFile, (extra as { metrics?: { bytes: number; sha256: string } }).metrics, previous!);

    // Pruning masks: once a phase prunes, its zeros stay zero in it and every later phase (and on resume).
    let masks: Masks = decodeMasks(extra.masks, previous ?? o.outDir);
    if (masks.size) await engine.setMasks(masks);
    const logLine = (json: Record<string, unknown>, text: string) => o.log(o.json ? JSON.stringify(json) : text);

    let cursor: Cursor = extra.cursor ?? { phase: 0, epoch: 0, globalEpoch: 0, batch: 0, step: 0, epochRng: rng.state() };
    if (ckpt && (ckpt.state.rng as number[] | undefined)) Object.assign(rng, Rng.from(ckpt.state.rng as number[]));

    // metrics.jsonl keeps exactly the epochs the checkpoint has: a resumed run continues the same curve.
    const history: EpochRecord[] = [];
    if (existsSync(metricsFile)) {
      for (const line of readFileSync(metricsFile, "utf8").split("\n")) {
        if (!line.trim()) continue;
        try {
          const r = JSON.parse(line) as EpochRecord;
          if (typeof r.epoch === "number" && r.epoch <= cursor.globalEpoch) history.push(r);
        } catch {
          /* a line cut by a crash */
        }
      }
    }
    if (writes) writeFileAtomic(metricsFile, history.map((r) => JSON.stringify(r) + "\n").join(""));
    // TensorBoard: new event files from the first step this start trains (older files are never changed; their
    // steps from there on, logged after the checkpoint, are dropped by TensorBoard at the restart).
    if (writes && o.tensorboard) {
      try {
        tb = new TensorBoardWriter(o.tensorboard, cursor.step + 1);
      } catch (e) {
        throw numberedError("tensorboardDir", { dir: o.tensorboard, why: (e as Error).message }, `cannot write TensorBoard event files into ${o.tensorboard}: ${(e as Error).message}`);
      }
    }
    if (tb && o.graph) tb.graph(o.graph);

    let totalSamples = 0;
    let totalSeconds = 0;
    const save = async (data: { schedule: Schedule; best: unknown }) => {
      if (!writes) return;
      const optimizer = await engine.optimizerState();
      writeCheckpoint(
        o.outDir,
        {
          weights: await engine.getWeights(),
          optimizer,
          state: { step: cursor.step, epoch: cursor.globalEpoch, phase: plan.phases[cursor.phase]?.name ?? null, schedule: data.schedule.state, dataCursor: { batch: cursor.batch }, rng: rng.state(), fingerprint: fp, extra: { seed, cursor, best: data.best, vocab: packVocabularies(main.vocab), ...savedData(main), schedule: data.schedule.state, ...(masks.size ? { masks: encodeMasks(masks) } : {}), metrics: metricsRecord(metricsFile) } },
        },
        { keep: plan.checkpoint.keep },
      );
    };

    // Plugin callbacks (compiler/plugin/api.ts): told when training begins and ends and after every epoch.
    const callbacks = pluginCallbacks();
    let stopAll = false;
    for (const { callback, from } of callbacks) {
      if (callback.onTrainBegin) await guardAsync(from, `callback ${callback.name}'s onTrainBegin`, () => callback.onTrainBegin!({ model: model.name, plan: plan.name, outDir: o.outDir, epochs: plan.phases.reduce((n, ph) => n + ph.epochs, 0) }));
    }

    for (let pi = cursor.phase; pi < plan.phases.length && !stopAll; pi++) {
      const phase: PhaseSpec = plan.phases[pi]!;
      const data = splitFor(await loadData(datasets.get(phase.dataset)!));
      const epochs = o.epochs ?? phase.epochs;
      const batch = o.batch ?? phase.batch;
      const frozen = new Set(phase.frozenLayers);
      const trainable = phaseTrainable(model.params, phase).map((p) => p.name);
      // A step takes batch × accumulate samples per worker (micro-batches of `batch` added up), × workers.
      const accumulate = phase.accumulate ?? 1;
      const globalBatch = batch * world * accumulate;
      const stepsPerEpoch = Math.max(1, Math.ceil(data.train.size / globalBatch));
      // Alternate steps (a GAN): each trains its own weights with its own optimizer, in turn on every batch.
      const { baseLr, steps } = trainingSteps(plan, phase, model.params);
      // lora base: int8 (QLoRA-style): when the first such phase starts, its frozen base kernels become int8
      // (per output channel, runtime/quantize.ts: deterministic), held so by the engine from then on.
      const toQuantize = phase.lora?.base === "int8" ? (phase.lora.quantize ?? []).filter((k) => !quantized.has(k)) : [];
      if (toQuantize.length) {
        const host = await engine.getWeights();
        const q = quantizeWeights(Object.fromEntries(toQuantize.map((k) => [k, host[k]!])), "int8");
        await engine.setQuantized(q);
        for (const k of toQuantize) quantized.add(k);
        const floatBytes = toQuantize.reduce((a, k) => a + 4 * (host[k]!.data as Float32Array).length, 0);
        const int8Bytes = Object.values(q).reduce((a, t) => a + (t.dtype === "I8" ? 1 : 4) * t.data.length, 0);
        logLine({ event: "quantize", phase: phase.name, kernels: toQuantize.length, float32_bytes: floatBytes, int8_bytes: int8Bytes }, `lora base int8: ${toQuantize.length} frozen kernel${toQuantize.length === 1 ? "" : "s"} held as int8 from phase ${phase.name} on (${floatBytes.toLocaleString("en-US")} → ${int8Bytes.toLocaleString("en-US")} bytes with their scales)`);
      }
      await engine.beginPhase({
        trainable, frozenLayers: phase.frozenLayers, optimizer: phase.optimizer, weightDecay: phase.weightDecay, decays: model.params.filter((p) => /(kernel|embeddings)$/.test(p.role)).map((p) => p.name), clip: phase.clip, loss: plan.loss, accumulate, mixTerms: phase.mix ? phase.mix.terms : null,
        ...(plan.alternate?.length ? { steps } : {}),
      });
      const schedule = new Schedule(phase.schedule, baseLr, stepsPerEpoch, epochs);
      await engine.prepare?.(data.train);
      const augmented = datasets.get(phase.dataset)!.fields.filter((f) => f.steps.some(isRedrawnStep)).map((f) => `${f.name} (${f.steps.filter(isRedrawnStep).map((st) => st.fn).join(", ")})`);
      const fixed = augmented.some((f) => f.includes("mask_tokens")) ? " (mask_tokens masks them alike in every epoch)" : "";
      if (augmented.length && !o.json) o.log(`augmentation: ${augmented.join("; ")}, drawn afresh each epoch from seed ${seed}; validation and test samples are not augmented${fixed}`);
      else if (augmented.length) o.log(JSON.stringify({ event: "augmentation", fields: augmented, seed }));
      if (phase.mix) {
        const kinds = [phase.mix.mixup !== null ? `mixup (alpha ${phase.mix.mixup}) of ${phase.mix.inputs.join(", ")}` : "", phase.mix.cutmix !== null ? `cutmix (alpha ${phase.mix.cutmix}) of ${phase.mix.images.join(", ")}` : ""].filter(Boolean);
        logLine({ event: "mix", phase: phase.name, mixup: phase.mix.mixup, cutmix: phase.mix.cutmix, inputs: phase.mix.inputs, images: phase.mix.images, seed }, `mixing: ${kinds.join(" or ")}${kinds.length > 1 ? " (one or the other per batch)" : ""}, drawn per batch from seed ${seed}; training metrics compare against each sample's dominant label; validation and test samples are not mixed`);
      }
      if (data.val) await engine.prepare?.(data.val);
      const resuming = ckpt && pi === cursor.phase && (cursor.epoch > 0 || cursor.batch > 0);
      if (resuming) {
        await engine.loadOptimizerState(ckpt!.optimizer);
        if (extra.schedule) schedule.state = extra.schedule;
      }
      // Magnitude pruning at the start of the phase (a resumed phase has its masks from the checkpoint).
      if (phase.prune && !resuming) {
        const now = await engine.getWeights();
        const values = new Map(phase.prune.weights.map((n) => [n, now[n]!.data as Float32Array] as const));
        masks = magnitudeMasks(values, phase.prune, masks);
        await engine.setMasks(masks);
        // The pruned values as the engine now holds them (masked), from the copy just read.
        const s = sparsityOf(Object.fromEntries(phase.prune.weights.map((n) => [n, { ...now[n]!, data: (now[n]!.data as Float32Array).map((v, i) => (masks.get(n)![i] ? v : 0)) }])));
        logLine({ event: "prune", phase: phase.name, sparsity: s.sparsity, zeros: s.zeros, weights: s.total, scope: phase.prune.scope }, `pruned ${s.zeros.toLocaleString("en-US")} of ${s.total.toLocaleString("en-US")} kernel weights (${(100 * s.sparsity).toFixed(1)}% sparsity, ${phase.prune.scope} scope)`);
      }
      const es = phase.earlyStop;
      let best = (resuming ? (extra.best as { value: number; epoch: number; wait: number } | undefined) : undefined) ?? { value: NaN, epoch: -1, wait: 0 };
      let bestWeights: Record<string, HostTensor> | null = es?.restoreBest && resuming && Number.isFinite(best.value) ? await engine.getWeights() : null;
      const batchText = world > 1 || accumulate > 1 ? `batch ${batch}${accumulate > 1 ? ` × ${accumulate} accumulated` : ""}${world > 1 ? ` × ${world} workers` : ""} = ${globalBatch} per step` : `batch ${batch}`;
      if (o.json) o.log(JSON.stringify({ event: "phase", phase: phase.name, epochs, batch, ...(accumulate > 1 ? { accumulate } : {}), ...(world > 1 ? { workers: world } : {}), ...(world > 1 || accumulate > 1 ? { globalBatch } : {}), frozen: phase.frozenLayers.length, trainableWeights: trainable.length }));
      else if (plan.phases.length > 1 || frozen.size || world > 1 || accumulate > 1) o.log(`phase ${phase.name}: ${epochs} epoch${epochs === 1 ? "" : "s"}, ${batchText}${frozen.size ? `, ${frozen.size} layer${frozen.size === 1 ? "" : "s"} frozen` : ""}`);
      let stopped = false;

      for (let ep = cursor.epoch; ep < epochs && !stopped; ep++) {
        // The epoch's order comes from the RNG state saved at its start, so a resumed epoch replays it.
        if (cursor.batch === 0) cursor.epochRng = rng.state();
        const order = shuffledIndices(data.train.size, Rng.from(cursor.epochRng));
        // Augmentation: the epoch's own draws (from the seed and the epoch's number, so a resumed epoch redraws them alike).
        const epochSplit = data.train.augmented?.(seed, cursor.globalEpoch) ?? data.train;
        const t0 = performance.now();
        let lossSum = 0;
        let lossCount = 0;
        let lr = 0;
        // Training metrics: every metric's (prediction, target) pair, kept for batches whose share of an epoch stays small.
        const pairs = [...new Map(plan.metrics.map((mt) => [pairKey(mt), [String(mt.args.prediction), String(mt.args.target)] as [string, string]])).values()];
        const collectFor = pairs.length ? { pairs, maxFloats: MAX_TRAIN_METRIC_FLOATS / stepsPerEpoch / pairs.length } : null;
        for (let b = cursor.batch; b < stepsPerEpoch; ) {
          // Let the event loop run between chunks, so that Ctrl-C (SIGINT) and output reach us mid-epoch.
          await new Promise((r) => setImmediate(r));
          // Workers of a job stop together, where they all are: between epochs.
          if (o.stop?.requested && (world === 1 || b === 0)) {
            cursor.batch = b;
            await save({ schedule, best });
            throw new InterruptedError(`interrupted: saved a checkpoint at epoch ${cursor.globalEpoch + 1}, batch ${b} of ${stepsPerEpoch}; continue with --resume`);
          }
          const n = Math.min(engine.chunk(batch), stepsPerEpoch - b);
          const global = Array.from({ length: n }, (_, i) => order.subarray((b + i) * globalBatch, Math.min((b + i + 1) * globalBatch, data.train.size)));
          const batches = world === 1 ? global : global.map((g) => g.filter((_, j) => j % world === rank));
          const lrs = batches.map((_, i) => schedule.lr(ep * stepsPerEpoch + b + i));
          // mixup / cutmix: each batch's λ, partners and box, drawn from (seed, epoch, batch, worker) alone.
          const mix = phase.mix ? batches.map((idx, i) => drawMix(phase.mix!, idx, { seed, epoch: cursor.globalEpoch, batch: b + i, rank })) : null;
          const losses = await engine.trainSteps({ split: epochSplit, batches, lrs, firstStep: cursor.step, seed, collect: collectFor, mix });
          for (let i = 0; i < losses.length; i++) {
            const lossValue = losses[i]!;
            lr = lrs[i]!;
            if (!Number.isFinite(lossValue)) {
              throw new DivergedError(
                `the loss became ${lossValue} at epoch ${cursor.globalEpoch + 1}, step ${b + 1} (global step ${cursor.step + 1}); training stopped and the last good checkpoint is kept in ${ckptDir}. ` +
                  `Try a lower learning rate (now ${lr.toExponential(2)}), gradient clipping (clip norm: 1.0), or check the data for NaN values.`,
              );
            }
            lossSum += lossValue * global[i]!.length;
            lossCount += global[i]!.length;
            cursor.step++;
            tb?.step(cursor.step, lossValue, lr);
            b++;
            cursor.batch = b;
          }
          if (o.progress) {
            const secs = (performance.now() - t0) / 1000;
            const rate = lossCount / Math.max(secs, 1e-9);
            const done = b / stepsPerEpoch;
            const width = 24;
            const bar = "=".repeat(Math.floor(done * width)).padEnd(width, " ");
            const eta = ((stepsPerEpoch - b) * batch) / Math.max(rate, 1e-9);
            o.progress(`epoch ${cursor.globalEpoch + 1} [${bar}] ${b}/${stepsPerEpoch}  loss ${fmt(lossSum / lossCount)}  ${Math.round(rate).toLocaleString("en-US")} samples/s  ETA ${eta.toFixed(0)}s`);
          }
        }
        const seconds = (performance.now() - t0) / 1000;
        totalSamples += lossCount;
        totalSeconds += seconds;
        cursor.batch = 0;
        cursor.epoch = ep + 1;
        cursor.globalEpoch++;

        const record: EpochRecord = { phase: phase.name, epoch: cursor.globalEpoch, step: cursor.step, lr, loss: lossSum / Math.max(lossCount, 1), samplesPerSec: lossCount / Math.max(seconds, 1e-9), seconds };
        // Each loss term's value (with several), then every metric, on the training side and on validation.
        const reported = reportedTerms(plan);
        const termsOf = (terms: number[] | null | undefined, loss: number) => terms ?? (plan.loss.length === 1 ? [loss / plan.loss[0]!.weight] : null);
        const extras = await engine.takeTrainParts();
        const trainTerms = termsOf(extras.terms, record.loss);
        if (trainTerms) reported.values(trainTerms).forEach((x, k) => (record[reported.names[k]!] = x));
        for (const mt of plan.metrics) {
          const part = extras.parts.get(pairKey(mt));
          if (part?.rows) record[metricName(mt)] = metricValue(mt, part, fromLogits(plan, String(mt.args.prediction)));
        }
        if (data.val) {
          const v = await engine.evaluate(plan, data.val, Math.max(batch, 256));
          record.val_loss = v.loss;
          const valTerms = termsOf(v.terms, v.loss);
          if (valTerms) reported.values(valTerms).forEach((x, k) => (record[`val_${reported.names[k]!}`] = x));
          for (const [k, x] of Object.entries(v.metrics)) record[`val_${k}`] = x;
        }
        history.push(record);
        if (writes) appendFileSync(metricsFile, JSON.stringify(record) + "\n");
        if (tb) {
          tb.epoch(record);
          const now = await engine.getWeights();
          tb.histograms(record.step, quantized.size ? dequantizeWeights(now) : now);
        }
        o.onEpoch?.(record);
        for (const { callback, from } of callbacks) {
          if (!callback.onEpochEnd) continue;
          const r = await guardAsync(from, `callback ${callback.name}'s onEpochEnd`, () => callback.onEpochEnd!({ ...record }));
          if (r === "stop" && !stopAll) {
            stopAll = stopped = true;
            logLine({ event: "callback_stop", callback: callback.name, plugin: from.plugin.name, epoch: cursor.globalEpoch }, `callback ${callback.name} (plugin "${from.plugin.name}") stopped training after epoch ${cursor.globalEpoch}`);
          }
        }
        if (o.json) o.log(JSON.stringify({ event: "epoch", ...record }));
        else {
          const parts = Object.entries(record)
            .filter(([k]) => !["phase", "epoch", "step", "lr", "samplesPerSec", "seconds"].includes(k))
            .map(([k, x]) => `${k} ${fmt(x as number)}`);
          o.log(`epoch ${cursor.globalEpoch}${plan.phases.length > 1 ? ` (${phase.name} ${ep + 1}/${epochs})` : `/${epochs}`}  ${parts.join("  ")}  lr ${lr.toExponential(1)}  ${Math.round(record.samplesPerSec).toLocaleString("en-US")} samples/s  ${seconds.toFixed(1)}s`);
        }

        // Schedules and early stopping look at the monitored quantity.
        if (schedule.monitor) schedule.endEpoch(record[schedule.monitor] as number | undefined, /accuracy|f1|auc|precision|recall|top_k/.test(schedule.monitor) ? "max" : "min");
        if (es) {
          const value = record[es.monitor] as number | undefined;
          const improved = value !== undefined && Number.isFinite(value) && (!Number.isFinite(best.value) || (es.mode === "min" ? value < best.value - es.minDelta : value > best.value + es.minDelta));
          if (improved) {
            best = { value: value!, epoch: cursor.globalEpoch, wait: 0 };
            if (es.restoreBest) bestWeights = await engine.getWeights();
          } else if (++best.wait > es.patience) {
            stopped = true;
            o.log(o.json ? JSON.stringify({ event: "early_stop", monitor: es.monitor, best: best.value, bestEpoch: best.epoch }) : `early stopping: ${es.monitor} has not improved for ${es.patience + 1} epochs (best ${fmt(best.value)} at epoch ${best.epoch})`);
          }
        }
        if (stopped || cursor.epoch % plan.checkpoint.every === 0 || cursor.epoch === epochs) await save({ schedule, best });
      }
      if (es?.restoreBest && bestWeights) {
        await engine.setWeights(bestWeights);
        o.log(o.json ? JSON.stringify({ event: "restore_best", epoch: best.epoch, [es.monitor]: best.value }) : `restored the weights of epoch ${best.epoch} (${es.monitor} ${fmt(best.value)})`);
      }
      cursor = { phase: pi + 1, epoch: 0, globalEpoch: cursor.globalEpoch, batch: 0, step: cursor.step, epochRng: rng.state() };
    }

    // The final model, beside the checkpoints: what eval, predict and deployment read.
    const { encodeSafetensors } = await import("./checkpoint/index.js");
    const final = await engine.getWeights();
    if (writes) writeFileAtomic(path.join(o.outDir, "model.safetensors"), encodeSafetensors(final, { format: "nnetc", model: model.name, fingerprint: fp }));
    if (writes) writeFileAtomic(path.join(o.outDir, "model.json"), JSON.stringify({ model: model.name, fingerprint: fp, source: path.resolve(o.file), seed, vocab: packVocabularies(main.vocab), ...savedData(main), ...(init ? { init: { from: path.resolve(init.from), layout: init.layout } } : {}) }, null, 2) + "\n");
    // LoRA: the adapters alone as well (a small file; with the pretrained checkpoint they are the model).
    const adapters = model.params.filter(isAdapter);
    if (writes && adapters.length && plan.phases.some((ph) => ph.lora)) {
      const lora = plan.phases.find((ph) => ph.lora)!.lora!;
      const only = Object.fromEntries(adapters.map((p) => [p.name, final[p.name]!]));
      writeFileAtomic(path.join(o.outDir, "adapters.safetensors"), encodeSafetensors(only, { format: "nnetc-lora", model: model.name, rank: String(lora.rank), alpha: String(lora.alpha), targets: lora.targets.join(","), ...(quantized.size ? { base: "int8" } : {}) }));
    }

    let test: Record<string, number> | null = null;
    if (main.test) {
      const r = await engine.evaluate(plan, main.test, 256);
      checkFiniteResult(r, `the test split of dataset "${plan.dataset}" (${main.test.size} samples)`, writes ? o.outDir : null);
      test = { loss: r.loss, ...r.metrics };
      if (writes) writeFileAtomic(path.join(o.outDir, "test.json"), JSON.stringify(test, null, 2) + "\n");
    }
    // The export step: the weights pruned and/or quantized beside model.safetensors.
    let exported: TrainResult["exported"] = null;
    if (plan.export && writes) {
      // The export step runs on TensorFlow.js (calibration is a forward pass), on the final weights.
      const tfWeights = engine instanceof TfjsEngine && !quantized.size ? engine.weights : trainedWeights(model.params, { weights: dequantizeWeights(final), from: "the trained weights" });
      try {
        exported = exportWeights({ outDir: o.outDir, net: model, weights: tfWeights, fingerprint: fp, vocab: main.vocab, saved: savedData(main), spec: plan.export, calibration: subset(main.train, shuffledIndices(main.train.size, new Rng(seed ^ 0xca1b)).subarray(0, Math.min(plan.export.calibration, main.train.size))) });
      } finally {
        if (tfWeights !== (engine as TfjsEngine).weights) for (const w of tfWeights.values()) w.dispose();
      }
      logLine({ event: "export", ...exported }, `exported ${exported.file} (${exported.kind}: ${exported.bytes.toLocaleString("en-US")} bytes, ${((100 * exported.bytes) / exported.float32Bytes).toFixed(1)}% of float32's ${exported.float32Bytes.toLocaleString("en-US")}${exported.sparsity !== null ? `, ${(100 * exported.sparsity).toFixed(1)}% of kernel weights zero` : ""}${exported.calibrated ? `, activation ranges of ${exported.calibrated} layers over ${exported.samples} samples` : ""})`);
      if (plan.export.quantize === "int8" && !exported.calibrated) logLine({ event: "note", message: "no activation ranges recorded" }, "note: no activation ranges recorded in the int8 file: this model's forward pass does not report its layers (a compiled module's); nnetc train records them");
    }
    // Last: the checksums of every file the run wrote (eval, predict, compile --weights and --resume check them).
    // TensorBoard's event files in OUT are listed too (every file of every start of the run, as they end).
    tb?.close();
    const tbRel = o.tensorboard ? path.relative(o.outDir, o.tensorboard) : null;
    const tbFiles = tbRel !== null && !tbRel.startsWith("..") && !path.isAbsolute(tbRel) ? eventFiles(o.tensorboard!).map((f) => path.join(tbRel, f).split(path.sep).join("/")) : [];
    if (writes) writeRunManifest(o.outDir, fp, [...RUN_FILES, ...(exported ? [path.basename(exported.file)] : []), ...tbFiles]);
    for (const { callback, from } of callbacks) {
      if (callback.onTrainEnd) await guardAsync(from, `callback ${callback.name}'s onTrainEnd`, () => callback.onTrainEnd!({ outDir: o.outDir, epochs: history.length, stopped: stopAll }));
    }
    return {
      exported, epochs: history, test, outDir: o.outDir, samplesPerSec: totalSeconds > 0 ? totalSamples / totalSeconds : 0 };
  } finally {
    tb?.close();
    await engine.dispose();
    if (ownsWeights) for (const w of weights.values()) w.dispose();
  }
}
