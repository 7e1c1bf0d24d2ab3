// The command line: exit codes (0 clean, 1 errors in the input, 2 usage or I/O problems), what goes to
// stdout and stderr, and the JSON forms. Each scenario runs against dist/compiler/cli/main.js and against
// the bundled executable that package.json's "bin" names, side by side.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ROOT } from "../helpers.js";
import { irProblems } from "../ir-schema.js";

const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string; bin?: Record<string, string> | string };
const binPath = typeof pkg.bin === "string" ? pkg.bin : pkg.bin?.nnetc;

/** The entry points under test: the compiled CLI module, and the published executable when it differs. */
const ENTRIES: { label: string; file: string }[] = [{ label: "main.js", file: "dist/compiler/cli/main.js" }];
if (binPath && path.normalize(binPath) !== path.normalize(ENTRIES[0]!.file)) ENTRIES.push({ label: `bin ${binPath}`, file: binPath });

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function nnetc(entry: string, args: string[], cwd = ROOT): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, entry), ...args], { cwd, env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    // Generous: the scenarios start several processes at once, and a loaded CI machine must not fail them.
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Run one scenario against every entry point at once; failures name the entry point. */
async function each(scenario: (run: (args: string[], cwd?: string) => Promise<Run>, label: string) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(ENTRIES.map((e) => scenario((args, cwd) => nnetc(e.file, args, cwd), e.label)));
  const failed = results.map((r, i) => [r, ENTRIES[i]!.label] as const).filter(([r]) => r.status === "rejected");
  if (failed.length) {
    // The first failure keeps its diff; the others are named, so that it is clear which entry points fail.
    const [r, label] = failed[0]!;
    const err = (r as PromiseRejectedResult).reason as Error;
    const also = failed.slice(1).map(([, l]) => l);
    err.message = `[${label}${also.length ? `; also fails for ${also.join(", ")}` : ""}] ${err.message}`;
    throw err;
  }
}

/** A usage or I/O error: exit 2, nothing on stdout, one line on stderr starting "nnetc:", no stack trace. */
function usageError(r: Run, label: string, pattern: RegExp): void {
  assert.is(r.code, 2, `${label}: exit code (stderr: ${r.stderr})`);
  assert.is(r.stdout, "", `${label}: stdout`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.is(lines.length, 1, `${label}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^nnetc: /, `${label}: the line starts with "nnetc:"`);
  has(lines[0]!, pattern, label);
  noStack(r, label);
}

/** assert.match that shows the text searched when it fails. */
function has(text: string, pattern: string | RegExp, label: string): void {
  assert.match(text, pattern, `${label}: expected ${String(pattern)} in:\n${text}`);
}

function noStack(r: Run, label: string): void {
  const plain = r.stderr.replace(/\x1b\[[0-9;]*m/g, "");
  assert.not.match(plain, /^\s+at .+:\d+:\d+\)?$/m, `${label}: stderr shows a stack trace:\n${plain}`);
  assert.not.match(plain, /internal error|Unhandled 'error' event/i, `${label}: stderr reports an internal error:\n${plain}`);
}

const MLP = "spec/samples/mlp.nnet";
let tmp = "";
const at = (name: string) => path.join(tmp, name);

const ERRORS = `model Broken {
  input image: f32[batch, 28, 28, 1]
  output logits = image -> dense(10)
}
model Typo {
  input x: f32[batch, 4]
  output y = x -> dense(4) -> sigmoud
}
`;

const WARNING = `model Warned {
  input x: f32[batch, 4]
  unused = x -> dense(3)
  output y = x -> dense(2)
}
`;

const SELF_IMPORT = `import { A } from "self.nnet"
block A() { out = in -> relu }
model M {
  input x: f32[batch, 4]
  output y = x -> A
}
`;

const TWO_MODELS = `model A {
  input x: f32[batch, 4]
  output y = x -> dense(2)
}
model B {
  input x: f32[batch, 4]
  output y = x -> dense(3)
}
`;

test.before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), "nnetc-cli-"));
  writeFileSync(at("errors.nnet"), ERRORS);
  writeFileSync(at("warning.nnet"), WARNING);
  writeFileSync(at("two.nnet"), TWO_MODELS);
  writeFileSync(at("big.nnet"), "model Big {\n  input x: f32[batch, 8]\n  repeat 600 { x = x -> dense(8) }\n  output y = x\n}\n");
  // Invalid UTF-8: a UTF-16 byte-order mark, a lone continuation byte, an overlong encoding.
  writeFileSync(at("latin.nnet"), Buffer.from([0xff, 0xfe, 0x6d, 0x00, 0x80, 0xc0, 0xaf]));
  writeFileSync(at("late-bad-byte.nnet"), Buffer.concat([Buffer.from("model M {\n"), Buffer.from([0xe9]), Buffer.from(" }\n")]));
  mkdirSync(at("dir.nnet"));
  for (const e of ENTRIES) assert.ok(existsSync(path.join(ROOT, e.file)), `${e.file} is missing: run npm run build`);
});

test.after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ── check ─────────────────────────────────────────────────────────────────────────────────────────

test("check: a clean file exits 0 and says ok", () =>
  each(async (run, label) => {
    const r = await run(["check", MLP]);
    assert.is(r.code, 0, `${label}: ${r.stderr}`);
    assert.is(r.stdout, `${MLP}: ok (1 model, 1 dataset, 1 plan)\n`, label);
    assert.is(r.stderr, "", label);
  }));

test("check: warnings alone still exit 0, and are shown", () =>
  each(async (run, label) => {
    const r = await run(["check", at("warning.nnet")]);
    assert.is(r.code, 0, label);
    has(r.stdout, /warning\.nnet: ok \(1 model, 0 datasets, 0 plans, 0 errors, 1 warning\)/, label);
    has(r.stderr, /warning\.nnet:3:3 - warning NN2021: "unused" is computed but never reaches an output/, label);
  }));

test("check: a file with errors exits 1 and renders the diagnostics on stderr", () =>
  each(async (run, label) => {
    const file = at("errors.nnet");
    const r = await run(["check", file]);
    assert.is(r.code, 1, label);
    assert.is(r.stdout, "", `${label}: nothing on stdout`);
    // path:line:col - severity code: message, then a code frame with carets, then the hint.
    has(r.stderr, `${file}:3:28 - error NN3001: dense expects [batch, features] or [batch, steps, features], got [batch, 28, 28, 1]`, label);
    assert.match(r.stderr, /^ 3 \|   output logits = image -> dense\(10\)$/m, `${label}: code frame`);
    assert.match(r.stderr, /^\s+\|\s+\^+$/m, `${label}: carets`);
    has(r.stderr, /hint: add flatten before dense/, label);
    has(r.stderr, `${file}:7:31 - error NN2001: unknown layer or block "sigmoud"`, label);
    has(r.stderr, 'hint: did you mean "sigmoid"?', label);
    has(r.stderr, `${file}: 2 errors, 0 warnings`, label);
    noStack(r, label);
  }));

test("check --json: diagnostics as a JSON array with code, line and column", () =>
  each(async (run, label) => {
    const file = at("errors.nnet");
    const [r, clean] = await Promise.all([run(["check", "--json", file]), run(["check", "--json", MLP])]);
    assert.is(r.code, 1, label);
    assert.is(r.stderr, "", `${label}: stderr stays empty in JSON mode`);
    const ds = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.ok(Array.isArray(ds) && ds.length === 2, label);
    for (const d of ds) {
      assert.match(String(d.code), /^NN\d{4}$/, label);
      assert.is(d.severity, "error", label);
      assert.type(d.message, "string", label);
      assert.is(d.file, file, label);
      for (const k of ["line", "column", "endLine", "endColumn", "start", "end"]) assert.ok(Number.isInteger(d[k]), `${label}: ${k} is an integer`);
    }
    assert.equal(ds.map((d) => [d.code, d.line, d.column]), [["NN3001", 3, 28], ["NN2001", 7, 31]], label);
    assert.is(clean.code, 0, label);
    assert.equal(JSON.parse(clean.stdout), [], label);
  }));

test("check: several files, one with errors, exits 1 and reports each", () =>
  each(async (run, label) => {
    const r = await run(["check", MLP, at("errors.nnet")]);
    assert.is(r.code, 1, label);
    has(r.stdout, `${MLP}: ok`, label);
    has(r.stderr, "errors.nnet: 2 errors", label);
  }));

test("check: how the path is spelled does not change the diagnostics (a file that imports itself)", () =>
  each(async (run, label) => {
    const dir = at(`self-${label.replace(/\W+/g, "_")}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, "self.nnet"), SELF_IMPORT);
    const spellings = ["self.nnet", "./self.nnet", path.join(dir, "self.nnet")];
    const runs = await Promise.all(spellings.map((f) => run(["check", "--json", f], dir)));
    const seen = runs.map((r) => (JSON.parse(r.stdout) as { code: string; line: number; column: number }[]).map((d) => `${d.code} ${d.line}:${d.column}`));
    for (const [i, r] of runs.entries()) assert.is(r.code, 1, `${label}: ${spellings[i]}`);
    assert.equal(seen[0], ["NN2020 1:19"], `${label}: self.nnet`);
    assert.equal(seen[1], seen[0], `${label}: ./self.nnet reports what self.nnet reports`);
    assert.equal(seen[2], seen[0], `${label}: an absolute path reports what self.nnet reports`);
  }));

