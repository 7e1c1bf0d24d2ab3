// Clean-up passes: no-op removal, constant folding, common-subexpression elimination, dead-code
// elimination. None changes what a model computes; in training mode none removes a weight.
import type { AttrValue, IRModel, IRNode } from "../ir/types.js";
import type { Pass, PassMode } from "./types.js";
import { dropUnused, forward } from "./util.js";

const sameShape = (a: IRNode["shape"], b: IRNode["shape"]) => !!a && !!b && a.length === b.length && a.every((d, i) => d === b[i]);

/** A node that passes its only input through unchanged (in this mode). */
function isNoop(n: IRNode, input: IRNode | undefined, mode: PassMode): boolean {
  if (!input) return false;
  switch (n.op) {
    case "identity":
      return true;
    case "dropout":
      return mode === "infer" || n.attrs.rate === 0;
    case "cast":
      return n.dtype === input.dtype;
    case "reshape":
      return sameShape(n.shape, input.shape);
    case "transpose":
      return (n.attrs.perm as number[]).every((p, i) => p === i);
    default:
      return false;
  }
}

/** The node a no-op stands for keeps the no-op's binding name when it has none (emitted code reads better). */
function keepBinding(m: IRModel, removed: IRNode[], byId: Map<string, IRNode>): IRNode[] {
  const rename = new Map<string, string>();
  for (const n of removed) {
    const target = byId.get(n.inputs[0]!)!;
    if (n.binding && !target.binding && target.op !== "input" && !rename.has(target.id)) rename.set(target.id, n.binding);
  }
  return m.nodes.map((n) => (rename.has(n.id) ? { ...n, binding: rename.get(n.id)! } : n));
}

const removeNoops: Pass = {
  name: "remove-noops",
  level: 1,
  modes: ["train", "infer"],
  doc: "identity, casts and reshapes to what the tensor already is, identity transposes; dropout at inference (or with rate 0)",
  run(m, mode) {
    const byId = new Map(m.nodes.map((n) => [n.id, n]));
    const removed = m.nodes.filter((n) => isNoop(n, byId.get(n.inputs[0] ?? ""), mode));
    if (!removed.length) return m;
    const alias = new Map(removed.map((n) => [n.id, n.inputs[0]!]));
    const relabelled = { ...m, nodes: keepBinding(m, removed, byId) };
    return dropUnused(forward(relabelled, alias), mode);
  },
};

const ARITH: Record<string, (a: number, b: number) => number> = { add: (a, b) => a + b, sub: (a, b) => a - b, mul: (a, b) => a * b, div: (a, b) => a / b };

const foldConstants: Pass = {
  name: "fold-constants",
  level: 1,
  modes: ["train", "infer"],
  doc: "arithmetic on two constants becomes a constant; x + 0, x - 0, x * 1 and x / 1 become x",
  run(m, mode) {
    const byId = new Map(m.nodes.map((n) => [n.id, n]));
    const alias = new Map<string, string>();
    const value = (id: string): number | undefined => {
      const n = byId.get(id);
      return n?.op === "constant" ? (n.attrs.value as number) : undefined;
    };
    let changed = false;
    const nodes = m.nodes.map((n) => {
      const f = ARITH[n.op];
      if (!f || n.inputs.length !== 2) return n;
      const [a, b] = [value(n.inputs[0]!), value(n.inputs[1]!)];
      if (a !== undefined && b !== undefined) {
        const folded: IRNode = { ...n, op: "constant", inputs: [], attrs: { value: f(a, b) as AttrValue } };
        byId.set(n.id, folded);
        changed = true;
        return folded;
      }
      // x ∘ identity element: only when the result is x itself (same shape and dtype, no broadcasting).
      const x = byId.get(n.inputs[0]!)!;
      const neutral = n.op === "add" || n.op === "sub" ? 0 : 1;
      if (b === neutral && sameShape(n.shape, x.shape) && n.dtype === x.dtype) alias.set(n.id, x.id);
      else if (a === neutral && (n.op === "add" || n.op === "mul")) {
        const y = byId.get(n.inputs[1]!)!;
        if (sameShape(n.shape, y.shape) && n.dtype === y.dtype) alias.set(n.id, y.id);
      }
      return n;
    });
    if (!changed && !alias.size) return m;
    return dropUnused(forward({ ...m, nodes }, alias), mode);
  },
};

/** Ops whose result depends on more than their inputs and attributes. */
const IMPURE = new Set(["input", "dropout", "sample_normal", "random_normal_like"]);

const cse: Pass = {
  name: "cse",
  level: 1,
  modes: ["train", "infer"],
  doc: "two nodes computing the same op of the same inputs with the same attributes (and the same weights) become one",
  run(m, mode) {
    const seen = new Map<string, string>();
    const alias = new Map<string, string>();
    const owners = new Set(m.params.map((p) => p.layer));
    for (const n of m.nodes) {
      // Training batchnorm updates its moving statistics once per application: keep every application.
      if (IMPURE.has(n.op) || (mode === "train" && n.op === "batchnorm")) continue;
      const inputs = n.inputs.map((x) => alias.get(x) ?? x);
      const key = JSON.stringify([n.op, inputs, n.attrs, owners.has(n.name) ? n.name : null]);
      const first = seen.get(key);
      if (first) alias.set(n.id, first);
      else seen.set(key, n.id);
    }
    if (!alias.size) return m;
    return dropUnused(forward(m, alias), mode);
  },
};

const dce: Pass = {
  name: "dce",
  level: 1,
  modes: ["train", "infer"],
  doc: "nodes no output needs are removed (at inference, with their weights)",
  run: (m, mode) => dropUnused(m, mode),
};

export const PASS_LIST: Pass[] = [removeNoops, foldConstants, cse, dce];
