// The language server's feature functions without the protocol: they never throw on any text (edits
// included) and every range they return lies inside the document (property), and hover over the zoo.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TextDocument } from "vscode-languageserver-textdocument";
import type * as L from "vscode-languageserver";
import { completion, definition, documentSymbols, hover, lspDiagnostics, Workspace } from "../../compiler/lsp/server.js";
import { ROOT } from "../helpers.js";

const ZOO = ["mlp", "lenet5", "fashion_cnn", "text_classifier", "resnet50"].map((m) => readFileSync(path.join(ROOT, "models", `${m}.nnet`), "utf8"));
const SNIPPETS = ["(", ")", "{", "}", "->", ":", ",", "dense(", "conv2d(8, 3, ", "Stage", "input", "train", " on ", "\n", '"', "/*", "///", "repeat 2 {", "x = ", "1e-3", "[", "]", "import { A } from \"x.nnet\"\n", "#"];

const edit = fc.record({ at: fc.nat(), del: fc.nat({ max: 12 }), insert: fc.oneof(fc.constantFrom(...SNIPPETS), fc.string({ maxLength: 6 })) });

function inside(doc: TextDocument, r: L.Range, what: string): void {
  for (const p of [r.start, r.end]) {
    assert.ok(p.line >= 0 && p.line < doc.lineCount && p.character >= 0, `${what}: ${JSON.stringify(r)} outside the document`);
  }
}

test("property: features never throw and return ranges inside the document", () => {
  const uri = pathToFileURL(path.join(ROOT, "models", "edited.nnet")).href;
  fc.assert(
    fc.property(fc.nat({ max: ZOO.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { minLength: 3, maxLength: 3 }), (m, edits, probes) => {
      let text = ZOO[m]!;
      for (const e of edits) {
        const at = e.at % (text.length + 1);
        text = text.slice(0, at) + e.insert + text.slice(at + e.del);
      }
      const ws = new Workspace();
      const doc = TextDocument.create(uri, "nnet", 1, text);
      ws.set(doc);
      const a = ws.analyze(uri)!;
      for (const d of lspDiagnostics(a)) inside(doc, d.range, `diagnostic ${d.code}`);
      const walk = (ss: L.DocumentSymbol[]) => ss.forEach((s) => (inside(doc, s.range, "symbol"), inside(doc, s.selectionRange, "symbol"), walk(s.children ?? [])));
      walk(documentSymbols(a));
      for (const p of probes) {
        const offset = p % (text.length + 1);
        const h = hover(a, offset);
        if (h?.range) inside(doc, h.range, "hover");
        completion(a, offset);
        for (const l of definition(ws, a, offset)) if (l.uri === uri) inside(doc, l.range, "definition");
      }
    }),
    { numRuns: 120 },
  );
});

test("hover in models/resnet50.nnet: block-built bindings and layers inside blocks, one line per instance", () => {
  const text = ZOO[4]!;
  const uri = pathToFileURL(path.join(ROOT, "models/resnet50.nnet")).href;
  const ws = new Workspace();
  ws.set(TextDocument.create(uri, "nnet", 1, text));
  const a = ws.analyze(uri)!;
  const at = (needle: string) => {
    const h = hover(a, text.indexOf(needle) + 1);
    return h ? (h.contents as L.MarkupContent).value : "";
  };
  assert.ok(at("features =").includes("`Stage_3/Bottleneck_2/relu_2` (relu): `f32[batch, 7, 7, 2048]`"), at("features ="));
  const conv = at("conv2d(filters, 3");
  assert.ok(conv.includes("`Stage_1/Bottleneck/conv2d_2` (conv2d): `f32[batch, 28, 28, 128]` · 147,584 parameters") && conv.includes("… 8 more"), conv);
  assert.ok(at("Stage(128").includes("- instance `Stage_1`: 42 nodes, output `f32[batch, 28, 28, 512]`"), at("Stage(128"));
  assert.ok(at("Stage(512").includes("- instance `Stage_3`: 32 nodes, output `f32[batch, 7, 7, 2048]`"), at("Stage(512"));
  assert.ok(at("shortcut =").includes("`Stage_3/Bottleneck/batchnorm` (batchnorm): `f32[batch, 7, 7, 2048]`"));
});

test.run();
