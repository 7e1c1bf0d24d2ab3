// What the PyTorch tests share: the project's Python with torch (or a failure saying how to get it), the blob
// images their plans train on, and a run's epoch records.
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import * as assert from "uvu/assert";
import type { Rng } from "../../runtime/data/rng.js";
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
