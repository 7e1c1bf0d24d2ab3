// The language server, driven headlessly by an in-process client over the real protocol (spec/lsp-client.ts),
// plus one round trip with `node dist/nnetc.mjs lsp` over real stdio.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type * as L from "vscode-languageserver";
import { format } from "../../compiler/format/index.js";
import { compile } from "../../compiler/index.js";
import { diagnosticToJson } from "../../compiler/render.js";
import { connect, type Client } from "../lsp-client.js";
import { memoryHost, ROOT } from "../helpers.js";

const dir = mkdtempSync(path.join(tmpdir(), "nnetc-lsp-"));
const BLOCKS = `/// A dense head.
block Head(classes: int, act: string = "linear") {
  out = in -> dense(classes)
}
`;
writeFileSync(path.join(dir, "blocks.nnet"), BLOCKS);
const MAIN = `import { Head } from "blocks.nnet"

model Net {
  input image: f32[batch, 28, 28, 1]
  x = image -> conv2d(8, 3) -> relu
  output logits = x -> flatten -> Head(10)
}

dataset data {
  source idx(images: "a.gz", labels: "b.gz")
  field image: f32[28, 28, 1] = images -> scale(1 / 255) -> reshape([28, 28, 1])
  field label: i32 = labels
}

train Net on data {
  loss cross_entropy(logits, label)
  optimizer adam(lr: 1e-3)
  batch 32
  epochs 1
}
`;
const mainFile = path.join(dir, "main.nnet");
const mainUri = pathToFileURL(mainFile).href;
const blocksUri = pathToFileURL(path.join(dir, "blocks.nnet")).href;

let client: Client;
const msg = (d: L.Diagnostic) => (typeof d.message === "string" ? d.message : d.message.value);
let version = 1;

function pos(text: string, needle: string, delta = 0): L.Position {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, `${needle} not in text`);
  const before = text.slice(0, i + delta);
  const lines = before.split("\n");
  return { line: lines.length - 1, character: lines.at(-1)!.length };
}

async function open(uri: string, text: string): Promise<L.PublishDiagnosticsParams> {
  const d = client.nextDiagnostics(uri);
  client.notify("textDocument/didOpen", { textDocument: { uri, languageId: "nnet", version: 1, text } });
  return d;
}

async function replaceAll(uri: string, text: string): Promise<L.PublishDiagnosticsParams> {
  const v = ++version;
  const d = client.nextDiagnostics(uri, v);
  client.notify("textDocument/didChange", { textDocument: { uri, version: v }, contentChanges: [{ text }] });
  return d;
}

const hoverText = async (text: string, needle: string, delta = 1) => {
  const h = await client.request<L.Hover | null>("textDocument/hover", { textDocument: { uri: mainUri }, position: pos(text, needle, delta) });
  return h ? (h.contents as L.MarkupContent).value as string : "";
};
const complete = async (text: string, at: L.Position, uri = mainUri) => {
  const items = await client.request<L.CompletionItem[]>("textDocument/completion", { textDocument: { uri }, position: at });
  return items;
};

test.before(async () => {
  client = await connect({ debounceMs: 5 });
});
test.after(() => {
  client.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a clean file publishes no diagnostics (its import read from the disk)", async () => {
  const d = await open(mainUri, MAIN);
  assert.equal(d.diagnostics, []);
});

test("diagnostics on change carry the CLI's codes, messages and spans", async () => {
  // Two independent errors (an error in the model suppresses the plan's errors about its outputs: no cascades).
  const bad = MAIN.replace("conv2d(8, 3)", "conv2d(8, 3, padding: sam)").replace("adam(", "adma(");
  const d = await replaceAll(mainUri, bad);
  const src = compile(mainFile, bad, memoryHost());
  const expected = src.diagnostics.map((x) => diagnosticToJson(x, src.sources)).map((j) => ({ code: j.code, line: j.line - 1, character: j.column - 1, endLine: j.endLine - 1, endCharacter: j.endColumn - 1 }));
  assert.ok(expected.length >= 2, "the sample has two errors");
  assert.equal(
    d.diagnostics.map((x) => ({ code: x.code, line: x.range.start.line, character: x.range.start.character, endLine: x.range.end.line, endCharacter: x.range.end.character })),
    expected,
  );
  assert.ok(d.diagnostics.every((x) => x.severity === 1 && x.source === "nnetc"));
  assert.ok(d.diagnostics.some((x) => msg(x).includes('"sam"') && msg(x).includes('hint: did you mean "same"?')), "the hint is part of the message");
  const fixed = await replaceAll(mainUri, MAIN);
  assert.equal(fixed.diagnostics, []);
});

