// Checkpoints in a run's output folder.
//
//   OUT/checkpoints/ckpt-000000001200/
//     weights.safetensors     model weights
//     optimizer.safetensors   optimizer slots
//     state.json              epoch, step, phase, schedule, data cursor, RNG, vocabularies, fingerprint, extra
//     manifest.json           format, version, step, fingerprint, and every other file with bytes and sha256
//
// Writing is atomic: everything goes into a temporary folder inside OUT/checkpoints (named ".tmp-…"), each
// file and the folder are fsynced, and the folder is renamed into place, so a crash leaves either the
// complete checkpoint or a temporary folder that listCheckpoints ignores (and a later write removes).
// Then older checkpoints are pruned to the newest `keep`. Only folders named ckpt-<digits> that hold a
// valid manifest count as checkpoints; nothing else is ever deleted (except this module's own leftover
// temporary folders, whose writing process is gone).
//
// Checkpoints are ordered by step (the number in the folder name), oldest first.

import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { CheckpointError } from "./errors.js";
import { decodeSafetensors, encodeSafetensors, type DecodedSafetensors, type HostTensor } from "./safetensors.js";

export { CheckpointError } from "./errors.js";

export const CHECKPOINT_FORMAT = "nnetc-checkpoint";
/** The format version this code writes; it reads this version and older ones. */
export const CHECKPOINT_VERSION = 1;
export const CHECKPOINTS_DIR = "checkpoints";
const NAME_RE = /^ckpt-(\d+)$/;
const PAD = 12;
const TMP_PREFIX = ".tmp-ckpt-";
const TRASH_PREFIX = ".trash-ckpt-";

export const WEIGHTS_FILE = "weights.safetensors";
export const OPTIMIZER_FILE = "optimizer.safetensors";
export const STATE_FILE = "state.json";
export const MANIFEST_FILE = "manifest.json";
const REQUIRED_FILES = [WEIGHTS_FILE, OPTIMIZER_FILE, STATE_FILE] as const;

/** The JSON state saved with a checkpoint. Free-form fields must be JSON-serializable (NaN and ±Infinity become null, as JSON.stringify does). */
export interface CheckpointStateJson {
  /** Global optimizer step; names the checkpoint folder. A non-negative integer. */
  step: number;
  /** Epoch (completed epochs, or the current one: the runtime decides). */
  epoch: number;
  /** Name of the current training phase, if the program has phases. */
  phase?: string | null;
  /** Learning-rate schedule / scheduler state. */
  schedule?: unknown;
  /** Position in the data stream (e.g. shuffled order and index). */
  dataCursor?: unknown;
  /** Random number generator state. */
  rng?: unknown;
  /** Vocabularies built from the data, by name. */
  vocabularies?: Record<string, string[]>;
  /** Fingerprint of the model the weights belong to; readCheckpoint refuses a different one. */
  fingerprint: string;
  /** Anything else the runtime wants back on resume. */
  extra?: Record<string, unknown>;
}

export interface CheckpointData {
  weights: Record<string, HostTensor>;
  optimizer: Record<string, HostTensor>;
  state: CheckpointStateJson;
}

export interface ManifestFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  step: number;
  fingerprint: string;
  createdAt: string;
  files: ManifestFile[];
}

// ── low-level file helpers ────────────────────────────────────────────────────────────────────────

function ioError(what: string, p: string, e: unknown): CheckpointError {
  const msg = e instanceof Error ? e.message : String(e);
  return new CheckpointError("CKPT_IO", `could not ${what} ${p}: ${msg}; check that the output folder is writable and the disk is not full`, { file: p, cause: e });
}

