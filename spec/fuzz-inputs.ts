// The inputs of spec/unit/property.test.ts, as fast-check arbitraries: (b) token soups built from the
// language's vocabulary, (c) mutations of the valid programs in spec/samples/, (d) random programs that
// follow the grammar. Kept apart from the test so that they can be sampled by hand:
//   node -e 'import("./dist/spec/fuzz-inputs.js").then(m => console.log(require("fast-check").sample(m.randomProgram, 3).join("\n----\n")))'
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import { lexer, TOKENS, TYPE_NAMES } from "../grammar/tokens.js";
import { OP_NAMES, OPS } from "../compiler/ir/ops.js";
import { LOSSES, METRICS, OPTIMIZERS, PREPROCESS, SCHEDULES, SETTINGS, SOURCES } from "../compiler/plan/tables.js";
import { ROOT } from "./helpers.js";

// ── vocabulary ────────────────────────────────────────────────────────────────────────────────────

const SAMPLES = path.join(ROOT, "spec/samples");
export const seeds: string[] = readdirSync(SAMPLES)
  .filter((f) => f.endsWith(".nnet"))
  .sort()
  .map((f) => readFileSync(path.join(SAMPLES, f), "utf8"));

/** Names the compiler gives meaning to, so that soups reach name resolution, signatures and plans. */
const WORDS = [
  ...OP_NAMES,
  ...Object.keys(SETTINGS),
  ...Object.keys(LOSSES),
  ...Object.keys(METRICS),
  ...Object.keys(OPTIMIZERS),
  ...Object.keys(SCHEDULES),
  ...Object.keys(SOURCES),
  ...Object.keys(PREPROCESS),
  ...["x", "y", "h", "in", "out", "batch", "seq", "image", "images", "label", "labels", "logits", "features", "_", "M", "Block", "same", "valid", "causal", "macro", "val_loss", "val_accuracy", "loss", "units", "filters", "kernel", "stride", "padding", "heads", "axis", "shape", "vocab", "dim", "max_len", "rate", "lr", "epochs", "monitor", "patience", "restore_best", "norm", "layer", "wte", "i"],
];

const literal = TOKENS.filter((t) => t.spelling !== undefined).map((t) => t.spelling!);
const numbers = ["0", "1", "2", "3", "8", "16", "64", "784", "0.5", "1.", ".5", "1e-3", "5e-4", "1e999", "1e-999", "99999999999999999999", "00", "007", "4294967297"];
const strings = ['"conv*"', '"**"', '"a.csv"', '"fuzz.nnet"', '""', '"\\u00e9"', '"\\x"', '"\\', '"open', '"[a-z]*"'];
const comments = ["// c", "/// doc", "/* c */", "/*", "/* /* */", "//"];
const oddChars = ["$", "#", "\\", "`", "'", "!", "%", "&", "|", "~", "^", ".", "é", "\u{1F600}", "\u0000", "\uFEFF", "\u2028", "\r", "\uD800"];

export const token: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...literal) },
  { weight: 4, arbitrary: fc.constantFrom(...WORDS) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,6}$/) },
  { weight: 1, arbitrary: fc.constantFrom(...TYPE_NAMES) },
  { weight: 2, arbitrary: fc.constantFrom(...numbers) },
  // Small counts: repeat 700 over a transformer block is a legitimately large model (seconds under load).
  { weight: 1, arbitrary: fc.nat({ max: 64 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom(...strings) },
  { weight: 1, arbitrary: fc.constantFrom(...comments) },
  { weight: 1, arbitrary: fc.constantFrom(...oddChars) },
);
const separator = fc.constantFrom(" ", " ", " ", "\n", "", "\t", "\r\n");

/** (b) A soup of tokens, each followed by a separator. */
export const soup: fc.Arbitrary<string> = fc.array(fc.tuple(token, separator), { maxLength: 80 }).map((ts) => ts.map(([t, s]) => t + s).join(""));

/** A soup that starts like a declaration, so that it gets past the top level more often. */
export const declarationSoup: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom("model M {", "block B(n: int = 2) {", "dataset D {", "train M on D {", "model M { input x: f32[batch, 8]\n"), soup, fc.constantFrom("}", "", "}}"))
  .map(([a, b, c]) => `${a}\n${b}\n${c}`);

