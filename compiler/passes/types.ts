// The types of the pass manager (compiler/passes/index.ts), apart so that passes can import them.
import type { IRModel } from "../ir/types.js";

export type PassMode = "train" | "infer";
export type OptLevel = 0 | 1 | 2;

export interface Pass {
  name: string;
  /** The lowest -O level that runs it. */
  level: 1 | 2;
  /** The modes it is valid for. */
  modes: readonly PassMode[];
  doc: string;
  /** Pure: returns a new model, or the same object when it changes nothing. */
  run(m: IRModel, mode: PassMode): IRModel;
}
