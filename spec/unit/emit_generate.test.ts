// generate() of an emitted TypeScript module against `nnetc generate`: the character GPT of the generation
// tests (spec/generate/chargpt.nnet), trained once by the CLI, compiled to a module, loaded from the run,
// continues prompts (text and ids) token for token as the CLI does — greedy and seeded sampling, with and
// without the key/value cache — and a model that is not a decoder has no generate(), which tsc enforces.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ROOT } from "../helpers.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
// Inside the package, so that the emitted module's `import "nnetc/runtime"` resolves to this build.
const DIR = path.join(ROOT, "dist/tmp-generate");
const NNET = path.join(DIR, "chargpt.nnet");
const RUN = path.join(DIR, "run");

interface Result {
  ids: number[];
  text: string | null;
  ended: string;
  cached: boolean;
}
interface Emitted {
  load(from: string, o?: object): Promise<unknown>;
  generate(m: unknown, prompt: string | readonly number[], o?: object): Result;
  dispose(m: unknown): void;
  CharGPT: { generate?: unknown };
  NotADecoder: { generate?: unknown; load(from: string): Promise<unknown> };
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: "utf8", timeout: 240_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** `nnetc generate … --json`: the prompt's ids, the new ids and their text. */
function viaCli(args: string[]): { prompt: number[]; ids: number[]; text: string; cache: boolean; ended: string } {
  const r = cli(["generate", NNET, "--weights", RUN, "--backend", "wasm", "--json", ...args]);
  assert.is(r.code, 0, r.err);
  return JSON.parse(r.out.trim().split("\n").pop()!);
}

let mod: Emitted;
let model: unknown;

test.before(async () => {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const s = "the quick brown fox jumps over the lazy dog. ";
  const lines: string[] = [];
  for (let r = 0; r < 6; r++) for (let i = 0; i < s.length; i++) lines.push(JSON.stringify({ text: (s.slice(i) + s + s).slice(0, 64) }));
  writeFileSync(path.join(DIR, "text.jsonl"), lines.join("\n") + "\n");
  writeFileSync(NNET, readFileSync(path.join(ROOT, "spec/generate/chargpt.nnet"), "utf8").replace("../../models/gpt2_small.nnet", path.join(ROOT, "models/gpt2_small.nnet")));
  const t = cli(["train", NNET, "--out", RUN, "--backend", "wasm"]);
  assert.is(t.code, 0, t.err);
  for (const target of ["js", "ts"]) {
    const c = cli(["compile", NNET, "--target", target]);
    assert.is(c.code, 0, c.err);
  }
  mod = (await import(pathToFileURL(path.join(DIR, "chargpt.js")).href)) as Emitted;
  model = await mod.load(RUN, { backend: "wasm" });
});
test.after(() => {
  if (model) mod.dispose(model);
  rmSync(DIR, { recursive: true, force: true });
});

test("generate(): greedy, text prompt, the same ids and text as nnetc generate, with and without the cache", () => {
  const want = viaCli(["--prompt", "the quick", "--max-new", "20"]);
  assert.ok(want.cache);
  assert.ok(want.text.startsWith(" brown fox"), `the CLI's continuation: ${JSON.stringify(want.text)}`);
  const streamed: number[] = [];
  const cached = mod.generate(model, "the quick", { maxNew: 20, onToken: (id: number) => streamed.push(id) });
  assert.equal(cached.ids, want.ids);
  assert.is(cached.text, want.text);
  assert.is(cached.ended, want.ended);
  assert.ok(cached.cached);
  assert.equal(streamed, want.ids, "onToken streams every new id");
  const full = mod.generate(model, "the quick", { maxNew: 20, cache: false });
  assert.equal(full.ids, want.ids);
  assert.not.ok(full.cached);
  // the prompt as ids gives the same continuation
  assert.equal(mod.generate(model, want.prompt, { maxNew: 20 }).ids, want.ids);
});

test("generate(): seeded sampling (temperature, top-k, top-p) gives nnetc generate's ids, cached or not; another seed differs", () => {
  const args = ["--prompt", "the", "--max-new", "24", "--temperature", "4", "--top-k", "12", "--top-p", "0.98"];
  const want = viaCli([...args, "--seed", "1"]);
  const wantFull = viaCli([...args, "--seed", "1", "--no-cache"]);
  assert.equal(wantFull.ids, want.ids, "the CLI itself: cache and no cache agree");
  const o = { maxNew: 24, temperature: 4, topK: 12, topP: 0.98, seed: 1 };
  assert.equal(mod.generate(model, "the", o).ids, want.ids);
  assert.equal(mod.generate(model, "the", { ...o, cache: false }).ids, want.ids);
  assert.equal(mod.generate(model, want.prompt, o).ids, want.ids);
  const other = viaCli([...args, "--seed", "2"]);
  assert.equal(mod.generate(model, "the", { ...o, seed: 2 }).ids, other.ids);
  assert.not.equal(other.ids, want.ids, "seeds 1 and 2 sample the same: the comparison shows nothing");
});

test("generate(): stop tokens end it as in nnetc generate; bad options and prompts are clear errors", () => {
  const want = viaCli(["--prompt", "the quick", "--max-new", "20", "--stop", "o"]);
  const got = mod.generate(model, "the quick", { maxNew: 20, stop: ["o"] });
  assert.equal(got.ids, want.ids);
  assert.is(got.ended, "stop");
  assert.is(got.ended, want.ended);
  const cases: [object, RegExp][] = [
    [{ greedy: true, temperature: 0.5 }, /greedy takes no temperature/],
    [{ topP: 1.5 }, /topP 1\.5: give a probability in \(0, 1\]/],
    [{ stop: ["nosuchtoken"] }, /stop nosuchtoken: not an id nor a token/],
  ];
  for (const [o, re] of cases) assert.throws(() => mod.generate(model, "the", o), re);
  assert.throws(() => mod.generate(model, [1, 200]), /the prompt: ids must be integers in \[0, 96\)/);
  assert.throws(() => mod.generate(model, "x".repeat(40)), /reads at most 32/);
});

test("a model that is not a decoder has no generate(): absent at run time, a type error for tsc", () => {
  assert.type(mod.CharGPT.generate, "function");
  assert.is(mod.NotADecoder.generate, undefined);
  // Type-checked as an application would (spec/emitted/tsconfig.json's settings) against the .ts module.
  writeFileSync(
    path.join(DIR, "check.ts"),
    [
      `import CharGPT, { NotADecoder, generate } from "./chargpt.js";`,
      `import * as mlp from "../../spec/emitted/mlp.js";`,
      `export async function main(): Promise<string | null> {`,
      `  const m = await CharGPT.load("run");`,
      `  const r = generate(m, "the", { maxNew: 3, temperature: 1, topK: 5, topP: 0.9, seed: 1, stop: [0, "."], cache: false, onToken: (id: number) => void id });`,
      `  const ids: number[] = r.ids;`,
      `  const ended: "max_new" | "stop" | "length" = r.ended;`,
      `  CharGPT.generate(m, ids);`,
      `  // @ts-expect-error NotADecoder is not a decoder: no generate()`,
      `  NotADecoder.generate;`,
      `  // @ts-expect-error mlp's main model is not a decoder: no top-level generate`,
      `  mlp.generate;`,
      `  // @ts-expect-error options are typed`,
      `  generate(m, ids, { maxNew: "3" });`,
      `  void ended;`,
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

test.run();
