// Einsum for the wasm backend: the equations tf.einsum accepts (one or two operands, no ellipsis,
// no repeated index within one operand — backend_util.decodeEinsumEquation enforces the same limits
// as the cpu backend).
//
// float32 operands are lowered to the wasm backend's own kernels:
//   1. indices found in only one operand and not in the output are summed out of it (Sum);
//   2. each operand is transposed to [batch..., free..., contracted...] / [batch..., contracted..., free...]
//      (batch = in both operands and the output, contracted = in both but not the output);
//   3. one BatchMatMul [B, FA, K] x [B, K, FB]; an outer product is the K = 1 case;
//   4. reshape to [batch..., freeA..., freeB...] and transpose into the output order.
// Other numeric dtypes (int32, or int32 mixed with float32) take a direct loop over every index
// combination; the result dtype is upcastType of the operands, as on the cpu backend.
import * as tf from "@tensorflow/tfjs-core";
import { KernelArgs, sizeOf, WasmBackend, WasmOps, withOps } from "./wasm_ops.js";

type TensorInfo = tf.TensorInfo;

interface Decoded {
  /** Size of every index, in allDims order: the output indices first, then the summed ones. */
  sizes: number[];
  nOut: number;
  /** For each operand, its indices (as positions in allDims). */
  ids: number[][];
}

function decode(equation: string, tensors: TensorInfo[]): Decoded {
  const { allDims, summedDims, idDims } = tf.backend_util.decodeEinsumEquation(equation, tensors.length);
  tf.backend_util.checkEinsumDimSizes(allDims.length, idDims, tensors as unknown as tf.Tensor[]);
  const output = equation.replace(/\s/g, "").split("->")[1]!;
  if (new Set(output).size !== output.length) throw new Error(`Einsum (wasm): repeated index in the output of '${equation}'`);
  const sizes = new Array<number>(allDims.length).fill(1);
  tensors.forEach((t, i) => idDims[i]!.forEach((d, j) => (sizes[d] = t.shape[j]!)));
  return { sizes, nOut: allDims.length - summedDims.length, ids: idDims };
}

export function einsumWasm(args: KernelArgs): TensorInfo {
  const tensors = (Array.isArray(args.inputs) ? args.inputs : Object.values(args.inputs)) as TensorInfo[];
  const { equation } = args.attrs as unknown as tf.EinsumAttrs;
  const d = decode(equation, tensors);
  for (const t of tensors) {
    if (t.dtype !== "float32" && t.dtype !== "int32") throw new Error(`Einsum (wasm): operands must be float32 or int32, got ${t.dtype}`);
  }
  const outDtype = tensors.reduce<tf.DataType>((acc, t) => tf.upcastType(acc, t.dtype), tensors[0]!.dtype);
  const anyEmpty = tensors.some((t) => sizeOf(t.shape) === 0);
  if (outDtype === "float32" && tensors.every((t) => t.dtype === "float32") && !anyEmpty) {
    return withOps(args.backend, (ops) => (tensors.length === 1 ? unary(ops, tensors[0]!, d) : binary(ops, tensors[0]!, tensors[1]!, d)));
  }
  return einsumLoop(args.backend as WasmBackend, tensors, d, outDtype);
}

/** Sums out of `t` the indices that are neither in the output nor in `others`; returns the tensor and its remaining indices. */
function sumPrivate(ops: WasmOps, t: TensorInfo, ids: number[], nOut: number, others: number[]): [TensorInfo, number[]] {
  const axes = ids.flatMap((dim, axis) => (dim >= nOut && !others.includes(dim) ? [axis] : []));
  if (axes.length === 0) return [t, ids];
  const summed = ops.run("Sum", { x: t }, { axis: axes, keepDims: false });
  return [summed, ids.filter((_, axis) => !axes.includes(axis))];
}

/** Transposes `t` (whose indices are `ids`) so that its indices come in the order `order`. */
function permuteTo(ops: WasmOps, t: TensorInfo, ids: number[], order: number[]): TensorInfo {
  const perm = order.map((dim) => ids.indexOf(dim));
  return perm.every((p, i) => p === i) ? t : ops.transpose(t, perm);
}

