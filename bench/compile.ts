// npm run bench: parse + check time per zoo model (in-process, warm, median of many runs), compile time
// to TypeScript (parse → check → emit, then prettier formatting, reported apart), and the whole-process
// times of `nnetc check` and `nnetc compile` on ResNet-50. Prints a table; targets are checked by eye
// and reported in closing notes, never asserted in tests.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { emitCode, formatTs } from "../compiler/emit/index.js";
import { compile, type Host } from "../compiler/index.js";
import { median, ROOT } from "./common.js";

const host: Host = { readFile: (f) => ({ text: readFileSync(path.join(ROOT, f), "utf8") }) };

const files = readdirSync(path.join(ROOT, "models")).filter((f) => f.endsWith(".nnet")).sort();
console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}`);
console.log("parse+check, in-process, warm (median of 30 after 5 warm-up runs)");
console.log("model".padEnd(24) + "nodes".padStart(8) + "median ms".padStart(12) + "p90 ms".padStart(10));
let worst = 0;
for (const f of files) {
  const rel = path.join("models", f);
  const text = readFileSync(path.join(ROOT, rel), "utf8");
  for (let i = 0; i < 5; i++) compile(rel, text, host);
  const times: number[] = [];
  let nodes = 0;
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    const r = compile(rel, text, host);
    times.push(performance.now() - t);
    nodes = r.module.models.reduce((a, m) => a + m.nodes.length, 0);
  }
  const med = median(times);
  worst = Math.max(worst, med);
  const p90 = [...times].sort((a, b) => a - b)[Math.floor(times.length * 0.9)]!;
  console.log(f.padEnd(24) + String(nodes).padStart(8) + med.toFixed(2).padStart(12) + p90.toFixed(2).padStart(10));
}
console.log(`largest median: ${worst.toFixed(2)} ms (target: under 20 ms)`);

const runs: number[] = [];
for (let i = 0; i < 11; i++) {
  const t = performance.now();
  execFileSync(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "check", "models/resnet50.nnet"], { cwd: ROOT, stdio: "ignore" });
  runs.push(performance.now() - t);
}
console.log(`whole process, nnetc check models/resnet50.nnet: median ${median(runs).toFixed(0)} ms of 11 runs (target: under 500 ms)`);

console.log("");
console.log("compile to TypeScript, in-process, warm (median of 15 after 3 warm-up runs)");
console.log("model".padEnd(24) + "parse→emit ms".padStart(15) + "prettier ms".padStart(13) + "total ms".padStart(10) + "lines".padStart(8));
for (const f of files) {
  const rel = path.join("models", f);
  const text = readFileSync(path.join(ROOT, rel), "utf8");
  const once = () => emitCode(compile(rel, text, host), { file: rel, outFile: path.join(ROOT, "spec/emitted", f.replace(/\.nnet$/, ".ts")), flavor: "ts" });
  for (let i = 0; i < 3; i++) await formatTs(once());
  const emit: number[] = [];
  const fmt: number[] = [];
  const total: number[] = [];
  let lines = 0;
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    const code = once();
    const t1 = performance.now();
    const pretty = await formatTs(code);
    const t2 = performance.now();
    emit.push(t1 - t0);
    fmt.push(t2 - t1);
    total.push(t2 - t0);
    lines = pretty.split("\n").length;
  }
  console.log(f.padEnd(24) + median(emit).toFixed(2).padStart(15) + median(fmt).toFixed(2).padStart(13) + median(total).toFixed(2).padStart(10) + String(lines).padStart(8));
}
console.log("target: ResNet-50 parse→emit under 50 ms (prettier formatting is reported apart: nnetc compile runs it)");

const compiles: number[] = [];
for (let i = 0; i < 7; i++) {
  const t = performance.now();
  execFileSync(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "compile", "models/resnet50.nnet", "-o", "-"], { cwd: ROOT, stdio: "ignore" });
  compiles.push(performance.now() - t);
}
console.log(`whole process, nnetc compile models/resnet50.nnet -o - (emit + prettier, cold): median ${median(compiles).toFixed(0)} ms of 7 runs`);

// A build that runs `nnetc compile` again on unchanged input: the header's digests say the output is current.
const out = path.join(ROOT, "dist/bench-compile");
execFileSync(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "compile", "models/resnet50.nnet", "-o", out], { cwd: ROOT, stdio: "ignore" });
const noops: number[] = [];
for (let i = 0; i < 7; i++) {
  const t = performance.now();
  execFileSync(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "compile", "models/resnet50.nnet", "-o", out], { cwd: ROOT, stdio: "ignore" });
  noops.push(performance.now() - t);
}
console.log(`whole process, nnetc compile models/resnet50.nnet again with its output current: median ${median(noops).toFixed(0)} ms of 7 runs`);
