// The emitters' entry point: a compiled module → TypeScript (formatted with prettier), JavaScript, or
// declarations. emitCode() is pure and synchronous; formatTs() runs prettier with pinned options.
import * as path from "node:path";
import type { CompileResult } from "../index.js";
import { emitModule, mainModel, type Flavor } from "./ts.js";

export { mainModel, type Flavor };

/** The compiler's version, written into emitted modules and checked by nnetc/runtime. */
export const VERSION = "0.1.0";

export interface EmitRequest {
  /** The .nnet file as given (used for comments and to find its folder). */
  file: string;
  /** Where the emitted file will be written; the module finds the .nnet file relative to it. */
  outFile: string;
  flavor: Flavor;
}

/** posix relative path from the emitted file's folder to the .nnet file, as a URL reference. */
export function sourceRef(file: string, outFile: string): string {
  const rel = path.relative(path.dirname(path.resolve(outFile)), path.resolve(file)).split(path.sep);
  // Unpaired surrogates (not possible in names read from disk, but possible in a string) cannot be URI-encoded.
  const wellFormed = (s: string) => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
  const ref = rel.map((s) => (s === ".." || s === "." ? s : encodeURIComponent(wellFormed(s)))).join("/");
  return ref.startsWith(".") ? ref : `./${ref}`;
}

/** Emit code for a module without errors (check the diagnostics first). */
export function emitCode(res: CompileResult, req: EmitRequest): string {
  return emitModule(res.module, {
    flavor: req.flavor,
    sourceRef: sourceRef(req.file, req.outFile),
    displayPath: req.file.split(path.sep).join("/"),
    sourceText: (f) => res.sources.get(f)?.text,
    version: VERSION,
  });
}

/** The prettier options emitted code is formatted with (fixed, so that output is byte-identical everywhere). */
export const PRETTIER_OPTIONS = { parser: "typescript", printWidth: 120, tabWidth: 2, useTabs: false, semi: true, singleQuote: false, trailingComma: "all", bracketSpacing: true, arrowParens: "always", endOfLine: "lf" } as const;

/** Format TypeScript with prettier (loaded on first use). */
export async function formatTs(code: string): Promise<string> {
  const prettier = await import("prettier");
  return prettier.format(code, { ...PRETTIER_OPTIONS });
}
