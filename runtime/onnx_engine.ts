// The ONNX Runtime engine (`nnetc eval|predict --engine onnx`, an emitted module's load(…, { engine: "onnx" })):
// the inference model exported to ONNX in memory (compiler/emit/onnx, the exporter `compile --target onnx`
// uses, with the same weights: int8 files stay int8 behind DequantizeLinear) and run by onnxruntime-node.
// Inference only: it holds no optimizer and trains nothing (train --engine onnx is NN7020). Loss and metrics
// are measured from its outputs by engine.ts's EvalSums, as on TensorFlow.js.
//
// Node-specific: onnxruntime-node is imported here, lazily and only here (a browser build would put
// onnxruntime-web behind the same OnnxSession).
import * as tf from "@tensorflow/tfjs-core";
import type * as Ort from "onnxruntime-node";
import { exportOnnx, type ExportWeight, type Int8Weight } from "../compiler/emit/onnx/index.js";
import type { DType, IRModel } from "../compiler/ir/types.js";
import { toFloat32, type HostTensor } from "./checkpoint/index.js";
import type { Split } from "./data/index.js";
import { EvalSums, type Evaluation } from "./engine.js";
import { finalWeights, int8Tensors } from "./onnx.js";
import { diagnosticError, runError } from "./run_diagnostics.js";
import type { PlanSpec } from "./spec.js";
import { batchTensors, hostWeight } from "./steps.js";

type OrtModule = typeof Ort;

let ortModule: Promise<OrtModule> | null = null;

/** onnxruntime-node, imported on first use; NN7021 when it cannot be (`specifier`: tests name a missing one). */
export async function loadOrt(specifier = "onnxruntime-node"): Promise<OrtModule> {
  const load = async () => {
    try {
      const m = (await import(specifier)) as OrtModule & { default?: OrtModule };
      return m.InferenceSession ? m : m.default!;
    } catch (e) {
      throw runError("noOnnxRuntime", { why: ((e as Error).message ?? String(e)).split("\n")[0]! });
    }
  };
  if (specifier !== "onnxruntime-node") return load();
  ortModule ??= load().catch((e: unknown) => {
    ortModule = null;
    throw e;
  });
  return ortModule;
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
  /** The module to import instead of onnxruntime-node (tests). */
  specifier?: string;
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

/** `model` with its final weights as ONNX bytes; a layer with no ONNX form is NN6001 at that layer, suggesting the tfjs engine. */
export function onnxExport(model: IRModel, weights: ReadonlyMap<string, ExportWeight>, producerVersion = "nnetc"): { bytes: Uint8Array; nodes: number; transposes: number; int8: number } {
  const r = exportOnnx(model, weights, { producerVersion, metadata: { engine: "onnx" } });
  if (!r.bytes) throw diagnosticError({ ...r.diagnostics[0]!, hint: `--engine onnx runs the model's ONNX export: run this model with --engine tfjs (the default)${r.diagnostics[0]!.hint ? `, or ${r.diagnostics[0]!.hint}` : ""}` });
  return { bytes: r.bytes, nodes: r.stats.nodes, transposes: r.stats.transposes, int8: [...weights.values()].filter((w) => "q" in w).length };
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
  static async create(model: IRModel, weights: ReadonlyMap<string, ExportWeight>, o: OnnxSessionOptions & { producerVersion?: string } = {}): Promise<OnnxSession> {
    const x = onnxExport(model, weights, o.producerVersion);
    return OnnxSession.open(model, x.bytes, o, { nodes: x.nodes, transposes: x.transposes, int8: x.int8 });
  }

  /** A session for `bytes`, the ONNX export of `model` (benchmarks time it against a bare onnxruntime session of the same bytes). */
  static async open(model: IRModel, bytes: Uint8Array, o: OnnxSessionOptions = {}, stats: { nodes: number; transposes: number; int8: number } = { nodes: 0, transposes: 0, int8: 0 }): Promise<OnnxSession> {
    const ort = await loadOrt(o.specifier);
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
 * A session for `exported` (the inference form of `model`) with trained weights (`trained.from` an int8
 * file: its int8 tensors exported as DequantizeLinear, as compile --target onnx --weights does).
 */
export async function startOnnx(model: IRModel, exported: IRModel, trained: { weights: Record<string, HostTensor>; from: string }, o: OnnxSessionOptions & { producerVersion?: string } = {}): Promise<OnnxSession> {
  const host: Record<string, HostTensor> = {};
  for (const p of model.params) {
    const h = hostWeight(trained.weights, p.name, p.shape, trained.from);
    host[p.name] = h.dtype === "F32" ? h : { dtype: "F32", shape: h.shape, data: toFloat32(h) };
  }
  const { weights } = await finalWeights(exported, host, int8Tensors(trained.from) as Map<string, Int8Weight>);
  return OnnxSession.create(exported, weights, o);
}
