// What spec/unit/onnx.test.ts and onnx_large.test.ts share: the equivalence worker's runner, the ONNX
// checker (python3-onnx) and the tolerance.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import * as assert from "uvu/assert";
import { ROOT } from "../helpers.js";

/** Zoo models whose export test runs in onnx_large.test.ts, one process each (hundreds of MB of weights, or 224×224 images). */
export const LARGE = ["resnet50.nnet", "vgg16.nnet", "bert_base.nnet", "gpt2_small.nnet"];
export const TOLERANCE = 1e-4;
const WORKER = path.join(ROOT, "dist/spec/unit/onnx_equiv.worker.js");
/** Has onnx (1.12+) through Debian's python3-onnx, which npm test installs (scripts/setup.mjs); the python3 on PATH may be another one. */
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

export interface Line {
  file: string;
  onnx: string;
  maxDiff: number | null;
  nodes: number;
  transposes: number;
  bytes: number;
  ms: number;
  error?: string;
}

/** Run the equivalence worker (one process) over files at -O levels ("1:mlp.nnet"); one result line per model. */
export function equivalence(out: string, specs: string[]): Promise<Line[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, out, ...specs], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b) => (stdout += b));
    child.stderr.on("data", (b) => (stderr += b));
    child.on("close", (code) => {
      const lines = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Line);
      if (code !== 0 || lines.length === 0) reject(new Error(`worker exited with ${code}: ${stderr.slice(-2000)}`));
      else resolve(lines);
    });
  });
}

/** The ONNX checker (full_check: strict shape inference) on each file; op-type counts per file. */
export function onnxCheck(files: string[]): Record<string, Record<string, number>> {
  const script = [
    "import json, sys, collections, onnx",
    "out = {}",
    "for p in sys.argv[1:]:",
    "    onnx.checker.check_model(p, full_check=True)",
    "    m = onnx.load(p, load_external_data=False)",
    "    out[p] = dict(collections.Counter(n.op_type for n in m.graph.node))",
    "print(json.dumps(out))",
  ].join("\n");
  const r = spawnSync(PYTHON, ["-c", script, ...files], { encoding: "utf8", maxBuffer: 1 << 24 });
  assert.is(r.status, 0, `the ONNX checker rejected a file (or ${PYTHON} lacks onnx: apt-get install python3-onnx):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, Record<string, number>>;
}

export function assertClose(lines: Line[]): void {
  for (const l of lines) {
    assert.ok(!l.error, `${l.file}: ${l.error}`);
    assert.ok(l.maxDiff !== null && l.maxDiff <= TOLERANCE, `${l.file}: max |onnxruntime − interpreter| = ${l.maxDiff}, above ${TOLERANCE}`);
    console.log(`    ${l.file.padEnd(40)} max |Δ| ${l.maxDiff!.toExponential(1)}  ${String(l.nodes).padStart(4)} nodes  ${String(l.transposes).padStart(3)} transposes  ${(l.bytes / 1e6).toFixed(1).padStart(6)} MB  ${(l.ms / 1000).toFixed(1)} s`);
  }
}

