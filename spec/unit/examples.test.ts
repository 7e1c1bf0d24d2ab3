// examples/fashion-app, run as its README says: the CLI compiles models/mlp.nnet into generated/, tsc
// type-checks app.ts strictly (and writes app.js beside it), app.js trains, predicts, saves and loads; then
// loader-app.mjs imports models/mlp.nnet itself with `node --import nnetc/register`.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ROOT, runNode, type Run } from "../helpers.js";

const APP = "examples/fashion-app";
const CLASSES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"];

/** node ARGS from the repository root, without FORCE_COLOR (the output is read, not shown). */
function node(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const { FORCE_COLOR: _, ...inherited } = process.env;
  return runNode(args, { env: { ...inherited, ...env } });
}

function ok(r: Run, what: string): string {
  assert.is(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The numbers a line matching `re` captured, failing with the whole output when no line matches. */
function line(out: string, re: RegExp): string[] {
  const m = re.exec(out);
  assert.ok(m, `no line matching ${re} in:\n${out}`);
  return m!.slice(1);
}

let cache = "";
let work = "";

test.before(() => {
  cache = mkdtempSync(path.join(tmpdir(), "nnetc-examples-cache-"));
});

test.after(() => {
  for (const d of [cache, work]) if (d) rmSync(d, { recursive: true, force: true });
});

test("fashion-app/app.ts: compiled with the CLI, type-checked strictly, trains, predicts, saves and loads", async () => {
  ok(await node(["dist/nnetc.mjs", "compile", "models/mlp.nnet", "-o", `${APP}/generated`]), "nnetc compile");
  assert.ok(existsSync(path.join(ROOT, APP, "generated/mlp.ts")), "generated/mlp.ts written");
  ok(await node(["node_modules/typescript/bin/tsc", "-p", APP]), "tsc -p examples/fashion-app");
  const out = ok(await node([`${APP}/app.js`]), "node app.js");

  line(out, /^MLP: 4 weight tensors, backend (tensorflow|webgpu|wasm|cpu)$/m);
  const [loss, fitAccuracy] = line(out, /^trained 1 epoch: loss ([\d.]+), test accuracy ([\d.]+)%$/m).map(Number);
  assert.ok(loss! > 0 && loss! < 1.5, `loss after one epoch: ${loss}`);
  assert.ok(fitAccuracy! > 60, `fit's test accuracy ${fitAccuracy}% is well above chance (10%)`);
  const [first] = line(out, /^first predictions: (.+)$/m);
  const names = first!.split(", ");
  assert.is(names.length, 5);
  for (const n of names) assert.ok(CLASSES.includes(n), `"${n}" is a class name`);
  const [accuracy] = line(out, /^accuracy on 500 test images: ([\d.]+)%$/m).map(Number);
  assert.ok(accuracy! > 60, `accuracy ${accuracy}% is well above chance (10%)`);
  const [saved, same] = line(out, /^saved to (.+); the loaded model predicts the same: (true|false)$/m);
  work = path.dirname(saved!);
  assert.ok(existsSync(path.join(saved!, "model.safetensors")) && existsSync(path.join(saved!, "model.json")), "the saved model's files");
  assert.is(same, "true", "the loaded model predicts what the saved one did");
});

test("fashion-app/loader-app.mjs: imports models/mlp.nnet with node --import nnetc/register", async () => {
  const r = await node(["--import", "nnetc/register", `${APP}/loader-app.mjs`], { NNETC_CACHE_DIR: cache });
  const out = ok(r, "node --import nnetc/register loader-app.mjs");
  line(out, /^imported MLP from models\/mlp\.nnet: inputs image \[batch,784\]$/m);
  const losses = [1, 2, 3].map((p) => Number(line(out, new RegExp(`^pass ${p}: mean loss ([\\d.]+)$`, "m"))[0]));
  assert.ok(losses[2]! < losses[0]!, `the loss falls over the passes: ${losses.join(", ")}`);
  const [accuracy] = line(out, /^accuracy on 1000 test images: ([\d.]+)%$/m).map(Number);
  assert.ok(accuracy! > 50, `accuracy ${accuracy}% is well above chance (10%)`);
  const [, evalAccuracy] = line(out, /^evaluate\(\): loss ([\d.]+), accuracy ([\d.]+)%$/m).map(Number);
  assert.ok(evalAccuracy! > 50, `evaluate() accuracy ${evalAccuracy}%`);
  assert.not.match(r.stderr, /error/i, `stderr:\n${r.stderr}`);
});

test.run();
