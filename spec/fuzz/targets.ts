// The fuzz targets: what must hold for any text in `check` (compile with the plan checks, then the CLI's
// rendering and, for a clean file, each model's summary), `fmt` (the formatter) and the language server's
// features. Each returns the list of what went wrong (empty when the property holds) and never throws: an
// exception escaping a stage is itself a problem. Run in a worker thread (./worker.ts) by
// spec/unit/fuzz.test.ts and by `npm run fuzz` (./run.ts), which time every input out.
import * as path from "node:path";
import { TextDocument } from "vscode-languageserver-textdocument";
import type * as L from "vscode-languageserver";
import { lexer } from "../../grammar/tokens.js";
import { compile, parse, type Host } from "../../compiler/index.js";
import { format, type FormatResult } from "../../compiler/format/index.js";
import { completion, definition, documentSymbols, formatting, hover, lspDiagnostics, pathToUri, Workspace } from "../../compiler/lsp/server.js";
import { diagnosticToJson, renderDiagnostic, summaryLine } from "../../compiler/render.js";
import { emitCode } from "../../compiler/emit/index.js";
import { optimize, verifyModel } from "../../compiler/passes/index.js";
import { renderSummary, summarize } from "../../compiler/summary.js";

export const TARGETS = ["check", "fmt", "lsp"] as const;
export type Target = (typeof TARGETS)[number];
export const isTarget = (t: string): t is Target => (TARGETS as readonly string[]).includes(t);

/** The name every fuzzed text is compiled under; no other file exists (imports fail the same way every time). */
export const FUZZ_FILE = "fuzz.nnet";
/**
 * The only other files (by base name, wherever an import points): a library of blocks, one with errors, and one
 * that imports the fuzzed file back. Every other import fails the same way every time.
 */
export const LIBS: Record<string, string> = {
  "lib.nnet": "/// Blocks to import.\nblock Blk(n: int = 2) {\n  out = in -> dense(n) -> relu\n}\n\nblock Lib(c: int = 4) {\n  y = in -> dense(c)\n  out = y -> Blk(c)\n}\n",
  "bad.nnet": "block Blk(n: int = 2) {\n  out = in -> dens(n)\n}\nblock constructor(c: int) {\n  out = in -> dense(c\n}\n",
  "loop.nnet": 'import { Blk } from "fuzz.nnet"\nblock Lib(c: int = 4) {\n  out = in -> Blk(c)\n}\n',
};
const libText = (file: string): string | undefined => (Object.hasOwn(LIBS, path.basename(file)) ? LIBS[path.basename(file)] : undefined);
const files: Host["readFile"] = (file) => {
  const text = libText(file);
  return text === undefined ? { error: "no such file" } : { text };
};
const host: Host = { readFile: files };

const message = (e: unknown) => (e instanceof Error ? `${e.message}\n${(e.stack ?? "").split("\n").slice(1, 6).join("\n")}` : String(e));

/** Runs one stage; an exception becomes a problem (and undefined). */
function guarded<T>(out: string[], stage: string, f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    out.push(`${stage} threw: ${message(e)}`);
    return undefined;
  }
}

interface Span {
  file: string;
  start: number;
  end: number;
}

function spanProblems(where: string, s: Span | undefined, length: number): string[] {
  if (!s || typeof s !== "object") return [`${where}: no span`];
  if (s.file !== FUZZ_FILE) {
    const lib = libText(s.file);
    if (lib === undefined) return [`${where}: span in ${JSON.stringify(s.file)}, neither the file compiled nor one it imports`];
    length = lib.length;
  }
  if (!Number.isInteger(s.start) || !Number.isInteger(s.end)) return [`${where}: span offsets ${s.start}..${s.end} are not integers`];
  if (!(0 <= s.start && s.start <= s.end && s.end <= length)) return [`${where}: span ${s.start}..${s.end} outside 0..${length}`];
  return [];
}

/** A diagnostic is well formed: a code NNxxxx that is not NN9001, a severity, a message, spans inside the text. */
export function diagnosticProblems(raw: unknown, i: number, length: number): string[] {
  const d = raw as { code?: unknown; severity?: unknown; message?: unknown; hint?: unknown; span?: Span; related?: { span?: Span; message?: unknown }[] };
  const where = `diagnostic ${i} (${String(d.code)})`;
  const out: string[] = [];
  if (d.code === "NN9001") out.push(`internal compiler error: ${String(d.message)}`);
  else if (typeof d.code !== "string" || !/^NN\d{4}$/.test(d.code)) out.push(`${where}: bad code`);
  if (d.severity !== "error" && d.severity !== "warning") out.push(`${where}: bad severity ${String(d.severity)}`);
  if (typeof d.message !== "string" || !d.message.trim()) out.push(`${where}: empty message`);
  if (d.hint !== undefined && (typeof d.hint !== "string" || !d.hint.trim())) out.push(`${where}: empty hint`);
  out.push(...spanProblems(where, d.span, length));
  for (const [j, rel] of (d.related ?? []).entries()) {
    out.push(...spanProblems(`${where} related ${j}`, rel.span, length));
    if (typeof rel.message !== "string" || !rel.message.trim()) out.push(`${where} related ${j}: empty message`);
  }
  return out;
}

