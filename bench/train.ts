// npm run bench:train — training speed of our runtime beside the peers, in one run on one machine:
// samples/s for one epoch of Fashion-MNIST, batch 128, Adam 1e-3, for the MLP and the CNN, against the
// same model hand-written in tfjs-layers (same backend) and in PyTorch on the CPU (../shared/peers).
// Prints medians of --repeats runs and the ratios. A benchmark, not a test: nothing is asserted.
// --engine torch: ours is `nnetc train --engine torch` (the same PyTorch as the peer, the same threads and
// BLAS settings), compared with the hand-written PyTorch loop and with our tfjs engine.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { flag, median, opt, ROOT, torchEnv } from "./common.js";

const PEERS = [path.join(ROOT, "../shared/peers"), path.join(ROOT, "shared/peers")].find((p) => existsSync(p));
const REPEATS = Number(opt("repeats", "3"));
const BACKEND = opt("backend", "wasm");
const MODELS = opt("models", "mlp,cnn").split(",");
const CPU_PEER_SAMPLES = Number(opt("cpu-peer-samples", "1024"));
const ENGINE = opt("engine", "tfjs");
/** Threads for PyTorch (the peer's and ours alike): the peer's 2 by default; on 2 vCPUs, 1 is steadier. */
const THREADS = opt("threads", "2");
/** --no-tfjs (with --engine torch): leave out the tfjs engine's column, the slowest to measure. */
const NO_TFJS = flag("no-tfjs");

function sh(cmd: string, argv: string[], env: NodeJS.ProcessEnv = {}, replace = false): { out: string; ok: boolean } {
  const r = spawnSync(cmd, argv, { cwd: ROOT, env: replace ? env : { ...process.env, ...env }, encoding: "utf8", maxBuffer: 64 << 20 });
  return { out: `${r.stdout ?? ""}${r.stderr ?? ""}`, ok: r.status === 0 };
}

/**
 * The transformer encoder of bench/models/encoder.nnet with its token data, written into a fresh folder:
 * --encoder-samples sequences (default 512) of 128 ids, labels from the ids' first token.
 */
function encoderRun(engine: string): number {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "nnetc-bench-encoder-"));
  try {
    const n = Number(opt("encoder-samples", "512"));
    let seed = 7;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const ids = Array.from({ length: 128 }, () => Math.floor(rand() * 2000));
      lines.push(JSON.stringify({ ids, label: ids[0]! % 4 }));
    }
    writeFileSync(path.join(tmp, "tokens.jsonl"), lines.join("\n") + "\n");
    const copy = path.join(tmp, "encoder.nnet");
    writeFileSync(copy, readFileSync(path.join(ROOT, "bench/models/encoder.nnet"), "utf8"));
    const how = engine === "torch" ? ["--engine", "torch"] : ["--backend", BACKEND];
    const r = sh(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "train", copy, ...how, "--out", path.join(tmp, "run"), "--json"], engine === "torch" ? torchEnv(THREADS) : process.env, true);
    const line = r.out.split("\n").find((l) => l.includes('"event":"epoch"'));
    if (!line) {
      console.log(`  encoder (${engine}) failed:\n${r.out.slice(-2000)}`);
      return NaN;
    }
    return (JSON.parse(line) as { samplesPerSec: number }).samplesPerSec;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Our runtime: one epoch on the full training set (no validation split), samples/s of the training loop. */
