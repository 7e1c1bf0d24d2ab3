// argv → compiler API → stdout/stderr and an exit code. No logic of its own beyond I/O.
// Exit codes: 0 clean (warnings allowed), 1 errors in the input, 2 usage or I/O problems.
import { Command, CommanderError } from "commander";
import { readFileSync, statSync, writeFileSync, renameSync, openSync, fsyncSync, closeSync, unlinkSync } from "node:fs";
import * as path from "node:path";
import { compile, type CompileResult, type Host } from "../index.js";
import { diag } from "../diagnostics.js";
import { diagnosticToJson, renderDiagnostic, summaryLine } from "../render.js";
import { renderSummary, summarize } from "../summary.js";

const VERSION = "0.1.0";

/** A problem with the command line or the file system: reported in one line, exit code 2. */
class UsageError extends Error {}

function readText(file: string): { text: string } | { error: string } {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : `cannot access it (${code ?? "unknown error"})` };
  }
  if (st.isDirectory()) return { error: "it is a directory; pass .nnet files (e.g. models/*.nnet)" };
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code === "EACCES" ? "permission denied" : `cannot read it (${code ?? "unknown error"})` };
  }
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(buf).replace(/^\uFEFF/, "") };
  } catch {
    return { error: `it is not UTF-8 text (invalid byte at offset ${firstInvalidUtf8(buf)})` };
  }
}

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) {
      if (i + k >= b.length || (b[i + k]! & 0xc0) !== 0x80) return i;
    }
    if ((c === 0xe0 && b[i + 1]! < 0xa0) || (c === 0xed && b[i + 1]! > 0x9f) || (c === 0xf0 && b[i + 1]! < 0x90) || (c === 0xf4 && b[i + 1]! > 0x8f)) return i;
    i += n + 1;
  }
  return b.length;
}

const host: Host = { readFile: readText };

function load(file: string): CompileResult {
  const r = readText(file);
  if ("error" in r) throw new UsageError(`cannot read ${file}: ${r.error}`);
  return compile(file, r.text, host);
}

function color(): boolean {
  return !!process.stderr.isTTY && !process.env.NO_COLOR;
}

function report(res: CompileResult, json: boolean): boolean {
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (!json) {
    for (const d of res.diagnostics) process.stderr.write(renderDiagnostic(d, res.sources, { color: color() }) + "\n\n");
  }
  return errors.length === 0;
}

/** Write a file so that a crash never leaves it half-written: temp file, fsync, rename. */
function writeAtomic(file: string, data: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    const fd = openSync(tmp, "r");
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* nothing to clean up */
    }
    throw new UsageError(`cannot write ${file}: ${(e as Error).message}`);
  }
}

function pickModel(res: CompileResult, file: string, name: string | undefined) {
  const models = res.module.models;
  if (name) {
    const m = models.find((x) => x.name === name);
    if (!m) throw new UsageError(`${file} has no model "${name}"; it declares: ${models.map((x) => x.name).join(", ") || "no models"}`);
    return m;
  }
  if (models.length === 1) return models[0]!;
  if (models.length === 0) throw new UsageError(`${file} declares no model`);
  const second = models[1]!.span;
  const d = diag("ambiguousModel", { file, start: second.start, end: second.end }, { models: models.map((x) => x.name).join(", ") });
  process.stderr.write(renderDiagnostic(d, res.sources, { color: color() }) + "\n");
  throw new UsageError(""); // the diagnostic above says it all
}

function program(): Command {
  const prog = new Command("nnetc")
    .description("compiler for .nnet neural-network descriptions")
    .version(VERSION, "-v, --version")
    .showHelpAfterError("(run nnetc --help for usage)")
    .exitOverride();

  prog
    .command("check")
    .description("parse and check .nnet files: syntax, names, shapes, dtypes and training plans")
    .argument("<files...>", ".nnet files")
    .option("--json", "print diagnostics as JSON")
    .action((files: string[], o: { json?: boolean }) => {
      let ok = true;
      const all: unknown[] = [];
      for (const f of files) {
        const res = load(f);
        const clean = report(res, !!o.json);
        ok &&= clean;
        if (o.json) all.push(...res.diagnostics.map((d) => diagnosticToJson(d, res.sources)));
        else if (clean) {
          const m = res.module;
          const warn = res.diagnostics.length ? `, ${summaryLine(res.diagnostics)}` : "";
          process.stdout.write(`${f}: ok (${plural(m.models.length, "model")}, ${plural(m.datasets.length, "dataset")}, ${plural(m.plans.length, "plan")}${warn})\n`);
        } else process.stderr.write(`${f}: ${summaryLine(res.diagnostics)}\n`);
      }
      if (o.json) process.stdout.write(JSON.stringify(all, null, 2) + "\n");
      process.exitCode = ok ? 0 : 1;
    });

  prog
    .command("summary")
    .description("print a model's layers, output shapes, parameter counts and FLOPs")
    .argument("<file>", ".nnet file")
    .option("--model <name>", "the model to summarize (needed when the file declares several)")
    .option("--json", "print the summary as JSON")
    .action((file: string, o: { model?: string; json?: boolean }) => {
      const res = load(file);
      const clean = report(res, !!o.json);
      if (!clean) {
        if (o.json) process.stdout.write(JSON.stringify({ diagnostics: res.diagnostics.map((d) => diagnosticToJson(d, res.sources)) }, null, 2) + "\n");
        else process.stderr.write(`${file}: ${summaryLine(res.diagnostics)}\n`);
        process.exitCode = 1;
        return;
      }
      const s = summarize(pickModel(res, file, o.model));
      process.stdout.write((o.json ? JSON.stringify(s, null, 2) : renderSummary(s)) + "\n");
    });

  prog
    .command("compile")
    .description("compile a .nnet file; --emit ir prints the checked IR as JSON")
    .argument("<file>", ".nnet file")
    .option("--emit <what>", "what to produce: ir", "ir")
    .option("-o, --out <file>", "write to a file instead of stdout")
    .action((file: string, o: { emit: string; out?: string }) => {
      if (o.emit !== "ir") throw new UsageError(`--emit ${o.emit} is not supported; use --emit ir`);
      const res = load(file);
      if (!report(res, false)) {
        process.stderr.write(`${file}: ${summaryLine(res.diagnostics)}\n`);
        process.exitCode = 1;
        return;
      }
      const text = JSON.stringify(res.module, null, 2) + "\n";
      if (o.out) writeAtomic(o.out, text);
      else process.stdout.write(text);
    });
  return prog;
}

function plural(n: number, w: string): string {
  return `${n} ${w}${n === 1 ? "" : "s"}`;
}

export async function main(argv: string[]): Promise<number> {
  // A reader that stops early (nnetc compile … | head) is not an error.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  const prog = program();
  prog.configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  try {
    await prog.parseAsync(argv, { from: "user" });
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError) {
      if (e.message) process.stderr.write(`nnetc: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`nnetc: internal error: ${(e as Error).message}\nThis is a bug in nnetc; please report it with the command and input.\n`);
    return 70;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
