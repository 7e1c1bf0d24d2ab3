// The language server (`nnetc lsp`): a document store, the editor features as functions of an Analysis
// (compiler/lsp/analysis.ts), and startServer(), which wires them to an LSP connection. Diagnostics come
// from compile(), the call the CLI makes, so codes and spans are the CLI's.
import { findConfig, loadProjectPlugins } from "../plugin/load.js";
import type { Diagnostic } from "../diagnostics.js";
import { readSource } from "../read_source.js";
import { pathChecker, projectRoot, ROOT_ENV } from "../root.js";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { TextDocument } from "vscode-languageserver-textdocument";
import { SHARE_ENV, Worker } from "node:worker_threads";
import type * as L from "vscode-languageserver";
import type { Decl, FileAst, Span } from "../ast/types.js";
import { format } from "../format/index.js";
import { compile, parse, type Host } from "../index.js";
import { fmtShape } from "../ir/dims.js";
import { OP_NAMES, OPS, type OpKind } from "../ir/ops.js";
import { formatSignature, type ParamSpec, type Signature } from "../ir/signature.js";
import { LOSSES, METRICS, OPTIMIZERS, PREPROCESS, SCHEDULES, SETTINGS, SOURCES } from "../plan/tables.js";
import { SourceFile } from "../source.js";
import { KEYWORDS } from "../../grammar/tokens.js";
import { BUILTINS, isBuiltin } from "../lower/values.js";
import { checkJob, WORKER_FLAG, type CheckJob, type CheckResult } from "./worker.js";
import { blockInstance, definitionOf, flatStmts, importTarget, locate, nodesAt, nodesOfStmt, paramCounts, type Analysis } from "./analysis.js";

// LSP enum values (the protocol's numbers), so this module needs no runtime import of the protocol library.
const Severity = { error: 1, warning: 2 } as const;
const SymbolKind = { Module: 2, Class: 5, Function: 12, Variable: 13, Field: 8, Struct: 23, Event: 24, Namespace: 3 } as const;
const ItemKind = { Function: 3, Field: 5, Variable: 6, Class: 7, Module: 9, Property: 10, Value: 12, Keyword: 14, EnumMember: 20, Struct: 22 } as const;

/** A file: URI as a path; other URIs (untitled:…) are used as they are. */
export function uriToPath(uri: string): string {
  return uri.startsWith("file:") ? fileURLToPath(uri) : uri;
}
export function pathToUri(file: string): string {
  return /^[a-z][a-z0-9+.-]+:/i.test(file) && !/^[a-z]:[\\/]/i.test(file) ? file : pathToFileURL(path.resolve(file)).href;
}

function readDisk(file: string): ReturnType<typeof readSource> {
  return readSource(file);
}

/** Open documents and the analyses of their current versions. Open documents win over the disk. */
export class Workspace {
  readonly docs = new Map<string, TextDocument>();
  private cache = new Map<string, { version: number; analysis: Analysis }>();
  /** The files (absolute paths) each document's last analysis read: itself and what it imports. */
  readonly reads = new Map<string, Set<string>>();
  /** The editor's workspace folders (absolute paths): a document's project root is the one holding it (compiler/root.ts). */
  workspaceFolders: string[] = [];
  constructor(private readonly disk: Host["readFile"] = readDisk) {}

  /** The host for a document: open documents over the disk, paths confined to its project root. */
  hostFor(file: string): Host {
    const abs = path.resolve(file);
    const folder = this.workspaceFolders.filter((w) => abs === w || abs.startsWith(w.endsWith(path.sep) ? w : w + path.sep)).sort((a, b) => b.length - a.length)[0];
    // nnetc --root DIR lsp (which sets NNETC_ROOT) and NNETC_ROOT win over the workspace folder, as in the CLI
    const root = projectRoot(abs, folder && !process.env[ROOT_ENV] ? { dir: folder, origin: "workspace" } : undefined);
    return { readFile: this.host.readFile, checkPath: pathChecker(root) };
  }

  set(doc: TextDocument): void {
    this.docs.set(doc.uri, doc);
    this.cache.clear(); // another document may import this one
  }
  /** Forget every analysis (the tables changed: a project's plugins were loaded or replaced). */
  invalidate(): void {
    this.cache.clear();
  }
  close(uri: string): void {
    this.docs.delete(uri);
    this.reads.delete(uri);
    this.cache.clear();
  }
  private byPath(file: string): TextDocument | undefined {
    const abs = path.resolve(file);
    for (const d of this.docs.values()) if (uriToPath(d.uri) === abs || d.uri === file) return d;
    return undefined;
  }
  readonly host: Host = {
    readFile: (file) => {
      const d = this.byPath(file);
      return d ? { text: d.getText() } : this.disk(path.resolve(file));
    },
  };

