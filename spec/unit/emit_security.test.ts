// Security of the TypeScript emitter (issue 4): identifiers, strings, doc comments, comments and numbers from a
// .nnet file never reach emitted code unescaped. fast-check generates valid programs from a template (model,
// block, dataset, training plan with phases) whose every name is hostile (JS/TS reserved and contextual words,
// globals the emitted code relies on, the emitter's own helper names and the names it derives from a model's)
// and whose `///` doc comments, `//` and `/* */` comments (statement lines are copied into the `// file:line
// text` comments), string literals, numbers and file names carry payloads: comment and string terminators, line
// separators, template syntax, HTML, TypeScript comment directives, bidi controls, lookalikes, lone surrogates,
// very long text, Infinity/NaN/-0 and denormals. (`#` is not a comment in .nnet but a syntax error, so a file
// with one is never emitted.) Every payload plants the marker PWNED_1337. For each program and each flavour (ts,
// js, dts), raw and (ts) prettier-formatted:
//   - the output parses with the TypeScript compiler with zero syntactic diagnostics (js: no type syntax);
//   - the marker occurs only inside comments and string literals, never in an identifier or any other token;
//     no comment carries a directive (@ts-ignore, @ts-expect-error), a bidi control or "</script";
//   - there are no template literals, regular expressions, dynamic imports, eval/Function/require; every call
//     is tf.*, nn.*, Math.floor/ceil or new URL; every free name is a known global, no declaration shadows
//     one (or tf, nn); `__proto__` is never a plain object-literal key;
//   - every string payload comes back unchanged as the value of a string literal;
//   - the same program with plain text in place of every payload emits the same tokens: payloads change the
//     contents of comments and strings, nothing else;
// and all ts and dts outputs together type-check with strict (one ts.Program over files kept in memory under
// dist/spec/tmp-security/, so that nnetc/runtime and @tensorflow/tfjs-core resolve; written there only when
// the check fails, for inspection). The seed is fixed; replay or explore with
//   SECURITY_SEED=7 SECURITY_RUNS=300 SECURITY_TIME_LIMIT_MS=600000 node dist/spec/unit/emit_security.test.js
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import ts from "typescript";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { emitCode, formatTs } from "../../compiler/emit/index.js";
import type { Flavor } from "../../compiler/emit/ts.js";
import type { CompileResult } from "../../compiler/index.js";
import { compileText, ROOT } from "../helpers.js";

const SEED = Number(process.env.SECURITY_SEED ?? 20240611);
/** About 6 s on an idle 2-core machine, plus 4 s for the type-check of the batch (twice that on a busy one). */
const RUNS = Number(process.env.SECURITY_RUNS ?? 40);
/** A bound for a loaded machine: generation and per-case checks stop here (the batch is type-checked after). */
const TIME_LIMIT_MS = Number(process.env.SECURITY_TIME_LIMIT_MS ?? 30_000);
const TMP = path.join(ROOT, "dist/spec/tmp-security");

const M = "PWNED_1337";

// ── hostile names ─────────────────────────────────────────────────────────────────────────────────

/** Valid .nnet identifiers ([A-Za-z_][A-Za-z0-9_]*, not a .nnet keyword or type name) that are hostile in TS. */
const JS_WORDS = (
  "class constructor __proto__ prototype eval arguments await yield let static enum export this new typeof delete in of any " +
  "type interface declare namespace module require process globalThis undefined NaN Infinity var function return null void " +
  "with default super switch case break continue do else for if try catch finally throw while const extends instanceof " +
  "debugger implements package private protected public async get set readonly keyof never unknown number boolean symbol " +
  "object bigint unique infer is asserts satisfies abstract accessor override global intrinsic using then __esModule " +
  "hasOwnProperty toString valueOf __defineGetter__ window document"
).split(" ");
/** Globals the emitted code uses (values and types), and some it might. */
const GLOBALS = "Math URL Record Readonly Omit Promise Partial Array Object JSON Function Symbol Error String Number Boolean Map Set console floor ceil".split(" ");
/** The emitter's own names, and names it derives from a model's (Names must keep them apart). */
const HELPERS = (
  "tf nn w inputs outputs step dims source datasets create load predict trainStep fit evaluate save dispose plan spec params " +
  "Inputs Outputs Batch Model WeightName def name forward MLP MLPInputs MLPOutputs MLPBatch MLPModel MLPDef MLPPlan " +
  "MLPWeightName forwardMLP MLP_2 MLP_data d_data tf_2 eval_ class_ __proto___ _ __ _0 x1 A"
).split(" ");
/** A long name. */
const LONG = ["L".repeat(300), `x${"_".repeat(120)}y`];
const NAMES = [...new Set([...JS_WORDS, ...GLOBALS, ...HELPERS, ...LONG])];
/** Names of ops and steps: fine as bindings, but a layer named `dense` collides with the automatic names. */
const NOT_LAYER = new Set(["add", "relu", "reshape", "dense", "flatten"]);

