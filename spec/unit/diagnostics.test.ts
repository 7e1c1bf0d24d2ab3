// Golden diagnostic cases: spec/diagnostics/<CODE>-<slug>/ holds input.nnet (plus any file it imports)
// and expected.txt, the diagnostics rendered as text without colour. UPDATE=1 (npm run test:update)
// rewrites expected.txt. A folder with a cli.txt is a command-line case instead: cli.txt holds the
// nnetc subcommand and options (after NAME=value words for its environment, if any), and expected.txt the
// command's stderr and exit code.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { DIAGNOSTICS } from "../../compiler/diagnostics.js";
import { renderDiagnostic } from "../../compiler/render.js";
import { golden, memoryHost, ROOT } from "../helpers.js";

const DIR = "spec/diagnostics";

/** Codes without a folder, and why. The coverage test fails for any other code without one. */
const EXCLUDED: Record<string, string> = {
  NN8001: "needs a project config file (nnetc.config.mjs) beside the input: spec/unit/plugins.test.ts (a config that throws, one that exports no config)",
  NN8002: "needs a plugin in a project config: spec/unit/plugins.test.ts (validation: malformed entries)",
  NN8003: "needs a plugin in a project config: spec/unit/plugins.test.ts (validation: names taken by built-ins, keywords, other plugins)",
  NN8004: "needs a plugin op without a lowering: spec/unit/plugins.test.ts (ONNX, PyTorch and emitted TypeScript)",
  NN8005: "needs a plugin function that throws: spec/unit/plugins.test.ts (a shape rule at check time, a forward pass at train time)",
  NN8006: "needs a plugin op whose shape rule refuses its input: spec/unit/plugins.test.ts (the example's swish on an i32 input)",
  NN7040: "needs a file over NNETC_MAX_SOURCE_MB, read from the disk: spec/unit/limits.test.ts (each limit just exceeded, with its variable lowered)",
  NN7041: "needs a device, FIFO or directory on the disk: spec/unit/limits.test.ts (each limit just exceeded, with its variable lowered)",
  NN7042: "needs a data file read at run time: spec/unit/limits.test.ts (each limit just exceeded, with its variable lowered)",
  NN7043: "needs a dataset's files read at run time: spec/unit/limits.test.ts (each limit just exceeded, with its variable lowered)",
  NN7044: "needs an image file read at run time: spec/unit/limits.test.ts (each limit just exceeded, with its variable lowered)",
  NN7045: "needs an image file read at run time: spec/unit/limits.test.ts (each limit just exceeded, with its variable lowered)",
  NN7046: "needs an audio file read at run time: spec/unit/limits.test.ts (each limit just exceeded, with its variable lowered)",
  NN7047: "needs an audio file read at run time: spec/unit/limits.test.ts (each limit just exceeded, with its variable lowered)",
  NN5013: "needs a run folder trained first (train writes one, then eval reads it): spec/unit/data_validation.test.ts (a NaN test loss on both engines)",
  NN7007: "needs a port held while the command runs: spec/unit/torch_ddp.test.ts (a rendezvous port already in use)",
  NN7008: "needs a job whose other machines never come: spec/unit/torch_ddp.test.ts (a machine alone at the rendezvous)",
  NN7009: "needs a worker killed while the job runs: spec/unit/torch_ddp.test.ts (a worker killed mid-job)",
  NN7010: "needs a weights file the case would hold as a binary: spec/unit/torch_engine.test.ts (a PyTorch exception in the model)",
  NN7011: "needs an engine process that dies: spec/unit/torch_engine.test.ts (an engine that dies)",
  NN7021: "needs onnxruntime-node missing, and it is a dependency: spec/unit/onnx_engine.test.ts (a module that cannot be loaded)",
  NN7030: "needs a second trainer holding the run folder's lock: spec/unit/run_folder.test.ts (two trainers on one folder)",
  NN7031: "needs a run folder whose file changed after training: spec/unit/run_folder.test.ts (a weight changed to NaN)",
  NN7032: "needs a run folder from an earlier training run: spec/unit/run_folder.test.ts (a new run into an old folder)",
  NN7033: "needs a run folder of another model without a checkpoint: spec/unit/run_folder.test.ts (--resume on another model's folder)",
  NN7070: "needs a port held while the server starts: spec/unit/serve.test.ts (a taken port)",
  NN7071: "needs two files served at once: spec/unit/serve.test.ts (a model served twice)",
  NN7072: "needs nnetc serve's command line: spec/unit/serve.test.ts (--weights per file)",
  NN7073: "needs nnetc serve given a file: spec/unit/serve.test.ts (a file without a model)",
  NN9001: "internal compiler errors are compiler bugs: no input is meant to trigger one (compile() turns a thrown exception into NN9001)",
};