  /** The analysis of a document: open, or else read from the disk. */
  analyze(uri: string): Analysis | null {
    const doc = this.docs.get(uri);
    const version = doc?.version ?? -1;
    const hit = this.cache.get(uri);
    if (hit && hit.version === version) return hit.analysis;
    const file = uriToPath(uri);
    const r = doc ? { text: doc.getText() } : this.disk(file);
    if ("error" in r) return null;
    const analysis = analyzeText(file, r.text, /^[a-z][a-z0-9+.-]+:/i.test(file) ? this.host : this.hostFor(file));
    this.cache.set(uri, { version, analysis });
    this.reads.set(uri, new Set([...analysis.result.sources.keys()].map((k) => path.resolve(k))));
    return analysis;
  }
  /**
   * What document symbols need (the AST and the source) without compiling: the current version's analysis
   * when there is one, else a parse of the document (cheaper than a check, which runs in the worker).
   */
  outline(uri: string): Pick<Analysis, "ast" | "source"> | null {
    const doc = this.docs.get(uri);
    const hit = this.cache.get(uri);
    if (hit && hit.version === (doc?.version ?? -1)) return hit.analysis;
    if (!doc) return this.analyze(uri);
    const name = path.normalize(uriToPath(uri));
    const text = doc.getText();
    return { ast: parse(name, text).ast, source: new SourceFile(name, text) };
  }
}

export function analyzeText(file: string, text: string, host: Host): Analysis {
  const result = compile(file, text, host);
  const name = path.normalize(file);
  const source = result.sources.get(name) ?? new SourceFile(file, text);
  let ast: FileAst | undefined;
  // The AST is parsed again only when a feature asks for it: publishing diagnostics after an edit does not.
  return {
    file: name,
    text,
    result,
    source,
    get ast() {
      return (ast ??= parse(name, text).ast);
    },
  };
}

// ── diagnostics ───────────────────────────────────────────────────────────────────────────────────

function range(src: SourceFile, start: number, end: number): L.Range {
  const a = src.position(start);
  const b = src.position(Math.max(start, end));
  return { start: { line: a.line - 1, character: a.col - 1 }, end: { line: b.line - 1, character: b.col - 1 } };
}

function sourceOf(a: Analysis, file: string): SourceFile | undefined {
  if (file === a.file) return a.source;
  const abs = path.resolve(file);
  for (const [k, s] of a.result.sources) if (path.resolve(k) === abs) return s;
  return undefined;
}

function location(a: Analysis, span: Span): L.Location | null {
  const src = sourceOf(a, span.file);
  return src ? { uri: pathToUri(span.file === a.file ? a.file : path.resolve(span.file)), range: range(src, span.start, span.end) } : null;
}

/**
 * The document's diagnostics as LSP diagnostics: the CLI's codes, messages, hints and spans. A problem in an
 * imported file is shown on the `import` that (directly or not) brings it in, with its own location.
 */
export function lspDiagnostics(a: Analysis): L.Diagnostic[] {
  const imports = () => a.ast.decls.filter((d): d is Extract<Decl, { kind: "import" }> => d.kind === "import");
  const out: L.Diagnostic[] = [];
  for (const d of a.result.diagnostics) {
    const own = d.span.file === a.file;
    const x: L.Diagnostic = {
      range: range(a.source, d.span.start, d.span.end),
      severity: Severity[d.severity],
      code: d.code,
      source: "nnetc",
      message: d.hint ? `${d.message}\nhint: ${d.hint}` : d.message,
    };
    if (!own) {
      const via = imports().find((i) => importTarget(a, i.from) === path.resolve(d.span.file)) ?? imports()[0];
      if (!via) continue;
      x.range = range(a.source, via.fromSpan.start, via.fromSpan.end);
      const src = sourceOf(a, d.span.file);
      const pos = src?.position(d.span.start) ?? { line: 1, col: 1 };
      x.message = `${d.span.file}:${pos.line}:${pos.col}: ${x.message}`;
    }
    const related = [...(own ? [] : [{ span: d.span, message: d.message }]), ...(d.related ?? [])]
      .map((r) => ({ location: location(a, r.span), message: r.message }))
      .filter((r): r is L.DiagnosticRelatedInformation => r.location !== null);
    if (related.length) x.relatedInformation = related;
    out.push(x);
  }
  return out;
}

// ── hover ─────────────────────────────────────────────────────────────────────────────────────────

const fmtInt = (n: number) => n.toLocaleString("en-US");

/** Signatures of everything callable, by context: layers and blocks in models, plan vocabulary elsewhere. */
function planSignature(name: string): Signature | undefined {
  for (const t of [LOSSES, METRICS, OPTIMIZERS, SCHEDULES, SOURCES, PREPROCESS] as Record<string, Signature>[]) if (Object.hasOwn(t, name)) return t[name];
  return undefined;
}

function opSignature(name: string): string | null {
  if (!OP_NAMES.includes(name)) return null;
  const def = OPS[name as OpKind];
  const ins = def.inputs[1] === 0 ? "" : def.inputs[1] === 1 ? "x" : def.inputs[0] === def.inputs[1] ? Array.from({ length: def.inputs[0] }, (_, i) => `x${i + 1}`).join(", ") : "x…";
  return formatSignature(name, def, ins, true);
}

/** Blocks visible in a document: its own and the ones it imports, with where they are declared. */
function visibleBlocks(a: Analysis): Map<string, { decl: Extract<Decl, { kind: "block" }>; file: string; ast: FileAst }> {
  const out = new Map<string, { decl: Extract<Decl, { kind: "block" }>; file: string; ast: FileAst }>();
  for (const d of a.ast.decls) if (d.kind === "block" && !out.has(d.name.name)) out.set(d.name.name, { decl: d, file: a.file, ast: a.ast });
  for (const d of a.ast.decls) {
    if (d.kind !== "import") continue;
    const target = importTarget(a, d.from);
    const src = [...a.result.sources].find(([k]) => path.resolve(k) === target)?.[1];
    if (!src) continue;
    const ast = parse(src.path, src.text).ast;
    for (const n of d.names) {
      const b = ast.decls.find((x): x is Extract<Decl, { kind: "block" }> => x.kind === "block" && x.name.name === n.name);
      if (b && !out.has(n.name)) out.set(n.name, { decl: b, file: src.path, ast });
    }
  }
  return out;
}

