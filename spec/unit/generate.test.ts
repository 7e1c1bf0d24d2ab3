// nnetc generate (issue 15) end to end: a tiny character-level GPT (spec/generate/chargpt.nnet) learns one
// sentence, then continues a prompt with it — streamed text, the same with and without the key/value cache,
// seeded sampling reproducible — and every wrong request is a clear error with exit code 2. Greedy decoding
// against transformers' generate() is in huggingface.test.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ROOT, runNode } from "../helpers.js";

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
  writeFileSync(nnet, readFileSync(path.join(ROOT, "spec/generate/chargpt.nnet"), "utf8").replace("../../models/gpt2_small.nnet", path.join(ROOT, "models/gpt2_small.nnet")));
  const t = await runNode([CLI, "train", nnet, "--out", path.join(dir, "run"), "--backend", "wasm"], { timeoutMs: 180_000 });
  assert.is(t.code, 0, t.stderr);
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

test.run();
