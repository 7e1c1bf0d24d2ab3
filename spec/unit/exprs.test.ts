// Compile-time expressions (compiler/lower/index.ts, values.ts): `%`, `and`/`or`/`not` and the built-in
// functions min, max, floor and ceil. Hand-computed cases (Python's results, written down), the diagnostics,
// how built-ins and layers are told apart, a squeeze-excitation use case, and a property: random typed
// expressions, printed with the fewest parentheses our precedence allows, evaluate in nnetc to what an exact
// reference evaluator here gives (BigInt, Python's floor semantics) and to what Python itself gives (the same
// trees printed fully parenthesized, run by .venv/bin/python); `nnetc fmt` keeps their value and is idempotent.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { format } from "../../compiler/format/index.js";
import { OP_NAMES } from "../../compiler/ir/ops.js";
import { BUILTINS } from "../../compiler/lower/values.js";
import type { CompileResult } from "../../compiler/index.js";
import { codes, compileText, expectClean } from "../helpers.js";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");

/** What a program computes: a number (and whether it is an integer), a boolean, or the errors' codes. */
type Outcome = { num: number; int: boolean } | { bool: boolean } | { codes: string[] };

/** A model whose one constant is the expression's value: `x * v` for a number, `x * (v ? 1 : 0)` for a boolean. */
function program(expr: string, kind: "num" | "bool" = "num"): string {
  return `model P {\n  input x: f32[batch, 1]\n  v = ${expr}\n  output y = x * ${kind === "num" ? "v" : "(v ? 1 : 0)"}\n}\n`;
}

function outcome(r: CompileResult): Outcome {
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) return { codes: errors.map((d) => d.code) };
  const values = r.module.models[0]!.nodes.filter((n) => n.op === "constant").map((n) => n.attrs.value as number);
  assert.is(values.length, 1, "one constant");
  return { num: values[0]!, int: Number.isInteger(values[0]) };
}

function evalNum(expr: string): Outcome {
  return outcome(compileText(program(expr)));
}
function evalBool(expr: string): Outcome {
  const o = outcome(compileText(program(expr, "bool")));
  return "num" in o ? { bool: o.num === 1 } : o;
}
/** Whether nnetc takes the value as an integer: dense's units accept only integers. */
function isIntValue(expr: string): boolean {
  return !codes(compileText(`model P {\n  input x: f32[batch, 1]\n  output y = x -> dense(max(1, ${expr}))\n}\n`)).length;
}

test("% and floor/ceil follow Python on negatives; % of floats; / stays exact", () => {
  const cases: [string, number][] = [
    ["-7 % 3", 2], ["7 % -3", -2], ["-7 % -3", -1], ["7 % 3", 1], ["-6 % 3", 0], ["0 % -5", 0],
    ["floor(-7 / 2)", -4], ["floor(7 / 2)", 3], ["floor(-8 / 2)", -4], ["ceil(-7 / 2)", -3], ["ceil(7 / 2)", 4], ["floor(7 / -2)", -4],
    ["7.5 % 2", 1.5], ["-7.5 % 2", 0.5], ["floor(2.5)", 2], ["ceil(-0.5)", 0],
    ["max(1, 3, 2)", 3], ["min(4, -2, 7)", -2], ["max([3, 9, 4])", 9], ["max(7)", 7], ["min(1, 2.5)", 1],
    ["1 + 2 % 3 * 2", 5], ["10 - 7 % 4", 7], ["2 * 7 % 4", 2], ["-2 % 3", 1],
    ["max(1, floor(64 / 4))", 16], ["max(1, floor(3 / 4))", 1],
  ];
  for (const [e, want] of cases) assert.equal(evalNum(e), { num: want, int: Number.isInteger(want) }, e);
  // Integers stay integers; floor and ceil make integers; max keeps the kind of the one it picks.
  assert.ok(isIntValue("7 % 3") && isIntValue("floor(7 / 2)") && isIntValue("ceil(2.5)") && isIntValue("max(1, 2)"));
  assert.not.ok(isIntValue("7.5 % 2"));
  assert.not.ok(isIntValue("max(1, 2.0)"), "Python's max(1, 2.0) is 2.0");
  assert.ok(isIntValue("max(2, 2.0)"), "the first of equal ones, as Python");
});

