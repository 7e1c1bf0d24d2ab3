// THE interface between the training plan and whatever executes it. runtime/train.ts holds the plan's
// meaning once — phases, frozen layers, schedules (the learning rate of every step), early stopping and
// restore-best, pruning masks, checkpoints, resume, metrics, the batch order — and asks an engine only to
// hold the weights and optimizer state, run steps on the batches it names, and evaluate a split. Weights and
// optimizer slots cross this interface in nnetc's names and layouts (`layer/role`, `layer/role/slot`, `step`),
// so a run folder is the same whichever engine wrote it.
//
// Engines: TfjsEngine (here: TensorFlow.js, the interpreter or an emitted module's forward) and TorchEngine
// (runtime/torch/engine.ts: the emitted PyTorch module in a Python process).
import * as tf from "@tensorflow/tfjs-core";
import type { HostTensor } from "./checkpoint/index.js";
import type { Split } from "./data/index.js";
import type { Net, Weights } from "./interpret.js";
import { collect, concatCollected, lossTensor, metricName, metricValue, type Collected } from "./objective.js";
import { makeOptimizer, type Optimizer } from "./optim.js";
import { DeviceMasks, type Masks } from "./prune.js";
import type { CallSpec, LossSpec, PhaseSpec, PlanSpec } from "./spec.js";
import { batchTensors, hostWeights, loadHostWeights, seeder, trainMicroBatches } from "./steps.js";
import { metricTarget, mixInputs, type BatchMix } from "./mix.js";

/** What trains in a phase, and how. */
export interface PhaseSetup {
  /** Weights the optimizer updates (trainable and not in a frozen layer), nnetc names. */
  trainable: string[];
  /** Layers run in inference mode (frozen batchnorm). */
  frozenLayers: string[];
  optimizer: CallSpec;
  weightDecay: number;
  /** Weights L2 decay (and AdamW's) applies to: kernels and embeddings. */
  decays: string[];
  clip: PhaseSpec["clip"];
  loss: readonly LossSpec[];
  /** Micro-batches per optimizer step (gradient accumulation): each batch of trainSteps is cut in this many. */
  accumulate: number;
  /** Under mixup / cutmix: how each loss term mixes (the plan's order); null: batches are not mixed. */
  mixTerms?: ("labels" | "target" | "output")[] | null;
}

/** One chunk of training steps: the batches (sample indices of `split`), each one's rate and dropout seed. */
export interface Steps {
  split: Split;
  batches: Uint32Array[];
  lrs: number[];
  /** The global step of the first batch: dropout seeds derive from (seed, step). */
  firstStep: number;
  seed: number;
  /** Keep the predictions and targets of these (prediction, target) pairs for training metrics (see takeTrainParts), for batches whose prediction has at most maxFloats values. */
  collect: { pairs: [string, string][]; maxFloats: number } | null;
  /**
   * mixup / cutmix, one per batch (runtime/mix.ts): each sample is mixed with the split row `partners[j]` — inputs
   * blended or cut, loss terms as PhaseSetup.mixTerms say; training metrics compare against mixTarget's target.
   */
  mix?: BatchMix[] | null;
}

export interface Evaluation {
  loss: number;
  metrics: Record<string, number>;
  /** With several loss terms: each one's own (unweighted) mean over the split, in the plan's order. */
  terms?: number[];
}

/** What training steps leave for the epoch's record: collected predictions by pair (pairKey) and, with several loss terms, each term's mean over the steps' samples. */
export interface TrainParts {
  parts: Map<string, Collected>;
  terms: number[] | null;
}

export interface StepEngine {
  readonly name: string;
  /** Every weight, in nnetc's names and layouts. */
  getWeights(): Promise<Record<string, HostTensor>>;
  /** Replace every weight (a missing one is an error). */
  setWeights(host: Record<string, HostTensor>): Promise<void>;
  /** Start a phase (a new optimizer, its slots empty). */
  beginPhase(p: PhaseSetup): Promise<void>;
  /** The phase's optimizer slots (`weight/slot`, `step`). */
  optimizerState(): Promise<Record<string, HostTensor>>;
  loadOptimizerState(s: Record<string, HostTensor>): Promise<void>;
  /** Pruning masks (1 keeps, 0 zeroes): applied now and after every optimizer step from now on. */
  setMasks(masks: Masks): Promise<void>;
  /** Run the steps in order; their losses (non-finite ones included: the plan stops there). */
  trainSteps(s: Steps): Promise<number[]>;
  /** Predictions/targets collected and loss terms measured by trainSteps since the last call. */
  takeTrainParts(): Promise<TrainParts>;
  /** Loss and metrics over a split, in inference mode. */
  evaluate(plan: PlanSpec, split: Split, batch: number): Promise<Evaluation>;
  /** How many steps one trainSteps call should take (the driver checks for NaN and Ctrl-C between calls). */
  chunk(batch: number): number;
  /** Get a split ready before it is timed (another engine copies it once). */
  prepare?(split: Split): Promise<void>;
  dispose(): Promise<void>;
}

