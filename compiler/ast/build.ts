// CST → AST, and syntax errors → diagnostics. The entry point is parseFile(); it never throws.
// The CST may be incomplete after error recovery, so every child is treated as possibly missing.
import type { CstNode, IToken } from "chevrotain";
import { lexText, MAX_NESTING, parseTokens } from "../../grammar/parser.js";
import * as T from "../../grammar/tokens.js";
import { diag, suggest, type Diagnostic } from "../diagnostics.js";
import type { AlternateDecl, Arg, BinaryOp, Decl, DimDecl, Expr, FieldDecl, FileAst, Name, ParamDecl, PhaseDecl, Setting, Span, Stage, Stmt, TensorType } from "./types.js";

type Children = Record<string, (CstNode | IToken)[] | undefined>;

class Builder {
  readonly diagnostics: Diagnostic[] = [];
  /** Declarations built so far, in the order they were built (build() sorts them). */
  private decls: Decl[] = [];
  private docs: IToken[];
  constructor(readonly file: string, readonly text: string, comments: IToken[]) {
    this.docs = comments.filter((c) => c.tokenType === T.DocComment);
  }

  span(start: number, end: number): Span {
    if (!Number.isFinite(start)) start = Number.isFinite(end) ? end : this.text.length;
    if (!Number.isFinite(end) || end < start) end = start;
    return { file: this.file, start, end: Math.min(end, this.text.length) };
  }
  tokSpan(t: IToken): Span {
    return this.span(t.startOffset, (t.endOffset ?? t.startOffset) + 1);
  }
  nodeSpan(n: CstNode): Span {
    const loc = n.location;
    return this.span(loc?.startOffset ?? NaN, (loc?.endOffset ?? NaN) + 1);
  }

