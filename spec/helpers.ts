// Test helpers: compile from memory, compare with golden files (UPDATE=1 rewrites them), one-line assertions.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as assert from "uvu/assert";
import { compile, type CompileResult, type Host } from "../compiler/index.js";

/** The repository root (tests run from dist/spec, sources live in spec/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const UPDATE = process.env.UPDATE === "1";

/** Every .nnet file under `dir` (relative to the repository root), in sorted order, as root-relative paths. */
export function nnetFilesUnder(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir))
    .sort()
    .flatMap((f) => {
      const rel = path.posix.join(dir, f);
      return statSync(path.join(ROOT, rel)).isDirectory() ? nnetFilesUnder(rel) : f.endsWith(".nnet") ? [rel] : [];
    });
}

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

/** What a child process did: exit code (null when killed), its output, and how long it ran. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run `node ARGS` (colour off), collecting its output; killed after `timeoutMs`. Rejects only if it cannot start. */
export function runNode(args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd: o.cwd ?? ROOT, env: { ...(o.env ?? process.env), NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? 120_000);
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/**
 * `nnetc train ARGS --json` killed with SIGKILL once it has reported `epochs` epochs (after `delayMs`, so that the
 * checkpoint of the last one may or may not be written): the crash a resume must survive.
 */
export function trainKilledAfter(args: string[], epochs: number, delayMs = 0): Promise<void> {
  return new Promise<void>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "train", ...args, "--json"]);
    let seen = 0;
    child.stdout.on("data", (b: Buffer) => {
      seen += (b.toString().match(/"event":"epoch"/g) ?? []).length;
      if (seen >= epochs) setTimeout(() => child.kill("SIGKILL"), delayMs);
    });
    child.on("close", () => resolve());
  });
}
