// Data-parallel training on the torch engine (GitHub issue 14), on loopback only: `--nproc 2` (two workers,
// batch 16 each, gloo) ends its epochs with the losses of one worker with batch 32; two launches with
// `--nnodes 2 --node-rank 0|1 --master 127.0.0.1:PORT` finish one job; kill -9 of a job followed by
// `--resume` loses no completed epoch; a port in use, a machine alone at the rendezvous and a worker killed
// mid-job are numbered errors (NN7007, NN7008, NN7009).
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Rng } from "../../runtime/data/rng.js";
import { records, requireTorch, writeBlobs } from "./torch_shared.js";
import { ROOT, runNode } from "../helpers.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-ddp-"));
const NNET = path.join(dir, "ddp.nnet");
const LIMIT = { timeoutMs: 240_000 };

test.after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A port on 127.0.0.1 held by a server of this process (for the port-in-use case; closed, a free port).
 * Connections (a worker looking for its rendezvous) are dropped at once; closing does not wait for them.
 */
function listen(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const srv = createServer((socket) => socket.destroy());
    srv.listen(0, "127.0.0.1", () =>
      resolve({
        port: (srv.address() as { port: number }).port,
        close: async () => {
          srv.close();
        },
      }),
    );
  });
}

function compare(a: Record<string, number | string>[], b: Record<string, number | string>[]): number {
  assert.is(b.length, a.length, "the same epochs");
  let worst = 0;
  for (let i = 0; i < a.length; i++) for (const k of ["loss", "val_loss", "lr", "step"]) worst = Math.max(worst, Math.abs((a[i]![k] as number) - (b[i]![k] as number)));
  return worst;
}

test("ddp: the project's Python has torch, and the job's data is written", () => {
  requireTorch();
  writeBlobs(path.join(dir, "blobs.jsonl"), 480, new Rng(8));
  copyFileSync(path.join(ROOT, "spec/torch/ddp.nnet"), NNET);
});

test("ddp: two workers with batch 16 end every epoch with the losses of one worker with batch 32 (1e-4)", async () => {
  const [one, two] = await Promise.all([
    runNode([CLI, "train", NNET, "--engine", "torch", "--batch", "32", "--out", path.join(dir, "one"), "--json"], LIMIT),
    runNode([CLI, "train", NNET, "--engine", "torch", "--nproc", "2", "--out", path.join(dir, "two"), "--json"], LIMIT),
  ]);
  assert.is(one.code, 0, one.stderr);
  assert.is(two.code, 0, two.stderr);
  assert.match(two.stderr, /launching 2 workers of 2/);
  assert.match(two.stdout, /"workers":2,"globalBatch":32/);
  // Rank 0 alone writes: one metrics file, one line per epoch.
  const a = records(path.join(dir, "one"));
  const b = records(path.join(dir, "two"));
  assert.is(a.length, 5);
  const worst = compare(a, b);
  console.log(`    1 worker × 32 vs 2 workers × 16: losses ${a.map((r) => (r.loss as number).toFixed(4)).join(", ")}; largest difference ${worst.toExponential(1)}`);
  assert.ok(worst <= 1e-4, `epoch records differ by ${worst}`);
});

test("ddp: gradient accumulation (accumulate 2) gives the step of one batch twice the size, on both engines and with two workers", async () => {
  // batch 16 × accumulate 2 (one worker, tfjs and torch), and batch 8 × accumulate 2 × 2 workers: 32 per step.
  const acc = path.join(dir, "acc.nnet");
  writeFileSync(acc, readFileSync(NNET, "utf8").replace(/\n  batch      16\n/, "\n  batch      16\n  accumulate 2\n"));
  const [tfjs, torch, ddp] = await Promise.all([
    runNode([CLI, "train", acc, "--backend", "wasm", "--out", path.join(dir, "acc-tfjs"), "--json"], LIMIT),
    runNode([CLI, "train", acc, "--engine", "torch", "--out", path.join(dir, "acc-torch"), "--json"], LIMIT),
    runNode([CLI, "train", acc, "--engine", "torch", "--nproc", "2", "--batch", "8", "--out", path.join(dir, "acc-ddp"), "--json"], LIMIT),
  ]);
  for (const r of [tfjs, torch, ddp]) assert.is(r.code, 0, r.stderr);
  assert.match(torch.stdout, /"accumulate":2,"globalBatch":32/);
  assert.match(ddp.stdout, /"accumulate":2,"workers":2,"globalBatch":32/);
  const one = records(path.join(dir, "one"));
  const diffs = ["acc-tfjs", "acc-torch", "acc-ddp"].map((run) => compare(one, records(path.join(dir, run))));
  console.log(`    accumulate 2 against batch 32: tfjs ${diffs[0]!.toExponential(1)}, torch ${diffs[1]!.toExponential(1)}, 2 workers × 8 × 2 ${diffs[2]!.toExponential(1)}`);
  for (const d of diffs) assert.ok(d <= 1e-4, `records differ by ${d}`);
});

