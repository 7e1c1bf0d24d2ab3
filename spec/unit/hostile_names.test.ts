// Object.prototype's names where a file names a layer, loss, metric, optimizer, schedule, source, step, setting,
// model, dataset, field, binding, …: each is an ordinary name, found in no table unless declared (the tables
// are own-property only: compiler/own.ts), so `check` gives the usual "unknown X" diagnostics, never NN9001,
// and `fmt` and the language server's analysis never throw.
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TextDocument } from "vscode-languageserver-textdocument";
import { format } from "../../compiler/format/index.js";
import { completion, documentSymbols, hover, lspDiagnostics, Workspace } from "../../compiler/lsp/server.js";
import { codes, compileText, ROOT } from "../helpers.js";

const PROTO_NAMES = Object.getOwnPropertyNames(Object.prototype);

const BASE = `model MLP {
  input image: f32[batch, 784]
  hidden = image -> dense(256, activation: relu)
  output logits = hidden -> dense(10)
}

block Res(c: int) {
  y = in -> dense(c) -> relu
  out = y + in
}

model Net {
  input image: f32[batch, 784]
  h = image -> dense(16) -> Res(16) -> dense(10)
  output logits = h
}

dataset fashion_mnist {
  source idx(images: "train-images-idx3-ubyte.gz", labels: "train-labels-idx1-ubyte.gz")
  test   idx(images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz")
  field image: f32[784] = images -> scale(1 / 255) -> reshape([784])
  field label: i32 = labels
  split test: 0.2
}

train MLP on fashion_mnist {
  loss       cross_entropy(logits, label)
  optimizer  adam(lr: 1e-3)
  schedule   cosine(min_lr: 1e-5)
  batch      128
  epochs     30
  metrics    accuracy, f1(average: macro)
  validation 0.1
  early_stop monitor: val_accuracy, patience: 5
  seed       42
  phase head {
    freeze hidden
    epochs 1
  }
}
`;

/** Each name position: [what, the text it replaces in BASE (its first occurrence after `after`), after]. */
const POSITIONS: [string, string, string][] = [
  ["model name", "MLP", ""],
  ["input name", "image", ""],
  ["dim name", "batch", ""],
  ["binding", "hidden", ""],
  ["layer", "dense", ""],
  ["layer argument name", "activation", ""],
  ["activation", "relu", ""],
  ["output name", "logits", ""],
  ["block name", "Res", ""],
  ["block parameter", "(c", ""],
  ["block binding", "y", "(c: int) {\n  "],
  ["block call", "Res", "-> "],
  ["layer in a block", "relu", "-> dense(c) -> "],
  ["dataset name", "fashion_mnist", ""],
  ["source", "idx", ""],
  ["source argument", "images", "source idx("],
  ["field name", "image", "field "],
  ["dtype", "f32", "field image: "],
  ["column", "images", "784] = "],
  ["preprocessing step", "scale", ""],
  ["dataset setting", "split", ""],
  ["train model", "MLP", "train "],
  ["train dataset", "fashion_mnist", "on "],
  ["loss", "cross_entropy", ""],
  ["loss prediction", "logits", "cross_entropy("],
  ["loss target", "label", "logits, "],
  ["optimizer", "adam", ""],
  ["optimizer argument", "lr", "adam("],
  ["schedule", "cosine", ""],
  ["metric", "accuracy", "metrics    "],
  ["metric argument", "average", ""],
  ["metric argument value", "macro", ""],
  ["early_stop key", "monitor", ""],
  ["early_stop monitor", "val_accuracy", ""],
  ["train setting", "seed", ""],
  ["phase name", "head", "phase "],
  ["freeze binding", "hidden", "freeze "],
];

function variant(replace: string, after: string, name: string): string {
  const from = BASE.indexOf(after) + after.length;
  const at = BASE.indexOf(replace, from);
  assert.ok(at >= 0 && BASE.indexOf(after) >= 0, `"${replace}" after "${after}" is in BASE`);
  const word = replace === "(c" ? `(${name}` : name;
  let text = BASE.slice(0, at) + word + BASE.slice(at + replace.length);
  if (replace === "(c") text = text.replace("dense(c)", `dense(${name})`);
  return text;
}

test("BASE itself is clean (the variants differ from it in one name only)", () => {
  assert.equal(codes(compileText(BASE)), []);
});

test("every name position × every Object.prototype name: no NN9001 in check, fmt and the language server never throw", () => {
  assert.ok(PROTO_NAMES.includes("__proto__") && PROTO_NAMES.includes("constructor") && PROTO_NAMES.length >= 11);
  const uri = pathToFileURL(path.join(ROOT, "models", "hostile.nnet")).href;
  const failures: string[] = [];
  for (const [what, replace, after] of POSITIONS) {
    for (const name of PROTO_NAMES) {
      const text = variant(replace, after, name);
      const r = compileText(text);
      const internal = r.diagnostics.filter((d) => d.code === "NN9001");
      if (internal.length) failures.push(`${what} = ${name}: ${internal[0]!.message}`);
      try {
        const f = format("hostile.nnet", text);
        if (!f.ok && f.diagnostics.some((d) => d.code === "NN9001")) failures.push(`${what} = ${name}: fmt gave NN9001`);
      } catch (e) {
        failures.push(`${what} = ${name}: fmt threw ${String(e)}`);
      }
      try {
        const ws = new Workspace();
        ws.set(TextDocument.create(uri, "nnet", 1, text));
        const a = ws.analyze(uri)!;
        lspDiagnostics(a);
        documentSymbols(a);
        for (let at = text.indexOf(name); at >= 0; at = text.indexOf(name, at + 1)) {
          hover(a, at + 1);
          completion(a, at + 1);
        }
      } catch (e) {
        failures.push(`${what} = ${name}: the language server threw ${String(e)}`);
      }
    }
  }
  assert.equal(failures, []);
});

test("an Object.prototype name where a table entry goes is the ordinary unknown-name diagnostic", () => {
  const cases: [string, string, string, string][] = [
    ["adam", "", "constructor", "NN4001"],
    ["cross_entropy", "", "__proto__", "NN4001"],
    ["accuracy", "metrics    ", "toString", "NN4001"],
    ["idx", "", "hasOwnProperty", "NN4001"],
    ["cosine", "", "valueOf", "NN4001"],
    ["scale", "", "constructor", "NN4001"],
    ["seed", "", "constructor", "NN2012"],
    ["dense", "", "isPrototypeOf", "NN2001"],
    ["MLP", "train ", "toLocaleString", "NN2010"],
  ];
  for (const [replace, after, name, code] of cases) {
    const r = compileText(variant(replace, after, name));
    assert.ok(codes(r).includes(code), `${replace} → ${name}: ${codes(r).join(", ")} includes ${code}`);
    assert.ok(r.diagnostics.some((d) => d.message.includes(`"${name}"`)), `${replace} → ${name}: the message names it`);
  }
});

test.run();
