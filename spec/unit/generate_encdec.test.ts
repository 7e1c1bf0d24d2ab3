// nnetc generate for an encoder–decoder, end to end: a tiny character-level translator (spec/generate/encdec.nnet:
// a transformer encoder, a decoder layer with causal self-attention and cross-attention) learns a task the test
// writes — each letter becomes the next one of the alphabet, "^" starts the target and "$" ends it — then
// `nnetc generate --source` answers it, the same with and without the key/value cache (greedy and seeded
// sampling), the emitted module's generate() gives the CLI's tokens, the answers are right for most unseen
// sources (so the source is read), and every wrong request is a clear error with exit code 2.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { cacheProblem, decoderProblem } from "../../runtime/decoder.js";
import { memoryHost, ROOT, runNode } from "../helpers.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
// Inside the package, so that the emitted module's `import "nnetc/runtime"` resolves to this build.
const DIR = path.join(ROOT, "dist/tmp-generate-encdec");
const NNET = path.join(DIR, "encdec.nnet");
const RUN = path.join(DIR, "run");
const ABC = "abcdefgh";
const answer = (src: string) => [...src].map((c) => ABC[(ABC.indexOf(c) + 1) % ABC.length]).join("");

/** Seeded random sources of 3 to 8 letters. */
function sources(n: number, seed: number): string[] {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: n }, () => Array.from({ length: 3 + Math.floor(rnd() * 6) }, () => ABC[Math.floor(rnd() * ABC.length)]).join(""));
}

const gen = (...args: string[]) => runNode([CLI, "generate", NNET, "--weights", RUN, "--backend", "wasm", ...args], { timeoutMs: 60_000 });
async function json(...args: string[]): Promise<{ source: number[]; prompt: number[]; ids: number[]; text: string; cache: boolean; ended: string; tokensPerSec: number }> {
  const r = await gen(...args, "--json");
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

interface Emitted {
  load(from: string, o?: object): Promise<unknown>;
  generate(m: unknown, prompt: string | readonly number[] | null, o: object): { ids: number[]; text: string | null; ended: string; cached: boolean; tokensPerSec: number };
  dispose(m: unknown): void;
}
let mod: Emitted;
let model: unknown;

test.before(async () => {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const train = sources(600, 12345);
  writeFileSync(path.join(DIR, "pairs.jsonl"), train.map((src) => JSON.stringify({ src, tgt: `^${answer(src)}$` })).join("\n") + "\n");
  writeFileSync(NNET, readFileSync(path.join(ROOT, "spec/generate/encdec.nnet"), "utf8"));
  writeFileSync(path.join(DIR, "chargpt.nnet"), readFileSync(path.join(ROOT, "spec/generate/chargpt.nnet"), "utf8").replace("../../models/gpt2_small.nnet", path.join(ROOT, "models/gpt2_small.nnet")));
  const t = await runNode([CLI, "train", NNET, "--model", "Translator", "--out", RUN, "--backend", "wasm"], { timeoutMs: 180_000 });
  assert.is(t.code, 0, t.stderr);
  const c = await runNode([CLI, "compile", NNET, "--target", "js"]);
  assert.is(c.code, 0, c.stderr);
  mod = (await import(pathToFileURL(path.join(DIR, "encdec.js")).href)) as Emitted;
  model = await mod.load(RUN, { backend: "wasm" });
});
test.after(() => {
  if (model) mod.dispose(model);
  rmSync(DIR, { recursive: true, force: true });
});

test("the rule: an encoder–decoder's decoder ids, source and masks; the cache serves cross-attention over the source", () => {
  const res = compile("encdec.nnet", readFileSync(path.join(ROOT, "spec/generate/encdec.nnet"), "utf8"), memoryHost());
  assert.equal(res.diagnostics, []);
  const byName = (n: string) => res.module.models.find((m) => m.name === n)!;
  const d = decoderProblem(byName("Translator"));
  assert.ok("parts" in d, JSON.stringify(d));
  if ("parts" in d) {
    assert.equal(d.parts, { ids: "tgt", mask: null, logits: "logits", maxLen: 12, vocabSize: 32, source: { ids: "src", mask: "src_mask", maxLen: 12, fixed: true, vocabSize: 32 } });
  }
  assert.is(cacheProblem(byName("Translator")), null);
  assert.match(cacheProblem(byName("NoCache")) ?? "", /conv1d\) mixes positions/);
  const two = decoderProblem(byName("TwoEncoders"));
  assert.ok("problem" in two && /neither token input flows into a causal self-attention/.test(two.problem), JSON.stringify(two));
});

