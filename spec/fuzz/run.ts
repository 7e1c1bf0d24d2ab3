#!/usr/bin/env node
// `npm run fuzz -- --n N [--seed S] [--target check|fmt|lsp|all] [--workers W] [--time-limit MS]`: long fuzz
// runs over the targets of ./targets.ts with the inputs of ./inputs.ts. N inputs per target; each failing
// input is shrunk, written to spec/fuzz/regressions/ as a new sample (which the suite then replays: fix the
// bug, keep the sample), and the campaign goes on with the next seed until N inputs have run. Exit code 1 when
// anything failed.
import { Pool } from "./pool.js";
import { campaign, saveRegression } from "./drive.js";
import { isTarget, TARGETS, type Target } from "./targets.js";

function usage(why: string): never {
  process.stderr.write(`nnetc fuzz: ${why}\nusage: npm run fuzz -- --n N [--seed S] [--target check|fmt|lsp|all] [--workers W] [--time-limit MS]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("--")) usage(`--${name} needs a value`);
  return v;
};
for (const a of args) if (a.startsWith("--") && !["--n", "--seed", "--target", "--workers", "--time-limit"].includes(a)) usage(`unknown option ${a}`);
const int = (name: string, dflt: number): number => {
  const v = opt(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) usage(`--${name} must be a whole number, not ${JSON.stringify(v)}`);
  return n;
};
const n = int("n", 1000);
const seed = int("seed", Math.floor(Math.random() * 2 ** 31));
const workers = Math.max(1, int("workers", 2));
const limitMs = Math.max(1, int("time-limit", 10_000));
const which = opt("target") ?? "all";
if (which !== "all" && !isTarget(which)) usage(`--target must be one of ${TARGETS.join(", ")} or all, not ${JSON.stringify(which)}`);
const targets: Target[] = which === "all" ? [...TARGETS] : [which as Target];

const pool = new Pool(workers, limitMs);
let failed = 0;
/** One sample per kind of failure: its first problem's first line, numbers and quoted names left out. */
const seen = new Set<string>();
const signature = (problems: string[]) => `${(problems[0] ?? "").split("\n")[0]!.replace(/"[^"]*"|\d+/g, "#")}`;
const t0 = performance.now();
process.stdout.write(`fuzzing ${targets.join(", ")}: ${n} inputs each, seed ${seed}, ${workers} workers, ${limitMs} ms per input\n`);
await Promise.all(
  targets.map(async (target, k) => {
    let done = 0;
    let found = 0;
    // Each campaign stops at its first failure: the next one starts from another seed.
    for (let s = seed + k * 1_000_003; done < n; s++) {
      const c = await campaign(pool, target, { seed: s, numRuns: n - done });
      done += c.runs;
      if (!c.failure) continue;
      found++;
      failed++;
      const sig = `${target}: ${signature(c.failure.problems)}`;
      const file = seen.has(sig) ? undefined : saveRegression(target, c.failure.input);
      seen.add(sig);
      process.stdout.write(
        `\n${target}: FAILED at input ${done} (seed ${s}, path "${c.failure.path}", ${c.failure.shrinks} shrinks)\n  ${c.failure.problems.slice(0, 4).join("\n  ")}\n  input: ${JSON.stringify(c.failure.input).slice(0, 300)}\n  ${file ? `saved as ${file}` : "not saved (a sample of this failure exists)"}\n`,
      );
    }
    process.stdout.write(`${target}: ${done} inputs, ${found} failure${found === 1 ? "" : "s"}\n`);
  }),
);
await pool.close();
process.stdout.write(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${failed ? `${failed} failures, written under spec/fuzz/regressions/` : "no failures"}\n`);
process.exitCode = failed ? 1 : 0;
