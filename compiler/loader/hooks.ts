// The Node.js module hooks behind `node --import nnetc/register` (registered by register.ts): an import of a
// .nnet file compiles it to JavaScript (the "js" flavor of `nnetc compile`) and loads that as an ES module
// whose URL is the .nnet file's own, so its `new URL("./x.nnet", import.meta.url)` is the file on disk.
//
// compileForImport() is shared with the bundler plugin (plugin.ts). It caches the code on disk, one entry per
// .nnet file, valid while the sha256 of the compiler's VERSION and of the text of the file and of every file
// it imports is unchanged; a hit reads the sources and the entry, and never loads the compiler.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { readSource } from "../read_source.js";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { VERSION } from "../emit/index.js";

/** One diagnostic of a failed import, located and rendered as `nnetc check` prints it (no colour). */
export interface ImportDiagnostic {
  code: string;
  severity: "error" | "warning";
  message: string;
  /** The file as displayed (relative to the working directory when inside it) and 1-based position. */
  file: string;
  line: number;
  column: number;
  /** `file:line:col - error NN3001: message`, the code frame and the hint. */
  rendered: string;
}

/** A .nnet file that does not compile: the message holds every error, rendered; no compiler stack trace. */
export class NnetCompileError extends Error {
  /** Survives the trip from the hooks' thread to the importer (the class and the other fields do not). */
  readonly code = "ERR_NNETC_COMPILE";
  /** The imported .nnet file (absolute). */
  declare readonly file: string;
  /** Its errors (and warnings), in file order; empty when the file compiled but cannot be imported. */
  declare readonly diagnostics: ImportDiagnostic[];
  constructor(file: string, diagnostics: ImportDiagnostic[], message: string) {
    super(message);
    // Not enumerable, so that Node's report of an uncaught error shows the rendered message only.
    Object.defineProperty(this, "file", { value: file });
    Object.defineProperty(this, "diagnostics", { value: diagnostics });
    Object.defineProperty(this, "name", { value: "NnetCompileError", configurable: true, writable: true });
    // The stack is the message plus one frame at the first error, so that Node prints the diagnostics and
    // where they are (not the compiler's frames) when the import is uncaught.
    const at = diagnostics.find((d) => d.severity === "error");
    this.stack = `${this.name}: ${message}\n    at ${at ? `${path.resolve(at.file)}:${at.line}:${at.column}` : file}`;
  }
}

export interface CompileForImportOptions {
  /** Cache folder, or false for no cache (default: cacheDir()). */
  cache?: string | false;
}

export interface CompiledImport {
  /** The module as JavaScript (ES module; imports @tensorflow/tfjs-core and nnetc/runtime). */
  code: string;
  /** The .nnet file (absolute) and every file it imports: a change to any of them means compiling again. */
  files: string[];
  /** Warnings, rendered (a file with errors throws NnetCompileError instead). */
  warnings: string[];
  /** The cache entry used, and whether the code came from it (null when caching is off). */
  cache: { entry: string; hit: boolean } | null;
}

/**
 * Where compiled modules are cached: $NNETC_CACHE_DIR, else node_modules/.cache/nnetc in the nearest folder
 * at or above the working directory that has node_modules, else nnetc-cache in the system's temporary folder.
 */
