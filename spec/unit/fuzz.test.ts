// Continuous fuzzing (issue 18): grammar-aware random programs, mutations of the samples and the zoo,
// Object.prototype names, nesting around the parser's limit, block chains and soups (spec/fuzz/inputs.ts)
// through three targets (spec/fuzz/targets.ts): `check` (compile with plan checks, rendering, summaries),
// `fmt` (never throws, refuses only syntax errors, same AST and comments, idempotent) and the language
// server's features (never an internal error, ranges inside the document). Each input runs in a worker with
// a wall-clock limit (spec/fuzz/pool.ts), so a hang fails instead of hanging the suite.
//
// The seed is new on every run (that is what makes it continuous); a failure prints it with the exact replay
// command. FUZZ_SEED=S replays, FUZZ_RUNS=F multiplies the input counts, FUZZ_TIME_S the time cap per target
// (default 20 s: the campaigns run concurrently on two workers and stop early on a loaded machine), FUZZ_TIME_LIMIT_MS the limit per input.
// Long runs: `npm run fuzz -- --n N`, which writes what it finds to spec/fuzz/regressions/, replayed here.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { diag } from "../../compiler/diagnostics.js";
import { format } from "../../compiler/format/index.js";
import { campaign, regressionSamples, replayCommand, saveRegression, type Campaign } from "../fuzz/drive.js";
import { fuzzInput, zoo } from "../fuzz/inputs.js";
import { Pool } from "../fuzz/pool.js";
import { diagnosticProblems, fmtProblems, TARGETS, type Target } from "../fuzz/targets.js";

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const FACTOR = Number(process.env.FUZZ_RUNS ?? 1);
const TIME_S = Number(process.env.FUZZ_TIME_S ?? 20);
const pool = new Pool(2, Number(process.env.FUZZ_TIME_LIMIT_MS ?? 10_000));

test.after(async () => {
  await pool.close();
});

test("the replay can fail: each kind of broken property is reported", async () => {
  const text = "// keep me\nmodel M {\n  input x: f32[batch, 4]\n  output y = x -> dense(2)\n}\n";
  assert.equal(fmtProblems(text), [], "the real formatter holds");
  const ok = format("fuzz.nnet", text);
  assert.ok(ok.ok);
  const broken: [string, typeof format, RegExp][] = [
    ["throws", () => { throw new Error("boom"); }, /threw: boom/],
    ["drops a comment", () => ({ ok: true, text: ok.text.replace("// keep me\n", ""), changed: true }), /comments lost/],
    ["changes the program", () => ({ ok: true, text: ok.text.replace("dense(2)", "dense(3)"), changed: true }), /another AST/],
    ["is not idempotent", (_f, t) => ({ ok: true, text: `${t}\n`, changed: true }), /not idempotent/],
    ["refuses a valid text", () => ({ ok: false, diagnostics: [diag("internal", { file: "fuzz.nnet", start: 0, end: 1 }, { message: "x" })] }), /refused a text that parses/],
  ];
  for (const [what, fmt, expected] of broken) assert.ok(fmtProblems(text, fmt).some((p) => expected.test(p)), `a formatter that ${what}`);
  assert.ok(diagnosticProblems({ code: "NN9001", severity: "error", message: "Cannot read properties of undefined", span: { file: "fuzz.nnet", start: 0, end: 0 } }, 0, 10).some((p) => p.startsWith("internal compiler error")));
  assert.ok(diagnosticProblems({ code: "NN2001", severity: "error", message: "m", span: { file: "fuzz.nnet", start: 5, end: 99 } }, 0, 10).some((p) => /outside/.test(p)));
  // A target that runs past its limit is ended and reported (the largest zoo file takes far more than 1 ms).
  const slow = await pool.run("lsp", zoo[zoo.length - 1]!, 1);
  assert.ok(slow.problems.some((p) => /did not finish within 1 ms/.test(p)), slow.problems.join("\n"));
});

test("a failing campaign shrinks its input, and the input becomes a regression sample that replays it", async () => {
  // Every input "fails" under a 1 ms limit per input: the failure path end to end without a real bug.
  const strict = new Pool(1, 1);
  try {
    const c = await campaign(strict, "lsp", { seed: 1, numRuns: 5, arb: fc.constantFrom(...zoo.slice(-2)) });
    assert.ok(c.failure, "the campaign failed");
    assert.ok(c.failure.problems.some((p) => /did not finish within 1 ms/.test(p)), c.failure.problems.join("\n"));
    assert.match(replayCommand(c, 7), /^FUZZ_SEED=7 node spec\/run\.mjs .*npm run fuzz -- --target lsp --seed 1 /);
    const dir = mkdtempSync(path.join(tmpdir(), "nnetc-fuzz-"));
    try {
      const file = saveRegression("lsp", c.failure.input, dir);
      assert.ok(file && readFileSync(file, "utf8") === c.failure.input, "saved byte for byte");
      assert.is(saveRegression("lsp", c.failure.input, dir), undefined, "saved once");
      assert.equal(regressionSamples(dir), [[path.basename(file), c.failure.input]]);
      // Replayed under the same limit, the sample fails again.
      assert.ok((await strict.run("lsp", regressionSamples(dir)[0]![1])).problems.length > 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await strict.close();
  }
});

test("regression samples: every file in spec/fuzz/regressions/ holds on every target", async () => {
  const samples = regressionSamples();
  assert.ok(samples.length >= 20, `${samples.length} samples`);
  const failures = (
    await Promise.all(
      samples.flatMap(([name, text]) =>
        TARGETS.map(async (target) => {
          const r = await pool.run(target, text);
          return r.problems.length ? `${name} (${target}): ${r.problems.slice(0, 3).join("; ").slice(0, 600)}` : null;
        }),
      ),
    )
  ).filter((f) => f !== null);
  assert.equal(failures, []);
});

/** Inputs per target; the three campaigns share the two workers, so each gets about a third of TIME_S · 2 cores. */
const RUNS: Record<Target, number> = { check: 1200, fmt: 900, lsp: 900 };

test("fuzz: check, fmt and the language server hold on grammar-aware random inputs", async () => {
  const results: Campaign[] = await Promise.all(
    TARGETS.map((target, k) => campaign(pool, target, { seed: SEED + k, numRuns: Math.max(1, Math.round(RUNS[target] * FACTOR)), timeLimitMs: TIME_S * 1000 * Math.max(1, FACTOR), arb: fuzzInput })),
  );
  const total = results.reduce((n, c) => n + c.runs, 0);
  console.log(`  fuzz seed ${SEED}: ${results.map((c) => `${c.target} ${c.runs}${c.interrupted ? " (time cap)" : ""}`).join(", ")} = ${total} inputs`);
  for (const c of results) {
    if (!c.failure) continue;
    assert.unreachable(
      `fuzz ${c.target}: the property failed after ${c.runs} inputs (${c.failure.shrinks} shrinks).\nreplay: ${replayCommand(c, SEED)}\n` +
        `minimal input: ${JSON.stringify(c.failure.input)}\n${c.failure.problems.slice(0, 6).join("\n")}\n` +
        "Fix it and keep the input as a regression sample: npm run fuzz writes it to spec/fuzz/regressions/ (or save the text there as NAME.fuzz).",
    );
  }
  // Not stuck at the start (on a loaded machine the time cap may leave far fewer than RUNS).
  for (const c of results) assert.ok(c.runs >= Math.min(10, RUNS[c.target]), `${c.target}: only ${c.runs} inputs in ${(c.ms / 1000).toFixed(0)} s`);
});

test.run();