test("and, or, not: Python's precedence, booleans only, short-circuit", () => {
  const cases: [string, boolean][] = [
    ["not 1 == 2", true], ["true or false and false", true], ["not true or true", true], ["not (true or true)", false],
    ["false and false or true", true], ["not not true", true], ["1 < 2 and 3 % 2 == 1", true], ["true == not false", true],
    // The right operand is not evaluated when the left decides: no division by zero.
    ["false and 1 % 0 == 0", false], ["true or 1 / 0 > 0", true], ["3 != 0 and 9 % 3 == 0", true],
    ["1 > 2 ? 1 % 0 == 0 : true", true],
  ];
  for (const [e, want] of cases) {
    if (e === "true == not false") {
      // Python: `True == not False` is a syntax error; so it is here (not binds looser than ==).
      assert.ok(codes(compileText(program(e, "bool"))).some((c) => c.startsWith("NN1")), e);
      continue;
    }
    assert.equal(evalBool(e), { bool: want }, e);
  }
});

test("type errors and divisions by zero are numbered diagnostics at the right place", () => {
  const at = (expr: string, code: string, marked: string) => {
    const text = program(expr);
    const r = compileText(text);
    const d = r.diagnostics.find((x) => x.code === code);
    assert.ok(d, `${expr}: expected ${code}, got ${codes(r).join(", ")}`);
    assert.is(text.slice(d!.span.start, d!.span.end), marked, expr);
  };
  at("5 % 0", "NN2028", "%");
  at("7 / (3 - 3)", "NN2028", "/");
  at("floor(4 / 0)", "NN2028", "/");
  at("1 and true", "NN2007", "1");
  at("true and 2", "NN2007", "2");
  at("false or 2", "NN2007", "2");
  at("not 3", "NN2007", "3");
  at("not deep", "NN2002", "deep");
  at("x % 2", "NN2007", "%");
  at("max(x, 2)", "NN2023", "x");
  at("max(w: 3)", "NN2004", "w");
  at("max()", "NN2005", "max()");
  at("floor(1, 2)", "NN2006", "2");
  at('max(1, "a")', "NN2007", '"a"');
  // A dimension name is not a number known at compile time.
  const sym = compileText("model P {\n  input x: f32[batch, seq, 4]\n  output y = x -> reshape([seq, floor(seq / 2)])\n}\n");
  assert.ok(codes(sym).includes("NN2002"), codes(sym).join());
});

test("built-ins and layers: no op shares a name; a block or layer instance hides a built-in; x -> max is no layer", () => {
  for (const b of Object.keys(BUILTINS)) assert.not.ok(OP_NAMES.includes(b), `op ${b} would clash with the built-in`);
  const block = compileText("block max(n: int) {\n  out = in -> dense(n)\n}\nmodel P {\n  input x: f32[batch, 4]\n  output y = max(x, 3)\n}\n");
  expectClean(block);
  assert.equal(block.module.models[0]!.nodes.at(-1)!.shape, ["batch", 3]);
  const inst = compileText("model P {\n  input x: f32[batch, 4]\n  layer min = dense(5)\n  output y = min(x)\n}\n");
  expectClean(inst);
  assert.ok(codes(compileText("model P {\n  input x: f32[batch, 4]\n  output y = x -> max\n}\n")).includes("NN2001"));
});

