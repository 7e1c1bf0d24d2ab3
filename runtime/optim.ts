// Optimizers and learning-rate schedules of the training plan. Optimizer slots are plain variables so
// that checkpoints can save and restore them exactly; schedules are pure functions of the step plus a
// small serialisable state (reduce_on_plateau).
import * as tf from "@tensorflow/tfjs-core";
import type { CallSpec } from "./spec.js";

export interface Optimizer {
  /** Apply one update. `decay` names the weights that weight decay applies to. */
  step(vars: tf.Variable[], grads: tf.Tensor[], lr: number): void;
  /** Slots by "<weight name>/<slot>" plus "step". */
  slots(names: Map<tf.Variable, string>): Record<string, tf.Tensor>;
  load(slots: Record<string, { shape: number[]; data: Float32Array }>, names: Map<tf.Variable, string>): void;
  dispose(): void;
}

const n = (v: unknown, d: number) => (typeof v === "number" ? v : d);

/**
 * Build the optimizer a phase asks for. `weightDecay` is the plan's L2 decay (added to the gradient of
 * kernels and embeddings, not biases or normalisation scales); adamw applies its own decay decoupled.
 */
export function makeOptimizer(call: CallSpec, weightDecay: number, decays: (v: tf.Variable) => boolean): Optimizer {
  const a = call.args;
  const slotVars = new Map<tf.Variable, Map<string, tf.Variable>>();
  let t = 0;
  const slot = (v: tf.Variable, name: string): tf.Variable => {
    let m = slotVars.get(v);
    if (!m) slotVars.set(v, (m = new Map()));
    let s = m.get(name);
    if (!s) m.set(name, (s = tf.variable(tf.zerosLike(v), false)));
    return s;
  };
  const l2 = n(a.weight_decay, 0) * (call.fn === "adamw" ? 0 : 1) + weightDecay;
  const withDecay = (v: tf.Variable, g: tf.Tensor) => (l2 > 0 && decays(v) ? tf.add(g, tf.mul(v, l2)) : g);
  const update: Record<string, (v: tf.Variable, g: tf.Tensor, lr: number) => void> = {
    sgd(v, g, lr) {
      const momentum = n(a.momentum, 0);
      if (momentum === 0) return v.assign(tf.sub(v, tf.mul(g, lr)));
      const vel = slot(v, "momentum");
      const next = tf.sub(tf.mul(vel, momentum), tf.mul(g, lr));
      vel.assign(next);
      v.assign(a.nesterov ? tf.add(v, tf.sub(tf.mul(next, momentum), tf.mul(g, lr))) : tf.add(v, next));
    },
    adam(v, g, lr) {
      const b1 = n(a.beta1, 0.9);
      const b2 = n(a.beta2, 0.999);
      const m = slot(v, "m");
      const s = slot(v, "v");
      m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
      s.assign(tf.add(tf.mul(s, b2), tf.mul(tf.square(g), 1 - b2)));
      const alpha = (lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
      let delta = tf.div(tf.mul(m, alpha), tf.add(tf.sqrt(s), n(a.epsilon, 1e-7)));
      if (call.fn === "adamw" && n(a.weight_decay, 0) > 0 && decays(v)) delta = tf.add(delta, tf.mul(v, lr * n(a.weight_decay, 0)));
      v.assign(tf.sub(v, delta));
    },
    rmsprop(v, g, lr) {
      const rho = n(a.rho, 0.9);
      const momentum = n(a.momentum, 0);
      const ms = slot(v, "rms");
      ms.assign(tf.add(tf.mul(ms, rho), tf.mul(tf.square(g), 1 - rho)));
      const step = tf.div(tf.mul(g, lr), tf.add(tf.sqrt(ms), n(a.epsilon, 1e-7)));
      if (momentum > 0) {
        const mom = slot(v, "momentum");
        mom.assign(tf.add(tf.mul(mom, momentum), step));
        v.assign(tf.sub(v, mom));
      } else v.assign(tf.sub(v, step));
    },
  };
  const apply = update[call.fn === "adamw" ? "adam" : call.fn]!;
  return {
    step(vars, grads, lr) {
      t++;
      // One tidy per weight: an update's temporaries (a dozen weight-sized tensors for adam) are freed before
      // the next weight's, so the step's peak is one weight's temporaries, not every weight's (compiler/memory.ts).
      vars.forEach((v, i) => tf.tidy(() => apply(v, withDecay(v, grads[i]!), lr)));
    },
    slots(names) {
      const out: Record<string, tf.Tensor> = { step: tf.scalar(t) };
      for (const [v, m] of slotVars) for (const [k, s] of m) out[`${names.get(v)}/${k}`] = s;
      return out;
    },
    load(slots, names) {
      const byName = new Map([...names].map(([v, k]) => [k, v]));
      t = slots.step ? slots.step.data[0]! : 0;
      for (const [key, val] of Object.entries(slots)) {
        if (key === "step") continue;
        const cut = key.lastIndexOf("/");
        const v = byName.get(key.slice(0, cut));
        if (!v) continue;
        tf.tidy(() => slot(v, key.slice(cut + 1)).assign(tf.tensor(val.data, val.shape)));
      }
    },
    dispose() {
      for (const m of slotVars.values()) for (const s of m.values()) s.dispose();
      slotVars.clear();
    },
  };
}

/** Clip gradients by global norm and/or by value. */
export function clipGradients(grads: tf.Tensor[], clip: { norm?: number; value?: number } | null): tf.Tensor[] {
  if (!clip) return grads;
  let out = grads;
  if (clip.value !== undefined) out = out.map((g) => tf.clipByValue(g, -clip.value!, clip.value!));
  if (clip.norm !== undefined) {
    const norm = tf.sqrt(tf.addN(out.map((g) => tf.sum(tf.square(g)))));
    const scale = tf.minimum(1, tf.div(clip.norm, tf.maximum(norm, 1e-12)));
    out = out.map((g) => tf.mul(g, scale));
  }
  return out;
}

export interface ScheduleState {
  plateauFactor: number;
  plateauBest: number | null;
  plateauWait: number;
}

/** The learning rate at each step of a phase, from the plan's chained schedules. */
export class Schedule {
  state: ScheduleState = { plateauFactor: 1, plateauBest: null, plateauWait: 0 };
  private readonly warmupSteps: number;
  private readonly main: CallSpec | undefined;

  constructor(
    private readonly calls: CallSpec[],
    private readonly baseLr: number,
    private readonly stepsPerEpoch: number,
    private readonly epochs: number,
  ) {
    const w = calls.find((c) => c.fn === "warmup");
    this.warmupSteps = w ? (typeof w.args.steps === "number" ? w.args.steps : Math.round(n(w.args.epochs, 1) * stepsPerEpoch)) : 0;
    this.main = calls.find((c) => c.fn !== "warmup");
  }

  lr(step: number): number {
    const base = this.baseLr;
    const total = this.stepsPerEpoch * this.epochs;
    if (step < this.warmupSteps) {
      const peak = this.main?.fn === "one_cycle" ? n(this.main.args.max_lr, base) : base;
      return (peak * (step + 1)) / this.warmupSteps;
    }
    const s = step - this.warmupSteps;
    const span = Math.max(1, total - this.warmupSteps);
    const epoch = Math.floor(s / this.stepsPerEpoch);
    const c = this.main;
    const a = c?.args ?? {};
    let lr = base;
    switch (c?.fn) {
      case undefined:
      case "constant":
        break;
      case "step":
        lr = base * n(a.gamma, 0.1) ** Math.floor(epoch / n(a.every, 1));
        break;
      case "multistep":
        lr = base * n(a.gamma, 0.1) ** ((a.milestones as number[]) ?? []).filter((m) => epoch >= m).length;
        break;
      case "exponential":
        lr = base * n(a.gamma, 0.9) ** epoch;
        break;
      case "cosine": {
        const min = n(a.min_lr, 0);
        lr = min + ((base - min) * (1 + Math.cos(Math.PI * Math.min(1, s / span)))) / 2;
        break;
      }
      case "one_cycle": {
        const max = n(a.max_lr, base);
        const up = Math.max(1, Math.round(span * n(a.pct_start, 0.3)));
        const start = max / 25;
        const end = max / 1e4;
        lr = s < up ? start + ((max - start) * (1 - Math.cos((Math.PI * s) / up))) / 2 : end + ((max - end) * (1 + Math.cos((Math.PI * (s - up)) / Math.max(1, span - up)))) / 2;
        break;
      }
      case "reduce_on_plateau":
        lr = Math.max(n(a.min_lr, 0), base * this.state.plateauFactor);
        break;
    }
    return lr;
  }

  /** The quantity reduce_on_plateau monitors, if any. */
  get monitor(): string | null {
    return this.main?.fn === "reduce_on_plateau" ? String(this.main.args.monitor ?? "val_loss") : null;
  }

  /** Called at the end of each epoch with the monitored value (lower or higher is better per `mode`). */
  endEpoch(value: number | undefined, mode: "min" | "max"): void {
    const c = this.main;
    if (c?.fn !== "reduce_on_plateau" || value === undefined || !Number.isFinite(value)) return;
    const st = this.state;
    const better = st.plateauBest === null || (mode === "min" ? value < st.plateauBest : value > st.plateauBest);
    if (better) {
      st.plateauBest = value;
      st.plateauWait = 0;
    } else if (++st.plateauWait > n(c.args.patience, 10)) {
      st.plateauFactor *= n(c.args.factor, 0.1);
      st.plateauWait = 0;
    }
  }
}