const name = fc.constantFrom(...NAMES);
const distinct = (n: number) => fc.uniqueArray(name, { minLength: n, maxLength: n });

// ── payloads ──────────────────────────────────────────────────────────────────────────────────────

/** Attempts to break out of a string, a comment or a template, each followed by the marker. */
const BREAKOUTS = [
  `*/ ${M}() /*`,
  `*/ throw ${M} /*`,
  `"); ${M}(1); ("`,
  `'); ${M}(); ('`,
  "`; " + M + "(); `",
  "${" + M + "()}",
  `\u2028${M}()`,
  `\u2029${M}();`,
  `\r${M}()`,
  `\n${M}()`,
  `\r\n${M}() //`,
  `</script><script>${M}()</script>`,
  `<!-- ${M}() -->`,
  `\\"; ${M}(); "`,
  `\\u0022); ${M}(); (\\u0022`,
  `\\*/ ${M}() /*`,
  `*\\/ ${M}() /*`,
  `**/ ${M}() /**`,
  `*/ \\u0050WNED_1337() /* ${M}`,
  `@ts-ignore ${M}`,
  `@ts-expect-error ${M}`,
  `/// <reference path="${M}.ts" />`,
  `\u202e${M}()\u202c`,
  `\u2066${M}\u2069 \u200b\u200f\ufeff`,
  `＊／ ${M}() ／＊`,
  `∗/ ${M}() ⁄*`,
  `\uff02); ${M}(); (\uff02`,
  `\u0000${M}\u001b[31m\u007f`,
  `*\u0000/ ${M}() /*`,
  `*\u007f/ ${M}() /*`,
  `\u0085${M}\u000b\u000c`,
  `\ud800${M}\udc00`,
  `😀${M}🏳️‍🌈`,
  `} ${M}() {`,
  `]; ${M}(); [`,
  `) ${M}(`,
  `// ${M}`,
  `/* ${M} */`,
  `\\${M}\\`,
  `${M}`.repeat(3),
];

/** A payload: breakouts, random text (any code points) and long runs, always with the marker at least once. */
const payload: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom(...BREAKOUTS),
    fc.array(
      fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...BREAKOUTS) },
        { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
        { weight: 1, arbitrary: fc.constantFrom("A".repeat(3000) + M, `${M} `.repeat(400), "*/".repeat(300) + M) },
      ),
      { maxLength: 4 },
    ),
  )
  .map(([first, rest]) => [first, ...rest].join(" "));

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Text for a .nnet `//` comment or `///` doc line: no line breaks (which end it in .nnet too). */
const oneLine = (s: string) => s.replace(/[\r\n]/g, " ");
/** Text for a .nnet block comment: one line, no "*\/". */
const inBlock = (s: string) => oneLine(s).replace(/\*\//g, "* /");
/** Text for a freeze-glob character class: no "]" (ends it), "-" (ranges) or "*" (splits globs). */
const inClass = (s: string) => s.replace(/[\]\-*]/g, "");

/**
 * Numbers as written in .nnet: the smallest and largest doubles, denormals, values past 2^53, every literal form
 * (.5, 5., 2.5E+4), and arithmetic that folds to Infinity, -Infinity, NaN or -0. Positive ones for std, lr, epsilon.
 */
const POSITIVE = ["1", ".5", "5.", "1e-320", "4.9e-324", "1e308", "1.7976931348623157e308", "2.5E+4", "1e21", "9007199254740993.5", "0.1 + 0.2", "1 / 3", "1e-7", "1e308 * 10"];
const NUMBERS = [...POSITIVE, "0", "-0", "-(-(-1))", "-1e308 * 10", "0 * (1e308 * 10)", "-1e-320", "123456789012345678.0"];
const number = fc.constantFrom(...NUMBERS);
const nonNegative = fc.constantFrom(...POSITIVE, "0", "-0", "0 * (1e308 * 10)");
const positive = fc.constantFrom(...POSITIVE);

