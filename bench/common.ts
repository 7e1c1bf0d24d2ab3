// What the benchmarks share: the repository root, their --name value options, medians, and the environment
// PyTorch runs in when it is measured against a peer.
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (the benchmarks run from dist/bench/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const args = process.argv.slice(2);

/** The value after --name on the command line, else `d`. */
export function opt(name: string, d: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : d;
}

/** Whether --name is on the command line. */
export function flag(name: string): boolean {
  return args.includes(`--${name}`);
}

/** The median of the finite values (NaN when there are none). */
export function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

/** The environment for PyTorch beside a peer: `threads` threads, OpenBLAS's own CPU detection (this machine's overrides removed). */
export function torchEnv(threads: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: threads, ...extra };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}
