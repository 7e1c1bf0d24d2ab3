// Symbolic dimensions. A dimension is a number or a canonical expression string over named symbols
// ("batch", "64*seq", "floor((h-3)/2)+1"). Products are kept canonical (sorted factors, one coefficient)
// so that equal products compare equal as strings; anything else is an opaque atom.

export type Dim = number | string;
export type Shape = Dim[];

export function isConst(d: Dim): d is number {
  return typeof d === "number";
}

export function fmtDim(d: Dim): string {
  return String(d);
}

export function fmtShape(s: readonly Dim[]): string {
  return `[${s.map(fmtDim).join(", ")}]`;
}

export function dimEq(a: Dim, b: Dim): boolean {
  return a === b;
}

/** Split a canonical product into its coefficient and sorted symbolic factors. */
function factors(d: Dim): { coef: number; syms: string[] } {
  if (typeof d === "number") return { coef: d, syms: [] };
  const out = { coef: 1, syms: [] as string[] };
  for (const part of splitTopLevel(d, "*")) {
    if (/^\d+$/.test(part)) out.coef *= Number(part);
    else out.syms.push(part);
  }
  return out;
}

/** Split on an operator character at parenthesis depth 0. */
function splitTopLevel(s: string, op: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === op && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

function isAtom(s: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) || /^\(.*\)$/.test(s) && balanced(s.slice(1, -1));
}
function balanced(s: string): boolean {
  let depth = 0;
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")" && --depth < 0) return false;
  }
  return depth === 0;
}

function build(coef: number, syms: string[]): Dim {
  if (syms.length === 0) return coef;
  const sorted = [...syms].sort();
  return (coef === 1 ? "" : `${coef}*`) + sorted.join("*");
}

function atom(d: Dim): string {
  if (typeof d === "number") return String(d);
  return isAtom(d) || splitTopLevel(d, "+").length === 1 && splitTopLevel(d, "-").length === 1 ? d : `(${d})`;
}

export function mulDim(a: Dim, b: Dim): Dim {
  const fa = factors(typeof a === "string" ? atomize(a) : a);
  const fb = factors(typeof b === "string" ? atomize(b) : b);
  if (fa.coef === 0 || fb.coef === 0) return 0;
  return build(fa.coef * fb.coef, [...fa.syms, ...fb.syms]);
}

/** A sum or difference must be wrapped before it can be a factor. */
function atomize(s: string): string {
  return splitTopLevel(s, "+").length > 1 || splitTopLevel(s, "-").length > 1 ? `(${s})` : s;
}

export function productDims(ds: readonly Dim[]): Dim {
  return ds.reduce<Dim>((acc, d) => mulDim(acc, d), 1);
}

/** a / b when it divides exactly (as numbers, or by cancelling symbolic factors); otherwise undefined. */
export function divExact(a: Dim, b: Dim): Dim | undefined {
  const fa = factors(typeof a === "string" ? atomize(a) : a);
  const fb = factors(typeof b === "string" ? atomize(b) : b);
  if (fb.coef === 0 || fa.coef % fb.coef !== 0) return undefined;
  const syms = [...fa.syms];
  for (const s of fb.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return undefined;
    syms.splice(i, 1);
  }
  return build(fa.coef / fb.coef, syms);
}

export function addDim(a: Dim, b: number): Dim {
  if (typeof a === "number") return a + b;
  // Merge with a trailing constant: (h-7)+1 is h-6.
  const m = /^(.*[^+-])([+-]\d+)$/.exec(a);
  const base = m && balanced(m[1]!) ? m[1]! : a;
  const total = (m && balanced(m[1]!) ? Number(m[2]) : 0) + b;
  if (total === 0) return base;
  return total > 0 ? `${base}+${total}` : `${base}-${-total}`;
}

/** floor((n + padTotal - effectiveWindow) / stride) + 1, the output length of a conv or pool. */
export function windowOut(n: Dim, window: number, stride: number, padTotal: number): Dim {
  if (typeof n === "number") return Math.floor((n + padTotal - window) / stride) + 1;
  const inner = addDim(n, padTotal - window);
  return stride === 1 ? addDim(inner, 1) : `floor(${atom(inner)}/${stride})+1`;
}

/** ceil(n / stride): the output length of "same" padding. */
export function ceilDiv(n: Dim, stride: number): Dim {
  if (stride === 1) return n;
  if (typeof n === "number") return Math.ceil(n / stride);
  return `ceil(${atom(n)}/${stride})`;
}

/** Evaluate a dimension with values for its symbols; undefined when a symbol has no value. */
export function evalDim(d: Dim, env: Record<string, number>): number | undefined {
  if (typeof d === "number") return d;
  const src = d;
  let i = 0;
  const peek = () => src[i];
  function expr(): number | undefined {
    let v = term();
    while (peek() === "+" || peek() === "-") {
      const op = src[i++];
      const r = term();
      v = v === undefined || r === undefined ? undefined : op === "+" ? v + r : v - r;
    }
    return v;
  }
  function term(): number | undefined {
    let v = factor();
    while (peek() === "*" || peek() === "/") {
      const op = src[i++];
      const r = factor();
      v = v === undefined || r === undefined ? undefined : op === "*" ? v * r : v / r;
    }
    return v;
  }
  function factor(): number | undefined {
    if (peek() === "(") {
      i++;
      const v = expr();
      i++; // ')'
      return v;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^\d+/.exec(src.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    if (/^\d/.test(m[0])) return Number(m[0]);
    if ((m[0] === "floor" || m[0] === "ceil") && peek() === "(") {
      const v = factor();
      return v === undefined ? undefined : m[0] === "floor" ? Math.floor(v) : Math.ceil(v);
    }
    return env[m[0]];
  }
  const v = expr();
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

/** The symbols a dimension mentions. */
export function symbolsOf(d: Dim): string[] {
  if (typeof d === "number") return [];
  return [...new Set([...d.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)].map((m) => m[0]).filter((s) => s !== "floor" && s !== "ceil"))];
}