function ours(model: string, engine = "tfjs"): number {
  if (model === "encoder") return encoderRun(engine);
  const file = path.join(ROOT, "models", model === "mlp" ? "mlp.nnet" : "fashion_cnn.nnet");
  const tmp = mkdtempSync(path.join(os.tmpdir(), "nnetc-bench-"));
  try {
    // The zoo plans hold out 10% for validation; the peers train on all 60k, so does this copy.
    const src = readFileSync(file, "utf8").replace(/\n\s*validation\s+[\d.]+/, "").replace(/\n\s*early_stop[^\n]*/, "").replace(/\n\s*schedule[^\n]*/, "");
    const copy = path.join(path.dirname(file), `.bench-${model}-${process.pid}.nnet`);
    writeFileSync(copy, src);
    try {
      const how = engine === "torch" ? ["--engine", "torch"] : ["--backend", BACKEND];
      const r = engine === "torch" ? sh(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "train", copy, ...how, "--epochs", "1", "--batch", "128", "--out", path.join(tmp, "run"), "--json", "--seed", "1"], torchEnv(THREADS), true) : sh(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "train", copy, ...how, "--epochs", "1", "--batch", "128", "--out", path.join(tmp, "run"), "--json", "--seed", "1"]);
      const line = r.out.split("\n").find((l) => l.includes('"event":"epoch"'));
      if (!line) {
        console.log(`  ours failed:\n${r.out.slice(-2000)}`);
        return NaN;
      }
      return (JSON.parse(line) as { samplesPerSec: number }).samplesPerSec;
    } finally {
      rmSync(copy, { force: true });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function tfjsPeer(model: string, backend: string, n?: number): { rate: number; note: string } {
  if (!PEERS) return { rate: NaN, note: "no ../shared/peers" };
  const r = sh(process.execPath, [path.join(PEERS, "tfjs_fmnist.js"), model, backend, ...(n ? [String(n)] : [])], { NODE_PATH: path.join(ROOT, "node_modules") });
  const m = /samples_per_s=(\d+)/.exec(r.out);
  if (m) return { rate: Number(m[1]), note: "" };
  const fail = /fit failed: ([^\n]*)/.exec(r.out);
  return { rate: NaN, note: fail ? `fails: ${fail[1]}` : `failed: ${r.out.trim().split("\n").slice(-1)[0]}` };
}

function torchPeer(model: string): { rate: number; note: string } {
  if (!PEERS) return { rate: NaN, note: "no ../shared/peers" };
  const clean = torchEnv(THREADS);
  const r = spawnSync("/usr/bin/python3", [path.join(PEERS, "torch_fmnist.py"), model], { cwd: ROOT, env: clean, encoding: "utf8" });
  const m = /samples_per_s=(\d+)/.exec(`${r.stdout}${r.stderr}`);
  return m ? { rate: Number(m[1]), note: "" } : { rate: NaN, note: `unavailable (${`${r.stderr ?? ""}`.trim().split("\n").slice(-1)[0] || "python3-torch not installed"})` };
}

const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "—");
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "—");

console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}; ${ENGINE === "torch" ? `engine torch (PyTorch on the CPU, ${THREADS} thread${THREADS === "1" ? "" : "s"})` : `backend ${BACKEND}`}; medians of ${REPEATS} run(s)`);
if (ENGINE === "torch") {
  for (const model of MODELS) {
    const o: number[] = [];
    const p: number[] = [];
    const t: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      // Interleaved, so that load on the machine falls on all three alike.
      o.push(ours(model, "torch"));
      p.push(model === "encoder" ? NaN : torchPeer(model).rate);
      t.push(NO_TFJS ? NaN : ours(model, "tfjs"));
      console.log(`  ${model} run ${i + 1}: ours (torch) ${fmt(o[i]!)}, pytorch by hand ${fmt(p[i]!)}, ours (tfjs ${BACKEND}) ${fmt(t[i]!)}`);
    }
    const [mo, mp, mt] = [median(o), median(p), median(t)];
    console.log(`${model}: ours --engine torch ${fmt(mo)} samples/s | hand-written pytorch ${fmt(mp)} → ${ratio(mo, mp)} | ours tfjs ${BACKEND} ${fmt(mt)} → torch is ${ratio(mo, mt)}`);
  }
  process.exit(0);
}
for (const model of MODELS) {
  const o: number[] = [];
  const t: number[] = [];
  const p: number[] = [];
  let tNote = "";
  let pNote = "";
  for (let i = 0; i < REPEATS; i++) {
    o.push(ours(model));
    const tr = tfjsPeer(model, BACKEND);
    t.push(tr.rate);
    tNote = tr.note;
    const pr = torchPeer(model);
    p.push(pr.rate);
    pNote = pr.note;
    console.log(`  ${model} run ${i + 1}: ours ${fmt(o[i]!)}, tfjs-layers ${fmt(t[i]!)}${tr.note ? ` (${tr.note})` : ""}, pytorch ${fmt(p[i]!)}${pr.note ? ` (${pr.note})` : ""}`);
  }
  const [mo, mt, mp] = [median(o), median(t), median(p)];
  console.log(`${model}: ours ${fmt(mo)} samples/s | tfjs-layers ${BACKEND} ${fmt(mt)}${tNote ? ` (${tNote})` : ""} → ${ratio(mo, mt)} | pytorch cpu ${fmt(mp)}${pNote ? ` (${pNote})` : ""} → ${ratio(mo, mp)}`);
  if (!Number.isFinite(mt) && BACKEND === "wasm") {
    const cpu = tfjsPeer(model, "cpu", CPU_PEER_SAMPLES);
    console.log(`${model}: tfjs-layers cpu (${CPU_PEER_SAMPLES} samples) ${fmt(cpu.rate)} samples/s${cpu.note ? ` (${cpu.note})` : ""} → ours ${ratio(mo, cpu.rate)}`);
  }
}
