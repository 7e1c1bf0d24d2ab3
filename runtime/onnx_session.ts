// One exported model in one ONNX Runtime session, on either ONNX Runtime: onnxruntime-node (Node: the
// engine of `--engine onnx`, runtime/onnx_engine.ts) or onnxruntime-web (browsers: an emitted module's
// load(…, { engine: "onnx" }) in a bundle made with nnetc's plugin, which ships the model's inference graph).
// Platform-neutral: no file, no Node built-in, no onnxruntime import of its own — the module to run on is
// given (OnnxSessionOptions.ort) or set by the platform (setDefaultOrt: runtime/onnx_engine.ts sets
// onnxruntime-node). Also the weights an export needs from host values (finalWeights: derived weights
// computed, int8 ones kept behind DequantizeLinear) and the int8 tensors of a decoded int8 file.
import * as tf from "@tensorflow/tfjs-core";
import type * as Ort from "onnxruntime-common";
import { exportOnnx, type ExportWeight, type Int8Weight } from "../compiler/emit/onnx/index.js";
import type { Diagnostic } from "../compiler/diagnostics.js";
import type { DType, IRModel } from "../compiler/ir/types.js";
import { initBackend } from "./backend.js";
import { toFloat32, type HostTensor } from "./checkpoint/safetensors.js";
import type { Split } from "./data/index.js";
import { deriveWeights, disposeDerived } from "./derive.js";
import { EvalSums, type Evaluation } from "./engine.js";
import { RunError } from "./errors.js";
import type { PlanSpec } from "./spec.js";
import { batchTensors } from "./steps.js";

/** What an onnxruntime package exports (onnxruntime-node and onnxruntime-web share onnxruntime-common's API). */
type OrtModule = { InferenceSession: typeof Ort.InferenceSession; Tensor: typeof Ort.Tensor };

let defaultOrt: (o: OnnxSessionOptions) => Promise<unknown> = async () => {
  throw new RunError(`engine "onnx": no onnxruntime module; pass one as the ort option (onnxruntime-web in a browser)`);
};

/** The onnxruntime module a session runs on when none is given (runtime/onnx_engine.ts: onnxruntime-node). */
export function setDefaultOrt(f: (o: OnnxSessionOptions) => Promise<unknown>): void {
  defaultOrt = f;
}

/** An onnxruntime module as imported: its namespace, or the namespace's default (CommonJS builds). */
export function ortOf(m: unknown): OrtModule {
  const x = m as (OrtModule & { default?: OrtModule }) | null;
  const ort = x?.InferenceSession ? x : x?.default;
  if (!ort?.InferenceSession || !ort.Tensor) throw new RunError(`engine "onnx": the ort option is not an onnxruntime module (onnxruntime-node, onnxruntime-web): it has no InferenceSession`);
  return ort;
}

/**
 * `model` with its final weights as ONNX bytes. A layer with no ONNX form fails: `onError` makes the error
 * (the CLI's NN6001 with the layer's location), else a RunError naming the layer and the way out.
 */
export function onnxBytes(model: IRModel, weights: ReadonlyMap<string, ExportWeight>, producerVersion = "nnetc", onError?: (d: Diagnostic) => Error): { bytes: Uint8Array; nodes: number; transposes: number; int8: number } {
  const r = exportOnnx(model, weights, { producerVersion, metadata: { engine: "onnx" } });
  if (!r.bytes) {
    const d = r.diagnostics[0]!;
    throw onError ? onError(d) : new RunError(`engine "onnx": ${model.name} has no ONNX form (${d.code}: ${d.message}); use the default engine "tfjs"`);
  }
  return { bytes: r.bytes, nodes: r.stats.nodes, transposes: r.stats.transposes, int8: [...weights.values()].filter((w) => "q" in w).length };
}


/** An output's values on the host, in the IR's layout (NHWC), floats as float32 and integers as int32. */
export interface OnnxOutput {
  dtype: "float32" | "int32";
  shape: number[];
  data: Float32Array | Int32Array;
}

/** An input on the host: a tfjs tensor's values, or a HostTensor. */
export interface OnnxInput {
  shape: readonly number[];
  data: ArrayLike<number>;
}

const INT = new Set<DType>(["i8", "i32", "i64", "bool"]);

