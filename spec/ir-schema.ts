// Validation of IR modules for the tests: the JSON Schema in spec/ir.schema.json (ajv, draft 2020-12)
// plus the cross-references a schema cannot express (node ids, inputs, outputs, params, plans).
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import type { IRModule } from "../compiler/ir/types.js";
import { ROOT } from "./helpers.js";

export const SCHEMA_PATH = path.join(ROOT, "spec/ir.schema.json");

let validator: ValidateFunction | undefined;

/** The compiled schema (strict mode: a typo in the schema itself is an error). */
export function irValidator(): ValidateFunction {
  if (!validator) {
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as object;
    validator = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
  }
  return validator!;
}

function fmt(e: ErrorObject): string {
  return `${e.instancePath || "/"} ${e.message ?? "is invalid"}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ""}`;
}

/**
 * Problems with `value` as the JSON form of an IR module: schema violations, then broken references.
 * The module goes through JSON first, as the CLI prints it (NaN becomes null, undefined disappears).
 */
export function irProblems(value: unknown): string[] {
  const json = JSON.parse(JSON.stringify(value)) as unknown;
  const validate = irValidator();
  if (!validate(json)) {
    // oneOf/anyOf failures repeat themselves per branch; keep the list short and unique.
    return [...new Set((validate.errors ?? []).map(fmt))].slice(0, 20);
  }
  return irInvariants(json as IRModule);
}

/** What the schema cannot say: ids unique and in order, references resolve, names unique. */
export function irInvariants(m: IRModule): string[] {
  const out: string[] = [];
  const modelNames = new Set<string>();
  for (const model of m.models) {
    const at = `model ${model.name}`;
    if (modelNames.has(model.name)) out.push(`${at}: declared twice`);
    modelNames.add(model.name);
    const ids = new Map<string, number>();
    model.nodes.forEach((n, i) => {
      if (n.id !== `n${i}`) out.push(`${at}: node ${i} has id ${n.id}, expected n${i}`);
      ids.set(n.id, i);
      for (const input of n.inputs) {
        const j = ids.get(input);
        if (j === undefined || j >= i) out.push(`${at}: node ${n.id} reads ${input}, which is not an earlier node`);
      }
      if (n.op === "input" && n.inputs.length) out.push(`${at}: input node ${n.id} has inputs`);
    });
    for (const i of model.inputs) {
      const n = model.nodes[ids.get(i.node) ?? -1];
      if (!n) out.push(`${at}: input ${i.name} names missing node ${i.node}`);
      else if (n.op !== "input") out.push(`${at}: input ${i.name} names node ${i.node}, a ${n.op}`);
    }
    if (new Set(model.inputs.map((i) => i.name)).size !== model.inputs.length) out.push(`${at}: input names repeat`);
    for (const o of model.outputs) if (!ids.has(o.node)) out.push(`${at}: output ${o.name} names missing node ${o.node}`);
    if (new Set(model.outputs.map((o) => o.name)).size !== model.outputs.length) out.push(`${at}: output names repeat`);
    const layers = new Set(model.nodes.map((n) => n.name));
    const paramNames = new Set<string>();
    for (const p of model.params) {
      if (p.name !== `${p.layer}/${p.role}`) out.push(`${at}: param ${p.name} is not ${p.layer}/${p.role}`);
      if (paramNames.has(p.name)) out.push(`${at}: param ${p.name} appears twice`);
      paramNames.add(p.name);
      if (!layers.has(p.layer)) out.push(`${at}: param ${p.name} belongs to no node's layer`);
    }
    const dimNames = new Set(model.dims.map((d) => d.name));
    if (dimNames.size !== model.dims.length) out.push(`${at}: dims repeat`);
    for (const n of model.nodes) {
      for (const d of n.shape ?? []) {
        if (typeof d !== "string") continue;
        for (const sym of d.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []) {
          if (sym !== "floor" && sym !== "ceil" && !dimNames.has(sym)) out.push(`${at}: node ${n.id} shape mentions undeclared dimension ${sym}`);
        }
      }
    }
  }
  const datasets = new Set(m.datasets.map((d) => d.name));
  for (const p of m.plans) {
    const at = `plan ${p.name}`;
    const model = m.models.find((x) => x.name === p.model);
    if (!model) out.push(`${at}: model ${p.model} is not in the module`);
    if (!datasets.has(p.dataset)) out.push(`${at}: dataset ${p.dataset} is not in the module`);
    const layers = new Set(model?.params.map((w) => w.layer) ?? []);
    for (const ph of p.phases) {
      if (!datasets.has(ph.dataset)) out.push(`${at}: phase ${ph.name} trains on ${ph.dataset}, which is not in the module`);
      for (const l of ph.frozenLayers) if (!layers.has(l)) out.push(`${at}: phase ${ph.name} freezes ${l}, which owns no weights`);
    }
    if (new Set(p.phases.map((ph) => ph.name)).size !== p.phases.length) out.push(`${at}: phase names repeat`);
  }
  return out;
}
