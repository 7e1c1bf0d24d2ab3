// The IR: the one representation every later stage (checker, passes, runtime, emitters) consumes.
// spec/ir.schema.json describes its JSON form; a test validates every zoo model against it.
import type { Dim } from "./dims.js";

export const IR_VERSION = 1;

export type DType = "f16" | "f32" | "f64" | "i8" | "i32" | "i64" | "bool";
export const DTYPES: readonly DType[] = ["f16", "f32", "f64", "i8", "i32", "i64", "bool"];
export const FLOAT_DTYPES: readonly DType[] = ["f16", "f32", "f64"];
export const INT_DTYPES: readonly DType[] = ["i8", "i32", "i64"];

/** A source location: offsets into the file's text plus 1-based line and column of the start. */
export interface IRSpan {
  file: string;
  start: number;
  end: number;
  line: number;
  col: number;
}

export type AttrValue = number | string | boolean | null | AttrValue[];

export interface IRNode {
  /** Unique within the model: "n0", "n1", … in topological order. */
  id: string;
  op: string;
  /** The layer path: "conv2d_1", "Stage_2/Bottleneck_1/conv2d". Shared layers keep one name for every use. */
  name: string;
  inputs: string[];
  attrs: Record<string, AttrValue>;
  /** Filled in by the checker; null while unknown (or after an error upstream). */
  shape: Dim[] | null;
  dtype: DType | null;
  /** The binding whose value this node is the last step of, if any. */
  binding?: string;
  span: IRSpan;
}

export interface IRParam {
  /** `${layer}/${role}`, unique within the model. */
  name: string;
  layer: string;
  role: string;
  shape: number[];
  dtype: DType;
  init: string;
  trainable: boolean;
  /**
   * Set by optimization passes (fold-batchnorm): the weight is computed from trained weights of the
   * unoptimized model, named in `args`, by the runtime function `fn`; it is never trained or initialized.
   */
  derive?: { fn: "fold_bn_kernel" | "fold_bn_bias" | "merge_lora"; args: Record<string, AttrValue> };
}

export interface IRDimSymbol {
  name: string;
  max?: number;
}

export interface IRModel {
  name: string;
  doc?: string;
  span: IRSpan;
  dims: IRDimSymbol[];
  inputs: { name: string; node: string; dtype: DType; shape: Dim[] }[];
  outputs: { name: string; node: string }[];
  nodes: IRNode[];
  params: IRParam[];
}

export interface IRCall {
  fn: string;
  args: Record<string, AttrValue>;
  span: IRSpan;
}

export interface IRField {
  name: string;
  dtype: DType;
  /** Per-sample shape (no batch dimension). */
  shape: Dim[];
  column: string;
  steps: IRCall[];
  span: IRSpan;
}

export interface IRDataset {
  name: string;
  doc?: string;
  span: IRSpan;
  source: IRCall | null;
  test: IRCall | null;
  fields: IRField[];
  split: Record<string, AttrValue>;
  /** Keep only samples whose integer field `field` is one of `values` (e.g. five of ten classes). */
  filter: { field: string; values: number[] } | null;
}

export interface IRLossTerm {
  weight: number;
  fn: string;
  prediction: string;
  target: string;
  /** The target is another model output, not a dataset field (kl_normal's log-variance). */
  targetIsOutput?: true;
  /** The target is this number: a constant of the prediction's shape (`target` then spells it). */
  targetValue?: number;
  args: Record<string, AttrValue>;
  span: IRSpan;
  /** Where the prediction and target are named, for diagnostics. */
  predictionSpan: IRSpan;
  targetSpan: IRSpan;
}

/** Settings that a phase may override; a plan without phases has one phase named "main". */
export interface IRPhaseSettings {
  epochs: number;
  batch: number;
  /** Micro-batches per optimizer step (gradient accumulation); 1: none. A step takes batch × accumulate samples (× workers). */
  accumulate: number;
  optimizer: IRCall;
  schedule: IRCall[];
  weightDecay: number;
  clip: { norm?: number; value?: number } | null;
  earlyStop: { monitor: string; patience: number; minDelta: number; mode: "min" | "max"; restoreBest: boolean; span: IRSpan } | null;
  /** Freeze patterns as written, and the layers they resolve to. */
  freeze: IRFreeze[];
  frozenLayers: string[];
  dataset: string;
  /**
   * Magnitude pruning at the start of the phase (absent: none). `weights` are the kernels it prunes, filled
   * in by the checker from the prunable weights minus the `exclude` patterns' layers.
   */
  prune?: IRPrune;
  /** Low-rank adapters trained in this phase (absent: adapters, if any, stay fixed). */
  lora?: IRLora;
  /** mixup and/or cutmix of the training batches (absent: none). */
  mix?: IRMix;
}

