// What the language server knows about one document: its compile result (the same call the CLI makes) and
// its AST, plus the queries over them that editor features need. Pure: no I/O, no protocol.
import * as path from "node:path";
import type { Arg, Decl, Expr, FileAst, Name, Span, Stmt } from "../ast/types.js";
import type { CompileResult } from "../index.js";
import type { IRModel, IRNode } from "../ir/types.js";
import type { SourceFile } from "../source.js";

export interface Analysis {
  /** The path the document was compiled as (absolute for file: URIs). */
  file: string;
  text: string;
  result: CompileResult;
  readonly ast: FileAst;
  source: SourceFile;
}

export const contains = (s: { start: number; end: number }, offset: number) => offset >= s.start && offset <= s.end;

/** The identifier under (or just before) the cursor. */
export function wordAt(text: string, offset: number): { word: string; start: number; end: number } | null {
  const isWord = (c: string | undefined) => !!c && /[A-Za-z0-9_]/.test(c);
  let start = offset;
  while (start > 0 && isWord(text[start - 1])) start--;
  let end = offset;
  while (isWord(text[end])) end++;
  if (start === end || /[0-9]/.test(text[start]!)) return null;
  return { word: text.slice(start, end), start, end };
}

/** Every statement of a body, repeat bodies included, in source order. */
export function flatStmts(body: Stmt[]): Stmt[] {
  return body.flatMap((s) => (s.kind === "repeat" ? [s, ...flatStmts(s.body)] : [s]));
}

export type Found =
  | { kind: "callee"; name: Name; decl: Decl; args: Arg[] | null; alias?: Name }
  | { kind: "argName"; callee: Name; arg: Name; decl: Decl }
  | { kind: "ref"; name: Name; decl: Decl }
  | { kind: "stmtName"; stmt: Stmt; decl: Decl }
  | { kind: "setting"; key: Name; decl: Decl; phase: boolean }
  | { kind: "declName"; decl: Decl }
  | { kind: "trainModel"; decl: Extract<Decl, { kind: "train" }> }
  | { kind: "trainDataset"; name: Name; decl: Decl }
  | { kind: "importName"; name: Name; decl: Extract<Decl, { kind: "import" }> }
  | { kind: "importPath"; decl: Extract<Decl, { kind: "import" }> };

/** Calls `visit` on every expression, outermost first. */
function walk(e: Expr | undefined, visit: (e: Expr) => void): void {
  if (!e) return;
  visit(e);
  switch (e.kind) {
    case "call":
      e.args.forEach((a) => walk(a.value, visit));
      break;
    case "list":
      e.items.forEach((x) => walk(x, visit));
      break;
    case "unary":
      walk(e.operand, visit);
      break;
    case "binary":
      walk(e.left, visit);
      walk(e.right, visit);
      break;
    case "ternary":
      walk(e.cond, visit);
      walk(e.then, visit);
      walk(e.else, visit);
      break;
    case "chain":
      walk(e.head, visit);
      for (const s of e.stages) (s.args ?? []).forEach((a) => walk(a.value, visit));
      break;
    default:
  }
}

function inExprs(exprs: (Expr | undefined)[], decl: Decl, offset: number): Found | null {
  let found: Found | null = null;
  const args = (callee: Name, list: Arg[] | null) => {
    for (const a of list ?? []) if (a.name && contains(a.name.span, offset)) found = { kind: "argName", callee, arg: a.name, decl };
  };
  for (const root of exprs) {
    walk(root, (e) => {
      if (found && found.kind !== "ref") return;
      if (e.kind === "call") {
        if (contains(e.callee.span, offset)) found = { kind: "callee", name: e.callee, decl, args: e.args };
        args(e.callee, e.args);
      } else if (e.kind === "chain") {
        for (const s of e.stages) {
          if (contains(s.callee.span, offset)) found = { kind: "callee", name: s.callee, decl, args: s.args, ...(s.alias ? { alias: s.alias } : {}) };
          args(s.callee, s.args);
        }
      } else if (e.kind === "name" && contains(e.span, offset)) {
        found = { kind: "ref", name: { name: e.name, span: e.span }, decl };
      }
    });
  }
  return found;
}