test("use case: squeeze-excitation width max(1, floor(c / 4)); a residual only when stride == 1 and cin == cout", () => {
  const text = `
block SE(c: int) {
  s = in -> global_avg_pool2d -> dense(max(1, floor(c / 4)), activation: relu) -> dense(c) -> sigmoid
  out = in * (s -> reshape([1, 1, c]))
}
block Res(cin: int, cout: int, stride: int = 1) {
  h = in -> conv2d(cout, 3, stride: stride, padding: same) -> SE(cout)
  out = stride == 1 and cin == cout ? h + in : h
}
model Net {
  input x: f32[batch, 16, 16, 2]
  y = x -> Res(2, 2) -> Res(2, 12, stride: 2) -> Res(12, 12) -> Res(12, 12, stride: 2)
  output logits = y -> global_avg_pool2d -> dense(10)
}
`;
  const r = compileText(text);
  expectClean(r);
  const m = r.module.models[0]!;
  const node = (name: string) => m.nodes.find((n) => n.name === name)!;
  // c = 2: floor(2 / 4) = 0, so max gives 1; c = 12: 3.
  assert.equal(node("Res/SE/dense").shape, ["batch", 1]);
  assert.equal(node("Res_1/SE/dense").shape, ["batch", 3]);
  assert.equal(node("Res_2/SE/dense").shape, ["batch", 3]);
  // Residual adds: Res (1, 2→2) and Res_2 (1, 12→12) only.
  assert.equal(m.nodes.filter((n) => n.op === "add").map((n) => n.name), ["Res/add", "Res_2/add"]);
  assert.equal(node("Res_3/SE/mul").shape, ["batch", 4, 4, 12]);
  assert.equal(m.nodes.at(-1)!.shape, ["batch", 10]);
  // nnetc fmt prints it and is idempotent.
  const f = format("se.nnet", text);
  assert.ok(f.ok);
  if (f.ok) {
    assert.ok(f.text.includes("out = stride == 1 and cin == cout ? h + in : h"), f.text);
    assert.is((format("se.nnet", f.text) as { text: string }).text, f.text);
  }
});

// ── the property ─────────────────────────────────────────────────────────────────────────────────

type N =
  | { t: "lit"; v: number }
  | { t: "neg"; a: N }
  | { t: "bin"; op: "+" | "-" | "*" | "%"; a: N; b: N }
  | { t: "div"; f: "floor" | "ceil"; a: N; b: N }
  | { t: "mm"; f: "min" | "max"; xs: N[] }
  | { t: "if"; c: B; a: N; b: N };
type B =
  | { t: "bool"; v: boolean }
  | { t: "cmp"; op: "==" | "!=" | "<" | ">" | "<=" | ">="; a: N; b: N }
  | { t: "beq"; op: "==" | "!="; a: B; b: B }
  | { t: "and" | "or"; a: B; b: B }
  | { t: "not"; a: B };
type Tree = (N | B) & { paren?: boolean };

const { num, bool } = fc.letrec<{ num: N; bool: B }>((tie) => ({
  num: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ t: fc.constant("lit" as const), v: fc.integer({ min: 0, max: 12 }) }),
    fc.record({ t: fc.constant("neg" as const), a: tie("num") }),
    fc.record({ t: fc.constant("bin" as const), op: fc.constantFrom("+" as const, "-" as const, "*" as const, "%" as const), a: tie("num"), b: tie("num"), paren: fc.boolean() }),
    fc.record({ t: fc.constant("div" as const), f: fc.constantFrom("floor" as const, "ceil" as const), a: tie("num"), b: tie("num") }),
    fc.record({ t: fc.constant("mm" as const), f: fc.constantFrom("min" as const, "max" as const), xs: fc.array(tie("num"), { minLength: 1, maxLength: 3 }) }),
    fc.record({ t: fc.constant("if" as const), c: tie("bool"), a: tie("num"), b: tie("num") }),
  ),
  bool: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ t: fc.constant("bool" as const), v: fc.boolean() }),
    fc.record({ t: fc.constant("cmp" as const), op: fc.constantFrom("==" as const, "!=" as const, "<" as const, ">" as const, "<=" as const, ">=" as const), a: tie("num"), b: tie("num") }),
    fc.record({ t: fc.constant("beq" as const), op: fc.constantFrom("==" as const, "!=" as const), a: tie("bool"), b: tie("bool") }),
    fc.record({ t: fc.constantFrom("and" as const, "or" as const), a: tie("bool"), b: tie("bool"), paren: fc.boolean() }),
    fc.record({ t: fc.constant("not" as const), a: tie("bool") }),
  ),
}));

