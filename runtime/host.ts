// What only Node can do for nnetc/runtime: read and write files (trained weights from paths, datasets for
// fit/evaluate/sampleBatch, save, a dataset's tokenizer file). runtime/index.ts, the platform-neutral entry
// (browsers, workers, Deno, Node), imports no Node built-in and reaches these through `nodeHost()`;
// runtime/node.ts, which Node gets for "nnetc/runtime" (package.json's "node" export condition) and as
// "nnetc/runtime/node", registers them when it loads. Nothing here is part of the package's API.
import type { HostTensor } from "./checkpoint/safetensors.js";
import type { Split } from "./data/index.js";
import type { SavedData } from "./data/saved.js";
import type { Vocabularies, Vocabulary } from "./data/tokenize.js";
import type { FitOptions, FitResult, Model, ModelDef, SaveOptions } from "./index.js";
import type { Net } from "./interpret.js";
import type { Int8Weight } from "../compiler/emit/onnx/index.js";
import type { PlanSpec } from "./spec.js";

/** Trained weights as read from a file, with what was saved beside them (`int8`: an int8 file's tensors as stored, for the ONNX engine). */
export type Trained = { weights: Record<string, HostTensor>; vocab?: Vocabularies; from: string; int8?: ReadonlyMap<string, Int8Weight> } & SavedData;

export interface NodeHost {
  /** Trained weights from a path (a run folder, a checkpoint, a .safetensors file, a tfjs model.json) or a file: URL. */
  loadTrained(from: string | URL, def: ModelDef<unknown, unknown>): Trained;
  /** The plan run by the training loop of `nnetc train` (runtime/train.ts), from the model's weights. */
  fit(model: Model<unknown, unknown>, net: Net, plan: PlanSpec, options: FitOptions): Promise<FitResult>;
  /** A split of the plan's dataset, read from its files (and the model's vocabulary, classes and data record kept). */
  planSplit(model: Model<unknown, unknown>, plan: PlanSpec, options: { data?: string; split?: "test" | "train" }): Promise<Split>;
  save(model: Model<unknown, unknown>, dir: string, options: SaveOptions): Promise<void>;
  /** The tokenizer file the plan's dataset tokenizes input `ids` with (paths against the .nnet file), or null. */
  datasetVocabulary(def: ModelDef<unknown, unknown>, ids: string): Vocabulary | null;
}

let host: NodeHost | null = null;

export function setNodeHost(h: NodeHost): void {
  host = h;
}

export function nodeHost(): NodeHost | null {
  return host;
}
