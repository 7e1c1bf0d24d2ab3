// The PyTorch engine: a StepEngine (runtime/engine.ts) whose steps run in the emitted PyTorch module
// (compiler/emit/torch.ts) inside runtime/torch/engine.py. The plan stays in runtime/train.ts: this side only
// converts what crosses the interface — weights and optimizer slots between nnetc's and PyTorch's names and
// layouts (runtime/torch_layout.ts), splits into safetensors shards the Python side memory-maps once, batch
// indices, rates and seeds in, losses and predictions out.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { TorchLine } from "../../compiler/emit/torch.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { decodeSafetensors, encodeSafetensors, toFloat32, type HostTensor } from "../checkpoint/index.js";
import type { Split } from "../data/index.js";
import { metricsOf, pairKey, pairKeyOf, slotsOfStep, stepSlotKey, stepsOf, type Evaluation, type PhaseSetup, type StepEngine, type Steps, type TrainParts } from "../engine.js";
import { pluginEntry } from "../../compiler/plugin/api.js";
import { RunError } from "../errors.js";
import { runError } from "../run_diagnostics.js";
import { collectCompact, collectHost, type Collected } from "../objective.js";

/** What the engine says of collected predictions (engine.py `rows`). */
interface PartInfo {
  rows: number;
  classes?: number;
  int_targets?: boolean;
  /** Compact rows (more than COMPACT_CLASSES classes): pred, higher, nll_logits, nll_prob instead of scores. */
  compact?: boolean;
}

/** The metrics' view of one collected part from the engine's file (tensor names end in `suffix`). */
function collected(t: Record<string, HostTensor>, suffix: string, info: PartInfo): Collected {
  const get = (name: string) => toFloat32(t[`${name}${suffix}`]!);
  if (info.compact) {
    return collectCompact(info.classes!, get("targets"), {
      pred: Int32Array.from(get("pred")),
      higher: Int32Array.from(get("higher")),
      nllLogits: Float64Array.from(get("nll_logits")),
      nllProb: Float64Array.from(get("nll_prob")),
    });
  }
  return collectHost(get("scores"), info.classes!, get("targets"), !!info.int_targets);
}
import { mapPretrained } from "../pretrained.js";
import type { Masks } from "../prune.js";
import type { LossSpec, PlanSpec } from "../spec.js";
import { seeder } from "../steps.js";
import { encodeTorchStateDict, hostF32, rolesByLayer, toTorchStateDict, torchKeys } from "../torch_layout.js";
import { torchModulePath } from "../torch_names.js";
import { checkPython, TorchError, TorchProcess, type TorchHello } from "./process.js";

export interface TorchEngineOptions {
  /** The model as trained (the IR optimized for training: every weight) and its emitted Python module. */
  model: IRModel;
  python: string;
  /** The module's class in `python`. */
  className: string;
  /** cpu, cuda, cuda:N or mps. */
  device: string;
  precision: "fp32" | "bf16";
  /** An engine process to use, instead of starting one; closed with the engine. */
  process?: TorchProcess;
  /** A folder of the engine's own (the emitted module), removed with it. */
  moduleDir?: string;
  distributed?: TorchRunOptions["distributed"];
  /** The forward statements of `python` by line, from emitTorch: an exception in one names its layer. */
  statements?: ReadonlyMap<number, TorchLine>;
}

/** How long a worker waits for the others at the rendezvous: NNETC_RENDEZVOUS_TIMEOUT seconds, else 300. */
function rendezvousTimeout(): number {
  const v = process.env.NNETC_RENDEZVOUS_TIMEOUT;
  if (v === undefined || v === "") return 300;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw new RunError(`NNETC_RENDEZVOUS_TIMEOUT=${v}: give the seconds a worker waits for the others (default 300)`);
  return Number(v);
}

/**
 * An exception of the Python side as the numbered diagnostic it is: NN7010 at the .nnet layer whose statement
 * of the emitted module's forward was running (the innermost such frame), else NN7011.
 */
