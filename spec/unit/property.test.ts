// Property tests: whatever the text, compile() returns (never throws, never loops), reports no internal
// error (NN9001), and every diagnostic is well formed: a code NNxxxx, a severity, a non-empty message and
// a span inside the text (related spans too). Diagnostics must also render. When a text compiles
// without errors, its IR must validate against spec/ir.schema.json.
// Inputs (spec/fuzz-inputs.ts): (a) arbitrary strings, (b) soups of the language's tokens, (c) mutations
// of the valid programs in spec/samples/, (d) random programs that follow the grammar.
//
// Each input runs in a worker thread (spec/fuzz-worker.ts) with a wall-clock limit, so a compile that
// hangs fails the test instead of hanging it. The seed is fixed; to explore further or replay:
//   FUZZ_SEED=7 FUZZ_RUNS=20 node node_modules/uvu/bin.js dist/spec property
// (FUZZ_RUNS multiplies the run counts; FUZZ_TIME_LIMIT_MS changes the 2 s limit per input.)
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { irProblems } from "../ir-schema.js";
import { declarationSoup, mutant, randomProgram, seeds, soup } from "../fuzz-inputs.js";
import { type FuzzReply } from "../fuzz-worker.js";
import { diagnosticProblems } from "../fuzz/targets.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20240611);
const FACTOR = Number(process.env.FUZZ_RUNS ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * FACTOR));
/** Per input, wall clock. Compiling the largest sample takes milliseconds; two seconds means a hang. */
const TIME_LIMIT_MS = Number(process.env.FUZZ_TIME_LIMIT_MS ?? 2000);

// ── the worker ────────────────────────────────────────────────────────────────────────────────────

type Outcome = (FuzzReply & { timedOut?: false }) | { timedOut: true };

class Compiler {
  private worker: Worker | undefined;
  private next = 0;

  /** A worker that has loaded the compiler: a fresh thread loads every module first, and that is not timed. */
  private async ready(): Promise<Worker> {
    if (this.worker) return this.worker;
    const w = new Worker(new URL("../fuzz-worker.js", import.meta.url));
    w.unref();
    this.worker = w;
    const r = await this.send(w, "model M { input x: f32[batch, 2]\n output y = x -> dense(2) }", 60_000);
    if (r.timedOut) throw new Error("the fuzz worker did not start within 60 s");
    return w;
  }

  async run(text: string, limitMs = TIME_LIMIT_MS): Promise<Outcome> {
    return this.send(await this.ready(), text, limitMs);
  }

  private send(w: Worker, text: string, limitMs: number): Promise<Outcome> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        w.off("message", onMessage);
        w.off("error", onError);
      };
      const onMessage = (r: FuzzReply) => {
        if (r.id !== id) return;
        done();
        resolve(r);
      };
      const onError = (e: Error) => {
        done();
        this.worker = undefined;
        reject(e);
      };
      const timer = setTimeout(() => {
        done();
        // A looping compile never yields: the only way out is to end the thread (the next input starts another).
        void w.terminate();
        this.worker = undefined;
        resolve({ timedOut: true });
      }, limitMs);
      w.on("message", onMessage);
      w.on("error", onError);
      w.postMessage({ id, text });
    });
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = undefined;
  }
}

const compiler = new Compiler();

// ── the property ──────────────────────────────────────────────────────────────────────────────────

/** Everything wrong with one compile of `text`; empty when the property holds. */
function problems(text: string, r: Outcome): string[] {
  if (r.timedOut) return [`compile did not finish within ${TIME_LIMIT_MS} ms`];
  if (r.threw) return [`threw: ${r.threw}`];
  const out: string[] = [...r.renderProblems];
  r.diagnostics.forEach((d, i) => out.push(...diagnosticProblems(d, i, text.length)));
  if (r.module !== undefined) out.push(...irProblems(r.module).map((p) => `clean compile, invalid IR: ${p}`));
  return out;
}

async function holds(text: string): Promise<void> {
  const p = problems(text, await compiler.run(text));
  if (p.length) throw new Error(p.slice(0, 8).join("\n"));
}