// ── check ─────────────────────────────────────────────────────────────────────────────────────────

/**
 * `nnetc check`, `nnetc summary` and `nnetc compile` in process: compile, render every diagnostic both ways;
 * for a file without errors, summarize each model, run the passes and emit the TypeScript module.
 */
export function checkProblems(text: string): string[] {
  const out: string[] = [];
  guarded(out, "parse", () => parse(FUZZ_FILE, text));
  const r = guarded(out, "compile", () => compile(FUZZ_FILE, text, host));
  if (!r) return out;
  r.diagnostics.forEach((d, i) => out.push(...diagnosticProblems(d, i, text.length)));
  guarded(out, "render", () => {
    for (const d of r.diagnostics) {
      const rendered = renderDiagnostic(d, r.sources, { color: false });
      if (!rendered.includes(d.code)) out.push(`rendered ${d.code} without its code`);
      const j = diagnosticToJson(d, r.sources);
      if (!(j.line >= 1 && j.column >= 1 && j.endLine >= j.line)) out.push(`${d.code} renders at line ${j.line}:${j.column}-${j.endLine}:${j.endColumn}`);
    }
    if (r.diagnostics.length && !summaryLine(r.diagnostics).trim()) out.push("empty summary line");
  });
  if (!r.diagnostics.some((d) => d.severity === "error")) {
    guarded(out, "summary", () => {
      for (const m of r.module.models) if (!renderSummary(summarize(m)).includes(m.name)) out.push(`the summary of ${m.name} does not name it`);
    });
    // What `nnetc compile` does next: every pass at -O1 and -O2, for training and inference, with each model
    // verified after each pass, then the TypeScript module.
    for (const level of [1, 2] as const) {
      for (const mode of ["train", "infer"] as const) {
        guarded(out, `-O${level} ${mode} passes`, () =>
          optimize(r.module, {
            level,
            mode,
            onStage: (stage, m) => {
              for (const p of verifyModel(m).slice(0, 2)) out.push(`-O${level} ${mode}: after ${stage.pass} on ${m.name}: ${p}`);
            },
          }),
        );
      }
    }
    if (r.module.models.length) guarded(out, "emit", () => emitCode(r, { file: FUZZ_FILE, outFile: "fuzz.nnet.ts", flavor: "ts", level: 2 }));
  }
  return out;
}

// ── fmt ───────────────────────────────────────────────────────────────────────────────────────────

/** The AST without source positions: what formatting must not change. */
export function astShape(text: string): { shape: string; syntaxErrors: boolean } {
  const p = parse(FUZZ_FILE, text);
  return { shape: JSON.stringify(p.ast, (k, v) => (k === "span" || k.endsWith("Span") ? undefined : v)), syntaxErrors: p.diagnostics.some((d) => d.severity === "error" && /^NN1/.test(d.code)) };
}

function comments(text: string): string[] {
  return (lexer.tokenize(text).groups.comments ?? []).map((c) => c.image.replace(/[ \t]+$/gm, ""));
}

function meaning(text: string): string {
  const r = compile(FUZZ_FILE, text, host);
  return `${JSON.stringify(r.module, (k, v) => (/span$/i.test(k) ? undefined : v))}\n${r.diagnostics.map((d) => d.code).join(",")}`;
}

const WIDTHS: [number, number][] = [
  [100, 2],
  [40, 4],
];

/**
 * The formatter: never throws; refuses a text with syntax errors with NN1xxx diagnostics only; formats every
 * other text (at the house width and a narrow one) to text that parses to the same AST with the same
 * comments, and formatting that again changes nothing. `fmt` is injectable so that a test can show that a
 * broken formatter fails the property.
 */
