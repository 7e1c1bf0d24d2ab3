// The formatter (compiler/format/): golden samples (spec/format/X.nnet → X.formatted.nnet, UPDATE=1
// rewrites), comments of every kind in awkward places, idempotence and an unchanged IR over the zoo and
// every sample under spec/, a fast-check property over generated programs, the prettier plugin (same
// bytes as format(), and prettier's own CLI), and `nnetc fmt` (in place, --check, --stdin, syntax errors).
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import * as prettier from "prettier";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { format, sameProgram } from "../../compiler/format/index.js";
import plugin from "../../compiler/format/prettier.js";
import { lexer } from "../../grammar/tokens.js";
import { declarationSoup, mutant, randomProgram } from "../fuzz-inputs.js";
import { compileText, golden, ROOT, runNode } from "../helpers.js";

const rel = (f: string) => path.relative(ROOT, f);
function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const f = path.join(dir, n);
    return statSync(f).isDirectory() ? walk(f) : n.endsWith(".nnet") ? [f] : [];
  });
}
const ZOO = readdirSync(path.join(ROOT, "models")).filter((f) => f.endsWith(".nnet")).sort().map((f) => path.join(ROOT, "models", f));
/** Every .nnet under spec/ and examples/ (diagnostic samples with syntax errors are refused, not formatted). */
const SPEC = [...walk(path.join(ROOT, "spec")), ...walk(path.join(ROOT, "examples"))].filter((f) => !f.endsWith(".formatted.nnet")).sort();
const SAMPLES = readdirSync(path.join(ROOT, "spec/format")).filter((f) => f.endsWith(".nnet") && !f.endsWith(".formatted.nnet")).sort();
const read = (f: string) => readFileSync(f, "utf8");

/** The IR as JSON without source positions, and the diagnostic codes: what formatting must not change. */
function meaning(file: string, text: string): string {
  const r = compileText(text, file);
  const ir = JSON.stringify(r.module, (k, v) => (/span$/i.test(k) ? undefined : v));
  return `${ir}\n${r.diagnostics.map((d) => d.code).join(",")}`;
}

function formatted(file: string, text: string): string {
  const r = format(file, text);
  if (!r.ok) throw new assert.Assertion({ message: `${rel(file)} did not format: ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ")}`, operator: "format", expects: "ok", actual: r.diagnostics, generated: false, details: "" } as never);
  return r.text;
}

function comments(text: string): string[] {
  return (lexer.tokenize(text).groups.comments ?? []).map((c) => c.image.replace(/[ \t]+$/gm, ""));
}

// ── golden samples ───────────────────────────────────────────────────────────────────────────────

for (const name of SAMPLES) {
  test(`golden: spec/format/${name}`, () => {
    const file = path.join(ROOT, "spec/format", name);
    const text = read(file);
    const out = formatted(file, text);
    golden(`spec/format/${name.replace(/\.nnet$/, ".formatted.nnet")}`, out);
    assert.is(formatted(file, out), out, "formatting the output again changes it");
    assert.equal(comments(out), comments(text), "comments lost, changed or reordered");
    assert.is(meaning(file, out), meaning(file, text), "formatting changed the IR");
  });
}

test("comments in awkward places stay put: a comment at every token boundary of the zoo's MLP", () => {
  const file = path.join(ROOT, "models/mlp.nnet");
  const text = read(file);
  const toks = lexer.tokenize(text).tokens;
  const kinds = ["/* c */ ", "// c\n", "/// d\n", "\n/* x\n   y */\n", "// c\n\n"];
  let n = 0;
  for (const kind of kinds) {
    for (const t of toks) {
      const src = text.slice(0, t.startOffset) + kind + text.slice(t.startOffset);
      const out = formatted(file, src);
      assert.equal(comments(out), comments(src), `comment ${JSON.stringify(kind)} before token ${n}`);
      assert.is(formatted(file, out), out, `not idempotent with ${JSON.stringify(kind)} before ${JSON.stringify(t.image)} at ${t.startOffset}`);
      n++;
    }
  }
  assert.ok(n > 300);
});

test("doc comments stay with their declaration (the IR's doc fields are unchanged)", () => {
  const text = "/// The model.\nmodel M{input x: f32[batch, 2]\n  output y = x->dense(2)}\n/// The data.\ndataset d { source csv(path: \"a.csv\"); field x: f32[2] = a\n field y: i32 = b }\n/// The plan.\ntrain M on d { loss mse(y, y) }\n";
  const out = formatted("t.nnet", text);
  const ir = compileText(out, "t.nnet").module;
  assert.is(ir.models[0]!.doc, "The model.");
  assert.is(meaning("t.nnet", out), meaning("t.nnet", text));
});

// ── the zoo and the samples under spec/ ──────────────────────────────────────────────────────────

