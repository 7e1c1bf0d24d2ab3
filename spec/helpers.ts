// Test helpers: compile from memory, compare with golden files (UPDATE=1 rewrites them), one-line assertions.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as assert from "uvu/assert";
import { compile, type CompileResult, type Host } from "../compiler/index.js";

/** The repository root (tests run from dist/spec, sources live in spec/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const UPDATE = process.env.UPDATE === "1";

/** A host serving in-memory files (for imports), falling back to the disk. */
export function memoryHost(files: Record<string, string> = {}): Host {
  return {
    readFile(f) {
      if (f in files) return { text: files[f]! };
      try {
        return { text: readFileSync(f, "utf8") };
      } catch {
        return { error: "no such file" };
      }
    },
  };
}

export function compileText(text: string, file = "test.nnet", files: Record<string, string> = {}): CompileResult {
  return compile(file, text, memoryHost(files));
}

export function codes(r: CompileResult): string[] {
  return r.diagnostics.map((d) => d.code);
}

export function expectClean(r: CompileResult): void {
  const errs = r.diagnostics.map((d) => `${d.code} ${d.message}`);
  assert.equal(errs, [], "expected no diagnostics");
}

/** Compare `actual` with the golden file at `rel` (relative to the repo root); UPDATE=1 rewrites it. */
export function golden(rel: string, actual: string): void {
  const file = path.join(ROOT, rel);
  if (UPDATE || !existsSync(file)) {
    if (!UPDATE && process.env.CI) assert.unreachable(`golden file ${rel} is missing; run npm run test:update and review it`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  const expected = readFileSync(file, "utf8");
  if (expected !== actual) assert.fixture(actual, expected, `${rel} differs (npm run test:update accepts the new output)`);
}
