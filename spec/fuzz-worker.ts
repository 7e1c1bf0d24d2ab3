// The worker thread behind spec/unit/property.test.ts: compiles one text per message, so that the test
// can time every input out (a compile that loops forever cannot be interrupted on the main thread).
// It reports what the property checks need: whether anything threw, the diagnostics as plain data,
// how they render, and the IR when the text compiled without errors.
import { parentPort } from "node:worker_threads";
import { compile, parse, type Host } from "../compiler/index.js";
import { diagnosticToJson, renderDiagnostic } from "../compiler/render.js";

/** The fuzz targets' file name (spec/fuzz/targets.ts), so that the property test checks spans against it. */
export { FUZZ_FILE } from "./fuzz/targets.js";
import { FUZZ_FILE } from "./fuzz/targets.js";

export interface FuzzRequest {
  id: number;
  text: string;
}

export interface FuzzReply {
  id: number;
  /** An exception that escaped parse, compile or rendering: message and stack. */
  threw?: string;
  diagnostics: unknown[];
  /** Only when there are no errors. */
  module?: unknown;
  /** Problems found while rendering diagnostics (text and JSON forms). */
  renderProblems: string[];
  ms: number;
}

/** No file other than the one under test exists: imports fail the same way every time. */
const host: Host = { readFile: () => ({ error: "no such file" }) };

function run(text: string): Omit<FuzzReply, "id" | "ms"> {
  const renderProblems: string[] = [];
  try {
    parse(FUZZ_FILE, text);
    const r = compile(FUZZ_FILE, text, host);
    for (const d of r.diagnostics) {
      const rendered = renderDiagnostic(d, r.sources, { color: false });
      if (!rendered.includes(d.code)) renderProblems.push(`rendered ${d.code} without its code`);
      const j = diagnosticToJson(d, r.sources);
      if (!(j.line >= 1 && j.column >= 1 && j.endLine >= j.line)) renderProblems.push(`${d.code} renders at line ${j.line}:${j.column}-${j.endLine}:${j.endColumn}`);
    }
    const clean = !r.diagnostics.some((d) => d.severity === "error");
    return { diagnostics: JSON.parse(JSON.stringify(r.diagnostics)) as unknown[], ...(clean ? { module: JSON.parse(JSON.stringify(r.module)) as unknown } : {}), renderProblems };
  } catch (e) {
    return { threw: e instanceof Error ? `${e.message}\n${e.stack ?? ""}` : String(e), diagnostics: [], renderProblems };
  }
}

parentPort?.on("message", (req: FuzzRequest) => {
  const t0 = performance.now();
  const out = run(req.text);
  parentPort!.postMessage({ id: req.id, ...out, ms: performance.now() - t0 } satisfies FuzzReply);
});