function blockSignature(b: Extract<Decl, { kind: "block" }>, text: string): string {
  const ps = b.params.map((p) => `${p.name.name}: ${p.type.name}${p.default ? ` = ${text.slice(p.default.span.start, p.default.span.end)}` : ""}`);
  return `block ${b.name.name}(${ps.join(", ")})`;
}

function instancesMarkdown(nodes: ReturnType<typeof nodesAt>): string[] {
  const lines: string[] = [];
  const counts = new Map<string, Map<string, number>>();
  for (const { model, node } of nodes.slice(0, 8)) {
    let c = counts.get(model.name);
    if (!c) counts.set(model.name, (c = paramCounts(model)));
    const shape = node.shape ? `${node.dtype ?? "?"}${fmtShape(node.shape)}` : "unknown shape (see the errors above it)";
    const params = c.get(node.name) ?? 0;
    lines.push(`- \`${node.name}\` (${node.op}${nodes.some((x) => x.model !== model) ? ` in ${model.name}` : ""}): \`${shape}\`${params ? ` · ${fmtInt(params)} parameters` : ""}`);
  }
  if (nodes.length > 8) lines.push(`- … ${nodes.length - 8} more`);
  return lines;
}

function paramDoc(p: ParamSpec): string {
  const t = p.type === "enum" ? (p.values ?? []).join(" | ") : p.type === "padding" ? `${(p.values ?? []).join(" | ")} | int${p.dims === 1 && p.symmetric ? "" : " | [ints]"}` : p.type;
  const d = "default" in p ? ` = ${p.default === null ? "none" : JSON.stringify(p.default)}` : " (required)";
  return `\`${p.name}: ${t}${d}\`${p.doc ? ` — ${p.doc}` : ""}`;
}

export function hover(a: Analysis, offset: number): L.Hover | null {
  const f = locate(a.ast, offset);
  if (!f) return null;
  const md: string[] = [];
  let span: Span | undefined;
  switch (f.kind) {
    case "callee": {
      span = f.name.span;
      const name = f.name.name;
      const op = opSignature(name);
      const block = visibleBlocks(a).get(name);
      const inModel = f.decl.kind === "model" || f.decl.kind === "block";
      if (inModel && block) {
        md.push("```nnet\n" + blockSignature(block.decl, sourceText(a, block.file)) + "\n```", ...(block.decl.doc ? [block.decl.doc] : []));
        const inst = blockInstance(a, f.decl, f.name, f.alias);
        if (inst) {
          const last = inst.nodes.at(-1)!;
          const counts = paramCounts(inst.model);
          const params = [...counts].filter(([layer]) => layer.startsWith(`${inst.prefix}/`)).reduce((x, [, c]) => x + c, 0);
          md.push(`- instance \`${inst.prefix}\`: ${inst.nodes.length} nodes, output \`${last.shape ? `${last.dtype ?? "?"}${fmtShape(last.shape)}` : "unknown"}\` · ${fmtInt(params)} parameters`);
        }
      }
      else if (inModel && isBuiltin(name)) md.push("```nnet\n" + BUILTINS[name]!.signature + "\n```", `built-in compile-time function: ${BUILTINS[name]!.doc}`);
      else if (op && (inModel || !planSignature(name))) {
        const from = OPS[name as OpKind].plugin;
        md.push("```nnet\n" + op + "\n```", OPS[name as OpKind].doc + (from ? `\n\nplugin "${from.name}" (${from.file})` : ""));
      }
      else {
        const sig = planSignature(name);
        if (sig) md.push("```nnet\n" + formatSignature(name, sig, "", true) + "\n```", sig.doc);
      }
      const nodes = inModel ? nodesAt(a, f.name.span) : [];
      if (nodes.length) md.push(...instancesMarkdown(nodes));
      break;
    }
    case "argName": {
      span = f.arg.span;
      const sig = OP_NAMES.includes(f.callee.name) && (f.decl.kind === "model" || f.decl.kind === "block") ? OPS[f.callee.name as OpKind] : planSignature(f.callee.name) ?? SETTINGS[f.callee.name]?.sig;
      const p = sig?.params.find((x) => x.name === f.arg.name);
      const block = visibleBlocks(a).get(f.callee.name);
      const bp = block?.decl.params.find((x) => x.name.name === f.arg.name);
      if (bp) md.push(`\`${bp.name.name}: ${bp.type.name}\` — parameter of block ${block!.decl.name.name}`);
      else if (p) md.push(paramDoc(p));
      break;
    }
    case "stmtName":
    case "ref": {
      const stmt = f.kind === "stmtName" ? f.stmt : definitionOf(f.decl, f.name.name, f.name.span.start);
      span = f.kind === "stmtName" ? f.stmt.kind === "repeat" ? f.stmt.span : f.stmt.name.span : f.name.span;
      if (!stmt || stmt.kind === "repeat") {
        if (f.kind === "ref" && f.decl.kind === "block") {
          const p = f.decl.params.find((x) => x.name.name === f.name.name);
          if (p) md.push(`\`${p.name.name}: ${p.type.name}\` — parameter of block ${f.decl.name.name}`);
        }
        break;
      }
      md.push(`**${stmt.kind === "bind" ? "binding" : stmt.kind}** \`${stmt.name.name}\``);
      md.push(...instancesMarkdown(nodesOfStmt(a, f.decl, stmt)));
      break;
    }
    case "setting": {
      span = f.key.span;
      const s = SETTINGS[f.key.name];
      if (s) md.push(`**${f.key.name}** — ${s.doc}`, "```nnet\n" + s.example + "\n```", ...(s.sig ? s.sig.params.map((p) => `- ${paramDoc(p)}`) : []));
      break;
    }
    case "declName":
    case "trainModel": {
      const d = f.decl;
      if (d.kind === "import") break;
      span = d.name.span;
      if (d.kind === "model" || d.kind === "train") {
        const m = a.result.module.models.find((x) => x.name === d.name.name);
        md.push(`**model** \`${d.name.name}\``);
        if (m) {
          const total = m.params.reduce((s, p) => s + p.shape.reduce((x, y) => x * y, 1), 0);
          md.push(
            ...m.inputs.map((i) => `- input \`${i.name}\`: \`${i.dtype}${fmtShape(i.shape)}\``),
            ...m.outputs.map((o) => {
              const n = m.nodes.find((x) => x.id === o.node);
              return `- output \`${o.name}\`: \`${n?.shape ? `${n.dtype}${fmtShape(n.shape)}` : "unknown"}\``;
            }),
            `- ${fmtInt(total)} parameters, ${m.nodes.length} nodes`,
          );
          if (m.doc) md.push(m.doc);
        }
      } else if (d.kind === "block") md.push("```nnet\n" + blockSignature(d, a.text) + "\n```", ...(d.doc ? [d.doc] : []));
      else if (d.kind === "dataset") {
        const ds = a.result.module.datasets.find((x) => x.name === d.name.name);
        md.push(`**dataset** \`${d.name.name}\``, ...(ds?.fields ?? []).map((x) => `- field \`${x.name}\`: \`${x.dtype}${fmtShape(x.shape)}\``));
      }
      break;
    }
    case "trainDataset": {
      span = f.name.span;
      const ds = a.result.module.datasets.find((x) => x.name === f.name.name);
      if (ds) md.push(`**dataset** \`${ds.name}\``, ...ds.fields.map((x) => `- field \`${x.name}\`: \`${x.dtype}${fmtShape(x.shape)}\``));
      break;
    }
    case "importName": {
      span = f.name.span;
      const b = visibleBlocks(a).get(f.name.name);
      if (b) md.push("```nnet\n" + blockSignature(b.decl, sourceText(a, b.file)) + "\n```", ...(b.decl.doc ? [b.decl.doc] : []));
      break;
    }
    case "importPath":
      break;
  }
  if (!md.length) return null;
  return { contents: { kind: "markdown", value: md.join("\n\n") }, ...(span ? { range: range(a.source, span.start, span.end) } : {}) };
}

