// Property: the language server's features never throw on any text, edits included, and every range they
// return lies inside the document. Runs the feature functions directly (no protocol) over mutated zoo files.
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

test.run();