test("incremental edits are applied to the right text", async () => {
  const at = pos(MAIN, "conv2d(8", 7);
  const edit = async (t: string) => {
    const v = ++version;
    const d = client.nextDiagnostics(mainUri, v);
    client.notify("textDocument/didChange", { textDocument: { uri: mainUri, version: v }, contentChanges: [{ range: { start: at, end: { line: at.line, character: at.character + 1 } }, text: t }] });
    return (await d).diagnostics;
  };
  const bad = await edit("0");
  assert.ok(bad.length >= 1);
  assert.ok(msg(bad[0]!).includes("filters"), msg(bad[0]!));
  assert.equal(bad[0]!.range.start.line, at.line);
  assert.equal(await edit("8"), []);
});

test("hover: a layer call shows its signature, output shape, dtype and parameter count", async () => {
  const h = await hoverText(MAIN, "conv2d(8");
  assert.ok(h.includes("conv2d(x, filters: int"), h);
  assert.ok(h.includes("`f32[batch, 26, 26, 8]`"), h);
  assert.ok(h.includes("80 parameters"), h);
});

test("hover: bindings, inputs and outputs show their shapes", async () => {
  assert.ok((await hoverText(MAIN, "x = image")).includes("`f32[batch, 26, 26, 8]`"));
  assert.ok((await hoverText(MAIN, "image: f32")).includes("`f32[batch, 28, 28, 1]`"));
  const out = await hoverText(MAIN, "logits = x");
  assert.ok(out.includes("`f32[batch, 10]`") && out.includes("54,090 parameters"), out);
  const ref = await hoverText(MAIN, "x -> flatten");
  assert.ok(ref.includes("`f32[batch, 26, 26, 8]`"), ref);
});

test("hover: a block use shows the block's signature and doc; a setting its documentation", async () => {
  const h = await hoverText(MAIN, "Head(10)");
  assert.ok(h.includes('block Head(classes: int, act: string = "linear")') && h.includes("A dense head."), h);
  const s = await hoverText(MAIN, "optimizer adam");
  assert.ok(s.includes("the optimizer"), s);
  const m = await hoverText(MAIN, "Net {");
  assert.ok(m.includes("input `image`") && m.includes("54,170 parameters"), m);
});

test("completion: layers and blocks after ->, with signatures", async () => {
  const text = MAIN.replace("-> relu\n", "-> relu -> \n");
  await replaceAll(mainUri, text);
  const items = await complete(text, pos(text, "-> relu -> ", 11));
  const dense = items.find((i) => i.label === "dense");
  assert.ok(dense && dense.detail!.startsWith("dense(x, units: int"), JSON.stringify(dense));
  assert.ok(items.some((i) => i.label === "Head" && i.detail === 'block Head(classes: int, act: string = "linear")'));
  assert.not.ok(items.some((i) => i.label === "adam"), "no optimizers in a model");
  await replaceAll(mainUri, MAIN);
});

test("built-in functions: hover shows the signature and doc; completion offers them in expressions, not after ->", async () => {
  const text = MAIN.replace("conv2d(8, 3)", "conv2d(max(2, floor(9 / 2)), 3)");
  await replaceAll(mainUri, text);
  const h = await hoverText(text, "max(2");
  assert.ok(h.includes("max(a, b, …)") && h.includes("built-in compile-time function"), h);
  assert.ok((await hoverText(text, "floor(9")).includes("Python's c // 4"));
  const t2 = MAIN.replace("  x = image", "  w = \n  x = image");
  await replaceAll(mainUri, t2);
  const items = await complete(t2, pos(t2, "w = ", 4));
  assert.ok(items.some((i) => i.label === "max" && i.detail === "max(a, b, …)"), items.map((i) => i.label).join(" "));
  const t3 = MAIN.replace("-> relu\n", "-> relu -> \n");
  await replaceAll(mainUri, t3);
  assert.not.ok((await complete(t3, pos(t3, "-> relu -> ", 11))).some((i) => i.label === "max"), "no built-in as a chain stage");
  await replaceAll(mainUri, MAIN);
});