/** fsyncs a directory so a rename/creation inside it is durable. Platforms that cannot open directories (Windows) are skipped. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL" && code !== "EACCES") throw ioError("sync the folder", dir, e);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes a whole file and fsyncs it (no rename). */
function writeAndSync(p: string, data: Uint8Array | string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(p, "w");
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
  } catch (e) {
    throw ioError("write", p, e);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Replaces a file atomically: writes `data` to a temporary file next to it, fsyncs it, renames it over
 * `filePath`, and fsyncs the folder. Readers see the old content or the new one, never a mix. The
 * folder must exist.
 */
export function writeFileAtomic(filePath: string, data: Uint8Array | string): void {
  const dir = path.dirname(filePath);
  const tmp = path.join(dir, `.${path.basename(filePath)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    writeAndSync(tmp, data);
    try {
      fs.renameSync(tmp, filePath);
    } catch (e) {
      throw ioError("rename into place", filePath, e);
    }
    fsyncDir(dir);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

// ── names and listing ─────────────────────────────────────────────────────────────────────────────

/** Folder name of the checkpoint at a step: ckpt-000000001200. */
export function checkpointName(step: number): string {
  return `ckpt-${String(step).padStart(PAD, "0")}`;
}

/** The step in a checkpoint folder's name, or null when the name is not ckpt-<digits>. */
export function checkpointStep(dir: string): number | null {
  const m = NAME_RE.exec(path.basename(dir));
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Parses and validates manifest.json's content; returns a reason string when invalid. */
function parseManifest(text: string): CheckpointManifest | string {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    return `is not valid JSON (${(e as Error).message})`;
  }
  if (!isPlainObject(m)) return "is not a JSON object";
  if (m["format"] !== CHECKPOINT_FORMAT) return `has format ${JSON.stringify(m["format"])}, not "${CHECKPOINT_FORMAT}"`;
  if (typeof m["version"] !== "number" || !Number.isInteger(m["version"]) || m["version"] < 1) return "has no valid version";
  if (typeof m["step"] !== "number" || !Number.isSafeInteger(m["step"]) || m["step"] < 0) return "has no valid step";
  if (typeof m["fingerprint"] !== "string") return "has no fingerprint";
  if (!Array.isArray(m["files"])) return "has no file list";
  const seen = new Set<string>();
  for (const f of m["files"] as unknown[]) {
    if (!isPlainObject(f) || typeof f["path"] !== "string" || typeof f["bytes"] !== "number" || typeof f["sha256"] !== "string") {
      return "has a file entry without path, bytes or sha256";
    }
    const p = f["path"];
    if (p === "" || p.includes("/") || p.includes("\\") || p === "." || p === ".." || p === MANIFEST_FILE) return `lists ${JSON.stringify(p)}, which is not a plain file name`;
    if (seen.has(p)) return `lists ${p} twice`;
    seen.add(p);
  }
  return m as unknown as CheckpointManifest;
}

/** Reads a checkpoint folder's manifest, or a reason string when it has none or it is invalid. */
function loadManifest(dir: string): CheckpointManifest | string {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, MANIFEST_FILE), "utf8");
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? "is missing (the checkpoint was not completely written)" : `cannot be read (${(e as Error).message})`;
  }
  return parseManifest(text);
}

/** True when a folder looks like a complete checkpoint: valid manifest whose files all exist with the right sizes (sha256 is checked by readCheckpoint only). */
function isComplete(dir: string): boolean {
  const m = loadManifest(dir);
  if (typeof m === "string") return false;
  if (m.step !== checkpointStep(dir)) return false;
  for (const f of m.files) {
    try {
      const st = fs.statSync(path.join(dir, f.path));
      if (!st.isFile() || st.size !== f.bytes) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** Folders named ckpt-<digits> directly under OUT/checkpoints, sorted by step, complete or not. */
function candidateDirs(outDir: string): { dir: string; step: number }[] {
  const root = path.join(outDir, CHECKPOINTS_DIR);
  let names: fs.Dirent[];
  try {
    names = fs.readdirSync(root, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: { dir: string; step: number }[] = [];
  for (const d of names) {
    if (!d.isDirectory()) continue;
    const step = checkpointStep(d.name);
    if (step === null) continue;
    out.push({ dir: path.join(root, d.name), step });
  }
  return out.sort((a, b) => a.step - b.step || (a.dir < b.dir ? -1 : 1));
}

/** Complete checkpoints of a run, oldest (lowest step) first, as folder paths. Temporary and incomplete folders are left out. */
export function listCheckpoints(outDir: string): string[] {
  return candidateDirs(outDir)
    .filter((c) => isComplete(c.dir))
    .map((c) => c.dir);
}

/** Why a ckpt-* folder is not a complete checkpoint, or null when it is one (sha256 is checked by readCheckpoint only). */
function incompleteReason(dir: string): string | null {
  const m = loadManifest(dir);
  if (typeof m === "string") return `${MANIFEST_FILE} ${m}`;
  if (m.step !== checkpointStep(dir)) return `${MANIFEST_FILE} records step ${m.step}, not the folder's`;
  for (const f of m.files) {
    try {
      const st = fs.statSync(path.join(dir, f.path));
      if (!st.isFile() || st.size !== f.bytes) return `${f.path} is ${st.size} bytes but the manifest records ${f.bytes}`;
    } catch {
      return `${f.path} is missing`;
    }
  }
  return null;
}

/**
 * ckpt-* folders newer than the newest complete checkpoint that are not complete (truncated, manifest
 * unreadable), newest first, with the reason: what latestCheckpoint passed over. Writes are atomic, so
 * such a folder is damage, not a checkpoint in progress; callers warn about it by name.
 */
export function damagedCheckpoints(outDir: string): { dir: string; why: string }[] {
  const latest = latestCheckpoint(outDir);
  const after = latest === null ? -1 : checkpointStep(latest)!;
  const out: { dir: string; why: string }[] = [];
  for (const c of candidateDirs(outDir)) {
    if (c.step <= after) continue;
    const why = incompleteReason(c.dir);
    if (why !== null) out.push({ dir: c.dir, why });
  }
  return out.reverse();
}

/** The newest complete checkpoint of a run, or null when there is none. */
export function latestCheckpoint(outDir: string): string | null {
  const all = listCheckpoints(outDir);
  return all.length ? all[all.length - 1]! : null;
}

// ── writing ───────────────────────────────────────────────────────────────────────────────────────

function checkState(state: CheckpointStateJson): void {
  if (!isPlainObject(state)) throw new CheckpointError("CKPT_ARGUMENT", "checkpoint state must be an object");
  if (typeof state.step !== "number" || !Number.isSafeInteger(state.step) || state.step < 0) {
    throw new CheckpointError("CKPT_ARGUMENT", `checkpoint state.step is ${JSON.stringify(state.step)}; it must be a non-negative integer`);
  }
  if (typeof state.epoch !== "number" || !Number.isFinite(state.epoch)) {
    throw new CheckpointError("CKPT_ARGUMENT", `checkpoint state.epoch is ${JSON.stringify(state.epoch)}; it must be a finite number`);
  }
  if (typeof state.fingerprint !== "string" || state.fingerprint === "") {
    throw new CheckpointError("CKPT_ARGUMENT", "checkpoint state.fingerprint must be a non-empty string (the model's fingerprint)");
  }
}

/** Is the process that wrote a leftover temporary folder gone? (Unknown → treat as alive.) */
function writerGone(name: string, prefix: string): boolean {
  const pid = Number(name.slice(prefix.length).split("-")[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** Removes temporary folders left by writers that crashed (never those of a live process). */
function removeLeftovers(root: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const prefix = name.startsWith(TMP_PREFIX) ? TMP_PREFIX : name.startsWith(TRASH_PREFIX) ? TRASH_PREFIX : null;
    if (prefix && writerGone(name, prefix)) fs.rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

/** Deletes a checkpoint folder: first renamed out of the ckpt-* namespace (so it disappears at once), then removed. */
function removeCheckpointDir(root: string, dir: string): void {
  const trash = path.join(root, `${TRASH_PREFIX}${process.pid}-${randomBytes(4).toString("hex")}`);
  fs.renameSync(dir, trash);
  fs.rmSync(trash, { recursive: true, force: true });
}

/**
 * Writes a checkpoint atomically to OUT/checkpoints/ckpt-<step>/ and prunes older ones to the newest
 * `keep` (the one just written is always kept). A checkpoint already at the same step is replaced.
 * Returns the checkpoint folder. Throws CheckpointError (CKPT_ARGUMENT for bad input, CKPT_IO when the
 * file system fails; then nothing is left half-written in the ckpt-* namespace).
 */
export function writeCheckpoint(outDir: string, ckpt: CheckpointData, opts: { keep: number }): string {
  const keep = opts?.keep;
  if (typeof keep !== "number" || !(keep === Infinity || (Number.isSafeInteger(keep) && keep >= 1))) {
    throw new CheckpointError("CKPT_ARGUMENT", `keep is ${JSON.stringify(keep)}; it must be a positive integer (or Infinity to keep every checkpoint)`);
  }
  if (!isPlainObject(ckpt)) throw new CheckpointError("CKPT_ARGUMENT", "writeCheckpoint needs { weights, optimizer, state }");
  checkState(ckpt.state);
  const state = ckpt.state;

  // Serialize everything before touching the disk, so bad input leaves no trace.
  const files: { path: string; bytes: Uint8Array }[] = [];
  try {
    files.push({ path: WEIGHTS_FILE, bytes: encodeSafetensors(ckpt.weights ?? {}, { format: "nnetc", kind: "weights", step: String(state.step) }) });
    files.push({ path: OPTIMIZER_FILE, bytes: encodeSafetensors(ckpt.optimizer ?? {}, { format: "nnetc", kind: "optimizer", step: String(state.step) }) });
  } catch (e) {
    if (e instanceof CheckpointError) throw new CheckpointError("CKPT_ARGUMENT", `cannot write checkpoint: ${e.message}`, { cause: e });
    throw e;
  }
  let stateText: string;
  try {
    stateText = JSON.stringify(state, null, 2) + "\n";
  } catch (e) {
    throw new CheckpointError("CKPT_ARGUMENT", `checkpoint state is not JSON-serializable (${(e as Error).message}); keep state to plain objects, arrays, strings, numbers and booleans`, { cause: e });
  }
  files.push({ path: STATE_FILE, bytes: Buffer.from(stateText, "utf8") });
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step: state.step,
    fingerprint: state.fingerprint,
    createdAt: new Date().toISOString(),
    files: files.map((f) => ({ path: f.path, bytes: f.bytes.length, sha256: sha256(f.bytes) })),
  };

  const root = path.join(outDir, CHECKPOINTS_DIR);
  try {
    fs.mkdirSync(root, { recursive: true });
  } catch (e) {
    throw ioError("create the folder", root, e);
  }
  removeLeftovers(root);

  const tmp = path.join(root, `${TMP_PREFIX}${process.pid}-${randomBytes(4).toString("hex")}`);
  const final = path.join(root, checkpointName(state.step));
  try {
    fs.mkdirSync(tmp);
    for (const f of files) writeAndSync(path.join(tmp, f.path), f.bytes);
    writeAndSync(path.join(tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + "\n");
    fsyncDir(tmp);
    if (fs.existsSync(final)) {
      // Same step written again (e.g. after a resume): move the old one aside, then swap in the new one.
      // An old folder that is not a complete checkpoint is not ours to delete: it is kept, renamed.
      const complete = isComplete(final);
      const aside = complete
        ? path.join(root, `${TRASH_PREFIX}${process.pid}-${randomBytes(4).toString("hex")}`)
        : `${final}.replaced-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      fs.renameSync(final, aside);
      fs.renameSync(tmp, final);
      fsyncDir(root);
      if (complete) fs.rmSync(aside, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, final);
      fsyncDir(root);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof CheckpointError) throw e;
    throw ioError("write the checkpoint", final, e);
  }

  // Prune: keep the one just written and the newest keep-1 others.
  if (keep !== Infinity) {
    const others = listCheckpoints(outDir).filter((d) => path.resolve(d) !== path.resolve(final));
    const excess = others.length - (keep - 1);
    for (const d of others.slice(0, Math.max(0, excess))) {
      try {
        removeCheckpointDir(root, d);
      } catch {
        // A checkpoint that cannot be removed is left in place; the next write tries again.
      }
    }
    fsyncDir(root);
  }
  return final;
}

// ── reading ───────────────────────────────────────────────────────────────────────────────────────

/** The advice line for a damaged checkpoint: which earlier checkpoint to use instead. */
function fallbackAdvice(dir: string): string {
  const step = checkpointStep(dir);
  const outDir = path.dirname(path.dirname(path.resolve(dir)));
  const earlier = step === null ? [] : listCheckpoints(outDir).filter((d) => (checkpointStep(d) ?? Infinity) < step);
  const prev = earlier[earlier.length - 1];
  if (prev) return `resume from the earlier checkpoint ${prev} instead (move ${path.basename(dir)} aside so it is not picked again)`;
  return "there is no earlier checkpoint to fall back to; start the run again from scratch";
}

function corrupt(code: "CKPT_CORRUPT" | "CKPT_MISSING_FILE" | "CKPT_MANIFEST" | "CKPT_STATE", dir: string, file: string, what: string, cause?: unknown): CheckpointError {
  return new CheckpointError(code, `checkpoint ${dir} is corrupt: ${file} ${what}; ${fallbackAdvice(dir)}`, { file: path.join(dir, file), cause });
}

function checkStateJson(dir: string, s: unknown): CheckpointStateJson {
  if (!isPlainObject(s)) throw corrupt("CKPT_STATE", dir, STATE_FILE, "is not a JSON object");
  if (typeof s["step"] !== "number" || !Number.isSafeInteger(s["step"]) || s["step"] < 0) throw corrupt("CKPT_STATE", dir, STATE_FILE, "has no valid step");
  if (typeof s["epoch"] !== "number") throw corrupt("CKPT_STATE", dir, STATE_FILE, "has no valid epoch");
  if (typeof s["fingerprint"] !== "string") throw corrupt("CKPT_STATE", dir, STATE_FILE, "has no fingerprint");
  return s as unknown as CheckpointStateJson;
}

/**
 * Reads and verifies a checkpoint folder: the manifest (format, version), every listed file (present,
 * size, sha256), the safetensors files, state.json, and — when `opts.fingerprint` is given — that the
 * checkpoint was written for that model. Throws CheckpointError naming the file at fault.
 */
export function readCheckpoint(dir: string, opts?: { fingerprint?: string }): CheckpointData {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new CheckpointError("CKPT_MANIFEST", `checkpoint ${dir} does not exist; pass a folder listed by listCheckpoints (OUT/checkpoints/ckpt-…)`, { file: dir });
  }
  if (!st.isDirectory()) throw new CheckpointError("CKPT_MANIFEST", `checkpoint ${dir} is not a folder; pass a checkpoint folder (OUT/checkpoints/ckpt-…)`, { file: dir });

  const manifest = loadManifest(dir);
  if (typeof manifest === "string") {
    throw corrupt("CKPT_MANIFEST", dir, MANIFEST_FILE, manifest);
  }
  if (manifest.version > CHECKPOINT_VERSION) {
    throw new CheckpointError(
      "CKPT_VERSION",
      `checkpoint ${dir} has format version ${manifest.version}, but this nnetc reads version ${CHECKPOINT_VERSION} and older; upgrade nnetc to resume from it`,
      { file: path.join(dir, MANIFEST_FILE) },
    );
  }
  for (const req of REQUIRED_FILES) {
    if (!manifest.files.some((f) => f.path === req)) throw corrupt("CKPT_MANIFEST", dir, MANIFEST_FILE, `does not list ${req}`);
  }

  const contents = new Map<string, Uint8Array>();
  for (const f of manifest.files) {
    const p = path.join(dir, f.path);
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw corrupt("CKPT_MISSING_FILE", dir, f.path, "is missing", e);
      throw corrupt("CKPT_CORRUPT", dir, f.path, `cannot be read (${(e as Error).message})`, e);
    }
    if (bytes.length !== f.bytes) throw corrupt("CKPT_CORRUPT", dir, f.path, `is ${bytes.length} bytes but the manifest records ${f.bytes}`);
    const sum = sha256(bytes);
    if (sum !== f.sha256) throw corrupt("CKPT_CORRUPT", dir, f.path, `has sha256 ${sum} but the manifest records ${f.sha256}`);
    contents.set(f.path, bytes);
  }

  let state: CheckpointStateJson;
  try {
    state = checkStateJson(dir, JSON.parse(Buffer.from(contents.get(STATE_FILE)!).toString("utf8")));
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw corrupt("CKPT_STATE", dir, STATE_FILE, `is not valid JSON (${(e as Error).message})`, e);
  }
  if (state.step !== manifest.step) {
    throw corrupt("CKPT_STATE", dir, STATE_FILE, `has step ${state.step} but the manifest records ${manifest.step}`);
  }
  if (state.fingerprint !== manifest.fingerprint) {
    throw corrupt("CKPT_STATE", dir, STATE_FILE, `has fingerprint ${state.fingerprint} but the manifest records ${manifest.fingerprint}`);
  }
  if (opts?.fingerprint !== undefined && state.fingerprint !== opts.fingerprint) {
    throw new CheckpointError(
      "CKPT_FINGERPRINT",
      `checkpoint was written for a different model: ${dir} has model fingerprint ${state.fingerprint}, but the current model's is ${opts.fingerprint} ` +
        `(the model definition changed since the checkpoint was saved). Restore the original model file to resume, or start a fresh run in a new output folder`,
      { file: path.join(dir, STATE_FILE) },
    );
  }

  const decode = (file: string) => {
    try {
      return decodeSafetensors(contents.get(file)!).tensors;
    } catch (e) {
      if (e instanceof CheckpointError) throw corrupt("CKPT_CORRUPT", dir, file, `is not a valid safetensors file (${e.message})`, e);
      throw e;
    }
  };
  return { weights: decode(WEIGHTS_FILE), optimizer: decode(OPTIMIZER_FILE), state };
}

// ── single safetensors files ──────────────────────────────────────────────────────────────────────

/** Writes tensors to a .safetensors file atomically (see writeFileAtomic). Throws CheckpointError (ST_ENCODE, CKPT_IO). */
export function saveSafetensors(filePath: string, tensors: Record<string, HostTensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(filePath, encodeSafetensors(tensors, metadata));
}

/** Reads and validates a .safetensors file. Throws CheckpointError whose message starts with the file path. */
export function loadSafetensors(filePath: string): DecodedSafetensors {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(filePath);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    throw new CheckpointError("CKPT_MISSING_FILE", `${filePath} ${missing ? "does not exist" : `cannot be read (${(e as Error).message})`}; check the path`, { file: filePath, cause: e });
  }
  try {
    return decodeSafetensors(bytes);
  } catch (e) {
    if (e instanceof CheckpointError) throw new CheckpointError(e.code, `${filePath}: ${e.message}`, { file: filePath, cause: e });
    throw e;
  }
}