test("ddp: two launches with --nnodes 2 --node-rank 0|1 --master 127.0.0.1:PORT finish one job", async () => {
  const { port, close } = await listen();
  await close();
  const master = `127.0.0.1:${port}`;
  const [n0, n1] = await Promise.all([0, 1].map((r) => runNode([CLI, "train", NNET, "--engine", "torch", "--nproc", "1", "--nnodes", "2", "--node-rank", String(r), "--master", master, "--out", path.join(dir, `node${r}`), "--json"], LIMIT)));
  assert.is(n0!.code, 0, n0!.stderr);
  assert.is(n1!.code, 0, n1!.stderr);
  // Machine 0 (rank 0) wrote the run; machine 1 wrote nothing.
  assert.ok(existsSync(path.join(dir, "node0/model.safetensors")));
  assert.not.ok(existsSync(path.join(dir, "node1")), "rank 1 wrote a run folder");
  const worst = compare(records(path.join(dir, "one")), records(path.join(dir, "node0")));
  assert.ok(worst <= 1e-4, `the two-machine job's records differ by ${worst}`);
});

test("ddp: kill -9 of a job, then --resume: no completed epoch is lost, and the run ends as the uninterrupted one", async () => {
  const run = path.join(dir, "killed");
  const job = spawn(process.execPath, [CLI, "train", NNET, "--engine", "torch", "--nproc", "2", "--out", run, "--json"], { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  let err = "";
  job.stderr.on("data", (b: Buffer) => (err += b));
  const killed = await new Promise<boolean>((resolve) => {
    job.stdout.on("data", (b: Buffer) => {
      out += b;
      // After the second epoch's line: the job's whole process group (launcher, workers, their Pythons).
      if ((out.match(/"event":"epoch"/g) ?? []).length >= 2) {
        try {
          process.kill(-job.pid!, "SIGKILL");
        } catch {
          /* already gone */
        }
        resolve(true);
      }
    });
    job.on("close", () => resolve(false));
  });
  assert.ok(killed, `the job ended before it could be killed: ${err.slice(-2000)}`);
  await new Promise((r) => setTimeout(r, 500));
  const before = records(run);
  assert.ok(before.length >= 2 && before.length < 5, `${before.length} epochs before the kill`);
  // The kill may land between an epoch's line and its checkpoint: that epoch is done again on resume.
  const ckpts = readdirSync(path.join(run, "checkpoints"));
  assert.ok(ckpts.length >= 1, `checkpoints: ${ckpts.join(", ")}`);
  const resumed = await runNode([CLI, "train", NNET, "--engine", "torch", "--nproc", "2", "--out", run, "--resume", "--json"], LIMIT);
  assert.is(resumed.code, 0, resumed.stderr);
  const after = records(run);
  assert.is(after.length, 5);
  // Checkpointed epochs are kept as they were; one done again comes out the same (same batches, same seed).
  for (let i = 0; i < before.length; i++) assert.is(after[i]!.loss, before[i]!.loss, `epoch ${i + 1}`);
  const worst = compare(records(path.join(dir, "two")), after);
  console.log(`    killed after ${before.length} epochs, resumed: ${after.length} epochs, largest difference from the uninterrupted job ${worst.toExponential(1)}`);
  assert.ok(worst <= 1e-4, `the resumed job differs by ${worst}`);
});

test("ddp: a rendezvous port already in use, and the launcher's usage errors, are one line and exit 2", async () => {
  const busy = await listen();
  try {
    // Machine 0 of a two-machine job: its rank 0 listens at --master, which this test holds.
    const r = await runNode([CLI, "train", NNET, "--engine", "torch", "--nproc", "1", "--nnodes", "2", "--node-rank", "0", "--master", `127.0.0.1:${busy.port}`, "--out", path.join(dir, "busy")], LIMIT);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /nnetc: error NN7007: the job's rendezvous 127\.0\.0\.1:\d+: the port is already in use\n  hint: choose a free port/);
    assert.not.match(r.stderr, /NN7009/, "the worker said why it stopped: the launcher adds nothing");
    assert.not.match(r.stderr, /Traceback|at .*\.js:\d+/);
  } finally {
    await busy.close();
  }
  const cases: [string[], RegExp][] = [
    [["--nproc", "2"], /--nproc and --nnodes start PyTorch workers: add --engine torch/],
    [["--engine", "torch", "--nnodes", "2"], /--nnodes above 1 needs --master HOST:PORT/],
    [["--engine", "torch", "--nproc", "0"], /--nproc 0: give a whole number ≥ 1/],
    [["--engine", "torch", "--nnodes", "2", "--node-rank", "2", "--master", "127.0.0.1:1"], /--node-rank 2: machines are numbered 0 to 1/],
    [["--engine", "torch", "--nproc", "1", "--master", "nowhere"], /--master nowhere: give HOST:PORT/],
  ];
  for (const [flags, message] of cases) {
    const r = await runNode([CLI, "train", NNET, ...flags, "--out", path.join(dir, "never")]);
    assert.is(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  // A worker started by hand (torchrun's variables) without the torch engine.
  const w = await runNode([CLI, "train", NNET, "--out", path.join(dir, "never")], { env: { ...process.env, RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "1" } });
  assert.is(w.code, 2);
  assert.match(w.stderr, /needs --engine torch/);
});

test("ddp: a machine alone at the rendezvous is NN7008 once NNETC_RENDEZVOUS_TIMEOUT has passed, exit 2", async () => {
  const free = await listen();
  await free.close();
  // Machine 1 of 2, whose machine 0 never comes.
  const r = await runNode([CLI, "train", NNET, "--engine", "torch", "--nproc", "1", "--nnodes", "2", "--node-rank", "1", "--master", `127.0.0.1:${free.port}`, "--out", path.join(dir, "alone")], { ...LIMIT, env: { ...process.env, NNETC_RENDEZVOUS_TIMEOUT: "3" } });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`error NN7008: worker 1 could not meet the others at 127\\.0\\.0\\.1:${free.port} \\(`));
  assert.not.match(r.stderr, /Traceback|at .*\.js:\d+/);
  assert.not.ok(existsSync(path.join(dir, "alone")), "no run folder");
});

test("ddp: a worker killed mid-job is NN7009 with its rank; the others stop, and the run keeps its checkpoints", async () => {
  const run = path.join(dir, "one-killed");
  const job = spawn(process.execPath, [CLI, "train", NNET, "--engine", "torch", "--nproc", "2", "--out", run, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  job.stderr.on("data", (b: Buffer) => (err += b));
  let out = "";
  const code = new Promise<number | null>((resolve) => job.on("close", (c) => resolve(c)));
  const killed = await new Promise<number | null>((resolve) => {
    job.stdout.on("data", (b: Buffer) => {
      out += b;
      if (!/"event":"epoch"/.test(out)) return;
      // The launcher's children are the workers; rank 1 is the one whose environment says RANK=1.
      const ps = spawnSync("ps", ["-o", "pid=", "--ppid", String(job.pid)], { encoding: "utf8" });
      for (const pid of ps.stdout.split(/\s+/).filter(Boolean).map(Number)) {
        let env = "";
        try {
          env = readFileSync(`/proc/${pid}/environ`, "latin1");
        } catch {
          continue;
        }
        if (env.split("\0").includes("RANK=1")) {
          process.kill(pid, "SIGKILL");
          resolve(pid);
          return;
        }
      }
    });
    job.on("close", () => resolve(null));
  });
  assert.ok(killed, `no rank 1 worker to kill: ${err.slice(-2000)}`);
  assert.is(await code, 1, err);
  assert.match(err, /nnetc: error NN7009: worker 1 was killed by SIGKILL; the other workers were stopped/);
  assert.match(err, /hint: fix what it reports, then run the same command with --resume/);
  assert.ok(readdirSync(path.join(run, "checkpoints")).length >= 1, "rank 0 wrote its checkpoint before the job stopped");
});

test.run();
