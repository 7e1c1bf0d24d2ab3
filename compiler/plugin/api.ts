// `nnetc/config`: the plugin API (spec/language.md §15). A project's nnetc.config.mjs (or .js) exports
// `defineConfig({ plugins: [definePlugin({...})] })`; compiler/plugin/load.ts finds, validates and installs it.
// Plugins are added to THE tables the built-ins live in (the op registry, the plan tables, each engine's op
// table), each table's module registering an installer here with `onPlugins`: a plugin is seen by the checker,
// `summary`, the language server and every engine exactly as a built-in is. A leaf module: it imports nothing at
// run time, so that the runtime, the compiler and the CLI's bundle (which holds its own copies of the compiler's
// modules) share one store, kept on globalThis.
import type { AttrValue } from "../ir/types.js";

/** A parameter of a plugin op, loss, metric, source or step (compiler/ir/signature.ts's ParamSpec, a subset). */
export interface PluginParam {
  name: string;
  type: "int" | "float" | "bool" | "string" | "enum" | "ints";
  /** Absent: required. */
  default?: number | string | boolean | null | readonly number[];
  min?: number;
  max?: number;
  /** enum: the words it takes. */
  values?: readonly string[];
  doc?: string;
}

/** A tensor's static shape (numbers, or symbolic dimension names such as "batch") and element type. */
export interface PluginTensorInfo {
  shape: readonly (number | string)[];
  dtype: string;
}

/** The part of @tensorflow/tfjs-core plugins use; typed loosely so that a plugin needs no tfjs import. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Tf = any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TfTensor = any;

/** What an op's ONNX lowering builds with: values are ONNX value names, all in the IR's layout (NHWC). */
export interface OnnxBuilder {
  /** The op's tensor inputs. */
  inputs: readonly string[];
  attrs: Readonly<Record<string, AttrValue>>;
  /** Adds an ONNX node (opset 17) and returns its (first) output. Attribute values: onnxInt, onnxFloat, onnxInts. */
  op(type: string, inputs: readonly string[], attrs?: Record<string, unknown>): string;
  /** A float32 scalar constant. */
  scalar(value: number): string;
  int(v: number): unknown;
  float(v: number): unknown;
  ints(v: readonly number[]): unknown;
}

export interface PluginOp {
  /** How .nnet source calls it: x -> swish(beta: 1.5). Must not be a built-in op's name. */
  name: string;
  doc: string;
  params?: readonly PluginParam[];
  /** Number of tensor inputs: n, or [min, max] (default 1). */
  inputs?: number | readonly [number, number];
  /**
   * The shape and dtype rule: return the output, or a message saying what is wrong (reported as NN8007 at the
   * layer). Default: the output is shaped like the first input, which must be a float tensor.
   */
  shape?(inputs: readonly PluginTensorInfo[], attrs: Readonly<Record<string, AttrValue>>): PluginTensorInfo | string;
  /** FLOPs for one sample (shapes with batch 1). Default: one per output value. */
  flops?(inputs: readonly (readonly number[])[], output: readonly number[], attrs: Readonly<Record<string, AttrValue>>): number;
  /** The forward pass on TensorFlow.js (training and inference on the tfjs engine). Required. */
  tfjs(tf: Tf, inputs: readonly TfTensor[], attrs: Readonly<Record<string, AttrValue>>): TfTensor;
  /** Optional custom gradient: the gradients of the inputs, given the inputs, the output and dy. Default: autodiff. */
  gradient?(tf: Tf, inputs: readonly TfTensor[], output: TfTensor, dy: TfTensor, attrs: Readonly<Record<string, AttrValue>>): TfTensor[];
  /** ONNX lowering (nnetc compile --target onnx, --engine onnx). Returns the output's value name. */
  onnx?(g: OnnxBuilder): string;
  /** PyTorch lowering (--engine torch, --target pytorch): a one-line Python expression over the inputs' expressions and the attributes as Python literals; `torch` and `F` (torch.nn.functional) are imported. */
  torch?(inputs: readonly string[], attrs: Readonly<Record<string, string>>): string;
}

export interface PluginLoss {
  name: string;
  doc: string;
  /** What the target holds: values shaped like the prediction (default) or class ids. */
  target?: "values" | "classes";
  /** Arguments after prediction and target. */
  params?: readonly PluginParam[];
  /** The loss on TensorFlow.js: a scalar tensor, the mean over the batch. */
  tfjs(tf: Tf, prediction: TfTensor, target: TfTensor, args: Readonly<Record<string, unknown>>): TfTensor;
  /** The loss on the torch engine: a Python expression over `pred`, `target` (float), `args`, `torch`, `F`. */
  torch?: string;
}

/** What a metric sees: the whole split's predictions and targets, in plain arrays. */
export interface MetricInput {
  /** The predictions, row-major [rows, classes] (classes 1 for one value per row). */
  scores: Float32Array;
  /** The targets, one per row for class ids, else one per score. */
  targets: ArrayLike<number>;
  rows: number;
  classes: number;
}

export interface PluginMetric {
  name: string;
  doc: string;
  higherIsBetter: boolean;
  /** A classification metric (targets are class ids): default false. */
  classification?: boolean;
  params?: readonly PluginParam[];
  compute(input: MetricInput, args: Readonly<Record<string, unknown>>): number;
}

