// The prettier plugin for .nnet: `prettier --plugin nnetc/prettier --write "**/*.nnet"`. It prints the
// formatter's own Doc (./doc.ts), so prettier's output is byte for byte what `format()` and `nnetc fmt`
// give. Defaults follow the house style (width 100, indent 2); `printWidth` and `tabWidth` from a
// prettier config apply as usual. A file with syntax errors is reported as prettier's SyntaxError with
// the NN1xxx message and its position, and left untouched.
import type { Parser, Plugin, Printer, SupportLanguage } from "prettier";
import { diagnosticsLine } from "./errors.js";
import { DEFAULT_INDENT, DEFAULT_PRINT_WIDTH, formatDoc } from "./index.js";
import type { Doc } from "./doc.js";

/** What the plugin's parser hands its printer: the whole file and its Doc. */
export interface NnetFileNode {
  kind: "nnet-file";
  start: number;
  end: number;
  doc: Doc;
}

export const languages: SupportLanguage[] = [{ name: "nnet", parsers: ["nnet"], extensions: [".nnet"], vscodeLanguageIds: ["nnet"] }];

export const parsers: Record<string, Parser<NnetFileNode>> = {
  nnet: {
    astFormat: "nnet-ast",
    parse(text, options) {
      const file = options.filepath ?? "<input>";
      const r = formatDoc(file, text);
      if (!r.ok) {
        const { message, line, column } = diagnosticsLine(file, text, r.diagnostics);
        throw Object.assign(new SyntaxError(message), { loc: { start: { line, column } } });
      }
      return { kind: "nnet-file", start: 0, end: text.length, doc: r.doc };
    },
    locStart: (n) => n.start,
    locEnd: (n) => n.end,
  },
};

export const printers: Record<string, Printer<NnetFileNode>> = {
  "nnet-ast": {
    print: (path) => path.node.doc,
  },
};

export const defaultOptions = { printWidth: DEFAULT_PRINT_WIDTH, tabWidth: DEFAULT_INDENT };

const plugin: Plugin<NnetFileNode> = { languages, parsers, printers, defaultOptions };
export default plugin;
