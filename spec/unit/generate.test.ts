// nnetc generate (issue 15) end to end: a tiny character-level GPT (spec/generate/chargpt.nnet) learns one
// sentence, then continues a prompt with it — streamed text, the same with and without the key/value cache,
// seeded sampling reproducible — and every wrong request is a clear error with exit code 2. Greedy decoding
// against transformers' generate() is in huggingface.test.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as tf from "@tensorflow/tfjs-core";
import { compile } from "../../compiler/index.js";
import { optimize } from "../../compiler/passes/index.js";
import { initBackend } from "../../runtime/backend.js";
import { TfjsEngine, type PhaseSetup, type StepEngine } from "../../runtime/engine.js";
import { interpreted, run } from "../../runtime/interpret.js";
import { startTorch } from "../../runtime/torch/engine.js";
import { memoryHost, ROOT, runNode } from "../helpers.js";
import { nontrivialHost } from "./matrix.worker.js";
import { requireTorch } from "./torch_shared.js";
import type { Split } from "../../runtime/data/split.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-generate-"));
const nnet = path.join(dir, "chargpt.nnet");
const gen = (...args: string[]) => runNode([CLI, "generate", nnet, "--weights", path.join(dir, "run"), ...args], { timeoutMs: 60_000 });

test.after(() => rmSync(dir, { recursive: true, force: true }));

test("generate: a trained character GPT continues its sentence, streamed, the same with and without the cache", async () => {
  const s = "the quick brown fox jumps over the lazy dog. ";
  const lines: string[] = [];
  for (let r = 0; r < 6; r++) for (let i = 0; i < s.length; i++) lines.push(JSON.stringify({ text: (s.slice(i) + s + s).slice(0, 64) }));
  writeFileSync(path.join(dir, "text.jsonl"), lines.join("\n") + "\n");
  // imports stay inside the project (the run's folder is its root): the zoo's GPT-2 file is copied beside it
  writeFileSync(path.join(dir, "gpt2_small.nnet"), readFileSync(path.join(ROOT, "models/gpt2_small.nnet")));
  writeFileSync(nnet, readFileSync(path.join(ROOT, "spec/generate/chargpt.nnet"), "utf8").replace("../../models/gpt2_small.nnet", "gpt2_small.nnet"));
  const t = await runNode([CLI, "train", nnet, "--out", path.join(dir, "run"), "--backend", "wasm"], { timeoutMs: 180_000 });
  assert.is(t.code, 0, t.stderr);
  // perplexity(ignore: 0) is exp of the loss that ignores padding, epoch by epoch
  const last = JSON.parse(readFileSync(path.join(dir, "run/metrics.jsonl"), "utf8").trim().split("\n").pop()!) as { loss: number; perplexity: number };
  assert.ok(Math.abs(last.perplexity - Math.exp(last.loss)) <= 0.02 * Math.exp(last.loss), `perplexity ${last.perplexity} vs exp(loss) ${Math.exp(last.loss)}`);
  const cached = await gen("--prompt", "the quick", "--max-new", "20");
  assert.is(cached.code, 0, cached.stderr);
  assert.ok(cached.stdout.startsWith(" brown fox jumps"), `continuation: ${JSON.stringify(cached.stdout)}`);
  assert.match(cached.stderr, /20 tokens in .* tokens\/s, key\/value cache\); ended: max_new/);
  const full = await gen("--prompt", "the quick", "--max-new", "20", "--no-cache");
  assert.is(full.stdout, cached.stdout);
  assert.match(full.stderr, /no cache\)/);
  console.log(`    "the quick" →${JSON.stringify(cached.stdout.trimEnd()).slice(1, -1)}; ${/\(([\d.]+) tokens\/s/.exec(cached.stderr)![1]} tokens/s cached, ${/\(([\d.]+) tokens\/s/.exec(full.stderr)![1]} recomputed`);
});

test("generate: seeded sampling (temperature, top-k, top-p) is reproducible; --json reports ids and text", async () => {
  const run = async (seed: string) => {
    const r = await gen("--prompt", "the", "--max-new", "12", "--temperature", "1.5", "--top-k", "8", "--top-p", "0.95", "--seed", seed, "--json");
    assert.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").pop()!) as { ids: number[]; text: string; cache: boolean };
  };
  const a = await run("1");
  const b = await run("1");
  assert.equal(a.ids, b.ids);
  assert.is(a.text.length, a.ids.length);
  assert.ok(a.cache);
});

