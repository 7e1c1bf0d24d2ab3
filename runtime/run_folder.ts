// A run folder (OUT of nnetc train) is owned and whole:
//
//   OUT/run.lock            held while a trainer writes the folder: created with O_EXCL, it records the
//                           trainer's pid, host, start time, command and model fingerprint. A second trainer
//                           is refused (NN7030); a lock whose pid is gone on this host (kill -9) is taken over.
//   OUT/run-manifest.json   written last by a finished run: every file the run wrote (model.safetensors,
//                           model.json, metrics.jsonl, test.json, adapters.safetensors, the export step's
//                           file) with bytes and sha256, verified by every reader (NN7031 on a mismatch).
//                           Removed when a trainer takes the folder, so a half-rewritten run has none.
//   metrics.jsonl           appended per epoch: each checkpoint records the bytes and sha256 of the file as
//                           it was when the checkpoint was written, and --resume checks that prefix.
//   tensorboard/            TensorBoard event files (runtime/tensorboard.ts), appended per step: each start
//                           of a trainer writes new files and never changes older ones; the run manifest
//                           lists every one of them with its final bytes and sha256 at the end of the run.
//
// A folder that holds any run is never trained into without --resume or --force (NN7032); --force moves
// the old run's files into OUT/replaced-TIME/ (nothing is deleted).
//
// nnetc/runtime: no compiler import. Numbered errors carry their key (RunError.numbered); the CLI renders them.
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeFileAtomic } from "./checkpoint/index.js";
import { RunError } from "./errors.js";

export const LOCK_FILE = "run.lock";
export const RUN_MANIFEST = "run-manifest.json";
const RUN_FORMAT = "nnetc-run";
/** What a run writes beside its checkpoints (the manifest lists those present, plus the export step's file). */
export const RUN_FILES = ["model.safetensors", "model.json", "metrics.jsonl", "test.json", "adapters.safetensors"] as const;
/** nnetc train's TensorBoard folder in OUT (unless --tensorboard DIR or --no-tensorboard). */
export const TENSORBOARD_DIR = "tensorboard";

/** A RunError that the CLI prints as the numbered diagnostic `key` (compiler/diagnostics.ts). */
export function numberedError(key: string, args: Record<string, unknown>, text: string): RunError {
  const e = new RunError(text);
  e.numbered = { key, args };
  return e;
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

// ── the lock ──────────────────────────────────────────────────────────────────────────────────────

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
  fingerprint: string;
}

export function readLock(dir: string): LockInfo | null {
  try {
    const j = JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), "utf8")) as Partial<LockInfo>;
    return { pid: Number(j.pid), host: String(j.host ?? "?"), started: String(j.started ?? "?"), command: String(j.command ?? "?"), fingerprint: String(j.fingerprint ?? "") };
  } catch {
    return null;
  }
}

