// Property tests of the -O2 pattern passes over programs a user could write: the tanh GELU written out in
// any order of its products and sums, with 0.5 as a factor or a division by 2, its inner constant
// distributed or not, always becomes one gelu(approximate: true) node (no tanh left), in both modes; with
// one constant off by 1 % it never does. And the optimized model computes what the written-out one does.
// Chains of scalar multiplications and additions keep one op per run of one kind, with equal outputs.
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import type { IRModule } from "../../compiler/ir/types.js";
import { optimize, verifyModel, type PassMode } from "../../compiler/passes/index.js";
import { initBackend } from "../../runtime/backend.js";
import { initWeights } from "../../runtime/init.js";
import { run } from "../../runtime/interpret.js";
import { memoryHost } from "../helpers.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20240611);
const C1 = "0.7978845608";
const C2 = "0.044715";
const C12 = "0.0356774081"; // C1 · C2

/** A product of factors in the given order; sums in parentheses. */
const product = (fs: string[]) => fs.map((f) => (f.includes("+") ? `(${f})` : f)).join(" * ");

/** One writing of GELU(v): permutations index into the orders of each product and sum. */
const writing = fc.record({
  outer: fc.constantFrom([0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]),
  half: fc.constantFrom("mul", "div"),
  onePlus: fc.boolean(),
  distributed: fc.boolean(),
  innerOrder: fc.boolean(),
  sumOrder: fc.boolean(),
  cube: fc.constantFrom([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]),
});
type Writing = typeof writing extends fc.Arbitrary<infer T> ? T : never;

function gelu(v: string, w: Writing, constants = { half: "0.5", c1: C1, c2: C2, c12: C12 }): string {
  const cube = w.cube.map((i) => [constants.c2, v, v, v][i]!).join(" * ");
  let inner: string;
  if (w.distributed) {
    const terms = [`${constants.c1} * ${v}`, `${constants.c12} * ${v} * ${v} * ${v}`];
    inner = (w.sumOrder ? terms : terms.reverse()).join(" + ");
  } else {
    const sum = (w.sumOrder ? [v, cube] : [cube, v]).join(" + ");
    inner = product(w.innerOrder ? [constants.c1, sum] : [sum, constants.c1]);
  }
  const t = `tanh(${inner})`;
  const g = w.onePlus ? `1 + ${t}` : `${t} + 1`;
  if (w.half === "div") return `${product(w.outer.filter((i) => i !== 1).map((i) => [v, "", g][i]!))} / ${Number(constants.half) === 0.5 ? "2" : String(1 / Number(constants.half))}`;
  return product(w.outer.map((i) => [v, constants.half, g][i]!));
}

function program(expr: string): string {
  return `model G {\n  input x: f32[batch, 6]\n  h = x -> dense(6)\n  g = ${expr}\n  output y = g -> dense(2)\n}\n`;
}

function load(text: string): IRModule {
  const r = compile("g.nnet", text, memoryHost());
  assert.equal(r.diagnostics.filter((d) => d.severity === "error").map((d) => d.message), [], text);
  return r.module;
}

const ops = (mod: IRModule, mode: PassMode) => {
  const m = optimize(mod, { level: 2, mode, onStage: (s, x) => assert.equal(verifyModel(x), [], s.pass) }).module.models[0]!;
  return m.nodes.map((n) => n.op);
};

test("fuse-gelu: every writing of the tanh GELU becomes one gelu node, for inference and for training", () => {
  fc.assert(
    fc.property(writing, (w) => {
      const mod = load(program(gelu("h", w)));
      for (const mode of ["infer", "train"] as PassMode[]) {
        const o = ops(mod, mode);
        assert.is(o.filter((x) => x === "gelu").length, 1, `${mode}: ${gelu("h", w)}`);
        assert.not.ok(o.includes("tanh") || o.includes("mul"), `${mode}: the written-out arithmetic is gone: ${o.join(" ")}`);
      }
    }),
    { seed: SEED, numRuns: 60 },
  );
});

