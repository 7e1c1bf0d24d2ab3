// The pass manager: optimization passes over the checked IR, each a pure, named IRModel → IRModel function,
// in ONE ordered list. `optimize()` runs the passes of an -O level for a mode (training keeps every weight,
// so checkpoints still fit; inference may drop dropout and dead layers). `verifyModel()` states the IR's
// invariants; the tests run it between every two passes.
import type { IRModel, IRModule } from "../ir/types.js";
import { PASS_LIST } from "./cleanup.js";
import { FUSION_PASSES } from "./fusion.js";
import { mergeLora } from "./lora.js";
import type { OptLevel, Pass, PassMode } from "./types.js";

export type { OptLevel, Pass, PassMode };
export { printModel } from "./util.js";

/** THE ordered list of passes. */
// merge-lora runs last: fold-batchnorm leaves adapted layers alone, and a derived weight is derived from trained ones only.
export const PASSES: readonly Pass[] = [...PASS_LIST, ...FUSION_PASSES, mergeLora];

export interface Stage {
  pass: string;
  model: string;
  changed: boolean;
  nodesBefore: number;
  nodesAfter: number;
  paramsBefore: number;
  paramsAfter: number;
}

export interface OptimizeOptions {
  level: OptLevel;
  mode: PassMode;
  /** Stop after this pass (for `--emit ir --after NAME`). */
  after?: string;
  /** Called with each model after each pass (tests verify the IR there). */
  onStage?: (stage: Stage, model: IRModel) => void;
}

/** The passes an -O level runs for a mode, in order. */
export function passesFor(level: OptLevel, mode: PassMode): Pass[] {
  return PASSES.filter((p) => p.level <= level && p.modes.includes(mode));
}

/** Run the passes of `o.level` over every model of a module (which must have no errors). */
export function optimize(mod: IRModule, o: OptimizeOptions): { module: IRModule; stages: Stage[] } {
  const stages: Stage[] = [];
  let list = passesFor(o.level, o.mode);
  if (o.after !== undefined) {
    const at = list.findIndex((p) => p.name === o.after);
    if (at < 0) throw new Error(`unknown pass "${o.after}" at -O${o.level} for ${o.mode}`);
    list = list.slice(0, at + 1);
  }
  const models = mod.models.map((m0) => {
    let m = m0;
    for (const p of list) {
      const next = p.run(m, o.mode);
      const stage: Stage = { pass: p.name, model: m.name, changed: next !== m, nodesBefore: m.nodes.length, nodesAfter: next.nodes.length, paramsBefore: m.params.length, paramsAfter: next.params.length };
      stages.push(stage);
      o.onStage?.(stage, next);
      m = next;
    }
    return m;
  });
  // A training plan describes the training IR: an inference IR (batchnorms folded, dead layers gone)
  // carries none, so nothing refers to layers it no longer has.
  return { module: { ...mod, models, plans: o.mode === "infer" && o.level > 0 ? [] : mod.plans }, stages };
}

/** Problems with a model's structure (empty when it is well formed). */
export function verifyModel(m: IRModel): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const names = new Set<string>();
  m.nodes.forEach((n, i) => {
    if (n.id !== `n${i}`) out.push(`node ${i} has id ${n.id}, not n${i}`);
    for (const x of n.inputs) if (!seen.has(x)) out.push(`${n.id} (${n.op}) reads ${x}, which is not an earlier node`);
    seen.add(n.id);
    names.add(n.name);
    if (n.op !== "input" && n.shape === null) out.push(`${n.id} (${n.op}) has no shape`);
  });
  for (const i of m.inputs) {
    const n = m.nodes.find((x) => x.id === i.node);
    if (!n || n.op !== "input") out.push(`input ${i.name} is not an input node`);
  }
  for (const o of m.outputs) if (!seen.has(o.node)) out.push(`output ${o.name} refers to ${o.node}, which does not exist`);
  const used = new Set<string>();
  for (const n of m.nodes) {
    used.add(n.name);
    if (n.op === "tied_dense") used.add(String(n.attrs.layer));
  }
  for (const p of m.params) if (!used.has(p.layer)) out.push(`weight ${p.name} belongs to no node`);
  const pnames = new Set(m.params.map((p) => p.name));
  if (pnames.size !== m.params.length) out.push("duplicate weight names");
  return out;
}