/** What the cursor is on, from the AST. */
export function locate(ast: FileAst, offset: number): Found | null {
  const decl = ast.decls.find((d) => contains(d.span, offset));
  if (!decl) return null;
  if (decl.kind === "import") {
    const n = decl.names.find((x) => contains(x.span, offset));
    if (n) return { kind: "importName", name: n, decl };
    return contains(decl.fromSpan, offset) ? { kind: "importPath", decl } : null;
  }
  if (contains(decl.name.span, offset)) return decl.kind === "train" ? { kind: "trainModel", decl } : { kind: "declName", decl };
  if (decl.kind === "train" && contains(decl.dataset.span, offset)) return { kind: "trainDataset", name: decl.dataset, decl };
  if (decl.kind === "model" || decl.kind === "block") {
    if (decl.kind === "block") {
      for (const p of decl.params) if (p.default && contains(p.default.span, offset)) return inExprs([p.default], decl, offset);
    }
    for (const s of flatStmts(decl.body)) {
      if (!contains(s.span, offset)) continue;
      if (s.kind !== "repeat" && contains(s.name.span, offset)) return { kind: "stmtName", stmt: s, decl };
      const f = inExprs([s.kind === "repeat" ? s.count : s.kind === "input" ? undefined : s.value], decl, offset);
      if (f) return f;
    }
    return null;
  }
  const settings = decl.kind === "dataset" ? decl.settings.map((s) => ({ s, phase: false })) : [...decl.settings.map((s) => ({ s, phase: false })), ...decl.phases.flatMap((p) => p.settings.map((s) => ({ s, phase: true })))];
  for (const { s, phase } of settings) {
    if (!contains(s.span, offset)) continue;
    if (contains(s.key.span, offset)) return { kind: "setting", key: s.key, decl, phase };
    if (s.key.name === "data") {
      const v = s.args[0]?.value;
      if (v?.kind === "name" && contains(v.span, offset)) return { kind: "trainDataset", name: { name: v.name, span: v.span }, decl };
    }
    const f = inExprs(s.args.map((a) => a.value), decl, offset);
    if (f) return f;
    for (const a of s.args) if (a.name && contains(a.name.span, offset)) return { kind: "argName", callee: s.key, arg: a.name, decl };
  }
  if (decl.kind === "dataset") {
    for (const f of decl.fields) {
      if (contains(f.name.span, offset)) return { kind: "declName", decl };
      const x = contains(f.span, offset) ? inExprs([f.value], decl, offset) : null;
      if (x) return x;
    }
  }
  if (decl.kind === "train") {
    const p = decl.phases.find((x) => contains(x.name.span, offset));
    if (p) return { kind: "declName", decl };
  }
  return null;
}

/** The statement that defines `name` as seen from `offset` in a model or block body: the last one before it. */
export function definitionOf(decl: Decl, name: string, offset: number): Stmt | undefined {
  if (decl.kind !== "model" && decl.kind !== "block") return undefined;
  const defs = flatStmts(decl.body).filter((s): s is Exclude<Stmt, { kind: "repeat" }> => s.kind !== "repeat" && s.name.name === name);
  const before = defs.filter((s) => s.name.span.start <= offset);
  return before.at(-1) ?? defs[0];
}

const within = (inner: Span | { file: string; start: number; end: number }, outer: Span) => inner.file === outer.file && inner.start >= outer.start && inner.end <= outer.end;

/** The IR nodes that compute a statement's value: one per model and block instance. */
export function nodesOfStmt(a: Analysis, decl: Decl, stmt: Stmt, depth = 0): { model: IRModel; node: IRNode }[] {
  if (stmt.kind === "repeat") return [];
  const name = stmt.name.name;
  const out: { model: IRModel; node: IRNode }[] = [];
  for (const model of a.result.module.models) {
    const inStmt = model.nodes.filter((n) => within(n.span, stmt.span));
    let named = inStmt.filter((n) => (stmt.kind === "input" ? n.op === "input" : n.binding === name || n.binding?.endsWith(`/${name}`)));
    if (!named.length && decl.kind === "model" && model.name === decl.name.name && stmt.kind !== "input") {
      // The value's last step may be a block's node, whose span is in the block (perhaps in another file):
      // an output names its node; otherwise follow the statement's last node through the block nodes after it.
      // an output names its node; otherwise the statement's value is the node just before the first node of
      // a later statement (nodes are created in statement order, block nodes in between).
      const out = stmt.kind === "output" ? model.outputs.find((o) => o.name === name) : undefined;
      const others = flatStmts(decl.body).filter((x) => x !== stmt && x.kind !== "repeat");
      const indexIn = (pick: (x: Stmt) => boolean) => model.nodes.map((n, i) => (others.some((x) => pick(x) && within(n.span, x.span)) ? i : -1)).filter((i) => i >= 0);
      const later = indexIn((x) => x.span.start >= stmt.span.end);
      const earlier = indexIn((x) => x.span.end <= stmt.span.start);
      const j = (later.length ? Math.min(...later) : model.nodes.length) - 1;
      const last = out ? model.nodes.find((n) => n.id === out.node) : j > Math.max(-1, ...earlier) ? model.nodes[j] : undefined;
      if (last) named = [last];
    }
    if (named.length) {
      named.forEach((node) => out.push({ model, node }));
      continue;
    }
    // Otherwise the last node of the statement in each block instance (a binding that aliases another one
    // keeps the other one's label).
    const last = new Map<string, IRNode>();
    for (const n of inStmt) last.set(n.name.includes("/") ? n.name.slice(0, n.name.lastIndexOf("/")) : "", n);
    last.forEach((node) => out.push({ model, node }));
  }
  if (!out.length && depth < 8 && stmt.kind !== "input" && stmt.value?.kind === "name") {
    const def = definitionOf(decl, stmt.value.name, stmt.value.span.start);
    if (def && def !== stmt) return nodesOfStmt(a, decl, def, depth + 1);
  }
  return out;
}