/** A .nnet string literal with the value s: JSON's escaping, some other characters escaped at random too. */
function nnetString(s: string, escapeMore: boolean): string {
  const j = JSON.stringify(s);
  return escapeMore ? j.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`) : j;
}

// ── the program template ──────────────────────────────────────────────────────────────────────────

interface Case {
  file: string;
  text: string;
  /** The values of its string literals. */
  strings: string[];
  /** The same program with every payload (comments, doc comments, strings, file name) replaced by plain text. */
  benign?: { file: string; text: string };
}

/** Every name, payload, number and choice of one generated program. */
const slotsArb = fc
  .record({
    // model-level values (inputs, bindings, outputs, the repeat index), layer names (inputs are layers too) and
    // dimension names (a dimension in reshape([d]) must not be a value)
    vals: distinct(15),
    target: name,
    model: name,
    block: name.filter((x) => !NOT_LAYER.has(x)),
    param: name.filter((x) => x !== "in" && x !== "out"),
    dataset: name,
    columns: fc.tuple(name, name, name),
    phases: distinct(2),
    docs: fc.array(payload, { minLength: 5, maxLength: 5 }),
    docLines: fc.integer({ min: 1, max: 3 }),
    comments: fc.array(payload, { minLength: 12, maxLength: 12 }),
    strings: fc.array(payload, { minLength: 4, maxLength: 4 }),
    escapeMore: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    alpha: nonNegative,
    numbers: fc.array(number, { minLength: 4, maxLength: 4 }),
    positives: fc.array(positive, { minLength: 3, maxLength: 3 }),
    seed: fc.constantFrom("0", "42", "9007199254740991"),
    validation: fc.constantFrom("0", ".5", "0.1 + 0.2", "1e-320"),
    // File names: no "/", "\\" or NUL, and (as any name read from a disk) no lone surrogates, on which emitCode throws
    // (sourceRef's encodeURIComponent).
    file: fc.oneof(
      fc.constantFrom("x.nnet", "models/net.nnet", "@ts-expect-error.nnet", "a b/c'd\"e.nnet"),
      payload.map((p) => `dir/${p.replace(/[/\\\0]/g, "_").replace(LONE_SURROGATE, "\ufffd")}.nnet`),
    ),
    crlf: fc.boolean(),
  })
  .filter(({ vals, target }) => !vals.slice(0, 2).includes(target) && !vals.slice(9, 13).some((l) => NOT_LAYER.has(l)));
type Slots = typeof slotsArb extends fc.Arbitrary<infer T> ? T : never;

/** The program text of `g`, and the values of its string literals. */
function render(g: Slots): { text: string; strings: string[] } {
  const [i1, i2, b1, b2, b3, b4, o1, o2, r, l1, l2, l3, l4] = g.vals as string[] as [string, string, string, string, string, string, string, string, string, string, string, string, string];
  const [d1, d2] = g.vals.slice(13) as [string, string];
  const [p1, p2] = g.phases as [string, string];
  const c = g.comments.map(oneLine);
  const n = g.numbers.map((x) => `(${x})`);
  const pos = g.positives.map((x) => `(${x})`);
  const doc = (k: number) => Array.from({ length: g.docLines }, (_, j) => `/// ${oneLine(g.docs[k]!)}${j ? ` (${j})` : ""}`).join("\n");
  // A glob that matches layer l1 and nothing it should not: its last character, in a class with the payload.
  const glob = `${l1.slice(0, -1)}[${l1.slice(-1)}${inClass(g.strings[3]!)}]`;
  const strings = [g.strings[0]!, g.strings[1]!, g.strings[2]!, glob];
  const s = strings.map((v, k) => nnetString(v, g.escapeMore[k]!));
  const text = [
    doc(0),
    `model ${g.model} {`,
    `  input ${i1}: f32[${d1}, ${d2}]   // ${c[0]}`,
    `  input ${i2}: f32[${d1}, 4] /* ${inBlock(g.comments[1]!)} */`,
    `  ${b1} = ${i2} -> dense(4) as ${l1}   // ${c[2]}`,
    `  ${b2} = (${b1} + ${i2}) -> leaky_relu(alpha: (${g.alpha})) as ${l2}   /* ${inBlock(g.comments[3]!)} */ // ${c[3]}`,
    `  repeat 2 as ${r} { ${b2} = ${b2} -> relu }   // ${c[4]}`,
    `  ${b3} = ${i1} -> reshape([${d2}, 1])   // ${c[5]}`,
    `  ${b4} = ${b2} -> ${g.block}(4)   // ${c[6]}`,
    `  output ${o1} = (${b4} -> dense(3) as ${l3}) * ${n[0]} + ${n[1]}   // ${c[7]}`,
    `  output ${o2} = ${b3}`,
    `}`,
    ``,
    doc(1),
    `block ${g.block}(${g.param}: int) {`,
    `  out = in -> dense(${g.param}) as ${l4}   // ${c[8]}`,
    `}`,
    ``,
    doc(2),
    `dataset ${g.dataset} {`,
    `  source csv(path: ${s[0]}, delimiter: ${s[1]})   // ${c[9]}`,
    `  test jsonl(path: ${s[2]})`,
    `  field ${i1}: f32[5] = ${g.columns[0]} -> scale(${n[2]}) -> normalize(mean: ${n[3]}, std: ${pos[0]})`,
    `  field ${i2}: f32[4] = ${g.columns[1]}`,
    `  field ${g.target}: f32[3] = ${g.columns[2]}`,
    `}`,
    ``,
    doc(3),
    `train ${g.model} on ${g.dataset} {`,
    `  loss mse(${o1}, ${g.target})   // ${c[10]}`,
    `  optimizer adam(lr: ${pos[1]}, epsilon: ${pos[2]}); seed ${g.seed}; validation ${g.validation}`,
    `  ${doc(4).split("\n").join("\n  ")}`,
    `  phase ${p1} { freeze ${s[3]}; epochs 1 }   // ${c[11]}`,
    `  phase ${p2} { freeze ${b1} }`,
    `}`,
    ``,
  ].join(g.crlf ? "\r\n" : "\n");
  return { text, strings };
}