/**
 * mixup / cutmix: the Beta(alpha, alpha) of each (null: not used), and what the checker resolved — the model
 * inputs mixup blends (float ones) and cutmix cuts (float [h, w, c] ones, with their height and width), and how
 * each loss term mixes (LOSSES' `mix`, in the plan's order).
 */
export interface IRMix {
  mixup: number | null;
  cutmix: number | null;
  inputs: string[];
  images: string[];
  /** The images' height and width (cutmix's boxes are drawn in these pixels); null without cutmix. */
  size: [number, number] | null;
  terms: ("labels" | "target" | "output")[];
  span: IRSpan;
}

/**
 * LoRA: adapters A [in, rank] and B [rank, out] on `targets` (resolved by the checker: a dense layer's name, or
 * an attention layer's `LAYER/query` … `LAYER/output`), whose base weights stay fixed while the adapters train.
 */
export interface IRLora {
  rank: number;
  alpha: number;
  dropout: number;
  patterns: { pattern: string; span: IRSpan }[];
  targets: string[];
  /**
   * Storage of the frozen base kernels while the adapters train: "int8" (QLoRA-style) holds the weights named in
   * `quantize` (resolved by the checker: the adapted kernels, and the other dense and attention kernels that no
   * phase from the first lora phase on trains) as int8 with one scale per output channel, quantized
   * (runtime/quantize.ts) when the first lora phase starts and dequantized in every forward pass.
   */
  base?: "float32" | "int8";
  quantize?: string[];
  span: IRSpan;
}

export interface IRPrune {
  sparsity: number;
  scope: "layer" | "global";
  exclude: { pattern: string; span: IRSpan }[];
  weights: string[];
  span: IRSpan;
}

/** The plan's export step: weights written pruned and/or quantized after training. */
export interface IRExport {
  quantize: "int8" | "float16" | null;
  prune: number | null;
  /** Training samples whose activation ranges an int8 file records. */
  calibration: number;
  /** The kernels a post-training prune touches (every prunable weight), filled in by the checker. */
  weights: string[];
  span: IRSpan;
}

export interface IRPhase extends IRPhaseSettings {
  name: string;
  doc?: string;
  span: IRSpan;
}

export interface IRPlan {
  name: string;
  model: string;
  dataset: string;
  doc?: string;
  span: IRSpan;
  loss: IRLossTerm[];
  metrics: IRCall[];
  validation: number;
  seed: number | null;
  checkpoint: { every: number; keep: number; monitor: string | null; span: IRSpan };
  phases: IRPhase[];
  /**
   * Steps run in turn on every batch (`alternate { step … }`: a GAN's discriminator, then its generator), each
   * with its own optimizer, frozen layers and loss terms; `loss` then holds every step's terms.
   */
  alternate?: IRStep[];
  export?: IRExport;
  /** Pretrained weights to start from (the `init` setting); absent when training starts from random weights. */
  init?: IRInit;
}

/** One step of an alternate block. */
export interface IRStep {
  name: string;
  doc?: string;
  span: IRSpan;
  optimizer: IRCall;
  weightDecay: number;
  clip: { norm?: number; value?: number } | null;
  freeze: IRFreeze[];
  frozenLayers: string[];
  /** Its loss terms: indices into the plan's `loss`. */
  terms: number[];
}

/** The `init` setting: where pretrained weights come from and how their names map onto the model's. */
export interface IRInit {
  /** The file as written, relative to the .nnet file. */
  from: string;
  /** torch: PyTorch state_dict names and layouts, converted; nnetc: names and layouts as nnetc writes them. */
  layout: "nnetc" | "torch" | "huggingface";
  /** Renames, in order: a tensor name (or a module prefix) of the file → a weight (or layer, or layer prefix) of the model. */
  map: { from: string; to: string; span: IRSpan }[];
  allowMissing: boolean;
  allowExtra: boolean;
  span: IRSpan;
}

export interface IRModule {
  irVersion: typeof IR_VERSION;
  file: string;
  models: IRModel[];
  datasets: IRDataset[];
  plans: IRPlan[];
}

/**
 * A freeze pattern as written. `nodes`: when it names a model-level binding whose value a block instance made
 * (its nodes carry the block's own labels, not the name), the nodes it was bound to: it freezes their layers.
 */
export interface IRFreeze {
  pattern: string;
  span: IRSpan;
  nodes?: string[];
}
