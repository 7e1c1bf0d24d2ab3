// The PyTorch engine: a StepEngine (runtime/engine.ts) whose steps run in the emitted PyTorch module
// (compiler/emit/torch.ts) inside runtime/torch/engine.py. The plan stays in runtime/train.ts: this side only
// converts what crosses the interface — weights and optimizer slots between nnetc's and PyTorch's names and
// layouts (runtime/torch_layout.ts), splits into safetensors shards the Python side memory-maps once, batch
// indices, rates and seeds in, losses and predictions out.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { IRModel } from "../../compiler/ir/types.js";
import { decodeSafetensors, encodeSafetensors, type HostTensor } from "../checkpoint/index.js";
import type { Split } from "../data/index.js";
import { metricsOf, pairKey, type Evaluation, type PhaseSetup, type StepEngine, type Steps } from "../engine.js";
import { RunError } from "../errors.js";
import { collectHost, type Collected } from "../objective.js";
import { mapPretrained } from "../pretrained.js";
import type { Masks } from "../prune.js";
import type { PlanSpec } from "../spec.js";
import { seeder } from "../steps.js";
import { toTorchStateDict, torchKeys, type F32, type Roles } from "../torch_layout.js";
import { torchModulePath } from "../torch_names.js";
import { TorchError, TorchProcess } from "./process.js";

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
}