const caseArb: fc.Arbitrary<Case> = slotsArb.map((g) => {
  const hostile = render(g);
  const plain = (p: string) => `plain text ${p.length}`;
  const benign = render({ ...g, docs: g.docs.map(plain), comments: g.comments.map(plain), strings: g.strings.map(plain) });
  return { file: g.file, text: hostile.text, strings: hostile.strings, benign: { file: "benign.nnet", text: benign.text } };
});

// ── checks on one emitted text ────────────────────────────────────────────────────────────────────

const CALLEES = [/^tf\.[A-Za-z0-9]+$/, /^nn\.[A-Za-z0-9]+$/, /^Math\.(floor|ceil)$/];
/** Names the emitted code may use without declaring them (besides what it imports: tf, nn). */
const GLOBAL_VALUES = new Set(["Math", "URL", "NaN", "Infinity"]);
const GLOBAL_TYPES = new Set(["Readonly", "Record", "Omit", "Promise", "URL"]);
/** Names no emitted declaration may take. */
const NEVER_DECLARED = new Set([
  ...GLOBAL_VALUES,
  ...GLOBAL_TYPES,
  "tf",
  "nn",
  "__proto__",
  "__esModule",
  "undefined",
  "NaN",
  "Infinity",
  "eval",
  "arguments",
  "require",
  "process",
  "globalThis",
  "Function",
  "Object",
  "Array",
  "JSON",
  "Symbol",
]);
const FORBIDDEN_KINDS = new Map<ts.SyntaxKind, string>([
  [ts.SyntaxKind.TemplateExpression, "a template literal"],
  [ts.SyntaxKind.NoSubstitutionTemplateLiteral, "a template literal"],
  [ts.SyntaxKind.TaggedTemplateExpression, "a tagged template"],
  [ts.SyntaxKind.RegularExpressionLiteral, "a regular expression"],
  [ts.SyntaxKind.DeleteExpression, "delete"],
  [ts.SyntaxKind.VoidExpression, "void"],
  [ts.SyntaxKind.TypeOfExpression, "typeof"],
  [ts.SyntaxKind.AwaitExpression, "await"],
  [ts.SyntaxKind.YieldExpression, "yield"],
  [ts.SyntaxKind.WithStatement, "with"],
  [ts.SyntaxKind.ClassDeclaration, "a class"],
  [ts.SyntaxKind.ClassExpression, "a class"],
  [ts.SyntaxKind.FunctionExpression, "a function expression"],
  [ts.SyntaxKind.ExportDeclaration, "export … from"],
  [ts.SyntaxKind.ImportEqualsDeclaration, "import = require"],
  [ts.SyntaxKind.ModuleDeclaration, "a namespace"],
  [ts.SyntaxKind.Decorator, "a decorator"],
]);

function dotted(e: ts.Expression): string | null {
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.name)) {
    const left = dotted(e.expression);
    return left === null ? null : `${left}.${e.name.text}`;
  }
  return null;
}

