// The public API of the compiler. The CLI, the language server and the formatter all go through here.
// parse → lower → check; each returns a value plus diagnostics and never throws on user input.
import * as path from "node:path";
import { parseFile } from "./ast/build.js";
import type { Decl, FileAst } from "./ast/types.js";
import { check } from "./check/index.js";
import { diag, suggest, type Diagnostic } from "./diagnostics.js";
import type { IRModule } from "./ir/types.js";
import { lower, type BlockRef, type LoadedFile } from "./lower/index.js";
import { PATH_ARGS } from "./plan/tables.js";
import { SourceFile } from "./source.js";

export interface Host {
  /** The file's text, or why it cannot be read. */
  readFile(file: string): { text: string } | { error: string; refused?: { code: "NN7040"; size: number | string } | { code: "NN7041"; kind: string } };
  /**
   * Why a path the file names (an import, a data file or folder, a tokenizer file, init weights; absolute) may not
   * be read: outside the project root (compiler/root.ts's confine, with the root), or a virtual file of /proc or
   * /sys; null when it may. Absent: every path may be read (a host with no file system).
   */
  checkPath?(file: string, o?: { nnet?: boolean }): PathProblem | null;
}

/** `notNnet` (asked with `nnet`, for imports): the file's real path does not end in .nnet (a link to another kind of file). */
export type PathProblem = { outside: string; root: string; origin: string } | { special: string } | { notNnet: string };

export interface CompileResult {
  /** The checked IR; present even when there are errors (with unknown shapes where they occurred). */
  module: IRModule;
  diagnostics: Diagnostic[];
  sources: Map<string, SourceFile>;
}

/** Parse one text into an AST (no imports followed). */
export function parse(file: string, text: string): { ast: FileAst; diagnostics: Diagnostic[] } {
  return guard(file, () => parseFile(file, text), (d) => ({ ast: { path: file, decls: [] }, diagnostics: [d] }));
}

/**
 * Parse, follow imports, lower and check. `opts.onStage` is called as each stage ends (lex, parse, ast per file,
 * then lower, check, plan, diagnostics): npm run bench:source times the stages with it.
 */
export function compile(file: string, text: string, host: Host, opts: { onStage?: (stage: string) => void } = {}): CompileResult {
  const onStage = opts.onStage;
  const sources = new Map<string, SourceFile>();
  return guard(
    file,
    () => {
      const diagnostics: Diagnostic[] = [];
      const files = new Map<string, LoadedFile>();
      const main = load(path.normalize(file), text, host, files, sources, diagnostics, [], onStage);
      const lowered = lower(main, files);
      diagnostics.push(...lowered.diagnostics);
      onStage?.("lower");
      const checked = check(lowered.module, lowered.constraints, new Set([...lowered.broken, ...withErrors(lowered.diagnostics, files)]), onStage);
      diagnostics.push(...checked.diagnostics);
      if (host.checkPath) diagnostics.push(...checkPaths(checked.module, host.checkPath, sources));
      const sorted = sortDiagnostics(dedupe(withoutCascades(diagnostics, files)));
      onStage?.("diagnostics");
      return { module: checked.module, diagnostics: sorted, sources };
    },
    (d) => {
      if (!sources.has(file)) sources.set(file, new SourceFile(file, text));
      return { module: { irVersion: 1, file, models: [], datasets: [], plans: [] }, diagnostics: [d], sources };
    },
  );
}

