// The differential test matrix (GitHub issue 13), generated, not hand-picked: every model of every zoo file
// (models/*.nnet) and of every .nnet under spec/ that compiles without errors × every -O level of the pass
// manager × every target of TARGETS (spec/unit/matrix.worker.ts: interpreter, emitted module, ONNX in
// onnxruntime-node, tfjs-layers through tf.loadLayersModel, PyTorch in the torch engine), each compared with the -O0 interpreter on the
// same input and the same non-trivial weights, to 1e-4 of the output's scale. A new model, level or
// target enters by existing; a target that cannot express a cell says why (a numbered diagnostic), and that
// is printed, never dropped. Each file runs in a worker process of its own, two at a time.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { OPS, type OpKind } from "../../compiler/ir/ops.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { memoryHost, nnetFilesUnder, ROOT } from "../helpers.js";
import { LEVELS, TARGETS, TOLERANCE, type Cell } from "./matrix.worker.js";

const WORKER = path.join(ROOT, "dist/spec/unit/matrix.worker.js");

/** Cells not run by default, each with why: run them with NNETC_FULL_ZOO=1. Printed as gated, and counted. */
const GATED: { file: string; model: string; target: string; why: string }[] = [];
const FULL = !!process.env.NNETC_FULL_ZOO;

// ── the models: discovered ──────────────────────────────────────────────────────────────────────────

interface Entry {
  file: string;
  models: IRModel[];
  weights: number;
}

const entries: Entry[] = [];
const skipped: { file: string; why: string }[] = [];
for (const file of [...nnetFilesUnder("models"), ...nnetFilesUnder("spec")]) {
  const res = compile(file, readFileSync(path.join(ROOT, file), "utf8"), memoryHost());
  const err = res.diagnostics.find((d) => d.severity === "error");
  if (err) skipped.push({ file, why: `${err.code}: ${err.message}` });
  else if (!res.module.models.length) skipped.push({ file, why: "no model (blocks only)" });
  else entries.push({ file, models: res.module.models, weights: res.module.models.reduce((s, m) => s + m.params.reduce((t, p) => t + p.shape.reduce((a, b) => a * b, 1), 0), 0) });
}

const gated = (file: string, model: string, target: string) => (FULL ? undefined : GATED.find((g) => g.file === file && g.model === model && g.target === target));

// ── the workers: one process per file, two at a time, the biggest first ─────────────────────────────────

interface FileResult {
  cells: Cell[];
  error?: string;
}

function worker(e: Entry): Promise<FileResult> {
  const gates = e.models.flatMap((m) => TARGETS.filter((t) => gated(e.file, m.name, t.name)).map((t) => `--gate=${m.name}@${t.name}`));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WORKER, e.file, ...gates], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b) => (out += b));
    child.stderr.on("data", (b) => (err += b));
    child.on("close", (code) => {
      const cells = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Cell);
      resolve(code === 0 ? { cells } : { cells, error: `worker exited with ${code}: ${err.slice(-3000)}` });
    });
  });
}

const t0 = performance.now();
const results = new Map<string, Promise<FileResult>>();
{
  const queue = [...entries].sort((a, b) => b.weights - a.weights);
  const waiting = new Map<string, (r: FileResult) => void>();
  for (const e of queue) results.set(e.file, new Promise((r) => waiting.set(e.file, r)));
  const next = async (): Promise<void> => {
    for (let e = queue.shift(); e; e = queue.shift()) waiting.get(e.file)!(await worker(e));
  };
  void Promise.all([next(), next()]);
}

// ── the tests ───────────────────────────────────────────────────────────────────────────────────────

const counts = { checked: 0, inexpressible: 0, gated: 0 };
const reasons = new Map<string, number>();
let elapsed = 0;