test("completion: named arguments of the call at the cursor, and enum values", async () => {
  const text = MAIN.replace("conv2d(8, 3)", "conv2d(8, 3, )");
  await replaceAll(mainUri, text);
  const names = (await complete(text, pos(text, "conv2d(8, 3, ", 13))).map((i) => i.label);
  assert.ok(names.includes("padding:") && names.includes("stride:") && !names.includes("filters:"), names.join(" "));
  const t2 = MAIN.replace("conv2d(8, 3)", "conv2d(8, 3, padding: )");
  await replaceAll(mainUri, t2);
  const values = (await complete(t2, pos(t2, "padding: ", 9))).map((i) => i.label);
  assert.ok(values.includes("valid") && values.includes("same") && !values.includes("dense"), values.join(" "));
  const t3 = MAIN.replace("Head(10)", "Head(10, )");
  await replaceAll(mainUri, t3);
  assert.equal((await complete(t3, pos(t3, "Head(10, ", 9))).map((i) => i.label), ["act:"], "classes is given by position");
  // A 1-D pool: ceil_mode among its arguments, the padding names offered, the padding type in hover.
  const t4 = MAIN.replace("conv2d(8, 3)", "max_pool1d(2, )");
  await replaceAll(mainUri, t4);
  const pool = (await complete(t4, pos(t4, "max_pool1d(2, ", 14))).map((i) => i.label);
  assert.ok(pool.includes("ceil_mode:") && pool.includes("padding:") && pool.includes("stride:"), pool.join(" "));
  const t5 = MAIN.replace("conv2d(8, 3)", "max_pool1d(2, padding: )");
  await replaceAll(mainUri, t5);
  const padNames = (await complete(t5, pos(t5, "padding: ", 9))).map((i) => i.label);
  assert.ok(padNames.includes("valid") && padNames.includes("same"), padNames.join(" "));
  // Hover on the argument names: a 1-D pool's padding is one amount, a conv1d's one or [left, right].
  const t6 = MAIN.replace("conv2d(8, 3)", "max_pool1d(2, padding: 1) -> conv1d(8, 3, padding: [1, 0])");
  await replaceAll(mainUri, t6);
  assert.ok((await hoverText(t6, "padding: 1")).includes("`padding: valid | same | int = \"valid\"`"), await hoverText(t6, "padding: 1"));
  assert.ok((await hoverText(t6, "padding: [1")).includes("`padding: valid | same | causal | int | [ints] = \"valid\"`"), await hoverText(t6, "padding: [1"));
  await replaceAll(mainUri, MAIN);
});

test("completion: plan settings inside train, and their values", async () => {
  const text = MAIN.replace("  epochs 1\n", "  epochs 1\n  \n");
  await replaceAll(mainUri, text);
  const settings = (await complete(text, pos(text, "epochs 1\n  ", 11))).map((i) => i.label);
  for (const s of ["optimizer", "early_stop", "metrics", "phase"]) assert.ok(settings.includes(s), s);
  assert.not.ok(settings.includes("source"), "source is a dataset setting");
  const opt = (await complete(MAIN, pos(MAIN, "optimizer adam", 10))).map((i) => i.label);
  assert.ok(opt.includes("adam") && opt.includes("sgd") && !opt.includes("dense"), opt.join(" "));
  const args = (await complete(MAIN, pos(MAIN, "adam(lr", 5))).map((i) => i.label);
  assert.ok(args.includes("beta1:") || args.includes("lr:"), args.join(" "));
  await replaceAll(mainUri, MAIN);
});