function numbered(e: TorchError, python: string, statements?: ReadonlyMap<number, TorchLine>): RunError {
  for (const f of [...e.frames].reverse()) {
    const m = /^(.*):(\d+) in /.exec(f);
    if (!m || path.resolve(m[1]!) !== path.resolve(python)) continue;
    const s = statements?.get(Number(m[2]));
    if (s) return runError("engineException", { layer: s.layer, op: s.op, error: e.message, at: `${path.basename(python)}:${m[2]}` }, s.span);
  }
  return runError("engineFailed", { error: e.frames.length ? `${e.message} (at ${e.frames[e.frames.length - 1]})` : e.message });
}

/** The plan's loss terms as the Python side takes them. */
const lossTerms = (loss: readonly LossSpec[]) => loss.map((t) => ({ fn: t.fn, prediction: t.prediction, target: t.target, targetIsOutput: t.targetIsOutput === true, ...(t.targetValue !== undefined ? { targetValue: t.targetValue } : {}), weight: t.weight, args: pluginLossArgs(t) }));

/** A plugin loss's arguments carry its Python expression to engine.py's loss_term (NN8004 when it has none). */
function pluginLossArgs(t: LossSpec): Record<string, unknown> {
  const p = pluginEntry("losses", t.fn);
  if (!p) return t.args;
  if (typeof p.entry.torch !== "string") throw runError("pluginNoLowering", { plugin: p.from.plugin.name, file: p.from.file, kind: "loss", name: t.fn, target: "torch engine", field: "torch", layer: "" });
  return { ...t.args, __plugin_torch: p.entry.torch };
}

/** Optimizer state "<weight>/<slot>" (either engine's names) grouped by slot, and the step count. */
function bySlot(state: Record<string, HostTensor>): { step: Float32Array | null; slots: Map<string, Record<string, HostTensor>> } {
  const slots = new Map<string, Record<string, HostTensor>>();
  let step: Float32Array | null = null;
  for (const [k, v] of Object.entries(state)) {
    if (k === "step") {
      step = Float32Array.from(v.data as ArrayLike<number>, Number);
      continue;
    }
    const cut = k.lastIndexOf("/");
    if (!slots.has(k.slice(cut + 1))) slots.set(k.slice(cut + 1), {});
    slots.get(k.slice(cut + 1))![k.slice(0, cut)] = v;
  }
  return { step, slots };
}

/** torch keys of the nnetc weights `names` that train (an LSTM's bias_hh never does: nnetc has one bias). */
function trainableKeys(model: IRModel, names: readonly string[]): string[] {
  const want = new Set(names);
  const byLayer = rolesByLayer(model.params);
  const keys: string[] = [];
  for (const p of model.params) {
    if (!want.has(p.name)) continue;
    const layer = byLayer.get(p.layer)!;
    const lstm = layer.has(p.role.replace(/bias$/, "recurrent_kernel")) && p.shape.length === 1;
    for (const k of torchKeys(p, layer)) if (!(lstm && /\.bias_hh_l0(_reverse)?$/.test(k))) keys.push(k);
  }
  return keys;
}

export class TorchEngine implements StepEngine {
  readonly name = "torch";
  private readonly dir: string;
  private readonly splits = new WeakMap<Split, { of: Split; name: string; file: string }>();
  private nShards = 0;
  /** The metric pairs the last trainSteps collected (takeTrainParts reads them back in this order). */
  private collectPairs: [string, string][] = [];
  private nSplits = 0;
  private stepSeconds = 0;
  private files = 0;
  private phase: PhaseSetup | null = null;

  /** What the engine's Python reported: torch and Python versions, CUDA. */
  versions: { torch: string; python: string; cuda: boolean } = { torch: "?", python: "?", cuda: false };

  private constructor(
    private readonly o: TorchEngineOptions,
    private readonly proc: TorchProcess,
    private readonly key: string,
  ) {
    this.dir = mkdtempSync(path.join(tmpdir(), "nnetc-torch-"));
  }

  /** Start the process (unless given one), emit nothing: `o.python` is the module to load with `start`'s weights. */
  static async create(o: TorchEngineOptions, start: Record<string, HostTensor>): Promise<TorchEngine> {
    const proc = o.process ?? (await TorchProcess.start());
    const e = new TorchEngine(o, proc, `run${Date.now()}${Math.random().toString(36).slice(2, 8)}`);
    try {
      const weights = e.file("weights");
      writeFileSync(weights, e.stateDict(start));
      await proc.request("load", { model: e.key, path: o.python, class: o.className, weights, device: o.device, ...(o.distributed ? { distributed: { rank: o.distributed.rank, world: o.distributed.world, master: o.distributed.master, timeout: rendezvousTimeout() } } : {}) });
    } catch (err) {
      await e.dispose();
      throw err;
    }
    return e;
  }