/** The tree in .nnet, parenthesized only where the precedence needs it (or where the tree asks for it). */
function nnet(e: Tree): { s: string; p: number } {
  const w = (x: Tree, min: number) => {
    const r = nnet(x);
    return r.p >= min && !x.paren ? r.s : `(${r.s})`;
  };
  switch (e.t) {
    case "lit": return { s: String(e.v), p: 8 };
    case "bool": return { s: String(e.v), p: 8 };
    case "neg": return { s: `-${w(e.a, 7)}`, p: 7 };
    case "bin": return e.op === "+" || e.op === "-" ? { s: `${w(e.a, 5)} ${e.op} ${w(e.b, 6)}`, p: 5 } : { s: `${w(e.a, 6)} ${e.op} ${w(e.b, 7)}`, p: 6 };
    case "div": return { s: `${e.f}(${w(e.a, 6)} / ${w(e.b, 7)})`, p: 8 };
    case "mm": return { s: `${e.f}(${e.xs.map((x) => nnet(x).s).join(", ")})`, p: 8 };
    case "if": return { s: `${w(e.c, 1)} ? ${nnet(e.a).s} : ${nnet(e.b).s}`, p: 0 };
    case "cmp": case "beq": return { s: `${w(e.a, 5)} ${e.op} ${w(e.b, 5)}`, p: 4 };
    case "and": return { s: `${w(e.a, 2)} and ${w(e.b, 3)}`, p: 2 };
    case "or": return { s: `${w(e.a, 1)} or ${w(e.b, 2)}`, p: 1 };
    case "not": return { s: `not ${w(e.a, 3)}`, p: 3 };
  }
}

/** The tree in Python, every operation parenthesized: Python's meaning of the tree, whatever our precedence. */
function python(e: Tree): string {
  switch (e.t) {
    case "lit": return String(e.v);
    case "bool": return e.v ? "True" : "False";
    case "neg": return `(-${python(e.a)})`;
    case "bin": return `(${python(e.a)} ${e.op} ${python(e.b)})`;
    case "div": return `math.${e.f}(${python(e.a)} / ${python(e.b)})`;
    case "mm": return `${e.f}(${e.xs.map(python).join(", ")}${e.xs.length === 1 ? "," : ""})`.replace(/^(min|max)\((.*),\)$/, "$1([$2])");
    case "if": return `(${python(e.a)} if ${python(e.c)} else ${python(e.b)})`;
    case "cmp": case "beq": return `(${python(e.a)} ${e.op} ${python(e.b)})`;
    case "and": case "or": return `(${python(e.a)} ${e.t} ${python(e.b)})`;
    case "not": return `(not ${python(e.a)})`;
  }
}

class Zero extends Error {}
class Big extends Error {}
const LIMIT = 2n ** 50n;