const F32_OF = (h: HostTensor): F32 => ({ shape: h.shape.slice(), data: h.data instanceof Float32Array ? h.data : Float32Array.from(h.data as ArrayLike<number>, Number) });

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
  const byLayer = new Map<string, Roles>();
  for (const p of model.params) {
    if (!byLayer.has(p.layer)) byLayer.set(p.layer, new Map());
    byLayer.get(p.layer)!.set(p.role, p);
  }
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
  private readonly splits = new WeakMap<Split, string>();
  private nSplits = 0;
  private stepSeconds = 0;
  private files = 0;

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
      await proc.request("load", { model: e.key, path: o.python, class: o.className, weights, device: o.device, ...(o.distributed ? { distributed: { rank: o.distributed.rank, world: o.distributed.world, master: o.distributed.master } } : {}) });
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
      if (e instanceof TorchError && e.where) throw new TorchError(`${e.message}${this.source(e.where)}`, e.where);
      throw e;
    }
  }

  /** " (in layer … of FILE.nnet:LINE: source)" for a Python frame "FILE.py:N in forward" of the emitted module. */
  private source(where: string): string {
    const m = /^(.*):(\d+) in /.exec(where);
    if (!m || path.resolve(m[1]!) !== path.resolve(this.o.python)) return ` (at ${where})`;
    const lines = readFileSync(this.o.python, "utf8").split("\n");
    for (let i = Number(m[2]) - 1; i >= 0; i--) {
      const c = /^\s+# (.*)$/.exec(lines[i] ?? "");
      if (c) return ` (in the PyTorch code of ${c[1]!.trim()}, ${path.basename(this.o.python)}:${m[2]})`;
      if (/^\s*def /.test(lines[i] ?? "")) break;
    }
    return ` (at ${where})`;
  }

  /** nnetc weights (all, or those given) as PyTorch's state_dict bytes. */
  private stateDict(host: Record<string, HostTensor>, params = this.o.model.params): Uint8Array {
    const f32 = Object.fromEntries(Object.entries(host).map(([k, v]) => [k, F32_OF(v)]));
    const out: Record<string, HostTensor> = {};
    for (const [k, v] of toTorchStateDict(params, f32, this.o.model.params)) out[k] = { dtype: "F32", shape: v.shape, data: v.data };
    return encodeSafetensors(out);
  }

  /** PyTorch tensors (state_dict keys) back in nnetc's names and layouts; missing ones allowed for slots. */
  private fromTorch(tensors: Record<string, HostTensor>, allowMissing: boolean): Record<string, HostTensor> {
    return mapPretrained(this.o.model.params, tensors, { from: "the torch engine", layout: "torch", map: [], allowMissing, allowExtra: false }).weights;
  }

  async getWeights(): Promise<Record<string, HostTensor>> {
    const f = this.file("get");
    await this.req("get_weights", { file: f });
    const sd = decodeSafetensors(new Uint8Array(readFileSync(f))).tensors;
    rmSync(f, { force: true });
    return this.fromTorch(sd, false);
  }

  async setWeights(host: Record<string, HostTensor>): Promise<void> {
    const f = this.file("set");
    writeFileSync(f, this.stateDict(host));
    await this.req("set_weights", { file: f });
    rmSync(f, { force: true });
  }

  async beginPhase(p: PhaseSetup): Promise<void> {
    const m = this.o.model;
    const withModule = new Set(m.params.map((x) => x.layer));
    await this.req("phase", {
      trainable: trainableKeys(m, p.trainable),
      decays: trainableKeys(m, p.decays),
      frozen: p.frozenLayers.filter((l) => withModule.has(l)).map(torchModulePath),
      optimizer: { fn: p.optimizer.fn, args: p.optimizer.args },
      weight_decay: p.weightDecay,
      clip: p.clip,
      losses: p.loss.map((t) => ({ fn: t.fn, prediction: t.prediction, target: t.target, weight: t.weight, args: t.args })),
      inputs: m.inputs.map((i) => i.name),
      precision: this.o.precision,
      accumulate: p.accumulate,
      // Steps are seeded (from the run's seed and the step) only where the model draws random numbers.
      stochastic: m.nodes.some((n) => (n.op === "dropout" && Number(n.attrs.rate) > 0) || (n.op === "attention" && Number(n.attrs.dropout) > 0)),
    });
  }

  async optimizerState(): Promise<Record<string, HostTensor>> {
    const f = this.file("opt");
    await this.req("opt_get", { file: f });
    const raw = decodeSafetensors(new Uint8Array(readFileSync(f))).tensors;
    rmSync(f, { force: true });
    const { step, slots } = bySlot(raw);
    const out: Record<string, HostTensor> = step ? { step: { dtype: "F32", shape: [], data: step } } : {};
    for (const [slot, tensors] of slots) for (const [name, t] of Object.entries(this.fromTorch(tensors, true))) out[`${name}/${slot}`] = t;
    return out;
  }

  async loadOptimizerState(s: Record<string, HostTensor>): Promise<void> {
    const { step, slots } = bySlot(s);
    const out: Record<string, HostTensor> = step ? { step: { dtype: "F32", shape: [1], data: step } } : {};
    for (const [slot, weights] of slots) {
      const params = this.o.model.params.filter((p) => weights[p.name]);
      const f32 = Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, F32_OF(v)]));
      for (const [k, v] of toTorchStateDict(params, f32, this.o.model.params)) out[`${k}/${slot}`] = { dtype: "F32", shape: v.shape, data: v.data };
    }
    const f = this.file("optset");
    writeFileSync(f, encodeSafetensors(out));
    await this.req("opt_set", { file: f });
    rmSync(f, { force: true });
  }

  async setMasks(masks: Masks): Promise<void> {
    const params = this.o.model.params.filter((p) => masks.has(p.name));
    const host = Object.fromEntries(params.map((p) => [p.name, { dtype: "F32", shape: p.shape.slice(), data: Float32Array.from(masks.get(p.name)!) } as HostTensor]));
    const f = this.file("masks");
    writeFileSync(f, this.stateDict(host, params));
    await this.req("masks", { file: f });
  }

  async prepare(split: Split): Promise<void> {
    await this.split(split);
  }

  /** The split's shard, written once and memory-mapped by the Python side. */
  private async split(s: Split): Promise<string> {
    const known = this.splits.get(s);
    if (known) return known;
    const name = `split${++this.nSplits}`;
    const all = s.batch(Uint32Array.from({ length: s.size }, (_, i) => i));
    const tensors: Record<string, HostTensor> = {};
    for (const [k, t] of Object.entries(all)) tensors[k] = { dtype: t.dtype === "float32" ? "F32" : t.dtype === "int32" ? "I32" : "BOOL", shape: t.shape.slice(), data: t.data as Float32Array | Int32Array };
    const f = path.join(this.dir, `${name}.safetensors`);
    writeFileSync(f, encodeSafetensors(tensors));
    await this.req("data", { split: name, file: f });
    this.splits.set(s, name);
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
    });
    const losses = (r.losses as (number | string)[]).map(Number);
    this.stepSeconds = (performance.now() - t0) / 1000 / Math.max(1, s.batches.length);
    return losses;
  }

  async takeTrainParts(): Promise<Collected | null> {
    const f = this.file("parts");
    const r = (await this.req("train_parts", { file: f })) as { rows: number; classes?: number; int_targets?: boolean };
    const t = decodeSafetensors(new Uint8Array(readFileSync(f))).tensors;
    rmSync(f, { force: true });
    if (!r.rows) return null;
    return collectHost(t.scores0!.data as Float32Array, r.classes!, t.targets0!.data as Float32Array, !!r.int_targets);
  }

  async evaluate(plan: PlanSpec, split: Split, batch: number): Promise<Evaluation> {
    const name = await this.split(split);
    const pairs = [...new Map(plan.metrics.map((mt) => [pairKey(mt), [String(mt.args.prediction), String(mt.args.target)]])).values()];
    const f = this.file("eval");
    const r = (await this.req("evaluate", { split: name, batch, losses: plan.loss.map((t) => ({ fn: t.fn, prediction: t.prediction, target: t.target, weight: t.weight, args: t.args })), pairs, inputs: this.o.model.inputs.map((i) => i.name), file: f })) as {
      loss: number | string;
      parts: { rows: number; classes: number; int_targets: boolean }[];
    };
    const t = decodeSafetensors(new Uint8Array(readFileSync(f))).tensors;
    rmSync(f, { force: true });
    const parts = new Map<string, Collected>();
    pairs.forEach(([p, tg], i) => {
      const info = r.parts[i];
      if (info) parts.set(`${p}|${tg}`, collectHost(t[`scores${i}`]!.data as Float32Array, info.classes, t[`targets${i}`]!.data as Float32Array, info.int_targets));
    });
    return { loss: Number(r.loss), metrics: metricsOf(plan, parts) };
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
    const got = decodeSafetensors(new Uint8Array(readFileSync(fo))).tensors;
    rmSync(fi, { force: true });
    rmSync(fo, { force: true });
    return got;
  }
}

