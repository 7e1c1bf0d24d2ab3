// One fuzz campaign: fast-check drives an arbitrary (./inputs.ts fuzzInput) through a target in the worker pool,
// shrinks the first input that breaks the property, and says how to replay it. Shared by spec/unit/fuzz.test.ts
// and `npm run fuzz` (./run.ts). Regression samples (every failing input ever found, minimised) live in
// spec/fuzz/regressions/ as `<name>.fuzz` files holding the exact text; the suite replays each on every target.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import { ROOT } from "../helpers.js";
import { fuzzInput } from "./inputs.js";
import type { Pool } from "./pool.js";
import type { Target } from "./targets.js";

export const REGRESSIONS = path.join(ROOT, "spec/fuzz/regressions");

export interface Campaign {
  target: Target;
  /** The fast-check seed of this campaign. */
  seed: number;
  runs: number;
  /** Whether it stopped at its time limit before `numRuns`. */
  interrupted: boolean;
  ms: number;
  failure?: { input: string; problems: string[]; path: string; shrinks: number };
}

export async function campaign(pool: Pool, target: Target, o: { seed: number; numRuns: number; timeLimitMs?: number; arb?: fc.Arbitrary<string> }): Promise<Campaign> {
  const t0 = performance.now();
  let last: string[] = [];
  const property = fc.asyncProperty(o.arb ?? fuzzInput, async (text) => {
    const r = await pool.run(target, text);
    if (r.problems.length) {
      last = r.problems;
      throw new Error(r.problems.slice(0, 8).join("\n"));
    }
  });
  const d = (await fc.check(property, { seed: o.seed, numRuns: o.numRuns, ...(o.timeLimitMs ? { interruptAfterTimeLimit: o.timeLimitMs, markInterruptAsFailure: false } : {}) })) as fc.RunDetails<[string]>;
  const out: Campaign = { target, seed: o.seed, runs: d.numRuns, interrupted: d.interrupted, ms: performance.now() - t0 };
  if (d.failed && d.counterexample) {
    const input = d.counterexample[0];
    // The problems of the minimal input itself (the last failure seen is the shrunk one's).
    const again = await pool.run(target, input);
    out.failure = { input, problems: again.problems.length ? again.problems : last, path: d.counterexamplePath ?? "", shrinks: d.numShrinks };
  }
  return out;
}

/** How to replay a failed campaign exactly. */
export function replayCommand(c: Campaign, base: number): string {
  return `FUZZ_SEED=${base} node spec/run.mjs '/fuzz\\.test\\.js$'   (or: npm run fuzz -- --target ${c.target} --seed ${c.seed} --n ${c.runs})`;
}

/** The regression samples: [file name, text]. */
export function regressionSamples(dir = REGRESSIONS): [string, string][] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".fuzz"))
    .sort()
    .map((f) => [f, readFileSync(path.join(dir, f), "utf8")]);
}

/** Saves a failing input as a new regression sample (named by target and content); returns its path, or undefined if already there. */
export function saveRegression(target: Target, input: string, dir = REGRESSIONS): string | undefined {
  const name = `${target}-${createHash("sha256").update(input).digest("hex").slice(0, 10)}.fuzz`;
  if (regressionSamples(dir).some(([, t]) => t === input)) return undefined;
  const file = path.join(dir, name);
  writeFileSync(file, input);
  return file;
}
