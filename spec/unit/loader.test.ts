// Importing .nnet files: the Node loader (`node --import nnetc/register`), its disk cache, the bundler plugin
// (nnetc/esbuild, nnetc/vite: real builds, then the bundles run) and the type declarations (x.d.nnet.ts with
// allowArbitraryExtensions, and the loose nnetc/nnet-modules). Scenarios run in real processes inside a
// temporary project whose node_modules links to this repository, as an installed nnetc would be.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { BuildOptions } from "esbuild";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compileForImport, isNnetUrl, load, NnetCompileError, resolve } from "../../compiler/loader/hooks.js";
import { pinSource } from "../../compiler/loader/plugin.js";
import { ROOT, runNode, type Run } from "../helpers.js";

const FIXTURES = path.join(ROOT, "spec/fixtures/loader");
let project = "";
/** Durations worth knowing, printed once at the end (ms). */
const timings: Record<string, number> = {};
const at = (...p: string[]) => path.join(project, ...p);

/** node ARGS in the temporary project, with only the environment given (plus PATH, HOME and TMPDIR). */
function node(args: string[], env: Record<string, string> = {}, cwd = project): Promise<Run> {
  const base: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "TMPDIR"]) if (process.env[k] !== undefined) base[k] = process.env[k]!;
  return runNode(args, { cwd, env: { ...base, ...env }, timeoutMs: 60_000 });
}

const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** The JSON line a script printed last. */
function lastJson<T>(r: Run): T {
  assert.is(r.code, 0, show(r));
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as T;
}

function noStackTrace(text: string, label: string): void {
  assert.not.match(text, /^\s+at .*\.(js|ts|mjs):\d+:\d+\)?$/m, `${label}: a stack trace from JavaScript code:\n${text}`);
  assert.not.match(text, /internal error|NN9001/, `${label}: an internal error:\n${text}`);
}

const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".json")) : []);

/** Imports tiny.nnet and prints what it got; `fromCache` is a marker only a doctored cache entry exports. */
const USE_TINY = `import * as tf from "@tensorflow/tfjs-core";
import tiny, * as all from "./tiny.nnet";
const model = await tiny.create({ seed: 1 });
const { y } = tiny.predict(model, { x: tf.ones([2, 4]) });
console.log(JSON.stringify({ name: tiny.name, shape: y.shape, y: Array.from(y.dataSync()), keys: Object.keys(all).sort(), sameNamed: all.Tiny === tiny, fromCache: all.fromCache ?? null }));
`;

interface TinyOut {
  name: string;
  shape: number[];
  y: number[];
  keys: string[];
  sameNamed: boolean;
  fromCache: boolean | null;
}

test.before(() => {
  project = mkdtempSync(path.join(tmpdir(), "nnetc-loader-"));
  mkdirSync(at("node_modules"));
  symlinkSync(ROOT, at("node_modules", "nnetc"), "dir");
  for (const scope of ["@tensorflow", "@types"]) symlinkSync(path.join(ROOT, "node_modules", scope), at("node_modules", scope), "dir");
  writeFileSync(at("package.json"), JSON.stringify({ name: "app", type: "module", private: true }));
  for (const f of readdirSync(FIXTURES).filter((f) => f.endsWith(".nnet"))) copyFileSync(path.join(FIXTURES, f), at(f));
  writeFileSync(at("use-tiny.mjs"), USE_TINY);
});

test.after(() => {
  if (project) rmSync(project, { recursive: true, force: true });
  // TIMINGS=1: per-test durations and a few measured ones (process start-up with tfjs included).
  if (process.env.TIMINGS) console.log(`    timings (ms): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])))}`);
});

