// The runtime's own errors, each mapped to an exit code by the CLI (commands.ts).
// Type-only imports: nnetc/runtime, all an emitted module loads, loads nothing of the compiler (numbered
// errors are made by run_diagnostics.ts, which only the CLI's commands load).
import type { Diagnostic } from "../compiler/diagnostics.js";

/** A problem the user can fix (bad data, refused checkpoint, existing run, no torch): exit code 2. */
export class RunError extends Error {
  /** The numbered diagnostic (NN7xxx) this error is, when it is one; its span is the .nnet layer it names, if any. */
  diagnostic?: Diagnostic;
  /**
   * A numbered diagnostic raised where the compiler's table is not loaded (nnetc/runtime, e.g. run_folder.ts):
   * its key and arguments; the CLI (commands.ts) renders it from compiler/diagnostics.ts.
   */
  numbered?: { key: string; args: Record<string, unknown> };

  /** What the CLI prints: "nnetc: message", or a numbered diagnostic as the compiler renders them. */
  report(): string {
    return this.diagnostic?.span.file ? this.message : `nnetc: ${this.message}`;
  }
}

/** Training diverged (NaN or Inf loss): exit code 1, with the last good checkpoint kept. */
export class DivergedError extends Error {}
/** Interrupted by Ctrl-C after saving: exit code 130. */
export class InterruptedError extends Error {}
