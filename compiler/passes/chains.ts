// Scalar chains (-O2): consecutive multiplications (or divisions) of one tensor by constants become one
// multiplication, and consecutive additions (or subtractions) of constants one addition:
//   x * 2 * 3 → x * 6,   (x / 4) * 2 → x * 0.5,   (x + 1) - 3 → x + -2
// Each link of the chain is one pass over the tensor. The result is reassociated, so it can differ in the
// last bits: that is why this is -O2 and not constant folding (-O1).
import type { IRModel, IRNode } from "../ir/types.js";
import type { Pass, PassMode } from "./types.js";
import { dropUnused, forward, readerCounts, renumber } from "./util.js";

type Kind = "scale" | "shift";

/** `n` as x·c (scale) or x + c (shift) of a tensor x by a scalar constant c, or null. */
function link(n: IRNode, byId: Map<string, IRNode>): { kind: Kind; x: string; c: number } | null {
  if (!["add", "sub", "mul", "div"].includes(n.op)) return null;
  const [a, b] = n.inputs.map((i) => byId.get(i)!) as [IRNode, IRNode];
  const k = (t: IRNode) => (t.op === "constant" ? (t.attrs.value as number) : null);
  // Only x op c; c op x too for the commutative ops.
  let x: IRNode;
  let c: number | null;
  if (k(b) !== null && k(a) === null) [x, c] = [a, k(b)];
  else if (k(a) !== null && k(b) === null && (n.op === "add" || n.op === "mul")) [x, c] = [b, k(a)];
  else return null;
  // The constant broadcasts: x must already have the result's shape and type.
  if (JSON.stringify(x.shape) !== JSON.stringify(n.shape) || x.dtype !== n.dtype || !n.dtype?.startsWith("f")) return null;
  switch (n.op) {
    case "add": return { kind: "shift", x: x.id, c: c! };
    case "sub": return { kind: "shift", x: x.id, c: -c! };
    case "mul": return { kind: "scale", x: x.id, c: c! };
    default: return c === 0 ? null : { kind: "scale", x: x.id, c: 1 / c! };
  }
}

export const foldScalarChains: Pass = {
  name: "fold-scalar-chains",
  level: 2,
  modes: ["train", "infer"],
  doc: "x * a * b, x / a * b (and x + a - b …), a chain of one tensor scaled or shifted by constants, becomes one multiplication (or addition)",
  run(m: IRModel, mode) {
    // Until nothing changes: a chain that turned out to be the identity joins its neighbours.
    for (let cur = m; ; ) {
      const next = once(cur, mode);
      if (next === cur) return cur;
      cur = next;
    }
  },
};

/** One sweep: each chain, as it stands, to one link. */
function once(m: IRModel, mode: PassMode): IRModel {
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  const readers = readerCounts(m);
  // Per node, the chain it ends: its start and the combined constant (links in node order).
  const chains = new Map<string, { kind: Kind; x: string; c: number; length: number }>();
  for (const n of m.nodes) {
    const l = link(n, byId);
    if (!l) continue;
    const prev = chains.get(l.x);
    // Extend a chain of the same kind whose end is read only here.
    if (prev && prev.kind === l.kind && readers.get(l.x) === 1) {
      chains.set(n.id, { kind: l.kind, x: prev.x, c: l.kind === "scale" ? prev.c * l.c : prev.c + l.c, length: prev.length + 1 });
    } else chains.set(n.id, { ...l, length: 1 });
  }
  const nodes: IRNode[] = [];
  const alias = new Map<string, string>();
  let changed = false;
  for (const n of m.nodes) {
    const ch = chains.get(n.id);
    if (!ch || ch.length < 2) {
      nodes.push(n);
      continue;
    }
    changed = true;
    // A chain that multiplies by 1 or adds 0 in all is its start.
    if (ch.c === (ch.kind === "scale" ? 1 : 0)) {
      nodes.push(n);
      alias.set(n.id, ch.x);
      continue;
    }
    // The combined constant goes right before the node that now uses it.
    const k: IRNode = { id: `${n.id}c`, op: "constant", name: `${n.name}/constant`, inputs: [], attrs: { value: ch.c }, shape: [], dtype: "f32", span: n.span };
    nodes.push(k, { ...n, op: ch.kind === "scale" ? "mul" : "add", inputs: [ch.x, k.id], attrs: {} });
  }
  if (!changed) return m;
  const rewired = forward({ ...m, nodes }, alias);
  return dropUnused(renumber(rewired, rewired.nodes), mode);
}
