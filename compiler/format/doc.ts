// The formatter's printer: a parsed file (CST + tokens + comments) → a prettier Doc. Both `format()`
// (./index.ts, printed synchronously with prettier/doc's printDocToString) and the prettier plugin
// (./prettier.ts) print this one Doc, so width handling is prettier's and the two agree byte for byte.
//
// House style (spec/language.md §14): 2-space indent; one statement, field or setting per line; runs of
// settings aligned on their values; `->` chains on one line when they fit, else one stage per line with a
// leading `->`; argument lists, lists and dimensions broken one item per line only when they do not fit;
// repeat and phase bodies on one line when written so and they fit; `;` dropped (re-added between
// the items of a one-line body); at most one blank line kept wherever one was written; comments kept
// where they were (a trailing comment stays at the end of its line, a comment on its own line stays
// on its own line before what followed it).
import type { CstNode, IToken } from "chevrotain";
import { builders as b } from "prettier/doc";
import type { ParseResult } from "../../grammar/parser.js";
import * as T from "../../grammar/tokens.js";

export type Doc = b.Doc;
const { group, indent, line, softline, hardline, join, ifBreak, lineSuffix, breakParent, literalline, align } = b;

type Child = CstNode | IToken;

function isToken(c: Child): c is IToken {
  return (c as IToken).image !== undefined;
}
function startOf(c: Child): number {
  return isToken(c) ? c.startOffset : (c.location?.startOffset ?? NaN);
}

/** The tokens the formatter prints: every token but `;`, which it drops (and re-adds where one-line bodies need it). */
export function printedTokens(tokens: readonly IToken[]): IToken[] {
  return tokens.filter((t) => t.tokenType !== T.Semicolon);
}

/** Comment text as printed: trailing whitespace removed, line endings normalized. */
export function commentText(c: IToken): string {
  return c.image
    .split(/\r\n|\r|\n/)
    .map((l) => l.replace(/[ \t\f\uFEFF]+$/, ""))
    .join("\n");
}

class Printer {
  private readonly leading = new Map<IToken, IToken[]>();
  private readonly trailing = new Map<IToken, IToken[]>();
  /** Comments after the last token. */
  private readonly dangling: IToken[] = [];
  private readonly index = new Map<number, number>();
  /** Tokens whose trailing comments the enclosing item prints after itself, outside its groups. */
  private readonly held = new Set<IToken>();
  private readonly tokens: IToken[];
  /** Tokens the Doc follows with a possible line break (line, softline, hardline). */
  private readonly lineAfter = new Set<IToken>();
  /** The line Doc that may break after a token, where `after` was given it (boxed: fillSlots may make it hard). */
  private readonly lineDocs = new Map<IToken, Doc[]>();
  /** Trailing line comments, filled in once the whole Doc is built and `lineAfter` is known. */
  private readonly slots: { token: IToken; comment: IToken; doc: Doc[] }[] = [];
  /** Line breaks before leading comments that were on their own line, where the Doc has none. */
  private readonly pre: { token: IToken; doc: Doc[] }[] = [];

