// One zoo model's equivalence check between its emitted module and the interpreter, in a process of its
// own (the wasm backend's heap only grows, so big models each get a fresh one). Prints one JSON line.
// Run by spec/unit/emit.test.ts: node emit_equiv.worker.js FILE.nnet
import * as tf from "@tensorflow/tfjs-core";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import { compile } from "../../compiler/index.js";
import { optimize } from "../../compiler/passes/index.js";
import type { IRModel, IRModule } from "../../compiler/ir/types.js";
import { initBackend } from "../../runtime/backend.js";
import * as nn from "../../runtime/node.js";
import { run } from "../../runtime/interpret.js";
import { memoryHost, ROOT } from "../helpers.js";

const EMITTED = path.join(ROOT, "spec/emitted");

function load(file: string) {
  const rel = path.join("models", file);
  return compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), memoryHost());
}

/** Emitted modules, transpiled from the golden TypeScript into dist/ (inside the package, so nnetc/runtime resolves). */
async function importEmitted(file: string): Promise<Record<string, { def: nn.ModelDef<unknown, unknown> }>> {
  const src = readFileSync(path.join(EMITTED, file.replace(/\.nnet$/, ".ts")), "utf8");
  const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText;
  // The module finds its .nnet file relative to itself: keep the golden's relative position.
  const dir = path.join(ROOT, "dist/spec-emitted/a");
  mkdirSync(dir, { recursive: true });
  const out = path.join(dir, file.replace(/\.nnet$/, ".mjs"));
  writeFileSync(out, js);
  return (await import(pathToFileURL(out).href)) as Record<string, { def: nn.ModelDef<unknown, unknown> }>;
}

/**
 * The interpreter behind the same ModelDef: only the forward passes differ. The emitted module is compiled at
 * -O1 (the default): its training forward pass from the IR optimized for training, its inference one (when
 * there is one) from the IR optimized for inference; the interpreter runs those same two IRs.
 */
function interpreted(def: nn.ModelDef<unknown, unknown>, mod: IRModule, name: string): nn.ModelDef<unknown, unknown> {
  const pass = (m: IRModel): nn.ModelDef<unknown, unknown>["forward"] => (w, inputs, step) => {
    const r = run(m, new Map(Object.entries(w)), inputs as Record<string, tf.Tensor>, step);
    step.updates.push(...r.updates);
    return r.outputs;
  };
  const form = (mode: "train" | "infer") => optimize(mod, { level: 1, mode }).module.models.find((x) => x.name === name)!;
  const { infer, ...rest } = def;
  return { ...rest, forward: pass(form("train")), ...(infer ? { infer: { params: infer.params, forward: pass(form("infer")) } } : {}) };
}

/** A small batch for a model: floats in [0, 1), integer ids in {0, 1}; symbolic sizes 2 (batch; 1 for big images) or 6. */
function batchFor(mod: IRModule, m: IRModel, rand: () => number): Record<string, tf.Tensor> {
  const env: Record<string, number> = {};
  // Big images (ResNet-50, VGG16, MobileNetV2 take 224×224×3) go one at a time, to keep the test short.
  const perSample = Math.max(...m.inputs.map((i) => i.shape.slice(1).reduce<number>((a, d) => a * (typeof d === "number" ? d : 6), 1)));
  const size = (d: number | string, i: number) => (typeof d === "number" ? d : (env[d] ??= i === 0 ? (perSample > 100_000 ? 1 : 2) : 6));
  const out: Record<string, tf.Tensor> = {};
  const fill = (shape: number[], int: boolean, hi = 2) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return int ? tf.tensor(Int32Array.from({ length: n }, () => Math.floor(rand() * hi)), shape, "int32") : tf.tensor(Float32Array.from({ length: n }, () => rand()), shape, "float32");
  };
  for (const i of m.inputs) out[i.name] = fill(i.shape.map(size), i.dtype.startsWith("i"));
  const plan = mod.plans.find((p) => p.model === m.name)!;
  const ds = mod.datasets.find((d) => d.name === plan.dataset)!;
  for (const t of plan.loss) {
    if (out[t.target] || t.targetIsOutput || t.targetValue !== undefined) continue;
    // Shaped like the prediction it is compared with (class ids: without the class axis).
    const f = ds.fields.find((x) => x.name === t.target)!;
    const pred = m.nodes.find((n) => n.id === m.outputs.find((o) => o.name === t.prediction)!.node)!;
    const shape = pred.shape!.map((d, i) => size(d, i));
    const int = f.dtype.startsWith("i");
    out[t.target] = fill(int ? shape.slice(0, -1) : shape, int);
  }
  return out;
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(tf.cast(a, "float32"), tf.cast(b, "float32")))).dataSync()[0]!);
}