/** Run a property with the fixed seed; on failure the message starts with how to replay it. */
async function check(name: string, arb: fc.Arbitrary<string>, numRuns: number): Promise<void> {
  // Shrinking an input that hangs costs the time limit per try: cap the whole property at a minute.
  const details = (await fc.check(fc.asyncProperty(arb, holds), { seed: SEED, numRuns: runs(numRuns), plugins: [fc.interruptAfterTimeLimit(60_000 * FACTOR)] })) as fc.RunDetails<[string]>;
  if (details.interrupted && !details.failed) console.warn(`${name}: stopped after ${details.numRuns} runs (time limit)`);
  if (details.failed) {
    const input = details.counterexample?.[0];
    const why = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    assert.unreachable(
      `${name}: property failed with FUZZ_SEED=${SEED} (fast-check seed ${details.seed}, path "${details.counterexamplePath}") ` +
        `after ${details.numRuns} runs and ${details.numShrinks} shrinks.\nminimal input: ${JSON.stringify(input)}\n${why}`,
    );
  }
}

// ── the tests ─────────────────────────────────────────────────────────────────────────────────────

test.before(async () => {
  const r = await compiler.run("");
  assert.ok(!r.timedOut, "the fuzz worker did not start");
});

test.after(async () => {
  await compiler.close();
});

test("the mutation seeds are the valid sample programs", () => {
  assert.ok(seeds.length >= 5, "spec/samples/*.nnet");
});

/**
 * Inputs that broke the property, minimised. Each runs in a worker of its own, all at once, so that
 * several hangs cost one time limit.
 */
const REGRESSIONS: [string, string][] = [
  // A repeat whose body adds no node is never stopped by the 200 000-node limit: 1e20 empty iterations.
  ["a huge repeat count over an empty body", "model M{repeat 99999999999999999999{}}"],
  ["nested repeats over an empty body (10^12 iterations)", "model M {\n  repeat 1000000 { repeat 1000000 { } }\n}"],
  // The same with a typo in the body: after the first error each iteration adds nothing (about 30 s).
  ["a huge repeat count over a body with an error", "model M {\n  input x: f32[batch, 4]\n  repeat 1000000000 { x = x -> dens(4) }\n  output y = x\n}"],
  // The node limit does stop this one, but only after expanding 200 000 nodes (about 10 s).
  ["a huge repeat count that adds nodes", "model M {\n  input x: f32[batch, 4]\n  repeat 1000000000 { x = x -> dense(4) }\n  output y = x\n}"],
];

test("regression: inputs that once broke the property", async () => {
  const failures = await Promise.all(
    REGRESSIONS.map(async ([what, text]) => {
      const own = new Compiler();
      try {
        const p = problems(text, await own.run(text));
        return p.length ? `${what}: ${JSON.stringify(text)}\n    ${p.join("\n    ")}` : null;
      } finally {
        await own.close();
      }
    }),
  );
  assert.equal(failures.filter((f) => f !== null), []);
});

test("(a) arbitrary strings", async () => {
  const punctuationHeavy = fc.string({ unit: fc.constantFrom(..."{}()[]<>=-+*/@?:;,.\"'\\ \n\tabmodelinputf32x0123456789"), maxLength: 200 });
  await check("arbitrary strings", fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: "binary", maxLength: 200 }), punctuationHeavy), 400);
});

test("(b) token soups", async () => {
  await check("token soups", soup, 500);
});

test("(b) token soups inside a declaration", async () => {
  await check("declaration soups", declarationSoup, 400);
});

test("(c) mutations of valid programs", async () => {
  await check("mutations", mutant, 800);
});

test("(d) random programs that follow the grammar", async () => {
  await check("random programs", randomProgram, 600);
});

test("(c) every sample truncated at every 7th character", async () => {
  // Exhaustive rather than random: a cut through each construct of each sample.
  for (const text of seeds) {
    for (let at = 0; at <= text.length; at += 7) {
      const cut = text.slice(0, at);
      const p = problems(cut, await compiler.run(cut));
      if (p.length) assert.unreachable(`truncated at ${at}: ${JSON.stringify(cut.slice(-60))}\n${p.join("\n")}`);
    }
  }
});

test.run();