test("generate --source: the trained translator answers, the same with and without the cache, streamed", async () => {
  const cached = await gen("--source", "abcdeh", "--prompt", "^", "--stop", "$");
  assert.is(cached.code, 0, cached.stderr);
  assert.is(cached.stdout, "bcdefa\n");
  assert.match(cached.stderr, /6 tokens in .* tokens\/s, key\/value cache\); ended: stop/);
  const full = await gen("--source", "abcdeh", "--prompt", "^", "--stop", "$", "--no-cache");
  assert.is(full.stdout, cached.stdout);
  assert.match(full.stderr, /no cache\)/);
  // another source, another answer: the decoder reads the source
  const other = await json("--source", "hgfe", "--start", "^", "--stop", "$");
  assert.is(other.text, "ahgf");
  // --start TOKEN, --prompt ^ and ids give the same; the source as ids too
  const ids = await json("--source-ids", other.source.join(","), "--prompt-ids", other.prompt.join(","), "--stop", "$");
  assert.equal(ids.ids, other.ids);
  const started = await json("--source", "hgfe", "--start", String(other.prompt[0]), "--stop", "$", "--no-cache");
  assert.equal(started.ids, other.ids);
  assert.not.ok(started.cache);
});

test("generate --source: seeded sampling is the same with and without the cache, and reproducible", async () => {
  const args = ["--source", "abcabc", "--prompt", "^", "--max-new", "10", "--temperature", "3", "--top-k", "6", "--top-p", "0.99", "--seed", "3"];
  const a = await json(...args);
  const b = await json(...args, "--no-cache");
  assert.ok(a.cache);
  assert.not.ok(b.cache);
  assert.equal(a.ids, b.ids);
  assert.is(a.ids.length, 10, "at this temperature it does not stop");
});

test("generate(): the emitted module gives the CLI's tokens; unseen sources are answered (cache and no cache agree)", async () => {
  const want = await json("--source", "abcdeh", "--prompt", "^", "--stop", "$");
  const got = mod.generate(model, "^", { source: "abcdeh", stop: ["$"] });
  assert.equal(got.ids, want.ids);
  assert.is(got.text, want.text);
  assert.equal(mod.generate(model, null, { source: want.source, start: "^", stop: ["$"] }).ids, want.ids);
  const sampled = { temperature: 3, topK: 6, topP: 0.99, seed: 3, maxNew: 10 };
  const wantSampled = await json("--source", "abcabc", "--prompt", "^", "--max-new", "10", "--temperature", "3", "--top-k", "6", "--top-p", "0.99", "--seed", "3");
  assert.equal(mod.generate(model, "^", { source: "abcabc", ...sampled }).ids, wantSampled.ids);
  // unseen sources (another seed): most answers right, every one the same with and without the cache
  const test = sources(40, 777);
  let right = 0;
  let tCached = 0;
  let tFull = 0;
  let tokens = 0;
  for (const src of test) {
    let t0 = performance.now();
    const a = mod.generate(model, "^", { source: src, stop: ["$"], maxNew: 11 });
    tCached += performance.now() - t0;
    t0 = performance.now();
    const b = mod.generate(model, "^", { source: src, stop: ["$"], maxNew: 11, cache: false });
    tFull += performance.now() - t0;
    assert.equal(a.ids, b.ids, src);
    assert.ok(a.cached && !b.cached);
    tokens += a.ids.length;
    if (a.text === answer(src)) right++;
  }
  console.log(`    ${right}/${test.length} unseen sources answered right; ${((tokens / tCached) * 1000).toFixed(0)} tokens/s cached, ${((tokens / tFull) * 1000).toFixed(0)} recomputed`);
  assert.ok(right >= 0.8 * test.length, `${right}/${test.length} right`);
  assert.throws(() => mod.generate(model, "^", { stop: ["$"] }), /is an encoder–decoder: give its source/);
  assert.throws(() => mod.generate(model, "^", { source: "abcdefghabcde" }), /the source has 13 tokens; model "Translator" reads at most 12/);
  assert.throws(() => mod.generate(model, "^", { source: "abc", start: "^" }), /give start or a prompt, not both/);
});

