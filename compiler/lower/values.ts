// Compile-time values and the one routine that binds call arguments to a signature.
import type { Name, Span } from "../ast/types.js";
import { diag, suggest, type Diagnostic } from "../diagnostics.js";
import { formatSignature, isRequired, type ParamSpec, type Signature } from "../ir/signature.js";
import type { AttrValue } from "../ir/types.js";
import { ownNamesOnly } from "../own.js";

export type Value =
  | { k: "tensor"; node: string }
  | { k: "num"; v: number; int: boolean }
  | { k: "str"; v: string }
  | { k: "bool"; v: boolean }
  /** A bare word that names no binding: an enum value, a dimension name, a dtype, a model output. */
  | { k: "word"; v: string }
  | { k: "list"; items: Value[] }
  | { k: "layer"; name: string; op: string }
  /** A value that could not be computed; the error was already reported. */
  | { k: "error" };

export const ERROR: Value = { k: "error" };

export function describe(v: Value): string {
  switch (v.k) {
    case "tensor": return "a tensor";
    case "num": return v.int ? `the integer ${v.v}` : `the number ${v.v}`;
    case "str": return `the string ${JSON.stringify(v.v)}`;
    case "bool": return `${v.v}`;
    case "word": return `the name "${v.v}"`;
    case "list": return "a list";
    case "layer": return `the layer "${v.name}"`;
    case "error": return "an invalid value";
  }
}

export interface BoundArg {
  name?: Name;
  value: Value;
  span: Span;
}

const DTYPE_WORDS = ["f16", "f32", "f64", "i8", "i32", "i64", "bool"];

