// Safe pieces of emitted code. Everything that comes from a .nnet file (names, strings, doc comments,
// numbers, source lines) reaches emitted TypeScript only through these functions, which escape it.

/**
 * Words that no emitted binding may take: reserved, strict-mode and TS-contextual words; globals that emitted code
 * uses or that readers expect to mean the global (a module-level `const URL` would break `new URL(…)`, a type alias
 * `Record` every `Record<…>`); and names that mean something to module loaders (`__esModule`, `then`) or that set a
 * prototype when a CommonJS build writes `exports.__proto__ = …`.
 */
const RESERVED = new Set(
  (
    "break case catch class const continue debugger default delete do else enum export extends false finally for function if import in " +
    "instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface " +
    "package private protected public await arguments eval undefined NaN Infinity globalThis any as async boolean constructor declare " +
    "get module namespace never readonly require number object set string symbol type unique unknown from of keyof infer is asserts satisfies " +
    "accessor out override abstract bigint global process console Math Object Array Promise JSON Error Function String Number Boolean " +
    "URL Record Readonly Omit Partial Required Pick Exclude Extract NonNullable ReturnType Parameters InstanceType Awaited ArrayLike " +
    "Map Set WeakMap WeakSet Symbol Date RegExp Reflect Proxy BigInt Intl Float32Array Int32Array Uint8Array ArrayBuffer " +
    "window self document exports __dirname __filename __proto__ __esModule then"
  ).split(" "),
);

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A name as a safe identifier: other characters become "_", reserved words and taken names get a suffix. */
export class Names {
  private used = new Set<string>();
  constructor(taken: Iterable<string> = []) {
    for (const t of taken) this.used.add(t);
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

/**
 * Characters that change how text reads without being seen: C1 controls, bidi controls and marks, zero-width and
 * other invisible characters (the "Trojan Source" ones). Escaped in strings, shown as \uXXXX in comments.
 */
const INVISIBLE = /[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/g;
/** A surrogate without its other half (not well-formed UTF-16, written as U+FFFD). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const escape4 = (c: string) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;

/**
 * A string literal: JSON's escaping, plus the line separators U+2028/U+2029 and the invisible characters above, and
 * "<" before "/" or "!" so that "</script>" or "<!--" cannot end or open anything when the code is inlined in HTML.
 */
export function str(s: string): string {
  return JSON.stringify(s)
    .replace(INVISIBLE, escape4)
    .replace(/<(?=[/!])/g, "\\u003C");
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

/**
 * One line of text as a comment may carry it: no C0 controls, invisible characters as visible \uXXXX, lone
 * surrogates as U+FFFD, "</script" and "<!--" broken up, and no TypeScript directive ("@ts-ignore",
 * "@ts-expect-error") where TypeScript would read one: at the start of a // comment or of a block comment's line.
 */
function commentLine(line: string): string {
  return line
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "")
    .replace(INVISIBLE, escape4)
    .replace(LONE_SURROGATE, "\ufffd")
    .replace(/<(?=\/script|!--)/gi, "<\\")
    .replace(/^([\s/*]*)@(?=ts-)/i, "$1@ ");
}

/** Text for a // comment: one line, no line terminators of any kind, trimmed to `max` characters. */
export function lineComment(text: string, max = 110): string {
  const one = commentLine(text.replace(/[\r\n\u2028\u2029\u0085]+/g, " ")).trimEnd();
  if (one.length <= max) return one;
  // Cut between code points, not inside a surrogate pair.
  let cut = max - 1;
  if (/[\udc00-\udfff]/.test(one[cut] ?? "")) cut--;
  return one.slice(0, cut) + "…";
}

/** Text for a /** … *\/ doc comment: "*\/" cannot close it early. */
export function docComment(text: string, indent = ""): string {
  const lines = text.split(/\r\n|[\r\n\u2028\u2029\u0085]/).map((l) => commentLine(l).replace(/\*\//g, "*\\/"));
  if (lines.length === 1) return `${indent}/** ${lines[0]!.trim()} */`;
  return [`${indent}/**`, ...lines.map((l) => `${indent} * ${l.trimEnd()}`.trimEnd()), `${indent} */`].join("\n");
}