// ── usage and I/O errors: exit 2 ──────────────────────────────────────────────────────────────────

test("a missing file exits 2 with one clear line", () =>
  each(async (run, label) => {
    const [check, summary, compile] = await Promise.all([run(["check", at("nope.nnet")]), run(["summary", at("nope.nnet")]), run(["compile", at("nope.nnet")])]);
    usageError(check, label, /cannot read .*nope\.nnet: no such file$/);
    usageError(summary, label, /no such file/);
    usageError(compile, label, /no such file/);
  }));

test("a directory exits 2", () =>
  each(async (run, label) => {
    const [named, plain] = await Promise.all([run(["check", at("dir.nnet")]), run(["check", tmp])]);
    usageError(named, label, /is a directory/);
    usageError(plain, label, /is a directory/);
  }));

test("a file that is not UTF-8 exits 2 and says so", () =>
  each(async (run, label) => {
    const [first, late] = await Promise.all([run(["check", at("latin.nnet")]), run(["check", at("late-bad-byte.nnet")])]);
    usageError(first, label, /not UTF-8 text \(invalid byte at offset 0\)/);
    // "model M {\n" is bytes 0-9; the stray 0xe9 is byte 10.
    usageError(late, label, /not UTF-8 text \(invalid byte at offset 10\)/);
  }));