test("go to definition: block uses across imports, model and dataset names of a plan, bindings", async () => {
  const def = async (needle: string, delta = 1) => client.request<L.Location[]>("textDocument/definition", { textDocument: { uri: mainUri }, position: pos(MAIN, needle, delta) });
  const head = await def("Head(10)");
  assert.equal(head, [{ uri: blocksUri, range: { start: { line: 1, character: 6 }, end: { line: 1, character: 10 } } }]);
  assert.equal((await def("Head }"))[0]?.uri, blocksUri);
  assert.equal((await def("Net on"))[0]?.range.start, pos(MAIN, "Net {"));
  assert.equal((await def("data {", 1))[0], undefined, "a declaration's own name has no definition elsewhere");
  assert.equal((await def("on data", 4))[0]?.range.start, pos(MAIN, "data {"));
  assert.equal((await def("x -> flatten"))[0]?.range.start, pos(MAIN, "x = image"));
});

test("document symbols: models, blocks, datasets and plans, with their bindings", async () => {
  const syms = await client.request<L.DocumentSymbol[]>("textDocument/documentSymbol", { textDocument: { uri: mainUri } });
  assert.equal(syms.map((s) => s.name), ["Net", "data", "Net on data"]);
  assert.equal(syms[0]!.children!.map((c) => c.name), ["image", "x", "logits"]);
  assert.equal(syms[1]!.children!.map((c) => c.name), ["image", "label"]);
});

test("an open document wins over the disk, and its importers are re-checked when it changes", async () => {
  const changed = client.nextDiagnostics(mainUri, 0);
  const own = await open(blocksUri, BLOCKS.replace("block Head", "block Tail"));
  assert.equal(own.diagnostics, []);
  const d = await changed;
  assert.equal(d.diagnostics[0]!.range.start, pos(MAIN, "Head }"), JSON.stringify(d.diagnostics));
  assert.ok(msg(d.diagnostics[0]!).includes("Head") && msg(d.diagnostics[0]!).includes("Tail"), msg(d.diagnostics[0]!));
  const back = client.nextDiagnostics(mainUri, 0);
  client.notify("textDocument/didChange", { textDocument: { uri: blocksUri, version: 2 }, contentChanges: [{ text: BLOCKS }] });
  assert.equal((await back).diagnostics, []);
});

test("a problem inside an imported file is shown on the import", async () => {
  const bad = client.nextDiagnostics(mainUri, 0);
  client.notify("textDocument/didChange", { textDocument: { uri: blocksUri, version: 3 }, contentChanges: [{ text: BLOCKS.replace("dense(classes)", "dense(classes, activation: rellu)") }] });
  const d = await bad;
  assert.equal(d.diagnostics[0]!.range.start, pos(MAIN, '"blocks.nnet"'), JSON.stringify(d.diagnostics));
  assert.ok(msg(d.diagnostics[0]!).includes("blocks.nnet:3:"), msg(d.diagnostics[0]!));
  assert.equal(d.diagnostics[0]!.relatedInformation?.[0]?.location.uri, blocksUri);
  const back = client.nextDiagnostics(mainUri, 0);
  client.notify("textDocument/didChange", { textDocument: { uri: blocksUri, version: 4 }, contentChanges: [{ text: BLOCKS }] });
  assert.equal((await back).diagnostics, []);
});

test("documents that import each other are re-checked once per edit, not in a loop", async () => {
  const a = pathToFileURL(path.join(dir, "cyc_a.nnet")).href;
  const b = pathToFileURL(path.join(dir, "cyc_b.nnet")).href;
  await open(a, 'import { B } from "cyc_b.nnet"\nblock A() { out = in }\n');
  const d = await open(b, 'import { A } from "cyc_a.nnet"\nblock B() { out = in }\n');
  assert.ok(d.diagnostics.some((x) => x.code === "NN2020"), JSON.stringify(d.diagnostics));
  const before = client.published.length;
  client.notify("textDocument/didChange", { textDocument: { uri: a, version: 2 }, contentChanges: [{ text: 'import { B } from "cyc_b.nnet"\nblock A() { out = in -> relu }\n' }] });
  await new Promise((r) => setTimeout(r, 300));
  const after = client.published.slice(before).map((p) => p.uri);
  assert.equal(after.sort(), [a, b].sort());
  client.notify("textDocument/didClose", { textDocument: { uri: a } });
  client.notify("textDocument/didClose", { textDocument: { uri: b } });
});

