// Run folders are owned and whole (runtime/run_folder.ts): one trainer per folder (run.lock; a second one
// is NN7030, a lock left by kill -9 is taken over), every file the run wrote checksummed in
// run-manifest.json (a changed weight is NN7031 for eval), metrics.jsonl checked against what the
// checkpoint recorded of it, a damaged newest checkpoint named when an older one is used, no run
// overwritten without --resume or --force (NN7032), and --resume before the first checkpoint starts over
// (only in an empty folder or the same model's run: NN7033 otherwise).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeSafetensors, encodeSafetensors, listCheckpoints } from "../../runtime/checkpoint/index.js";
import { acquireRunLock, readLock } from "../../runtime/run_folder.js";
import { ROOT } from "../helpers.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");

function dataset(dir: string, n: number): void {
  let s = 1;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const rows = ["features,label"];
  for (let i = 0; i < n; i++) {
    const x = [rand(), rand(), rand(), rand()];
    rows.push(`${x.map((v) => v.toFixed(4)).join(" ")},${(x[0]! + x[1]! > 0 ? 1 : 0) + (x[2]! - x[3]! > 0 ? 2 : 0)}`);
  }
  writeFileSync(path.join(dir, "data.csv"), rows.join("\n") + "\n");
}

function program(dir: string, plan: string, width = 16, name = "m.nnet"): string {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    `model Small {
  input x: f32[batch, 4]
  features = x -> dense(${width}, activation: relu)
  output logits = features -> dense(4)
}
dataset d {
  source csv("data.csv")
  split  test: 0.2, seed: 3
  field x: f32[4] = features
  field label: i32 = label
}
train Small on d {
  loss cross_entropy(logits, label)
  metrics accuracy
  seed 7
${plan}
}
`,
  );
  return file;
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 180_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function start(args: string[]): { pid: number; done: Promise<{ code: number | null; out: string; err: string }>; kill: () => void; seen: (s: string) => Promise<void> } {
  const child = spawn(process.execPath, [CLI, ...args]);
  let out = "";
  let err = "";
  const waiters: { s: string; resolve: () => void }[] = [];
  child.stdout.on("data", (b: Buffer) => {
    out += b.toString();
    for (const w of waiters.splice(0)) if (out.includes(w.s)) w.resolve();
    else waiters.push(w);
  });
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on("close", (code) => resolve({ code, out, err })));
  return {
    pid: child.pid!,
    done,
    kill: () => child.kill("SIGKILL"),
    seen: (s) => new Promise<void>((resolve) => (out.includes(s) ? resolve() : waiters.push({ s, resolve }))),
  };
}

function epochNumbers(dir: string): number[] {
  return readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { epoch: number }).epoch);
}

test("run.lock: created exclusively, refused to a second holder, released, a dead holder's lock taken over", () => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), "nnetc-lock-")), "run");
  const a = acquireRunLock(dir, { command: "nnetc train a", fingerprint: "f" });
  assert.is(a.tookOver, null);
  const l = readLock(dir)!;
  assert.is(l.pid, process.pid);
  assert.is(l.host, os.hostname());
  assert.is(l.command, "nnetc train a");
  // The same process again is a second trainer too (nothing re-enters a lock).
  try {
    acquireRunLock(dir, { command: "nnetc train b", fingerprint: "f" });
    assert.unreachable("a second lock");
  } catch (e) {
    assert.equal((e as { numbered?: { key: string; args: { pid: number } } }).numbered?.key, "runLocked");
    assert.is((e as { numbered: { args: { pid: number } } }).numbered.args.pid, process.pid);
  }
  a.release();
  assert.not.ok(existsSync(dir), "the folder it made, left empty, is removed again");
  // A lock whose process is gone on this host: taken over, saying whose it was.
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  mkdirSync(dir);
  writeFileSync(path.join(dir, "run.lock"), JSON.stringify({ pid: Number(dead.stdout), host: os.hostname(), started: "then", command: "nnetc train old", fingerprint: "f" }));
  const b = acquireRunLock(dir, { command: "nnetc train c", fingerprint: "f" });
  assert.is(b.tookOver?.pid, Number(dead.stdout));
  assert.is(readLock(dir)!.pid, process.pid);
  b.release();
  assert.not.ok(existsSync(path.join(dir, "run.lock")));
  // Another host's lock cannot be judged: refused.
  writeFileSync(path.join(dir, "run.lock"), JSON.stringify({ pid: 1, host: "elsewhere", started: "then", command: "x", fingerprint: "f" }));
  assert.throws(() => acquireRunLock(dir, { command: "y", fingerprint: "f" }), /in use by another trainer: pid 1 on elsewhere/);
});

