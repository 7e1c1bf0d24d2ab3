// The project root: every path a .nnet file names — its imports, its data files and folders, tokenizer files, `init`
// weights — must resolve inside it (after symlinks, by realpath), so that a file cannot make nnetc read
// ../../etc/passwd or /proc/self/environ. The root is, in order: --root DIR (the CLI sets NNETC_ROOT from it, so
// the runtime sees it too), the environment variable NNETC_ROOT, the language server's workspace folder, else the
// nearest folder at or above the entry .nnet file holding a package.json or a `.nnetroot` marker file, else the
// entry file's own folder. Node-only (node:fs); the messages are limits.ts's (a leaf), so the data layer of
// nnetc/runtime may load this module too.
import { realpathSync, statSync } from "node:fs";
import * as path from "node:path";
import { fileKind, outsideRoot as outsideRootText, specialFileKind } from "./limits.js";

/** The marker file that makes a folder a project root (any content; package.json does the same). */
export const ROOT_MARKER = ".nnetroot";
/** The environment variable that names the root (what --root sets). */
export const ROOT_ENV = "NNETC_ROOT";

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The real path of `p`; for a path that does not exist (yet), its nearest existing ancestor's real path + the rest. */
export function realPath(p: string): string {
  const abs = path.resolve(p);
  try {
    return realpathSync.native(abs);
  } catch {
    const up = path.dirname(abs);
    return up === abs ? abs : path.join(realPath(up), path.basename(abs));
  }
}

/** The nearest folder at or above `dir` holding package.json or .nnetroot, or null. */
export function findRoot(dir: string): string | null {
  let d = path.resolve(dir);
  for (;;) {
    if (isFile(path.join(d, ROOT_MARKER)) || isFile(path.join(d, "package.json"))) return d;
    const up = path.dirname(d);
    if (up === d) return null;
    d = up;
  }
}

/** How the root was chosen, for the message that refuses a path outside it. */
export type RootOrigin = "flag" | "env" | "workspace" | "marker" | "file";

export interface ProjectRoot {
  /** The root as a real path (symlinks resolved). */
  dir: string;
  origin: RootOrigin;
}

/**
 * The root for an entry .nnet file: `given` (--root, the workspace folder) when set, else NNETC_ROOT, else the
 * nearest folder with package.json or .nnetroot, else the file's folder.
 */
export function projectRoot(entry: string, given?: { dir: string; origin: "flag" | "workspace" }): ProjectRoot {
  const env = process.env[ROOT_ENV];
  if (given) return { dir: realPath(given.dir), origin: given.origin };
  if (env) return { dir: realPath(env), origin: "env" };
  const dir = path.dirname(path.resolve(entry));
  const found = findRoot(dir);
  return found ? { dir: realPath(found), origin: "marker" } : { dir: realPath(dir), origin: "file" };
}

/** Whether the real path `real` is `root` or inside it. */
export function isInside(root: string, real: string): boolean {
  const rel = path.relative(root, real);
  return rel === "" || (!rel.startsWith(`..${path.sep}`) && rel !== ".." && !path.isAbsolute(rel));
}

/**
 * Why `file` may not be read: a device, FIFO or socket, or a virtual file of /proc or /sys (which claim to be
 * regular files), or outside the root (after symlinks); null when it may be read. `also` are further folders a path may lie in (--data DIR).
 */
export function confine(root: ProjectRoot, file: string, also: readonly string[] = []): { outside: string } | { special: string } | null {
  const real = realPath(file);
  // a device or FIFO says so wherever it is (NN7041 before NN7050); folders are for the readers to judge
  let kind: string | null = null;
  try {
    const st = statSync(real);
    if (!st.isDirectory()) kind = fileKind(st);
  } catch {
    /* missing: the reader says so */
  }
  const special = kind ?? specialFileKind(real);
  if (special) return { special };
  if (isInside(root.dir, real) || also.some((d) => isInside(realPath(d), real))) return null;
  return { outside: real };
}

/** The message and hint of NN7050 for `written` (as the file wrote it), resolving to `real` outside `root`. */
export function outsideMessage(written: string, real: string, root: ProjectRoot): { message: string; hint: string } {
  return outsideRootText(written, real, root.dir, root.origin);
}

/** A compile() host's checkPath for `root` (and further allowed folders): what confine() says, with the root named. */
export function pathChecker(root: ProjectRoot, also: readonly string[] = []): (file: string, o?: { nnet?: boolean }) => { outside: string; root: string; origin: string } | { special: string } | { notNnet: string } | null {
  return (file, o) => {
    const c = confine(root, file, also);
    if (c) return "outside" in c ? { outside: c.outside, root: root.dir, origin: root.origin } : c;
    // an import: a .nnet name that links to another kind of file (x.nnet -> /etc/passwd under --root /) is not read
    const real = realPath(file);
    return o?.nnet && !real.endsWith(".nnet") ? { notNnet: real } : null;
  };
}
