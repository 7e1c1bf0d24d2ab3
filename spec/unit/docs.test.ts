// spec/language.md stays true to the compiler: its reference tables are generated (UPDATE=1 rewrites them),
// every ```nnet sample compiles as it says, its EBNF names the same rules, tokens and sub-rules as
// grammar/parser.ts, its token lists match grammar/tokens.ts, and its summary example is real output.
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { TokenType } from "chevrotain";
import { referenceTables } from "../../compiler/docs.js";
import { renderSummary, summarize } from "../../compiler/summary.js";
import * as T from "../../grammar/tokens.js";
import { compileText, ROOT, UPDATE } from "../helpers.js";

const DOC_REL = "spec/language.md";
const DOC = path.join(ROOT, DOC_REL);
const BEGIN = "<!-- generated: reference tables (npm run test:update) -->";
const END = "<!-- end generated -->";

const doc = () => readFileSync(DOC, "utf8");

interface Fence {
  /** The info string: `nnet`, `nnet file=layers.nnet expect=NN2021`, `text summary`, … */
  info: string;
  body: string;
  /** 1-based line of the opening fence. */
  line: number;
}

/** The fenced code blocks of a Markdown text, in order. */
function fences(md: string): Fence[] {
  const out: Fence[] = [];
  const lines = md.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !lines[j]!.startsWith(open[1]!); j++) body.push(lines[j]!);
    out.push({ info: open[2]!.trim(), body: body.join("\n") + "\n", line: i + 1 });
    i = j;
  }
  return out;
}

/** `nnet file=a.nnet expect=NN2021,NN4005` → { lang: "nnet", attrs: { file: "a.nnet", expect: "NN2021,NN4005" } } */
function parseInfo(info: string): { lang: string; attrs: Record<string, string> } {
  const [lang = "", ...rest] = info.split(/\s+/);
  const attrs: Record<string, string> = {};
  for (const r of rest) {
    const [k, v] = r.split("=");
    attrs[k!] = v ?? "";
  }
  return { lang, attrs };
}

// ── the generated section ──────────────────────────────────────────────────────────────────────────

test("the generated reference tables in spec/language.md are up to date", () => {
  const text = doc();
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  assert.ok(start >= 0 && end > start, `${DOC_REL} needs the lines ${BEGIN} and ${END}, in that order`);
  const current = text.slice(start + BEGIN.length, end);
  const fresh = "\n\n" + referenceTables() + "\n";
  if (current === fresh) return;
  if (UPDATE) {
    writeFileSync(DOC, text.slice(0, start + BEGIN.length) + fresh + text.slice(end));
    return;
  }
  assert.fixture(current, fresh, `the generated section of ${DOC_REL} is stale (npm run test:update regenerates it)`);
});

test("referenceTables renders every table and skips internal ops", () => {
  const md = referenceTables();
  for (const h of ["Layers and operations", "Losses", "Metrics", "Optimizers", "Learning-rate schedules", "Data sources", "Preprocessing steps", "Settings", "Diagnostics"]) {
    assert.match(md, new RegExp(`^### 13\\.\\d+ ${h}$`, "m"), `missing table: ${h}`);
  }
  assert.match(md, "| `NN3002` |");
  const ops = md.slice(md.indexOf("Layers and operations"), md.indexOf("### 13.2"));
  assert.match(ops, "| `conv2d` |");
  assert.not.match(ops, "| `constant` |");
  assert.not.match(ops, "| `input` |");
  // Enum signatures contain pipes; in a table cell they must be escaped.
  assert.match(md, "padding: valid\\|same");
});

// ── samples ────────────────────────────────────────────────────────────────────────────────────────

const ALL = fences(doc());
const SAMPLES = ALL.filter((f) => /^nnet/.test(f.info));

test("language.md has samples, each fenced as nnet or nnet-fragment", () => {
  assert.ok(SAMPLES.length >= 20, `only ${SAMPLES.length} samples`);
  for (const f of SAMPLES) {
    const { lang, attrs } = parseInfo(f.info);
    assert.ok(lang === "nnet" || lang === "nnet-fragment", `line ${f.line}: unknown fence language "${lang}"`);
    for (const k of Object.keys(attrs)) assert.ok(k === "file" || k === "expect", `line ${f.line}: unknown fence attribute "${k}"`);
  }
});

/** Samples declared with file=NAME, served to later samples that import them. */
const files: Record<string, string> = {};
for (const f of SAMPLES) {
  const { lang, attrs } = parseInfo(f.info);
  if (lang !== "nnet") continue; // nnet-fragment: an excerpt, not a whole file
  const name = attrs.file ?? `language-md-line-${f.line}.nnet`;
  if (attrs.file) files[attrs.file] = f.body;
  const expected = (attrs.expect ?? "").split(",").filter(Boolean).sort();
  const available = { ...files };
  test(`${DOC_REL}:${f.line} compiles${expected.length ? ` with ${expected.join(", ")}` : " cleanly"}`, () => {
    const r = compileText(f.body, name, available);
    const got = r.diagnostics.map((d) => `${d.code} ${d.message}`);
    assert.equal([...new Set(r.diagnostics.map((d) => d.code))].sort(), expected, `diagnostics: ${JSON.stringify(got)}`);
  });
}