export function cacheDir(): string {
  const env = process.env.NNETC_CACHE_DIR;
  if (env) return path.resolve(env);
  for (let dir = process.cwd(); ; dir = path.dirname(dir)) {
    if (isDir(path.join(dir, "node_modules"))) return path.join(dir, "node_modules", ".cache", "nnetc");
    if (path.dirname(dir) === dir) return path.join(tmpdir(), "nnetc-cache");
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** The cache key: the compiler's version and every source by path and text. */
function cacheKey(sources: { file: string; text: string }[]): string {
  const h = createHash("sha256").update(`nnetc ${VERSION}\0`);
  for (const s of sources) h.update(`${s.file}\0${s.text.length}\0${s.text}\0`);
  return h.digest("hex");
}

interface CacheEntry {
  version: string;
  file: string;
  key: string;
  sources: string[];
  warnings: string[];
  code: string;
}

/** The entry if the compiler version and every source's text are what they were when it was written. */
function readEntry(entry: string, file: string): CacheEntry | null {
  let e: CacheEntry;
  try {
    e = JSON.parse(readFileSync(entry, "utf8")) as CacheEntry;
  } catch {
    return null;
  }
  if (e.version !== VERSION || e.file !== file || !Array.isArray(e.sources) || typeof e.code !== "string") return null;
  try {
    return cacheKey(e.sources.map((f) => ({ file: f, text: readFileSync(f, "utf8") }))) === e.key ? e : null;
  } catch {
    return null; // a source is gone: compile again, which reports it
  }
}

/** Write the entry atomically (temporary file, rename), so that concurrent processes never read half of one. */
function writeEntry(entry: string, e: CacheEntry): void {
  try {
    mkdirSync(path.dirname(entry), { recursive: true });
    const tmp = `${entry}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, JSON.stringify(e));
    try {
      renameSync(tmp, entry);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  } catch {
    /* a read-only or full disk only costs the next import a compile */
  }
}

/** How a path is shown in diagnostics: relative to the working directory when inside it, else absolute. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : file;
}

/**
 * Compile a .nnet file for import: its main model's module as JavaScript, located at the .nnet file itself
 * (`new URL("./x.nnet", import.meta.url)` is the file when the module's URL is the file's). Throws
 * NnetCompileError, with every diagnostic rendered, when the file has errors or declares no model.
 */
export async function compileForImport(file: string, options: CompileForImportOptions = {}): Promise<CompiledImport> {
  const abs = path.resolve(file);
  const display = displayPath(abs);
  const dir = options.cache === undefined ? cacheDir() : options.cache;
  // One entry per file (a new version replaces the old one); the paths in the code's comments are as seen
  // from the working directory of the process that compiled it.
  const entry = dir === false ? null : path.join(dir, `${sha256(`${VERSION}\0${abs}`).slice(0, 32)}.json`);
  if (entry) {
    const hit = readEntry(entry, abs);
    if (hit) return { code: hit.code, files: hit.sources, warnings: hit.warnings, cache: { entry, hit: true } };
  }

  const read = readSource(abs);
  if ("error" in read) throw new NnetCompileError(abs, [], read.refused ? read.error : `cannot read ${display}: ${read.error}`);
  const text = read.text;
  // The compiler is loaded on a miss only: it is most of the cost of the first import.
  const [{ compile }, { renderDiagnostic, summaryLine }, { emitCode, mainModel }, { pathChecker, projectRoot }] = await Promise.all([import("../index.js"), import("../render.js"), import("../emit/index.js"), import("../root.js")]);
  const res = compile(display, text, {
    readFile: (f) => readSource(f),
    // imports and data paths stay in the project of the imported .nnet file (NNETC_ROOT, else package.json/.nnetroot)
    checkPath: pathChecker(projectRoot(abs)),
  });
  const diagnostics: ImportDiagnostic[] = res.diagnostics.map((d) => {
    const pos = res.sources.get(d.span.file)?.position(d.span.start) ?? { line: 1, col: 1 };
    return { code: d.code, severity: d.severity, message: d.message, file: d.span.file, line: pos.line, column: pos.col, rendered: renderDiagnostic(d, res.sources, { color: false }) };
  });
  if (diagnostics.some((d) => d.severity === "error")) {
    const body = diagnostics.map((d) => d.rendered).join("\n\n");
    throw new NnetCompileError(abs, diagnostics, `cannot import ${display}: ${summaryLine(res.diagnostics)}\n\n${body}\n`);
  }
  if (!mainModel(res.module)) throw new NnetCompileError(abs, diagnostics, `cannot import ${display}: it declares no model (a file of blocks is imported by other .nnet files, not by JavaScript)`);

  const code = emitCode(res, { file: display, outFile: abs, flavor: "js" });
  const sources = [...res.sources.keys()].map((f) => path.resolve(f));
  const warnings = diagnostics.map((d) => d.rendered);
  if (entry) {
    const key = cacheKey([...res.sources.values()].map((s) => ({ file: path.resolve(s.path), text: s.text })));
    writeEntry(entry, { version: VERSION, file: abs, key, sources, warnings, code });
  }
  return { code, files: sources, warnings, cache: entry ? { entry, hit: false } : null };
}

// ── The hooks (module.register) ─────────────────────────────────────────────────────────────────────

interface ResolveContext {
  parentURL?: string | undefined;
  conditions: string[];
  importAttributes?: Record<string, string>;
}
interface ResolveResult {
  url: string;
  format?: string | null | undefined;
  shortCircuit?: boolean;
  importAttributes?: Record<string, string>;
}
interface LoadContext {
  format?: string | null | undefined;
  conditions: string[];
  importAttributes?: Record<string, string>;
}
interface LoadResult {
  format: string;
  source?: string | ArrayBuffer | Uint8Array | null;
  shortCircuit?: boolean;
}
type NextResolve = (specifier: string, context?: Partial<ResolveContext>) => ResolveResult | Promise<ResolveResult>;
type NextLoad = (url: string, context?: Partial<LoadContext>) => LoadResult | Promise<LoadResult>;

/** A file: URL naming a .nnet file (a query or fragment is allowed and ignored). */
export function isNnetUrl(url: string): boolean {
  return url.startsWith("file:") && new URL(url).pathname.endsWith(".nnet");
}

const isBare = (s: string) => !/^(\.{0,2}\/|[a-zA-Z][a-zA-Z\d+.-]*:)/.test(s);

/**
 * Resolution is Node's, untouched, except for the imports of a compiled .nnet module itself
 * (nnetc/runtime, @tensorflow/tfjs-core): when a .nnet file lives where those cannot be found (outside the
 * project that installed nnetc), they resolve from this nnetc installation instead.
 */
export async function resolve(specifier: string, context: ResolveContext, nextResolve: NextResolve): Promise<ResolveResult> {
  try {
    return await nextResolve(specifier, context);
  } catch (e) {
    const parent = context.parentURL;
    if (!parent || !isNnetUrl(parent) || !isBare(specifier) || (e as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") throw e;
    return nextResolve(specifier, { ...context, parentURL: import.meta.url });
  }
}

/** A .nnet file becomes an ES module (compiled, or from the cache); everything else is left to Node. */
export async function load(url: string, context: LoadContext, nextLoad: NextLoad): Promise<LoadResult> {
  if (!isNnetUrl(url)) return nextLoad(url, context);
  const r = await compileForImport(fileURLToPath(new URL(url.replace(/[?#].*$/, ""))));
  for (const w of r.warnings) process.stderr.write(`${w}\n`);
  return { format: "module", source: r.code, shortCircuit: true };
}