/** The recovery case: several syntax errors in one file, each reported, and nothing but syntax errors. */
const RECOVERY = "NN1002-recovery-several-errors";

// Imports resolve relative to the working directory, and expected.txt shows paths relative to the root.
if (process.cwd() !== ROOT) process.chdir(ROOT);

const folders = readdirSync(path.join(ROOT, DIR), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

const codeOf = (folder: string) => /^(NN\d{4})-[a-z0-9]+(?:-[a-z0-9]+)*$/.exec(folder)?.[1];

function compileCase(folder: string) {
  const file = `${DIR}/${folder}/input.nnet`;
  const result = compile(file, readFileSync(path.join(ROOT, file), "utf8"), memoryHost());
  const text = result.diagnostics.map((d) => renderDiagnostic(d, result.sources, { color: false })).join("\n\n") + "\n";
  return { result, text, codes: result.diagnostics.map((d) => d.code) };
}

for (const folder of folders) {
  const code = codeOf(folder);
  const cli = path.join(ROOT, DIR, folder, "cli.txt");
  if (existsSync(cli)) {
    test(`${folder}: nnetc reports ${code}`, () => {
      const file = `${DIR}/${folder}/input.nnet`;
      const words = readFileSync(cli, "utf8").trim().split(/\s+/);
      // Leading NAME=value words set the command's environment (NNETC_PYTHON=… for the engine's cases).
      const vars = words.filter((w, i) => words.slice(0, i + 1).every((x) => /^[A-Z_][A-Z0-9_]*=/.test(x)));
      const args = [...words.slice(vars.length), file];
      const env = Object.fromEntries(vars.map((v) => [v.slice(0, v.indexOf("=")), v.slice(v.indexOf("=") + 1)]));
      // The file itself is clean: the diagnostic comes from the command.
      assert.equal(compileCase(folder).codes, [], `${file} should compile without diagnostics`);
      const r = spawnSync(process.execPath, [path.join(ROOT, "dist/compiler/cli/main.js"), ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...env } });
      // Data files resolve to absolute paths (NN501x name file:line): shown relative to the root.
      golden(`${DIR}/${folder}/expected.txt`, `$ ${[...vars, "nnetc", ...args].join(" ")}\n${r.stderr.replaceAll(`${ROOT}${path.sep}`, "")}exit code: ${r.status}\n`);
      assert.ok(code && r.stderr.includes(code), `stderr should mention ${code}:\n${r.stderr}`);
      // Nothing on stdout but train's "reading FILE" lines (a data error comes after them).
      assert.ok(r.stdout.split("\n").every((l) => l === "" || /^reading /.test(l)), `nothing on stdout but "reading" lines:\n${r.stdout}`);
    });
    continue;
  }
  test(`${folder}: reports ${code}`, () => {
    const { text, codes } = compileCase(folder);
    golden(`${DIR}/${folder}/expected.txt`, text);
    assert.ok(code && codes.includes(code), `expected ${code} among ${codes.join(", ") || "no diagnostics"}`);
    assert.not.ok(codes.includes("NN9001"), "an internal compiler error");
  });
}

test("the recovery case reports each syntax error and nothing else", () => {
  const { codes } = compileCase(RECOVERY);
  assert.ok(codes.length >= 3, `expected at least 3 diagnostics, got ${codes.join(", ")}`);
  assert.ok(codes.every((c) => c.startsWith("NN1")), `expected only syntax errors, got ${codes.join(", ")}`);
});

test("every diagnostic code has a case in spec/diagnostics/", () => {
  const all = Object.values(DIAGNOSTICS).map((d) => d.code);
  const covered = new Set(folders.map(codeOf));
  const missing = all.filter((c) => !covered.has(c) && !(c in EXCLUDED));
  assert.equal(missing, [], `codes without a folder in ${DIR}/`);
  for (const c of Object.keys(EXCLUDED)) assert.ok(all.includes(c), `EXCLUDED names ${c}, which is not in DIAGNOSTICS`);
});

test("every case folder is named <CODE>-<slug> after a known code and holds input.nnet", () => {
  const known = new Set(Object.values(DIAGNOSTICS).map((d) => d.code));
  for (const folder of folders) {
    const code = codeOf(folder);
    assert.ok(code, `${folder}: name it <CODE>-<short-slug>, e.g. NN3002-residual-channels`);
    assert.ok(known.has(code!), `${folder}: ${code} is not in DIAGNOSTICS`);
    assert.not.ok(code! in EXCLUDED, `${folder}: ${code} is listed as not triggerable`);
    assert.ok(existsSync(path.join(ROOT, DIR, folder, "input.nnet")), `${folder}: input.nnet is missing`);
  }
});

test.run();