/** How the torch engine runs: the device and the precision of its arithmetic. */
export interface TorchRunOptions {
  device: string;
  precision: string;
  /** The -O level the model was optimized at (for the module's header). */
  level: number;
  /** This process is worker `rank` of a data-parallel job of `world`, meeting at `master` (HOST:PORT). */
  distributed?: { rank: number; world: number; localRank: number; master: string };
}

/**
 * A torch engine for `model` (the IR optimized for training): checks the device and precision, starts the
 * process, emits the module and loads `start`'s weights. Usage problems are RunErrors (exit code 2).
 */
export async function startTorch(model: IRModel, o: TorchRunOptions, start: Record<string, HostTensor>): Promise<TorchEngine> {
  if (!/^(cpu|cuda(:\d+)?|mps)$/.test(o.device)) throw new RunError(`--device ${o.device}: use cpu, cuda, cuda:N or mps`);
  if (o.precision !== "fp32" && o.precision !== "bf16") {
    throw new RunError(o.precision === "fp16" ? "--precision fp16 needs loss scaling, which the torch engine does not do yet: use bf16 (same range as fp32) or fp32" : `--precision ${o.precision}: use fp32 or bf16`);
  }
  const { emitTorch } = await import("../../compiler/emit/torch.js");
  const source = (f: string) => {
    try {
      return readFileSync(f, "utf8");
    } catch {
      return undefined;
    }
  };
  const r = emitTorch({ models: [model], datasets: [], plans: [] } as never, { displayPath: model.span.file, sourceText: source, version: "engine", level: o.level });
  if (!r.text) throw new RunError(`the torch engine cannot run model "${model.name}": ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ")}`);
  const proc = await TorchProcess.start();
  try {
    const hello = (await proc.request("hello")) as { torch: string; cuda: boolean; cuda_devices?: number; mps?: boolean };
    const major = Number(hello.torch.split(".")[0]);
    const minor = Number(hello.torch.split(".")[1]);
    if (major < 1 || (major === 1 && minor < 13)) throw new RunError(`the torch engine needs PyTorch 1.13 or newer; this Python has ${hello.torch}: upgrade it (Debian 12: apt-get install python3-torch) or set NNETC_PYTHON`);
    const cuda = /^cuda(:(\d+))?$/.exec(o.device);
    if (cuda && !hello.cuda) throw new RunError(`--device ${o.device}: PyTorch ${hello.torch} here sees no CUDA device (a CPU-only build, or no GPU); use --device cpu, or a PyTorch built with CUDA (NNETC_PYTHON)`);
    if (cuda?.[2] !== undefined && Number(cuda[2]) >= (hello.cuda_devices ?? 0)) throw new RunError(`--device ${o.device}: there ${hello.cuda_devices === 1 ? "is 1 CUDA device" : `are ${hello.cuda_devices} CUDA devices`} (cuda:0…)`);
    if (o.device === "mps" && !hello.mps) throw new RunError(`--device mps: PyTorch ${hello.torch} here has no Metal (MPS) device; use --device cpu`);
    const dir = mkdtempSync(path.join(tmpdir(), "nnetc-module-"));
    const py = path.join(dir, "model.py");
    writeFileSync(py, r.text);
    const engine = await TorchEngine.create({ model, python: py, className: r.classes[model.name]!, device: o.device, precision: o.precision, process: proc, moduleDir: dir, ...(o.distributed ? { distributed: o.distributed } : {}) }, start).catch((e: unknown) => {
      // Rank 0 listens at the master's address: a port in use is the user's to change.
      if (o.distributed && e instanceof TorchError && /address already in use|EADDRINUSE|Errno 98/i.test(e.message)) throw new RunError(`the job's rendezvous ${o.distributed.master}: the port is already in use; choose a free one (--master HOST:PORT), or leave --master out on one machine`);
      if (o.distributed && e instanceof TorchError && /timed out|Timeout|Connection refused/i.test(e.message)) throw new RunError(`worker ${o.distributed.rank} could not meet the others at ${o.distributed.master} (${e.message.split("\n")[0]}); start every machine's command, with the same --master`);
      throw e;
    });
    engine.versions = { torch: hello.torch, python: String((hello as { python?: string }).python ?? "?"), cuda: hello.cuda };
    return engine;
  } catch (e) {
    await proc.close();
    throw e;
  }
}

export { RunError };
