// Loose types for `import model from "./x.nnet"` (the Node loader `nnetc/register`, or the bundler plugins
// `nnetc/esbuild` and `nnetc/vite`), for projects that do not generate declarations per file.
//
// Use it with one line in a .ts file of the project:   /// <reference types="nnetc/nnet-modules" />
// or in tsconfig.json:                                 "compilerOptions": { "types": ["node", "nnetc/nnet-modules"] }
//
// Exact types (the model's inputs and outputs with their shapes, weight names, the model's name) come from
// `nnetc compile x.nnet --target dts`, which writes x.d.nnet.ts beside x.nnet; TypeScript 5 reads it for
// `import … from "./x.nnet"` when tsconfig.json has "allowArbitraryExtensions": true, and then prefers it to
// the declaration below.
declare module "*.nnet" {
  import type { Tensor } from "@tensorflow/tfjs-core";
  import type * as nn from "nnetc/runtime";

  /** Tensors by input, output or target name. */
  export type Tensors = Record<string, Tensor>;
  export type Inputs = Tensors;
  export type Outputs = Tensors;
  export type Batch = Tensors;
  export type Model = nn.Model<Tensors, Tensors>;

  /** The file's main model (its last model), as the default export of an emitted module has it. */
  export interface NnetModel {
    readonly name: string;
    readonly def: nn.ModelDef<Tensors, Tensors>;
    readonly inputs: nn.TensorSpec[];
    readonly outputs: nn.TensorSpec[];
    readonly params: nn.ParamSpec[];
    readonly plan: nn.PlanSpec | null;
    create(options?: nn.CreateOptions): Promise<Model>;
    load(from: string, options?: Omit<nn.CreateOptions, "weights">): Promise<Model>;
    predict(model: Model, inputs: Inputs): Outputs;
    trainStep(model: Model, batch: Batch, options?: nn.TrainStepOptions): number;
    fit(model: Model, options?: nn.FitOptions): Promise<nn.FitResult>;
    evaluate(model: Model, options?: nn.EvaluateOptions): Promise<Record<string, number>>;
    save(model: Model, dir: string, options?: nn.SaveOptions): Promise<void>;
    dispose(model: Model): void;
    /** A client for the model on an Open Inference Protocol (v2) server such as `nnetc serve`. */
    createClient(baseUrl: string | URL, options?: nn.ClientOptions): nn.Client<Inputs, Outputs>;
  }

  const model: NnetModel;
  export default model;
  export const create: NnetModel["create"];
  export const load: NnetModel["load"];
  export const predict: NnetModel["predict"];
  export const trainStep: NnetModel["trainStep"];
  export const fit: NnetModel["fit"];
  export const evaluate: NnetModel["evaluate"];
  export const save: NnetModel["save"];
  export const dispose: NnetModel["dispose"];
  export const createClient: NnetModel["createClient"];
  export const inputs: nn.TensorSpec[];
  export const outputs: nn.TensorSpec[];
  export const params: nn.ParamSpec[];
  export const plan: nn.PlanSpec | null;
}