/** Convert one value to the attribute a parameter expects, or explain why it cannot be. */
function convert(spec: ParamSpec, v: Value, ctx: ArgCtx): AttrValue | undefined | { error: Diagnostic } {
  const bad = (expected: string, hint?: string) => ({ error: diag("argumentType", ctx.spanOf, { callee: ctx.callee, name: spec.name, expected, got: describe(v), ...(hint ? { hint } : {}) }) });
  const range = (n: number) => {
    const lo = spec.min;
    const hi = spec.max;
    const ex = spec.exclusive;
    const tooLow = lo !== undefined && (ex ? n <= lo : n < lo);
    const hiEx = ex || !!spec.maxExclusive;
    const tooHigh = hi !== undefined && (hiEx ? n >= hi : n > hi);
    if (!tooLow && !tooHigh) return undefined;
    const desc =
      lo !== undefined && hi !== undefined
        ? `${ex ? "strictly " : ""}between ${lo} and ${hi}${!ex && hiEx ? ` (${hi} excluded)` : ""}`
        : lo !== undefined
          ? `${ex ? "greater than" : "at least"} ${lo}`
          : `${hiEx ? "below" : "at most"} ${hi}`;
    return { error: diag("outOfRange", ctx.spanOf, { callee: ctx.callee, name: spec.name, value: String(n), range: desc }) };
  };
  if (v.k === "error") return undefined;
  if (spec.type === "tensor") return v.k === "tensor" ? true : bad("a tensor (an input or a binding of the model)");
  if (v.k === "tensor") return { error: diag("notAValue", ctx.spanOf, { what: `argument "${spec.name}" of ${ctx.callee}`, got: "a tensor" }) };
  switch (spec.type) {
    case "int":
      if (v.k !== "num" || !v.int) return bad("an integer");
      return range(v.v) ?? v.v;
    case "float":
      if (v.k !== "num") return bad("a number");
      return range(v.v) ?? v.v;
    case "bool":
      if (v.k !== "bool") return bad("true or false");
      return v.v;
    case "string":
      if (v.k !== "str") return bad("a string in double quotes");
      return v.v;
    case "enum": {
      const values = spec.values ?? [];
      const w = v.k === "word" || v.k === "str" ? v.v : undefined;
      if (w === undefined) return bad(`one of ${values.join(", ")}`);
      if (!values.includes(w)) return { error: diag("badEnum", ctx.spanOf, { callee: ctx.callee, name: spec.name, value: w, options: values.join(", "), ...opt(suggest(w, values)) }) };
      return w;
    }
    case "padding": {
      const values = spec.values ?? [];
      if (v.k === "word" || v.k === "str") {
        if (!values.includes(v.v)) return { error: diag("badEnum", ctx.spanOf, { callee: ctx.callee, name: spec.name, value: v.v, options: values.join(", "), ...opt(suggest(v.v, values)) }) };
        return v.v;
      }
      const oneD = spec.dims === 1;
      const forms = oneD ? (spec.symmetric ? "p on both ends (PyTorch's pools pad symmetrically)" : "p on both ends or [left, right]") : spec.symmetric ? "p or [ph, pw]" : "p, [ph, pw] or [top, bottom, left, right]";
      const ns = v.k === "num" && v.int ? [v.v] : v.k === "list" && v.items.every((i) => i.k === "num" && i.int) ? v.items.map((i) => (i as { v: number }).v) : null;
      const lengths = oneD ? [1, ...(spec.symmetric ? [] : [2])] : [1, 2, ...(spec.symmetric ? [] : [4])];
      if (!ns || !lengths.includes(ns.length)) return bad(`one of ${values.join(", ")}, or explicit zero padding: ${forms}`);
      for (const n of ns) {
        const r = range(n);
        if (r) return r;
      }
      // THE explicit forms (compiler/ir/padding.ts): [begin, end] per spatial axis — [left, right] on a 1-D op,
      // [top, bottom, left, right] on a 2-D one.
      if (oneD) return ns.length === 1 ? [ns[0]!, ns[0]!] : ns;
      return ns.length === 1 ? [ns[0]!, ns[0]!, ns[0]!, ns[0]!] : ns.length === 2 ? [ns[0]!, ns[0]!, ns[1]!, ns[1]!] : ns;
    }
    case "int2": {
      if (v.k === "num" && v.int) return range(v.v) ?? [v.v, v.v];
      if (v.k === "list" && v.items.length === 2 && v.items.every((i) => i.k === "num" && i.int)) {
        const ns = v.items.map((i) => (i as { v: number }).v);
        for (const n of ns) {
          const r = range(n);
          if (r) return r;
        }
        return ns;
      }
      return bad("an integer or a list of two integers");
    }
    case "ints":
      if (v.k === "list" && v.items.every((i) => i.k === "num" && i.int)) return v.items.map((i) => (i as { v: number }).v);
      if (v.k === "num" && v.int) return [v.v];
      return bad("a list of integers, e.g. [0, 2, 1]");
    case "strings":
      if (v.k === "list" && v.items.every((i) => i.k === "str")) return v.items.map((i) => (i as { v: string }).v);
      return bad('a list of strings in double quotes, e.g. ["a", "b"]');
    case "shape": {
      if (v.k !== "list") return bad("a list of sizes, e.g. [7, 7, 64]");
      const out: AttrValue[] = [];
      for (const i of v.items) {
        if (i.k === "num" && i.int && (i.v > 0 || i.v === -1)) out.push(i.v);
        else if (i.k === "word" && ctx.dims.has(i.v)) out.push(i.v);
        else return bad("a list of positive integers, declared dimension names, and at most one -1", i.k === "word" ? `"${i.v}" is not a dimension declared by an input` : undefined);
      }
      return out;
    }
    case "layer":
      if (v.k !== "layer") return bad("a layer instance declared with layer name = …");
      return v.name;
    case "dtype":
      if (v.k !== "word" || !DTYPE_WORDS.includes(v.v)) return bad(`an element type (${DTYPE_WORDS.join(", ")})`);
      return v.v;
    case "ref":
    case "word":
      if (v.k !== "word") return bad("a name");
      return v.v;
    case "target":
      if (v.k === "num") return v.v;
      if (v.k !== "word") return bad("a dataset field, or a number");
      return v.v;
    case "vocab":
      if (v.k === "str") return v.v;
      if (v.k !== "num" || !v.int) return bad('a vocabulary size (an integer) or a vocab.txt file in double quotes ("vocab.txt")');
      return range(v.v) ?? v.v;
  }
}

function opt(s: string | undefined): { suggestion?: string } {
  return s ? { suggestion: s } : {};
}

export interface ArgCtx {
  callee: string;
  /** Span of the argument being converted (set per argument). */
  spanOf: Span;
  dims: ReadonlySet<string>;
}

/**
 * Bind positional and named arguments to a signature: defaults filled in, values converted and
 * range-checked. Returns null (with diagnostics) when any argument is wrong.
 */
