// Paths stay where they belong (compiler/root.ts): imports and every file or folder a .nnet file names resolve
// inside the project root (package.json or .nnetroot above the entry file, --root DIR, NNETC_ROOT, the editor's
// workspace folder); symlinks leading outside count as outside; /proc files are refused; and no message quotes the
// contents of a file that is not .nnet source.
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TextDocument } from "vscode-languageserver-textdocument";
import { compile, type Host } from "../../compiler/index.js";
import type { AttrValue, IRCall, IRDataset, IRField } from "../../compiler/ir/types.js";
import { lspDiagnostics, Workspace } from "../../compiler/lsp/server.js";
import { PATH_ARGS } from "../../compiler/plan/tables.js";
import { readSource } from "../../compiler/read_source.js";
import { renderDiagnostic } from "../../compiler/render.js";
import { pathChecker, projectRoot, realPath, ROOT_ENV, ROOT_MARKER } from "../../compiler/root.js";
import { DataError } from "../../runtime/data/errors.js";
import { readDataFile } from "../../runtime/data/files.js";
import { loadDataset } from "../../runtime/data/index.js";
import { FILE_ARGS } from "../../runtime/data/resolve.js";
import { ROOT } from "../helpers.js";
import { connect } from "../lsp-client.js";

// tmp/outside/…, tmp/proj/{.nnetroot, main.nnet, sub/…}: the project is proj/
const TMP = realpathSync(mkdtempSync(path.join(os.tmpdir(), "nnetc-paths-")));
test.after(() => rmSync(TMP, { recursive: true, force: true }));
const PROJ = path.join(TMP, "proj");
const OUT = path.join(TMP, "outside");
mkdirSync(path.join(PROJ, "sub"), { recursive: true });
mkdirSync(OUT, { recursive: true });
writeFileSync(path.join(PROJ, ROOT_MARKER), "");
const BLOCK = "block Head() {\n  out = in -> dense(2)\n}\n";
const SECRET = "SECRET_TOKEN=hunter2";
writeFileSync(path.join(OUT, "lib.nnet"), BLOCK);
writeFileSync(path.join(PROJ, "lib.nnet"), BLOCK);
writeFileSync(path.join(OUT, "secret.txt"), `${SECRET},b\n1,2\n`);
writeFileSync(path.join(OUT, "data.csv"), "x,y\n1,0\n2,1\n");
symlinkSync(path.join(OUT, "lib.nnet"), path.join(PROJ, "linked.nnet"));
symlinkSync(path.join(OUT, "data.csv"), path.join(PROJ, "linked.csv"));

const MAIN = path.join(PROJ, "sub", "main.nnet");
const host = (): Host => ({ readFile: (f) => readSource(f), checkPath: pathChecker(projectRoot(MAIN)) });
const importOf = (from: string) => `import { Head } from ${JSON.stringify(from)}\nmodel M {\n  input x: f32[batch, 4]\n  output y = x -> Head\n}\n`;
const codes = (src: string, h: Host = host()) => compile(MAIN, src, h).diagnostics.map((d) => d.code);

function withEnv<T>(env: Record<string, string | undefined>, f: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) (v === undefined ? delete process.env[k] : (process.env[k] = v));
  const restore = () => {
    for (const [k, v] of Object.entries(saved)) (v === undefined ? delete process.env[k] : (process.env[k] = v));
  };
  let r: T;
  try {
    r = f();
  } catch (e) {
    restore();
    throw e;
  }
  if (r instanceof Promise) return r.finally(restore) as T; // restored when the async work is done
  restore();
  return r;
}

test("the root: the nearest folder with .nnetroot or package.json, else the file's folder; NNETC_ROOT and a given folder win", () => {
  withEnv({ [ROOT_ENV]: undefined }, () => {
    assert.equal(projectRoot(MAIN), { dir: PROJ, origin: "marker" });
    assert.equal(projectRoot(path.join(ROOT, "models", "mlp.nnet")).dir, realpathSync(ROOT)); // package.json
    assert.equal(projectRoot(path.join(OUT, "lib.nnet")), { dir: OUT, origin: "file" });
    assert.equal(projectRoot(MAIN, { dir: TMP, origin: "flag" }), { dir: TMP, origin: "flag" });
  });
  withEnv({ [ROOT_ENV]: TMP }, () => assert.equal(projectRoot(MAIN), { dir: TMP, origin: "env" }));
});