function load(file: string, text: string, host: Host, files: Map<string, LoadedFile>, sources: Map<string, SourceFile>, diagnostics: Diagnostic[], stack: string[], onStage?: (stage: string) => void): LoadedFile {
  const source = new SourceFile(file, text);
  sources.set(file, source);
  const parsed = parseFile(file, text, onStage);
  diagnostics.push(...parsed.diagnostics);
  const loaded: LoadedFile = { source, ast: parsed.ast, blocks: new Map(), failedImports: new Set() };
  files.set(file, loaded);
  for (const d of parsed.ast.decls) {
    if (d.kind === "block" && d.name.name && !loaded.blocks.has(d.name.name)) loaded.blocks.set(d.name.name, { decl: d, file });
  }
  for (const d of parsed.ast.decls) {
    if (d.kind !== "import") continue;
    const target = path.resolve(path.dirname(file), d.from);
    const rel = path.relative(process.cwd(), target) || target;
    let dep = files.get(target) ?? files.get(rel);
    const fail = () => d.names.forEach((n) => loaded.failedImports.add(n.name));
    if (!d.from) {
      fail(); // an unterminated or empty path: the syntax error says enough
      continue;
    }
    const problem = host.checkPath?.(target, { nnet: true });
    if (problem) {
      diagnostics.push(pathDiagnostic(problem, d.from, d.fromSpan, "an imported .nnet file"));
      fail();
      continue;
    }
    if (!target.endsWith(".nnet")) {
      // never read: its text would be parsed as .nnet and quoted in code frames and the editor's related information
      diagnostics.push(diag("importNotNnet", d.fromSpan, { path: d.from }));
      fail();
      continue;
    }
    if ([...stack, file].some((f) => path.resolve(f) === target)) {
      diagnostics.push(diag("importCycle", d.fromSpan, { path: d.from }));
      fail();
      continue;
    }
    if (!dep) {
      const r = host.readFile(rel);
      if ("error" in r) {
        const x = r.refused;
        diagnostics.push(
          x?.code === "NN7040" ? diag("sourceTooLarge", d.fromSpan, { file: d.from, size: x.size })
          : x?.code === "NN7041" ? diag("notRegularFile", d.fromSpan, { file: d.from, kind: x.kind, role: "an imported .nnet file" })
          : diag("importNotFound", d.fromSpan, { path: d.from, reason: r.error }),
        );
        fail();
        continue;
      }
      dep = load(rel, r.text, host, files, sources, diagnostics, [...stack, file], onStage);
    }
    const depFile = dep.source.path;
    const own = new Map([...dep.blocks].filter(([, r]) => r.file === depFile));
    const available = [...own.keys()];
    for (const n of d.names) {
      const ref: BlockRef | undefined = own.get(n.name);
      if (!ref) {
        const s = suggest(n.name, available);
        diagnostics.push(diag("importMissingName", n.span, { name: n.name, path: d.from, available: available.join(", "), ...(s ? { suggestion: s } : {}) }));
        loaded.failedImports.add(n.name);
        continue;
      }
      if (loaded.blocks.has(n.name) && loaded.blocks.get(n.name) !== ref) {
        diagnostics.push(diag("duplicateDecl", n.span, { kind: "block", name: n.name }));
        continue;
      }
      loaded.blocks.set(n.name, ref);
    }
  }
  return loaded;
}

function pathDiagnostic(p: PathProblem, written: string, span: Diagnostic["span"], role: string): Diagnostic {
  if ("notNnet" in p) return diag("importNotNnet", span, { path: written });
  return "special" in p ? diag("notRegularFile", span, { file: written, kind: p.special, role }) : diag("pathOutsideRoot", span, { path: written, real: p.outside, root: p.root, origin: p.origin });
}

/**
 * The files and folders the module's datasets and plans name (PATH_ARGS of plan/tables.ts, and init), resolved
 * against the naming file's folder as the runtime resolves them without --data, each checked by the host: one
 * diagnostic at the path's string (or its call when the string cannot be found) for each that may not be read.
 */