export function bindArgs(callee: string, sig: Signature, args: BoundArg[], callSpan: Span, diagnostics: Diagnostic[], dims: ReadonlySet<string> = new Set(), tensorInputs = ""): Record<string, AttrValue> | null {
  const attrs: Record<string, AttrValue> = {};
  const given = new Map<string, BoundArg>();
  let ok = true;
  let pos = 0;
  const signature = () => formatSignature(callee, sig, tensorInputs); // only for the messages below: most calls are right
  for (const a of args) {
    let spec: ParamSpec | undefined;
    if (a.name) {
      spec = sig.params.find((s) => s.name === a.name!.name);
      if (!spec) {
        const names = sig.params.map((s) => s.name);
        diagnostics.push(diag("unknownArgument", a.name.span, { callee, name: a.name.name, accepted: names.join(", ") || "no named arguments", ...opt(suggest(a.name.name, names)) }));
        ok = false;
        continue;
      }
    } else {
      spec = sig.params[pos++];
      if (!spec) {
        diagnostics.push(diag("tooManyArguments", a.span, { callee, max: sig.params.length, signature: signature() }));
        ok = false;
        continue;
      }
    }
    if (given.has(spec.name)) {
      diagnostics.push(diag("duplicateDecl", a.span, { kind: "argument", name: spec.name }));
      ok = false;
      continue;
    }
    given.set(spec.name, a);
    const r = convert(spec, a.value, { callee, spanOf: a.span, dims });
    if (r === undefined) ok = false;
    else if (r !== null && typeof r === "object" && !Array.isArray(r) && "error" in r) {
      diagnostics.push(r.error);
      ok = false;
    } else attrs[spec.name] = r as AttrValue;
  }
  for (const s of sig.params) {
    if (s.name in attrs || given.has(s.name)) continue;
    if (isRequired(s)) {
      diagnostics.push(diag("missingArgument", callSpan, { callee, name: s.name, signature: signature() }));
      ok = false;
    } else attrs[s.name] = s.type === "int2" && typeof s.default === "number" ? [s.default, s.default] : s.default ?? null;
  }
  return ok ? attrs : null;
}

type Num = Extract<Value, { k: "num" }>;

/** A built-in compile-time function: what it is, how many numbers it takes, and what it computes. */
export interface Builtin {
  signature: string;
  doc: string;
  /** Fewest and most numbers it takes; `max(…)` and `min(…)` also take one list of numbers. */
  arity: readonly [number, number];
  apply(xs: readonly Num[]): Num;
}

const extreme = (better: (a: number, b: number) => boolean) => (xs: readonly Num[]): Num => xs.reduce((best, x) => (better(x.v, best.v) ? x : best));

/**
 * THE built-in compile-time functions. They are called like layers (`max(1, c / 4)`) but compute a number
 * from numbers known at compile time; a block or layer instance of the same name hides one. No op of
 * compiler/ir/ops.ts has one of these names (spec/unit/exprs.test.ts checks).
 */
export const BUILTINS: Readonly<Record<string, Builtin>> = {
  min: { signature: "min(a, b, …)", doc: "the smallest of its numbers (the first of equal ones), or of one list of numbers", arity: [1, Infinity], apply: extreme((a, b) => a < b) },
  max: { signature: "max(a, b, …)", doc: "the largest of its numbers (the first of equal ones), or of one list of numbers", arity: [1, Infinity], apply: extreme((a, b) => a > b) },
  floor: { signature: "floor(x)", doc: "the largest integer ≤ x: floor(c / 4) is Python's c // 4", arity: [1, 1], apply: ([x]) => ({ k: "num", v: Math.floor(x!.v), int: true }) },
  ceil: { signature: "ceil(x)", doc: "the smallest integer ≥ x: ceil(h / 2) is the size of h after a stride-2 same convolution", arity: [1, 1], apply: ([x]) => ({ k: "num", v: Math.ceil(x!.v) + 0, int: true }) },
};
ownNamesOnly(BUILTINS);

export function isBuiltin(name: string): boolean {
  return Object.hasOwn(BUILTINS, name);
}

/** Python's `%`: the remainder takes the sign of the divisor (a - b·floor(a / b)); b ≠ 0. */
export function pyMod(a: number, b: number): number {
  const m = a % b;
  return (m !== 0 && m < 0 !== b < 0 ? m + b : m) + 0; // + 0: no -0
}