test("fuse-gelu: a constant 1 % off is not GELU and stays as written", () => {
  const off = (c: string) => String(Number(c) * 1.01);
  fc.assert(
    fc.property(writing, fc.constantFrom("half", "c1", "c2"), (w, which) => {
      const constants = { half: "0.5", c1: C1, c2: C2, c12: C12 };
      if (which === "half") constants.half = off("0.5");
      if (which === "c1") (constants.c1 = off(C1)), (constants.c12 = off(C12));
      if (which === "c2") (constants.c2 = off(C2)), (constants.c12 = off(C12));
      const o = ops(load(program(gelu("h", w, constants))), "infer");
      assert.not.ok(o.includes("gelu"), gelu("h", w, constants));
      assert.ok(o.includes("tanh"));
    }),
    { seed: SEED, numRuns: 40 },
  );
});

test("fuse-gelu: the gelu node computes what the written-out arithmetic computes (≤ 1e-5)", async () => {
  await initBackend("wasm");
  const w: Writing = { outer: [2, 0, 1], half: "div", onePlus: false, distributed: true, innerOrder: true, sumOrder: false, cube: [3, 2, 1, 0] };
  const mod = load(program(gelu("h", w)));
  const m0 = mod.models[0]!;
  const m2 = optimize(mod, { level: 2, mode: "infer" }).module.models[0]!;
  assert.ok(m2.nodes.some((n) => n.op === "gelu"));
  let s = 5;
  const weights = initWeights(m0.params, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32));
  const x = tf.mul(tf.randomNormal([64, 6], 0, 1, "float32", 3), 3);
  const [a, b] = [m0, m2].map((m) => tf.tidy(() => run(m, weights, { x }, { training: false }).outputs.y!.dataSync()));
  let d = 0;
  for (let i = 0; i < a!.length; i++) d = Math.max(d, Math.abs(a![i]! - b![i]!));
  assert.ok(d <= 1e-5, `max abs diff ${d}`);
  tf.dispose([x, ...weights.values()]);
});

test("fold-scalar-chains: a chain of scalar ops keeps one op per run of its kind and computes the same (≤ 1e-4 relative)", async () => {
  await initBackend("wasm");
  const link = fc.record({ op: fc.constantFrom("+", "-", "*", "/"), c: fc.constantFrom("0.5", "1.5", "2", "3", "-1.25", "0.75", "1", "0") });
  await fc.assert(
    fc.asyncProperty(fc.array(link, { minLength: 1, maxLength: 8 }), async (links) => {
      const ok = links.filter((l) => !(l.op === "/" && l.c === "0"));
      fc.pre(ok.length > 0);
      const expr = ok.reduce((e, l) => `(${e} ${l.op} ${l.c})`, "h");
      const mod = load(program(expr));
      const m0 = mod.models[0]!;
      const m2 = optimize(mod, { level: 2, mode: "infer", onStage: (st, x) => assert.equal(verifyModel(x), [], st.pass) }).module.models[0]!;
      const kind = (op: string) => (op === "*" || op === "/" ? "scale" : "shift");
      const runs = ok.filter((l, i) => i === 0 || kind(l.op) !== kind(ok[i - 1]!.op)).length;
      const arith = m2.nodes.filter((n) => ["add", "sub", "mul", "div"].includes(n.op)).length;
      assert.ok(arith <= runs, `${expr}: ${arith} arithmetic nodes for ${runs} runs`);
      let s = 9;
      const weights = initWeights(m0.params, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32));
      const x = tf.randomNormal([4, 6], 0, 1, "float32", 4);
      const [a, b] = [m0, m2].map((m) => tf.tidy(() => run(m, weights, { x }, { training: false }).outputs.y!.dataSync()));
      for (let i = 0; i < a!.length; i++) assert.ok(Math.abs(a![i]! - b![i]!) <= 1e-4 * Math.max(1, Math.abs(a![i]!)), `${expr}: ${a![i]} vs ${b![i]}`);
      tf.dispose([x, ...weights.values()]);
    }),
    { seed: SEED, numRuns: 40 },
  );
});

test.run();
