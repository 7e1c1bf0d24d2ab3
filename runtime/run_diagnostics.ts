// Numbered run-time errors (NN7xxx): a RunError made from the diagnostics table of compiler/diagnostics.ts, so
// that every numbered message is declared once. Loaded by the commands and the torch engine only: nnetc/runtime,
// which emitted modules import, stays free of the compiler (runtime/errors.ts imports nothing of it).
import { readFileSync } from "node:fs";
import { diag, NO_SPAN, type ArgsOf, type Diagnostic, type DiagnosticKey } from "../compiler/diagnostics.js";
import type { IRSpan } from "../compiler/ir/types.js";
import { renderDiagnostic, renderPlain } from "../compiler/render.js";
import { SourceFile } from "../compiler/source.js";
import { RunError } from "./errors.js";

/**
 * A RunError that is the diagnostic `key` of compiler/diagnostics.ts (one table for every numbered message),
 * at `span` when the problem is in a .nnet layer: "FILE:LINE:COL - error NN7010: …" with its code frame,
 * else "error NN7001: …" and the hint.
 */
export function runError<K extends DiagnosticKey>(key: K, args: ArgsOf<K>, span?: IRSpan): RunError {
  return diagnosticError(diag(key, span ?? NO_SPAN, args));
}

/** A RunError of a diagnostic already made (the ONNX exporter's NN6001 at eval/predict time): rendered as runError renders. */
export function diagnosticError(d: Diagnostic): RunError {
  let text: string;
  const span = d.span;
  if (span.file) {
    let source: string | null = null;
    try {
      source = readFileSync(span.file, "utf8");
    } catch {
      // the file moved since it was compiled: no code frame
    }
    text = renderDiagnostic(d, new Map(source === null ? [] : [[span.file, new SourceFile(span.file, source)]]));
  } else {
    text = renderPlain(d);
  }
  const e = new RunError(text);
  e.diagnostic = d;
  return e;
}