/** The IR nodes of a layer call at `span` (the innermost call: one per block instance). */
export function nodesAt(a: Analysis, span: Span): { model: IRModel; node: IRNode }[] {
  const out: { model: IRModel; node: IRNode }[] = [];
  for (const model of a.result.module.models) {
    const hits = model.nodes.filter((n) => n.span.file === a.file && n.span.start <= span.start && n.span.end >= span.end && n.op !== "input");
    if (!hits.length) continue;
    const width = Math.min(...hits.map((n) => n.span.end - n.span.start));
    hits.filter((n) => n.span.end - n.span.start === width).forEach((node) => out.push({ model, node }));
  }
  return out;
}

/** Parameter count per layer name, per model. */
export function paramCounts(model: IRModel): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of model.params) m.set(p.layer, (m.get(p.layer) ?? 0) + p.shape.reduce((x, y) => x * y, 1));
  return m;
}

/** The path of an imported file as compile() named it (relative to the working directory). */
export function importTarget(a: Analysis, from: string): string {
  return path.resolve(path.dirname(a.file), from);
}

/** Every call and chain stage in expressions, with its `as` name: block call sites, in source order. */
function callSites(exprs: (Expr | undefined)[]): { callee: Name; alias?: Name }[] {
  const out: { callee: Name; alias?: Name }[] = [];
  for (const root of exprs) {
    walk(root, (e) => {
      if (e.kind === "call") out.push({ callee: e.callee });
      if (e.kind === "chain") for (const st of e.stages) out.push({ callee: st.callee, ...(st.alias ? { alias: st.alias } : {}) });
    });
  }
  return out.sort((x, y) => x.callee.span.start - y.callee.span.start);
}

/**
 * The nodes of the block instance a call in a model body creates (its layer-name prefix is the block's
 * name numbered Keras-style in call order, or the call's `as` name). Null inside repeat bodies and blocks,
 * where one call site makes several instances.
 */
export function blockInstance(a: Analysis, decl: Decl, callee: Name, alias?: Name): { model: IRModel; prefix: string; nodes: IRNode[] } | null {
  if (decl.kind !== "model") return null;
  const model = a.result.module.models.find((m) => m.name === decl.name.name);
  if (!model) return null;
  const top = decl.body.filter((x) => x.kind !== "repeat");
  const inRepeat = callSites(flatStmts(decl.body.filter((x) => x.kind === "repeat")).map((x) => (x.kind === "repeat" ? x.count : x.kind === "input" ? undefined : x.value)));
  if (inRepeat.some((c) => c.callee.name === callee.name)) return null;
  const sites = callSites(top.map((x) => (x.kind === "input" ? undefined : x.value)));
  const taken = new Set(sites.filter((c) => c.alias).map((c) => c.alias!.name));
  let n = 0;
  for (const c of sites) {
    if (c.callee.name !== callee.name) continue;
    let prefix = c.alias?.name;
    if (!prefix) {
      prefix = n === 0 ? callee.name : `${callee.name}_${n}`;
      while (taken.has(prefix)) prefix = `${callee.name}_${++n}`;
      n++;
    }
    if (c.callee.span.start === callee.span.start) {
      const nodes = model.nodes.filter((x) => x.name.startsWith(`${prefix}/`));
      return nodes.length ? { model, prefix, nodes } : null;
    }
  }
  return null;
}