test("import of a .nnet file gives its main model's module, compiled on the fly", async () => {
  mkdirSync(at("compiled"));
  const [r, cli] = await Promise.all([
    node(["--import", "nnetc/register", "use-tiny.mjs"], { NNETC_CACHE_DIR: at("cache-a") }),
    node([path.join(ROOT, "dist/nnetc.mjs"), "compile", "tiny.nnet", "--target", "js", "-o", at("compiled")]),
  ]);
  const out = lastJson<TinyOut>(r);
  timings.miss = r.ms;
  assert.is(out.name, "Tiny");
  assert.equal(out.shape, [2, 3]);
  assert.ok(out.sameNamed, "the default export is the model's named export");
  for (const k of ["create", "predict", "trainStep", "fit", "evaluate", "save", "load", "dispose", "inputs", "outputs", "params", "plan"]) assert.ok(out.keys.includes(k), `named export ${k}`);
  assert.is(out.fromCache, null);
  assert.is(r.stderr, "", "nothing on stderr");
  // The same numbers as the module `nnetc compile --target js` writes, run without the loader.
  assert.is(cli.code, 0, show(cli));
  writeFileSync(at("compiled", "package.json"), JSON.stringify({ type: "module" }));
  copyFileSync(at("tiny.nnet"), at("compiled", "tiny.nnet"));
  writeFileSync(at("compiled", "use.mjs"), USE_TINY.replace("./tiny.nnet", "./tiny.js"));
  const plain = lastJson<TinyOut>(await node([at("compiled", "use.mjs")]));
  assert.equal(plain.y, out.y, "the loader's module computes what the CLI's does");
});

test("a second import comes from the cache: no compile, entry untouched", async () => {
  const cache = at("cache-a");
  const files = entries(cache);
  assert.is(files.length, 1, `one cache entry: ${files.join(", ")}`);
  const entry = path.join(cache, files[0]!);
  const stored = JSON.parse(readFileSync(entry, "utf8")) as { sources: string[]; code: string };
  assert.equal([...stored.sources].sort(), [at("blocks.nnet"), at("tiny.nnet")].sort(), "the entry lists the file and its import");
  // Doctor the cached code: if the next import shows the marker, it ran the cached code and did not compile.
  writeFileSync(entry, JSON.stringify({ ...stored, code: `${stored.code}\nexport const fromCache = true;\n` }));
  const before = statSync(entry).mtimeMs;
  const r = await node(["--import", "nnetc/register", "use-tiny.mjs"], { NNETC_CACHE_DIR: cache });
  const out = lastJson<TinyOut>(r);
  timings.hit = r.ms;
  assert.is(out.fromCache, true, "the module came from the cache entry");
  assert.equal(out.shape, [2, 3]);
  assert.is(statSync(entry).mtimeMs, before, "a hit does not rewrite the entry");
  // In process, compileForImport reports the hit (and the doctored code), and compiles when asked not to cache.
  const hit = await compileForImport(at("tiny.nnet"), { cache });
  assert.equal(hit.cache, { entry, hit: true });
  assert.match(hit.code, /export const fromCache = true;/);
  const miss = await compileForImport(at("tiny.nnet"), { cache: false });
  assert.is(miss.cache, null);
  assert.not.match(miss.code, /fromCache/);
});

test("editing the .nnet file, or a file it imports, compiles it again", async () => {
  const cache = at("cache-a");
  const entry = path.join(cache, entries(cache)[0]!);
  const doctor = () => {
    const e = JSON.parse(readFileSync(entry, "utf8")) as { code: string };
    writeFileSync(entry, JSON.stringify({ ...e, code: `${e.code}\nexport const fromCache = true;\n` }));
  };
  const run = async () => lastJson<TinyOut>(await node(["--import", "nnetc/register", "use-tiny.mjs"], { NNETC_CACHE_DIR: cache }));

  doctor();
  writeFileSync(at("tiny.nnet"), readFileSync(at("tiny.nnet"), "utf8").replace("Head(3)", "Head(5)"));
  let out = await run();
  assert.equal(out.shape, [2, 5], "the edit is seen");
  assert.is(out.fromCache, null, "compiled, not taken from the stale entry");

  doctor();
  writeFileSync(at("blocks.nnet"), readFileSync(at("blocks.nnet"), "utf8").replace("dense(units)", "dense(units * 2)"));
  out = await run();
  assert.equal(out.shape, [2, 10], "the edit of the imported file is seen");
  assert.is(out.fromCache, null, "compiled again after an import changed");
  assert.is(entries(cache).length, 1, "the entry is replaced, not added to");
});

test("the cache is node_modules/.cache/nnetc of the project by default", async () => {
  const dir = at("node_modules", ".cache", "nnetc");
  rmSync(dir, { recursive: true, force: true });
  lastJson<TinyOut>(await node(["--import", "nnetc/register", "use-tiny.mjs"]));
  assert.is(entries(dir).length, 1, "one entry in node_modules/.cache/nnetc");
});

