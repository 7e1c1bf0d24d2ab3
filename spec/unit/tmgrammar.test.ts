// The TextMate grammar (compiler/editor/tmlanguage.ts), run by vscode-textmate + vscode-oniguruma as VS Code
// runs it: the committed files are current, annotated samples (spec/tmgrammar/*.tmtest) hold, the zoo and the
// reference's samples tokenize without an invalid scope, and every token the lexer sees gets a scope of its
// kind from the grammar (the grammar is generated from the token table, so the two must agree).
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { IGrammar } from "vscode-textmate";
import { lexer, TOKENS, type TokenScope } from "../../grammar/tokens.js";
import { grammarFiles } from "../../compiler/editor/tmlanguage.js";
import { golden, ROOT } from "../helpers.js";
import { checkSample, loadGrammar, tokenize } from "../tmgrammar.js";

let grammar: IGrammar;
const g = async () => (grammar ??= await loadGrammar());

test("the committed grammars are generated from the current tables", () => {
  for (const [rel, text] of Object.entries(grammarFiles())) golden(rel, text);
});

const samples = readdirSync(path.join(ROOT, "spec/tmgrammar")).filter((f) => f.endsWith(".tmtest"));
test("there are annotated samples", () => {
  assert.ok(samples.length >= 2);
});
for (const f of samples) {
  test(`annotated sample ${f}`, async () => {
    const failures = checkSample(await g(), readFileSync(path.join(ROOT, "spec/tmgrammar", f), "utf8"));
    assert.equal(failures, [], failures.join("\n"));
  });
}

/** The zoo, and the ```nnet samples of the reference. */
function corpus(): [string, string][] {
  const zoo = readdirSync(path.join(ROOT, "models")).filter((f) => f.endsWith(".nnet")).map((f) => [`models/${f}`, readFileSync(path.join(ROOT, "models", f), "utf8")] as [string, string]);
  const md = readFileSync(path.join(ROOT, "spec/language.md"), "utf8");
  const blocks = [...md.matchAll(/^```nnet\n([\s\S]*?)^```/gm)].map((m, i) => [`spec/language.md block ${i + 1}`, m[1]!] as [string, string]);
  return [...zoo, ...blocks];
}

test("the zoo and the reference samples tokenize with no invalid scope", async () => {
  const files = corpus();
  assert.ok(files.length > 15);
  for (const [name, text] of files) {
    const bad = tokenize(await g(), text).filter((t) => t.scopes.some((s) => s.startsWith("invalid")));
    assert.equal(bad.map((t) => `${name}:${t.line + 1}:${t.start + 1} ${JSON.stringify(t.text)} ${t.scopes.join(" ")}`), []);
  }
});

/** What scopes a token of each kind of the token table may get from the grammar. */
const AGREES: Record<TokenScope, (scopes: string[]) => boolean> = {
  keyword: (s) => s.includes("keyword.control.nnet"),
  type: (s) => s.includes("support.type.primitive.nnet"),
  constant: (s) => s.includes("constant.language.boolean.nnet"),
  number: (s) => s.includes("constant.numeric.nnet"),
  string: (s) => s.includes("string.quoted.double.nnet"),
  comment: (s) => s.some((x) => x.startsWith("comment.")),
  operator: (s) => s.some((x) => x.startsWith("keyword.operator.")),
  punctuation: (s) => s.some((x) => x.startsWith("punctuation.")),
  identifier: (s) => !s.some((x) => /^(keyword|constant|string|comment|support\.type\.primitive|invalid|punctuation)\b/.test(x)),
  whitespace: () => true,
  invalid: (s) => s.some((x) => x.startsWith("invalid.")),
};

/** Disagreements between the lexer and the grammar on `text`, as readable lines. */
function disagreements(gr: IGrammar, text: string): string[] {
  const lexed = lexer.tokenize(text);
  const all = [...lexed.tokens, ...Object.values(lexed.groups).flat()];
  const tm = tokenize(gr, text);
  const out: string[] = [];
  for (const t of all) {
    const info = TOKENS.find((i) => i.token === t.tokenType)!;
    const line = t.startLine! - 1;
    const col = t.startColumn! - 1;
    const at = tm.find((x) => x.line === line && col >= x.start && col < x.end);
    if (!AGREES[info.scope](at?.scopes ?? [])) out.push(`${line + 1}:${col + 1} ${t.tokenType.name} ${JSON.stringify(t.image)}: ${at?.scopes.join(" ") ?? "no token"}`);
  }
  return out;
}

test("every token of the zoo and the reference gets the grammar scope of its kind", async () => {
  for (const [name, text] of corpus()) assert.equal(disagreements(await g(), text), [], name);
});

test("property: random token sequences get the grammar scope of their kind", async () => {
  const gr = await g();
  const word = fc.constantFrom(...TOKENS.filter((t) => t.spelling && t.scope !== "whitespace").map((t) => t.spelling!), "x", "conv2d", "Stage_1", "dense", "adam", "batch", "loss", "in");
  const num = fc.constantFrom("3", "0.5", "5.", ".5", "1e-3", "2.5E+4", "128");
  const str = fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s.replace(/[\n\r\u2028\u2029]/g, "")));
  const comment = fc.constantFrom("// note\n", "/// doc\n", "/* block\n comment */");
  const sep = fc.constantFrom(" ", "\n", "  ", "\t");
  const tokens = fc.array(fc.tuple(fc.oneof(word, num, str, comment), sep), { maxLength: 30 });
  fc.assert(
    fc.property(tokens, (ts) => {
      const text = ts.map(([t, s]) => t + s).join("");
      const d = disagreements(gr, text);
      if (d.length) throw new Error(`${JSON.stringify(text)}\n${d.join("\n")}`);
    }),
    { numRuns: 300 },
  );
});

test.run();
