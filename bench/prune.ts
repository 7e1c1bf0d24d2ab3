// npm run bench:prune — issue 5's pruning target on models/fashion_cnn.nnet and the real Fashion-MNIST:
// "50% pruning plus one fine-tune epoch: accuracy drop ≤ 1 point". Trains a shorter baseline (--epochs,
// default 2, instead of the plan's 12; or reuses a finished run with --base DIR), then measures test
// accuracy of: the baseline; the baseline pruned 50% with no fine-tune (nnetc compile --prune); the
// baseline pruned 50% then fine-tuned one epoch (the same plan with phases main { epochs N } and
// finetune { prune …; lr 1e-4; epochs 1 }, resumed from the baseline's last checkpoint); and that model's
// int8 export. Prints a table. A benchmark, not a test: nothing is asserted.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { flag, opt, ROOT } from "./common.js";

const EPOCHS = Number(opt("epochs", "2"));
const SPARSITY = Number(opt("sparsity", "0.5"));
const BACKEND = opt("backend", "wasm");
const DATA = opt("data", "/usr/share/datasets/fashion-mnist");
const BASE = opt("base", "");
const KEEP = flag("keep");

const CLI = path.resolve(opt("cli", path.join(ROOT, "dist/nnetc.mjs")));

function nnetc(argv: string[]): string {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...argv], { cwd: ROOT, encoding: "utf8", maxBuffer: 64 << 20 });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (r.status !== 0) throw new Error(`nnetc ${argv.join(" ")} failed (${r.status}):\n${out.slice(-3000)}`);
  console.error(`  nnetc ${argv[0]} … ${((performance.now() - t0) / 1000).toFixed(0)}s`);
  return r.stdout ?? "";
}

/** Test accuracy from the last JSON line (train's "done" event, or eval --json). */
function accuracy(stdout: string): number {
  const last = JSON.parse(stdout.trim().split("\n").pop()!) as { accuracy?: number; test?: { accuracy: number } };
  return last.test?.accuracy ?? last.accuracy!;
}

const source = readFileSync(path.join(ROOT, "models/fashion_cnn.nnet"), "utf8");
if (!/\n\s*epochs\s+\d+/.test(source)) throw new Error("models/fashion_cnn.nnet has no epochs setting to shorten");
const tmp = mkdtempSync(path.join(os.tmpdir(), "nnetc-bench-prune-"));
try {
  // The baseline: the zoo plan with fewer epochs (data paths resolve against the copy's folder: --data).
  const baseFile = path.join(tmp, "fashion_cnn.nnet");
  writeFileSync(baseFile, source.replace(/(\n\s*)epochs\s+\d+/, `$1epochs ${EPOCHS}`));
  const baseRun = BASE || path.join(tmp, "base");
  let baseAcc: number;
  if (BASE) {
    baseAcc = (JSON.parse(readFileSync(path.join(BASE, "test.json"), "utf8")) as { accuracy: number }).accuracy;
    console.error(`baseline: reusing ${BASE}`);
  } else {
    console.error(`baseline: ${EPOCHS} epochs on ${DATA}`);
    baseAcc = accuracy(nnetc(["train", baseFile, "--data", DATA, "--backend", BACKEND, "--out", baseRun, "--json"]));
  }

  // Pruned, no fine-tune.
  nnetc(["compile", baseFile, "--prune", String(SPARSITY), "--weights", baseRun, "-o", tmp]);
  const prunedFile = path.join(tmp, "fashion_cnn.pruned.safetensors");
  const prunedAcc = accuracy(nnetc(["eval", baseFile, "--weights", prunedFile, "--data", DATA, "--backend", BACKEND, "--json"]));

  // Pruned + one fine-tune epoch: the baseline's run continued with a finetune phase, plus an int8 export.
  const ftFile = path.join(tmp, "fashion_cnn_ft.nnet");
  const plan = source
    .replace(/\n\s*epochs\s+\d+/, "")
    .replace(/\n}\s*$/, `\n  export quantize: int8, calibration: 512\n  phase main {\n    epochs ${EPOCHS}\n  }\n  phase finetune {\n    prune sparsity: ${SPARSITY}\n    lr 1e-4\n    epochs 1\n  }\n}\n`);
  writeFileSync(ftFile, plan);
  const ftRun = path.join(tmp, "ft");
  cpSync(baseRun, ftRun, { recursive: true });
  rmSync(path.join(ftRun, "model.safetensors"), { force: true });
  console.error("fine-tune: 1 epoch after pruning");
  const ftOut = nnetc(["train", ftFile, "--resume", "--data", DATA, "--backend", BACKEND, "--out", ftRun, "--json"]);
  const ftAcc = accuracy(ftOut);
  const int8Acc = accuracy(nnetc(["eval", ftFile, "--weights", path.join(ftRun, "model.int8.safetensors"), "--data", DATA, "--backend", BACKEND, "--json"]));
  const summary = nnetc(["summary", ftFile, "--weights", path.join(ftRun, "model.int8.safetensors")]);

  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const pts = (x: number) => `${(100 * (x - baseAcc)).toFixed(2)} pts`;
  const size = (f: string) => statSync(f).size.toLocaleString("en-US");
  console.log(`Fashion-MNIST CNN, ${EPOCHS}-epoch baseline (the plan's 12 shortened), test set of 10,000, backend ${BACKEND}`);
  console.log(`| model | test accuracy | change | file bytes |`);
  console.log(`| --- | --- | --- | --- |`);
  console.log(`| baseline (float32) | ${pct(baseAcc)} | | ${size(path.join(baseRun, "model.safetensors"))} |`);
  console.log(`| ${SPARSITY * 100}% pruned, no fine-tune | ${pct(prunedAcc)} | ${pts(prunedAcc)} | ${size(prunedFile)} |`);
  console.log(`| ${SPARSITY * 100}% pruned + 1 fine-tune epoch | ${pct(ftAcc)} | ${pts(ftAcc)} | ${size(path.join(ftRun, "model.safetensors"))} |`);
  console.log(`| … and int8 (calibrated export) | ${pct(int8Acc)} | ${pts(int8Acc)} | ${size(path.join(ftRun, "model.int8.safetensors"))} |`);
  console.log(`target: drop ≤ 1 point after fine-tune: ${baseAcc - ftAcc <= 0.01 ? "met" : "NOT met"}`);
  console.log(summary.split("\n").filter((l) => l.startsWith("Weights") || l.startsWith("  ")).join("\n"));
} finally {
  if (KEEP) console.error(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
