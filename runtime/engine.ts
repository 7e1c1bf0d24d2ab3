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
import { collect, concatCollected, lossTensor, targetOf, metricName, metricValue, type Collected } from "./objective.js";
import { makeOptimizer, type Optimizer } from "./optim.js";
import { DeviceMasks, type Masks } from "./prune.js";
import type { CallSpec, LossSpec, PhaseSpec, PlanSpec, TrainingStep } from "./spec.js";
import { packedHost, packedOf, packInt8 } from "./qbase.js";
import { batchTensors, loadHostWeights, readHostWeights, readLossValues, seeder, trainMicroBatches } from "./steps.js";
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
  /**
   * Alternate steps (adversarial training): each batch is trained by every step in turn, each with its own
   * optimizer (its slots saved as `STEP:weight/slot`), weights and loss terms (indices into `loss`); the
   * phase's own trainable, optimizer and clip are then unused. A batch's loss is the steps' losses added.
   */
  steps?: AltStep[];
}

export type AltStep = TrainingStep;

/** The steps an engine runs on each batch: a phase's alternate steps, or the phase itself as one step over every term. */
export function stepsOf(p: PhaseSetup): AltStep[] {
  return p.steps ?? [{ name: "", trainable: p.trainable, frozenLayers: p.frozenLayers, optimizer: p.optimizer, weightDecay: p.weightDecay, clip: p.clip, terms: p.loss.map((_, i) => i), lrScale: 1 }];
}

