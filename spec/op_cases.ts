// One small model per op kind of the registry, with its inputs: the table behind the per-backend
// equivalence tests (spec/unit/layers.test.ts on wasm, spec/unit/webgpu.test.ts on webgpu).
import type { OpKind } from "../compiler/ir/ops.js";
import type { IRModel } from "../compiler/ir/types.js";
import { Rng } from "../runtime/data/rng.js";
import { compileText, expectClean } from "./helpers.js";

/** One small model per op kind; several for ops whose options take different code paths. */
export const CASES: [OpKind, string][] = [
  ["dense", `input x: f32[batch, 6]\n output y = x -> dense(4, activation: tanh) -> dense(3, activation: relu)`],
  ["tied_dense", `input ids: i32[batch, 5]\n layer e = embedding(7, 4)\n output y = ids -> e -> tied_dense(e, bias: true)`],
  ["parameter", `input x: f32[batch, 3, 4]\n output y = concat(x -> parameter([1, 4], init: normal), x -> dense(4), axis: 1) -> dense(2)`],
  ["conv1d", `input x: f32[batch, 9, 3]\n a = x -> conv1d(4, 3, padding: same)\n b = x -> conv1d(4, 2, dilation: 2, padding: causal)\n output y = concat(a, b, axis: 2)`],
  ["conv2d", `input x: f32[batch, 7, 7, 4]\n a = x -> conv2d(4, 3, stride: 2, padding: same, activation: relu)\n b = x -> conv2d(4, 3, dilation: 2, groups: 2)\n output y = concat(a -> flatten, b -> flatten, axis: 1)`],
  ["depthwise_conv2d", `input x: f32[batch, 7, 7, 3]\n a = x -> depthwise_conv2d(3, stride: 2, padding: same, multiplier: 2)\n b = x -> depthwise_conv2d([3, 2], dilation: 2)\n output y = concat(a -> flatten, b -> flatten, axis: 1)`],
  ["separable_conv2d", `input x: f32[batch, 6, 6, 3]\n output y = x -> separable_conv2d(5, 3, padding: same, multiplier: 2)`],
  ["conv2d", `input x: f32[batch, 7, 7, 4]\n a = x -> conv2d(4, 3, stride: 2, padding: 1)\n b = x -> conv2d(4, 3, dilation: 2, padding: [1, 0, 2, 1])\n c = x -> depthwise_conv2d(3, padding: [1, 2]) -> separable_conv2d(3, 3, padding: 1)\n output y = concat(a -> flatten, b -> flatten, c -> flatten, axis: 1)`],
  ["conv1d", `input x: f32[batch, 9, 4]\n a = x -> conv1d(4, 3, stride: 2, padding: 2)\n b = x -> conv1d(4, 2, dilation: 2, padding: [0, 3], groups: 2, activation: relu)\n output y = concat(a -> flatten, b -> flatten, axis: 1)`],
  ["max_pool1d", `input x: f32[batch, 8, 3]\n output y = x -> conv1d(3, 1) -> max_pool1d(2)`],
  ["max_pool1d", `input x: f32[batch, 9, 2]\n a = x -> conv1d(2, 1) -> max_pool1d(3, stride: 2, padding: 1)\n b = x -> conv1d(2, 1) -> max_pool1d(2, stride: 2, padding: 1, ceil_mode: true)\n output y = concat(a -> flatten, b -> flatten, axis: 1)`],
  ["avg_pool1d", `input x: f32[batch, 9, 2]\n a = x -> conv1d(2, 1) -> avg_pool1d(2, stride: 2, padding: 1, ceil_mode: true)\n b = x -> conv1d(2, 1) -> avg_pool1d(4, stride: 3, padding: 2, ceil_mode: true)\n output y = concat(a -> flatten, b -> flatten, axis: 1)`],
  ["avg_pool1d", `input x: f32[batch, 8, 3]\n output y = x -> conv1d(3, 1) -> avg_pool1d(3, stride: 2, padding: same)`],
  ["max_pool2d", `input x: f32[batch, 7, 7, 2]\n output y = x -> conv2d(2, 1) -> max_pool2d(3, stride: 2)`],
  ["max_pool2d", `input x: f32[batch, 7, 6, 2]\n a = x -> conv2d(2, 1) -> max_pool2d(3, stride: 2, padding: 1)\n b = x -> conv2d(2, 1) -> max_pool2d(2, stride: 2, padding: 1, ceil_mode: true)\n output y = concat(a -> flatten, b -> flatten, axis: 1)`],
  ["avg_pool2d", `input x: f32[batch, 6, 6, 2]\n output y = x -> conv2d(2, 1) -> avg_pool2d(2, padding: same)`],
  ["avg_pool2d", `input x: f32[batch, 7, 6, 2]\n a = x -> conv2d(2, 1) -> avg_pool2d(2, stride: 2, padding: 1, ceil_mode: true)\n b = x -> conv2d(2, 1) -> avg_pool2d(3, stride: 2, padding: [1, 0], ceil_mode: true)\n output y = concat(a -> flatten, b -> flatten, axis: 1)`],
  ["global_avg_pool1d", `input x: f32[batch, 5, 3]\n output y = x -> conv1d(3, 1) -> global_avg_pool1d`],
  ["global_max_pool1d", `input x: f32[batch, 5, 3]\n output y = x -> conv1d(3, 1) -> global_max_pool1d`],
  ["global_avg_pool2d", `input x: f32[batch, 4, 4, 3]\n output y = x -> conv2d(3, 1) -> global_avg_pool2d`],
  ["global_max_pool2d", `input x: f32[batch, 4, 4, 3]\n output y = x -> conv2d(3, 1) -> global_max_pool2d`],
  ["zero_pad2d", `input x: f32[batch, 3, 3, 2]\n output y = x -> zero_pad2d([1, 2]) -> conv2d(2, 2)`],
  ["upsample2d", `input x: f32[batch, 3, 3, 2]\n output y = x -> upsample2d(2) -> conv2d(2, 2)`],
  ["batchnorm", `input x: f32[batch, 4, 4, 3]\n output y = x -> conv2d(3, 1) -> batchnorm`],
  ["layernorm", `input x: f32[batch, 5, 6]\n output y = x -> layernorm`],
  ["rmsnorm", `input x: f32[batch, 5, 6]\n output y = x -> rmsnorm`],
  ["groupnorm", `input x: f32[batch, 3, 4, 6]\n output y = x -> conv2d(6, 1) -> groupnorm(3)`],
  ["instancenorm", `input x: f32[batch, 5, 4]\n output y = x -> dense(4) -> instancenorm`],
  ["dropout", `input x: f32[batch, 6]\n output y = x -> dense(5) -> dropout(0.5)`],
  ["embedding", `input ids: i32[batch, 5]\n output y = ids -> embedding(9, 4)`],
  ["pos_embedding", `input x: f32[batch, seq <= 8, 4]\n output y = x -> pos_embedding(8)`],
  ["lstm", `input x: f32[batch, 4, 3]\n a = x -> lstm(5, return_sequences: true)\n output y = a -> lstm(3, bidirectional: true)`],
  ["gru", `input x: f32[batch, 4, 3]\n a = x -> gru(5, return_sequences: true)\n output y = a -> gru(3, reset_after: false)`],
  ["attention", `input x: f32[batch, 5, 8]\n input c: f32[batch, 3, 6]\n a = x -> attention(2, causal: true)\n output y = attention(a, c, heads: 4)`],
  ["flatten", `input x: f32[batch, 2, 3, 2]\n output y = x -> flatten -> dense(2)`],
  ["reshape", `input x: f32[batch, seq <= 6, 4]\n output y = x -> dense(4) -> reshape([seq, 2, 2]) -> reshape([-1, 4])`],
  ["transpose", `input x: f32[batch, 2, 3, 4]\n output y = x -> transpose([0, 3, 1, 2]) -> flatten -> dense(2)`],
  ["concat", `input a: f32[batch, 3]\n input b: f32[batch, 2]\n output y = concat(a, b, axis: 1) -> dense(2)`],
  ["take", `input x: f32[batch, 4, 3]\n output y = x -> dense(3) -> take(0, axis: 1)`],
  ["slice", `input x: f32[batch, 4, 3]\n output y = x -> dense(3) -> slice(1, -1) -> slice(0, 2, axis: -1)`],
  ["slice", `input x: f32[batch, 7, 5]\n output y = x -> dense(5) -> slice(1, step: 3) -> slice(0, -1, axis: -1, step: 2)`],
  ["squeeze", `input x: f32[batch, 4, 3]\n output y = x -> dense(1) -> squeeze(-1)`],
  ["expand_dims", `input x: f32[batch, 4]\n output y = x -> dense(3) -> expand_dims(1) -> conv1d(2, 1)`],
  ["cast", `input ids: i32[batch, 3]\n output y = ids -> cast(f32) -> dense(2)`],
  ["add", `input a: f32[batch, 3]\n input b: f32[batch, 3]\n output y = (a -> dense(3)) + b`],
  ["sub", `input a: f32[batch, 3]\n output y = (a -> dense(3)) - a`],
  ["mul", `input a: f32[batch, 3]\n output y = (a -> dense(3)) * a * 0.5`],
  ["div", `input a: f32[batch, 3]\n output y = (a -> dense(3)) / 2`],
  ["matmul", `input a: f32[batch, 3, 4]\n input b: f32[batch, 4, 2]\n output y = (a -> dense(4)) @ b`],
  ["relu", `input x: f32[batch, 4]\n output y = x -> dense(4) -> relu`],
  ["relu6", `input x: f32[batch, 4]\n output y = x -> dense(4) -> relu6`],
  ["gelu", `input x: f32[batch, 4]\n a = x -> dense(4) -> gelu\n output y = a -> gelu(approximate: true)`],
  ["silu", `input x: f32[batch, 4]\n output y = x -> dense(4) -> silu`],
  ["sigmoid", `input x: f32[batch, 4]\n output y = x -> dense(4) -> sigmoid`],
  ["tanh", `input x: f32[batch, 4]\n output y = x -> dense(4) -> tanh`],
  ["softmax", `input x: f32[batch, 4]\n output y = x -> dense(4) -> softmax`],
  ["leaky_relu", `input x: f32[batch, 4]\n output y = x -> dense(4) -> leaky_relu(alpha: 0.1)`],
  ["elu", `input x: f32[batch, 4]\n output y = x -> dense(4) -> elu`],
  ["identity", `input x: f32[batch, 4]\n output y = x -> dense(4) -> identity`],
  ["conv2d_transpose", `input x: f32[batch, 4, 3, 2]\n a = x -> conv2d_transpose(3, 3, stride: 2, padding: same, activation: relu)\n output y = a -> conv2d_transpose(2, [2, 3], stride: [1, 2]) -> flatten`],
  ["conv1d_transpose", `input x: f32[batch, 5, 3]\n a = x -> conv1d_transpose(4, 3, stride: 2)\n b = x -> conv1d_transpose(2, 2, stride: 3, padding: same, activation: relu)\n output y = concat(a -> flatten, b -> flatten, axis: 1)`],
  ["random_normal_like", `input x: f32[batch, 4]\n h = x -> dense(4)\n output y = (h + random_normal_like(h, std: 0.1)) -> tanh`],
  ["sample_normal", `input x: f32[batch, 4]\n m = x -> dense(3)\n output y = sample_normal(m, x -> dense(3)) -> tanh`],
  ["softplus", `input x: f32[batch, 4]\n output y = x -> dense(4) -> softplus`],
  ["mish", `input x: f32[batch, 4]\n output y = x -> dense(4) -> mish`],
  ["hardswish", `input x: f32[batch, 4]\n output y = x -> dense(4) -> hardswish`],
  ["hardsigmoid", `input x: f32[batch, 4]\n output y = x -> dense(4) -> hardsigmoid`],
  ["exp", `input x: f32[batch, 4]\n output y = x -> dense(4) -> exp`],
  ["log", `input x: f32[batch, 4]\n output y = x -> dense(4) -> softplus -> log`],
  ["sqrt", `input x: f32[batch, 4]\n output y = x -> dense(4) -> exp -> sqrt`],
  ["abs", `input x: f32[batch, 4]\n output y = x -> dense(4) -> abs`],
  ["neg", `input x: f32[batch, 4]\n output y = x -> dense(4) -> neg`],
  ["square", `input x: f32[batch, 4]\n output y = x -> dense(4) -> square`],
  ["pow", `input x: f32[batch, 4]\n output y = x -> dense(4) -> sigmoid -> pow(exponent: 1.5)`],
  ["clip", `input x: f32[batch, 4]\n output y = x -> dense(4) -> clip(min: -0.3, max: 0.4)`],
  ["reduce_mean", `input x: f32[batch, 3, 4]\n output y = x -> dense(4) -> reduce_mean(axis: [1, 2])`],
  ["reduce_sum", `input x: f32[batch, 3, 4]\n output y = x -> dense(4) -> reduce_sum(axis: 1, keepdims: true) -> flatten`],
  ["reduce_max", `input x: f32[batch, 3, 4]\n output y = x -> dense(4) -> reduce_max(axis: -1)`],
  ["reduce_min", `input x: f32[batch, 3, 4]\n output y = x -> dense(4) -> reduce_min(axis: [1])`],
];

export function modelOf(src: string): IRModel {
  const r = compileText(`model M {\n${src}\n}`);
  expectClean(r);
  return r.module.models[0]!;
}

/** Random inputs for a model: floats in [-1, 1), ids in [0, 5). */
export function inputsFor(m: IRModel, rng: Rng): Record<string, { data: number[]; shape: number[]; dtype: "float32" | "int32" }> {
  const out: Record<string, { data: number[]; shape: number[]; dtype: "float32" | "int32" }> = {};
  for (const i of m.inputs) {
    const shape = i.shape.map((d, k) => (k === 0 ? 2 : typeof d === "number" ? d : 6));
    const n = shape.reduce((a, b) => a * b, 1);
    const int = i.dtype.startsWith("i");
    out[i.name] = { data: Array.from({ length: n }, () => (int ? rng.int(5) : rng.next() * 2 - 1)), shape, dtype: int ? "int32" : "float32" };
  }
  return out;
}