test("the summary example is the output of nnetc summary", () => {
  const at = ALL.findIndex((f) => f.info === "text summary");
  assert.ok(at > 0, "no ```text summary block");
  const sample = ALL.slice(0, at).reverse().find((f) => f.info.startsWith("nnet"));
  assert.ok(sample, "the summary block follows no nnet sample");
  const r = compileText(sample!.body);
  assert.equal(r.diagnostics, []);
  assert.fixture(ALL[at]!.body, renderSummary(summarize(r.module.models[0]!)) + "\n");
});

// ── grammar and tokens ─────────────────────────────────────────────────────────────────────────────

/** How a token is written in the EBNF: its spelling in quotes, or its name (Identifier, Number, …). */
function label(t: TokenType): string {
  const info = T.TOKENS.find((i) => i.token === t);
  assert.ok(info, `token ${t.name} is not in TOKENS`);
  return info!.spelling !== undefined ? JSON.stringify(info!.spelling) : t.name;
}

interface Rule {
  name: string;
  tokens: Set<string>;
  subrules: Set<string>;
}

/** The rules of grammar/parser.ts: for each, the tokens it consumes and the rules it calls. */
function parserRules(): Rule[] {
  const src = readFileSync(path.join(ROOT, "grammar/parser.ts"), "utf8");
  const classEnd = src.indexOf("\nlet instance");
  const starts = [...src.matchAll(/this\.RULE\("(\w+)"/g)];
  assert.ok(starts.length > 0 && classEnd > 0, "cannot read the rules of grammar/parser.ts");
  return starts.map((m, i) => {
    const body = src.slice(m.index!, i + 1 < starts.length ? starts[i + 1]!.index! : classEnd);
    const tokens = new Set([...body.matchAll(/\bT\.(\w+)/g)].map((t) => label((T as unknown as Record<string, TokenType>)[t[1]!]!)));
    const subrules = new Set([...body.matchAll(/this\.SUBRULE\d?\(this\.(\w+)\)/g)].map((s) => s[1]!));
    return { name: m[1]!, tokens, subrules };
  });
}

/** The rules of the ```ebnf block of language.md. */
function ebnfRules(): Rule[] {
  const block = ALL.filter((f) => f.info === "ebnf");
  assert.is(block.length, 1, "language.md needs exactly one ```ebnf block");
  const text = block[0]!.body.replace(/\(\*[\s\S]*?\*\)/g, " ");
  const defs = [...text.matchAll(/(\w+)\s*=\s*((?:"[^"]*"|[^;"])*);/g)];
  const names = new Set(defs.map((d) => d[1]!));
  const tokenNames = new Set(T.TOKENS.filter((i) => i.spelling === undefined).map((i) => i.token.name));
  return defs.map((d) => {
    const rhs = d[2]!;
    const tokens = new Set<string>();
    const subrules = new Set<string>();
    for (const q of rhs.matchAll(/"([^"]*)"/g)) tokens.add(JSON.stringify(q[1]));
    for (const w of rhs.replace(/"[^"]*"/g, " ").matchAll(/[A-Za-z_]\w*/g)) {
      if (names.has(w[0])) subrules.add(w[0]);
      else if (tokenNames.has(w[0])) tokens.add(w[0]);
      else assert.unreachable(`EBNF rule ${d[1]}: "${w[0]}" is neither a rule nor a token name`);
    }
    return { name: d[1]!, tokens, subrules };
  });
}

test("the EBNF has the parser's rules, in the parser's order", () => {
  assert.equal(ebnfRules().map((r) => r.name), parserRules().map((r) => r.name));
});

test("each EBNF rule uses the same tokens and sub-rules as its parser rule", () => {
  const ebnf = new Map(ebnfRules().map((r) => [r.name, r]));
  for (const p of parserRules()) {
    const e = ebnf.get(p.name);
    if (!e) continue; // reported by the test above
    assert.equal([...e.tokens].sort(), [...p.tokens].sort(), `tokens of rule ${p.name}`);
    assert.equal([...e.subrules].sort(), [...p.subrules].sort(), `sub-rules of rule ${p.name}`);
  }
});

/** Backquoted words of the paragraph right after a heading. */
function listAfter(heading: string): string[] {
  const text = doc();
  const at = text.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `no heading "${heading}"`);
  const para = text.slice(at + heading.length + 2).trimStart().split("\n\n")[0]!;
  return [...para.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
}

test("the lexical section lists exactly the keywords, type names and operators of grammar/tokens.ts", () => {
  const reserved = T.TOKENS.filter((i) => (i.scope === "keyword" || i.scope === "constant") && i.spelling).map((i) => i.spelling!);
  assert.equal(listAfter("### 2.3 Keywords").sort(), [...reserved].sort());
  assert.equal(listAfter("### 2.4 Type names").sort(), [...T.TYPE_NAMES].sort());
  const symbols = T.TOKENS.filter((i) => (i.scope === "operator" || i.scope === "punctuation") && i.spelling).map((i) => i.spelling!);
  assert.equal(listAfter("### 2.7 Operators and punctuation").sort(), [...symbols].sort());
});

test.run();