  private file(what: string): string {
    return path.join(this.dir, `${what}.${++this.files}.safetensors`);
  }

  private async req(cmd: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    try {
      return await this.proc.request(cmd, { model: this.key, ...args });
    } catch (e) {
      throw e instanceof TorchError ? numbered(e, this.o.python, this.o.statements) : e;
    }
  }



  /** nnetc weights (all, or those given) as PyTorch's state_dict bytes. */
  private stateDict(host: Record<string, HostTensor>, params = this.o.model.params): Uint8Array {
    return encodeTorchStateDict(params, host, this.o.model.params).bytes;
  }

  /** A file the Python side wrote, read and removed. */
  private take(f: string): Record<string, HostTensor> {
    const t = decodeSafetensors(new Uint8Array(readFileSync(f))).tensors;
    rmSync(f, { force: true });
    return t;
  }

  /** PyTorch tensors (state_dict keys) back in nnetc's names and layouts; missing ones allowed for slots. */
  private fromTorch(tensors: Record<string, HostTensor>, allowMissing: boolean): Record<string, HostTensor> {
    return mapPretrained(this.o.model.params, tensors, { from: "the torch engine", layout: "torch", map: [], allowMissing, allowExtra: false }).weights;
  }

  async getWeights(): Promise<Record<string, HostTensor>> {
    const f = this.file("get");
    await this.req("get_weights", { file: f });
    const out = this.fromTorch(this.take(f), false);
    // int8 base kernels as they were quantized (the Python side gives their q·scale)
    for (const [k, t] of Object.entries(this.quantized)) out[k] = t;
    return out;
  }

  /** lora base: int8: the int8 kernels and their scales (nnetc names and layout), as setQuantized got them. */
  private quantized: Record<string, HostTensor> = {};

  async setQuantized(q: Record<string, HostTensor>): Promise<void> {
    const params = this.o.model.params.filter((p) => q[p.name]?.dtype === "I8" && !this.quantized[p.name]);
    if (!params.length) return;
    const out: Record<string, HostTensor> = {};
    const keys: string[] = [];
    for (const p of params) {
      // the int8 values travel as floats (exact) through the one layout table; the scales follow the output channel
      const torch = [...toTorchStateDict([p], { [p.name]: hostF32(q[p.name]!) }, this.o.model.params)];
      if (torch.length !== 1 || torch[0]![1].shape.length !== 2 || torch[0]![1].shape[0] !== p.shape[1]) throw new RunError(`the torch engine cannot hold ${p.name} as int8: its PyTorch form is not one [out, in] weight`);
      const [key, v] = torch[0]!;
      out[key] = { dtype: "F32", shape: v.shape, data: v.data };
      out[`${key}.scale`] = { dtype: "F32", ...hostF32(q[`${p.name}:scale`]!) };
      keys.push(key);
      this.quantized[p.name] = q[p.name]!;
      this.quantized[`${p.name}:scale`] = q[`${p.name}:scale`]!;
    }
    const f = this.file("quantize");
    writeFileSync(f, encodeSafetensors(out));
    await this.req("quantize", { file: f, keys });
    rmSync(f, { force: true });
  }

  async weightBytes(): Promise<{ float: number; int8: number }> {
    const r = await this.req("weight_bytes");
    return { float: Number(r.float), int8: Number(r.int8) };
  }

  async setWeights(host: Record<string, HostTensor>): Promise<void> {
    const f = this.file("set");
    // int8 base kernels stay as they are (their float form stands in: the Python side skips them)
    const given = Object.fromEntries(Object.entries(host).filter(([k]) => !k.endsWith(":scale") || !this.quantized[k]).map(([k, v]) => [k, this.quantized[k] ? { dtype: "F32", shape: v.shape, data: new Float32Array(v.data.length) } as HostTensor : v]));
    writeFileSync(f, this.stateDict(given));
    await this.req("set_weights", { file: f });
    rmSync(f, { force: true });
  }

