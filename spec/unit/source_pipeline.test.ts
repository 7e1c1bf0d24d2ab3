// The source pipeline's large-file changes (issue 18, npm run bench:source): parseFile builds each declaration's
// AST as soon as it is parsed (grammar/parser.ts parseTokens' onDecl) and finds doc comments by binary search.
// The goldens (ir, diagnostics, format, zoo) hold the output identical; these pin the edges of the new paths.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parse } from "../../compiler/index.js";
import { MAX_NESTING } from "../../grammar/parser.js";

test("a parse stopped by NN1007 keeps nothing from the declarations handed over before it", () => {
  const deep = "(".repeat(MAX_NESTING + 5) + "1" + ")".repeat(MAX_NESTING + 5);
  // model A is parsed and built (with its NN1006, a number too large) before the parse stops in model B
  const text = `model A {\n  input x: f32[batch, 4]\n  output y = x -> dense(99999999999999999999)\n}\nmodel B {\n  input x: f32[batch, 4]\n  output y = x -> dense(${deep})\n}\n`;
  const r = parse("deep.nnet", text);
  assert.equal(r.diagnostics.map((d) => d.code), ["NN1007"]);
  assert.equal(r.ast.decls, []);
});

test("each of many declarations gets the doc comment directly above it, and only that one", () => {
  const parts: string[] = [];
  for (let i = 0; i < 60; i++) {
    const doc = i % 3 === 0 ? "" : i % 3 === 1 ? `/// model ${i}\n` : `/// model ${i}, line 1\n/// line 2\n`;
    const gap = i % 5 === 4 ? "// a plain comment\n\n" : "\n";
    parts.push(`${doc}model M${i} {\n  input x: f32[batch, 4]\n  output y = x -> dense(2)\n}\n${gap}`);
  }
  const r = parse("docs.nnet", parts.join(""));
  assert.equal(r.diagnostics, []);
  assert.equal(r.ast.decls.length, 60);
  r.ast.decls.forEach((d, i) => {
    const want = i % 3 === 0 ? undefined : i % 3 === 1 ? `model ${i}` : `model ${i}, line 1\nline 2`;
    assert.equal((d as { doc?: string }).doc, want, `M${i}`);
  });
});

test.run();