/** Is this identifier a name being declared, or a property name (not a reference)? */
function role(id: ts.Identifier): "declaration" | "property" | "value" | "type" {
  const p = id.parent;
  if (ts.isPropertyAccessExpression(p) && p.name === id) return "property";
  if (ts.isQualifiedName(p) && p.right === id) return "property";
  if ((ts.isPropertyAssignment(p) || ts.isPropertySignature(p) || ts.isMethodSignature(p) || ts.isPropertyDeclaration(p)) && p.name === id) return "property";
  if (ts.isMetaProperty(p)) return "property";
  if (
    (ts.isVariableDeclaration(p) ||
      ts.isParameter(p) ||
      ts.isFunctionDeclaration(p) ||
      ts.isInterfaceDeclaration(p) ||
      ts.isTypeAliasDeclaration(p) ||
      ts.isNamespaceImport(p) ||
      ts.isImportSpecifier(p) ||
      ts.isTypeParameterDeclaration(p)) &&
    p.name === id
  )
    return "declaration";
  if (ts.isTypeReferenceNode(p) || ts.isExpressionWithTypeArguments(p) || (ts.isQualifiedName(p) && p.left === id && ts.isTypeReferenceNode(p.parent))) return "type";
  return "value";
}

/** The last line of a comment, the one TypeScript reads a directive from. */
const lastLine = (text: string) => text.slice(Math.max(...["\n", "\r", "\u2028", "\u2029"].map((c) => text.lastIndexOf(c))) + 1);

/** Everything wrong with one emitted text; empty when it is safe. */
function problems(code: string, fileName: string, flavor: Flavor, strings: readonly string[]): string[] {
  const out: string[] = [];
  const kind = flavor === "js" ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const sf = ts.createSourceFile(fileName, code, ts.ScriptTarget.ES2022, true, kind);
  const parseDiags = (sf as unknown as { parseDiagnostics?: ts.Diagnostic[] }).parseDiagnostics;
  if (!Array.isArray(parseDiags)) throw new Error("typescript no longer exposes parseDiagnostics");
  for (const d of parseDiags) out.push(`syntax: ${ts.flattenDiagnosticMessageText(d.messageText, " ")} at ${d.start} ${JSON.stringify(code.slice((d.start ?? 0) - 40, (d.start ?? 0) + 40))}`);
  if (out.length) return out;

  // Tokens: the marker only in comments and string literals; no template literal at all.
  const scanner = ts.createScanner(ts.ScriptTarget.ES2022, false, ts.LanguageVariant.Standard, code);
  for (let t = scanner.scan(); t !== ts.SyntaxKind.EndOfFileToken; t = scanner.scan()) {
    const text = scanner.getTokenText();
    if (t === ts.SyntaxKind.NoSubstitutionTemplateLiteral || t === ts.SyntaxKind.TemplateHead) out.push(`a template literal: ${text.slice(0, 80)}`);
    const ok = t === ts.SyntaxKind.SingleLineCommentTrivia || t === ts.SyntaxKind.MultiLineCommentTrivia || t === ts.SyntaxKind.StringLiteral;
    if (!ok && (text.includes(M) || (t === ts.SyntaxKind.Identifier && scanner.getTokenValue().includes(M))))
      out.push(`the payload's ${JSON.stringify(text.slice(0, 60))} is a ${ts.SyntaxKind[t]} token at ${scanner.getTokenStart()}`);
    if (t === ts.SyntaxKind.SingleLineCommentTrivia && /^\/\/\/?\s*@ts-(expect-error|ignore)/.test(text)) out.push(`a comment directive: ${text.slice(0, 80)}`);
    if (t === ts.SyntaxKind.MultiLineCommentTrivia && /^(?:\/|\*)*\s*@ts-(expect-error|ignore)/.test(lastLine(text).trimStart()))
      out.push(`a comment directive: ${text.slice(-80)}`);
    if (t === ts.SyntaxKind.SingleLineCommentTrivia || t === ts.SyntaxKind.MultiLineCommentTrivia) {
      if (/[\u202a-\u202e\u2066-\u2069]/.test(text)) out.push(`a bidi control in a comment: ${JSON.stringify(text.slice(0, 80))}`);
      if (/<\/script/i.test(text)) out.push(`</script in a comment: ${JSON.stringify(text.slice(0, 80))}`);
    }
    if (t === ts.SyntaxKind.StringLiteral && (/[\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(text) || /<\/script|<!--/i.test(text)))
      out.push(`a raw line separator, bidi control or HTML in a string literal: ${JSON.stringify(text.slice(0, 80))}`);
  }

  // The tree: allowed calls, free names, declarations, keys, string values.
  const declared = new Set<string>();
  const refs: { id: ts.Identifier; as: "value" | "type" }[] = [];
  const literals = new Set<string>();
  let imports = 0;
  const visit = (node: ts.Node): void => {
    const forbidden = FORBIDDEN_KINDS.get(node.kind);
    if (forbidden) out.push(`${forbidden}: ${node.getText(sf).slice(0, 80)}`);
    if (ts.isCallExpression(node)) {
      const callee = node.expression.kind === ts.SyntaxKind.ImportKeyword ? "import()" : dotted(node.expression);
      if (callee === null || !CALLEES.some((re) => re.test(callee))) out.push(`a call to ${callee ?? node.expression.getText(sf).slice(0, 60)}`);
    }
    if (ts.isNewExpression(node) && dotted(node.expression) !== "URL") out.push(`new ${node.expression.getText(sf).slice(0, 60)}`);
    if (ts.isElementAccessExpression(node) && !ts.isStringLiteral(node.argumentExpression) && !ts.isNumericLiteral(node.argumentExpression))
      out.push(`a computed access: ${node.getText(sf).slice(0, 80)}`);
    if (ts.isComputedPropertyName(node) && !ts.isStringLiteral(node.expression)) out.push(`a computed key: ${node.getText(sf).slice(0, 80)}`);
    if ((ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node)) && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name)) && node.name.text === "__proto__")
      out.push(`__proto__ as a plain key sets the prototype: ${node.getText(sf).slice(0, 80)}`);
    if (ts.isImportDeclaration(node)) {
      imports++;
      const from = (node.moduleSpecifier as ts.StringLiteral).text;
      if (from !== "@tensorflow/tfjs-core" && from !== "nnetc/runtime") out.push(`an import from ${from}`);
    }
    if (ts.isStringLiteral(node)) literals.add(node.text);
    if (ts.isIdentifier(node)) {
      if (node.text.includes(M)) out.push(`an identifier from the payload: ${node.text}`);
      const r = role(node);
      if (r === "declaration") {
        declared.add(node.text);
        const isImport = ts.isNamespaceImport(node.parent);
        if (NEVER_DECLARED.has(node.text) && !(isImport && (node.text === "tf" || node.text === "nn"))) out.push(`a declaration shadows ${node.text}`);
      } else if (r === "value" || r === "type") refs.push({ id: node, as: r });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  if (imports !== 2) out.push(`${imports} import declarations`);
  for (const { id, as } of refs) {
    if (declared.has(id.text) || (as === "type" && id.text === "const" && ts.isConstTypeReference(id.parent))) continue;
    if ((as === "value" ? GLOBAL_VALUES : GLOBAL_TYPES).has(id.text)) continue;
    out.push(`a free ${as} name ${id.text}: ${id.parent.getText(sf).slice(0, 80)}`);
  }
  // Top-level statements: imports, declarations, and the one call that checks the runtime's version.
  for (const st of sf.statements) {
    if (ts.isExpressionStatement(st) && !(ts.isCallExpression(st.expression) && dotted(st.expression.expression) === "nn.requireVersion"))
      out.push(`a top-level statement: ${st.getText(sf).slice(0, 80)}`);
  }
  if (flavor !== "dts") for (const s of strings) if (!literals.has(s)) out.push(`the string ${JSON.stringify(s.slice(0, 60))}… is not a string literal of the output`);
  return out;
}

