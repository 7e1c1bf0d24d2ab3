// npm run bench: parse + check time per zoo model (in-process, warm, median of many runs), and the
// whole-process time of `nnetc check models/resnet50.nnet`. Prints a table; targets are checked by eye
// and reported in closing notes, never asserted in tests.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { compile, type Host } from "../compiler/index.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const host: Host = { readFile: (f) => ({ text: readFileSync(path.join(ROOT, f), "utf8") }) };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

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