test("imports: inside the root they load; outside, or through a symlink leading outside, NN7050 at the path, unread", () => {
  withEnv({ [ROOT_ENV]: undefined }, () => {
    assert.equal(codes(importOf("../lib.nnet")), []);
    for (const from of ["../../outside/lib.nnet", path.join(OUT, "lib.nnet"), "../linked.nnet"]) {
      const res = compile(MAIN, importOf(from), host());
      assert.equal(res.diagnostics.map((d) => d.code), ["NN7050"], from);
      const d = res.diagnostics[0]!;
      const text = importOf(from);
      assert.is(text.slice(d.span.start, d.span.end), JSON.stringify(from));
      assert.match(d.message, new RegExp(`outside the project root ${PROJ}`));
      assert.match(d.hint!, /--root DIR or NNETC_ROOT=DIR/);
      assert.is(res.sources.size, 1, "the outside file was never read");
    }
    // widened by NNETC_ROOT (what --root sets) or a given root
    withEnv({ [ROOT_ENV]: TMP }, () => assert.equal(codes(importOf("../../outside/lib.nnet")), []));
    const wide: Host = { readFile: (f) => readSource(f), checkPath: pathChecker(projectRoot(MAIN, { dir: TMP, origin: "flag" })) };
    assert.equal(codes(importOf("../linked.nnet"), wide), []);
  });
});

test("property: whatever path an import or a csv source names, nothing outside the root is read or passes the check", () => {
  const seg = fc.constantFrom("..", ".", "sub", "outside", "proj", "lib.nnet", "linked.nnet", "linked.csv", "data.csv", "secret.txt", "main.nnet", "", "etc", "passwd");
  const pathArb = fc.tuple(fc.boolean(), fc.array(seg, { minLength: 1, maxLength: 6 })).map(([abs, xs]) => (abs ? "/" : "") + xs.join("/"));
  const inside = (f: string) => {
    const r = path.relative(PROJ, realPath(f));
    return r === "" || (!r.startsWith("..") && !path.isAbsolute(r));
  };
  withEnv({ [ROOT_ENV]: undefined }, () => {
    fc.assert(
      fc.property(pathArb, (p) => {
        const reads: string[] = [];
        const h: Host = { readFile: (f) => (reads.push(f), readSource(f)), checkPath: pathChecker(projectRoot(MAIN)) };
        const imp = compile(MAIN, importOf(p), h).diagnostics.map((d) => d.code);
        assert.not.ok(imp.includes("NN9001"), p);
        for (const f of reads) assert.ok(inside(path.resolve(f)), `${p}: read ${f}`);
        const csv = compile(MAIN, `dataset D {\n  source csv(path: ${JSON.stringify(p)})\n  field x: f32[] = x\n}\n`, h).diagnostics.map((d) => d.code);
        assert.not.ok(csv.includes("NN9001"), p);
        const refused = csv.includes("NN7050") || csv.includes("NN7041");
        if (p !== "") assert.is(refused, !inside(path.resolve(path.dirname(MAIN), p)), `${p}: ${csv.join()}`);
      }),
      { numRuns: 300 },
    );
  });
});

test("imports of files that are not .nnet are refused unread (NN7051): no code frame shows their text", () => {
  const res = compile(MAIN, importOf(path.join(OUT, "secret.txt")), { readFile: () => assert.unreachable("read") as never });
  assert.equal(res.diagnostics.map((d) => d.code), ["NN7051"]);
  const rendered = res.diagnostics.map((d) => renderDiagnostic(d, res.sources, { color: false })).join("\n");
  assert.not.match(rendered, /hunter2/);
  // with the whole machine as the root, /etc/passwd is still not read
  const all: Host = { readFile: () => assert.unreachable("read") as never, checkPath: pathChecker(projectRoot(MAIN, { dir: "/", origin: "flag" })) };
  assert.equal(codes(importOf("/etc/passwd"), all), ["NN7051"]);
  // nor through a .nnet name that links to it
  symlinkSync(path.join(OUT, "secret.txt"), path.join(PROJ, "sub", "evil.nnet"));
  const linked = compile(MAIN, importOf("evil.nnet"), { readFile: () => assert.unreachable("read") as never, checkPath: pathChecker(projectRoot(MAIN, { dir: "/", origin: "flag" })) });
  assert.equal(linked.diagnostics.map((d) => d.code), ["NN7051"]);
});