export interface OnnxSessionOptions {
  /** onnxruntime's intra-op threads (default: its own choice, the machine's cores). */
  threads?: number;
  /** The module to import instead of onnxruntime-node (tests; Node only). */
  specifier?: string;
  /**
   * The onnxruntime module to run on, as imported (onnxruntime-node, or onnxruntime-web or one of its builds
   * such as onnxruntime-web/wasm): configure it (env.wasm.wasmPaths, numThreads) before passing it. Default: the
   * platform's (setDefaultOrt; onnxruntime-node in Node).
   */
  ort?: unknown;
  /** false: idle pool threads sleep at once instead of spinning (two sessions taking turns on few cores: benchmarks). */
  spinning?: boolean;
}

/**
 * The session options the engine runs with. DequantizeLinear stays a float operator: onnxruntime's int8 kernels
 * would also quantize activations, moving outputs by ~1e-3 from what the tfjs engine computes with the same
 * int8 weights.
 */
export function sessionOptions(o: OnnxSessionOptions = {}): Ort.InferenceSession.SessionOptions {
  return { extra: { session: { disable_quant_qdq: "1", ...(o.spinning === false ? { "intra_op.allow_spinning": "0", "inter_op.allow_spinning": "0" } : {}) } }, ...(o.threads ? { intraOpNumThreads: o.threads, interOpNumThreads: 1 } : {}) };
}

/** One exported model in one onnxruntime session. */
export class OnnxSession {
  readonly name = "onnx";
  /** The session's input and output names, in the model's order (read once: each read crosses into the native binding). */
  private readonly inputNames: readonly string[];
  private readonly outputNames: readonly string[];

  private constructor(
    private readonly ort: OrtModule,
    private readonly session: Ort.InferenceSession,
    readonly model: IRModel,
    /** ONNX operators and transposes of the export, bytes of the file. */
    readonly stats: { nodes: number; transposes: number; bytes: number; int8: number },
  ) {
    this.inputNames = [...session.inputNames];
    this.outputNames = [...session.outputNames];
  }

  /**
   * Export `model` (the inference model, optimized at the run's -O level) with its final weights and start a
   * session. A layer with no ONNX form is NN6001 at that layer, suggesting the tfjs engine.
   */
  static async create(model: IRModel, weights: ReadonlyMap<string, ExportWeight>, o: OnnxSessionOptions & { producerVersion?: string; onError?: (d: Diagnostic) => Error } = {}): Promise<OnnxSession> {
    const x = onnxBytes(model, weights, o.producerVersion, o.onError);
    return OnnxSession.open(model, x.bytes, o, { nodes: x.nodes, transposes: x.transposes, int8: x.int8 });
  }

  /** A session for `bytes`, the ONNX export of `model` (benchmarks time it against a bare onnxruntime session of the same bytes). */
  static async open(model: IRModel, bytes: Uint8Array, o: OnnxSessionOptions = {}, stats: { nodes: number; transposes: number; int8: number } = { nodes: 0, transposes: 0, int8: 0 }): Promise<OnnxSession> {
    const ort = ortOf(o.ort ?? (await defaultOrt(o)));
    const session = await ort.InferenceSession.create(bytes, sessionOptions(o));
    return new OnnxSession(ort, session, model, { ...stats, bytes: bytes.length });
  }

  /** The model's outputs for a batch of inputs (by input name), by output name. */
  async run(inputs: Readonly<Record<string, OnnxInput>>): Promise<Record<string, OnnxOutput>> {
    const feeds: Record<string, Ort.Tensor> = {};
    this.model.inputs.forEach((inp, i) => {
      const v = inputs[inp.name];
      if (!v) throw new Error(`no value for input "${inp.name}"`);
      const shape = [...v.shape];
      const T = this.ort.Tensor;
      if (inp.dtype === "i64") feeds[this.inputNames[i]!] = new T("int64", BigInt64Array.from(Array.from(v.data, (x) => BigInt(x))), shape);
      else if (INT.has(inp.dtype)) feeds[this.inputNames[i]!] = new T("int32", v.data instanceof Int32Array ? v.data : Int32Array.from(v.data), shape);
      else feeds[this.inputNames[i]!] = new T("float32", v.data instanceof Float32Array ? v.data : Float32Array.from(v.data), shape);
    });
    const got = await this.session.run(feeds);
    const out: Record<string, OnnxOutput> = {};
    this.model.outputs.forEach((o, i) => {
      const t = got[this.outputNames[i]!]!;
      const shape = t.dims.map(Number);
      const d = t.data;
      if (d instanceof Float32Array) out[o.name] = { dtype: "float32", shape, data: d };
      else if (d instanceof Int32Array) out[o.name] = { dtype: "int32", shape, data: d };
      else if (d instanceof BigInt64Array) out[o.name] = { dtype: "int32", shape, data: Int32Array.from(d, (x) => Number(x)) };
      else out[o.name] = { dtype: "float32", shape, data: Float32Array.from(d as ArrayLike<number>, Number) };
    });
    return out;
  }