  async beginPhase(p: PhaseSetup): Promise<void> {
    this.phase = p;
    const m = this.o.model;
    const withModule = new Set(m.params.map((x) => x.layer));
    await this.req("phase", {
      trainable: trainableKeys(m, p.trainable),
      decays: trainableKeys(m, p.decays),
      frozen: p.frozenLayers.filter((l) => withModule.has(l)).map(torchModulePath),
      optimizer: { fn: p.optimizer.fn, args: p.optimizer.args },
      weight_decay: p.weightDecay,
      clip: p.clip,
      losses: lossTerms(p.loss),
      inputs: m.inputs.map((i) => i.name),
      precision: this.o.precision,
      accumulate: p.accumulate,
      mix_terms: p.mixTerms,
      ...(p.steps ? { steps: p.steps.map((st) => ({ trainable: trainableKeys(m, st.trainable), frozen: st.frozenLayers.filter((l) => withModule.has(l)).map(torchModulePath), optimizer: { fn: st.optimizer.fn, args: st.optimizer.args }, weight_decay: st.weightDecay, clip: st.clip, terms: st.terms, lr_scale: st.lrScale })) } : {}),
      // Steps are seeded (from the run's seed and the step) only where the model draws random numbers.
      stochastic: m.nodes.some((n) => (n.op === "dropout" && Number(n.attrs.rate) > 0) || (n.op === "attention" && Number(n.attrs.dropout) > 0) || n.op === "sample_normal" || n.op === "random_normal_like"),
    });
  }

  async optimizerState(): Promise<Record<string, HostTensor>> {
    const steps = stepsOf(this.phase!);
    const out: Record<string, HostTensor> = {};
    for (let k = 0; k < steps.length; k++) {
      const f = this.file("opt");
      await this.req("opt_get", { file: f, step: k });
      const { step, slots } = bySlot(this.take(f));
      if (step) out[stepSlotKey(steps, k, "step")] = { dtype: "F32", shape: [], data: step };
      for (const [slot, tensors] of slots) for (const [name, t] of Object.entries(this.fromTorch(tensors, true))) out[stepSlotKey(steps, k, `${name}/${slot}`)] = t;
    }
    return out;
  }

  async loadOptimizerState(s: Record<string, HostTensor>): Promise<void> {
    const steps = stepsOf(this.phase!);
    for (let k = 0; k < steps.length; k++) {
      const { step, slots } = bySlot(slotsOfStep(steps, k, s));
      const out: Record<string, HostTensor> = step ? { step: { dtype: "F32", shape: [1], data: step } } : {};
      for (const [slot, weights] of slots) {
        const params = this.o.model.params.filter((p) => weights[p.name]);
        const f32 = Object.fromEntries(Object.entries(weights).map(([key, v]) => [key, hostF32(v)]));
        for (const [key, v] of toTorchStateDict(params, f32, this.o.model.params)) out[`${key}/${slot}`] = { dtype: "F32", shape: v.shape, data: v.data };
      }
      const f = this.file("optset");
      writeFileSync(f, encodeSafetensors(out));
      await this.req("opt_set", { file: f, step: k });
      rmSync(f, { force: true });
    }
  }

  async setMasks(masks: Masks): Promise<void> {
    const params = this.o.model.params.filter((p) => masks.has(p.name));
    const host = Object.fromEntries(params.map((p) => [p.name, { dtype: "F32", shape: p.shape.slice(), data: Float32Array.from(masks.get(p.name)!) } as HostTensor]));
    const f = this.file("masks");
    writeFileSync(f, this.stateDict(host, params));
    await this.req("masks", { file: f });
    rmSync(f, { force: true });
  }

  async prepare(split: Split): Promise<void> {
    await this.split(split);
  }