test("matrix: which .nnet files are in it (every one that compiles without errors and has a model)", () => {
  console.log(`    ${entries.length} files, ${entries.reduce((s, e) => s + e.models.length, 0)} models × levels ${LEVELS.map((l) => `-O${l}`).join(" ")} × targets ${TARGETS.map((t) => t.name).join(", ")}`);
  for (const s of skipped) console.log(`    skipped ${s.file}: ${s.why}`);
  assert.ok(entries.some((e) => e.file.startsWith("models/")), "no zoo model found");
  // Every zoo file must be in the matrix; spec/ files are skipped only for their errors (deliberately broken).
  for (const s of skipped) assert.ok(!s.file.startsWith("models/"), `zoo file ${s.file} is not in the matrix: ${s.why}`);
});

test("matrix: every op kind of the op registry (compiler/ir/ops.ts) occurs in some matrix model", () => {
  const used = new Set<string>(entries.flatMap((e) => e.models.flatMap((m) => m.nodes.map((n) => n.op))));
  const missing = (Object.keys(OPS) as OpKind[]).filter((k) => !used.has(k));
  assert.equal(missing, [], `ops no matrix model uses (add them to a spec sample such as spec/onnx/ops.nnet): ${missing.join(", ")}`);
});

const fmt = (x: number | null | undefined) => (x === null || x === undefined ? "∞" : x.toExponential(1));

for (const e of entries) {
  test(`matrix: ${e.file}: ${e.models.map((m) => m.name).join(", ")} × -O${LEVELS.join("/")} × ${TARGETS.length} targets equal the -O0 interpreter`, async () => {
    const r = await results.get(e.file)!;
    elapsed = (performance.now() - t0) / 1000;
    const failures: string[] = [];
    for (const m of e.models) {
      for (const level of LEVELS) {
        for (const t of TARGETS) {
          const label = `${e.file}#${m.name} -O${level} ${t.name}`.padEnd(74);
          const g = gated(e.file, m.name, t.name);
          const found = r.cells.filter((c) => c.model === m.name && c.level === level && c.target === t.name);
          if (g) {
            counts.gated++;
            console.log(`    ${label} gated (NNETC_FULL_ZOO=1 runs it): ${g.why}`);
            if (found.length) failures.push(`${label}: gated, yet run`);
            continue;
          }
          if (found.length !== 1) {
            failures.push(`${label}: ${found.length} results from the worker, not 1`);
            continue;
          }
          const c = found[0]!;
          if (c.status === "inexpressible") {
            counts.inexpressible++;
            const why = c.reason!.replace(/"[^"]*"/g, "…");
            reasons.set(`${t.name}: ${why}`, (reasons.get(`${t.name}: ${why}`) ?? 0) + 1);
            console.log(`    ${label} not expressible: ${c.reason}`);
          } else if (c.status === "error") {
            failures.push(`${label}: threw (not a diagnostic): ${c.error}`);
            console.log(`    ${label} INTERNAL ERROR`);
          } else {
            counts.checked++;
            console.log(`    ${label} max |Δ| ${fmt(c.diff)}  scale ${c.scale!.toExponential(1)}  ${c.output}  ${(c.ms / 1000).toFixed(1)} s${c.ok ? "" : "  FAIL"}`);
            if (!c.ok) failures.push(`${label}: output ${c.output}: max |Δ| ${c.diff} above ${TOLERANCE} × ${c.scale}`);
          }
        }
      }
    }
    assert.ok(!r.error, r.error);
    assert.equal(failures, [], failures.join("\n"));
  });
}

test("matrix: summary", () => {
  const total = entries.reduce((s, e) => s + e.models.length, 0) * LEVELS.length * TARGETS.length;
  console.log(`    matrix: ${total} cells: ${counts.checked} checked, ${counts.inexpressible} not expressible, ${counts.gated} gated; ${skipped.length} files skipped; ${elapsed.toFixed(0)} s`);
  for (const [why, n] of [...reasons].sort((a, b) => b[1] - a[1])) console.log(`      ${String(n).padStart(3)} × ${why}`);
  assert.is(counts.checked + counts.inexpressible + counts.gated, total, "every cell is checked, not expressible or gated");
  assert.ok(counts.checked > 0);
});

test.run();
