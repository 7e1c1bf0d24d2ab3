// End-to-end training through the CLI on small synthetic data: a run killed with SIGKILL mid-epoch
// resumes and ends exactly where an uninterrupted run ends; a corrupt checkpoint is refused; frozen
// layers stay bit-identical through a fine-tuning phase; NaN stops training with the step named.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeSafetensors, listCheckpoints, readCheckpoint } from "../../runtime/checkpoint/index.js";
import { ROOT } from "../helpers.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");

/** A CSV of `n` samples: 4 features and a class that depends on them (learnable). */
function dataset(dir: string, n: number, seed = 1): void {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const rows = ["features,label"];
  for (let i = 0; i < n; i++) {
    const x = [rand(), rand(), rand(), rand()];
    const label = (x[0]! + x[1]! > 0 ? 1 : 0) + (x[2]! - x[3]! > 0 ? 2 : 0);
    rows.push(`${x.map((v) => v.toFixed(4)).join(" ")},${label}`);
  }
  writeFileSync(path.join(dir, "data.csv"), rows.join("\n") + "\n");
}

const SMALL = `model Small {
  input x: f32[batch, 4]
  features = x -> dense(16, activation: relu)
  output logits = features -> dense(4)
}`;

function program(dir: string, plan: string, model = SMALL): string {
  const file = path.join(dir, "m.nnet");
  writeFileSync(
    file,
    `${model}
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

function epochs(dir: string): { epoch: number; loss: number }[] {
  return readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { epoch: number; loss: number });
}

test("a run killed with SIGKILL mid-epoch resumes and ends as an uninterrupted run does", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-resume-"));
  dataset(dir, 6000);
  const file = program(dir, "  optimizer adam(lr: 1e-2)\n  batch 4\n  epochs 4\n  checkpoint every: 1, keep: 2");
  const ref = cli(["train", file, "--backend", "cpu", "--out", path.join(dir, "ref"), "--json"]);
  assert.is(ref.code, 0, ref.err);
  const want = epochs(path.join(dir, "ref"));
  assert.is(want.length, 4);

  // Kill during the third epoch (after the second epoch's checkpoint).
  const out = path.join(dir, "run");
  await new Promise<void>((resolve) => {
    const child = spawn(process.execPath, [CLI, "train", file, "--backend", "cpu", "--out", out, "--json"]);
    let seen = 0;
    child.stdout.on("data", (b: Buffer) => {
      seen += (b.toString().match(/"event":"epoch"/g) ?? []).length;
      if (seen >= 2) setTimeout(() => child.kill("SIGKILL"), 150);
    });
    child.on("close", () => resolve());
  });
  const before = epochs(out);
  assert.ok(before.length >= 2 && before.length < 4, `killed after ${before.length} epochs`);
  const resumed = cli(["train", file, "--backend", "cpu", "--out", out, "--resume", "--json"]);
  assert.is(resumed.code, 0, resumed.err);
  const got = epochs(out);
  assert.equal(got.map((e) => e.epoch), [1, 2, 3, 4], "every epoch once, in order");
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(got[i]!.loss - want[i]!.loss) <= 1e-5 * Math.max(1, want[i]!.loss), `epoch ${i + 1}: ${got[i]!.loss} vs ${want[i]!.loss}`);
  assert.ok(got[3]!.loss < got[0]!.loss, "the loss curve continues downwards");
  // An existing run is never overwritten by accident.
  const again = cli(["train", file, "--backend", "cpu", "--out", out]);
  assert.is(again.code, 2);
  assert.match(again.err, "--resume");
});

test("Ctrl-C saves a checkpoint mid-epoch and exits 130; --resume finishes the run", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-sigint-"));
  dataset(dir, 6000);
  const file = program(dir, "  optimizer adam(lr: 1e-2)\n  batch 4\n  epochs 2");
  const out = path.join(dir, "run");
  const { code, err } = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, "train", file, "--backend", "cpu", "--out", out, "--json"]);
    let err = "";
    let sent = false;
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    child.stdout.on("data", (b: Buffer) => {
      if (!sent && b.toString().includes('"event":"backend"')) {
        sent = true;
        setTimeout(() => child.kill("SIGINT"), 1200);
      }
    });
    child.on("close", (c) => resolve({ code: c, err }));
  });
  assert.is(code, 130, err);
  assert.match(err, "--resume");
  assert.ok(listCheckpoints(out).length >= 1, "a checkpoint was saved");
  const resumed = cli(["train", file, "--backend", "cpu", "--out", out, "--resume"]);
  assert.is(resumed.code, 0, resumed.err);
  assert.equal(epochs(out).map((e) => e.epoch), [1, 2]);
});

test("a checkpoint with one corrupt byte is refused with a clear message", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-corrupt-"));
  dataset(dir, 300);
  const file = program(dir, "  optimizer adam(lr: 1e-2)\n  batch 32\n  epochs 2");
  const out = path.join(dir, "run");
  assert.is(cli(["train", file, "--backend", "cpu", "--out", out]).code, 0);
  const ckpts = listCheckpoints(out);
  const last = ckpts[ckpts.length - 1]!;
  const weights = path.join(last, "weights.safetensors");
  const bytes = readFileSync(weights);
  bytes[bytes.length - 3] ^= 0xff;
  writeFileSync(weights, bytes);
  const r = cli(["train", file, "--backend", "cpu", "--out", out, "--resume", "--epochs", "3"]);
  assert.is(r.code, 2);
  assert.match(r.err, "weights.safetensors");
  assert.match(r.err, /corrupt/i);
  assert.not.match(r.err, "    at ");
});

test("pretrain then fine-tune: frozen layers are bit-identical afterwards, the head changes", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-phases-"));
  dataset(dir, 400);
  const file = program(dir, `  batch 32
  checkpoint every: 1, keep: 100
  phase pretrain { optimizer adam(lr: 1e-2); epochs 2 }
  phase finetune { freeze features; optimizer sgd(lr: 0.1, momentum: 0.9); epochs 2 }`);
  const out = path.join(dir, "run");
  const r = cli(["train", file, "--backend", "cpu", "--out", out]);
  assert.is(r.code, 0, r.err);
  const pre = listCheckpoints(out).map((c) => readCheckpoint(c)).filter((c) => c.state.phase === "pretrain").pop()!;
  const final = decodeSafetensors(new Uint8Array(readFileSync(path.join(out, "model.safetensors")))).tensors;
  const same = (name: string) => Buffer.from((final[name]!.data as Float32Array).buffer).equals(Buffer.from((pre.weights[name]!.data as Float32Array).buffer));
  assert.ok(same("dense/kernel") && same("dense/bias"), "the frozen backbone is bit-identical");
  assert.not.ok(same("dense_1/kernel"), "the head was trained");
});

test("freeze BINDING where a block instance made the binding's value: that instance's layers stay bit-identical", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-freeze-block-"));
  dataset(dir, 200);
  const model = `block Pair(c: int) {
  out = in -> dense(c) -> relu -> dense(c)
}
model Small {
  input x: f32[batch, 4]
  features = x -> Pair(8)
  output logits = features -> relu -> dense(4)
}`;
  const file = program(dir, `  batch 32
  optimizer adam(lr: 1e-2)
  checkpoint every: 1, keep: 100
  phase warm { epochs 1 }
  phase head { freeze features; epochs 1 }`, model);
  const out = path.join(dir, "run");
  const r = cli(["train", file, "--backend", "cpu", "--out", out]);
  assert.is(r.code, 0, r.err);
  const warm = listCheckpoints(out).map((c) => readCheckpoint(c)).filter((c) => c.state.phase === "warm").pop()!;
  const final = decodeSafetensors(new Uint8Array(readFileSync(path.join(out, "model.safetensors")))).tensors;
  const same = (name: string) => Buffer.from((final[name]!.data as Float32Array).buffer).equals(Buffer.from((warm.weights[name]!.data as Float32Array).buffer));
  for (const w of ["Pair/dense/kernel", "Pair/dense/bias", "Pair/dense_1/kernel", "Pair/dense_1/bias"]) assert.ok(same(w), `${w} is frozen`);
  assert.not.ok(same("dense/kernel"), "the head was trained");
});

test('freeze "**" in a phase: error NN4006 before anything runs (it used to crash in the optimizer)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-freeze-all-"));
  dataset(dir, 200);
  const file = program(dir, `  batch 32
  optimizer adam(lr: 1e-2)
  phase warm { epochs 1 }
  phase none { freeze "**"; epochs 1 }`);
  const r = cli(["train", file, "--backend", "cpu", "--out", path.join(dir, "run")]);
  assert.is.not(r.code, 0);
  assert.match(r.err, /error NN4006: phase "none" freezes every layer/);
  assert.not.match(r.err, "internal error");
  assert.not.match(r.err, "    at ");
});

test("a diverging run stops at the first NaN loss, names the step and keeps the last good checkpoint", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-nan-"));
  dataset(dir, 400);
  const file = program(dir, "  optimizer sgd(lr: 1e6)\n  batch 32\n  epochs 30");
  const r = cli(["train", file, "--backend", "cpu", "--out", path.join(dir, "run")]);
  assert.is(r.code, 1, r.out + r.err);
  assert.match(r.err, /the loss became (NaN|Infinity|-Infinity) at epoch \d+, step \d+/);
  assert.match(r.err, "lower learning rate");
  assert.not.match(r.err, "    at ");
  assert.ok(readdirSync(path.join(dir, "run")).includes("metrics.jsonl"));
});

test.run();