test("the zoo and the examples are formatted (nnetc fmt --check passes over them)", () => {
  const unformatted = [...ZOO, ...SPEC.filter((f) => f.includes(`${path.sep}examples${path.sep}`))].filter((f) => format(f, read(f)).ok && (format(f, read(f)) as { changed: boolean }).changed);
  assert.equal(unformatted.map(rel), []);
});

test("idempotent, and the IR unchanged, over the zoo and every sample under spec/", () => {
  let refused = 0;
  for (const f of [...ZOO, ...SPEC]) {
    const text = read(f);
    const r = format(f, text);
    if (!r.ok) {
      // Only files with syntax errors are refused, and they say so with their NN1xxx codes.
      assert.ok(r.diagnostics.every((d) => d.code.startsWith("NN1")), `${rel(f)}: ${r.diagnostics.map((d) => d.code)}`);
      assert.ok(rel(f).startsWith("spec/diagnostics/NN1"), `${rel(f)} was refused`);
      refused++;
      continue;
    }
    assert.is(formatted(f, r.text), r.text, `${rel(f)}: formatting twice differs from once`);
    assert.is(meaning(f, r.text), meaning(f, text), `${rel(f)}: formatting changed the IR`);
  }
  assert.ok(refused >= 5 && refused < 15, `${refused} files refused`);
});