  constructor(
    private readonly text: string,
    tokens: readonly IToken[],
    comments: readonly IToken[],
  ) {
    this.tokens = printedTokens(tokens);
    this.tokens.forEach((t, i) => this.index.set(t.startOffset, i));
    // Attach each comment: to the token before it when on the same line (a trailing comment), else to
    // the token after it (a leading comment). Doc comments always lead: they document what follows.
    let ti = 0;
    for (const c of comments) {
      while (ti < this.tokens.length && this.tokens[ti]!.startOffset < c.startOffset) ti++;
      const prev = this.tokens[ti - 1];
      const next = this.tokens[ti];
      const prevTrail = prev ? (this.trailing.get(prev) ?? []) : [];
      const after = prevTrail.length ? prevTrail[prevTrail.length - 1]!.endOffset! + 1 : prev ? prev.endOffset! + 1 : 0;
      const sameLine = prev && !/[\r\n]/.test(this.text.slice(after, c.startOffset));
      // A block comment with a token after it on its line leads that token: `f(/* units */ 8)`.
      const lineEnd = /^[^\r\n]*/.exec(this.text.slice(c.endOffset! + 1))![0];
      const endsLine = c.tokenType !== T.BlockComment || !next || /^\s*(?:\/\/.*|\/\*.*|[,:)\]}].*)?$/.test(lineEnd);
      if (sameLine && endsLine && c.tokenType !== T.DocComment && !(this.leading.get(next!)?.length ?? 0)) {
        this.trailing.set(prev, [...prevTrail, c]);
      } else if (next) {
        this.leading.set(next, [...(this.leading.get(next) ?? []), c]);
      } else this.dangling.push(c);
    }
  }

  // ── tokens and comments ──────────────────────────────────────────────────────────────────────────

  private commentDoc(c: IToken): Doc {
    const lines = commentText(c).split("\n");
    return lines.length === 1 ? lines[0]! : join(literalline, lines);
  }

  private newlinesBetween(from: number, to: number): number {
    // Only \n counts, as for doc comments (compiler/ast/build.ts): a blank line ends a doc comment.
    return (this.text.slice(from, to).match(/\n/g) ?? []).length;
  }

  /** Leading comments, each followed by what separated it from the next thing (a space, a line, a blank line). */
  private leadingDoc(cs: IToken[], next: number): Doc[] {
    const out: Doc[] = [];
    const first = cs[0]!;
    const i = this.tokens.findIndex((t) => t.startOffset > first.startOffset);
    const prev = this.tokens[(i < 0 ? this.tokens.length : i) - 1];
    if (prev) {
      // A comment on its own line after a token the Doc does not break after starts a new line.
      const trail = this.trailing.get(prev);
      const from = trail?.length ? trail[trail.length - 1]!.endOffset! + 1 : prev.endOffset! + 1;
      if (this.newlinesBetween(from, first.startOffset) > 0) {
        const slot: Doc[] = [];
        this.pre.push({ token: prev, doc: slot });
        out.push(slot);
      }
    }
    cs.forEach((c, i) => {
      out.push(this.commentDoc(c));
      const to = cs[i + 1]?.startOffset ?? next;
      const nl = Math.max(c.tokenType === T.BlockComment ? 0 : 1, this.newlinesBetween(c.endOffset! + 1, to));
      out.push(nl === 0 ? " " : nl === 1 ? hardline : [hardline, hardline]);
    });
    return out;
  }

  /**
   * Trailing comments of `t`. A line comment after a token the Doc may break the line after stays there
   * (printed at the line's end, and the line is broken); after any other token it is followed by a
   * forced line break, so that it never moves past the tokens that followed it on its line.
   */
  private trailingDoc(t: IToken, cs: IToken[]): Doc[] {
    return cs.map((c) => {
      if (c.tokenType === T.BlockComment && !this.lineBreakAfter(c)) return [" ", this.commentDoc(c)];
      const slot: Doc[] = [];
      this.slots.push({ token: t, comment: c, doc: slot });
      return slot;
    });
  }

  private fillSlots(): void {
    for (const { token, doc } of this.pre) if (!this.lineAfter.has(token) && this.trailing.get(token)?.at(-1)?.tokenType !== T.LineComment) doc.push(hardline);
    for (const { token, comment, doc } of this.slots) {
      // A block comment that ended its line keeps its line break (the Doc's own, forced, or a hard one after a
      // token the Doc never breaks after: `f32 /* c */⏎[4]`): printed mid-line, it would lead the next token on
      // the next run (`f( /* c */[4])` → `f(/* c */ [4])`: not idempotent).
      // Where the Doc's own line after the token is known, that line is made hard: a breakParent here would also
      // break the groups that merely contain the token (`dense(4 * width /* c */⏎)` → `4⏎* width`: not idempotent).
      if (comment.tokenType === T.BlockComment) {
        const box = this.lineDocs.get(token);
        if (box) {
          box[0] = hardline;
          doc.push(" ", this.commentDoc(comment));
        } else doc.push(" ", this.commentDoc(comment), this.lineAfter.has(token) ? breakParent : hardline);
      }
      else if (this.lineAfter.has(token)) doc.push(lineSuffix([" ", this.commentDoc(comment)]), breakParent);
      else doc.push(" ", this.commentDoc(comment), hardline);
    }
  }

  /** Whether a line break follows comment `c` in the source before the next token (or comment). */
  private lineBreakAfter(c: IToken): boolean {
    return /^[ \t]*(?:\r?\n|$)/.test(this.text.slice(c.endOffset! + 1));
  }

  /** Note that the Doc may break the line after `t`; returns `d`. */
  private after<D extends Doc>(t: IToken | undefined, d: D): D {
    if (!t) return d;
    this.lineAfter.add(t);
    if (d === "") return d;
    // boxed, so that a line-ending block comment after `t` can make this very line hard (fillSlots)
    const box: Doc[] = [d];
    this.lineDocs.set(t, box);
    return box as unknown as D;
  }
  /** Note that the Doc may break the line before `t` (after the token printed before it); returns `d`. */
  private before<D extends Doc>(t: IToken | undefined, d: D): D {
    const i = t ? this.index.get(t.startOffset) : undefined;
    return this.after(i === undefined ? undefined : this.tokens[i - 1], d);
  }

  /** A token with its comments. */
  tk(t: IToken | undefined): Doc {
    if (!t) return "";
    const lead = this.leading.get(t);
    const trail = this.held.has(t) ? undefined : this.trailing.get(t);
    if (!lead && !trail) return t.image;
    return [...(lead ? this.leadingDoc(lead, t.startOffset) : []), t.image, ...(trail ? this.trailingDoc(t, trail) : [])];
  }

  /** Where a token's text, including its leading comments, starts. */
  private textStart(t: IToken): number {
    return this.leading.get(t)?.[0]?.startOffset ?? t.startOffset;
  }

  /** Whether the source has a blank line before this token (and its leading comments). */
  private blankBefore(t: IToken | undefined): boolean {
    if (!t) return false;
    const i = this.index.get(t.startOffset) ?? 0;
    const prev = this.tokens[i - 1];
    if (!prev) return false;
    const trail = this.trailing.get(prev);
    const from = trail?.length ? trail[trail.length - 1]!.endOffset! + 1 : prev.endOffset! + 1;
    return this.newlinesBetween(from, this.textStart(t)) >= 2;
  }

  private firstToken(n: Child): IToken | undefined {
    if (isToken(n)) return n;
    const i = this.index.get(n.location?.startOffset ?? NaN);
    return i === undefined ? undefined : this.tokens[i];
  }
  private lastToken(n: Child): IToken | undefined {
    if (isToken(n)) return n;
    const end = n.location?.endOffset;
    if (end === undefined || !Number.isFinite(end)) return undefined;
    // The last printed token ending at or before `end` (a `;` may end the node).
    let lo = 0;
    let hi = this.tokens.length - 1;
    let best: IToken | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const t = this.tokens[mid]!;
      if (t.endOffset! <= end) {
        best = t;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best && best.startOffset >= (n.location?.startOffset ?? 0) ? best : undefined;
  }

  /** An item of a body (statement, setting, field, phase): its trailing comment goes after it, outside its groups. */
  private item(n: Child, print: () => Doc): Doc {
    const last = this.lastToken(n);
    const trail = last ? this.trailing.get(last) : undefined;
    if (!last || !trail) return print();
    this.held.add(last);
    const d = print();
    this.held.delete(last);
    return [d, ...this.trailingDoc(last, trail)];
  }

  // ── CST access ───────────────────────────────────────────────────────────────────────────────────

  private kids(n: CstNode | undefined, name: string): Child[] {
    return ((n?.children as Record<string, Child[]>)?.[name] ?? []).filter((c) => Number.isFinite(startOf(c)));
  }
  private tok(n: CstNode | undefined, name: string, i = 0): IToken | undefined {
    return this.kids(n, name)[i] as IToken | undefined;
  }
  private toks(n: CstNode | undefined, name: string): IToken[] {
    return this.kids(n, name) as IToken[];
  }
  private node(n: CstNode | undefined, name: string, i = 0): CstNode | undefined {
    return (n?.children as Record<string, CstNode[]>)?.[name]?.[i];
  }
  private nodes(n: CstNode | undefined, name: string): CstNode[] {
    return (n?.children as Record<string, CstNode[]>)?.[name] ?? [];
  }
  /** All children of a node in source order. */
  private ordered(n: CstNode | undefined, names?: string[]): Child[] {
    if (!n) return [];
    const all: Child[] = [];
    for (const [k, v] of Object.entries(n.children as Record<string, Child[]>)) if (!names || names.includes(k)) all.push(...v);
    return all.filter((c) => Number.isFinite(startOf(c))).sort((x, y) => startOf(x) - startOf(y));
  }

  // ── helpers ──────────────────────────────────────────────────────────────────────────────────────

  /** `open item, item close`: on one line if it fits, else one item per line. */
  private delimited(open: IToken | undefined, items: Doc[], commas: IToken[], close: IToken | undefined): Doc {
    // A comment after the closing token follows the whole list, so that it does not break the list.
    const trail = close && !this.held.has(close) ? this.trailing.get(close) : undefined;
    if (!trail) return this.delimitedList(open, items, commas, close);
    this.held.add(close!);
    const d = this.delimitedList(open, items, commas, close);
    this.held.delete(close!);
    return [d, ...this.trailingDoc(close!, trail)];
  }

  /** Items with their commas, each comma followed by a line (a space when the group fits). */
  private commaSeparated(items: Doc[], commas: IToken[]): Doc[] {
    const inner: Doc[] = [];
    items.forEach((d, i) => {
      inner.push(d);
      if (i < items.length - 1) inner.push(this.tk(commas[i]), this.after(commas[i], line));
    });
    return inner;
  }

  private delimitedList(open: IToken | undefined, items: Doc[], commas: IToken[], close: IToken | undefined): Doc {
    const inner = this.commaSeparated(items, commas);
    this.after(open, "");
    this.before(close, "");
    const closeLead = close ? this.leading.get(close) : undefined;
    if (closeLead?.length) {
      // Comments before the closing token stay inside the list, after its last item.
      this.leading.delete(close!);
      const comments = this.leadingDoc(closeLead, close!.startOffset);
      comments.pop();
      const d = group([this.tk(open), indent([softline, ...inner, items.length ? hardline : "", ...comments]), hardline, this.tk(close)]);
      this.leading.set(close!, closeLead);
      return d;
    }
    if (!items.length) return [this.tk(open), this.tk(close)];
    // the lines after `(` and before `)`, known to after/before: a line-ending block comment there hardens its own
    return group([this.tk(open), indent([this.after(open, softline), ...inner]), this.before(close, softline), this.tk(close)]);
  }

  /**
   * A `{ … }` body of items. `oneLine`: may stay on one line (repeat and phase bodies written on one
   * line); otherwise one item per line.
   */
  private braced(open: IToken | undefined, items: Child[], printItem: (c: Child, i: number) => Doc, close: IToken | undefined, oneLine = false): Doc {
    const parts: Doc[] = [];
    items.forEach((c, i) => {
      if (i > 0) parts.push(this.before(this.firstToken(c), oneLine ? [ifBreak("", ";"), line] : hardline));
      if (i > 0 && this.blankBefore(this.firstToken(c))) parts.push(oneLine ? [breakParent, softline] : hardline);
      parts.push(printItem(c, i));
    });
    const closeLead = close ? this.leading.get(close) : undefined;
    let closing: Doc[] = [];
    if (closeLead?.length) {
      const blank = items.length > 0 && this.blankBefore(close);
      this.leading.delete(close!);
      const comments = this.leadingDoc(closeLead, close!.startOffset);
      comments.pop();
      closing = [items.length ? hardline : "", blank ? hardline : "", ...comments, breakParent];
    }
    const closeDoc = this.tk(close);
    if (closeLead?.length) this.leading.set(close!, closeLead);
    if (!items.length && !closing.length) {
      const spaced = open && this.trailing.get(open)?.at(-1)?.tokenType === T.BlockComment;
      return [this.tk(open), spaced ? " " : "", closeDoc];
    }
    const sep = oneLine ? line : hardline;
    this.after(open, "");
    this.before(close, "");
    return group([this.tk(open), indent([sep, ...parts, ...closing]), sep, closeDoc]);
  }

  /** Whether the source has no line break between `{` and what follows it. */
  private writtenOnOneLine(open: IToken | undefined): boolean {
    if (!open) return false;
    const i = this.index.get(open.startOffset);
    const next = i === undefined ? undefined : this.tokens[i + 1];
    if (!next) return false;
    return this.newlinesBetween(open.endOffset! + 1, this.textStart(next)) === 0;
  }

  // ── the grammar ──────────────────────────────────────────────────────────────────────────────────

  file(csts: CstNode[]): Doc {
    const decls = csts.flatMap((c) => this.ordered(c));
    const parts: Doc[] = [];
    decls.forEach((d, i) => {
      if (i > 0) parts.push(this.before(this.firstToken(d), hardline));
      if (i > 0 && this.blankBefore(this.firstToken(d))) parts.push(hardline);
      parts.push(this.decl(d as CstNode));
    });
    if (this.dangling.length) {
      const last = this.tokens[this.tokens.length - 1];
      const from = last ? (this.trailing.get(last)?.at(-1)?.endOffset ?? last.endOffset!) + 1 : 0;
      const nl = last ? this.newlinesBetween(from, this.dangling[0]!.startOffset) : 0;
      if (last) parts.push(nl >= 2 ? [hardline, hardline] : hardline);
      const comments = this.leadingDoc(this.dangling, this.text.length);
      comments.pop();
      parts.push(...comments);
    }
    this.after(this.tokens[this.tokens.length - 1], "");
    this.fillSlots();
    if (!parts.length) return "";
    return [...parts, hardline];
  }

  private decl(n: CstNode): Doc {
    switch (n.name) {
      case "importDecl":
        return this.importDecl(n);
      case "modelDecl":
        return [this.tk(this.tok(n, "Model")), " ", this.tk(this.tok(n, "Identifier")), " ", this.body(n)];
      case "blockDecl": {
        const params = this.nodes(n, "paramDecl").map((p) => this.param(p));
        return [this.tk(this.tok(n, "Block")), " ", this.tk(this.tok(n, "Identifier")), this.delimited(this.tok(n, "LParen"), params, this.toks(n, "Comma"), this.tok(n, "RParen")), " ", this.body(n)];
      }
      case "datasetDecl":
        return [this.tk(this.tok(n, "Dataset")), " ", this.tk(this.tok(n, "Identifier")), " ", this.settingsBody(n, ["fieldStmt", "setting"], false)];
      case "trainDecl":
        return [
          this.tk(this.tok(n, "Train")), " ", this.tk(this.tok(n, "Identifier", 0)), " ", this.tk(this.tok(n, "On")), " ", this.tk(this.tok(n, "Identifier", 1)), " ",
          this.settingsBody(n, ["phaseDecl", "alternateDecl", "setting"], false),
        ];
      default:
        throw new Error(`formatter: unexpected declaration ${n.name}`);
    }
  }

  private importDecl(n: CstNode): Doc {
    const names = this.toks(n, "Identifier").map((t) => this.tk(t));
    return [this.tk(this.tok(n, "Import")), " ", this.delimitedSpaced(this.tok(n, "LBrace"), names, this.toks(n, "Comma"), this.tok(n, "RBrace")), " ", this.tk(this.tok(n, "From")), " ", this.tk(this.tok(n, "String"))];
  }

  /** `{ a, b }` with spaces inside when on one line (import lists). */
  private delimitedSpaced(open: IToken | undefined, items: Doc[], commas: IToken[], close: IToken | undefined): Doc {
    const inner = this.commaSeparated(items, commas);
    this.after(open, "");
    this.before(close, "");
    return group([this.tk(open), indent([line, ...inner]), line, this.tk(close)]);
  }

  private param(p: CstNode): Doc {
    const e = this.node(p, "expression");
    return [this.tk(this.tok(p, "Identifier")), this.tk(this.tok(p, "Colon")), " ", this.tk(this.tok(p, "TypeName")), ...(e ? [" ", this.tk(this.tok(p, "Equals")), " ", this.expression(e)] : [])];
  }

  /** The `{ statements }` of a model, block or repeat. */
  private body(n: CstNode, oneLine = false): Doc {
    const stmts = this.nodes(this.node(n, "body"), "statement")
      .map((s) => this.ordered(s)[0])
      .filter((s): s is CstNode => !!s && !isToken(s));
    return this.braced(this.tok(n, "LBrace"), stmts, (s) => this.item(s, () => this.statement(s as CstNode)), this.tok(n, "RBrace"), oneLine);
  }

  private statement(s: CstNode): Doc {
    const id = this.tok(s, "Identifier");
    switch (s.name) {
      case "inputStmt": {
        const tt = this.node(s, "tensorType");
        return [this.tk(this.tok(s, "Input")), " ", this.tk(id), ...(tt ? [this.tk(this.tok(s, "Colon")), " ", this.tensorType(tt)] : [])];
      }
      case "outputStmt": {
        const e = this.node(s, "expression");
        return [this.tk(this.tok(s, "Output")), " ", this.tk(id), ...(e ? [" ", this.tk(this.tok(s, "Equals")), " ", this.expression(e)] : [])];
      }
      case "layerStmt":
        return [this.tk(this.tok(s, "Layer")), " ", this.tk(id), " ", this.tk(this.tok(s, "Equals")), " ", this.expression(this.node(s, "expression"))];
      case "binding":
        return [this.tk(id), " ", this.tk(this.tok(s, "Equals")), " ", this.expression(this.node(s, "expression"))];
      case "repeatStmt": {
        const as = this.tok(s, "As");
        return [this.tk(this.tok(s, "Repeat")), " ", this.additive(this.node(s, "additive")), ...(as ? [" ", this.tk(as), " ", this.tk(id)] : []), " ", this.body(s, this.writtenOnOneLine(this.tok(s, "LBrace")))];
      }
      default:
        throw new Error(`formatter: unexpected statement ${s.name}`);
    }
  }

  private tensorType(n: CstNode): Doc {
    const lb = this.tok(n, "LBracket");
    const dims = this.nodes(n, "dimDecl").map((d) => {
      const id = this.tok(d, "Identifier");
      const le = this.tok(d, "LtEq");
      if (!id) return this.tk(this.tok(d, "Number"));
      return [this.tk(id), ...(le ? [" ", this.tk(le), " ", this.tk(this.tok(d, "Number"))] : [])];
    });
    return [this.tk(this.tok(n, "TypeName")), lb ? this.delimited(lb, dims, this.toks(n, "Comma"), this.tok(n, "RBracket")) : ""];
  }

  /** Settings and fields (dataset), settings and phases (train) or settings (phase), values aligned per run. */
  private settingsBody(n: CstNode, names: string[], oneLine: boolean): Doc {
    const items = this.ordered(n, names);
    // A run: consecutive settings with no blank line between them; their values start in one column.
    const width = new Map<Child, number>();
    let run: CstNode[] = [];
    const flush = () => {
      const w = Math.max(...run.map((s) => this.tok(s, "Identifier")?.image.length ?? 0));
      for (const s of run) width.set(s, w);
      run = [];
    };
    for (const c of items) {
      const s = c as CstNode;
      if (s.name !== "setting" || (run.length && this.blankBefore(this.firstToken(s)))) flush();
      if (s.name === "setting") run.push(s);
    }
    flush();
    return this.braced(
      this.tok(n, "LBrace"),
      items,
      (c) => {
        const s = c as CstNode;
        if (s.name === "setting") return this.item(s, () => this.setting(s, width.get(s) ?? 0));
        if (s.name === "fieldStmt") return this.item(s, () => this.field(s));
        if (s.name === "alternateDecl") return this.item(s, () => this.alternate(s));
        return this.item(s, () => this.phase(s));
      },
      this.tok(n, "RBrace"),
      oneLine,
    );
  }

  private phase(n: CstNode): Doc {
    return [this.tk(this.tok(n, "Phase")), " ", this.tk(this.tok(n, "Identifier")), " ", this.settingsBody(n, ["setting"], this.writtenOnOneLine(this.tok(n, "LBrace")))];
  }

  /** `alternate { step NAME { … } … }`: one step per line group, like phases. */
  private alternate(n: CstNode): Doc {
    const steps = this.ordered(n, ["stepDecl"]);
    return [this.tk(this.tok(n, "Alternate")), " ", this.braced(this.tok(n, "LBrace"), steps, (c) => this.item(c, () => this.step(c as CstNode)), this.tok(n, "RBrace"))];
  }

  private step(n: CstNode): Doc {
    return [this.tk(this.tok(n, "stepWord")), " ", this.tk(this.tok(n, "Identifier")), " ", this.settingsBody(n, ["setting"], this.writtenOnOneLine(this.tok(n, "LBrace")))];
  }

  private field(n: CstNode): Doc {
    return [
      this.tk(this.tok(n, "Field")), " ", this.tk(this.tok(n, "Identifier")), this.tk(this.tok(n, "Colon")), " ", this.tensorType(this.node(n, "tensorType")!),
      " ", this.tk(this.tok(n, "Equals")), " ", this.expression(this.node(n, "expression")),
    ];
  }

  private setting(n: CstNode, width: number): Doc {
    const key = this.tok(n, "Identifier");
    const pad = Math.max(1, width - (key?.image.length ?? 0) + 1);
    const args = this.nodes(n, "argument").map((a) => this.argument(a));
    const commas = this.toks(n, "Comma");
    const parts: Doc[] = [];
    args.forEach((a, i) => {
      parts.push(a);
      if (i < args.length - 1) parts.push(this.tk(commas[i]), this.after(commas[i], line));
    });
    // One-line phase bodies print a single space after the key; broken ones align.
    const gap = pad === 1 ? " " : ifBreak(" ".repeat(pad), " ");
    return [this.tk(key), gap, group(align(width + 1, parts))];
  }

  // ── expressions ──────────────────────────────────────────────────────────────────────────────────

  expression(n: CstNode | undefined): Doc {
    if (!n) return "";
    const head = this.ternary(this.node(n, "ternary"));
    const stages = this.nodes(n, "stage");
    if (!stages.length) return head;
    const arrows = this.toks(n, "Arrow");
    return group([head, indent(stages.map((s, i) => [this.before(arrows[i], line), this.tk(arrows[i]), " ", this.stage(s)]))]);
  }

  private stage(n: CstNode): Doc {
    const ids = this.toks(n, "Identifier");
    const as = this.tok(n, "As");
    const lp = this.tok(n, "LParen");
    return [this.tk(ids[0]), lp ? this.args(lp, this.node(n, "argList"), this.tok(n, "RParen")) : "", ...(as ? [" ", this.tk(as), " ", this.tk(this.tok(n, "alias"))] : [])];
  }

  private args(lp: IToken, list: CstNode | undefined, rp: IToken | undefined): Doc {
    return this.delimited(lp, this.nodes(list, "argument").map((a) => this.argument(a)), this.toks(list, "Comma"), rp);
  }

  private argument(n: CstNode): Doc {
    const name = this.tok(n, "Identifier");
    return [...(name ? [this.tk(name), this.tk(this.tok(n, "Colon")), " "] : []), this.expression(this.node(n, "expression"))];
  }

  private ternary(n: CstNode | undefined): Doc {
    const cond = this.binary(this.node(n, "orExpr"));
    const q = this.tok(n, "Question");
    if (!q) return cond;
    const [a, e] = this.nodes(n, "expression");
    const colon = this.tok(n, "Colon");
    return group([cond, indent([this.before(q, line), this.tk(q), " ", this.expression(a), this.before(colon, line), this.tk(colon), " ", this.expression(e)])]);
  }

  /**
   * or, and, comparison, additive, multiplicative: operands and operators in source order, spaced; when too
   * long, broken before the operators (indented), like a chain. `not` is followed by one space.
   */
  private binary(n: CstNode | undefined): Doc {
    if (!n) return "";
    const kids = this.ordered(n);
    const operand = (c: Child | undefined): Doc => (!c || isToken(c) ? "" : c.name === "unary" ? this.unary(c) : this.binary(c));
    const not = n.name === "notExpr" ? this.tok(n, "Not") : undefined;
    if (not) return [this.tk(not), " ", operand(kids[1])];
    const first = operand(kids[0]);
    if (kids.length === 1) return first;
    const rest: Doc[] = [];
    for (let i = 1; i < kids.length; i += 2) {
      const op = kids[i] as IToken;
      rest.push(this.before(op, line), this.tk(op), " ", operand(kids[i + 1]));
    }
    return group([first, indent(rest)]);
  }

  private additive(n: CstNode | undefined): Doc {
    return this.binary(n);
  }

  private unary(n: CstNode): Doc {
    const minus = this.tok(n, "Minus");
    if (minus) return [this.tk(minus), this.unary(this.node(n, "unary")!)];
    return this.primary(this.node(n, "primary")!);
  }

  private primary(n: CstNode): Doc {
    const lb = this.tok(n, "LBracket");
    if (lb) return this.delimited(lb, this.nodes(n, "expression").map((e) => this.expression(e)), this.toks(n, "Comma"), this.tok(n, "RBracket"));
    const id = this.tok(n, "Identifier");
    const lp = this.tok(n, "LParen");
    if (id) return [this.tk(id), lp ? this.args(lp, this.node(n, "argList"), this.tok(n, "RParen")) : ""];
    if (lp) return [this.tk(lp), this.expression(this.node(n, "expression")), this.tk(this.tok(n, "RParen"))];
    const t = this.ordered(n).find(isToken);
    return this.tk(t);
  }
}

/** The Doc of a file that parsed without errors (the caller checks). */
export function fileDoc(text: string, parsed: ParseResult): Doc {
  return new Printer(text, parsed.tokens, parsed.comments).file(parsed.csts);
}
