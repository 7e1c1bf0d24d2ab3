// Nesting is bounded (grammar/parser.ts MAX_NESTING): a file nested deeper is one NN1007 at the token that opens
// the level too many, found quickly, in check, fmt and the language server; a file at the limit compiles, so
// no later recursive stage ever sees deeper input (before: "Maximum call stack size exceeded", NN9001).
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TextDocument } from "vscode-languageserver-textdocument";
import { format } from "../../compiler/format/index.js";
import { lspDiagnostics, Workspace } from "../../compiler/lsp/server.js";
import { MAX_NESTING } from "../../grammar/parser.js";
import { codes, compileText, ROOT } from "../helpers.js";

const model = (expr: string, body = "") => `model M {
  input x: f32[batch, 4]
  h = x -> dense(4)${body}
  output y = h -> dense(${expr})
}
`;

/**
 * Each shape of nesting, built to k levels in all: the model's body is one level, a binding's expression another
 * and dense's argument a third.
 */
const SHAPES: [string, (k: number) => string][] = [
  ["parentheses", (k) => model("(".repeat(k - 3) + "4" + ")".repeat(k - 3))],
  ["unary minus", (k) => model("4", `\n  z = ${"-".repeat(k - 2)}1`)],
  ["nested ternaries", (k) => model("true ? ".repeat(k - 3) + "4" + " : 1".repeat(k - 3))],
  ["a + b + … chain", (k) => model(Array(k - 2).fill("1").join(" + "))],
  ["lists", (k) => model("4", `\n  z = ${"[".repeat(k - 2)}1${"]".repeat(k - 2)}`)],
  ["call arguments", (k) => model("4", `\n  z = ${"max(".repeat(k - 2)}1${")".repeat(k - 2)}`)],
  ["repeat bodies", (k) => model("4", "\n" + "repeat 1 {\n".repeat(k - 2) + "  h = h -> relu\n" + "}\n".repeat(k - 2))],
];

test("MAX_NESTING levels compile; one more is exactly one NN1007, at the token that opens it", () => {
  for (const [what, at] of SHAPES) {
    const ok = compileText(at(MAX_NESTING));
    assert.not.ok(codes(ok).includes("NN1007"), `${what} at the limit: ${codes(ok).join(", ")}`);
    assert.equal(ok.diagnostics.filter((d) => d.severity === "error").map((d) => d.code), [], `${what} at the limit compiles`);
    const bad = compileText(at(MAX_NESTING + 1));
    assert.equal(codes(bad), ["NN1007"], `${what} past the limit`);
    assert.ok(bad.diagnostics[0]!.message.includes(String(MAX_NESTING)), "the message names the limit");
    assert.ok(/split the expression with bindings/.test(bad.diagnostics[0]!.hint ?? ""), "the hint says what to do");
  }
});

test("the diagnostic points at the token that opens the level too many", () => {
  const text = SHAPES[0]![1](MAX_NESTING + 1);
  const d = compileText(text).diagnostics[0]!;
  const open = text.lastIndexOf("dense(") + "dense(".length + (MAX_NESTING - 3);
  assert.equal([d.span.start, text.slice(d.span.start, d.span.end)], [open, "("]);
});

test("far past the limit (20 000 levels, each shape): NN1007 quickly in check, fmt and the language server", () => {
  const uri = pathToFileURL(path.join(ROOT, "models", "deep.nnet")).href;
  for (const [what, at] of SHAPES) {
    const text = at(20000);
    const t0 = performance.now();
    assert.equal(codes(compileText(text)), ["NN1007"], what);
    const f = format("deep.nnet", text);
    assert.ok(!f.ok && f.diagnostics.map((d) => d.code).join() === "NN1007", `${what}: fmt refuses with NN1007`);
    const ws = new Workspace();
    ws.set(TextDocument.create(uri, "nnet", 1, text));
    assert.equal(lspDiagnostics(ws.analyze(uri)!).map((d) => d.code), ["NN1007"], `${what}: the language server`);
    const ms = performance.now() - t0;
    assert.ok(ms < 3000, `${what}: ${ms.toFixed(0)} ms`);
  }
});

test.run();
