// The parser and lexer skip Chevrotain's self-checks at run time for start-up speed; run them here.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { validateGrammar } from "../../grammar/parser.js";
import { KEYWORDS, TOKENS, validateLexer } from "../../grammar/tokens.js";
import { compile } from "../../compiler/index.js";

test("the grammar passes Chevrotain's validations (no ambiguity, no left recursion)", () => {
  validateGrammar();
});

test("the token vocabulary passes Chevrotain's lexer validations", () => {
  validateLexer();
});

test("every keyword is a token with a literal spelling", () => {
  assert.ok(KEYWORDS.includes("model") && KEYWORDS.includes("repeat"));
  for (const t of TOKENS) if (t.scope === "keyword") assert.type(t.spelling, "string");
});

test("doc comments: consecutive /// lines directly above a declaration; a blank line ends them (language.md §2.1)", () => {
  const doc = (text: string) => compile("doc.nnet", text, { readFile: () => ({ error: "no imports" }) }).module.models[0]!.doc;
  const model = "model M {\n  input x: f32[batch, 2]\n  output y = x -> dense(1)\n}\n";
  assert.is(doc(`/// first\n///   second  \n${model}`), "first\n  second");
  assert.is(doc(`/// detached\n\n/// attached\n${model}`), "attached");
  assert.is(doc(`/// detached\n\n${model}`), undefined);
  assert.is(doc(`/// a\n// plain\n${model}`), undefined);
});

test.run();