/** A step's batch cut into `n` micro-batches of as equal sizes as can be (none empty). */
export function microBatches(batch: Uint32Array, n: number): Uint32Array[] {
  const k = Math.max(1, Math.min(n, batch.length));
  return Array.from({ length: k }, (_, i) => batch.subarray(Math.floor((i * batch.length) / k), Math.floor(((i + 1) * batch.length) / k)));
}

/** Metrics from collected predictions, one entry per (prediction, target) pair. */
export function metricsOf(plan: PlanSpec, parts: ReadonlyMap<string, Collected>): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const mt of plan.metrics) metrics[metricName(mt)] = metricValue(mt, parts.get(pairKey(mt))!, fromLogits(plan, String(mt.args.prediction)));
  return metrics;
}

/** Whether a prediction holds logits: as the loss term that reads it says (from_logits), else as the first term says, else yes. */
export function fromLogits(plan: PlanSpec, prediction: string): boolean {
  const term = plan.loss.find((t) => t.prediction === prediction) ?? plan.loss[0];
  return term?.args.from_logits !== false;
}

/** A (prediction, target) pair's key in collected parts. */
export const pairKeyOf = (prediction: string, target: string) => `${prediction}|${target}`;
export const pairKey = (mt: CallSpec) => pairKeyOf(String(mt.args.prediction), String(mt.args.target));

/** TensorFlow.js: the weights are variables (an emitted module's, when it trains itself), steps run here. */
export class TfjsEngine implements StepEngine {
  readonly name = "tfjs";
  private optimizer: Optimizer | null = null;
  private phase: PhaseSetup | null = null;
  private trainable: tf.Variable[] = [];
  private masks: DeviceMasks;
  private parts = new Map<string, Collected[]>();
  private termSums: number[] = [];
  private termSamples = 0;
  private readonly names: Map<tf.Variable, string>;

  constructor(
    private readonly net: Net,
    readonly weights: Weights,
  ) {
    this.names = new Map([...weights].map(([k, v]) => [v, k]));
    this.masks = new DeviceMasks(new Map(), new Map());
  }

  async getWeights(): Promise<Record<string, HostTensor>> {
    return hostWeights(this.weights);
  }

  async setWeights(host: Record<string, HostTensor>): Promise<void> {
    loadHostWeights(this.weights, host, "the weights");
  }

  async beginPhase(p: PhaseSetup): Promise<void> {
    this.optimizer?.dispose();
    this.phase = p;
    this.trainable = p.trainable.map((n) => this.weights.get(n)!);
    const decays = new Set(p.decays);
    this.optimizer = makeOptimizer(p.optimizer, p.weightDecay, (v) => decays.has(this.names.get(v) ?? ""));
  }

  async optimizerState(): Promise<Record<string, HostTensor>> {
    const slots = this.optimizer!.slots(this.names);
    const out = hostWeights(Object.entries(slots));
    slots.step?.dispose();
    return out;
  }

  async loadOptimizerState(s: Record<string, HostTensor>): Promise<void> {
    this.optimizer!.load(Object.fromEntries(Object.entries(s).map(([k, v]) => [k, { shape: v.shape, data: v.data as Float32Array }])), this.names);
  }

  async setMasks(masks: Masks): Promise<void> {
    this.masks.dispose();
    this.masks = new DeviceMasks(masks, new Map([...this.weights].map(([k, v]) => [k, v.shape] as const)));
    this.masks.apply(this.weights);
  }