test("a file with errors fails the import with the rendered diagnostics, not a stack trace", async () => {
  writeFileSync(at("use-broken.mjs"), `import model from "./broken.nnet";\nconsole.log(model.name);\n`);
  const cache = at("cache-b");
  const r = await node(["--import", "nnetc/register", "use-broken.mjs"], { NNETC_CACHE_DIR: cache });
  assert.is(r.code, 1, show(r));
  assert.is(r.stdout, "");
  assert.match(r.stderr, "cannot import broken.nnet: 1 error, 0 warnings");
  assert.match(r.stderr, "broken.nnet:4:28 - error NN3001: dense expects [batch, features] or [batch, steps, features], got [batch, 28, 28, 1]");
  assert.match(r.stderr, " 4 |   output logits = image -> dense(10)\n   |                            ^^^^^^^^^\n");
  assert.match(r.stderr, "hint: add flatten before dense");
  noStackTrace(r.stderr, "uncaught");
  assert.is(entries(cache).length, 0, "nothing cached for a file with errors");

  // Caught: an Error with code ERR_NNETC_COMPILE and the diagnostics in its message.
  writeFileSync(at("catch-broken.mjs"), `try { await import("./broken.nnet"); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, isError: e instanceof Error })); }\n`);
  const caught = lastJson<{ code: string; message: string; isError: boolean }>(await node(["--import", "nnetc/register", "catch-broken.mjs"], { NNETC_CACHE_DIR: cache }));
  assert.is(caught.code, "ERR_NNETC_COMPILE");
  assert.ok(caught.isError);
  assert.match(caught.message, /^cannot import broken\.nnet: 1 error, 0 warnings\n\nbroken\.nnet:4:28 - error NN3001: /);

  // An error inside an imported file is shown in that file.
  writeFileSync(at("heads.nnet"), "block Bad(units: int) {\n  out = in -> conv2d(units, 3)\n}\n");
  writeFileSync(at("uses-bad.nnet"), 'import { Bad } from "./heads.nnet"\n\nmodel UsesBad {\n  input x: f32[batch, 4]\n  output y = x -> Bad(3)\n}\n');
  writeFileSync(at("use-uses-bad.mjs"), `import "./uses-bad.nnet";\n`);
  const deep = await node(["--import", "nnetc/register", "use-uses-bad.mjs"], { NNETC_CACHE_DIR: cache });
  assert.is(deep.code, 1, show(deep));
  assert.match(deep.stderr, "cannot import uses-bad.nnet: 1 error");
  assert.match(deep.stderr, "heads.nnet:2:15 - error NN3001: conv2d expects");
  noStackTrace(deep.stderr, "imported file");

  // Warnings do not stop an import; they come with the code (the loader prints them on stderr).
  writeFileSync(at("warn.nnet"), "model W {\n  input x: f32[batch, 4]\n  h = x -> dense(8)\n  output y = x -> dense(2)\n}\n");
  const warned = await compileForImport(at("warn.nnet"), { cache: false });
  assert.is(warned.warnings.length, 1);
  assert.match(warned.warnings[0]!, /warn\.nnet:3:3 - warning NN2021: "h" is computed but never reaches an output/);

  // A file of blocks only has nothing to import.
  const blocks = await compileForImport(at("heads.nnet"), { cache: false }).then(
    () => null,
    (e: unknown) => e,
  );
  assert.instance(blocks, NnetCompileError);
  assert.match((blocks as Error).message, "declares no model");
});