  private ch(n: CstNode): Children {
    return n.children as Children;
  }
  private tok(n: CstNode, name: string, i = 0): IToken | undefined {
    const t = this.ch(n)[name]?.[i] as IToken | undefined;
    return t && !t.isInsertedInRecovery && Number.isFinite(t.startOffset) ? t : undefined;
  }
  private toks(n: CstNode, name: string): IToken[] {
    return ((this.ch(n)[name] ?? []) as IToken[]).filter((t) => !t.isInsertedInRecovery && Number.isFinite(t.startOffset));
  }
  private node(n: CstNode, name: string, i = 0): CstNode | undefined {
    return this.ch(n)[name]?.[i] as CstNode | undefined;
  }
  private nodes(n: CstNode, name: string): CstNode[] {
    return (this.ch(n)[name] ?? []) as CstNode[];
  }
  private name(t: IToken | undefined, fallback: Span): Name {
    return t ? { name: t.image, span: this.tokSpan(t) } : { name: "", span: fallback };
  }
  /** The doc comment (`///` lines) directly above a declaration starting at `offset`. */
  private docFor(offset: number): string | undefined {
    const lines: string[] = [];
    let at = offset;
    // The last doc comment starting before `offset` (the comments are in source order): a binary search, since
    // a file has as many declarations as it has doc comments, give or take.
    let lo = 0;
    let hi = this.docs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.docs[mid]!.startOffset < offset) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo - 1; i >= 0; i--) {
      const d = this.docs[i]!;
      if (d.startOffset >= at) continue;
      const between = this.text.slice(d.endOffset! + 1, at);
      if (between.trim() !== "" || (between.match(/\n/g)?.length ?? 0) > 1) break;
      lines.unshift(d.image.replace(/^\/\/\/ ?/, "").trimEnd()); // trailing spaces are layout (the formatter removes them)
      at = d.startOffset;
    }
    return lines.length ? lines.join("\n") : undefined;
  }

  /** One top-level declaration's CST (importDecl, modelDecl, …) → its AST, kept for build(). */
  decl(n: CstNode): void {
    switch (n.name) {
      case "importDecl":
        return void this.decls.push(this.importDecl(n));
      case "modelDecl":
        return void this.decls.push(this.modelDecl(n));
      case "blockDecl":
        return void this.decls.push(this.blockDecl(n));
      case "datasetDecl":
        return void this.decls.push(this.datasetDecl(n));
      case "trainDecl":
        return void this.decls.push(this.trainDecl(n));
    }
  }

  /** Forget the declarations built so far and what building them reported (the parse stopped: NN1007). */
  discard(): void {
    this.decls = [];
    this.diagnostics.length = 0;
  }

  /** The file's AST: the declarations handed to decl() while parsing, and those left in `csts`. */
  build(csts: CstNode[]): FileAst {
    for (const cst of csts) {
      for (const kind of ["importDecl", "modelDecl", "blockDecl", "datasetDecl", "trainDecl"]) for (const n of this.nodes(cst, kind)) this.decl(n);
    }
    const decls = this.decls;
    this.decls = [];
    decls.sort((a, b) => a.span.start - b.span.start);
    return { path: this.file, decls };
  }

  importDecl(n: CstNode): Decl {
    const span = this.nodeSpan(n);
    const str = this.tok(n, "String");
    return {
      kind: "import",
      names: this.toks(n, "Identifier").map((t) => this.name(t, span)),
      from: str ? this.stringValue(str) : "",
      fromSpan: str ? this.tokSpan(str) : span,
      span,
    };
  }

  modelDecl(n: CstNode): Decl {
    const span = this.nodeSpan(n);
    const doc = this.docFor(span.start);
    return { kind: "model", name: this.name(this.tok(n, "Identifier"), span), body: this.body(this.node(n, "body")), span, ...(doc ? { doc } : {}) };
  }

  blockDecl(n: CstNode): Decl {
    const span = this.nodeSpan(n);
    const doc = this.docFor(span.start);
    const params: ParamDecl[] = this.nodes(n, "paramDecl").map((p) => {
      const ps = this.nodeSpan(p);
      const e = this.node(p, "expression");
      return { name: this.name(this.tok(p, "Identifier"), ps), type: this.name(this.tok(p, "TypeName"), ps), ...(e ? { default: this.expression(e) } : {}), span: ps };
    });
    return { kind: "block", name: this.name(this.tok(n, "Identifier"), span), params, body: this.body(this.node(n, "body")), span, ...(doc ? { doc } : {}) };
  }

  datasetDecl(n: CstNode): Decl {
    const span = this.nodeSpan(n);
    const doc = this.docFor(span.start);
    const fields: FieldDecl[] = this.nodes(n, "fieldStmt").map((f) => {
      const fs = this.nodeSpan(f);
      const tt = this.node(f, "tensorType");
      const e = this.node(f, "expression");
      return {
        name: this.name(this.tok(f, "Identifier"), fs),
        type: tt ? this.tensorType(tt) : { dtype: { name: "", span: fs }, dims: null, span: fs },
        value: e ? this.expression(e) : { kind: "name", name: "", span: fs },
        span: fs,
      };
    });
    return { kind: "dataset", name: this.name(this.tok(n, "Identifier"), span), fields, settings: this.settings(n), span, ...(doc ? { doc } : {}) };
  }

  trainDecl(n: CstNode): Decl {
    const span = this.nodeSpan(n);
    const doc = this.docFor(span.start);
    const phases: PhaseDecl[] = this.nodes(n, "phaseDecl").map((p) => {
      const ps = this.nodeSpan(p);
      const pdoc = this.docFor(ps.start);
      return { name: this.name(this.tok(p, "Identifier"), ps), settings: this.settings(p), span: ps, ...(pdoc ? { doc: pdoc } : {}) };
    });
    const alternates: AlternateDecl[] = this.nodes(n, "alternateDecl").map((a) => ({
      span: this.nodeSpan(a),
      steps: this.nodes(a, "stepDecl").map((st) => {
        const ss = this.nodeSpan(st);
        const sdoc = this.docFor(ss.start);
        return { word: this.name(this.tok(st, "stepWord"), ss), name: this.name(this.tok(st, "Identifier"), ss), settings: this.settings(st), span: ss, ...(sdoc ? { doc: sdoc } : {}) };
      }),
    }));
    return {
      kind: "train",
      name: this.name(this.tok(n, "Identifier", 0), span),
      dataset: this.name(this.tok(n, "Identifier", 1), span),
      settings: this.settings(n),
      phases,
      alternates,
      span,
      ...(doc ? { doc } : {}),
    };
  }

  settings(n: CstNode): Setting[] {
    return this.nodes(n, "setting").map((s) => {
      const ss = this.nodeSpan(s);
      return { key: this.name(this.tok(s, "Identifier"), ss), args: this.nodes(s, "argument").map((a) => this.argument(a)), span: ss };
    });
  }

  body(n: CstNode | undefined): Stmt[] {
    if (!n) return [];
    const out: Stmt[] = [];
    for (const s of this.nodes(n, "statement")) {
      const st = this.statement(s);
      if (st) out.push(st);
    }
    return out;
  }

  statement(n: CstNode): Stmt | undefined {
    const c = this.ch(n);
    const inner = (Object.values(c).flat()[0] ?? undefined) as CstNode | IToken | undefined;
    if (!inner || !("children" in inner)) return undefined; // a lone ';'
    const span = this.nodeSpan(inner);
    switch (inner.name) {
      case "inputStmt": {
        const tt = this.node(inner, "tensorType");
        return { kind: "input", name: this.name(this.tok(inner, "Identifier"), span), ...(tt ? { type: this.tensorType(tt) } : {}), span };
      }
      case "outputStmt": {
        const e = this.node(inner, "expression");
        return { kind: "output", name: this.name(this.tok(inner, "Identifier"), span), ...(e ? { value: this.expression(e) } : {}), span };
      }
      case "layerStmt":
        return { kind: "layer", name: this.name(this.tok(inner, "Identifier"), span), value: this.exprOr(this.node(inner, "expression"), span), span };
      case "repeatStmt": {
        const idx = this.tok(inner, "Identifier");
        const count = this.node(inner, "additive");
        return {
          kind: "repeat",
          count: count ? this.additive(count) : { kind: "num", value: 0, isInt: true, span },
          ...(idx ? { index: this.name(idx, span) } : {}),
          body: this.body(this.node(inner, "body")),
          span,
        };
      }
      case "binding":
        return { kind: "bind", name: this.name(this.tok(inner, "Identifier"), span), value: this.exprOr(this.node(inner, "expression"), span), span };
    }
    return undefined;
  }

  tensorType(n: CstNode): TensorType {
    const span = this.nodeSpan(n);
    const dims: DimDecl[] | null = this.tok(n, "LBracket")
      ? this.nodes(n, "dimDecl").map((d) => {
          const ds = this.nodeSpan(d);
          const id = this.tok(d, "Identifier");
          const nums = this.toks(d, "Number");
          if (id) {
            const max = nums[0] ? Number(nums[0].image) : undefined;
            return { kind: "sym", name: id.image, value: NaN, ...(max !== undefined ? { max } : {}), span: ds };
          }
          return { kind: "const", name: "", value: nums[0] ? Number(nums[0].image) : NaN, span: ds };
        })
      : null;
    return { dtype: this.name(this.tok(n, "TypeName"), span), dims, span };
  }

  exprOr(n: CstNode | undefined, span: Span): Expr {
    return n ? this.expression(n) : { kind: "name", name: "", span };
  }

  expression(n: CstNode): Expr {
    const span = this.nodeSpan(n);
    const t = this.node(n, "ternary");
    const head = t ? this.ternary(t) : ({ kind: "name", name: "", span } as Expr);
    const stages = this.nodes(n, "stage").map((s) => this.stage(s));
    return stages.length ? { kind: "chain", head, stages, span } : head;
  }

  stage(n: CstNode): Stage {
    const span = this.nodeSpan(n);
    const ids = this.toks(n, "Identifier");
    const al = this.node(n, "argList");
    const alias = this.tok(n, "As") ? this.tok(n, "alias") : undefined;
    return { callee: this.name(ids[0], span), args: al ? this.argList(al) : null, ...(alias ? { alias: this.name(alias, span) } : {}), span };
  }

  ternary(n: CstNode): Expr {
    const span = this.nodeSpan(n);
    const c = this.node(n, "orExpr");
    const cond = c ? this.orExpr(c) : ({ kind: "name", name: "", span } as Expr);
    const branches = this.nodes(n, "expression");
    if (!this.tok(n, "Question")) return cond;
    return { kind: "ternary", cond, then: this.exprOr(branches[0], span), else: this.exprOr(branches[1], span), span };
  }

  orExpr(n: CstNode): Expr {
    const parts = this.nodes(n, "andExpr").map((a) => this.andExpr(a));
    return this.fold(parts, this.operators(n, ["Or"]), this.nodeSpan(n));
  }
  andExpr(n: CstNode): Expr {
    const parts = this.nodes(n, "notExpr").map((a) => this.notExpr(a));
    return this.fold(parts, this.operators(n, ["And"]), this.nodeSpan(n));
  }
  notExpr(n: CstNode): Expr {
    const span = this.nodeSpan(n);
    const not = this.tok(n, "Not");
    const inner = this.node(n, "notExpr");
    if (not && inner) return { kind: "unary", op: "not", operand: this.notExpr(inner), opSpan: this.tokSpan(not), span };
    const c = this.node(n, "comparison");
    return c ? this.comparison(c) : { kind: "name", name: "", span };
  }
  comparison(n: CstNode): Expr {
    const parts = this.nodes(n, "additive").map((a) => this.additive(a));
    const ops = this.operators(n, ["EqEq", "NotEq", "LtEq", "GtEq", "Lt", "Gt"]);
    return this.fold(parts, ops, this.nodeSpan(n));
  }
  additive(n: CstNode): Expr {
    const parts = this.nodes(n, "multiplicative").map((a) => this.multiplicative(a));
    return this.fold(parts, this.operators(n, ["Plus", "Minus"]), this.nodeSpan(n));
  }
  multiplicative(n: CstNode): Expr {
    const parts = this.nodes(n, "unary").map((a) => this.unary(a));
    return this.fold(parts, this.operators(n, ["Star", "Slash", "Percent", "At"]), this.nodeSpan(n));
  }
  private operators(n: CstNode, names: string[]): IToken[] {
    return names.flatMap((k) => this.toks(n, k)).sort((a, b) => a.startOffset - b.startOffset);
  }
  private fold(parts: Expr[], ops: IToken[], span: Span): Expr {
    if (parts.length === 0) return { kind: "name", name: "", span };
    let acc = parts[0]!;
    for (let i = 1; i < parts.length; i++) {
      const op = ops[i - 1];
      const right = parts[i]!;
      if (!op) break;
      acc = { kind: "binary", op: op.image as BinaryOp, left: acc, right, opSpan: this.tokSpan(op), span: this.span(acc.span.start, right.span.end) };
    }
    return acc;
  }

  unary(n: CstNode): Expr {
    const span = this.nodeSpan(n);
    const inner = this.node(n, "unary");
    const minus = this.tok(n, "Minus");
    if (minus && inner) {
      const operand = this.unary(inner);
      if (operand.kind === "num") return { ...operand, value: -operand.value, span };
      return { kind: "unary", op: "-", operand, opSpan: this.tokSpan(minus), span };
    }
    const p = this.node(n, "primary");
    return p ? this.primary(p) : { kind: "name", name: "", span };
  }

  primary(n: CstNode): Expr {
    const span = this.nodeSpan(n);
    const num = this.tok(n, "Number");
    if (num) {
      const value = Number(num.image);
      const isInt = /^\d+$/.test(num.image);
      if (!Number.isFinite(value) || (isInt && !Number.isSafeInteger(value))) this.diagnostics.push(diag("badNumber", span, { text: num.image }));
      return { kind: "num", value: Number.isFinite(value) ? value : 0, isInt: /^\d+$/.test(num.image), span };
    }
    const str = this.tok(n, "String");
    if (str) return { kind: "str", value: this.stringValue(str), span };
    if (this.tok(n, "True")) return { kind: "bool", value: true, span };
    if (this.tok(n, "False")) return { kind: "bool", value: false, span };
    const typeName = this.tok(n, "TypeName");
    if (typeName) return { kind: "name", name: typeName.image, span };
    const id = this.tok(n, "Identifier");
    if (id) {
      const al = this.node(n, "argList");
      if (this.ch(n)["LParen"]?.length) {
        return { kind: "call", callee: this.name(id, span), args: al ? this.argList(al) : [], span };
      }
      return { kind: "name", name: id.image, span };
    }
    const paren = this.node(n, "expression");
    if (paren && this.ch(n)["LParen"]?.length) return this.expression(paren);
    if (this.ch(n)["LBracket"]?.length) return { kind: "list", items: this.nodes(n, "expression").map((e) => this.expression(e)), span };
    return { kind: "name", name: "", span };
  }

  argList(n: CstNode): Arg[] {
    return this.nodes(n, "argument").map((a) => this.argument(a));
  }
  argument(n: CstNode): Arg {
    const span = this.nodeSpan(n);
    const name = this.tok(n, "Colon") ? this.tok(n, "Identifier") : undefined;
    return { ...(name ? { name: this.name(name, span) } : {}), value: this.exprOr(this.node(n, "expression"), span), span };
  }

  stringValue(t: IToken): string {
    if (t.tokenType === T.UnterminatedString) return t.image.slice(1);
    try {
      return JSON.parse(t.image) as string;
    } catch {
      return t.image.slice(1, -1);
    }
  }
}