/** An optimizer-state key of a step (with several steps, `STEP:key`), and back. */
export const stepSlotKey = (steps: readonly AltStep[], k: number, key: string) => (steps.length > 1 ? `${steps[k]!.name}:${key}` : key);
export function slotsOfStep(steps: readonly AltStep[], k: number, state: Record<string, HostTensor>): Record<string, HostTensor> {
  if (steps.length === 1) return state;
  const prefix = `${steps[k]!.name}:`;
  return Object.fromEntries(Object.entries(state).filter(([key]) => key.startsWith(prefix)).map(([key, v]) => [key.slice(prefix.length), v]));
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
  /**
   * lora base: int8: hold these frozen kernels as int8 from now on — `q` has each one as quantizeWeights
   * writes it (`name` I8 in nnetc's layout, `name:scale` F32 per output channel) — and compute with q·scale in
   * every forward pass. getWeights returns them in that form; setWeights leaves them as they are.
   */
  setQuantized(q: Record<string, HostTensor>): Promise<void>;
  /** Bytes the engine holds for the weights: float32 ones and int8 base kernels with their scales. */
  weightBytes(): Promise<{ float: number; int8: number }>;
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
  private phase: PhaseSetup | null = null;
  /** The phase's steps (one, or its alternate steps), each with its optimizer and trainable variables. */
  private steps: { def: AltStep; optimizer: Optimizer; trainable: tf.Variable[]; frozen: Set<string>; loss: LossSpec[] }[] = [];
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
    const out: Record<string, HostTensor> = {};
    const plain: [string, tf.Tensor][] = [];
    for (const [k, v] of this.weights) {
      const q = packedHost(v);
      if (q) [out[k], out[`${k}:scale`]] = [q.q, q.scale];
      else plain.push([k, v]);
    }
    // Read asynchronously: webgpu in Node has no synchronous read.
    Object.assign(out, await readHostWeights(plain));
    return out;
  }

  async setWeights(host: Record<string, HostTensor>): Promise<void> {
    loadHostWeights(new Map([...this.weights].filter(([, v]) => !packedOf(v))), host, "the weights");
  }

  async setQuantized(q: Record<string, HostTensor>): Promise<void> {
    for (const [k, t] of Object.entries(q)) {
      if (t.dtype !== "I8") continue;
      const old = this.weights.get(k)!;
      if (packedOf(old)) continue;
      const v = packInt8(t, q[`${k}:scale`]!, k);
      this.weights.set(k, v);
      this.names.delete(old);
      old.dispose();
    }
  }

  async weightBytes(): Promise<{ float: number; int8: number }> {
    let float = 0;
    let int8 = 0;
    for (const v of this.weights.values()) {
      const p = packedOf(v);
      if (p) int8 += 4 * v.size + 4 * p.scale.size;
      else float += 4 * v.size;
    }
    return { float, int8 };
  }

  async beginPhase(p: PhaseSetup): Promise<void> {
    for (const st of this.steps) st.optimizer.dispose();
    this.phase = p;
    const decays = new Set(p.decays);
    this.steps = stepsOf(p).map((def) => ({
      def,
      trainable: def.trainable.map((n) => this.weights.get(n)!),
      frozen: new Set(def.frozenLayers),
      optimizer: makeOptimizer(def.optimizer, def.weightDecay, (v) => decays.has(this.names.get(v) ?? "")),
      loss: def.terms.map((i) => p.loss[i]!),
    }));
  }

  async optimizerState(): Promise<Record<string, HostTensor>> {
    const out: Record<string, HostTensor> = {};
    for (const [k, st] of this.steps.entries()) {
      const slots = st.optimizer.slots(this.names);
      for (const [key, v] of Object.entries(await readHostWeights(Object.entries(slots)))) out[stepSlotKey(this.steps.map((x) => x.def), k, key)] = v;
      slots.step?.dispose();
    }
    return out;
  }

  async loadOptimizerState(s: Record<string, HostTensor>): Promise<void> {
    const defs = this.steps.map((x) => x.def);
    this.steps.forEach((st, k) => st.optimizer.load(Object.fromEntries(Object.entries(slotsOfStep(defs, k, s)).map(([key, v]) => [key, { shape: v.shape, data: v.data as Float32Array }])), this.names));
  }

  async setMasks(masks: Masks): Promise<void> {
    this.masks.dispose();
    // int8 base kernels keep their zeros (round(0 / scale) = 0): masks leave them alone
    this.masks = new DeviceMasks(new Map([...masks].filter(([k]) => !packedOf(this.weights.get(k)!))), new Map([...this.weights].map(([k, v]) => [k, v.shape] as const)));
    this.masks.apply(this.weights);
  }

  async trainSteps(s: Steps): Promise<number[]> {
    const p = this.phase!;
    const losses: number[] = [];
    const nTerms = p.loss.length;
    for (let i = 0; i < s.batches.length; i++) {
      const mix = s.mix?.[i] ?? null;
      const own = microBatches(s.batches[i]!, p.accumulate).map((idx) => batchTensors(s.split, idx));
      // mixup / cutmix: the partners' rows, cut into micro-batches alike; the model reads the mixed inputs, the
      // loss the original targets of both (runtime/steps.ts mixedLoss).
      const partner = mix ? microBatches(mix.partners, p.accumulate).map((idx) => batchTensors(s.split, idx)) : [];
      const micro = mix ? own.map((m, k) => mixInputs(m, partner[k]!, mix)) : own;
      let batchLoss = 0;
      for (const [k, st] of this.steps.entries()) {
        const last = k === this.steps.length - 1;
        // Each step's dropout draws its own numbers (the first step's are the plain run's).
        const seed = seeder(k ? (s.seed ^ Math.imul(k, 0x2545f491)) >>> 0 : s.seed, s.firstStep + i);
        const mixing = mix ? { lambda: mix.lambda, own, partner, terms: st.def.terms.map((t) => p.mixTerms![t]!) } : undefined;
        const { losses, outputs } = trainMicroBatches(this.net, this.weights, st.loss, st.trainable, st.optimizer, st.def.clip, s.lrs[i]! * st.def.lrScale, micro, { training: true, frozen: st.frozen, seed }, mixing);
        const { loss, terms } = await readLossValues(losses);
        if (this.masks.size) this.masks.apply(this.weights);
        if (nTerms > 1) {
          // Every term's own value, in the plan's order (a step with one term: its loss over its weight).
          const values = terms.length ? terms : [loss / st.loss[0]!.weight];
          st.def.terms.forEach((t, j) => (this.termSums[t] = (this.termSums[t] ?? 0) + values[j]! * s.batches[i]!.length));
          if (last) this.termSamples += s.batches[i]!.length;
        }
        // Training metrics read the last step's outputs (under mixing, against each sample's dominant label).
        for (const [m, out] of outputs.entries()) {
          for (const [pred, target] of last ? (s.collect?.pairs ?? []) : []) {
            if (!out[pred] || !own[m]![target] || out[pred]!.size > s.collect!.maxFloats / p.accumulate) continue;
            const key = pairKeyOf(pred, target);
            if (!this.parts.has(key)) this.parts.set(key, []);
            const y = mix ? metricTarget(own[m]![target]!, partner[m]![target]!, mix.lambda, p.loss.some((t, j) => t.target === target && p.mixTerms![j] === "target")) : own[m]![target]!;
            this.parts.get(key)!.push(await collect(out[pred]!, y));
            if (y !== own[m]![target]) y.dispose();
          }
          tf.dispose(Object.values(out));
        }
        batchLoss += loss;
        if (!Number.isFinite(loss)) break;
      }
      for (const m of [...own, ...partner]) tf.dispose(Object.values(m));
      if (mix) for (const m of micro) tf.dispose(mix.fields.map((f) => m[f]!));
      losses.push(batchLoss);
      if (!Number.isFinite(batchLoss)) break;
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
    return await evaluateTfjs(this.net, plan, this.weights, split, batch);
  }

  chunk(): number {
    return 1;
  }

  async dispose(): Promise<void> {
    for (const st of this.steps) st.optimizer.dispose();
    this.steps = [];
    this.masks.dispose();
    for (const v of this.weights.values()) packedOf(v)?.scale.dispose(); // the packed variables are the owner's, as the others
  }
}

