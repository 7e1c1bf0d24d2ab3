// The GELU pattern (-O2): the tanh approximation written out with arithmetic,
//   x * 0.5 * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)))
// in any association or order of its products and sums, becomes one `gelu(approximate: true)` node.
// The erf form cannot be written in .nnet (the language has no erf op), nor can layer normalization (no
// reduction over the last axis, no square root), so those patterns do not exist in the IR.
import type { IRModel, IRNode } from "../ir/types.js";
import type { Pass } from "./types.js";
import { dropUnused, forward, readerCounts } from "./util.js";

/** A polynomial in one node's value: degree → coefficient. */
type Poly = Map<number, number>;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const CUBIC = 0.044715;
/** Relative tolerance on the pattern's constants (a user writes 0.7978845608, or 0.79788456). */
const TOL = 1e-5;

function near(a: number | undefined, b: number): boolean {
  return a !== undefined && Math.abs(a - b) <= TOL * Math.abs(b);
}

function polyAdd(a: Poly, b: Poly, sign: 1 | -1): Poly {
  const out = new Map(a);
  for (const [d, c] of b) out.set(d, (out.get(d) ?? 0) + sign * c);
  return out;
}

function polyMul(a: Poly, b: Poly): Poly {
  const out: Poly = new Map();
  for (const [da, ca] of a) for (const [db, cb] of b) out.set(da + db, (out.get(da + db) ?? 0) + ca * cb);
  return out;
}

/** Coefficients that are not (near) zero, so `x - x` adds no term. */
function terms(p: Poly): [number, number][] {
  return [...p].filter(([, c]) => Math.abs(c) > 1e-12).sort(([a], [b]) => a - b);
}

const ARITH = new Set(["add", "sub", "mul", "div", "constant"]);

/** The one non-constant value an arithmetic expression is built from; null if there are several. */
function leaf(id: string, byId: Map<string, IRNode>): string | null | undefined {
  const n = byId.get(id)!;
  if (!ARITH.has(n.op)) return id;
  if (n.op === "constant") return undefined;
  let found: string | undefined;
  for (const x of n.inputs) {
    const l = leaf(x, byId);
    if (l === null) return null;
    if (l === undefined) continue;
    if (found !== undefined && found !== l) return null;
    found = l;
  }
  return found;
}

/** The node's value as a polynomial in `x` (add, sub, mul, div by a constant, constants), or null. */
function poly(id: string, x: string, byId: Map<string, IRNode>): Poly | null {
  if (id === x) return new Map([[1, 1]]);
  const n = byId.get(id)!;
  if (n.op === "constant") return new Map([[0, n.attrs.value as number]]);
  if (!ARITH.has(n.op)) return null;
  const [a, b] = n.inputs.map((i) => poly(i, x, byId));
  if (!a || !b) return null;
  if (n.op === "add") return polyAdd(a, b, 1);
  if (n.op === "sub") return polyAdd(a, b, -1);
  if (n.op === "mul") return polyMul(a, b);
  // div: only by a constant.
  const t = terms(b);
  if (t.length !== 1 || t[0]![0] !== 0) return null;
  return polyMul(a, new Map([[0, 1 / t[0]![1]]]));
}

/**
 * The factors of a product: mul nodes flattened, a division by a constant a factor 1/c. A product read
 * elsewhere too is a value of its own (x may itself be a product, e.g. an earlier GELU).
 */
function factors(id: string, byId: Map<string, IRNode>, readers: Map<string, number>, out: { ids: string[]; scale: number }, top = true): void {
  const n = byId.get(id)!;
  const inner = top || readers.get(id) === 1;
  if (n.op === "mul" && inner) {
    for (const i of n.inputs) factors(i, byId, readers, out, false);
  } else if (n.op === "div" && inner && byId.get(n.inputs[1]!)!.op === "constant") {
    factors(n.inputs[0]!, byId, readers, out, false);
    out.scale /= byId.get(n.inputs[1]!)!.attrs.value as number;
  } else if (n.op === "constant") {
    out.scale *= n.attrs.value as number;
  } else out.ids.push(id);
}

/** If `n` computes the tanh-form GELU of some x, that x. */
function geluOf(n: IRNode, byId: Map<string, IRNode>, readers: Map<string, number>): string | null {
  if (n.op !== "mul" && n.op !== "div") return null;
  const f = { ids: [] as string[], scale: 1 };
  factors(n.id, byId, readers, f);
  // Factors: x, and (p + p·tanh(inner)) with scale · p = 0.5.
  if (f.ids.length !== 2) return null;
  for (const [xi, gi] of [[0, 1], [1, 0]] as const) {
    const x = f.ids[xi]!;
    const g = f.ids[gi]!;
    const t = leaf(g, byId);
    if (!t || byId.get(t)!.op !== "tanh") continue;
    const outer = poly(g, t, byId);
    if (!outer) continue;
    const ot = terms(outer);
    if (ot.length !== 2 || ot[0]![0] !== 0 || ot[1]![0] !== 1 || !near(ot[0]![1], ot[1]![1]) || !near(f.scale * ot[0]![1], 0.5)) continue;
    // A polynomial in x alone (x itself may be a sum, e.g. a residual).
    const inner = poly(byId.get(t)!.inputs[0]!, x, byId);
    if (!inner) continue;
    const it = terms(inner);
    if (it.length !== 2 || it[0]![0] !== 1 || it[1]![0] !== 3 || !near(it[0]![1], SQRT_2_OVER_PI) || !near(it[1]![1], SQRT_2_OVER_PI * CUBIC)) continue;
    return x;
  }
  return null;
}

export const fuseGelu: Pass = {
  name: "fuse-gelu",
  level: 2,
  modes: ["train", "infer"],
  doc: "x * 0.5 * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x))), written with arithmetic in any order, becomes gelu(approximate: true)",
  run(m: IRModel, mode) {
    const byId = new Map(m.nodes.map((n) => [n.id, n]));
    const readers = readerCounts(m);
    const replaced = new Map<string, IRNode>();
    for (const n of m.nodes) {
      const x = geluOf(n, byId, readers);
      if (x === null) continue;
      const xn = byId.get(x)!;
      // Scalars only around x: the result has x's shape and type.
      if (JSON.stringify(xn.shape) !== JSON.stringify(n.shape) || xn.dtype !== n.dtype) continue;
      replaced.set(n.id, { ...n, op: "gelu", inputs: [x], attrs: { approximate: true } });
    }
    if (!replaced.size) return m;
    return dropUnused(forward({ ...m, nodes: m.nodes.map((n) => replaced.get(n.id) ?? n) }, new Map()), mode);
  },
};