export function fmtProblems(text: string, fmt: (file: string, text: string, o: { printWidth: number; indent: number }) => FormatResult = format): string[] {
  const out: string[] = [];
  const before = guarded(out, "parse", () => astShape(text));
  if (!before) return out;
  for (const [printWidth, indent] of WIDTHS) {
    const o = { printWidth, indent };
    const at = `fmt (width ${printWidth}, indent ${indent})`;
    const r = guarded(out, at, () => fmt(FUZZ_FILE, text, o));
    if (!r) continue;
    if (!r.ok) {
      const codes = r.diagnostics.map((d) => d.code);
      if (!before.syntaxErrors) out.push(`${at} refused a text that parses: ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ").slice(0, 400)}`);
      else if (!codes.length || codes.some((c) => !/^NN1\d{3}$/.test(c))) out.push(`${at} refused a text with syntax errors with ${codes.join(", ") || "no diagnostic"}`);
      continue;
    }
    if (before.syntaxErrors) {
      out.push(`${at} formatted a text with syntax errors`);
      continue;
    }
    const after = guarded(out, "parse of the output", () => astShape(r.text));
    if (!after) continue;
    if (after.syntaxErrors) out.push(`${at}: the output has syntax errors`);
    else if (after.shape !== before.shape) out.push(`${at}: the output parses to another AST`);
    const ca = comments(text);
    const cb = comments(r.text);
    if (JSON.stringify(ca) !== JSON.stringify(cb)) out.push(`${at}: comments lost, changed or reordered (${ca.length} before, ${cb.length} after)`);
    // Layout only: the IR (without source positions) and the diagnostic codes are the input's.
    if (printWidth === WIDTHS[0]![0]) guarded(out, "compile of the output", () => {
      if (meaning(r.text) !== meaning(text)) out.push(`${at}: the output compiles to another IR or other diagnostics`);
    });
    const again = guarded(out, `${at} of its own output`, () => fmt(FUZZ_FILE, r.text, o));
    if (again && (!again.ok || again.text !== r.text || again.changed)) out.push(`${at} is not idempotent: formatting the output again ${again.ok ? "changes it" : "fails"}`);
  }
  return out;
}

// ── lsp ───────────────────────────────────────────────────────────────────────────────────────────

/**
 * The language server's features on the text as an open document: diagnostics (never NN9001), symbols,
 * hover, completion and definition at a spread of offsets (every range inside the document), and formatting
 * (its edit, applied, is `nnetc fmt`'s output). `probes` offsets are spread evenly over the text.
 */
export function lspProblems(text: string, probes = 12): string[] {
  const out: string[] = [];
  const uri = pathToUri(`/fuzz/${FUZZ_FILE}`);
  const doc = TextDocument.create(uri, "nnet", 1, text);
  const inside = (r: L.Range, what: string) => {
    for (const p of [r.start, r.end]) {
      if (!(p.line >= 0 && p.line < doc.lineCount && p.character >= 0)) {
        out.push(`${what}: ${JSON.stringify(r)} outside the document`);
        return;
      }
    }
  };
  const ws = new Workspace(files);
  ws.set(doc);
  const a = guarded(out, "analyze", () => ws.analyze(uri));
  if (!a) {
    if (a === null) out.push("analyze returned nothing for an open document");
    return out;
  }
  guarded(out, "diagnostics", () => {
    for (const d of lspDiagnostics(a)) {
      if (d.code === "NN9001") out.push(`internal compiler error in the language server: ${d.message}`);
      inside(d.range, `diagnostic ${String(d.code)}`);
    }
  });
  guarded(out, "documentSymbols", () => {
    const walk = (ss: L.DocumentSymbol[]) => ss.forEach((s) => (inside(s.range, "symbol"), inside(s.selectionRange, "symbol"), walk(s.children ?? [])));
    walk(documentSymbols(a));
  });
  // Evenly spread offsets, and the first `probes` identifiers (where hover, completion and definition look names up).
  const offsets = new Set([0, text.length]);
  for (let k = 1; k <= probes; k++) offsets.add(Math.floor((k * text.length) / (probes + 1)));
  const ids = lexer.tokenize(text).tokens.filter((t) => t.tokenType.name === "Identifier");
  for (let k = 0; k < ids.length && k < probes; k++) offsets.add(ids[Math.floor((k * ids.length) / Math.min(ids.length, probes))]!.startOffset + 1);
  for (const offset of offsets) {
    guarded(out, `hover at ${offset}`, () => {
      const h = hover(a, offset);
      if (h?.range) inside(h.range, "hover");
    });
    guarded(out, `completion at ${offset}`, () => completion(a, offset));
    guarded(out, `definition at ${offset}`, () => {
      for (const l of definition(ws, a, offset)) if (l.uri === uri) inside(l.range, "definition");
    });
  }
  guarded(out, "formatting", () => {
    const edits = formatting(doc);
    if (!edits.length) return;
    const f = format(FUZZ_FILE, text);
    const applied = TextDocument.applyEdits(doc, edits);
    if (!f.ok || applied !== f.text) out.push("the formatting edit, applied, is not nnetc fmt's output");
  });
  return out;
}

export const RUN: Record<Target, (text: string) => string[]> = { check: checkProblems, fmt: fmtProblems, lsp: (t) => lspProblems(t) };