/**
 * Loss, loss terms and metric parts summed over a split's batches from the model's outputs (inference mode):
 * what every engine that hands back outputs (TensorFlow.js, ONNX Runtime) measures them with.
 */
export class EvalSums {
  private lossSum = 0;
  private seen = 0;
  private readonly termSums: number[];
  private readonly parts = new Map<string, Collected[]>();

  constructor(private readonly plan: PlanSpec) {
    this.termSums = new Array<number>(plan.loss.length > 1 ? plan.loss.length : 0).fill(0);
  }

  /**
   * One batch of `n` rows: its outputs and its data (inputs and targets). Disposes nothing it is given. Values
   * are computed first and read after, asynchronously (webgpu in Node has no synchronous read).
   */
  async add(outputs: Record<string, tf.Tensor>, data: Record<string, tf.Tensor>, n: number): Promise<void> {
    const plan = this.plan;
    const { loss, terms } = tf.tidy(() => {
      let l = tf.scalar(0);
      const terms: tf.Tensor[] = [];
      plan.loss.forEach((t, k) => {
        const v = lossTensor(t, outputs[t.prediction]!, targetOf(t, outputs, data));
        if (this.termSums.length) terms[k] = tf.keep(v);
        l = tf.add(l, tf.mul(v, t.weight));
      });
      return { loss: tf.keep(l), terms };
    });
    for (const [k, v] of terms.entries()) this.termSums[k]! += (await v.data())[0]! * n;
    this.lossSum += (await loss.data())[0]! * n;
    tf.dispose([loss, ...terms]);
    for (const mt of plan.metrics) {
      const key = pairKey(mt);
      if (!this.parts.has(key)) this.parts.set(key, []);
      this.parts.get(key)!.push(await collect(outputs[String(mt.args.prediction)]!, data[String(mt.args.target)]!));
    }
    this.seen += n;
  }

  result(): Evaluation {
    const seen = this.seen;
    const joined = new Map([...this.parts].map(([k, v]) => [k, concatCollected(v)]));
    return { loss: seen ? this.lossSum / seen : NaN, metrics: metricsOf(this.plan, joined), ...(this.termSums.length ? { terms: this.termSums.map((x) => (seen ? x / seen : NaN)) } : {}) };
  }
}

/** Loss and metrics of the model over a split, in inference mode, on TensorFlow.js. */
export async function evaluateTfjs(m: Net, plan: PlanSpec, weights: Weights, split: Split, batch: number): Promise<Evaluation> {
  const sums = new EvalSums(plan);
  for (let start = 0; start < split.size; start += batch) {
    const idx = Array.from({ length: Math.min(batch, split.size - start) }, (_, i) => start + i);
    const data = batchTensors(split, idx);
    const outputs = tf.tidy(() => m.forward(weights, data, { training: false }).outputs);
    await sums.add(outputs, data, idx.length);
    tf.dispose([...Object.values(outputs), ...Object.values(data)]);
  }
  return sums.result();
}