test("two trainers on one folder: one runs, the other is NN7030 naming its pid; kill -9, then --resume takes the lock over and finishes", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-two-"));
  dataset(dir, 3000);
  const file = program(dir, "  optimizer adam(lr: 1e-2)\n  batch 4\n  epochs 2\n  checkpoint every: 1, keep: 2");
  const out = path.join(dir, "run");
  const args = ["train", file, "--backend", "cpu", "--out", out, "--json"];
  const a = start(args);
  const b = start(args);
  const [ra, rb] = await Promise.all([a.done, b.done]);
  const [won, lost, winner] = ra.code === 0 ? [ra, rb, a] : [rb, ra, b];
  assert.is(won.code, 0, won.err);
  assert.is(lost.code, 2, lost.err);
  assert.match(lost.err, "error NN7030");
  assert.match(lost.err, `pid ${winner.pid} on ${os.hostname()}`);
  assert.equal(epochNumbers(out), [1, 2], "each epoch once");
  assert.not.ok(existsSync(path.join(out, "run.lock")), "released on exit");
  assert.ok(existsSync(path.join(out, "run-manifest.json")));

  // kill -9 after the first epoch: the lock stays behind; --resume takes it over and finishes the run.
  const out2 = path.join(dir, "run2");
  const c = start(["train", file, "--backend", "cpu", "--out", out2, "--json"]);
  await c.seen('"event":"epoch"');
  await new Promise((r) => setTimeout(r, 300));
  c.kill();
  await c.done;
  assert.is(readLock(out2)?.pid, c.pid, "the killed trainer's lock is left");
  const plain = cli(["train", file, "--backend", "cpu", "--out", out2]);
  assert.is(plain.code, 2, "a plain train refuses the folder");
  assert.match(plain.err, `error NN7032: ${out2} already holds a training run (`);
  assert.is(readLock(out2)?.pid, c.pid, "and leaves the crashed trainer's lock");
  const r = cli(["train", file, "--backend", "cpu", "--out", out2, "--resume"]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, `took over ${path.join(out2, "run.lock")}: the trainer that held it (pid ${c.pid}`);
  assert.equal(epochNumbers(out2), [1, 2]);
  assert.not.ok(existsSync(path.join(out2, "run.lock")));
});

test("run-manifest.json: a NaN written into model.safetensors is NN7031 for eval, naming the file; metrics.jsonl changed is NN7031 for --resume", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-manifest-"));
  dataset(dir, 300);
  const file = program(dir, "  optimizer adam(lr: 1e-2)\n  batch 32\n  epochs 2");
  const out = path.join(dir, "run");
  assert.is(cli(["train", file, "--backend", "cpu", "--out", out]).code, 0);
  const manifest = JSON.parse(readFileSync(path.join(out, "run-manifest.json"), "utf8")) as { files: { path: string }[] };
  assert.equal(manifest.files.map((f) => f.path.replace(/\.tfevents\..*$/, ".tfevents.*")).sort(), ["metrics.jsonl", "model.json", "model.safetensors", "tensorboard/train/events.out.tfevents.*", "test.json"], "the TensorBoard file too (no validation split: no validation/)");
  assert.is(cli(["eval", file, "--weights", out, "--backend", "cpu"]).code, 0);

  const weights = path.join(out, "model.safetensors");
  const good = readFileSync(weights);
  const st = decodeSafetensors(new Uint8Array(good));
  const first = Object.keys(st.tensors).sort()[0]!;
  (st.tensors[first]!.data as Float32Array)[0] = NaN;
  writeFileSync(weights, encodeSafetensors(st.tensors, st.metadata));
  const ev = cli(["eval", file, "--weights", out, "--backend", "cpu"]);
  assert.is(ev.code, 2, ev.out);
  assert.match(ev.err, `error NN7031: ${weights} is not the file the run wrote: its sha256 is`);
  assert.not.match(ev.err, "    at ");
  writeFileSync(weights, good);

  // metrics.jsonl: the checkpoint records its bytes and sha256; a changed line is refused by --resume.
  const metrics = path.join(out, "metrics.jsonl");
  writeFileSync(metrics, readFileSync(metrics, "utf8").replace('"epoch":1', '"epoch":7'));
  const r = cli(["train", file, "--backend", "cpu", "--out", out, "--resume", "--epochs", "3"]);
  assert.is(r.code, 2, r.err);
  assert.match(r.err, `error NN7031: ${metrics} is not the file the run wrote: its first`);
});