test("the samples of spec/language.md §14 (Formatting) are formatted", () => {
  const md = read(path.join(ROOT, "spec/language.md"));
  const section = md.slice(md.indexOf("## 14. Formatting"));
  const samples = [...section.matchAll(/```nnet\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(samples.length > 0, "§14 has no nnet sample");
  for (const s of samples) assert.is(formatted("language.md", s), s);
});

test("options: printWidth and indent", () => {
  const text = "model M { input x: f32[batch, 8]\n output y = x -> dense(16) -> relu -> dense(8) -> relu -> dense(2) }\n";
  const narrow = formatted("t.nnet", text);
  assert.ok(narrow.includes("output y = x -> dense(16)"), narrow);
  const r = format("t.nnet", text, { printWidth: 30, indent: 4 });
  assert.ok(r.ok);
  if (r.ok) assert.is(r.text, "model M {\n    input x: f32[batch, 8]\n    output y = x\n        -> dense(16)\n        -> relu\n        -> dense(8)\n        -> relu\n        -> dense(2)\n}\n");
});

test("the guard: a changed token, a lost or moved comment are caught", () => {
  assert.is(sameProgram("a = b // c\n", "a = b // c\n"), undefined);
  assert.match(sameProgram("a = b\n", "a = c\n")!, /tokens/);
  assert.match(sameProgram("a = b // c\n", "a = b\n")!, /lost/);
  assert.match(sameProgram("a = b // c\nd = e\n", "a = b\nd = e // c\n")!, /moved/);
  assert.match(sameProgram("a = b /* c */\n", "a = b /* d */\n")!, /changed comment/);
});

test("a file with syntax errors is not formatted: its NN1xxx diagnostics come back", () => {
  const r = format("bad.nnet", "model M {\n  x = dense(2\n}\n");
  assert.ok(!r.ok);
  if (!r.ok) assert.ok(r.diagnostics.length > 0 && r.diagnostics.every((d) => d.code.startsWith("NN1")));
  const empty = format("e.nnet", "");
  assert.equal(empty, { ok: true, text: "", changed: false });
  assert.equal(format("c.nnet", "// only a comment"), { ok: true, text: "// only a comment\n", changed: true });
});

// ── properties ───────────────────────────────────────────────────────────────────────────────────

test("property: formatting a generated program never changes its IR, and is idempotent", () => {
  let formattedCount = 0;
  fc.assert(
    fc.property(randomProgram, (text) => {
      const r = format("p.nnet", text);
      if (!r.ok) {
        assert.ok(r.diagnostics.every((d) => d.code.startsWith("NN1")), r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; "));
        return;
      }
      formattedCount++;
      assert.is(meaning("p.nnet", r.text), meaning("p.nnet", text));
      assert.is(formatted("p.nnet", r.text), r.text);
    }),
    { seed: 20261129, numRuns: 150 },
  );
  assert.ok(formattedCount > 100, `only ${formattedCount} of 150 programs parsed`);
});

test("property: any text (mutated programs, token soups) is formatted or refused with NN1xxx, never NN9001", () => {
  fc.assert(
    fc.property(fc.oneof(mutant, declarationSoup), (text) => {
      const r = format("p.nnet", text);
      if (!r.ok) {
        assert.ok(r.diagnostics.every((d) => d.code.startsWith("NN1")), r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; "));
        return;
      }
      assert.is(formatted("p.nnet", r.text), r.text);
      assert.equal(comments(r.text), comments(text));
    }),
    { seed: 20261129, numRuns: 400 },
  );
});

// ── the prettier plugin ──────────────────────────────────────────────────────────────────────────

test("prettier plugin: prettier.format gives the bytes format() gives", async () => {
  for (const f of [...ZOO, ...SAMPLES.map((s) => path.join(ROOT, "spec/format", s))]) {
    const text = read(f);
    const out = await prettier.format(text, { parser: "nnet", plugins: [plugin] });
    assert.is(out, formatted(f, text), rel(f));
  }
  const narrow = await prettier.format("model M { input x: f32[batch, 8]\n output y = x -> dense(16) -> relu }", { parser: "nnet", plugins: [plugin], printWidth: 20, tabWidth: 4 });
  assert.is(narrow, (format("t.nnet", "model M { input x: f32[batch, 8]\n output y = x -> dense(16) -> relu }", { printWidth: 20, indent: 4 }) as { text: string }).text);
});

test("prettier plugin: a syntax error is prettier's SyntaxError with the NN1xxx message and position", async () => {
  try {
    await prettier.format("model M {\n  x = dense(2\n}\n", { parser: "nnet", plugins: [plugin] });
    assert.unreachable("no error");
  } catch (e) {
    const err = e as Error & { loc?: { start: { line: number; column: number } } };
    assert.match(err.message, /NN1002/);
    assert.is(err.loc?.start.line, 2);
  }
});

test("prettier plugin: prettier's CLI --check accepts the zoo (spawned)", async () => {
  const r = await runNode(["node_modules/prettier/bin/prettier.cjs", "--plugin", "./dist/compiler/format/prettier.js", "--check", ...ZOO.map(rel)]);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /All matched files use Prettier code style/);
});

// ── nnetc fmt ────────────────────────────────────────────────────────────────────────────────────

test("nnetc fmt: --check lists and exits 1, fmt rewrites in place, a syntax error is reported and nothing written", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "nnetc-fmt-"));
  try {
    const ugly = path.join(dir, "ugly.nnet");
    const good = path.join(dir, "good.nnet");
    const bad = path.join(dir, "bad.nnet");
    const uglyText = "model M{input x:f32[batch,2]\n output y=x->dense(2)}";
    writeFileSync(ugly, uglyText);
    copyFileSync(path.join(ROOT, "models/mlp.nnet"), good);
    const badText = "model M {\n  x = dense(2\n}\n";
    writeFileSync(bad, badText);
    const cli = path.join(ROOT, "dist/nnetc.mjs");

    const check = await runNode([cli, "fmt", "--check", ugly, good]);
    assert.is(check.code, 1, check.stderr);
    assert.is(check.stdout, `${ugly}\n`);
    assert.match(check.stderr, /1 file not formatted/);
    assert.is(read(ugly), uglyText, "--check wrote the file");

    const fix = await runNode([cli, "fmt", ugly, good]);
    assert.is(fix.code, 0, fix.stderr);
    assert.is(fix.stdout, `formatted ${ugly}\n`);
    assert.is(read(ugly), "model M {\n  input x: f32[batch, 2]\n  output y = x -> dense(2)\n}\n");
    assert.equal(readdirSync(dir).sort(), ["bad.nnet", "good.nnet", "ugly.nnet"], "a temporary file was left behind");
    assert.is((await runNode([cli, "fmt", "--check", ugly, good])).code, 0);

    const broken = await runNode([cli, "fmt", bad, ugly]);
    assert.is(broken.code, 1);
    assert.match(broken.stderr, /bad\.nnet:2:14 - error NN1002/);
    assert.match(broken.stderr, /not formatted/);
    assert.not.match(broken.stderr, /at .*\.js:\d+/, "a stack trace");
    assert.is(read(bad), badText, "a file with syntax errors was written");

    const missing = await runNode([cli, "fmt", path.join(dir, "nope.nnet")]);
    assert.is(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*nope\.nnet: no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("nnetc fmt --stdin: standard input to standard output", async () => {
  const { spawnSync } = await import("node:child_process");
  const cli = path.join(ROOT, "dist/nnetc.mjs");
  const r = spawnSync(process.execPath, [cli, "fmt", "--stdin"], { input: "model M{input x:f32[batch,2];output y=x}", encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, "model M {\n  input x: f32[batch, 2]\n  output y = x\n}\n");
  const c = spawnSync(process.execPath, [cli, "fmt", "--stdin", "--check", "x.nnet"], { input: "model M{input x:f32[batch,2];output y=x}", encoding: "utf8" });
  assert.is(c.status, 1);
  assert.is(c.stdout, "x.nnet\n");
  const e = spawnSync(process.execPath, [cli, "fmt", "--stdin"], { input: "model M {", encoding: "utf8" });
  assert.is(e.status, 1);
  assert.match(e.stderr, /<stdin>:1:10 - error NN1002/);
  assert.is(e.stdout, "");
});

test.run();