test("generate: wrong requests are clear errors (exit 2)", async () => {
  const cases: [string[], RegExp][] = [
    [["--model", "NotADecoder", "--prompt", "the"], /not a decoder nnetc can generate with/],
    [["--prompt", "the", "--prompt-ids", "1,2"], /one of them/],
    [["--prompt", "x".repeat(40)], /reads at most 32/],
    [["--prompt-ids", "1,200"], /ids must be integers in \[0, 96\)/],
    [["--prompt", "the", "--greedy", "--temperature", "0.5"], /--greedy takes no --temperature/],
    [["--prompt", "the", "--stop", "nosuchtoken"], /not an id nor a token/],
  ];
  for (const [args, re] of cases) {
    const r = await gen(...args);
    assert.is(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(" "));
    assert.not.match(r.stderr, /\n\s+at /, "no stack trace");
  }
});

test("cross_entropy(…, ignore: 0): padding targets count for nothing, the same on the tfjs and torch engines", async () => {
  requireTorch();
  await initBackend("wasm");
  // no dropout: both engines then compute the same function
  const src = "model LM {\n  input ids: i32[batch, 32]\n  x = ids -> embedding(96, 16)\n  x = x + (x -> layernorm -> attention(2, causal: true))\n  output logits = x -> layernorm -> dense(96)\n}\n";
  const res = compile("lm.nnet", src, memoryHost());
  assert.equal(res.diagnostics, []);
  const m = optimize(res.module, { level: 1, mode: "train" }).module.models[0]!;
  const host = nontrivialHost(m, 6);
  // 8 rows of random ids; targets: real ids in the first half of each row, padding (0) after
  const ids = Int32Array.from({ length: 8 * 32 }, (_, i) => 1 + ((i * 7919) % 95));
  const nextIds = Int32Array.from({ length: 8 * 32 }, (_, i) => (i % 32 < 16 ? 1 + (i % 90) : 0));
  const fields = { ids, next: nextIds };
  const padded = {
    size: 8,
    fields: { ids: { dtype: "int32", shape: [32], declared: "i32" }, next: { dtype: "int32", shape: [32], declared: "i32" } },
    batch: (idx: Uint32Array) =>
      Object.fromEntries(Object.entries(fields).map(([k, d]) => [k, { dtype: "int32", shape: [idx.length, 32], data: Int32Array.from(Array.from(idx).flatMap((r) => Array.from(d.subarray(r * 32, r * 32 + 32)))) }])),
  } as unknown as Split;
  const next = tf.tensor(nextIds, [8, 32], "int32");
  const loss = { fn: "cross_entropy", prediction: "logits", target: "next", weight: 1, args: { ignore: 0 } };
  const setup: PhaseSetup = { trainable: m.params.map((p) => p.name), frozenLayers: [], optimizer: { fn: "sgd", args: { lr: 0 } }, weightDecay: 0, decays: [], clip: null, loss: [loss], accumulate: 1 };
  const vars = new Map(m.params.map((p) => [p.name, tf.variable(tf.tensor(host[p.name]!.data as Float32Array, p.shape), true, p.name)]));
  const all = Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  const got: number[] = [];
  for (const e of [new TfjsEngine(interpreted(m), vars), await startTorch(m, { device: "cpu", precision: "fp32", level: 1 }, host)] as StepEngine[]) {
    await e.beginPhase(setup);
    got.push((await e.trainSteps({ split: padded, batches: [all], lrs: [0], firstStep: 0, seed: 1, collect: null }))[0]!);
    await e.dispose();
  }
  // by hand: −log softmax at the target, averaged over the 8 × 16 real positions only
  const want = tf.tidy(() => {
    const b = padded.batch(all);
    const logits = run(m, vars, { ids: tf.tensor(b.ids!.data as Int32Array, b.ids!.shape, "int32") }, { training: false }).outputs.logits!;
    const logp = tf.logSoftmax(tf.reshape(logits, [-1, 96]));
    const t = next.dataSync();
    const lp = logp.arraySync() as number[][];
    let sum = 0;
    let n = 0;
    for (let i = 0; i < t.length; i++) if (t[i] !== 0) (sum -= lp[i]![t[i]!]!), n++;
    return sum / n;
  });
  for (const v of vars.values()) v.dispose();
  next.dispose();
  console.log(`    masked loss: by hand ${want.toFixed(6)}, tfjs ${got[0]!.toFixed(6)}, torch ${got[1]!.toFixed(6)}`);
  assert.ok(Math.abs(got[0]! - want) <= 1e-5 * Math.max(1, want), `tfjs ${got[0]} vs ${want}`);
  assert.ok(Math.abs(got[1]! - want) <= 1e-5 * Math.max(1, want), `torch ${got[1]} vs ${want}`);
});

test.run();
