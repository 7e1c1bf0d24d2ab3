// Helpers the passes share: rewiring uses, removing dead nodes, renumbering, and a one-line-per-node print.
import type { IRModel, IRNode } from "../ir/types.js";
import type { PassMode } from "./types.js";

/** How many times each node is read (by nodes and by outputs). */
export function readerCounts(m: IRModel): Map<string, number> {
  const u = new Map<string, number>();
  for (const n of m.nodes) for (const x of n.inputs) u.set(x, (u.get(x) ?? 0) + 1);
  for (const o of m.outputs) u.set(o.node, (u.get(o.node) ?? 0) + 1);
  return u;
}

/** Give nodes the ids n0, n1, … in order again, after nodes were removed. */
export function renumber(m: IRModel, nodes: IRNode[]): IRModel {
  const ids = new Map(nodes.map((n, i) => [n.id, `n${i}`]));
  const id = (x: string) => ids.get(x) ?? x;
  return {
    ...m,
    nodes: nodes.map((n) => ({ ...n, id: id(n.id), inputs: n.inputs.map(id) })),
    inputs: m.inputs.map((i) => ({ ...i, node: id(i.node) })),
    outputs: m.outputs.map((o) => ({ ...o, node: id(o.node) })),
  };
}

/** One line per node, for goldens: `n2 hidden = dense[dense_1](n1; units=256) [batch, 256] f32`. */
export function printModel(m: IRModel): string {
  const lines = [`model ${m.name}(${m.inputs.map((i) => `${i.name}: ${i.dtype}[${i.shape.join(", ")}]`).join(", ")}) -> ${m.outputs.map((o) => `${o.name}=${o.node}`).join(", ")}`];
  for (const n of m.nodes) {
    if (n.op === "input") continue;
    const attrs = Object.entries(n.attrs).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    const args = [n.inputs.join(", "), attrs.join(", ")].filter(Boolean).join("; ");
    // The layer's name when it is not what the line is called by (it names the weights).
    const layer = n.binding && n.binding !== n.name ? `[${n.name}]` : "";
    lines.push(`  ${n.id} ${n.binding ?? n.name} = ${n.op}${layer}(${args}) [${(n.shape ?? []).join(", ")}] ${n.dtype ?? "?"}`);
  }
  lines.push(`  weights: ${m.params.length} (${m.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0)} values)`);
  return lines.join("\n") + "\n";
}

/** Replace every use of node `from` by node `to` (inputs and outputs); the node itself stays for DCE. */
export function forward(m: IRModel, alias: Map<string, string>): IRModel {
  if (alias.size === 0) return m;
  const resolve = (x: string): string => {
    let y = x;
    while (alias.has(y)) y = alias.get(y)!;
    return y;
  };
  const nodes = m.nodes.map((n) => (n.inputs.some((x) => alias.has(x)) ? { ...n, inputs: n.inputs.map(resolve) } : n));
  return { ...m, nodes, outputs: m.outputs.map((o) => (alias.has(o.node) ? { ...o, node: resolve(o.node) } : o)) };
}

/**
 * Nodes that no output needs, removed. For training, nodes that own weights stay (with what they read), so
 * the weights and checkpoints are those of the unoptimized model; for inference their weights go too.
 */
export function dropUnused(m: IRModel, mode: PassMode): IRModel {
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  const owners = new Set(m.params.map((p) => p.layer));
  const live = new Set<string>();
  const stack = m.outputs.map((o) => o.node);
  for (const i of m.inputs) stack.push(i.node);
  if (mode === "train") for (const n of m.nodes) if (owners.has(n.name)) stack.push(n.id);
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    stack.push(...byId.get(id)!.inputs);
  }
  if (live.size === m.nodes.length) return m;
  const nodes = m.nodes.filter((n) => live.has(n.id));
  const layers = new Set<string>();
  for (const n of nodes) {
    layers.add(n.name);
    if (n.op === "tied_dense") layers.add(String(n.attrs.layer));
  }
  return renumber({ ...m, params: m.params.filter((p) => layers.has(p.layer)) }, nodes);
}

