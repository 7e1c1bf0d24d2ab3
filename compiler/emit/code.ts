// Safe pieces of emitted code. Everything that comes from a .nnet file (names, strings, doc comments,
// numbers, source lines) reaches emitted TypeScript only through these functions, which escape it.
import type { AttrValue } from "../ir/types.js";

/** Words that cannot name a local binding in an ES module (reserved, strict-mode and TS-contextual ones we avoid). */
const RESERVED = new Set(
  (
    "break case catch class const continue debugger default delete do else enum export extends false finally for function if import in " +
    "instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface " +
    "package private protected public await arguments eval undefined NaN Infinity globalThis any as async boolean constructor declare " +
    "get module namespace never readonly require number object set string symbol type unique unknown from of keyof infer is asserts satisfies " +
    "accessor out override abstract bigint global process console Math Object Array Promise JSON Error Function String Number Boolean"
  ).split(" "),
);

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A name as a safe identifier: other characters become "_", reserved words and taken names get a suffix. */
export class Names {
  private used = new Set<string>();
  constructor(taken: Iterable<string> = []) {
    for (const t of taken) this.used.add(t);
  }
  /** Reserve a name exactly (the emitter's own helpers). */
  reserve(name: string): void {
    this.used.add(name);
  }
  fresh(want: string): string {
    let base = want.replace(/[^A-Za-z0-9_]/g, "_");
    if (!base || /^[0-9]/.test(base)) base = `_${base}`;
    if (RESERVED.has(base)) base = `${base}_`;
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

/** A string literal (JSON's escaping, plus the two line separators JSON leaves alone). */
export function str(s: string): string {
  return JSON.stringify(s).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** A number literal; non-finite values as expressions. */
export function num(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  if (Object.is(n, -0)) return "-0";
  return String(n);
}

/** A property key: bare when it is a plain identifier, quoted otherwise; __proto__ is computed so it stays a key. */
export function key(k: string): string {
  if (k === "__proto__") return `["__proto__"]`;
  return IDENT.test(k) ? k : str(k);
}

/** A property access: .k or ["k"]. */
export function member(k: string): string {
  return IDENT.test(k) && k !== "__proto__" ? `.${k}` : `[${str(k)}]`;
}

/** Any attribute value or JSON-like data as a literal. */
export function lit(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number") return num(v);
  if (typeof v === "boolean") return String(v);
  if (typeof v === "string") return str(v);
  if (Array.isArray(v)) return `[${v.map(lit).join(", ")}]`;
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    if (!entries.length) return "{}";
    return `{ ${entries.map(([k, x]) => `${key(k)}: ${lit(x)}`).join(", ")} }`;
  }
  throw new Error(`cannot emit a ${typeof v}`);
}

/** Text for a // comment: one line, no line terminators of any kind, trimmed to `max` characters. */
export function lineComment(text: string, max = 110): string {
  const one = text.replace(/[\r\n\u2028\u2029\u0085]+/g, " ").replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, "").trimEnd();
  return one.length > max ? one.slice(0, max - 1) + "…" : one;
}

/** Text for a /** … *\/ doc comment: "*\/" cannot close it early. */
export function docComment(text: string, indent = ""): string {
  const lines = text
    .replace(/\*\//g, "*\\/")
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, "")
    .split(/\r\n|[\r\n\u2028\u2029\u0085]/);
  if (lines.length === 1) return `${indent}/** ${lines[0]!.trim()} */`;
  return [`${indent}/**`, ...lines.map((l) => `${indent} * ${l.trimEnd()}`.trimEnd()), `${indent} */`].join("\n");
}

export type Literal = AttrValue;
