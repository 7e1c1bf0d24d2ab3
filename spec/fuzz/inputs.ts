// The inputs of the fuzz targets (spec/fuzz/targets.ts): the grammar-following random programs, mutations
// and soups of spec/fuzz-inputs.ts, mutations of the zoo (models/*.nnet), and the input classes of issue 18
// built on purpose: Object.prototype names in any name position, nesting around the parser's limit (mixed
// `(`, `[`, unary `-`, calls, ternaries, operator chains, `repeat` bodies), chains and cycles of blocks, and
// `freeze` patterns in phases.
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import { lexer } from "../../grammar/tokens.js";
import { MAX_NESTING } from "../../grammar/parser.js";
import { carefulProgram, declarationSoup, mutant, mutate, mutation, randomProgram, seeds, soup } from "../fuzz-inputs.js";
import { ROOT } from "../helpers.js";

const PROTO_NAMES = Object.getOwnPropertyNames(Object.prototype);

/** The zoo, less its largest files (the language server's features over a 4 kB file take tens of ms). */
export const zoo: string[] = readdirSync(path.join(ROOT, "models"))
  .filter((f) => f.endsWith(".nnet"))
  .sort()
  .map((f) => readFileSync(path.join(ROOT, "models", f), "utf8"))
  .filter((t) => t.length <= 2600);

export const zooMutant: fc.Arbitrary<string> = fc
  .tuple(fc.nat({ max: zoo.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 }))
  .map(([i, ms]) => ms.reduce(mutate, zoo[i]!));

/**
 * The zoo and the samples with a few numbers changed (units, kernel sizes, rates, counts): mostly still valid
 * programs, of every architecture the zoo has, so that they reach the passes and the emitter.
 */
export const tweaked: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...zoo, ...seeds), fc.array(fc.tuple(fc.nat(), fc.constantFrom("1", "2", "3", "4", "8", "16", "0", "0.5", "1e-3")), { minLength: 1, maxLength: 3 }))
  .map(([text, changes]) => {
    for (const [at, to] of changes) {
      const nums = lexer.tokenize(text).tokens.filter((t) => t.tokenType.name === "Number");
      if (!nums.length) break;
      const t = nums[at % nums.length]!;
      text = text.slice(0, t.startOffset) + to + text.slice(t.endOffset! + 1);
    }
    return text;
  });

/** A valid program with comments of every kind put between random tokens (where the formatter must keep them). */
export const commented: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...zoo, ...seeds), fc.array(fc.tuple(fc.nat(), fc.constantFrom("// c\n", "/* c */", "/* a\n b */", "/// doc\n", "\n// own line\n", "/**/", "//\n", "/* x */\n\n\n"), fc.boolean()), { minLength: 1, maxLength: 6 }))
  .map(([text, inserts]) => {
    for (const [at, comment, after] of inserts) {
      const toks = lexer.tokenize(text).tokens;
      if (!toks.length) break;
      const t = toks[at % toks.length]!;
      const i = after ? t.endOffset! + 1 : t.startOffset;
      text = `${text.slice(0, i)} ${comment}${text.slice(i)}`;
    }
    return text;
  });

/** The identifiers of a text, by the language's lexer. */
function identifiers(text: string): { start: number; end: number; image: string }[] {
  return lexer
    .tokenize(text)
    .tokens.filter((t) => t.tokenType.name === "Identifier")
    .map((t) => ({ start: t.startOffset, end: t.endOffset! + 1, image: t.image }));
}

/** A program with one identifier, or every occurrence of it, renamed to a name of Object.prototype. */
export const hostile: fc.Arbitrary<string> = fc
  .tuple(fc.oneof(randomProgram, fc.constantFrom(...zoo)), fc.nat(), fc.constantFrom(...PROTO_NAMES), fc.boolean())
  .map(([text, at, name, all]) => {
    const ids = identifiers(text);
    if (!ids.length) return text;
    const id = ids[at % ids.length]!;
    if (!all) return text.slice(0, id.start) + name + text.slice(id.end);
    let out = "";
    let from = 0;
    for (const t of ids) {
      if (t.image !== id.image) continue;
      out += text.slice(from, t.start) + name;
      from = t.end;
    }
    return out + text.slice(from);
  });