  /** The split's shard, written once and memory-mapped by the Python side. */
  private async split(s: Split): Promise<string> {
    // An augmented epoch's view replaces its split's shard (under the same name): one shard per split, redrawn each epoch.
    const key = s.base ?? s;
    const known = this.splits.get(key);
    if (known && known.of === s) return known.name;
    const name = known?.name ?? `split${++this.nSplits}`;
    const all = s.batch(Uint32Array.from({ length: s.size }, (_, i) => i));
    const tensors: Record<string, HostTensor> = {};
    for (const [k, t] of Object.entries(all)) tensors[k] = { dtype: t.dtype === "float32" ? "F32" : t.dtype === "int32" ? "I32" : "BOOL", shape: t.shape.slice(), data: t.data as Float32Array | Int32Array };
    const f = path.join(this.dir, `${name}.${++this.nShards}.safetensors`);
    writeFileSync(f, encodeSafetensors(tensors));
    await this.req("data", { split: name, file: f });
    // The Python side has mapped the new file; the old one goes (a mapped file stays readable until unmapped).
    if (known) rmSync(known.file, { force: true });
    this.splits.set(key, { of: s, name, file: f });
    return name;
  }

  async trainSteps(s: Steps): Promise<number[]> {
    const split = await this.split(s.split);
    const t0 = performance.now();
    const r = await this.req("train_steps", {
      split,
      batches: s.batches.map((b) => Array.from(b)),
      lrs: s.lrs,
      seeds: s.batches.map((_, i) => seeder(s.seed, s.firstStep + i)()),
      collect: s.collect,
      ...(s.mix ? { mix: s.mix.map((m) => (m ? { lambda: m.lambda, partners: Array.from(m.partners), box: m.box, fields: m.fields } : null)) } : {}),
    });
    if (s.collect) this.collectPairs = s.collect.pairs;
    const losses = (r.losses as (number | string)[]).map(Number);
    this.stepSeconds = (performance.now() - t0) / 1000 / Math.max(1, s.batches.length);
    return losses;
  }

  async takeTrainParts(): Promise<TrainParts> {
    const f = this.file("parts");
    const pairs = this.collectPairs;
    const r = (await this.req("train_parts", { file: f, pairs: pairs.length })) as unknown as { parts: (PartInfo | null)[]; terms: number[] | null };
    const t = this.take(f);
    const parts = new Map<string, Collected>();
    pairs.forEach(([pred, target], i) => {
      const info = r.parts[i];
      if (info?.rows) parts.set(pairKeyOf(pred, target), collected(t, String(i), info));
    });
    return { parts, terms: r.terms };
  }

  async evaluate(plan: PlanSpec, split: Split, batch: number): Promise<Evaluation> {
    const name = await this.split(split);
    const pairs = new Map(plan.metrics.map((mt) => [pairKey(mt), [String(mt.args.prediction), String(mt.args.target)]]));
    const f = this.file("eval");
    const r = (await this.req("evaluate", { split: name, batch, losses: lossTerms(plan.loss), pairs: [...pairs.values()], inputs: this.o.model.inputs.map((i) => i.name), file: f })) as {
      loss: number | string;
      parts: PartInfo[];
      terms: (number | string)[] | null;
    };
    const t = this.take(f);
    const parts = new Map<string, Collected>();
    [...pairs.keys()].forEach((key, i) => {
      const info = r.parts[i];
      if (info) parts.set(key, collected(t, String(i), info));
    });
    // A loss that is not finite comes as "nan", "inf" or "-inf" (engine.py's reply_line); checkFiniteResult refuses it.
    const num = (v: number | string) => (typeof v === "number" ? v : v === "inf" ? Infinity : v === "-inf" ? -Infinity : NaN);
    return { loss: num(r.loss), metrics: metricsOf(plan, parts), ...(r.terms ? { terms: r.terms.map(num) } : {}) };
  }

  /** Steps per call: about a quarter of a second's worth, at most 256 (Ctrl-C and progress between calls). */
  chunk(): number {
    if (this.stepSeconds <= 0) return 1;
    return Math.max(1, Math.min(256, Math.round(0.25 / this.stepSeconds)));
  }

  async dispose(): Promise<void> {
    try {
      await this.proc.close();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
      if (this.o.moduleDir) rmSync(this.o.moduleDir, { recursive: true, force: true });
    }
  }

  /** Outputs of the model for a batch of inputs (inference mode), by output name. */
  async predict(inputs: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    const fi = this.file("in");
    const fo = this.file("out");
    writeFileSync(fi, encodeSafetensors(inputs));
    await this.req("forward", { inputs: fi, outputs: fo, training: false });
    rmSync(fi, { force: true });
    return this.take(fo);
  }
}

