#!/usr/bin/env node
// Runs the uvu suites compiled under dist/spec and ends with the line CI counts: "N passed, N failed".
// UPDATE=1 (npm run test:update) rewrites golden files instead of comparing against them.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pattern = process.argv[2] ?? "\\.test\\.js$";
const child = spawn(process.execPath, [path.join(root, "node_modules/uvu/bin.js"), "dist/spec", pattern], { cwd: root, stdio: ["ignore", "pipe", "inherit"], env: process.stdout.isTTY ? process.env : { ...process.env, NO_COLOR: "1" } });
let out = "";
child.stdout.on("data", (b) => {
  out += b;
  process.stdout.write(b);
});
child.on("close", (code) => {
  const num = (label) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(out)?.[1] ?? NaN);
  const total = num("Total");
  const passed = num("Passed");
  const skipped = num("Skipped") || 0;
  if (Number.isNaN(total) || Number.isNaN(passed)) {
    console.log("0 passed, 1 failed");
    process.exit(code || 1);
  }
  // uvu's Total counts the tests that ran; skipped ones are counted apart.
  const failed = total - passed;
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(code ?? (failed ? 1 : 0));
});
