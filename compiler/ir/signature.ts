// Signatures: the typed parameter lists shared by layers, losses, metrics, optimizers, schedules,
// sources and preprocessing steps. One checker (compiler/lower/args.ts) validates every call against them.
import type { AttrValue } from "./types.js";

export type ParamType =
  | "int"
  | "float"
  | "bool"
  | "string"
  /** one of `values`, written as a bare word: padding: same */
  | "enum"
  /** an int, or a list of two ints: kernel: 3 or kernel: [3, 5] — normalised to a pair */
  | "int2"
  /** a list of ints */
  | "ints"
  /** a convolution's or pool's padding: one of `values` (a bare word), or explicit zero padding — on a 2-D op
   * p on every side, [ph, pw] per axis on both sides, or (unless `symmetric`) [top, bottom, left, right]; on a
   * 1-D op (`dims: 1`) p on both ends or (unless `symmetric`) [left, right]; normalised to a word or [begin, end]
   * per axis (compiler/ir/padding.ts) */
  | "padding"
  /** a list of double-quoted strings */
  | "strings"
  /** a list of ints, dimension names and at most one -1: reshape([seq, 12, 64]) */
  | "shape"
  /** a layer instance declared with `layer name = …` */
  | "layer"
  /** a tensor element type: f32, i32, … */
  | "dtype"
  /** a model output or dataset field, by name (losses and metrics) */
  | "ref"
  /** a loss's target: a dataset field by name, or a number (a constant of the prediction's shape) */
  | "target"
  /** a bare word naming something the plan measures (early stopping monitor) */
  | "word"
  /** a vocabulary: its size to build from the data (an integer), or a vocab.txt to read ("path", WordPiece) */
  | "vocab"
  /** a named tensor input (attention's mask: x -> attention(heads: 4, mask: m)); the node gets it as its last
   * inputs, in parameter order, and the attribute is true */
  | "tensor";

export interface ParamSpec {
  name: string;
  type: ParamType;
  values?: readonly string[];
  /** Absent means required; null means optional with no value. */
  default?: AttrValue;
  min?: number;
  max?: number;
  /** min and max exclude the bound itself. */
  exclusive?: boolean;
  /** Only max is excluded: a rate in [0, 1). */
  maxExclusive?: boolean;
  /** padding: explicit amounts must be the same on both sides of an axis (PyTorch's pools). */
  symmetric?: boolean;
  /** padding: the op's spatial axes (default 2). */
  dims?: 1 | 2;
  doc?: string;
}

export interface Signature {
  params: readonly ParamSpec[];
  doc: string;
}

export function p(name: string, type: ParamType, extra: Partial<ParamSpec> = {}): ParamSpec {
  return { name, type, ...extra };
}

export function isRequired(s: ParamSpec): boolean {
  return !("default" in s);
}

/** `conv2d(filters: int, kernel: int2, stride: int2 = 1, …)` for hints and hover text. */
export function formatSignature(name: string, sig: Signature, tensorInputs = "", full = false): string {
  const parts = sig.params.map((s) => {
    const values = s.values ?? [];
    const t = s.type === "enum" ? (full || values.length <= 4 ? values.join("|") : `${values.slice(0, 3).join("|")}|…`) : s.type === "padding" ? `${values.join("|")}|int${s.dims === 1 && s.symmetric ? "" : "|[…]"}` : s.type;
    return isRequired(s) ? `${s.name}: ${t}` : `${s.name}: ${t} = ${s.default === null ? "none" : JSON.stringify(s.default)}`;
  });
  return `${name}(${[tensorInputs, ...parts].filter(Boolean).join(", ")})`;
}

export const ACTIVATIONS = ["relu", "relu6", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "linear"] as const;