export interface ParsedFile {
  ast: FileAst;
  diagnostics: Diagnostic[];
}

/**
 * Text → AST plus syntax diagnostics. Never throws. `onStage` (npm run bench:source) is called as each stage
 * ends: "lex", "parse" (which builds each declaration's AST as it goes), "ast" (the rest: diagnostics).
 */
export function parseFile(file: string, text: string, onStage?: (stage: string) => void): ParsedFile {
  const lexed = lexText(text);
  onStage?.("lex");
  const b = new Builder(file, text, lexed.groups.comments ?? []);
  // Each declaration becomes AST as soon as it is parsed, and its CST is dropped: memory stays that of the
  // tokens and the AST, not the CST of a whole file (about 200 MB per MB of source).
  const parsed = parseTokens(lexed, (cst) => b.decl(cst));
  if (parsed.tooDeep) b.discard();
  onStage?.("parse");
  const diagnostics: Diagnostic[] = [];
  if (parsed.tooDeep) diagnostics.push(diag("nestingTooDeep", b.tokSpan(parsed.tooDeep), { limit: MAX_NESTING }));
  for (const e of parsed.lexErrors) {
    const span = b.span(e.offset, e.offset + Math.max(1, e.kind === "char" ? 1 : e.length));
    if (e.kind === "string") diagnostics.push(diag("unterminatedString", b.span(e.offset, e.offset + e.length), {}));
    else if (e.kind === "comment") diagnostics.push(diag("unterminatedComment", b.span(e.offset, e.offset + 2), {}));
    else if (e.kind === "hash") diagnostics.push(diag("unexpectedChar", span, { text: "#", hint: "comments start with // (or /* … */ for several lines)" }));
    else diagnostics.push(diag("unexpectedChar", span, { text: text.slice(e.offset, e.offset + 1) }));
  }
  for (const e of parsed.parseErrors) {
    const t = e.token;
    if (e.name === "NotAllInputParsedException" || e.message.includes("--> EOF <--")) {
      diagnostics.push(diag("unexpectedDecl", b.tokSpan(t), { found: describeToken(t), ...declHint(t) }));
      continue;
    }
    const atEnd = t.tokenType.name === "EOF" || !Number.isFinite(t.startOffset);
    const prev = (e as unknown as { previousToken?: IToken }).previousToken;
    const prevOk = prev && Number.isFinite(prev.endOffset) && !prev.isInsertedInRecovery;
    // At the end of input, or when the offending token starts a later line, the mistake is just past the
    // previous token (a missing ")" at the end of a line): point there rather than at the next line.
    const newline = !atEnd && prevOk && text.slice(prev!.endOffset! + 1, t.startOffset).includes("\n");
    const span = atEnd || newline ? b.span(prevOk ? prev!.endOffset! + 1 : text.length, prevOk ? prev!.endOffset! + 1 : text.length) : b.tokSpan(t);
    diagnostics.push(diag("unexpectedToken", span, { found: describeToken(t) + (newline ? " on the next line" : ""), expected: expectedFrom(e) }));
  }
  for (const s of parsed.skipped) {
    diagnostics.push(diag("unexpectedDecl", b.tokSpan(s.token), { found: describeToken(s.token), ...declHint(s.token) }));
  }
  const ast = b.build(parsed.csts);
  diagnostics.push(...b.diagnostics);
  // An unterminated string swallows the rest of its line; what the parser then misses there is the same error.
  const strings = parsed.lexErrors.filter((e) => e.kind === "string");
  const relevant = diagnostics.filter((d) => d.code !== "NN1002" || !strings.some((s) => d.span.start >= s.offset && d.span.start <= s.offset + s.length));
  // One error per position is enough: recovery can report the same spot twice.
  const seen = new Set<string>();
  const unique = relevant.filter((d) => {
    const k = `${d.span.start}:${d.code}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  unique.sort((a, b2) => a.span.start - b2.span.start);
  onStage?.("ast");
  return { ast, diagnostics: unique };
}

const DECL_WORDS = ["model", "block", "dataset", "train", "import"];

/** A hint for something found where a declaration should start. */
function declHint(t: IToken): { hint?: string } {
  if (t.tokenType === T.RBrace) return { hint: "this } closes nothing: check the braces above" };
  if (t.tokenType === T.Identifier) {
    const s = suggest(t.image, DECL_WORDS);
    if (s) return { hint: `did you mean "${s}"?` };
  }
  return {};
}

function describeToken(t: IToken): string {
  if (t.tokenType.name === "EOF" || !Number.isFinite(t.startOffset)) return "end of file";
  const info = T.TOKENS.find((i) => i.token === t.tokenType);
  if (info?.scope === "keyword") return `keyword "${t.image}"`;
  if (t.tokenType === T.Identifier) return `name "${t.image}"`;
  if (t.tokenType === T.NumberLit) return `number ${t.image}`;
  if (t.tokenType === T.StringLit) return `string ${t.image}`;
  return `"${t.image}"`;
}

/** Chevrotain's message lists expected token sequences; turn them into words a user reads. */
function expectedFrom(e: { message: string; name: string }): string {
  const names = [...e.message.matchAll(/<?\[?([A-Za-z]+)\]?>?/g)].map((m) => m[1]!);
  const spelled = new Set<string>();
  for (const n of names) {
    const info = T.TOKENS.find((i) => i.token.name === n);
    if (!info) continue;
    if (info.spelling) spelled.add(info.scope === "keyword" ? info.spelling : `"${info.spelling}"`);
    else if (info.token === T.Identifier) spelled.add("a name");
    else if (info.token === T.NumberLit) spelled.add("a number");
    else if (info.token === T.StringLit) spelled.add("a string");
    else if (info.token === T.TypeName) spelled.add("a type (f32, i32, int, …)");
  }
  const list = [...spelled];
  if (spelled.has("a number") && spelled.has("a name")) return "an expression";
  if (list.length === 0) return e.name === "NoViableAltException" ? "an expression" : "something else";
  if (list.length > 6) return list.slice(0, 5).join(", ") + " or another token";
  return list.length === 1 ? list[0]! : list.slice(0, -1).join(", ") + " or " + list[list.length - 1];
}
