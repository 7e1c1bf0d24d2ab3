// The parts of the IR the runtime reads, without source spans: the training plan and datasets as an
// emitted module embeds them. The compiler's IR types are assignable to these (they only add spans).
import type { AttrValue, DType, IRCall, IRDataset, IRField, IRLossTerm, IRPhase, IRPlan, IRStep } from "../compiler/ir/types.js";

/** T without its source spans (`span`, `predictionSpan`, …), at every depth. */
export type Spanless<T> = T extends (infer U)[] ? Spanless<U>[] : T extends object ? { [K in keyof T as K extends "span" | `${string}Span` ? never : K]: Spanless<T[K]> } : T;

export type CallSpec = Spanless<IRCall>;
export type FieldSpec = Spanless<IRField>;
export type DatasetSpec = Spanless<IRDataset>;
export type LossSpec = Spanless<IRLossTerm>;
export type PhaseSpec = Spanless<IRPhase>;
export type PlanSpec = Spanless<IRPlan>;
export type StepSpec = Spanless<IRStep>;
export type { AttrValue, DType };

/** A LoRA adapter weight (`lora_a`, `query/lora_b`, …). */
export const isAdapter = (p: { role: string }): boolean => /(^|\/)lora_[ab]$/.test(p.role);

/**
 * THE rule of what a phase trains: trainable weights outside its frozen layers — except that in a phase with
 * lora the adapters train (even inside frozen layers) and the base weights of the layers they adapt do not, and
 * in a phase without lora the adapters stay as they are.
 */
export function phaseTrainable<P extends { name: string; layer: string; role: string; trainable: boolean }>(params: readonly P[], phase: Pick<PhaseSpec, "frozenLayers" | "lora">): P[] {
  const frozen = new Set(phase.frozenLayers);
  // a target is a dense layer (`L`: L/kernel, L/bias) or an attention projection (`A/query`: A/query/kernel, …)
  const adapted = (phase.lora?.targets ?? []).map((t) => `${t}/`);
  return params.filter((p) => {
    if (!p.trainable) return false;
    if (isAdapter(p)) return !!phase.lora;
    return !frozen.has(p.layer) && !adapted.some((t) => p.name.startsWith(t));
  });
}

/**
 * The names a plan's loss terms are reported by (with several terms: epoch lines, metrics.jsonl, monitors), as
 * Keras names its outputs' losses: `PREDICTION_loss`, or `PREDICTION_FN_loss` when two terms share a prediction,
 * or `PREDICTION_TARGET_loss` when they share that too; a term over two outputs (kl_normal) is `FN_loss`, one over
 * a single output (mean) is named by that output.
 */
export function lossTermNames(terms: readonly { prediction: string; target: string; fn: string; targetIsOutput?: boolean }[]): string[] {
  const count = (f: (t: (typeof terms)[number]) => string, t: (typeof terms)[number]) => terms.filter((u) => f(u) === f(t)).length;
  return terms.map((t) =>
    // A term over two outputs (kl_normal) is named by its loss: kl_normal_loss.
    t.targetIsOutput && t.target !== t.prediction && count((u) => u.fn, t) === 1
      ? `${t.fn}_loss`
      : count((u) => u.prediction, t) === 1
        ? `${t.prediction}_loss`
        : count((u) => `${u.prediction}|${u.fn}`, t) === 1
          ? `${t.prediction}_${t.fn}_loss`
          : `${t.prediction}_${t.target}_loss`,
  );
}

/**
 * THE rule of which loss values a plan reports beside `loss` (epoch lines, metrics.jsonl, monitors), from the
 * loss terms' own (unweighted) values: with alternate steps each step's loss as it trains it (`STEP_loss`, its
 * terms' weighted sum); else, with several terms, each term (lossTermNames); else none.
 */
export function reportedTerms(plan: Pick<PlanSpec, "loss" | "alternate">): { names: string[]; values(terms: readonly number[]): number[] } {
  if (plan.alternate?.length) {
    return {
      names: plan.alternate.map((st) => `${st.name}_loss`),
      values: (terms) => plan.alternate!.map((st) => st.terms.reduce((sum, i) => sum + plan.loss[i]!.weight * terms[i]!, 0)),
    };
  }
  if (plan.loss.length > 1) return { names: lossTermNames(plan.loss), values: (terms) => [...terms] };
  return { names: [], values: () => [] };
}

/** One step of training on each batch, as the engines take it (runtime/engine.ts AltStep). */
export interface TrainingStep {
  name: string;
  /** Weights it updates, nnetc names (phaseTrainable of its frozen layers). */
  trainable: string[];
  frozenLayers: string[];
  optimizer: CallSpec;
  weightDecay: number;
  clip: PhaseSpec["clip"];
  /** Its loss terms: indices into the plan's loss. */
  terms: number[];
  /** Its rate relative to the schedule's. */
  lrScale: number;
}

/**
 * THE rule of what trains on each batch of a phase: the plan's alternate steps in turn (a GAN), or the phase itself
 * as one step over every loss term. A schedule shapes `baseLr`, the first step's rate, and scales every step's own
 * rate alike (`lrScale`).
 */
export function trainingSteps(plan: Pick<PlanSpec, "loss" | "alternate">, phase: PhaseSpec, params: readonly { name: string; layer: string; role: string; trainable: boolean }[]): { baseLr: number; steps: TrainingStep[] } {
  const defs = plan.alternate?.length ? plan.alternate : [{ name: phase.name, optimizer: phase.optimizer, weightDecay: phase.weightDecay, frozenLayers: phase.frozenLayers, clip: phase.clip, terms: plan.loss.map((_, i) => i) }];
  const lr = (c: CallSpec) => Number(c.args.lr ?? 1e-3);
  const baseLr = lr(defs[0]!.optimizer);
  const steps = defs.map((st) => ({
    name: st.name,
    trainable: phaseTrainable(params, { frozenLayers: st.frozenLayers, lora: phase.lora }).map((p) => p.name),
    frozenLayers: st.frozenLayers,
    optimizer: st.optimizer,
    weightDecay: st.weightDecay,
    clip: st.clip,
    terms: st.terms,
    lrScale: lr(st.optimizer) / baseLr,
  }));
  return { baseLr, steps };
}