function unary(ops: WasmOps, a: TensorInfo, d: Decoded): TensorInfo {
  const [s, ids] = sumPrivate(ops, a, d.ids[0]!, d.nOut, []);
  const out = permuteTo(ops, s, ids, range(d.nOut));
  // The result must own its data: a no-op einsum ("ij->ij") returns a fresh reference to the input.
  return out === a ? ops.reshape(a, a.shape) : out;
}

function binary(ops: WasmOps, a: TensorInfo, b: TensorInfo, d: Decoded): TensorInfo {
  const { nOut, sizes } = d;
  const [a1, aIds] = sumPrivate(ops, a, d.ids[0]!, nOut, d.ids[1]!);
  const [b1, bIds] = sumPrivate(ops, b, d.ids[1]!, nOut, d.ids[0]!);
  const batch = aIds.filter((x) => x < nOut && bIds.includes(x));
  const freeA = aIds.filter((x) => x < nOut && !bIds.includes(x));
  const freeB = bIds.filter((x) => x < nOut && !aIds.includes(x));
  const contracted = aIds.filter((x) => x >= nOut);
  const size = (dims: number[]) => dims.reduce((p, x) => p * sizes[x]!, 1);
  const [B, FA, FB, K] = [size(batch), size(freeA), size(freeB), size(contracted)];
  const a3 = ops.reshape(permuteTo(ops, a1, aIds, [...batch, ...freeA, ...contracted]), [B, FA, K]);
  const b3 = ops.reshape(permuteTo(ops, b1, bIds, [...batch, ...contracted, ...freeB]), [B, K, FB]);
  const prod = ops.run("BatchMatMul", { a: a3, b: b3 }, { transposeA: false, transposeB: false });
  const got = [...batch, ...freeA, ...freeB];
  const shaped = ops.reshape(prod, got.map((x) => sizes[x]!));
  return permuteTo(ops, shaped, got, range(nOut));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Direct evaluation: one pass over every combination of index values. */
function einsumLoop(backend: WasmBackend, tensors: TensorInfo[], d: Decoded, dtype: tf.DataType): TensorInfo {
  const { sizes, nOut, ids } = d;
  const nDims = sizes.length;
  // Element strides of each operand and of the output along every index (0 where absent).
  const stridesOf = (dimIds: number[], shape: readonly number[]) => {
    const st = new Array<number>(nDims).fill(0);
    let acc = 1;
    for (let j = dimIds.length - 1; j >= 0; j--) {
      st[dimIds[j]!] = acc;
      acc *= shape[j]!;
    }
    return st;
  };
  const outShape = sizes.slice(0, nOut);
  const opStrides = tensors.map((t, i) => stridesOf(ids[i]!, t.shape));
  const outStrides = stridesOf(range(nOut), outShape);
  const acc = new Float64Array(sizeOf(outShape));
  const out = backend.makeOutput(outShape, dtype);
  const total = sizeOf(sizes);
  if (total > 0) {
    const vals = tensors.map((t) => backend.typedArrayFromHeap(t));
    const idx = new Array<number>(nDims).fill(0);
    const offs = new Array<number>(tensors.length).fill(0);
    let outOff = 0;
    for (let n = 0; n < total; n++) {
      let p = 1;
      for (let t = 0; t < vals.length; t++) p *= vals[t]![offs[t]!]!;
      acc[outOff] += p;
      // Odometer increment over the indices, last index fastest.
      for (let k = nDims - 1; k >= 0; k--) {
        idx[k]++;
        outOff += outStrides[k]!;
        for (let t = 0; t < offs.length; t++) offs[t] += opStrides[t]![k]!;
        if (idx[k]! < sizes[k]!) break;
        outOff -= outStrides[k]! * sizes[k]!;
        for (let t = 0; t < offs.length; t++) offs[t] -= opStrides[t]![k]! * sizes[k]!;
        idx[k] = 0;
      }
    }
  }
  if (acc.length > 0) backend.typedArrayFromHeap(out).set(acc);
  return out;
}

export const einsumConfig: tf.KernelConfig = {
  kernelName: tf.Einsum,
  backendName: "wasm",
  kernelFunc: einsumWasm,
};