test("the loader leaves every other import to Node", async () => {
  // In process: anything but a file: URL ending in .nnet goes to the next hook, untouched.
  const passed = { format: "module", source: "export default 1", shortCircuit: true };
  const ctx = { conditions: ["node", "import"], format: "module" };
  for (const url of ["file:///a/b.js", "file:///a/b.nnet.js", "node:fs", "file:///a/nnet", "data:text/javascript,export default 1"]) {
    assert.is(isNnetUrl(url), false, url);
    let seen: unknown[] = [];
    const r = await load(url, ctx, (u, c) => ((seen = [u, c]), passed));
    assert.is(r, passed, `${url}: the next hook's result`);
    assert.equal(seen, [url, ctx], `${url}: the next hook got the same arguments`);
  }
  assert.ok(isNnetUrl("file:///a/b.nnet") && isNnetUrl("file:///a/b.nnet?v=2"));
  const resolved = { url: "file:///x/y.js", format: "module" };
  assert.is(await resolve("./y.js", { parentURL: "file:///x/app.js", conditions: [] }, () => resolved), resolved);

  // In a process: JSON, JavaScript, packages and builtins load as without the loader, an unknown extension fails
  // as without it, and nothing is compiled or cached.
  writeFileSync(at("data.json"), '{ "answer": 42 }');
  writeFileSync(at("helper.mjs"), "export const twice = (x) => 2 * x;\n");
  writeFileSync(at("notes.txt"), "not a module\n");
  writeFileSync(
    at("others.mjs"),
    `import data from "./data.json" with { type: "json" };
import { twice } from "./helper.mjs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
let txt;
try { await import("./notes.txt"); } catch (e) { txt = e.code; }
console.log(JSON.stringify({ answer: twice(data.answer), sep: path.sep, tf: typeof tf.tensor, txt }));
`,
  );
  const cache = at("cache-c");
  const withLoader = await node(["--import", "nnetc/register", "others.mjs"], { NNETC_CACHE_DIR: cache });
  const without = await node(["others.mjs"]);
  const a = lastJson<Record<string, unknown>>(withLoader);
  assert.equal(a, { answer: 84, sep: "/", tf: "function", txt: "ERR_UNKNOWN_FILE_EXTENSION" });
  assert.equal(a, lastJson(without), "the same results without the loader");
  assert.is(existsSync(cache), false, "nothing compiled, nothing cached");
});

test("a .nnet file outside any project with nnetc still finds nnetc/runtime (from the loader)", async () => {
  const outside = mkdtempSync(path.join(tmpdir(), "nnetc-outside-"));
  try {
    copyFileSync(path.join(FIXTURES, "tiny.nnet"), path.join(outside, "tiny.nnet"));
    copyFileSync(path.join(FIXTURES, "blocks.nnet"), path.join(outside, "blocks.nnet"));
    const rel = path.relative(project, path.join(outside, "tiny.nnet")).split(path.sep).join("/");
    writeFileSync(at("use-outside.mjs"), USE_TINY.replace("./tiny.nnet", rel));
    const out = lastJson<TinyOut>(await node(["--import", "nnetc/register", "use-outside.mjs"], { NNETC_CACHE_DIR: at("cache-d") }));
    assert.equal(out.shape, [2, 3]);
  } finally {
    rmSync(outside, { recursive: true, force: true });
  }
});

// ── Bundler plugin ─────────────────────────────────────────────────────────────────────────────────

const MLP_ENTRY = (rel: string) => `import * as tf from "@tensorflow/tfjs-core";
import * as nn from "nnetc/runtime";
import mlp from "${rel}";
const model = await mlp.create({ seed: 3 });
const { logits } = mlp.predict(model, { image: tf.linspace(0, 1, 2 * 784).reshape([2, 784]) });
const batch = await nn.sampleBatch(model, 4);
console.log(JSON.stringify({ name: mlp.name, shape: logits.shape, logits: Array.from(logits.dataSync()), source: mlp.def.source.href, samples: batch.image.shape[0] }));
`;

interface MlpOut {
  name: string;
  shape: number[];
  logits: number[];
  source: string;
  samples: number;
}

const mlpFile = path.join(ROOT, "models/mlp.nnet");