function sourceText(a: Analysis, file: string): string {
  return sourceOf(a, file)?.text ?? "";
}

// ── completion ────────────────────────────────────────────────────────────────────────────────────

/**
 * The call whose argument list the cursor is in: callee name, the text of the current argument so far, how
 * many positional arguments come before it and the names given so far.
 */
function enclosingCall(text: string, offset: number): { callee: string; stage: boolean; arg: string; positional: string[]; named: Set<string> } | null {
  let depth = 0;
  for (let i = offset - 1; i >= 0; i--) {
    const c = text[i];
    if (c === "}" || c === "{") return null;
    if (c === ")" || c === "]") depth++;
    else if (c === "(" || c === "[") {
      if (depth > 0) {
        depth--;
        continue;
      }
      if (c === "[") return null;
      const m = /([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(text.slice(0, i));
      if (!m) return null;
      // Split the arguments so far at top-level commas.
      const parts: string[] = [""];
      let d = 0;
      for (const ch of text.slice(i + 1, offset)) {
        if ("([".includes(ch)) d++;
        if (")]".includes(ch)) d--;
        if (ch === "," && d === 0) parts.push("");
        else parts[parts.length - 1] += ch;
      }
      const done = parts.slice(0, -1);
      const isNamed = (x: string) => /^\s*[A-Za-z_]\w*\s*:/.test(x);
      return {
        callee: m[1]!,
        stage: /->\s*$/.test(text.slice(0, i - m[0].length)),
        arg: parts.at(-1)!,
        positional: done.filter((x) => !isNamed(x)),
        named: new Set(done.filter(isNamed).map((x) => x.trim().split(/\s*:/)[0]!)),
      };
    }
  }
  return null;
}

function item(label: string, kind: number, detail?: string, doc?: string, insertText?: string): L.CompletionItem {
  return { label, kind: kind as L.CompletionItemKind, ...(detail ? { detail } : {}), ...(doc ? { documentation: { kind: "markdown", value: doc } } : {}), ...(insertText ? { insertText } : {}) };
}

function argItems(params: readonly ParamSpec[], given: Set<string>): L.CompletionItem[] {
  return params.filter((p) => !given.has(p.name)).map((p) => ({ ...item(`${p.name}:`, ItemKind.Property, paramDoc(p).replace(/`/g, ""), p.doc, `${p.name}: `), sortText: `0${p.name}` }));
}

/** The declaration the cursor is in (between its keyword and its closing brace). */
function declAt(ast: FileAst, offset: number): Decl | undefined {
  return ast.decls.find((d) => d.span.start < offset && offset < d.span.end);
}

export function completion(a: Analysis, offset: number): L.CompletionItem[] {
  const text = a.text;
  const decl = declAt(a.ast, offset);
  const blocks = visibleBlocks(a);
  const line = text.slice(text.lastIndexOf("\n", offset - 1) + 1, offset);
  if (!decl || decl.kind === "import") return ["model", "block", "dataset", "train", "import"].map((k) => item(k, ItemKind.Keyword));
  const inModel = decl.kind === "model" || decl.kind === "block";
  const call = enclosingCall(text, offset);
  if (call && !/:\s*[^\s]*$/.test(call.arg)) {
    // Named arguments of the call around the cursor, less those given by position or by name.
    const b = inModel ? blocks.get(call.callee) : undefined;
    if (b) return b.decl.params.slice(call.positional.length).filter((p) => !call.named.has(p.name.name)).map((p) => item(`${p.name.name}:`, ItemKind.Property, `${p.name.name}: ${p.type.name}`, undefined, `${p.name.name}: `));
    const isOp = inModel && OP_NAMES.includes(call.callee);
    const sig = isOp ? OPS[call.callee as OpKind] : planSignature(call.callee);
    // Written as a call rather than a chain stage, a layer's leading positional arguments are its tensor
    // inputs (concat(a, b, axis: 1)): names and expressions, not literals.
    let given = call.positional.length;
    if (isOp && !call.stage) {
      const tensors = call.positional.slice(0, OPS[call.callee as OpKind].inputs[1]).findIndex((x) => /^\s*(?:[0-9."[]|-\s*[0-9.]|true\b|false\b)/.test(x));
      given -= tensors === -1 ? Math.min(given, OPS[call.callee as OpKind].inputs[1]) : tensors;
    }
    return sig ? argItems(sig.params.slice(given), call.named) : [];
  }
  if (call) {
    // A value after `name:`: the parameter's enumerated values, or booleans.
    const m = /([A-Za-z_]\w*)\s*:\s*[A-Za-z_0-9]*$/.exec(call.arg);
    const sig = inModel && OP_NAMES.includes(call.callee) ? OPS[call.callee as OpKind] : planSignature(call.callee);
    const p = sig?.params.find((x) => x.name === m?.[1]);
    if (p?.type === "enum" || p?.type === "padding") return (p.values ?? []).map((v) => item(v, ItemKind.EnumMember));
    if (p?.type === "bool") return ["true", "false"].map((v) => item(v, ItemKind.Value));
    return [];
  }
  if (inModel) {
    const layers = OP_NAMES.map((n) => item(n, ItemKind.Function, opSignature(n)!, OPS[n as OpKind].doc));
    const bs = [...blocks.values()].map((b) => item(b.decl.name.name, ItemKind.Class, blockSignature(b.decl, sourceText(a, b.file)), b.decl.doc));
    if (/->\s*[A-Za-z_0-9]*$/.test(line)) return [...bs, ...layers];
    const bindings = new Set(flatStmts(decl.body).filter((s) => s.kind !== "repeat" && s.span.start < offset).map((s) => (s.kind === "repeat" ? "" : s.name.name)));
    if (decl.kind === "block") ["in", ...decl.params.map((p) => p.name.name)].forEach((n) => bindings.add(n));
    const kws = ["input", "output", "layer", "repeat"].filter((k) => KEYWORDS.includes(k)).map((k) => item(k, ItemKind.Keyword));
    const builtins = Object.entries(BUILTINS).map(([n, b]) => item(n, ItemKind.Function, b.signature, `built-in compile-time function: ${b.doc}`));
    return [...kws, ...[...bindings].filter(Boolean).map((n) => item(n, ItemKind.Variable)), ...bs, ...builtins, ...layers];
  }
  // Dataset and training-plan declarations: settings at the start of a statement, then the setting's values.
  const where = decl.kind === "dataset" ? "dataset" : decl.kind === "train" && decl.phases.some((p) => p.span.start < offset && offset < p.span.end) ? "phase" : "train";
  const stmt = /(?:^|[;{])\s*([A-Za-z_]\w*)?$/.exec(line);
  if (stmt) {
    const extra = where === "train" ? ["phase"] : where === "dataset" ? ["field"] : [];
    return [
      ...extra.map((k) => item(k, ItemKind.Keyword)),
      ...Object.entries(SETTINGS)
        .filter(([, s]) => s.in.includes(where))
        .map(([k, s]) => item(k, ItemKind.Property, s.example, s.doc, `${k} `)),
    ];
  }
  const key = /(?:^|[;{])\s*([A-Za-z_]\w*)\s/.exec(line)?.[1];
  const calls = (t: Record<string, Signature>) => Object.entries(t).map(([k, s]) => item(k, ItemKind.Function, formatSignature(k, s, "", true), s.doc));
  switch (key) {
    case "loss":
      return calls(LOSSES);
    case "optimizer":
      return calls(OPTIMIZERS);
    case "schedule":
      return calls(SCHEDULES);
    case "metrics":
      return calls(METRICS);
    case "source":
    case "test":
      return calls(SOURCES);
    case "data":
      return a.ast.decls.filter((d) => d.kind === "dataset").map((d) => item((d as { name: { name: string } }).name.name, ItemKind.Struct));
    case "field":
      return calls(PREPROCESS);
    default: {
      const sig = key ? SETTINGS[key]?.sig : undefined;
      return sig ? argItems(sig.params, new Set([...line.matchAll(/([A-Za-z_]\w*)\s*:/g)].map((m) => m[1]!))) : [];
    }
  }
}

// ── go to definition ──────────────────────────────────────────────────────────────────────────────

export function definition(ws: Workspace, a: Analysis, offset: number): L.Location[] {
  const f = locate(a.ast, offset);
  const here = (span: Span) => ({ uri: pathToUri(a.file), range: range(a.source, span.start, span.end) });
  const named = (kind: Decl["kind"], name: string) => a.ast.decls.find((d) => d.kind === kind && d.kind !== "import" && d.name.name === name) as Exclude<Decl, { kind: "import" }> | undefined;
  const block = (name: string): L.Location[] => {
    const b = visibleBlocks(a).get(name);
    if (!b) return [];
    if (b.file === a.file) return [here(b.decl.name.span)];
    const uri = pathToUri(path.resolve(b.file));
    const src = ws.analyze(uri)?.source ?? sourceOf(a, b.file);
    return src ? [{ uri, range: range(src, b.decl.name.span.start, b.decl.name.span.end) }] : [];
  };
  if (!f) return [];
  switch (f.kind) {
    case "callee":
      return block(f.name.name);
    case "importName":
      return block(f.name.name);
    case "importPath": {
      const target = importTarget(a, f.decl.from);
      return [{ uri: pathToUri(target), range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } } }];
    }
    case "trainModel": {
      const m = named("model", f.decl.name.name);
      return m ? [here(m.name.span)] : [];
    }
    case "trainDataset": {
      const d = named("dataset", f.name.name);
      return d ? [here(d.name.span)] : [];
    }
    case "ref": {
      const s = definitionOf(f.decl, f.name.name, f.name.span.start);
      if (s && s.kind !== "repeat") return [here(s.name.span)];
      if (f.decl.kind === "block") {
        const p = f.decl.params.find((x) => x.name.name === f.name.name);
        if (p) return [here(p.name.span)];
      }
      return [];
    }
    default:
      return [];
  }
}

// ── document symbols ──────────────────────────────────────────────────────────────────────────────

export function documentSymbols(a: Pick<Analysis, "ast" | "source">): L.DocumentSymbol[] {
  const sym = (name: string, detail: string, kind: number, span: Span, sel: Span, children: L.DocumentSymbol[] = []): L.DocumentSymbol => ({
    name: name || "?",
    detail,
    kind: kind as L.SymbolKind,
    range: range(a.source, span.start, span.end),
    selectionRange: range(a.source, sel.start, sel.end),
    children,
  });
  const out: L.DocumentSymbol[] = [];
  for (const d of a.ast.decls) {
    if (d.kind === "import") continue;
    if (d.kind === "model" || d.kind === "block") {
      const children = flatStmts(d.body)
        .flatMap((s) => (s.kind === "repeat" ? [] : [sym(s.name.name, s.kind === "bind" ? "" : s.kind, s.kind === "input" || s.kind === "output" ? SymbolKind.Field : SymbolKind.Variable, s.span, s.name.span)]));
      out.push(sym(d.name.name, d.kind, d.kind === "model" ? SymbolKind.Class : SymbolKind.Function, d.span, d.name.span, children));
    } else if (d.kind === "dataset") {
      out.push(sym(d.name.name, "dataset", SymbolKind.Struct, d.span, d.name.span, d.fields.map((x) => sym(x.name.name, "field", SymbolKind.Field, x.span, x.name.span))));
    } else {
      out.push(sym(`${d.name.name} on ${d.dataset.name}`, "train", SymbolKind.Event, d.span, d.name.span, d.phases.map((p) => sym(p.name.name, "phase", SymbolKind.Namespace, p.span, p.name.span))));
    }
  }
  return out;
}

// ── formatting ────────────────────────────────────────────────────────────────────────────────────

/**
 * The edits that format a document: the formatter's output (`nnetc fmt`, house style: the editor's tab
 * size is not used, so that the editor and `nnetc fmt --check` agree) as one edit, none when the text is
 * already formatted or has syntax errors (those are already published as diagnostics).
 */
export function formatting(doc: TextDocument): L.TextEdit[] {
  const text = doc.getText();
  const r = format(uriToPath(doc.uri), text);
  if (!r.ok || !r.changed) return [];
  return [{ range: { start: { line: 0, character: 0 }, end: doc.positionAt(text.length) }, newText: r.text }];
}

// ── the server ────────────────────────────────────────────────────────────────────────────────────

export interface ServerOptions {
  /** How long to wait after an edit before compiling (edits typed in a burst compile once). */
  debounceMs?: number;
  /** Load each opened document's project config (nnetc.config.mjs) and its plugins: default true. */
  plugins?: boolean;
  /**
   * The checking worker's entry script (tests point it at a missing file to see the in-process fallback);
   * false: check in-process. Default: compiler/lsp/worker_main.js next to this module, or, bundled, the bundle.
   */
  workerEntry?: URL | string | false;
  /** Called on each step of a document's check (tests): started, cancelled (a newer edit or a close), stale result dropped, published. */
  onCheck?: (e: { event: "start" | "cancel" | "drop" | "publish"; uri: string; version: number; worker: boolean }) => void;
}

export const DEFAULT_DEBOUNCE_MS = 15;

/** Where the checking worker starts: next to this module unbundled; bundled, the bundle is its own worker's entry (cli/main.ts). */
function defaultWorkerEntry(): URL {
  const here = import.meta.url;
  return /\/lsp\/server\.js$/.test(here) ? new URL("./worker_main.js", here) : new URL(here);
}

/**
 * Runs document checks off the main loop, one at a time, in a worker thread: per document only the latest
 * version waits; a job made stale by a newer edit or a close is cancelled by terminating the worker (a fresh
 * one starts for the next job). If the worker cannot start, checks run in-process (the server stays useful).
 */
class Checker {
  private worker: Worker | null = null;
  private ready = false;
  /** The worker never got as far as "ready": check in-process from now on. */
  private broken: boolean;
  private running: { job: CheckJob; edited: boolean } | null = null;
  /** Documents waiting for a check, in order, with whether an edit of the document itself asked for it. */
  private queue = new Map<string, boolean>();
  private nextId = 1;
  private disposed = false;
  constructor(
    private readonly entry: URL | string | false,
    private readonly snapshot: (uri: string, id: number) => CheckJob | null,
    private readonly done: (r: CheckResult, edited: boolean, worker: boolean) => void,
    private readonly log: (m: string) => void,
    private readonly onCheck: ServerOptions["onCheck"],
  ) {
    this.broken = entry === false;
  }

  /** Check `uri` (its current version) as soon as the worker is free; a job in flight for it is cancelled. */
  request(uri: string, edited: boolean): void {
    if (this.disposed) return;
    if (this.running?.job.uri === uri) {
      edited ||= this.running.edited;
      this.cancel();
    }
    this.queue.set(uri, (this.queue.get(uri) ?? false) || edited);
    this.pump();
  }
  /** A closed document: drop its waiting or running check. */
  drop(uri: string): void {
    this.queue.delete(uri);
    if (this.running?.job.uri === uri) this.cancel();
    this.pump();
  }
  dispose(): void {
    this.disposed = true;
    this.queue.clear();
    this.running = null;
    void this.worker?.terminate();
    this.worker = null;
  }

  private cancel(): void {
    const r = this.running!;
    this.running = null;
    this.onCheck?.({ event: "cancel", uri: r.job.uri, version: r.job.version, worker: true });
    const w = this.worker;
    this.worker = null;
    this.ready = false;
    void w?.terminate();
  }

  private spawn(): Worker | null {
    try {
      const w = new Worker(this.entry as URL | string, { workerData: { [WORKER_FLAG]: true }, env: SHARE_ENV });
      w.on("message", (m: CheckResult | "ready") => {
        if (w !== this.worker) return;
        if (m === "ready") {
          this.ready = true;
          return;
        }
        const r = this.running;
        if (!r || r.job.id !== m.id) return;
        this.running = null;
        w.unref();
        this.done(m, r.edited, true);
        this.pump();
      });
      const failed = (why: string) => {
        if (w !== this.worker) return;
        this.worker = null;
        const r = this.running;
        this.running = null;
        if (!this.ready) {
          this.broken = true;
          this.log(`nnetc: the checking worker did not start (${why}); checking in-process`);
          if (r && !this.queue.has(r.job.uri)) this.queue.set(r.job.uri, r.edited); // checked in-process now
        } else this.log(`nnetc: the checking worker stopped (${why}) checking ${r?.job.uri ?? "nothing"}; the next edit starts another`); // not retried: the same text would stop it again
        this.ready = false;
        this.pump();
      };
      w.on("error", (e) => failed(e.message));
      w.on("exit", (code) => failed(`exit code ${code}`));
      w.unref(); // an idle worker does not keep the process alive (after the listeners: adding one refs it again); a job in flight does
      return w;
    } catch (e) {
      this.broken = true;
      this.log(`nnetc: the checking worker did not start (${(e as Error).message}); checking in-process`);
      return null;
    }
  }

  private pump(): void {
    if (this.disposed || this.running) return;
    for (const [uri, edited] of this.queue) {
      this.queue.delete(uri);
      const job = this.snapshot(uri, this.nextId++);
      if (!job) continue;
      if (!this.broken && !this.worker) this.worker = this.spawn();
      if (this.broken || !this.worker) {
        // In-process: on a later turn of the loop, so that a burst of messages is read first.
        this.running = { job, edited };
        this.onCheck?.({ event: "start", uri, version: job.version, worker: false });
        setImmediate(() => {
          if (this.running?.job !== job) return;
          this.running = null;
          this.done(checkJob(job), edited, false);
          this.pump();
        });
        return;
      }
      this.running = { job, edited };
      this.onCheck?.({ event: "start", uri, version: job.version, worker: true });
      this.worker.ref();
      this.worker.postMessage(job);
      return;
    }
  }
}

/** Wire the features to a connection (stdio for `nnetc lsp`, streams in tests) and start listening. */
export function startServer(conn: L.Connection, o: ServerOptions = {}): Workspace {
  const ws = new Workspace();
  const debounce = o.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const snapshot = (uri: string, id: number): CheckJob | null => {
    const doc = ws.docs.get(uri);
    if (!doc) return null;
    return { id, uri, version: doc.version, docs: [...ws.docs.values()].map((d) => [d.uri, d.version, d.getText()]), folders: ws.workspaceFolders, plugins: o.plugins !== false };
  };
  /** A finished check: published only while it is the document's current version; after an edit of it (`edited`), re-check the documents importing it. */
  const finished = (r: CheckResult, edited: boolean, worker: boolean) => {
    const doc = ws.docs.get(r.uri);
    if (!doc || doc.version !== r.version || "missing" in r) {
      o.onCheck?.({ event: "drop", uri: r.uri, version: r.version, worker });
      return;
    }
    ws.reads.set(r.uri, new Set(r.reads));
    o.onCheck?.({ event: "publish", uri: r.uri, version: r.version, worker });
    void conn.sendDiagnostics({ uri: r.uri, version: r.version, diagnostics: [...configDiagnostics(uriToPath(r.uri)), ...r.diagnostics] });
    // Documents importing this one see its new text too.
    if (!edited) return; // an importer's re-check does not cascade (imports may form a cycle)
    const changed = path.resolve(uriToPath(r.uri));
    for (const other of ws.docs.keys()) if (other !== r.uri && ws.reads.get(other)?.has(changed)) schedule(other, false);
  };
  const checker = new Checker(o.workerEntry ?? defaultWorkerEntry(), snapshot, finished, (m) => conn.console.log(m), o.onCheck);
  const pendingEdit = new Set<string>();
  const schedule = (uri: string, edited = true) => {
    clearTimeout(timers.get(uri));
    if (edited) pendingEdit.add(uri);
    timers.set(
      uri,
      setTimeout(() => {
        timers.delete(uri);
        const e = pendingEdit.delete(uri);
        checker.request(uri, e);
      }, debounce),
    );
  };
  const offsetOf = (uri: string, p: L.Position) => ws.docs.get(uri)?.offsetAt(p);
  const withDoc = <T>(uri: string, p: L.Position, f: (a: Analysis, offset: number) => T, none: T): T => {
    const a = ws.analyze(uri);
    const offset = offsetOf(uri, p);
    return a && offset !== undefined ? f(a, offset) : none;
  };

  conn.onInitialize((p) => {
    const folders = p.workspaceFolders?.map((f) => f.uri) ?? (p.rootUri ? [p.rootUri] : []);
    ws.workspaceFolders = folders.filter((u) => u.startsWith("file:")).map((u) => path.resolve(fileURLToPath(u)));
    return {
    capabilities: {
      textDocumentSync: { openClose: true, change: 2 /* incremental */ },
      hoverProvider: true,
      completionProvider: { triggerCharacters: ["(", ",", ">", ":"] },
      definitionProvider: true,
      documentSymbolProvider: true,
      documentFormattingProvider: true,
    },
    serverInfo: { name: "nnetc" },
    };
  });
  // The project's plugins: the opened document's config (nnetc.config.mjs) is loaded before it is checked; its
  // problems (NN8001–NN8003) are shown at the top of every document it applies to.
  let configProblems: Diagnostic[] = [];
  let configFile: string | null = null;
  const project = async (uri: string) => {
    if (o.plugins === false || !uri.startsWith("file:")) return;
    const r = await loadProjectPlugins(path.dirname(uriToPath(uri)));
    configProblems = r.diagnostics;
    configFile = r.file;
    if (r.changed) ws.invalidate();
  };
  const configDiagnostics = (file: string): L.Diagnostic[] =>
    (configFile && findConfig(path.dirname(file)) === configFile ? configProblems : []).map((d) => ({ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, severity: Severity[d.severity], code: d.code, source: "nnetc", message: d.hint ? `${d.message}\nhint: ${d.hint}` : d.message }));
  conn.onDidOpenTextDocument(async (e) => {
    ws.set(TextDocument.create(e.textDocument.uri, e.textDocument.languageId, e.textDocument.version, e.textDocument.text));
    await project(e.textDocument.uri);
    schedule(e.textDocument.uri);
  });
  conn.onDidChangeTextDocument((e) => {
    const doc = ws.docs.get(e.textDocument.uri);
    if (!doc) return;
    ws.set(TextDocument.update(doc, e.contentChanges, e.textDocument.version));
    schedule(e.textDocument.uri);
  });
  conn.onDidCloseTextDocument((e) => {
    clearTimeout(timers.get(e.textDocument.uri));
    timers.delete(e.textDocument.uri);
    pendingEdit.delete(e.textDocument.uri);
    checker.drop(e.textDocument.uri);
    ws.close(e.textDocument.uri);
    void conn.sendDiagnostics({ uri: e.textDocument.uri, diagnostics: [] });
  });
  // Requests are answered on the main loop while checks run in the worker: from the document's analysis
  // (compiled here once per version, when a feature needs it), symbols from a parse alone.
  conn.onHover((p) => withDoc(p.textDocument.uri, p.position, hover, null));
  conn.onCompletion((p) => withDoc(p.textDocument.uri, p.position, completion, []));
  conn.onDefinition((p) => withDoc(p.textDocument.uri, p.position, (a, off) => definition(ws, a, off), []));
  conn.onDocumentSymbol((p) => {
    const a = ws.outline(p.textDocument.uri);
    return a ? documentSymbols(a) : [];
  });
  conn.onDocumentFormatting((p) => {
    const doc = ws.docs.get(p.textDocument.uri);
    return doc ? formatting(doc) : [];
  });
  conn.onShutdown(() => {
    for (const t of timers.values()) clearTimeout(t);
    timers.clear();
    checker.dispose();
  });
  conn.onExit(() => checker.dispose());
  conn.listen();
  return ws;
}