interface Trace {
  outputs: Record<string, tf.Tensor>;
  losses: number[];
}

/** Outputs in inference mode, then three trainStep()s on one batch; the model is disposed after. */
async function trace(def: nn.ModelDef<unknown, unknown>, batch: Record<string, tf.Tensor>): Promise<Trace> {
  const model = await nn.create(def, { seed: 7 });
  const outputs = nn.predict(model, batch) as Record<string, tf.Tensor>;
  const losses = [0, 1, 2].map(() => nn.trainStep(model, batch as never));
  nn.dispose(model);
  return { outputs, losses };
}

/**
 * "forward": outputs only, from one set of weights both ways.
 * "train": both ways in this process, the plan's optimizer; "sgd": the same with plain SGD (no optimizer
 * slots: less memory); "train-emitted" / "train-interpreted" (or "sgd-…"): one way only, printing outputs
 * and losses for the parent to compare (for models too big to hold twice).
 */
const mode = process.argv[3] ?? "train";

async function main(f: string): Promise<unknown> {
  await initBackend("wasm");
  const res = load(f);
  const mod = await importEmitted(f);
  const plan = res.module.plans[0]!;
  const m = res.module.models.find((x) => x.name === plan.model)!;
  const found = Object.values(mod).find((x) => x && typeof x === "object" && "def" in x && x.def.name === m.name)!.def;
  const sgd = { ...found.plan!, phases: found.plan!.phases.map((p) => ({ ...p, optimizer: { fn: "sgd", args: { lr: 0.01 } } })) };
  const def = mode.startsWith("sgd") ? { ...found, plan: sgd } : found;
  let s = 12345;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const batch = batchFor(res.module, m, rand);
  const diffs: Record<string, number> = {};
  if (mode === "forward") {
    // One set of weights, two forward passes.
    const a = await nn.create(def, { seed: 7 });
    const ya = nn.predict(a, batch) as Record<string, tf.Tensor>;
    const yb = nn.predict({ ...a, def: interpreted(def, res.module, m.name) }, batch) as Record<string, tf.Tensor>;
    for (const k of Object.keys(yb)) diffs[k] = maxAbsDiff(ya[k]!, yb[k]!);
    return { diffs };
  }
  if (mode.endsWith("-emitted") || mode.endsWith("-interpreted")) {
    const t = await trace(mode.endsWith("-emitted") ? def : interpreted(def, res.module, m.name), batch);
    return { outputs: Object.fromEntries(Object.entries(t.outputs).map(([k, v]) => [k, Array.from(v.dataSync())])), losses: t.losses };
  }
  const e = await trace(def, batch);
  const i = await trace(interpreted(def, res.module, m.name), batch);
  for (const k of Object.keys(i.outputs)) diffs[k] = maxAbsDiff(e.outputs[k]!, i.outputs[k]!);
  return { diffs, emitted: e.losses, interpreted: i.losses };
}

main(process.argv[2]!).then(
  (r) => process.stdout.write(JSON.stringify(r) + "\n"),
  (e) => {
    process.stdout.write(JSON.stringify({ error: String((e as Error).stack ?? e) }) + "\n");
    process.exitCode = 1;
  },
);
