// The TypeScript emitter against the zoo: golden snapshots (UPDATE=1 rewrites them), byte-identical output,
// strict type-checking of every emitted module, and equivalence with the interpreter — the same outputs
// from the same weights and the same losses over three training steps with the same seed.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import ts from "typescript";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { emitCode, formatTs } from "../../compiler/emit/index.js";
import { compile } from "../../compiler/index.js";
import { golden, memoryHost, ROOT } from "../helpers.js";

const MODELS = path.join(ROOT, "models");
const files = readdirSync(MODELS).filter((f) => f.endsWith(".nnet")).sort();
const EMITTED = path.join(ROOT, "spec/emitted");

function load(file: string) {
  const rel = path.join("models", file);
  return compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), memoryHost());
}

/** What `nnetc compile models/F -o spec/emitted` writes. */
async function emitted(file: string): Promise<string> {
  const res = load(file);
  return formatTs(emitCode(res, { file: path.join("models", file), outFile: path.join(EMITTED, file.replace(/\.nnet$/, ".ts")), flavor: "ts" }));
}

for (const f of files) {
  test(`emit: models/${f} matches spec/emitted/${f.replace(/\.nnet$/, ".ts")}, byte for byte, every time`, async () => {
    const a = await emitted(f);
    const b = await emitted(f);
    assert.ok(a === b, "two emissions of the same input differ");
    golden(`spec/emitted/${f.replace(/\.nnet$/, ".ts")}`, a);
  });
}

test("emit: every emitted module type-checks with tsc --strict (and noUnusedLocals)", () => {
  const tsc = path.join(ROOT, "node_modules/typescript/bin/tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", EMITTED], { cwd: ROOT, encoding: "utf8" });
  assert.is(r.status, 0, r.stdout + r.stderr);
});

test("emit: the js and dts flavours of every zoo model parse, and js carries no type syntax", () => {
  for (const f of files) {
    const res = load(f);
    for (const flavor of ["js", "dts"] as const) {
      const code = emitCode(res, { file: path.join("models", f), outFile: path.join(EMITTED, "x.ts"), flavor });
      const sf = ts.createSourceFile(`x.${flavor === "js" ? "mjs" : "d.ts"}`, code, ts.ScriptTarget.ES2022, false, flavor === "js" ? ts.ScriptKind.JS : ts.ScriptKind.TS);
      const diags = (sf as unknown as { parseDiagnostics: ts.Diagnostic[] }).parseDiagnostics;
      assert.equal(diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")), [], `${f} (${flavor})`);
    }
  }
});

// The compiler's leaves (modules importing nothing) that the runtime shares: the table of resource limits,
// the own-names helper the name tables use, the plugin store (compiler/plugin/api.ts: losses and metrics) and the
// project root's confinement (compiler/root.ts, which imports only limits: the data layer confines its paths with it).
test("nnetc/runtime, all an emitted module imports besides tfjs, loads nothing of the compiler but its leaves (limits, own, plugin/api, root)", () => {
  const probe = "export async function load(url, context, next) { if (url.includes('/dist/compiler/') && !/\\/dist\\/compiler\\/(limits|own|plugin\\/api|root)\\.js$/.test(url)) console.log('LOADED ' + url); return next(url, context); }";
  const main = `import { register } from "node:module"; register(${JSON.stringify("data:text/javascript," + encodeURIComponent(probe))}); await import("nnetc/runtime"); console.log("ok");`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", main], { cwd: ROOT, encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, "ok\n", r.stdout);
});

// ── Equivalence with the interpreter ────────────────────────────────────────────────────────────────

// How each model is compared. GPT-2 (124 M weights) with Adam's slots does not fit twice in the wasm
// backend's heap: each way runs in a process of its own ("split") and the outputs and losses are compared
// here. VGG16 (138 M) cannot train on wasm here at all (one model, plain SGD, batch 1 aborts at the heap's
// 4 GiB: its 411 MB fc1 kernel, its gradient and their transposes), so it is compared on the forward pass;
// so is SmolLM-135M (llama.nnet: 30 layers and a 49,152 × 576 tied head, whose training with Adam overruns
// the heap even alone).
const MODE: Record<string, string> = { "gpt2_small.nnet": "split", "llama.nnet": "forward", "vgg16.nnet": "forward" };

interface Equiv {
  diffs: Record<string, number>;
  emitted?: number[];
  interpreted?: number[];
  error?: string;
}

function worker(f: string, mode: string): Promise<Equiv & { outputs?: Record<string, number[]>; losses?: number[] }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "dist/spec/unit/emit_equiv.worker.js"), f, mode], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b) => (out += b));
    child.stderr.on("data", (b) => (err += b));
    child.on("close", (code) => {
      try {
        resolve(JSON.parse(out.trim().split("\n").pop()!));
      } catch {
        resolve({ diffs: {}, error: `exit ${code}: ${err.slice(-2000)}` });
      }
    });
  });
}

async function equivalence(f: string): Promise<Equiv> {
  if (MODE[f] !== "split") return worker(f, MODE[f] ?? "train");
  const e = await worker(f, "train-emitted");
  const i = await worker(f, "train-interpreted");
  if (e.error || i.error) return { diffs: {}, error: e.error ?? i.error! };
  const diffs: Record<string, number> = {};
  for (const k of Object.keys(i.outputs!)) diffs[k] = i.outputs![k]!.reduce((d, v, j) => Math.max(d, Math.abs(v - e.outputs![k]![j]!)), 0);
  return { diffs, emitted: e.losses!, interpreted: i.losses! };
}

/** Each model in processes of its own, two at a time (one per core), the slowest first. */
const results = new Map<string, Promise<Equiv>>();
const slots: Promise<unknown>[] = [Promise.resolve(), Promise.resolve()];
const order = [...files].sort((a, b) => Number(b in MODE || b === "resnet50.nnet" || b === "bert_base.nnet") - Number(a in MODE || a === "resnet50.nnet" || a === "bert_base.nnet"));
order.forEach((f, k) => {
  const slot = k % 2;
  const p = slots[slot]!.then(() => equivalence(f));
  slots[slot] = p;
  results.set(f, p);
});

for (const f of files) {
  const what = MODE[f] === "forward" ? "same outputs (≤ 1e-5) from the same weights" : "same outputs (≤ 1e-5) and the same loss over three training steps";
  test(`emit ≡ interpret: models/${f}: ${what}`, async () => {
    const r = await results.get(f)!;
    assert.is(r.error, undefined, r.error);
    assert.ok(Object.keys(r.diffs).length > 0, "no outputs compared");
    for (const [k, d] of Object.entries(r.diffs)) assert.ok(d <= 1e-5, `output ${k}: max abs diff ${d}`);
    if (MODE[f] === "forward") return;
    const [e, i] = [r.emitted!, r.interpreted!];
    assert.ok(i.every(Number.isFinite), `losses ${i}`);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(e[k]! - i[k]!) <= 1e-5 * Math.max(1, Math.abs(i[k]!)), `step ${k + 1}: emitted loss ${e[k]} vs interpreted ${i[k]}`);
    assert.ok(i[2] !== i[0], "three training steps changed nothing");
  });
}

test.run();