test("data paths the file names (sources, tokenizer files, init) are checked at compile time, at the path's string", () => {
  withEnv({ [ROOT_ENV]: undefined }, () => {
    const ds = (source: string, extra = "") => `dataset D {\n  source ${source}\n  field x: f32[] = x${extra}\n  field y: i32[] = y\n}\n`;
    const cases: [string, string, RegExp][] = [
      [ds('csv(path: "../../outside/data.csv")'), "NN7050", /"\.\.\/\.\.\/outside\/data\.csv" resolves to .*outside\/data\.csv, which is outside the project root/],
      [ds('csv(path: "../linked.csv")'), "NN7050", /linked\.csv" resolves to .*outside\/data\.csv/],
      [ds('csv(path: "/proc/self/environ")'), "NN7041", /\/proc\/self\/environ is a virtual file of \/proc, not a regular file/],
      [ds('image_folder(path: "/etc", size: 8)'), "NN7050", /"\/etc" is outside the project root/],
      [ds('idx(images: "x.gz", labels: "/etc/hostname")'), "NN7050", /"\/etc\/hostname" is outside/],
    ];
    for (const [src, code, re] of cases) {
      const res = compile(MAIN, src, host());
      const d = res.diagnostics.find((x) => x.code === code);
      assert.ok(d, `${src}: ${res.diagnostics.map((x) => `${x.code} ${x.message}`).join("; ")}`);
      assert.match(d!.message, re);
      assert.is(src.slice(d!.span.start, d!.span.end)[0], '"', "the span is the path's string");
    }
    // inside the root: nothing to say (a missing file is the runtime's to report)
    assert.equal(codes(ds('csv(path: "train.csv")')), []);
    const tok = `dataset D {\n  source csv(path: "t.csv")\n  field ids: i32[8] = text -> tokenize(vocab: "/etc/hosts", max_len: 8)\n}\n`;
    assert.ok(codes(tok).includes("NN7050"), codes(tok).join());
  });
});

test("PATH_ARGS (compiler) and FILE_ARGS (data layer) name the same arguments", () => {
  assert.equal(Object.fromEntries(Object.entries(FILE_ARGS).map(([k, v]) => [k, v.args])), PATH_ARGS.sources as unknown as Record<string, string[]>);
});

// ── the data layer, at run time ─────────────────────────────────────────────────────────────────────

const SPAN = { file: "t.nnet", start: 0, end: 0, line: 1, col: 1 };
const call = (fn: string, args: Record<string, AttrValue>): IRCall => ({ fn, args, span: SPAN });
const fld = (name: string, column: string): IRField => ({ name, dtype: "f32", shape: [], column, steps: [], span: SPAN });
const dataset = (source: IRCall, fields: IRField[]): IRDataset => ({ name: "d", span: SPAN, source, test: null, fields, split: {}, filter: null });
const load = (source: IRCall, fields: IRField[], dataDir: string | null = null) =>
  loadDataset(dataset(source, fields) as never, { dataDir, baseDir: path.join(PROJ, "sub"), seed: 0, fallbackDirs: [], embeddedDir: null } as never);

async function rejects(p: Promise<unknown>, re: RegExp): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, DataError);
    assert.match((e as Error).message, re);
    return (e as Error).message;
  }
  assert.unreachable(`expected ${re}`);
  return "";
}

