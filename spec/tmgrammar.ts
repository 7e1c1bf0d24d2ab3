// The TextMate grammar run by the engine VS Code uses (vscode-textmate + vscode-oniguruma), for tests.
// Also a reader for annotated samples (spec/tmgrammar/*.tmtest: not .nnet, since some hold deliberate
// syntax errors) in the vscode-tmgrammar-test format:
//   source line
//   //   ^^^^ scope.one scope.two - scope.absent
//   // <--- scope        (from column 0: one column per dash)
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";
import oniguruma from "vscode-oniguruma";
import textmate, { type IGrammar, type StateStack } from "vscode-textmate";
import { grammarFiles, MARKDOWN_INJECTION_SCOPE, SCOPE_NAME } from "../compiler/editor/tmlanguage.js";

const { INITIAL, Registry, parseRawGrammar } = textmate;
let loaded: Promise<void> | undefined;

/** The grammars as generated now (not as committed), loaded into a vscode-textmate registry. */
export async function loadGrammar(): Promise<IGrammar> {
  const require = createRequire(import.meta.url);
  const wasm = readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm"));
  loaded ??= oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength) as ArrayBuffer);
  await loaded;
  const files = grammarFiles();
  const registry = new Registry({
    onigLib: Promise.resolve({ createOnigScanner: (p: string[]) => new oniguruma.OnigScanner(p), createOnigString: (s: string) => new oniguruma.OnigString(s) }),
    loadGrammar: async (scope: string) => {
      if (scope === SCOPE_NAME) return parseRawGrammar(files["grammar/nnet.tmLanguage.json"]!, "nnet.tmLanguage.json");
      if (scope === MARKDOWN_INJECTION_SCOPE) return parseRawGrammar(files["grammar/nnet.markdown.tmLanguage.json"]!, "nnet.markdown.tmLanguage.json");
      return null;
    },
  });
  const g = await registry.loadGrammar(SCOPE_NAME);
  if (!g) throw new Error("source.nnet did not load");
  return g;
}

export interface ScopedToken {
  line: number;
  start: number;
  end: number;
  text: string;
  scopes: string[];
}

/** Every token of every line, with its scope stack. */
export function tokenize(g: IGrammar, text: string): ScopedToken[] {
  const out: ScopedToken[] = [];
  let stack: StateStack = INITIAL;
  text.split(/\r?\n/).forEach((line, i) => {
    const r = g.tokenizeLine(line, stack);
    for (const t of r.tokens) out.push({ line: i, start: t.startIndex, end: Math.min(t.endIndex, line.length), text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes });
    stack = r.ruleStack;
  });
  return out;
}

const ASSERTION = /^(\s*)\/\/(\s*)(\^+|<-+)\s+(.*)$/;

/**
 * Check an annotated sample; returns one message per failed assertion (empty when all hold).
 * Assertion lines are not source: they are removed before tokenizing and refer to the last source line.
 */
export function checkSample(g: IGrammar, sample: string): string[] {
  const lines = sample.split(/\r?\n/);
  if (!/^\/\/ SYNTAX TEST "source\.nnet"/.test(lines[0] ?? "")) return ['the first line must be // SYNTAX TEST "source.nnet" "description"'];
  const failures: string[] = [];
  let stack: StateStack = INITIAL;
  let tokens: { start: number; end: number; scopes: string[] }[] = [];
  let source = "";
  let sourceNo = 0;
  let assertions = 0;
  lines.slice(1).forEach((line, k) => {
    const lineNo = k + 2;
    const a = ASSERTION.exec(line);
    if (!a) {
      const r = g.tokenizeLine(line, stack);
      stack = r.ruleStack;
      tokens = r.tokens.map((t) => ({ start: t.startIndex, end: t.endIndex, scopes: t.scopes }));
      source = line;
      sourceNo = lineNo;
      return;
    }
    assertions++;
    const marks = a[3]!;
    const from = marks.startsWith("<") ? 0 : a[1]!.length + 2 + a[2]!.length;
    const to = marks.startsWith("<") ? marks.length - 1 : from + marks.length;
    const [want, not] = a[4]!.split(/\s+-\s+|^-\s+/).map((x) => x.trim().split(/\s+/).filter(Boolean)) as [string[], string[] | undefined];
    for (let col = from; col < to; col++) {
      const t = tokens.find((x) => col >= x.start && col < x.end);
      const scopes = t?.scopes ?? [];
      const missing = want.filter((w) => !scopes.includes(w));
      const present = (not ?? []).filter((w) => scopes.includes(w));
      if (missing.length || present.length) {
        failures.push(`line ${sourceNo} col ${col + 1} (${JSON.stringify(source.slice(col, col + 12))}…, assertion on line ${lineNo}): ${missing.length ? `missing ${missing.join(" ")}` : ""}${present.length ? ` unexpected ${present.join(" ")}` : ""}; has ${scopes.join(" ")}`);
        break;
      }
    }
  });
  if (assertions === 0) failures.push("the sample asserts nothing");
  return failures;
}