// (c) Mutations of valid programs.
export type Mutation =
  | { op: "deleteChar" | "duplicateChar" | "swapChars" | "truncate"; at: number }
  | { op: "insertChar"; at: number; ch: string }
  | { op: "deleteToken" | "duplicateToken" | "swapTokens"; at: number }
  | { op: "insertToken"; at: number; token: string }
  | { op: "splice"; at: number; from: number; start: number; length: number };

const position = fc.nat({ max: 1_000_000 });
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constantFrom("deleteChar" as const, "duplicateChar" as const, "swapChars" as const, "truncate" as const), at: position }),
  fc.record({ op: fc.constant("insertChar" as const), at: position, ch: fc.oneof(fc.constantFrom(...oddChars, "{", "}", "(", ")", "[", "]", ",", ":", ";", "=", "-", ">", '"', "/", "*", "\n", "0", "a"), fc.string({ unit: "binary", minLength: 1, maxLength: 1 })) }),
  fc.record({ op: fc.constantFrom("deleteToken" as const, "duplicateToken" as const, "swapTokens" as const), at: position }),
  fc.record({ op: fc.constant("insertToken" as const), at: position, token }),
  fc.record({ op: fc.constant("splice" as const), at: position, from: fc.nat({ max: seeds.length - 1 }), start: position, length: fc.nat({ max: 120 }) }),
);

/** Token boundaries by the language's own lexer (comments included); unlexable characters are skipped. */
function tokenSpans(text: string): [number, number][] {
  const r = lexer.tokenize(text);
  const all = [...r.tokens, ...Object.values(r.groups).flat()];
  return all.map((t) => [t.startOffset, t.endOffset! + 1] as [number, number]).sort((a, b) => a[0] - b[0]);
}

export function mutate(text: string, m: Mutation): string {
  const n = text.length;
  const at = n ? m.at % n : 0;
  switch (m.op) {
    case "deleteChar":
      return text.slice(0, at) + text.slice(at + 1);
    case "duplicateChar":
      return text.slice(0, at + 1) + text.slice(at);
    case "swapChars":
      return n < 2 ? text : text.slice(0, at) + (text[at + 1] ?? "") + text[at] + text.slice(at + 2);
    case "truncate":
      return text.slice(0, at);
    case "insertChar":
      return text.slice(0, at) + m.ch + text.slice(at);
    case "splice": {
      const src = seeds[m.from]!;
      const start = src.length ? m.start % src.length : 0;
      return text.slice(0, at) + src.slice(start, start + m.length) + text.slice(at);
    }
  }
  const spans = tokenSpans(text);
  if (m.op === "insertToken") {
    const [s] = spans.length ? spans[m.at % spans.length]! : [0];
    return `${text.slice(0, s)}${m.token} ${text.slice(s)}`;
  }
  if (!spans.length) return text;
  const i = m.at % spans.length;
  const [s, e] = spans[i]!;
  switch (m.op) {
    case "deleteToken":
      return text.slice(0, s) + text.slice(e);
    case "duplicateToken":
      return text.slice(0, e) + " " + text.slice(s, e) + text.slice(e);
    case "swapTokens": {
      const next = spans[i + 1];
      if (!next) return text;
      const [s2, e2] = next;
      return text.slice(0, s) + text.slice(s2, e2) + text.slice(e, s2) + text.slice(s, e) + text.slice(e2);
    }
  }
}

export const mutant: fc.Arbitrary<string> = fc
  .tuple(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }))
  .map(([i, ms]) => ms.reduce(mutate, seeds[i]!));

// (d) Random programs that follow the grammar: inputs of random types, bindings through random layers
// with arguments of the right kind (mostly) and of the wrong kind (sometimes), layer instances, blocks,
// repeat, arithmetic, datasets and training plans. They get past the parser, so they exercise name
// resolution, argument binding, shape inference and plan checking. The program is built from a stream
// of random numbers, which fast-check shrinks like any list.

