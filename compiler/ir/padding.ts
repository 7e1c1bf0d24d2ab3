// The one definition of a spatial op's padding. In the IR a convolution's or pool's `padding` attribute is a
// name — "valid", "same" (TensorFlow's: the extra pixel at the end), "causal" (conv1d: all of it at the
// start) — or explicit amounts [begin, end] per spatial axis in order: `[top, bottom, left, right]` on a 2-D op,
// `[left, right]` on a 1-D one; written in the source as PyTorch's `padding=` (the "padding" parameter type,
// compiler/lower/values.ts, normalises p and [ph, pw] to these), or made by the fold-padding pass (2-D). A convolution pads with zeros; a max pool's padding never wins (−∞), an average
// pool counts its zeros (PyTorch's count_include_pad=True). Every consumer that needs amounts (the shape rules,
// the fold-padding pass, the ONNX and PyTorch emitters) asks here, so the order of the four numbers is written
// down once.
import type { AttrValue } from "./types.js";

/** Explicit zero padding of a 2-D op: [top, bottom, left, right]. */
export type ExplicitPadding = readonly [number, number, number, number];

/** A 2-D op's padding attribute as explicit amounts when they do not depend on the input size ("valid" or explicit), else null. */
export function explicitPadding(p: AttrValue | undefined): ExplicitPadding | null {
  if (p === "valid") return [0, 0, 0, 0];
  if (Array.isArray(p) && p.length === 4 && p.every((x) => typeof x === "number")) return p as unknown as ExplicitPadding;
  return null;
}

/** Explicit zero padding of a 1-D op: [left, right]. */
export type ExplicitPadding1d = readonly [number, number];

/**
 * A `dims`-D op's padding as explicit amounts [begin, end] per spatial axis when they do not depend on the input
 * size ("valid" or explicit), else null.
 */
export function explicitAmounts(p: AttrValue | undefined, dims: 1 | 2): [number, number][] | null {
  if (p === "valid") return Array.from({ length: dims }, () => [0, 0]);
  if (Array.isArray(p) && p.length === 2 * dims && p.every((x) => typeof x === "number")) return Array.from({ length: dims }, (_, i) => [p[2 * i] as number, p[2 * i + 1] as number]);
  return null;
}

/** The explicit form of a 2-D padding from its two [begin, end] pairs (height, width). */
export const explicitOf = (h: readonly [number, number], w: readonly [number, number]): ExplicitPadding => [h[0], h[1], w[0], w[1]];

/** TensorFlow's "same" padding of one spatial axis: [begin, end], the odd pixel at the end. */
export function samePair(n: number, window: number, stride: number): [number, number] {
  const out = Math.ceil(n / stride);
  const total = Math.max((out - 1) * stride + window - n, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * [begin, end] for each spatial axis of an op with `padding` over inputs of `sizes`, windows of effective
 * size `window` (dilation applied) and `stride`. Null when the amounts depend on sizes that are only known at
 * run time ("same" over a symbolic size).
 */
export function spatialPads(padding: AttrValue | undefined, sizes: readonly (number | string)[], window: readonly number[], stride: readonly number[]): [number, number][] | null {
  const dims = window.length;
  if (padding === "valid") return window.map(() => [0, 0]);
  if (padding === "causal") return window.map((k) => [k - 1, 0]);
  if (Array.isArray(padding)) {
    const fixed = explicitAmounts(padding, dims as 1 | 2);
    if (!fixed) throw new Error(`explicit padding ${JSON.stringify(padding)} on a ${dims}-D op`);
    return fixed;
  }
  if (padding !== "same") throw new Error(`unknown padding ${JSON.stringify(padding)}`);
  if (!sizes.every((d) => typeof d === "number")) return null;
  return sizes.map((n, i) => samePair(n as number, window[i]!, stride[i]!));
}
