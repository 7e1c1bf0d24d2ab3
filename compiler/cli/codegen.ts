// `nnetc compile` for code targets: compile, emit, format, write (atomically, only when the text changed),
// and --watch, which recompiles when the file or anything it imports changes. Loaded only by that command.
import { existsSync, mkdirSync, readFileSync, watch, type FSWatcher } from "node:fs";
import * as path from "node:path";
import { emitCode, formatTs, pluginRefusals, inputDigest, isCurrent, mainModel, type Flavor } from "../emit/index.js";
import type { CompileResult } from "../index.js";
import type { OptLevel } from "../passes/index.js";
import { summaryLine } from "../render.js";

export interface CliIO {
  load(file: string): CompileResult;
  report(res: CompileResult, json: boolean): boolean;
  writeAtomic(file: string, data: string): void;
}

/** Where the code for a .nnet file goes: FILE.ts, FILE.js or FILE.d.nnet.ts, in `out` or beside the file. */
export function outputPath(file: string, target: Flavor, out: string | undefined): string {
  const base = path.basename(file).replace(/\.nnet$/, "");
  const ext = target === "ts" ? ".ts" : target === "js" ? ".js" : ".d.nnet.ts";
  return path.join(out ?? path.dirname(file), base + ext);
}

/** Compile one file to code; null when it has errors (reported on stderr, nothing written). */
export async function compileToCode(file: string, target: Flavor, out: string | undefined, io: CliIO, level: OptLevel = 1): Promise<CompileResult | null> {
  const res = io.load(file);
  if (!io.report(res, false)) {
    process.stderr.write(`${file}: ${summaryLine(res.diagnostics)}\n`);
    return null;
  }
  if (res.module.models.length === 0) {
    process.stderr.write(`${file}: declares no model, so there is no code to emit\n`);
    return null;
  }
  const refused = pluginRefusals(res.module);
  if (refused.length) {
    io.report({ ...res, diagnostics: refused }, false);
    process.stderr.write(`${file}: ${summaryLine(refused)}\n`);
    return null;
  }
  const dest = out === "-" ? path.join(path.dirname(file), "stdout.ts") : outputPath(file, target, out);
  const req = { file, outFile: dest, flavor: target, level };
  const main = mainModel(res.module)!;
  const what = `(${res.module.models.map((m) => m.name).join(", ")}; default export ${main.name})`;
  // Unchanged input and an untouched output: nothing to emit or format (prettier is most of the cost).
  if (out !== "-" && existsSync(dest) && isCurrent(readFileSync(dest, "utf8"), inputDigest(res, req))) {
    process.stdout.write(`unchanged ${dest} ${what}\n`);
    return res;
  }
  const code = await formatTs(emitCode(res, req));
  if (out === "-") {
    process.stdout.write(code);
    return res;
  }
  const same = existsSync(dest) && readFileSync(dest, "utf8") === code;
  if (!same) {
    mkdirSync(path.dirname(dest), { recursive: true });
    io.writeAtomic(dest, code);
  }
  process.stdout.write(`${same ? "unchanged" : "wrote"} ${dest} ${what}\n`);
  return res;
}

/** Recompile on every change of the files or their imports, until interrupted. */
export async function watchFiles(files: string[], target: Flavor, out: string | undefined, io: CliIO, level: OptLevel = 1): Promise<never> {
  const watchers = new Map<string, FSWatcher>();
  let timer: NodeJS.Timeout | null = null;
  let running = false;
  let again = false;

  /** Watch the folders holding every source (editors often replace a file rather than write it). */
  const rewatch = () => {
    const wanted = new Set<string>();
    for (const f of files) {
      wanted.add(path.resolve(path.dirname(f)));
      try {
        for (const s of io.load(f).sources.keys()) wanted.add(path.resolve(path.dirname(s)));
      } catch {
        /* unreadable now: its folder is watched, so it is compiled when it comes back */
      }
    }
    for (const [dir, w] of watchers) if (!wanted.has(dir)) (w.close(), watchers.delete(dir));
    for (const dir of wanted) {
      if (watchers.has(dir) || !existsSync(dir)) continue;
      watchers.set(dir, watch(dir, (_event, name) => name && /\.nnet$/.test(String(name)) && schedule()));
    }
  };

  const run = async () => {
    if (running) return void (again = true);
    running = true;
    do {
      again = false;
      for (const f of files) {
        try {
          await compileToCode(f, target, out, io, level);
        } catch (e) {
          process.stderr.write(`nnetc: ${(e as Error).message}\n`);
        }
      }
      rewatch();
    } while (again);
    running = false;
    process.stdout.write(`watching ${files.length === 1 ? files[0] : `${files.length} files`} and their imports (Ctrl-C to stop)\n`);
  };

  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void run(), 60);
  };

  rewatch();
  process.stdout.write(`watching ${files.length === 1 ? files[0] : `${files.length} files`} and their imports (Ctrl-C to stop)\n`);
  return new Promise<never>(() => {
    process.once("SIGINT", () => {
      for (const w of watchers.values()) w.close();
      process.exit(0);
    });
  });
}