test("an unknown command or option exits 2", () =>
  each(async (run, label) => {
    const [cmd, opt, missing, emit, none] = await Promise.all([run(["frobnicate", MLP]), run(["check", "--frobnicate", MLP]), run(["check"]), run(["compile", "--emit", "wasm", MLP]), run([])]);
    assert.is(none.code, 2, `${label}: no command at all`);
    has(none.stderr, /Usage: nnetc/, label);
    assert.is(cmd.code, 2, label);
    has(cmd.stderr, /unknown command 'frobnicate'/, label);
    assert.is(cmd.stdout, "", label);
    assert.is(opt.code, 2, label);
    has(opt.stderr, /unknown option '--frobnicate'/, label);
    assert.is(missing.code, 2, label);
    has(missing.stderr, /missing required argument/, label);
    usageError(emit, label, /--emit wasm is not supported/);
    for (const r of [cmd, opt, missing, none]) noStack(r, label);
  }));

test("--version and --help exit 0", () =>
  each(async (run, label) => {
    const [v, h] = await Promise.all([run(["--version"]), run(["--help"])]);
    assert.is(v.code, 0, label);
    assert.is(v.stdout.trim(), pkg.version, `${label}: the version printed is package.json's`);
    assert.is(h.code, 0, label);
    has(h.stdout, /check \[options\] <files\.\.\.>/, label);
  }));