/** The reference: exact integers (BigInt), Python's floor division and remainder, short-circuit and lazy branches. */
function ref(e: Tree): bigint | boolean {
  const n = (x: N) => ref(x) as bigint;
  const b = (x: B) => ref(x) as boolean;
  const floorDiv = (x: bigint, y: bigint) => {
    if (y === 0n) throw new Zero();
    const q = x / y;
    return x % y !== 0n && x < 0n !== y < 0n ? q - 1n : q;
  };
  const big = (v: bigint) => {
    if (v > LIMIT || v < -LIMIT) throw new Big();
    return v;
  };
  switch (e.t) {
    case "lit": return BigInt(e.v);
    case "bool": return e.v;
    case "neg": return -n(e.a);
    case "bin": {
      const [x, y] = [n(e.a), n(e.b)];
      if (e.op === "+") return big(x + y);
      if (e.op === "-") return big(x - y);
      if (e.op === "*") return big(x * y);
      return x - y * floorDiv(x, y);
    }
    case "div": {
      const [x, y] = [n(e.a), n(e.b)];
      return e.f === "floor" ? floorDiv(x, y) : -floorDiv(-x, y);
    }
    case "mm": {
      const xs = e.xs.map(n);
      return xs.reduce((m, x) => ((e.f === "max" ? x > m : x < m) ? x : m));
    }
    case "if": return b(e.c) ? n(e.a) : n(e.b);
    case "cmp": {
      const [x, y] = [n(e.a), n(e.b)];
      return { "==": x === y, "!=": x !== y, "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y }[e.op];
    }
    case "beq": return (b(e.a) === b(e.b)) === (e.op === "==");
    case "and": return b(e.a) && b(e.b);
    case "or": return b(e.a) || b(e.b);
    case "not": return !b(e.a);
  }
}

type Expected = { value: bigint | boolean } | { zero: true } | null;
function expected(e: Tree): Expected {
  try {
    return { value: ref(e) };
  } catch (err) {
    if (err instanceof Zero) return { zero: true };
    if (err instanceof Big) return null;
    throw err;
  }
}

function check(e: Tree, kind: "num" | "bool", text: string): void {
  const want = expected(e);
  if (!want) return;
  const got = kind === "num" ? evalNum(text) : evalBool(text);
  if ("zero" in want) {
    assert.ok("codes" in got && got.codes.length > 0 && got.codes.every((c) => c === "NN2028"), `${text}: expected NN2028 only, got ${JSON.stringify(got)}`);
    return;
  }
  if (kind === "num") assert.equal(got, { num: Number(want.value), int: true }, text);
  else assert.equal(got, { bool: want.value as boolean }, text);
}

const samples: { tree: Tree; kind: "num" | "bool" }[] = [];

test("property: random expressions evaluate to the reference's value (or NN2028 where it divides by zero), and fmt keeps them", () => {
  fc.assert(
    fc.property(fc.oneof(num.map((tree) => ({ tree: tree as Tree, kind: "num" as const })), bool.map((tree) => ({ tree: tree as Tree, kind: "bool" as const }))), ({ tree, kind }) => {
      const text = nnet(tree).s;
      check(tree, kind, text);
      samples.push({ tree, kind });
      // fmt: the formatted program means the same and formats to itself.
      const src = program(text, kind);
      const f = format("p.nnet", src);
      assert.ok(f.ok, text);
      if (!f.ok) return;
      assert.equal(outcomeOf(f.text), outcomeOf(src), `${text} → ${f.text}`);
      assert.is((format("p.nnet", f.text) as { text: string }).text, f.text, "idempotent");
    }),
    { seed: 20261206, numRuns: 300 },
  );
});

function outcomeOf(src: string): string {
  const r = compileText(src);
  return JSON.stringify({ codes: codes(r), constants: r.module.models[0]?.nodes.filter((n) => n.op === "constant").map((n) => n.attrs.value) });
}

test("Python agrees with the reference on the property's expressions", () => {
  const py = path.join(ROOT, ".venv/bin/python");
  if (!existsSync(py)) return;
  assert.ok(samples.length >= 300, `${samples.length} samples`);
  const script = "import json, math, sys\nfor line in sys.stdin:\n  try:\n    v = eval(line)\n    print(json.dumps(v if isinstance(v, bool) else str(v)))\n  except ZeroDivisionError:\n    print('\"zero\"')\n";
  const r = spawnSync(py, ["-c", script], { input: samples.map((s) => python(s.tree)).join("\n") + "\n", encoding: "utf8", timeout: 60_000 });
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as string | boolean);
  let compared = 0;
  samples.forEach((s, i) => {
    const want = expected(s.tree);
    if (!want) return;
    compared++;
    const got = lines[i];
    if ("zero" in want) assert.is(got, "zero", python(s.tree));
    else assert.is(got, typeof want.value === "boolean" ? want.value : String(want.value), python(s.tree));
  });
  assert.ok(compared > 250, `${compared} compared`);
});

test.run();