type Spec = { name: string; type: string; values?: readonly string[]; default?: unknown };

/** `badScale` scales how often a wrong value is picked (0: never, for programs that more often check clean). */
export function program(stream: readonly number[], badScale = 1): string {
  let at = 0;
  // When the stream runs out every choice is the first one: what shrinking converges to.
  const next = () => stream[at++] ?? 0;
  const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length]!;
  const chance = (percent: number) => next() % 100 >= 100 - percent;
  const count = (max: number) => next() % (max + 1);
  /** Mostly a good value, now and then a bad one. */
  const mostly = <T>(good: readonly T[], bad: readonly T[], badPercent = 8): T => (chance(badPercent * badScale) ? pick(bad) : pick(good));

  const int = () => mostly(["2", "4", "8", "1", "3", "16", "64", "max(2, 8 % 3)", "floor(9 / 2)", "(not false and 2 < 3 ? 4 : 2)"], ["0", "-1", "2.5", "99999", "1e3", "5 % 0", "min(x)", "1 and 2"]);
  const float = () => mostly(["0.1", "0.5", "1e-3", "0.9", "1", "0"], ["-0.5", "2", "1e999", "x"]);
  const dim = () => mostly(["8", "4", "16", "28", "2", "1", "seq", "seq <= 16", "h", "w"], ["0", "2.5", "seq <= 0", "seq <= 8"]);
  const dtype = () => mostly(["f32"], ["i32", "f16", "i64", "bool", "int", "f64"], 25);
  const words = ["same", "valid", "causal", "relu", "gelu", "linear", "f32", "i32", "macro", "bogus", "x", "batch", "seq"];
  const tensors: string[] = [];
  const layers: string[] = [];
  const inputs: { name: string; dtype: string; dims: string[] }[] = [];
  let fresh = 0;

  const list = (n: number) => `[${Array.from({ length: n }, int).join(", ")}]`;
  const anyValue = (): string =>
    pick([
      int,
      float,
      () => pick(["true", "false"]),
      () => pick(words),
      () => pick(['"conv*"', '"a.csv"', '""']),
      () => list(count(3)),
      () => (tensors.length ? pick(tensors) : "x"),
      () => (layers.length ? pick(layers) : "wte"),
    ])();
  const valueFor = (spec: Spec): string => {
    if (chance(6 * badScale)) return anyValue();
    switch (spec.type) {
      case "int":
        return int();
      case "float":
        return float();
      case "bool":
        return pick(["true", "false"]);
      case "enum":
        return mostly(spec.values ?? ["x"], ["bogus", '"same"', "1"]);
      case "int2":
        return chance(70) ? int() : list(mostly([2], [1, 3]));
      case "ints":
        return mostly(["[0, 2, 1]", "[0, 1]", "[0, 1, 2]", "[0, 3, 1, 2]", "[0, 2, 1, 3]"], ["[]", "[1, 0]", "[0, 0]"]);
      case "shape":
        return mostly(["[-1]", "[4, -1]", "[seq, -1]", "[2, 2, 2]", "[8]", "[2, 4]", "[h, w, -1]"], ["[-1, -1]", "[0]", "[bogus]", "[]"]);
      case "layer":
        return layers.length ? pick(layers) : "wte";
      case "dtype":
        return mostly(["f32", "i32", "f16"], ["int", "bogus"]);
      case "string":
        return mostly(['"data.csv"', '"train"'], ["1", "x"]);
      default:
        return mostly(["label", "y0", "val_loss", "loss", "accuracy", "x"], ["1", '"y0"']);
    }
  };
  /** Arguments for a signature: required ones positionally (mostly), then a few named optional ones. */
  const callArgs = (params: readonly Spec[]): string => {
    const required = params.filter((p) => !("default" in p));
    const out: string[] = [];
    const positional = chance(90) ? required.length : count(params.length);
    for (let k = 0; k < positional && k < params.length; k++) out.push(valueFor(params[k]!));
    for (let k = count(2); k > 0 && params.length; k--) {
      const spec = chance(95) ? pick(params) : { name: pick(["bogus", "units", "axis"]), type: "int" };
      out.push(`${spec.name}: ${valueFor(spec)}`);
    }
    return out.join(", ");
  };
  const call = (name: string, params: readonly Spec[]): string => (params.length || chance(20) ? `${name}(${callArgs(params)})` : name);
  const tensor = () => (tensors.length ? pick(tensors) : "x");
  const stage = (): string => {
    if (layers.length && chance(15)) return pick(layers);
    if (chance(5)) return mostly(["Blk", "Blk(2)"], ["Nope", "M"]);
    const op = pick(OP_NAMES);
    const alias = chance(8) ? ` as ${pick(["a", "b", "conv", "head", "dense"])}${count(2)}` : "";
    return call(op, OPS[op as keyof typeof OPS].params) + alias;
  };
  const source = (): string =>
    chance(70)
      ? tensor()
      : pick([
          () => `[${tensor()}, ${tensor()}]`,
          () => `concat(${tensor()}, ${tensor()}${chance(50) ? `, axis: ${mostly(["-1", "1", "2"], ["0", "5", "-9"])}` : ""})`,
          () => `${tensor()} ${pick(["+", "-", "*", "/", "@"])} ${chance(40) ? float() : tensor()}`,
          () => `(${tensor()} ${pick(["+", "*"])} ${int()})`,
          () => `${pick(["relu", "dense", "Blk", "softmax", "attention"])}(${tensor()}${chance(50) ? `, ${int()}` : ""})`,
          () => `-${tensor()}`,
        ])();
  const expr = (): string => [source(), ...Array.from({ length: 1 + count(2) }, stage)].join(" -> ");

  const decls: string[] = [];
  if (chance(30)) {
    const typed = chance(40) ? "  input t: f32[batch, _, 8]\n" : "";
    decls.push(`block Blk(n: ${mostly(["int"], ["float", "f32", "string"])} = ${int()}) {\n${typed}  out = ${typed ? "t" : "in"} -> ${pick(["dense(n)", "conv2d(n, 3)", "relu", "layernorm", "dense(n) -> relu", "Blk"])}\n}`);
  }
  const body: string[] = [];
  for (let k = 0, n = 1 + (chance(25) ? 1 : 0); k < n; k++) {
    const name = k === 0 ? "x" : `x${k}`;
    const dims = Array.from({ length: mostly([1, 1, 2, 3], [0]) }, dim);
    const dt = dtype();
    body.push(`input ${name}: ${dt}[${["batch", ...dims].join(", ")}]`);
    tensors.push(name);
    inputs.push({ name, dtype: dt, dims });
  }
  if (chance(25)) {
    body.push(`layer wte = embedding(vocab: ${mostly(["10", "100"], ["0"])}, dim: ${pick(["4", "8", "16"])})`);
    layers.push("wte");
  }
  for (let k = 1 + count(5); k > 0; k--) {
    const kind = next() % 10;
    if (kind < 6) {
      const name = chance(25) && tensors.length ? pick(tensors) : `h${fresh++}`;
      body.push(`${name} = ${expr()}`);
      if (!tensors.includes(name)) tensors.push(name);
    } else if (kind < 8) {
      const name = `L${fresh++}`;
      const op = pick(OP_NAMES);
      body.push(`layer ${name} = ${call(op, OPS[op as keyof typeof OPS].params)}`);
      layers.push(name);
    } else {
      const t = tensor();
      body.push(`repeat ${mostly(["1", "2", "3"], ["0", "-1", "1.5", "n", "x"])}${chance(50) ? " as i" : ""} { ${t} = ${t} -> ${chance(30) ? `dense(i == 0 ? 4 : 8)` : stage()} }`);
    }
  }
  const outputs = chance(20) ? 2 : 1;
  for (let k = 0; k < outputs; k++) body.push(chance(95) ? `output y${k} = ${chance(70) ? tensors[tensors.length - 1 - k] ?? "x" : expr()}` : `output ${tensor()}`);
  decls.push(`model M {\n  ${body.join("\n  ")}\n}`);

  if (chance(50)) {
    const src = mostly(["csv", "jsonl"], Object.keys(SOURCES));
    const fields = inputs.map((i) => {
      const dims = chance(80) ? i.dims : Array.from({ length: count(2) }, dim);
      const step = chance(30) ? ` -> ${pick(Object.keys(PREPROCESS))}` : "";
      const stepArgs = step ? call("", PREPROCESS[step.slice(4)]!.params) : "";
      return `  field ${i.name}: ${chance(85) ? i.dtype : dtype()}[${dims.join(", ")}] = ${mostly(["pixels", "features"], ["images", "text"])}${step}${stepArgs}`;
    });
    const label = mostly(["i32", "f32[1]", "f32[8]", "i32[1]"], ["f32[10]", "bool"]);
    decls.push(`dataset D {\n  source ${call(src, SOURCES[src]!.params)}\n${fields.join("\n")}\n  field label: ${label} = label${chance(20) ? `\n  split ${callArgs(SETTINGS.split!.sig!.params)}` : ""}\n}`);
    const settings: string[] = [];
    const loss = pick(Object.keys(LOSSES));
    const extra = LOSSES[loss]!.params.slice(2);
    const lossArgs = chance(30) && extra.length ? `, ${extra.map((p) => `${p.name}: ${valueFor(p)}`).slice(0, 1).join("")}` : "";
    settings.push(`loss ${chance(15) ? `${float()} * ` : ""}${loss}(y0, label${lossArgs})${outputs === 2 && chance(60) ? ` + mse(y1, label)` : ""}`);
    for (let k = count(5); k > 0; k--) {
      const key = mostly(["optimizer", "epochs", "batch", "metrics", "schedule", "validation", "early_stop", "checkpoint", "clip", "seed", "weight_decay", "lr"], Object.keys(SETTINGS));
      const def = SETTINGS[key]!;
      const table = ({ call: key === "optimizer" ? OPTIMIZERS : SOURCES, chain: SCHEDULES, calls: METRICS } as Record<string, Record<string, { params: readonly Spec[] }>>)[def.kind];
      if (table) {
        const one = () => {
          const n = pick(Object.keys(table));
          return call(n, table[n]!.params);
        };
        settings.push(`${key} ${one()}${chance(30) ? (def.kind === "chain" ? " -> " : ", ") + one() : ""}`);
      } else if (def.sig) settings.push(`${key} ${callArgs(def.sig.params)}`);
      else settings.push(`${key} ${def.kind === "int" ? int() : def.kind === "float" ? float() : pick(['"h*"', "h0", "D", "L1", "1"])}`);
    }
    for (let k = count(2); k > 0; k--) {
      const freeze = pick(['freeze "*"', 'freeze "h*", "L*"', "freeze h0", 'freeze "**"', 'freeze "dense*"', 'freeze "[a-d]*"', "freeze x"]);
      settings.push(`phase p${k} { ${chance(60) ? `${freeze}; ` : ""}${pick(["epochs 1", "batch 8", "lr 1e-4", "optimizer sgd", "data D", "data E", "early_stop monitor: loss"])} }`);
    }
    decls.push(`train M on ${mostly(["D"], ["E", "M"])} {\n  ${settings.join("\n  ")}\n}`);
  }
  return decls.join("\n\n") + "\n";
}

export const randomProgram: fc.Arbitrary<string> = fc.array(fc.nat({ max: 1 << 16 }), { minLength: 100, maxLength: 400 }).map((s) => program(s));

/** Random programs with no value picked wrong on purpose: more of them check clean and reach the passes. */
export const carefulProgram: fc.Arbitrary<string> = fc.array(fc.nat({ max: 1 << 16 }), { minLength: 100, maxLength: 400 }).map((s) => program(s, 0));

