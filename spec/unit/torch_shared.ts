// What the PyTorch tests share: the project's Python with torch (or a failure saying how to get it), the blob
// images their plans train on, and a run's epoch records.
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import * as assert from "uvu/assert";
import { Rng } from "../../runtime/data/rng.js";
import type { Split } from "../../runtime/data/split.js";
import type { IRModel } from "../../compiler/ir/types.js";
import { probeTorch, pythonFor } from "../../runtime/torch/process.js";

/** The Python the PyTorch tests run: the engine's (the project's .venv over Debian's python3 with python3-torch, both made by `npm test`). */
export const PYTHON = pythonFor();

/** Fails the test, saying what to install, when PYTHON cannot import torch and numpy. */
export function requireTorch(): void {
  const probe = probeTorch(PYTHON);
  if (!probe.ok) assert.unreachable(`${probe.why}: install Debian's python3-torch (apt-get install -y python3-torch libopenblas0-pthread; npm test's scripts/setup.mjs does it)`);
}

/** `n` 8×8×2 images as JSON lines, each of four classes a noisy blob in its own corner, drawn from `rng`. */
export function writeBlobs(file: string, n: number, rng: Rng): void {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 4;
    const image: number[] = [];
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) for (let c = 0; c < 2; c++) image.push(Number(((((label & 1) ? x >= 4 : x < 4) && ((label & 2) ? y >= 4 : y < 4) ? 1 : 0) + 0.8 * (rng.next() - 0.5)).toFixed(4)));
    lines.push(JSON.stringify({ image, label }));
  }
  writeFileSync(file, lines.join("\n") + "\n");
}

/** A run folder's metrics.jsonl, one record per epoch. */
export const records = (run: string) =>
  readFileSync(path.join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number | string>);

/** A split of random samples held in memory. */
export function randomSplit(m: IRModel, n: number, seed: number, classes = 5): Split {
  const rng = new Rng(seed);
  const fields: Record<string, { dtype: "float32" | "int32"; shape: number[]; data: Float32Array | Int32Array }> = {};
  for (const i of m.inputs) {
    const shape = i.shape.slice(1).map((d) => (typeof d === "number" ? d : 6));
    const per = shape.reduce((a, b) => a * b, 1);
    fields[i.name] = i.dtype.startsWith("i") ? { dtype: "int32", shape, data: Int32Array.from({ length: n * per }, () => Math.floor(rng.next() * 20)) } : { dtype: "float32", shape, data: Float32Array.from({ length: n * per }, () => 2 * rng.next() - 1) };
  }
  fields.label = { dtype: "int32", shape: [], data: Int32Array.from({ length: n }, () => Math.floor(rng.next() * classes)) };
  return {
    size: n,
    fields: Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, { dtype: f.dtype, shape: f.shape, declared: f.dtype === "int32" ? "i32" : "f32" }])) as never,
    batch(idx) {
      const out: Record<string, { dtype: "float32" | "int32"; shape: number[]; data: Float32Array | Int32Array }> = {};
      for (const [k, f] of Object.entries(fields)) {
        const per = f.shape.reduce((a, b) => a * b, 1);
        const data = f.dtype === "int32" ? new Int32Array(idx.length * per) : new Float32Array(idx.length * per);
        for (let i = 0; i < idx.length; i++) data.set(f.data.subarray(idx[i]! * per, (idx[i]! + 1) * per), i * per);
        out[k] = { dtype: f.dtype, shape: [idx.length, ...f.shape], data };
      }
      return out as never;
    },
  };
}