test("a damaged newest checkpoint is named in a warning when --resume and eval use the older one", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-damaged-"));
  dataset(dir, 300);
  const file = program(dir, "  optimizer adam(lr: 1e-2)\n  batch 32\n  epochs 2\n  checkpoint every: 1, keep: 2");
  const out = path.join(dir, "run");
  assert.is(cli(["train", file, "--backend", "cpu", "--out", out]).code, 0);
  const [older, newest] = listCheckpoints(out);
  truncateSync(path.join(newest!, "weights.safetensors"), 10);
  rmSync(path.join(out, "model.safetensors"));
  const ev = cli(["eval", file, "--weights", out, "--backend", "cpu"]);
  assert.is(ev.code, 0, ev.err);
  assert.match(ev.err, `warning: checkpoint ${newest} is damaged (weights.safetensors is 10 bytes but the manifest records`);
  assert.match(ev.err, `using the older ${older}`);
  const r = cli(["train", file, "--backend", "cpu", "--out", out, "--resume"]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, `warning: checkpoint ${newest} is damaged`);
  assert.match(r.out, `resuming from the older ${older}`);
  assert.equal(epochNumbers(out), [1, 2]);
});

test("a folder holding a run is NN7032 for a plain train (checkpoints gone or not); --force moves it into replaced-TIME/", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-overwrite-"));
  dataset(dir, 300);
  const file = program(dir, "  optimizer adam(lr: 1e-2)\n  batch 32\n  epochs 1");
  const out = path.join(dir, "run");
  assert.is(cli(["train", file, "--backend", "cpu", "--out", out]).code, 0);
  rmSync(path.join(out, "checkpoints"), { recursive: true });
  const model = readFileSync(path.join(out, "model.safetensors"));
  const metrics = readFileSync(path.join(out, "metrics.jsonl"));
  const r = cli(["train", file, "--backend", "cpu", "--out", out, "--seed", "9"]);
  assert.is(r.code, 2, r.out);
  assert.match(r.err, `error NN7032: ${out} already holds a training run (run-manifest.json, model.safetensors, model.json, metrics.jsonl, test.json, tensorboard/)`);
  assert.equal(readFileSync(path.join(out, "model.safetensors")), model, "left as it was");
  assert.equal(readFileSync(path.join(out, "metrics.jsonl")), metrics);
  assert.not.ok(existsSync(path.join(out, "run.lock")));

  const f = cli(["train", file, "--backend", "cpu", "--out", out, "--seed", "9", "--force"]);
  assert.is(f.code, 0, f.err);
  const aside = readdirSync(out).filter((n) => n.startsWith("replaced-"));
  assert.is(aside.length, 1);
  assert.match(f.out, `--force: moved the previous run's files`);
  assert.equal(readFileSync(path.join(out, aside[0]!, "model.safetensors")), model, "the old model is kept, moved");
  assert.ok(readdirSync(path.join(out, aside[0]!, "tensorboard/train")).length === 1, "and its TensorBoard files");
  assert.not.equal(readFileSync(path.join(out, "model.safetensors")), model);
  const both = cli(["train", file, "--out", out, "--resume", "--force"]);
  assert.is(both.code, 2, "--resume and --force contradict");
  assert.match(both.err, "--force starts a new run");
});

test("--resume before the first checkpoint starts from scratch in an empty folder or the same model's run; another model's folder is NN7033", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-fresh-"));
  dataset(dir, 300);
  const file = program(dir, "  optimizer adam(lr: 1e-2)\n  batch 32\n  epochs 1");
  const out = path.join(dir, "run");
  const r = cli(["train", file, "--backend", "cpu", "--out", out, "--resume"]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, `--resume: ${out} has no checkpoint yet; starting the run from scratch`);
  assert.equal(epochNumbers(out), [1]);
  // The same model's run whose checkpoints are gone: started over.
  rmSync(path.join(out, "checkpoints"), { recursive: true });
  const again = cli(["train", file, "--backend", "cpu", "--out", out, "--resume"]);
  assert.is(again.code, 0, again.err);
  assert.match(again.out, "starting the run from scratch");
  // Another model (wider layer: another fingerprint): refused, its files untouched.
  const other = program(dir, "  optimizer adam(lr: 1e-2)\n  batch 32\n  epochs 1", 8, "other.nnet");
  const model = readFileSync(path.join(out, "model.safetensors"));
  rmSync(path.join(out, "checkpoints"), { recursive: true });
  const no = cli(["train", other, "--backend", "cpu", "--out", out, "--resume"]);
  assert.is(no.code, 2, no.out);
  assert.match(no.err, `error NN7033: --resume: ${out} has no checkpoint to resume from, and it holds a run of another model`);
  assert.equal(readFileSync(path.join(out, "model.safetensors")), model);
});

test.run();