function checkPaths(module: IRModule, checkPath: NonNullable<Host["checkPath"]>, sources: Map<string, SourceFile>): Diagnostic[] {
  const out: Diagnostic[] = [];
  type S = IRModule["datasets"][number]["span"];
  // `span`: the call (or setting) naming the path
  const at = (written: string, span: S, role: string) => {
    if (!written) return;
    const problem = checkPath(path.resolve(path.dirname(span.file), written));
    if (!problem) return;
    // the string literal: the first occurrence of its JSON spelling from the call on
    const text = sources.get(span.file)?.text ?? "";
    const lit = JSON.stringify(written);
    const i = text.indexOf(lit, span.start);
    // (IR spans cover the callee's or declaration's name: the string is looked for in the text that follows, as
    // far as a call's arguments reach; the file's text between is the call's own)
    const s = i >= 0 && i - span.start <= 4096 && !text.slice(span.start, i).includes("\n\n") ? { ...span, start: i, end: i + lit.length } : span;
    out.push(pathDiagnostic(problem, written, s as Diagnostic["span"], role));
  };
  for (const ds of module.datasets) {
    for (const call of [ds.source, ds.test]) {
      if (!call || !Object.hasOwn(PATH_ARGS.sources, call.fn)) continue;
      for (const a of PATH_ARGS.sources[call.fn as keyof typeof PATH_ARGS.sources]) {
        const v = call.args[a];
        if (typeof v === "string") at(v, call.span, `a data ${a === "path" ? "path" : a}`);
      }
    }
    for (const f of ds.fields) {
      for (const step of f.steps) {
        if (!Object.hasOwn(PATH_ARGS.steps, step.fn)) continue;
        for (const a of PATH_ARGS.steps[step.fn as keyof typeof PATH_ARGS.steps]) {
          const v = step.args[a];
          if (typeof v === "string") at(v, step.span, "a tokenizer file");
        }
      }
    }
  }
  for (const plan of module.plans) if (plan.init) at(plan.init.from, plan.init.span, "pretrained weights");
  return out;
}

/**
 * A declaration with a syntax error was only partly understood, so what later stages say about it is
 * noise: keep its syntax errors and drop the rest, including plan errors about a broken model or dataset.
 */
function withoutCascades(ds: Diagnostic[], files: Map<string, LoadedFile>): Diagnostic[] {
  const broken: { file: string; start: number; end: number }[] = [];
  const brokenNames = new Set<string>();
  for (const [file, f] of files) {
    const decls = f.ast.decls;
    decls.forEach((d, i) => {
      const start = d.span.start;
      const end = decls[i + 1]?.span.start ?? Infinity;
      const hasSyntaxError = ds.some((x) => x.code.startsWith("NN1") && x.span.file === file && x.span.start >= start && x.span.start < end);
      if (!hasSyntaxError) return;
      broken.push({ file, start, end });
      if (d.kind !== "import") brokenNames.add(d.name.name);
    });
    for (const d of decls) {
      if (d.kind === "train" && (brokenNames.has(d.name.name) || brokenNames.has(d.dataset.name))) broken.push({ file, start: d.span.start, end: d.span.end });
    }
  }
  // Syntax errors before the first declaration belong to no declaration and suppress nothing.
  return ds.filter((d) => d.code.startsWith("NN1") || !broken.some((b) => b.file === d.span.file && d.span.start >= b.start && d.span.start < b.end));
}

/** The models and datasets (by name) whose declarations hold an error among `ds`. */
function withErrors(ds: Diagnostic[], files: Map<string, LoadedFile>): Set<string> {
  const names = new Set<string>();
  for (const [file, f] of files) {
    for (const d of f.ast.decls) {
      if (d.kind !== "model" && d.kind !== "dataset") continue;
      if (ds.some((x) => x.severity === "error" && x.span.file === file && x.span.start >= d.span.start && x.span.start < d.span.end)) names.add(d.name.name);
    }
  }
  return names;
}

/** The same diagnostic at the same place once (repeat bodies are expanded several times). */
function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.span.file}:${d.span.start}:${d.span.end}:${d.code}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Diagnostics in file order, then by position; errors before warnings at the same spot. */
export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => (a.span.file === b.span.file ? a.span.start - b.span.start || (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1) : a.span.file < b.span.file ? -1 : 1));
}

/** The last line of defence: a compiler bug becomes an NN9001 diagnostic, never a stack trace. */
function guard<T>(file: string, f: () => T, onError: (d: Diagnostic) => T): T {
  try {
    return f();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return onError(diag("internal", { file, start: 0, end: 0 }, { message }));
  }
}

export type { Decl, Diagnostic, IRModule };
export { SourceFile };