test("esbuild: a bundle for Node with models/mlp.nnet in it runs and predicts", async () => {
  const { build } = await import("esbuild");
  const { default: nnetc } = await import("../../compiler/loader/esbuild.js");
  const rel = path.relative(project, mlpFile).split(path.sep).join("/");
  writeFileSync(at("entry-mlp.mjs"), MLP_ENTRY(rel));
  const common: BuildOptions = { bundle: true, platform: "node", format: "esm", external: ["@tensorflow/*", "nnetc/runtime"], logLevel: "silent", absWorkingDir: project };
  const t0 = performance.now();
  const r = await build({ ...common, entryPoints: [at("entry-mlp.mjs")], outfile: at("out-esbuild", "bundle.mjs"), plugins: [nnetc({ cache: at("cache-e") })] });
  const ms = performance.now() - t0;
  assert.equal([r.errors, r.warnings], [[], []]);
  const code = readFileSync(at("out-esbuild", "bundle.mjs"), "utf8");
  assert.not.match(code, /from "[^"]*\.nnet"/, "the .nnet import is bundled");
  assert.match(code, /from "nnetc\/runtime"/, "nnetc/runtime stays external");
  // The loader computes the same outputs from the same file.
  writeFileSync(at("loader-mlp.mjs"), MLP_ENTRY(rel));
  const [bundled, loaded] = await Promise.all([node([at("out-esbuild", "bundle.mjs")]), node(["--import", "nnetc/register", "loader-mlp.mjs"], { NNETC_CACHE_DIR: at("cache-e") })]);
  const out = lastJson<MlpOut>(bundled);
  assert.is(out.name, "MLP");
  assert.equal(out.shape, [2, 10]);
  assert.is(out.source, pathToFileURL(mlpFile).href, "the module's source is the .nnet file, not the bundle's folder");
  assert.is(out.samples, 4, "the plan's data is found from the bundle");
  assert.equal(lastJson<MlpOut>(loaded).logits, out.logits, "bundle and loader agree");
  timings.esbuild = ms;

  // source: "relative" keeps the emitted import.meta.url: the .nnet file is looked for beside the bundle.
  await build({ ...common, entryPoints: [at("entry-mlp.mjs")], outfile: at("out-rel", "bundle.mjs"), plugins: [nnetc({ cache: false, source: "relative" })] });
  assert.match(readFileSync(at("out-rel", "bundle.mjs"), "utf8"), 'new URL("./mlp.nnet", import.meta.url)');

  // Errors: one esbuild error per diagnostic, located in the .nnet file, with the rendered text.
  writeFileSync(at("entry-broken.mjs"), `import model from "./broken.nnet";\nconsole.log(model);\n`);
  const failed = await build({ ...common, entryPoints: [at("entry-broken.mjs")], outfile: at("out-broken", "bundle.mjs"), plugins: [nnetc({ cache: false })] }).then(
    () => null,
    (e: { errors: { text: string; pluginName: string; location: { file: string; line: number; column: number } | null }[] }) => e,
  );
  assert.ok(failed, "the build fails");
  assert.is(failed!.errors.length, 1);
  const e = failed!.errors[0]!;
  assert.is(e.pluginName, "nnetc");
  // Paths are shown relative to the working directory when inside it (here the test runner's, the repository).
  assert.match(e.text, `${at("broken.nnet")}:4:28 - error NN3001: dense expects`);
  assert.match(e.text, "hint: add flatten before dense");
  assert.equal({ file: path.resolve(project, e.location?.file ?? ""), line: e.location?.line, column: e.location?.column }, { file: at("broken.nnet"), line: 4, column: 27 });
  noStackTrace(e.text, "esbuild error");
});

test("vite: an SSR library build with models/mlp.nnet in it runs and predicts; errors stop the build", async () => {
  const rel = path.relative(project, mlpFile).split(path.sep).join("/");
  writeFileSync(at("entry-mlp.mjs"), MLP_ENTRY(rel));
  writeFileSync(at("entry-broken.mjs"), `import model from "./broken.nnet";\nconsole.log(model);\n`);
  const built = await node([path.join(FIXTURES, "vite-build.mjs"), at("cache-f"), "entry-mlp.mjs", "out-vite", "entry-broken.mjs", "out-vite-broken"]);
  type Result = { ok: boolean; files?: string[]; message: string; plugin?: string; id?: string; loc?: { file: string; line: number; column: number } };
  const [good, bad] = lastJson<Result[]>(built);
  timings.vite = built.ms;
  assert.ok(good!.ok, good!.message);
  assert.equal(good!.files, ["bundle.mjs"]);
  const code = readFileSync(at("out-vite", "bundle.mjs"), "utf8");
  assert.not.match(code, /from "[^"]*\.nnet"/, "the .nnet import is bundled");
  const out = lastJson<MlpOut>(await node([at("out-vite", "bundle.mjs")]));
  assert.is(out.name, "MLP");
  assert.equal(out.shape, [2, 10]);
  assert.is(out.source, pathToFileURL(mlpFile).href);
  assert.is(out.samples, 4);

  assert.is(bad!.ok, false);
  assert.is(bad!.plugin, "nnetc");
  assert.is(bad!.id, at("broken.nnet"));
  assert.match(bad!.message, "cannot import broken.nnet: 1 error, 0 warnings");
  assert.match(bad!.message, "broken.nnet:4:28 - error NN3001: dense expects");
  assert.equal(bad!.loc, { file: at("broken.nnet"), line: 4, column: 27 });
  noStackTrace(bad!.message, "vite error");
});

