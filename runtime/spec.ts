// The parts of the IR the runtime reads, without source spans: the training plan and datasets as an
// emitted module embeds them. The compiler's IR types are assignable to these (they only add spans).
import type { AttrValue, DType, IRCall, IRDataset, IRField, IRLossTerm, IRPhase, IRPlan } from "../compiler/ir/types.js";

/** T without its source spans (`span`, `predictionSpan`, …), at every depth. */
export type Spanless<T> = T extends (infer U)[] ? Spanless<U>[] : T extends object ? { [K in keyof T as K extends "span" | `${string}Span` ? never : K]: Spanless<T[K]> } : T;

export type CallSpec = Spanless<IRCall>;
export type FieldSpec = Spanless<IRField>;
export type DatasetSpec = Spanless<IRDataset>;
export type LossSpec = Spanless<IRLossTerm>;
export type PhaseSpec = Spanless<IRPhase>;
export type PlanSpec = Spanless<IRPlan>;
export type { AttrValue, DType };