/** The code of a text without what payloads may change: its tokens, with comments left out and strings as "<string>". */
function codeTokens(code: string): string[] {
  const out: string[] = [];
  const scanner = ts.createScanner(ts.ScriptTarget.ES2022, true, ts.LanguageVariant.Standard, code);
  for (let t = scanner.scan(); t !== ts.SyntaxKind.EndOfFileToken; t = scanner.scan()) out.push(t === ts.SyntaxKind.StringLiteral ? "<string>" : scanner.getTokenText());
  return out;
}

/** Where two token lists first differ, or null. */
function firstDifference(a: string[], b: string[]): string | null {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i])
      return `token ${i}: ${JSON.stringify(a.slice(Math.max(0, i - 8), i + 4).join(" "))} where the benign program has ${JSON.stringify(b.slice(Math.max(0, i - 8), i + 4).join(" "))}`;
  }
  return null;
}

// ── type-checking a batch ─────────────────────────────────────────────────────────────────────────

const TS_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  noEmit: true,
  noUnusedLocals: true,
  noImplicitReturns: true,
  skipLibCheck: true,
  types: ["node"],
};

/** Type errors of in-memory files (paths under TMP), with everything else read from the disk. */
function typeErrors(files: Map<string, string>): ts.Diagnostic[] {
  const host = ts.createCompilerHost(TS_OPTIONS, true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => {
    const text = files.get(path.resolve(f));
    return text !== undefined ? ts.createSourceFile(f, text, lang, true) : getSourceFile(f, lang, ...rest);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (f) => files.has(path.resolve(f)) || fileExists(f);
  const readFile = host.readFile.bind(host);
  host.readFile = (f) => files.get(path.resolve(f)) ?? readFile(f);
  const program = ts.createProgram([...files.keys()], TS_OPTIONS, host);
  // Declarations (the dts flavour, checked as .ts files to be checked at all) may import what they do not use.
  const mine = (d: ts.Diagnostic) => !d.file || (files.has(path.resolve(d.file.fileName)) && !(d.code === 6133 && d.file.fileName.endsWith("_decl.ts")));
  return [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics(), ...program.getSyntacticDiagnostics(), ...program.getSemanticDiagnostics()].filter(mine);
}

function describe(d: ts.Diagnostic): string {
  const where = d.file && d.start !== undefined ? `${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : "";
  return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`;
}

// ── compiling and emitting one case ───────────────────────────────────────────────────────────────

function compileCase(c: Case, extra: Record<string, string> = {}): CompileResult {
  const res = compileText(c.text, c.file, extra);
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(`the generated program does not compile:\n${errors.map((d) => `${d.code} ${d.message}`).join("\n")}\n${c.text}`);
  return res;
}

interface Emitted {
  flavor: Flavor;
  formatted: boolean;
  code: string;
}

async function emitAll(res: CompileResult, file: string): Promise<Emitted[]> {
  const outFile = path.join(TMP, "case.ts");
  const out: Emitted[] = (["ts", "js", "dts"] as const).map((flavor) => ({ flavor, formatted: false, code: emitCode(res, { file, outFile, flavor }) }));
  out.push({ flavor: "ts", formatted: true, code: await formatTs(out[0]!.code) });
  return out;
}

function checkEmitted(c: Case, emitted: Emitted[]): void {
  for (const e of emitted) {
    const p = problems(e.code, e.flavor === "js" ? "case.js" : "case.ts", e.flavor, c.strings);
    if (p.length) throw new Error(`${e.flavor}${e.formatted ? " (formatted)" : ""}: ${p.slice(0, 6).join("\n  ")}`);
  }
  // Payloads change comments and string contents, nothing else: the same program with plain text in their place
  // emits the same tokens (before formatting, which breaks lines, and so adds commas, by length).
  if (c.benign) {
    const benign = compileCase({ file: c.benign.file, text: c.benign.text, strings: [] });
    for (const e of emitted.filter((x) => !x.formatted)) {
      const plain = emitCode(benign, { file: c.benign.file, outFile: path.join(TMP, "case.ts"), flavor: e.flavor });
      const d = firstDifference(codeTokens(e.code), codeTokens(plain));
      if (d) throw new Error(`${e.flavor}: the payloads changed the code, not only comments and strings: ${d}`);
    }
  }
}

/** JS-specific syntax errors (type annotations and the like) of the js flavour, which parseDiagnostics do not report. */
function jsSyntaxErrors(code: string): string[] {
  const f = path.join(TMP, "case.js");
  const host = ts.createCompilerHost({}, true);
  host.getSourceFile = (n, lang) => (path.resolve(n) === f ? ts.createSourceFile(n, code, lang, true, ts.ScriptKind.JS) : undefined);
  const program = ts.createProgram([f], { allowJs: true, noLib: true, noResolve: true, types: [], noEmit: true }, host);
  return program.getSyntacticDiagnostics().map((d) => ts.flattenDiagnosticMessageText(d.messageText, " "));
}

// ── the tests ─────────────────────────────────────────────────────────────────────────────────────

/** ts (formatted) and dts outputs of every case, type-checked together at the end. */
const batch = new Map<string, { code: string; text: string }>();

function addToBatch(label: string, emitted: Emitted[], text: string): void {
  batch.set(path.join(TMP, `${label}.ts`), { code: emitted.find((e) => e.flavor === "ts" && e.formatted)!.code, text });
  batch.set(path.join(TMP, `${label}_decl.ts`), { code: emitted.find((e) => e.flavor === "dts")!.code, text });
}

test("the template generates valid hostile programs", () => {
  const [c] = fc.sample(caseArb, { seed: SEED, numRuns: 1 });
  compileCase(c!);
});

test("property: hostile names, comments, doc comments, strings and file names never reach emitted code unescaped", async () => {
  let n = 0;
  const details = await fc.check(
    fc.asyncProperty(caseArb, async (c) => {
      const emitted = await emitAll(compileCase(c), c.file);
      checkEmitted(c, emitted);
      const js = jsSyntaxErrors(emitted.find((e) => e.flavor === "js")!.code);
      if (js.length) throw new Error(`js: ${js.slice(0, 4).join("\n  ")}`);
      addToBatch(`case_${n++}`, emitted, c.text);
    }),
    { seed: SEED, numRuns: RUNS, plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)] } as fc.Parameters<[Case]>,
  );
  if (details.interrupted && !details.failed) console.warn(`emit security: stopped after ${details.numRuns} runs (time limit)`);
  if (details.failed) {
    const c = details.counterexample?.[0];
    const why = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    assert.unreachable(`property failed with SECURITY_SEED=${SEED} after ${details.numRuns} runs and ${details.numShrinks} shrinks.\nfile: ${JSON.stringify(c?.file)}\nprogram:\n${c?.text}\n${why}`);
  }
});