/** A data source's table: columns of equal length; a column is numbers per row or one string per row. */
export interface PluginTable {
  rows: number;
  columns: Record<string, { shape: readonly number[]; values: ArrayLike<number> } | { strings: readonly string[] }>;
}

export interface PluginSource {
  name: string;
  doc: string;
  /** The columns it provides. */
  columns: readonly string[];
  params?: readonly PluginParam[];
  /** Reads the data (relative paths are relative to `baseDir`, the .nnet file's folder). */
  load(args: Readonly<Record<string, unknown>>, ctx: { baseDir: string; log(message: string): void }): PluginTable | Promise<PluginTable>;
}

export interface PluginStep {
  name: string;
  doc: string;
  params?: readonly PluginParam[];
  /** Maps one sample's float values to new values of the same length (a per-element or per-sample transform). */
  apply(values: Float32Array, args: Readonly<Record<string, unknown>>): Float32Array | number[];
}

/** One epoch's record, as metrics.jsonl holds it. */
export interface EpochInfo {
  phase: string;
  epoch: number;
  step: number;
  lr: number;
  loss: number;
  [metric: string]: unknown;
}

export interface PluginCallback {
  name: string;
  doc?: string;
  onTrainBegin?(info: { model: string; plan: string; outDir: string; epochs: number }): void | Promise<void>;
  /** Return "stop" to end training after this epoch (Keras's model.stop_training). */
  onEpochEnd?(record: EpochInfo): void | "stop" | Promise<void | "stop">;
  onTrainEnd?(info: { outDir: string; epochs: number; stopped: boolean }): void | Promise<void>;
}

export interface NnetcPlugin {
  name: string;
  ops?: readonly PluginOp[];
  losses?: readonly PluginLoss[];
  metrics?: readonly PluginMetric[];
  sources?: readonly PluginSource[];
  steps?: readonly PluginStep[];
  callbacks?: readonly PluginCallback[];
}

export interface NnetcConfig {
  plugins: readonly NnetcPlugin[];
}

/** Identity functions that give a config file's objects their types. */
export function definePlugin(p: NnetcPlugin): NnetcPlugin {
  return p;
}
export function defineConfig(c: NnetcConfig): NnetcConfig {
  return c;
}

// ── the store ────────────────────────────────────────────────────────────────────────────────────

/** A validated plugin and the config file it came from (named in every diagnostic about it). */
export interface LoadedPlugin {
  plugin: NnetcPlugin;
  file: string;
}

/** Adds a plugin's entries to one table; returns what removes them again. */
export type Installer = (p: LoadedPlugin) => () => void;

interface Store {
  loaded: LoadedPlugin[];
  installers: Installer[];
  undo: (() => void)[];
}

const KEY = Symbol.for("nnetc.plugins");

function store(): Store {
  const g = globalThis as unknown as Record<symbol, Store | undefined>;
  return (g[KEY] ??= { loaded: [], installers: [], undo: [] });
}

/** Called once by each table's module: installs the plugins loaded so far and every later one. */
export function onPlugins(install: Installer): void {
  const s = store();
  s.installers.push(install);
  for (const p of s.loaded) s.undo.push(install(p));
}

/** Installs a validated plugin into every table (compiler/plugin/load.ts validates first). */
export function addPlugin(p: LoadedPlugin): void {
  const s = store();
  s.loaded.push(p);
  for (const i of s.installers) s.undo.push(i(p));
}

/** Removes every plugin from every table (tests; the language server when a config file changes). */
export function clearPlugins(): void {
  const s = store();
  for (const u of s.undo.reverse()) u();
  s.undo = [];
  s.loaded = [];
}

export function loadedPlugins(): readonly LoadedPlugin[] {
  return store().loaded;
}

/** The plugin entry of a kind by name, with its plugin. */
export function pluginEntry<K extends "ops" | "losses" | "metrics" | "sources" | "steps">(kind: K, name: string): { entry: NonNullable<NnetcPlugin[K]>[number]; from: LoadedPlugin } | undefined {
  for (const from of store().loaded) {
    const entry = (from.plugin[kind] as readonly { name: string }[] | undefined)?.find((e) => e.name === name);
    if (entry) return { entry: entry as NonNullable<NnetcPlugin[K]>[number], from };
  }
  return undefined;
}

/** Every callback of every loaded plugin, in load order. */
export function pluginCallbacks(): { callback: PluginCallback; from: LoadedPlugin }[] {
  return store().loaded.flatMap((from) => (from.plugin.callbacks ?? []).map((callback) => ({ callback, from })));
}

/** A plugin function that threw: reported as NN8006 with the plugin's name and file, never as an internal error. */
export class PluginError extends Error {
  constructor(
    readonly plugin: string,
    readonly file: string,
    readonly what: string,
    readonly error: unknown,
  ) {
    super(`plugin "${plugin}" (${file}): ${what} threw: ${errorText(error)}`);
  }
}

/** What a plugin threw, as text (plugins may throw anything). */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs a plugin function, turning what it throws into a PluginError. */
export function guard<T>(from: LoadedPlugin, what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PluginError) throw e;
    throw new PluginError(from.plugin.name, from.file, what, e);
  }
}

/** guard for a function that may return a promise: what it throws or rejects with is a PluginError. */
export async function guardAsync<T>(from: LoadedPlugin, what: string, f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof PluginError) throw e;
    throw new PluginError(from.plugin.name, from.file, what, e);
  }
}