test("generate(): the emitted TypeScript types the source (tsc)", () => {
  const c = spawnSync(process.execPath, [CLI, "compile", NNET, "--target", "ts"], { cwd: ROOT, encoding: "utf8" });
  assert.is(c.status, 0, c.stderr);
  writeFileSync(
    path.join(DIR, "check.ts"),
    [
      `import Translator, { generate } from "./encdec.js";`,
      `export async function main(): Promise<string | null> {`,
      `  const m = await Translator.load("run");`,
      `  const r = generate(m, null, { source: "abc", start: "^", stop: ["$"], maxNew: 5 });`,
      `  generate(m, [3], { source: [5, 6] });`,
      `  // @ts-expect-error an encoder–decoder needs its source`,
      `  generate(m, "^", { maxNew: 3 });`,
      `  // @ts-expect-error and options`,
      `  generate(m, "^");`,
      `  return r.text;`,
      `}`,
      ``,
    ].join("\n"),
  );
  const cfg = JSON.parse(readFileSync(path.join(ROOT, "spec/emitted/tsconfig.json"), "utf8")) as { compilerOptions: object };
  writeFileSync(path.join(DIR, "tsconfig.json"), JSON.stringify({ compilerOptions: cfg.compilerOptions, files: ["check.ts"] }));
  const tsc = spawnSync(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", DIR], { cwd: ROOT, encoding: "utf8" });
  assert.is(tsc.status, 0, tsc.stdout + tsc.stderr);
});

test("generate: wrong encoder–decoder requests are clear errors (exit 2)", async () => {
  const charGpt = path.join(DIR, "chargpt.nnet");
  const cases: [string[], RegExp][] = [
    [["--prompt", "^"], /is an encoder–decoder: give its source as --source TEXT or --source-ids/],
    [["--source", "abc", "--source-ids", "1,2"], /--source TEXT or --source-ids 1,2,3 \(one of them\)/],
    [["--source", "abc"], /no start token \(\[CLS\], <s>, <\|endoftext\|>\): give --start or a prompt/],
    [["--source", "abc", "--start", "^", "--prompt", "^"], /give --start or a prompt, not both/],
    [["--source", "abcdefghabcde", "--prompt", "^"], /the source has 13 tokens; model "Translator" reads at most 12/],
    [["--source-ids", "1,99", "--prompt", "^"], /--source-ids 1,99: ids must be integers in \[0, 32\)/],
    [["--model", "TwoEncoders", "--prompt", "^"], /not a decoder nnetc can generate with.*neither token input/],
  ];
  for (const [args, re] of cases) {
    const r = await gen(...args);
    assert.is(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(" "));
    assert.not.match(r.stderr, /\n\s+at /, "no stack trace");
  }
  // a decoder takes no source
  const r = await runNode([CLI, "generate", charGpt, "--weights", RUN, "--prompt", "the", "--source", "abc"]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /model "CharGPT" is a decoder, not an encoder–decoder: it takes no --source/);
  assert.not.match(r.stderr, /\n\s+at /);
});

test.run();