test("formatting: the formatter's output as one edit; nothing for formatted text or syntax errors", async () => {
  const uri = pathToFileURL(path.join(dir, "messy.nnet")).href;
  const messy = "model   M{input x:f32[batch,4]\n   output y=x->dense(2,activation:relu)   // keep me\n}\n";
  await open(uri, messy);
  const fmt = async () => client.request<L.TextEdit[]>("textDocument/formatting", { textDocument: { uri }, options: { tabSize: 8, insertSpaces: true } });
  const edits = await fmt();
  const expected = format(path.join(dir, "messy.nnet"), messy);
  assert.ok(expected.ok && expected.changed);
  assert.equal(edits, [{ range: { start: { line: 0, character: 0 }, end: { line: 3, character: 0 } }, newText: expected.ok ? expected.text : "" }]);
  assert.ok(edits[0]!.newText.includes("// keep me"));
  const v = ++version;
  const d = client.nextDiagnostics(uri, v);
  client.notify("textDocument/didChange", { textDocument: { uri, version: v }, contentChanges: [{ text: edits[0]!.newText }] });
  await d;
  assert.equal(await fmt(), [], "formatted text needs no edit");
  const v2 = ++version;
  const d2 = client.nextDiagnostics(uri, v2);
  client.notify("textDocument/didChange", { textDocument: { uri, version: v2 }, contentChanges: [{ text: "model M { input x: f32[batch, 4]\n" }] });
  assert.ok((await d2).diagnostics.some((x) => String(x.code).startsWith("NN1")));
  assert.equal(await fmt(), [], "a file with syntax errors is left alone");
  client.notify("textDocument/didClose", { textDocument: { uri } });
});

test("models/resnet50.nnet: diagnostics follow 20 small edits (the median time is printed)", async () => {
  const file = path.join(ROOT, "models/resnet50.nnet");
  const uri = pathToFileURL(file).href;
  const text = readFileSync(file, "utf8");
  assert.equal((await open(uri, text)).diagnostics, []);
  const at = pos(text, "dense(1000", 6);
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const v = ++version;
    const broken = i % 5 === 4; // every fifth edit introduces an error: classes "100x"
    const d = client.nextDiagnostics(uri, v);
    const t0 = performance.now();
    client.notify("textDocument/didChange", { textDocument: { uri, version: v }, contentChanges: [{ range: { start: at, end: { line: at.line, character: at.character + 4 } }, text: broken ? "-100" : String(1000 + i) }] });
    const r = await d;
    times.push(performance.now() - t0);
    assert.equal(r.version, v);
    assert.equal(r.diagnostics.map((x) => x.code).length > 0, broken, `edit ${i}`);
  }
  times.sort((a, b) => a - b);
  console.log(`  resnet50: didChange → publishDiagnostics median ${times[10]!.toFixed(1)} ms (debounce 5 ms in this test)`);
  client.notify("textDocument/didClose", { textDocument: { uri } });
});

test("node dist/nnetc.mjs lsp: initialize and shutdown over real stdio", async () => {
  const p = spawn(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "lsp", "--stdio"], { stdio: ["pipe", "pipe", "pipe"] });
  const send = (o: unknown) => {
    const s = JSON.stringify(o);
    p.stdin.write(`Content-Length: ${Buffer.byteLength(s)}\r\n\r\n${s}`);
  };
  let out = "";
  const got = (id: number) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no response ${id}: ${out}`)), 10000);
      const check = () => {
        if (out.includes(`"id":${id},"result"`)) {
          clearTimeout(t);
          p.stdout.off("data", check);
          resolve();
        }
      };
      p.stdout.on("data", (b) => {
        out += b;
        check();
      });
    });
  const exited = new Promise<number | null>((resolve) => p.on("exit", resolve));
  send({ jsonrpc: "2.0", id: 1, method: "initialize", params: { processId: null, rootUri: null, capabilities: {} } });
  await got(1);
  assert.ok(out.includes('"hoverProvider":true'));
  send({ jsonrpc: "2.0", id: 2, method: "shutdown" });
  await got(2);
  send({ jsonrpc: "2.0", method: "exit" });
  assert.equal(await exited, 0);
});

test.run();