/** Is the lock's process gone? Only decidable on the host that wrote it; a lock that cannot be read counts as gone once it is older than a minute. */
function lockStale(dir: string, l: LockInfo | null): boolean {
  if (!l || !Number.isSafeInteger(l.pid) || l.pid <= 0) {
    try {
      return Date.now() - fs.statSync(path.join(dir, LOCK_FILE)).mtimeMs > 60_000;
    } catch {
      return true;
    }
  }
  if (l.host !== os.hostname()) return false;
  if (l.pid === process.pid) return false;
  try {
    process.kill(l.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

export interface RunLock {
  /** The lock a crashed trainer left, taken over (null when the folder was free). */
  tookOver: LockInfo | null;
  /** Did acquiring create the folder (then release removes it again when it stayed empty)? */
  created: boolean;
  /** Removes the lock; `putBack`: a lock taken over is written back as it was (a trainer refused before it wrote anything leaves the evidence of the crashed run). */
  release(opts?: { putBack?: boolean }): void;
}

/**
 * Takes OUT/run.lock (creating OUT) for a trainer, or throws NN7030 naming the trainer that holds it.
 * Released by release(), and on process exit whatever the cause (errors, Ctrl-C twice).
 */
export function acquireRunLock(dir: string, info: { command: string; fingerprint: string }): RunLock {
  const created = !fs.existsSync(dir);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command: info.command, fingerprint: info.fingerprint };
  let tookOver: LockInfo | null = null;
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, "wx");
      try {
        fs.writeSync(fd, JSON.stringify(mine, null, 2) + "\n");
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const held = readLock(dir);
    if (attempt < 3 && lockStale(dir, held)) {
      // Moved aside under a unique name first: of two trainers taking over at once, one rename wins.
      const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
      try {
        fs.renameSync(file, aside);
        fs.rmSync(aside, { force: true });
        tookOver = held ?? { pid: NaN, host: "?", started: "?", command: "?", fingerprint: "" };
      } catch {
        // another trainer took it first: try again
      }
      continue;
    }
    const h = held ?? { pid: NaN, host: "?", started: "?", command: "?", fingerprint: "" };
    throw numberedError("runLocked", { dir, pid: h.pid, host: h.host, started: h.started, command: h.command }, `${dir} is in use by another trainer: pid ${h.pid} on ${h.host}, started ${h.started} (${h.command})`);
  }
  let released = false;
  const release = (opts?: { putBack?: boolean }) => {
    if (released) return;
    released = true;
    process.off("exit", onExit);
    const now = readLock(dir);
    if (now && now.pid === process.pid && now.host === mine.host && now.started === mine.started) {
      if (opts?.putBack && tookOver) fs.writeFileSync(file, JSON.stringify(tookOver, null, 2) + "\n");
      else fs.rmSync(file, { force: true });
    }
    if (created) {
      try {
        fs.rmdirSync(dir); // only when nothing else is in it
      } catch {
        /* the run wrote files: the folder stays */
      }
    }
  };
  const onExit = () => release();
  process.on("exit", onExit);
  return { tookOver, created, release };
}

// ── what a folder holds ───────────────────────────────────────────────────────────────────────────

/** The run files in a folder (the lock, checkpoints/ and tensorboard/ with anything in them, the run's files), as names. */
export function runContents(dir: string): string[] {
  const names: string[] = [];
  for (const f of [LOCK_FILE, RUN_MANIFEST, ...RUN_FILES]) if (fs.existsSync(path.join(dir, f))) names.push(f);
  for (const sub of ["checkpoints", TENSORBOARD_DIR]) {
    try {
      if (fs.readdirSync(path.join(dir, sub)).length) names.push(`${sub}/`);
    } catch {
      /* none */
    }
  }
  return names;
}

/** The model fingerprint a folder's run records (its lock, model.json, run manifest), or null when none does. */
export function recordedFingerprint(dir: string, lock: LockInfo | null): string | null {
  if (lock?.fingerprint) return lock.fingerprint;
  for (const f of ["model.json", RUN_MANIFEST]) {
    try {
      const j = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as { fingerprint?: unknown };
      if (typeof j.fingerprint === "string") return j.fingerprint;
    } catch {
      /* absent or unreadable */
    }
  }
  return null;
}

/** --force: moves a folder's run files into DIR/replaced-TIME/ (renames within the folder: nothing is copied or deleted). Returns that folder. */
export function moveRunAside(dir: string, names: string[]): string {
  const aside = path.join(dir, `replaced-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  fs.mkdirSync(aside);
  for (const n of names) {
    const base = n.replace(/\/$/, "");
    if (base === LOCK_FILE) continue;
    fs.renameSync(path.join(dir, base), path.join(aside, base));
  }
  return aside;
}

// ── the run manifest ──────────────────────────────────────────────────────────────────────────────

export interface RunManifest {
  format: typeof RUN_FORMAT;
  version: 1;
  fingerprint: string;
  createdAt: string;
  files: { path: string; bytes: number; sha256: string }[];
}

/** Writes OUT/run-manifest.json over the files given (names in OUT) that exist, last of all a run writes. */
export function writeRunManifest(dir: string, fingerprint: string, files: readonly string[]): void {
  const entries: RunManifest["files"] = [];
  for (const f of [...new Set(files)]) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path.join(dir, f));
    } catch {
      continue;
    }
    entries.push({ path: f, bytes: bytes.length, sha256: sha256(bytes) });
  }
  const m: RunManifest = { format: RUN_FORMAT, version: 1, fingerprint, createdAt: new Date().toISOString(), files: entries };
  writeFileAtomic(path.join(dir, RUN_MANIFEST), JSON.stringify(m, null, 2) + "\n");
}

export function removeRunManifest(dir: string): void {
  fs.rmSync(path.join(dir, RUN_MANIFEST), { force: true });
}

function corruptFile(file: string, why: string): RunError {
  return numberedError("runFileCorrupt", { file, why }, `${file} is not the file the run wrote: ${why}`);
}

/**
 * Checks `file` (a path inside a run folder) against the folder's run-manifest.json, when the folder has one
 * and it lists the file: NN7031 on a different size or sha256, or a manifest that cannot be read. A folder
 * without a manifest (a run from before manifests, or one being trained) is not checked.
 */
export function verifyRunFile(file: string): void {
  const dir = path.dirname(file);
  const mf = path.join(dir, RUN_MANIFEST);
  if (!fs.existsSync(mf)) return;
  let m: RunManifest;
  try {
    m = JSON.parse(fs.readFileSync(mf, "utf8")) as RunManifest;
    if (m.format !== RUN_FORMAT || !Array.isArray(m.files)) throw new Error(`its format is not ${RUN_FORMAT}`);
  } catch (e) {
    throw corruptFile(mf, `it cannot be read (${(e as Error).message})`);
  }
  const entry = m.files.find((f) => f.path === path.basename(file));
  if (!entry) return;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw corruptFile(file, `it is missing, and ${RUN_MANIFEST} lists it`);
  }
  if (bytes.length !== entry.bytes) throw corruptFile(file, `it is ${bytes.length} bytes, and ${RUN_MANIFEST} records ${entry.bytes}`);
  const sum = sha256(bytes);
  if (sum !== entry.sha256) throw corruptFile(file, `its sha256 is ${sum}, and ${RUN_MANIFEST} records ${entry.sha256}`);
}

/** What a checkpoint records of metrics.jsonl: its size and sha256 when the checkpoint was written. */
export function metricsRecord(file: string): { bytes: number; sha256: string } {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    bytes = Buffer.alloc(0);
  }
  return { bytes: bytes.length, sha256: sha256(bytes) };
}

/** --resume: metrics.jsonl must start with the bytes the checkpoint recorded (lines after them are the epochs the checkpoint does not have, dropped). */
export function verifyMetricsPrefix(file: string, rec: { bytes: number; sha256: string } | undefined, checkpoint: string): void {
  if (!rec) return;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw corruptFile(file, `it is missing, and checkpoint ${path.basename(checkpoint)} records its first ${rec.bytes} bytes`);
  }
  if (bytes.length < rec.bytes) throw corruptFile(file, `it is ${bytes.length} bytes, shorter than the ${rec.bytes} that checkpoint ${path.basename(checkpoint)} records`);
  const sum = sha256(bytes.subarray(0, rec.bytes));
  if (sum !== rec.sha256) throw corruptFile(file, `its first ${rec.bytes} bytes have sha256 ${sum}, and checkpoint ${path.basename(checkpoint)} records ${rec.sha256}`);
}
