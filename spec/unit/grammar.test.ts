// The parser and lexer skip Chevrotain's self-checks at run time for start-up speed; run them here.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { validateGrammar } from "../../grammar/parser.js";
import { KEYWORDS, TOKENS, validateLexer } from "../../grammar/tokens.js";

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

test.run();