test("data files outside the root are refused when read (NN7050), --data DIR is allowed, /proc files are NN7041", async () => {
  await withEnv({ [ROOT_ENV]: undefined }, async () => {
    await rejects(load(call("csv", { path: "../../outside/data.csv" }), [fld("x", "x")]), /^NN7050: "\.\.\/\.\.\/outside\/data\.csv" resolves to .*, which is outside the project root/);
    await rejects(load(call("csv", { path: "../linked.csv" }), [fld("x", "x")]), /^NN7050: .*linked\.csv/);
    await rejects(load(call("csv", { path: "/proc/self/environ" }), [fld("x", "x")]), /^NN7041: \/proc\/self\/environ is a virtual file of \/proc/);
    const ok = await load(call("csv", { path: "data.csv" }), [fld("x", "x")], OUT); // --data names a folder outside
    assert.is(ok.train.size + (ok.test?.size ?? 0), 2);
  });
  // a symlink inside a data folder counts where it leads: a class folder, or one file of a class
  mkdirSync(path.join(PROJ, "texts", "a"), { recursive: true });
  mkdirSync(path.join(OUT, "tb"), { recursive: true });
  writeFileSync(path.join(PROJ, "texts", "a", "1.txt"), "one");
  writeFileSync(path.join(OUT, "tb", "2.txt"), "two");
  const texts = () => load(call("text_folder", { path: "../texts" }), [{ ...fld("t", "text"), dtype: "string" as never }, fld("y", "label")]);
  await withEnv({ [ROOT_ENV]: undefined }, async () => {
    symlinkSync(path.join(OUT, "tb"), path.join(PROJ, "texts", "b"));
    await rejects(texts(), /^NN7050: .*texts\/b" resolves to .*outside\/tb, which is outside the project root/);
    rmSync(path.join(PROJ, "texts", "b"));
    symlinkSync(path.join(OUT, "tb", "2.txt"), path.join(PROJ, "texts", "a", "2.txt"));
    await rejects(texts(), /^NN7050: .*2\.txt" resolves to .*outside\/tb\/2\.txt/);
  });
  await rejects(readDataFile("/proc/self/environ"), /^NN7041: \/proc\/self\/environ is a virtual file of \/proc, not a regular file/);
  assert.ok("error" in readSource("/proc/self/environ"));
});

test("no data error quotes a file's contents: a missing column, a repeated header name, a text cell, bad JSON", async () => {
  await withEnv({ [ROOT_ENV]: TMP }, async () => {
    const csv = path.join(OUT, "secret.txt");
    const m = await rejects(load(call("csv", { path: csv }), [fld("x", "nope")]), /has no column "nope" \(it has 2 columns/);
    assert.not.match(m, /hunter2|SECRET/);
    // a near miss is named (it differs from what the .nnet file wrote by at most two edits)
    writeFileSync(path.join(OUT, "near.csv"), "label,x\n1,2\n");
    await rejects(load(call("csv", { path: path.join(OUT, "near.csv") }), [fld("x", "labels")]), /did you mean "label"\?/);
    writeFileSync(path.join(OUT, "dup.csv"), "hunter2,hunter2\n1,2\n");
    assert.not.match(await rejects(load(call("csv", { path: path.join(OUT, "dup.csv") }), [fld("x", "a")]), /column 2 of the header repeats the name of column 1/), /hunter2/);
    writeFileSync(path.join(OUT, "cell.csv"), "x\n1\nhunter2\n");
    assert.not.match(await rejects(load(call("csv", { path: path.join(OUT, "cell.csv") }), [fld("x", "x")]), /./), /hunter2/);
    writeFileSync(path.join(OUT, "bad.jsonl"), '{"x": 1}\nhunter2 is here\n"hunter2"\n');
    assert.not.match(await rejects(load(call("jsonl", { path: path.join(OUT, "bad.jsonl") }), [fld("x", "x")]), /bad\.jsonl:2: not valid JSON/), /hunter2/);
    writeFileSync(path.join(OUT, "str.jsonl"), '"hunter2"\n');
    assert.not.match(await rejects(load(call("jsonl", { path: path.join(OUT, "str.jsonl") }), [fld("x", "x")]), /must be a JSON object, not a string/), /hunter2/);
  });
});

// ── the language server and the CLI ─────────────────────────────────────────────────────────────────

test("the language server confines a document to its workspace folder, and never shows a non-.nnet file", () => {
  withEnv({ [ROOT_ENV]: undefined }, () => {
    const ws = new Workspace();
    const uri = pathToFileURL(MAIN).href;
    ws.set(TextDocument.create(uri, "nnet", 1, importOf("../../outside/lib.nnet")));
    assert.equal(ws.analyze(uri)!.result.diagnostics.map((d) => d.code), ["NN7050"]);
    // the workspace folder is the root: wider than .nnetroot's folder
    ws.workspaceFolders = [TMP];
    ws.set(TextDocument.create(uri, "nnet", 2, importOf("../../outside/lib.nnet")));
    assert.equal(ws.analyze(uri)!.result.diagnostics.map((d) => d.code), []);
    ws.set(TextDocument.create(uri, "nnet", 3, importOf("../../outside/secret.txt")));
    const a = ws.analyze(uri)!;
    const lsp = lspDiagnostics(a);
    assert.equal(lsp.map((d) => d.code), ["NN7051"]);
    assert.not.match(JSON.stringify(lsp), /hunter2|SECRET/);
    assert.is(lsp[0]!.relatedInformation, undefined);
  });
  // NNETC_ROOT (what `nnetc --root DIR lsp` sets) wins over the workspace folder
  withEnv({ [ROOT_ENV]: PROJ }, () => {
    const ws = new Workspace();
    ws.workspaceFolders = [TMP];
    const uri = pathToFileURL(MAIN).href;
    ws.set(TextDocument.create(uri, "nnet", 1, importOf("../../outside/lib.nnet")));
    assert.equal(ws.analyze(uri)!.result.diagnostics.map((d) => d.code), ["NN7050"]);
  });
});

test("over the protocol: initialize's workspaceFolders are the root of the documents inside them", async () => {
  const uri = pathToFileURL(MAIN).href;
  const open = async (init: Record<string, unknown>) => {
    const c = await connect({ debounceMs: 0 }, init);
    try {
      const next = c.nextDiagnostics(uri, 1);
      c.notify("textDocument/didOpen", { textDocument: { uri, languageId: "nnet", version: 1, text: importOf("../../outside/lib.nnet") } });
      return (await next).diagnostics.map((d) => d.code);
    } finally {
      c.close();
    }
  };
  await withEnv({ [ROOT_ENV]: undefined }, async () => {
    assert.equal(await open({}), ["NN7050"]);
    assert.equal(await open({ workspaceFolders: [{ uri: pathToFileURL(TMP).href, name: "tmp" }] }), []);
    assert.equal(await open({ rootUri: pathToFileURL(TMP).href }), []);
  });
});

test("nnetc --root DIR and NNETC_ROOT widen the root for every command; a missing --root folder is a usage error", () => {
  const cli = path.join(ROOT, "dist/compiler/cli/main.js");
  const file = path.join(PROJ, "sub", "cli.nnet");
  writeFileSync(file, importOf("../../outside/lib.nnet"));
  const run = (args: string[], env: Record<string, string> = {}) => {
    const e: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", ...env };
    if (!(ROOT_ENV in env)) delete e[ROOT_ENV];
    return spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env: e as NodeJS.ProcessEnv });
  };
  const plain = run(["check", file]);
  assert.is(plain.status, 1, plain.stderr);
  assert.match(plain.stderr, /NN7050: .*outside the project root .*proj \(the nearest folder above the \.nnet file holding package\.json or \.nnetroot\)/);
  for (const args of [["--root", TMP, "check", file], ["check", "--root", TMP, file], ["summary", file, "--root", TMP]]) {
    const r = run(args);
    assert.is(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
  }
  assert.is(run(["check", file], { [ROOT_ENV]: TMP }).status, 0);
  const missing = run(["--root", path.join(TMP, "nope"), "check", file]);
  assert.is(missing.status, 2);
  assert.match(missing.stderr, /--root .*nope: no such folder/);
});

test.run();