  async trainSteps(s: Steps): Promise<number[]> {
    const p = this.phase!;
    const frozen = new Set(p.frozenLayers);
    const losses: number[] = [];
    for (let i = 0; i < s.batches.length; i++) {
      const mix = s.mix?.[i] ?? null;
      const own = microBatches(s.batches[i]!, p.accumulate).map((idx) => batchTensors(s.split, idx));
      // mixup / cutmix: the partners' rows, cut into micro-batches alike; the model reads the mixed inputs, the
      // loss the original targets of both (runtime/steps.ts mixedLoss).
      const partner = mix ? microBatches(mix.partners, p.accumulate).map((idx) => batchTensors(s.split, idx)) : [];
      const micro = mix ? own.map((m, k) => mixInputs(m, partner[k]!, mix)) : own;
      const { loss, terms, outputs } = trainMicroBatches(this.net, this.weights, p.loss, this.trainable, this.optimizer!, p.clip, s.lrs[i]!, micro, { training: true, frozen, seed: seeder(s.seed, s.firstStep + i) }, mix ? { lambda: mix.lambda, own, partner, terms: p.mixTerms! } : undefined);
      if (this.masks.size) this.masks.apply(this.weights);
      if (terms.length) {
        terms.forEach((t, k) => (this.termSums[k] = (this.termSums[k] ?? 0) + t * s.batches[i]!.length));
        this.termSamples += s.batches[i]!.length;
      }
      outputs.forEach((out, k) => {
        for (const [pred, target] of s.collect?.pairs ?? []) {
          if (!out[pred] || !own[k]![target] || out[pred]!.size > s.collect!.maxFloats / p.accumulate) continue;
          const key = pairKeyOf(pred, target);
          if (!this.parts.has(key)) this.parts.set(key, []);
          const y = mix ? metricTarget(own[k]![target]!, partner[k]![target]!, mix.lambda, p.loss.some((t, j) => t.target === target && p.mixTerms![j] === "target")) : own[k]![target]!;
          this.parts.get(key)!.push(collect(out[pred]!, y));
          if (y !== own[k]![target]) y.dispose();
        }
        tf.dispose(Object.values(out));
      });
      for (const m of [...own, ...partner]) tf.dispose(Object.values(m));
      if (mix) for (const m of micro) tf.dispose(mix.fields.map((f) => m[f]!));
      losses.push(loss);
      if (!Number.isFinite(loss)) break;
    }
    return losses;
  }

  async takeTrainParts(): Promise<TrainParts> {
    const parts = new Map([...this.parts].map(([k, v]) => [k, concatCollected(v)]));
    const terms = this.termSamples ? this.termSums.map((x) => x / this.termSamples) : null;
    this.parts = new Map();
    this.termSums = [];
    this.termSamples = 0;
    return { parts, terms };
  }

  async evaluate(plan: PlanSpec, split: Split, batch: number): Promise<Evaluation> {
    return evaluateTfjs(this.net, plan, this.weights, split, batch);
  }

  chunk(): number {
    return 1;
  }

  async dispose(): Promise<void> {
    this.optimizer?.dispose();
    this.optimizer = null;
    this.masks.dispose();
  }
}

/** Loss and metrics of the model over a split, in inference mode, on TensorFlow.js. */
export function evaluateTfjs(m: Net, plan: PlanSpec, weights: Weights, split: Split, batch: number): Evaluation {
  let lossSum = 0;
  let seen = 0;
  const termSums = new Array<number>(plan.loss.length > 1 ? plan.loss.length : 0).fill(0);
  const parts = new Map<string, Collected[]>();
  for (let start = 0; start < split.size; start += batch) {
    const idx = Array.from({ length: Math.min(batch, split.size - start) }, (_, i) => start + i);
    const data = batchTensors(split, idx);
    tf.tidy(() => {
      const { outputs } = m.forward(weights, data, { training: false });
      let l = tf.scalar(0);
      plan.loss.forEach((t, k) => {
        const v = lossTensor(t, outputs[t.prediction]!, (t.targetIsOutput ? outputs : data)[t.target]!);
        if (termSums.length) termSums[k]! += v.dataSync()[0]! * idx.length;
        l = tf.add(l, tf.mul(v, t.weight));
      });
      lossSum += l.dataSync()[0]! * idx.length;
      for (const mt of plan.metrics) {
        const key = pairKey(mt);
        if (!parts.has(key)) parts.set(key, []);
        parts.get(key)!.push(collect(outputs[String(mt.args.prediction)]!, data[String(mt.args.target)]!));
      }
    });
    tf.dispose(Object.values(data));
    seen += idx.length;
  }
  const joined = new Map([...parts].map(([k, v]) => [k, concatCollected(v)]));
  return { loss: seen ? lossSum / seen : NaN, metrics: metricsOf(plan, joined), ...(termSums.length ? { terms: termSums.map((x) => (seen ? x / seen : NaN)) } : {}) };
}