const WRAPPERS: ((e: string) => string)[] = [(e) => `(${e})`, (e) => `[${e}]`, (e) => `-${e}`, (e) => `max(${e}, 1)`, (e) => `true ? ${e} : 1`, (e) => `1 + ${e}`, (e) => `not ${e}`, (e) => `${e} * 2`];

/** An expression nested `depth` levels, each level a wrapper picked by the stream. */
function nestedExpr(wrappers: readonly number[], depth: number): string {
  let e = "1";
  for (let k = 0; k < depth; k++) e = WRAPPERS[(wrappers[k % Math.max(1, wrappers.length)] ?? 0) % WRAPPERS.length]!(e);
  return e;
}

/** Nesting a few levels either side of the parser's limit, in an expression, in `repeat` bodies or in a dense argument. */
export const nested: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: MAX_NESTING - 4, max: MAX_NESTING + 4 }), fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), fc.nat({ max: 3 }))
  .map(([depth, wrappers, where]) => {
    const head = "model M {\n  input x: f32[batch, 4]\n  h = x -> dense(4)\n";
    switch (where) {
      case 0:
        return `${head}  z = ${nestedExpr(wrappers, depth - 2)}\n  output y = h\n}\n`;
      case 1:
        return `${head}  output y = h -> dense(${nestedExpr(wrappers, depth - 3)})\n}\n`;
      case 2:
        return `${head}${"repeat 1 {\n".repeat(depth - 2)}  h = h -> relu\n${"}\n".repeat(depth - 2)}  output y = h\n}\n`;
      default:
        return `${head}${"repeat 1 {\n".repeat(Math.floor(depth / 2))}  h = h -> dense(${nestedExpr(wrappers, depth - Math.floor(depth / 2) - 3)})\n${"}\n".repeat(Math.floor(depth / 2))}  output y = h\n}\n`;
    }
  });

/** Blocks that call each other in a chain (B0 → B1 → … → Bn), now and then closed into a cycle, and used in a trained model. */
export const blockChain: fc.Arbitrary<string> = fc.tuple(fc.integer({ min: 1, max: 80 }), fc.boolean(), fc.constantFrom('freeze "**"', 'freeze "*"', "freeze h", "freeze z", 'freeze "B*"', "")).map(([n, cycle, freeze]) => {
  const blocks = Array.from({ length: n }, (_, k) => `block B${k}(c: int = 4) {\n  out = in -> dense(c)${k + 1 < n ? ` -> B${k + 1}(c)` : cycle ? " -> B0(c)" : ""}\n}`);
  return `${blocks.join("\n")}\nmodel M {\n  input x: f32[batch, 4]\n  h = x -> B0(4)\n  z = h -> dense(2)\n  output y = z\n}\ndataset D {\n  source csv(path: "d.csv")\n  field x: f32[4] = features\n  field label: i32 = label\n}\ntrain M on D {\n  loss cross_entropy(y, label)\n  phase p { ${freeze}${freeze ? "; " : ""}epochs 1 }\n}\n`;
});

/** A program that imports blocks: from the library, from one with errors, from one that imports it back, from nowhere. */
export const importing: fc.Arbitrary<string> = fc
  .tuple(
    fc.subarray(["Blk", "Lib", "Missing", "constructor", "__proto__"], { minLength: 1 }),
    fc.constantFrom("lib.nnet", "./lib.nnet", "../lib.nnet", "bad.nnet", "loop.nnet", "none.nnet", "fuzz.nnet", "", "/dev/null"),
    fc.oneof(carefulProgram, randomProgram, fc.constant("model M {\n  input x: f32[batch, 4]\n  h = x -> Lib(4) -> Blk\n  output y = h\n}\n")),
  )
  .map(([names, from, text]) => `import { ${names.join(", ")} } from "${from}"\n${text}`);

/** Everything, weighted towards programs that get past the parser. */
export const fuzzInput: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: randomProgram },
  { weight: 3, arbitrary: carefulProgram },
  { weight: 3, arbitrary: mutant },
  { weight: 3, arbitrary: zooMutant },
  { weight: 3, arbitrary: tweaked },
  { weight: 2, arbitrary: hostile },
  { weight: 1, arbitrary: nested },
  { weight: 1, arbitrary: blockChain },
  { weight: 2, arbitrary: importing },
  { weight: 2, arbitrary: commented },
  { weight: 1, arbitrary: declarationSoup },
  { weight: 1, arbitrary: soup },
);