/** How the torch engine runs: the device and the precision of its arithmetic. */
export interface TorchRunOptions {
  device: string;
  precision: string;
  /** The -O level the model was optimized at (for the module's header). */
  level: number;
  /** --checkpoint-activations: block instances run through torch.utils.checkpoint (compiler/emit/torch.ts). */
  checkpointActivations?: boolean;
  /** This process is worker `rank` of a data-parallel job of `world`, meeting at `master` (HOST:PORT). */
  distributed?: { rank: number; world: number; localRank: number; master: string };
}

/**
 * What can be refused before any data is read: the device and precision named (NN7004, NN7006), the Python
 * that would run them (NN7001–NN7003), and whether its torch sees that device (NN7005).
 */
export function checkTorchOptions(o: Pick<TorchRunOptions, "device" | "precision">): void {
  if (!/^(cpu|cuda(:\d+)?|mps)$/.test(o.device)) throw runError("unknownDevice", { device: o.device });
  if (o.precision !== "fp32" && o.precision !== "bf16") throw runError("precisionUnsupported", { precision: o.precision });
  const hello = checkPython();
  const cuda = /^cuda(:(\d+))?$/.exec(o.device);
  const missing = (why: string, hint: string) => runError("deviceMissing", { device: o.device, torch: hello.torch, why, hint });
  if (cuda && !hello.cuda) throw missing("sees no CUDA device (a CPU-only build, or no GPU)", "use --device cpu, or set NNETC_PYTHON to a Python whose PyTorch is built with CUDA");
  const n = hello.cuda_devices;
  if (cuda?.[2] !== undefined && Number(cuda[2]) >= n) throw missing(`sees ${n === 1 ? "1 CUDA device" : `${n} CUDA devices`}`, `use cuda:0${n > 1 ? ` to cuda:${n - 1}` : ""}, or cuda (the first)`);
  if (o.device === "mps" && !hello.mps) throw missing("has no Metal (MPS) device", "use --device cpu (MPS is Apple silicon's GPU)");
}

/**
 * A torch engine for `model` (the IR optimized for training): checks the device and precision, starts the
 * process, emits the module and loads `start`'s weights. Usage problems are RunErrors (exit code 2).
 */
export async function startTorch(model: IRModel, o: TorchRunOptions, start: Record<string, HostTensor>): Promise<TorchEngine> {
  checkTorchOptions(o);
  const { emitTorch } = await import("../../compiler/emit/torch.js");
  const source = (f: string) => {
    try {
      return readFileSync(f, "utf8");
    } catch {
      return undefined;
    }
  };
  const r = emitTorch({ models: [model], datasets: [], plans: [] } as never, { displayPath: model.span.file, sourceText: source, version: "engine", level: o.level, checkpoint: !!o.checkpointActivations });
  if (!r.text) throw new RunError(`the torch engine cannot run model "${model.name}": ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ")}`);
  const proc = await TorchProcess.start().catch((e: unknown) => {
    throw e instanceof TorchError ? numbered(e, "") : e;
  });
  try {
    const hello = (await proc.request("hello")) as unknown as TorchHello;
    const dir = mkdtempSync(path.join(tmpdir(), "nnetc-module-"));
    const py = path.join(dir, "model.py");
    writeFileSync(py, r.text);
    const engine = await TorchEngine.create({ model, python: py, className: r.classes[model.name]!, device: o.device, precision: o.precision as "fp32" | "bf16", process: proc, moduleDir: dir, statements: r.statements, ...(o.distributed ? { distributed: o.distributed } : {}) }, start).catch((e: unknown) => {
      if (!(e instanceof TorchError)) throw e;
      // Rank 0 listens at the master's address: a port in use is the user's to change.
      if (o.distributed && /address already in use|EADDRINUSE|Errno 98/i.test(e.message)) throw runError("portInUse", { master: o.distributed.master });
      if (o.distributed && /timed out|Timeout|Connection refused/i.test(e.message)) throw runError("rendezvousFailed", { rank: o.distributed.rank, master: o.distributed.master, why: e.message.split("\n")[0]! });
      throw numbered(e, py, r.statements);
    });
    engine.versions = { torch: hello.torch, python: hello.python, cuda: hello.cuda };
    return engine;
  } catch (e) {
    await proc.close();
    throw e instanceof TorchError ? numbered(e, "") : e;
  }
}