test("every command's --help ends with examples that use only that command's options", async () => {
  const run = (args: string[]) => nnetc(ENTRIES[0]!.file, args);
  const top = await run(["--help"]);
  has(top.stdout, /Examples:\n {2}nnetc /, "nnetc --help");
  const commands = [...top.stdout.matchAll(/^ {2}([a-z]+) (?:\[options\]|<|\[)/gm)].map((m) => m[1]!).filter((c) => c !== "help");
  assert.ok(commands.length >= 11, `commands listed by --help: ${commands.join(", ")}`);
  const helps = await Promise.all(commands.map((c) => run([c, "--help"])));
  commands.forEach((c, i) => {
    const h = helps[i]!;
    assert.is(h.code, 0, `${c} --help`);
    const [options, examples] = h.stdout.split(/\nExamples:\n/);
    assert.ok(examples, `${c} --help has an Examples section`);
    const declared = new Set([...options!.matchAll(/(?:^|\s|,)(--?[a-zA-Z][\w-]*)/g)].map((m) => m[1]!));
    const lines = examples!.trim().split("\n").map((l) => l.trim());
    assert.ok(lines.length >= 1, c);
    for (const line of lines) {
      if (line.startsWith("curl ")) {
        assert.match(line, / localhost:\d+\//, `${c}: "${line}" talks to this machine`);
        continue;
      }
      const words = line.replace(/^cat .*\| /, "").split(/\s+/);
      assert.is(`${words[0]} ${words[1]}`, `nnetc ${c}`, `${c}: "${line}" runs nnetc ${c}`);
      for (const w of words.filter((x) => /^--?[a-zA-Z]/.test(x)).map((x) => (x.startsWith("--") ? x : x.slice(0, 2)))) assert.ok(declared.has(w), `${c}: "${line}" uses ${w}, which nnetc ${c} --help does not list`);
    }
  });
});

// ── compile ───────────────────────────────────────────────────────────────────────────────────────

test("compile --emit ir -o writes the IR: valid, and the same as the golden file", () =>
  each(async (run, label) => {
    const out = at(`out-${label.replace(/\W+/g, "_")}.json`);
    const [r, stdout] = await Promise.all([run(["compile", MLP, "--emit", "ir", "-o", out]), run(["compile", MLP, "--emit", "ir"])]);
    assert.is(r.code, 0, `${label}: ${r.stderr}`);
    assert.is(r.stdout, "", `${label}: nothing on stdout when writing a file`);
    assert.is(r.stderr, "", label);
    const text = readFileSync(out, "utf8");
    assert.equal(irProblems(JSON.parse(text)), [], label);
    assert.is(text, readFileSync(path.join(ROOT, "spec/samples/mlp.ir.json"), "utf8"), `${label}: same as spec/samples/mlp.ir.json`);
    assert.equal(readdirSync(tmp).filter((f) => f.endsWith(".tmp")), [], `${label}: no temporary file left behind`);
    assert.is(stdout.code, 0, label);
    assert.is(stdout.stdout, text, `${label}: without -o the IR goes to stdout`);
  }));

test("compile: a reader that stops early (| head) gets no stack trace", () =>
  each(async (_run, label) => {
    const entry = ENTRIES.find((e) => e.label === label)!.file;
    // The IR of 600 dense layers is far larger than a pipe's buffer, so the writer sees the pipe close.
    const r = await new Promise<Run>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(ROOT, entry), "compile", "--emit", "ir", at("big.nnet")], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" }, stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
      child.stdout.once("data", () => child.stdout.destroy());
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout: "", stderr }));
    });
    noStack(r, label);
    assert.is.not(r.code, 1, `${label}: exit code 1 means errors in the input; stderr:\n${r.stderr}`);
  }));