  /** Outputs for tfjs tensors, as tfjs tensors (the caller disposes them). */
  async runTensors(inputs: Readonly<Record<string, tf.Tensor>>): Promise<Record<string, tf.Tensor>> {
    const host = Object.fromEntries(this.model.inputs.map((inp) => [inp.name, { shape: inputs[inp.name]!.shape, data: inputs[inp.name]!.dataSync() as Float32Array | Int32Array }]));
    const got = await this.run(host);
    return Object.fromEntries(Object.entries(got).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.dtype)]));
  }

  /** Loss and metrics of the plan over a split, measured from this session's outputs as on TensorFlow.js. */
  async evaluate(plan: PlanSpec, split: Split, batch: number): Promise<Evaluation> {
    const sums = new EvalSums(plan);
    for (let start = 0; start < split.size; start += batch) {
      const idx = Array.from({ length: Math.min(batch, split.size - start) }, (_, i) => start + i);
      const data = batchTensors(split, idx);
      const outputs = await this.runTensors(data);
      await sums.add(outputs, data, idx.length);
      tf.dispose([...Object.values(data), ...Object.values(outputs)]);
    }
    return sums.result();
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/**
 * The export's weights from the unoptimized model's (`host`, float): int8 ones kept quantized where
 * `quantized` has them, derived ones computed.
 */
export async function finalWeights(exported: IRModel, host: Record<string, HostTensor>, quantized: ReadonlyMap<string, Int8Weight> = new Map()): Promise<{ weights: Map<string, ExportWeight>; int8: number }> {
  const float = (name: string): Float32Array => {
    const t = host[name];
    if (!t) throw new Error(`no weight "${name}"`);
    return t.dtype === "F32" && t.data instanceof Float32Array ? t.data : toFloat32(t);
  };
  const weights = new Map<string, ExportWeight>();
  let int8 = 0;
  const derived = exported.params.filter((p) => p.derive);
  for (const p of exported.params) {
    if (p.derive) continue;
    const q = quantized.get(p.name);
    if (q) {
      weights.set(p.name, q);
      int8++;
    } else weights.set(p.name, { shape: p.shape, data: float(p.name) });
  }
  if (derived.length) {
    // The backend already running (tests, benchmarks), else the plain JavaScript one: a few multiplications.
    if (!tf.engine().backendName) await initBackend("cpu");
    // Only the source weights the derivations read become tensors.
    const needed = new Set<string>();
    for (const p of derived) for (const v of Object.values(p.derive!.args)) if (typeof v === "string" && host[v]) needed.add(v);
    const source = new Map<string, tf.Variable>();
    for (const name of needed) source.set(name, tf.variable(tf.tensor(float(name), host[name]!.shape, "float32"), false));
    const values = deriveWeights(derived, source);
    for (const p of derived) weights.set(p.name, { shape: p.shape, data: values.get(p.name)!.dataSync() as Float32Array });
    disposeDerived(values, source);
    for (const v of source.values()) v.dispose();
  }
  return { weights, int8 };
}

/**
 * A session for a model's inference graph (`exported`: its -O2 inference form, as nnetc's bundler plugin ships
 * it) with `trained` weights (host, nnetc names: the model's own; `int8`: an int8 file's tensors, kept int8
 * behind DequantizeLinear).
 */
export async function sessionFromGraph(exported: IRModel, trained: { weights: Record<string, HostTensor>; int8?: ReadonlyMap<string, Int8Weight> }, o: OnnxSessionOptions): Promise<OnnxSession> {
  const { weights } = await finalWeights(exported, trained.weights, trained.int8);
  return OnnxSession.create(exported, weights, o);
}
