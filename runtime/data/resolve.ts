// Where a dataset's files are: source paths resolve against --data (or the .nnet file's folder). IDX files
// that are not there are looked for in the Debian package's folder and then in the Fashion-MNIST test set
// that ships with nnetc (data/fashion-mnist). When the Fashion-MNIST *training* files are nowhere but that
// test set is, the test set becomes the only source, to be split 80/20.
import { existsSync, statSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { CallSpec, DatasetSpec } from "../spec.js";
import { limitText, notRegular, NOT_REGULAR_CODE, OUTSIDE_ROOT_CODE } from "../../compiler/limits.js";
import { confine, outsideMessage, projectRoot, type ProjectRoot } from "../../compiler/root.js";
import { DataError } from "./errors.js";

/** Where Debian's dataset-fashion-mnist package installs the four files. */
export const DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist";
export const FASHION_TEST_FILES = { images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz" } as const;
const FASHION_TRAIN_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"];
export const FULL_SET_HINT = `pass --data DIR (a folder holding the four Fashion-MNIST files) or install them with apt-get install dataset-fashion-mnist`;

/**
 * The arguments of each source that name files (or folders, for the *_folder sources): compiler/plan/tables.ts's
 * PATH_ARGS.sources (the data layer loads nothing of the compiler but leaves; spec/unit/paths.test.ts holds the two equal).
 */
export const FILE_ARGS: Record<string, { args: string[]; dir: boolean }> = {
  idx: { args: ["images", "labels"], dir: false },
  csv: { args: ["path"], dir: false },
  jsonl: { args: ["path"], dir: false },
  text_folder: { args: ["path"], dir: true },
  image_folder: { args: ["path"], dir: true },
  image_mask_folder: { args: ["images", "masks"], dir: true },
  audio_folder: { args: ["path"], dir: true },
};

let embedded: string | null | undefined;

/** The folder holding the Fashion-MNIST test set that ships with nnetc (data/fashion-mnist), if present. */
export function embeddedDataDir(): string | null {
  if (embedded !== undefined) return embedded;
  embedded = null;
  // From dist/runtime/data/, dist/ (bundled) or runtime/data/ up to the package root.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const cand = path.join(dir, "data", "fashion-mnist");
    if (existsSync(path.join(cand, FASHION_TEST_FILES.images)) && existsSync(path.join(cand, FASHION_TEST_FILES.labels))) {
      embedded = cand;
      break;
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return embedded;
}

export interface ResolveOptions {
  /** --data DIR, or null. */
  dataDir: string | null;
  /** The .nnet file's folder; paths resolve against it when there is no --data. */
  baseDir: string;
  /** Folders searched for IDX files not found under the data folder (default: the Debian location). */
  fallbackDirs?: readonly string[];
  /** The embedded Fashion-MNIST test set's folder (default: embeddedDataDir()); null disables it. */
  embeddedDir?: string | null;
  /** The project root the files must lie in (default: compiler/root.ts's projectRoot for a file in baseDir). */
  root?: ProjectRoot;
}

/** The project root of a dataset's files: `opts.root`, else that of a .nnet file in `baseDir` (NNETC_ROOT, markers). */
export function dataRoot(opts: { baseDir: string; root?: ProjectRoot }): ProjectRoot {
  return opts.root ?? projectRoot(path.join(path.resolve(opts.baseDir), "dataset.nnet"));
}

/**
 * Refuse `file` (found for the argument written as `written`) when it lies outside the project root (NN7050; --data
 * DIR, named on the command line, is allowed too) or is a virtual file of /proc or /sys (NN7041).
 */
export function confineDataPath(written: string, file: string, opts: { baseDir: string; dataDir?: string | null; root?: ProjectRoot }, role: string): void {
  const root = dataRoot(opts);
  const c = confine(root, file, opts.dataDir ? [opts.dataDir] : []);
  if (!c) return;
  if ("special" in c) throw new DataError(limitText(NOT_REGULAR_CODE, notRegular(written, c.special, role)));
  throw new DataError(limitText(OUTSIDE_ROOT_CODE, outsideMessage(written, c.outside, root)));
}

export interface ResolvedSources {
  /** The dataset's source and test calls with their file arguments replaced by absolute paths. */
  source: CallSpec | null;
  test: CallSpec | null;
  /**
   * Set when the training files were found nowhere and the Fashion-MNIST test set stands in as the only
   * source (then `test` is null and the caller splits `source` 80/20): which files were missing, where they
   * were looked for, and where the stand-in came from.
   */
  embeddedOnly: { missing: string[]; tried: string[]; from: string } | null;
  notes: string[];
}

function exists(p: string, dir: boolean): boolean {
  try {
    const s = statSync(p);
    return dir ? s.isDirectory() : s.isFile();
  } catch {
    return false;
  }
}

interface Lookup {
  found: string | null;
  tried: string[];
  /** The folder it was found in when that is a fallback, not the data folder. */
  via: string | null;
}

function lookup(file: string, fn: string, opts: ResolveOptions, fallbacks: readonly string[]): Lookup {
  const spec = FILE_ARGS[fn]!;
  const root = path.resolve(opts.dataDir ?? opts.baseDir);
  const variants = (p: string) => (fn === "idx" ? [p, p.endsWith(".gz") ? p.slice(0, -3) : `${p}.gz`] : [p]);
  const tried: string[] = [];
  for (const p of variants(path.resolve(root, file))) {
    tried.push(p);
    if (exists(p, spec.dir)) return { found: p, tried, via: null };
  }
  if (fn === "idx") {
    for (const dir of fallbacks) {
      for (const p of variants(path.join(dir, path.basename(file)))) {
        tried.push(p);
        if (exists(p, false)) return { found: p, tried, via: dir };
      }
    }
  }
  return { found: null, tried, via: null };
}

function fashionTrainName(file: string): boolean {
  return FASHION_TRAIN_NAMES.includes(path.basename(file).replace(/\.gz$/, ""));
}

/** Resolve the files of a dataset's sources; a DataError names any file that cannot be found. */
export function resolveDataDir(ds: DatasetSpec, opts: ResolveOptions): ResolvedSources {
  const embeddedDir = opts.embeddedDir === undefined ? embeddedDataDir() : opts.embeddedDir;
  const fallbacks = [...(opts.fallbackDirs ?? [DEBIAN_FASHION_MNIST]), ...(embeddedDir ? [embeddedDir] : [])];
  const notes: string[] = [];
  const where = opts.dataDir ? `the data folder ${path.resolve(opts.dataDir)}` : `${path.resolve(opts.baseDir)} (the .nnet file's folder; use --data DIR for another)`;
  const resolveCall = (call: CallSpec | null) => {
    if (!call) return { call: null, missing: [] as { file: string; tried: string[] }[], via: [] as { file: string; dir: string }[] };
    const spec = FILE_ARGS[call.fn];
    if (!spec) return { call, missing: [], via: [] };
    const args = { ...call.args };
    const missing: { file: string; tried: string[] }[] = [];
    const via: { file: string; dir: string }[] = [];
    for (const a of spec.args) {
      const v = call.args[a];
      if (typeof v !== "string") throw new DataError(`dataset "${ds.name}": ${call.fn}() needs a ${a} argument`);
      const r = lookup(v, call.fn, opts, fallbacks);
      // nnetc's own fallbacks (the Debian folder, the embedded test set) are not the file's paths: not confined
      if (r.found && !r.via) confineDataPath(v, r.found, opts, `a data ${FILE_ARGS[call.fn]!.dir ? "folder" : "file"}`);
      if (r.found) args[a] = r.found;
      else missing.push({ file: v, tried: r.tried });
      if (r.found && r.via) via.push({ file: path.basename(r.found), dir: r.via });
    }
    return { call: { ...call, args }, missing, via };
  };
  const src = resolveCall(ds.source);
  const test = resolveCall(ds.test);
  const missingError = (m: { file: string; tried: string[] }, role: string) => {
    const hint = fashionTrainName(m.file) || /t10k-(images|labels)/.test(m.file) ? `; ${FULL_SET_HINT}` : "; pass --data DIR with the folder that holds it";
    return new DataError(`dataset "${ds.name}": cannot find the ${role} file ${m.file} (looked in ${where}; tried ${m.tried.join(", ")})${hint}`);
  };
  let embeddedOnly: ResolvedSources["embeddedOnly"] = null;
  let source = src.call;
  let testCall = test.call;
  if (src.missing.length) {
    const fashion = ds.source?.fn === "idx" && src.missing.every((m) => fashionTrainName(m.file));
    let standIn: CallSpec | null = null;
    if (fashion && test.call?.fn === "idx" && test.missing.length === 0) standIn = test.call;
    else if (fashion && embeddedDir) {
      standIn = { fn: "idx", args: { images: path.join(embeddedDir, FASHION_TEST_FILES.images), labels: path.join(embeddedDir, FASHION_TEST_FILES.labels) } };
    }
    if (!standIn) throw missingError(src.missing[0]!, "training");
    embeddedOnly = { missing: src.missing.map((m) => m.file), tried: src.missing.flatMap((m) => m.tried), from: path.dirname(String(standIn.args.images)) };
    source = standIn;
    testCall = null;
  } else {
    if (test.missing.length) throw missingError(test.missing[0]!, "test");
    const via = [...src.via, ...test.via];
    for (const dir of new Set(via.map((v) => v.dir))) {
      const files = via.filter((v) => v.dir === dir).map((v) => v.file);
      const what = dir === embeddedDir ? `the Fashion-MNIST test set that ships with nnetc (${dir})` : dir;
      notes.push(`Not found in ${where}, so taken from ${what}: ${files.join(", ")}.`);
    }
  }
  return { source, test: testCall, embeddedOnly, notes };
}
