// The runtime's own errors, each mapped to an exit code by the CLI (commands.ts).
/** A problem the user can fix (bad data, refused checkpoint, existing run): exit code 2. */
export class RunError extends Error {}
/** Training diverged (NaN or Inf loss): exit code 1, with the last good checkpoint kept. */
export class DivergedError extends Error {}
/** Interrupted by Ctrl-C after saving: exit code 130. */
export class InterruptedError extends Error {}