/** A file name, as an import names it and as "// file:line" comments show it. */
const HOSTILE_FILE = `@ts-ignore *\\ ${M}() \u2028${M}()\n${M}() <!-- </script>.nnet`;

/** Hand-written regressions: [what, file, text, other files]. */
const REGRESSIONS: [string, string, string, Record<string, string>?][] = [
  [
    "doc comments that close the comment (also with a NUL in the middle of */), a // comment with U+2028 then code, a model named tf, a binding named __proto__",
    "x.nnet",
    [
      "/// */ alert(1) /*",
      "/// *\u0000/ alert(5) /*",
      "/// @ts-expect-error",
      "model tf {",
      "  input __proto__: f32[batch, 4]   // \u2028alert(2)\u2029alert(3)",
      '  constructor = __proto__ -> dense(4) as prototype   /* "); alert(4); (" */',
      "  __proto__ = constructor -> relu",
      "  output eval = __proto__ -> dense(2)",
      "  output __proto__ = __proto__",
      "}",
      "",
    ].join("\n"),
  ],
  [
    "globals the emitted code uses, as names: a model named URL, dimensions named Record, Readonly, Omit, floor and ceil",
    "x.nnet",
    [
      "/// @ts-ignore",
      "model URL {",
      "  input Math: f32[Record, Readonly]",
      "  input Omit: f32[Record, floor, ceil]",
      "  a = Math -> reshape([Readonly, 1])",
      "  b = Omit -> reshape([ceil, floor])",
      "  output Promise = a",
      "  output __proto__ = b",
      "}",
      "",
    ].join("\n"),
  ],
  [
    "blocks imported from files named @ts-expect-error.nnet and with line breaks and code (names start the // file:line comments)",
    "main.nnet",
    ['import { B } from "@ts-expect-error.nnet"', `import { C } from ${JSON.stringify(HOSTILE_FILE)}`, "model M {", "  input x: f32[batch, 4]", "  output y = x -> B -> C", "}", ""].join("\n"),
    { "@ts-expect-error.nnet": "block B() {\n  out = in -> dense(4)\n}\n", [HOSTILE_FILE]: "block C() {\n  out = in -> dense(4)\n}\n" },
  ],
];