test("compile: errors exit 1 and write no file", () =>
  each(async (run, label) => {
    const out = at(`never-${label.replace(/\W+/g, "_")}.json`);
    const r = await run(["compile", "--emit", "ir", at("errors.nnet"), "-o", out]);
    assert.is(r.code, 1, label);
    has(r.stderr, /error NN3001/, label);
    assert.not.ok(existsSync(out), `${label}: ${out} should not exist`);
  }));

test("compile -o into a folder that does not exist exits 2", () =>
  each(async (run, label) => {
    usageError(await run(["compile", MLP, "--emit", "ir", "-o", at("no/such/dir/out.json")]), label, /cannot write .*out\.json/);
  }));

// ── summary ───────────────────────────────────────────────────────────────────────────────────────

test("summary --json prints {model, layers, params: {total, trainable, nonTrainable}, flops}", () =>
  each(async (run, label) => {
    const r = await run(["summary", "--json", MLP]);
    assert.is(r.code, 0, `${label}: ${r.stderr}`);
    const s = JSON.parse(r.stdout) as { model: string; layers: { name: string; type: string; params: number }[]; params: Record<string, number>; flops: number };
    assert.is(s.model, "MLP", label);
    assert.equal(s.layers.map((l) => [l.name, l.type, l.params]), [["image", "input", 0], ["dense", "dense", 200_960], ["dense_1", "dense", 2570]], label);
    assert.equal(s.params, { total: 203_530, trainable: 203_530, nonTrainable: 0 }, label);
    // Two multiply-adds per weight plus one add per bias, for one sample.
    assert.is(s.flops, 2 * 784 * 256 + 256 + 2 * 256 * 10 + 10, label);
    // The plan's training step on TensorFlow.js (compiler/memory.ts): adam keeps 2 slots per weight.
    const m = (JSON.parse(r.stdout) as { memory: { batch: number; parts: Record<string, number>; wasmLargestBatch: number } }).memory;
    assert.equal([m.batch, m.parts.weights, m.parts.gradients, m.parts.optimizer], [128, 203_530 * 4, 203_530 * 4, 2 * 203_530 * 4], label);
    assert.ok(m.wasmLargestBatch > 10_000, label);
  }));

test("summary: text table; errors exit 1; several models need --model", () =>
  each(async (run, label) => {
    const [r, bad, ambiguous, b, unknown] = await Promise.all([
      run(["summary", MLP]),
      run(["summary", "--json", at("errors.nnet")]),
      run(["summary", at("two.nnet")]),
      run(["summary", "--json", "--model", "B", at("two.nnet")]),
      run(["summary", "--model", "C", at("two.nnet")]),
    ]);
    assert.is(r.code, 0, label);
    has(r.stdout, /^Model: MLP$/m, label);
    has(r.stdout, /^Total params: 203,530 /m, label);
    has(r.stdout, /^Training memory \(tfjs, plan MLP\): weights 795 KiB \+ gradients 795 KiB \+ optimizer 1\.55 MiB \+ .* at batch 128 \(.* per sample\); fits the wasm backend's 4 GiB$/m, label);
    assert.is(bad.code, 1, label);
    assert.equal((JSON.parse(bad.stdout) as { diagnostics: { code: string }[] }).diagnostics.map((d) => d.code), ["NN3001", "NN2001"], label);
    assert.is(ambiguous.code, 2, label);
    assert.is(ambiguous.stdout, "", label);
    has(ambiguous.stderr, /NN2027.*the file declares several models \(A, B\)/, label);
    has(ambiguous.stderr, /--model/, label);
    noStack(ambiguous, label);
    assert.is(b.code, 0, label);
    assert.is((JSON.parse(b.stdout) as { model: string }).model, "B", label);
    usageError(unknown, label, /has no model "C"; it declares: A, B/);
  }));

test.run();