test("pinSource points the module's source at the .nnet file, and refuses code it does not recognise", () => {
  const code = `const a = 1;\nconst source = new URL("./m%20x.nnet", import.meta.url);\nexport default source;\n`;
  assert.is(pinSource(code, "/p/m x.nnet"), `const a = 1;\nconst source = new URL("./m%20x.nnet", "file:///p/m%20x.nnet");\nexport default source;\n`);
  assert.throws(() => pinSource("export default 1;\n", "/p/m.nnet"), /no "const source = new URL/);
});

// ── Types ──────────────────────────────────────────────────────────────────────────────────────────

test("types: x.d.nnet.ts from --target dts (allowArbitraryExtensions), and the loose nnetc/nnet-modules", async () => {
  const types = at("types");
  mkdirSync(path.join(types, "precise"), { recursive: true });
  mkdirSync(path.join(types, "loose"), { recursive: true });
  copyFileSync(mlpFile, path.join(types, "precise", "mlp.nnet"));
  copyFileSync(mlpFile, path.join(types, "loose", "mlp.nnet"));
  const dts = await node([path.join(ROOT, "dist/nnetc.mjs"), "compile", "types/precise/mlp.nnet", "--target", "dts"]);
  assert.is(dts.code, 0, show(dts));
  assert.ok(existsSync(path.join(types, "precise", "mlp.d.nnet.ts")), "mlp.d.nnet.ts beside mlp.nnet");
  writeFileSync(path.join(types, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(
    path.join(types, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true, allowArbitraryExtensions: true, types: ["node"] }, include: ["precise/*.ts", "loose/*.ts"] }),
  );
  // Exact types: the model's name, its inputs by name and rank. The loose declarations are in the same
  // program (loose/app.ts references them), so this also checks that mlp.d.nnet.ts wins over them.
  writeFileSync(
    path.join(types, "precise", "app.ts"),
    `import * as tf from "@tensorflow/tfjs-core";
import mlp, { predict, type Inputs, type Model } from "./mlp.nnet";

const name: "MLP" = mlp.name;
const model: Model = await mlp.create({ seed: 1 });
const image = tf.zeros([2, 784]) as Inputs["image"];
const { logits } = predict(model, { image });
const rank2: tf.Tensor2D = logits;
// @ts-expect-error: MLP has no input "pixels"
mlp.predict(model, { pixels: image });
// @ts-expect-error: MLP has no output "probs"
predict(model, { image }).probs;
console.log(name, rank2.shape);
`,
  );
  writeFileSync(
    path.join(types, "loose", "app.ts"),
    `/// <reference types="nnetc/nnet-modules" />
import * as tf from "@tensorflow/tfjs-core";
import model, { type Model, evaluate } from "./mlp.nnet";

const m: Model = await model.create({ seed: 1 });
const out = model.predict(m, { image: tf.zeros([2, 784]) });
const name: string = model.name;
const metrics: Record<string, number> = await evaluate(m);
// @ts-expect-error: still typed: create takes options, not a number
await model.create(42);
console.log(name, out.logits?.shape, metrics);
`,
  );
  const tsc = await node([path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", path.join(types, "tsconfig.json")]);
  assert.is(tsc.code, 0, `tsc reports errors:\n${tsc.stdout}${tsc.stderr}`);
});

let t0 = 0;
// TIMINGS=1 node dist/spec/unit/loader.test.js prints how long each test takes.
test.before.each(() => void (t0 = performance.now()));
test.after.each(() => void (process.env.TIMINGS && console.log(`    [${(performance.now() - t0).toFixed(0)} ms]`)));
test.run();