for (const [what, file, text, extra] of REGRESSIONS) {
  test(`regression: ${what}`, async () => {
    const c: Case = { file, text, strings: [] };
    const emitted = await emitAll(compileCase(c, extra), file);
    checkEmitted(c, emitted);
    assert.equal(jsSyntaxErrors(emitted.find((e) => e.flavor === "js")!.code), []);
    addToBatch(`regression_${REGRESSIONS.findIndex((r) => r[0] === what)}`, emitted, text);
  });
}

test("a # comment is a syntax error (NN1001), so a file with one is never emitted", () => {
  const res = compileText(`model M {\n  input x: f32[batch, 2]   # */ ${M}() /* \u2028${M}()\n  output y = x\n}\n`);
  assert.ok(
    res.diagnostics.some((d) => d.code === "NN1001" && d.severity === "error"),
    "NN1001",
  );
});

test("every ts and dts output type-checks with strict", () => {
  assert.ok(batch.size > 0, "no cases");
  const files = new Map([...batch].map(([f, { code }]) => [f, code]));
  const errors = typeErrors(files);
  if (errors.length) {
    // Leave the failing files on the disk for inspection.
    mkdirSync(TMP, { recursive: true });
    const bad = [...new Set(errors.map((d) => d.file && path.resolve(d.file.fileName)).filter((f): f is string => !!f))];
    for (const f of bad) writeFileSync(f, files.get(f)!);
    const first = bad[0] ? `\nthe first failing case (${bad[0]}) comes from:\n${batch.get(bad[0])!.text}` : "";
    assert.unreachable(`${errors.length} type errors in ${bad.length} of ${files.size} files (written to ${path.relative(ROOT, TMP)}):\n${errors.slice(0, 12).map(describe).join("\n")}${first}`);
  }
  rmSync(TMP, { recursive: true, force: true });
});

test.run();
