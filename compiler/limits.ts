// THE table of resource limits: every bound on what a file can make nnetc use (a .nnet source and its imports,
// a data file, gzip inflation, an image, an audio clip), with its default, the environment variable that raises
// it and the numbered diagnostic that refuses an input over it. A leaf module (it imports nothing, and reads
// process.env only where there is one): the compiler's hosts (CLI, language server, loader hooks) and the data
// layer of nnetc/runtime both read it, and spec/language.md's reference table is generated from it (docs.ts).

export interface LimitDef {
  /** The diagnostic (compiler/diagnostics.ts) that refuses an input over the limit. */
  code: string;
  /** The environment variable that sets it, in `unit`s. */
  env: string;
  /** The default, in `unit`s. */
  default: number;
  unit: "MB" | "megapixels" | "s";
  /** What it bounds, for messages and the reference table. */
  what: string;
}

export const LIMITS = {
  sourceBytes: { code: "NN7040", env: "NNETC_MAX_SOURCE_MB", default: 4, unit: "MB", what: "a .nnet file: the one checked or compiled, and each file it imports" },
  dataFileBytes: { code: "NN7042", env: "NNETC_MAX_DATA_FILE_MB", default: 1024, unit: "MB", what: "one data file as read (CSV, JSONL, text, IDX), after gzip decompression" },
  datasetBytes: { code: "NN7043", env: "NNETC_MAX_DATASET_MB", default: 4096, unit: "MB", what: "the data files one dataset source reads, together, after decompression" },
  imageBytes: { code: "NN7044", env: "NNETC_MAX_IMAGE_MB", default: 64, unit: "MB", what: "one image file (PNG, JPEG, …)" },
  imagePixels: { code: "NN7045", env: "NNETC_MAX_IMAGE_MPIXELS", default: 50, unit: "megapixels", what: "the pixels one image declares, refused before it is decoded" },
  audioBytes: { code: "NN7046", env: "NNETC_MAX_AUDIO_MB", default: 64, unit: "MB", what: "one audio (WAV) file" },
  audioSeconds: { code: "NN7047", env: "NNETC_MAX_AUDIO_SECONDS", default: 600, unit: "s", what: "the length one audio clip declares, refused before it is decoded" },
} as const satisfies Record<string, LimitDef>;

export type LimitKey = keyof typeof LIMITS;

/** Diagnostic of a file that is not a regular file (a device such as /dev/zero, a FIFO, a directory). */
export const NOT_REGULAR_CODE = "NN7041";

const SCALE: Record<LimitDef["unit"], number> = { MB: 2 ** 20, megapixels: 1e6, s: 1 };

function env(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env?.[name];
}

/**
 * The limit in base units (bytes, pixels, seconds): the environment variable when it is a positive number,
 * else the default. Read at each call, so a test (or a long-lived language server) sees a changed environment.
 */
export function limit(key: LimitKey): number {
  const d: LimitDef = LIMITS[key];
  const v = Number(env(d.env));
  const x = (Number.isFinite(v) && v > 0 ? v : d.default) * SCALE[d.unit];
  return d.unit === "s" ? x : Math.round(x);
}

/** "12.5 MB", "61.2 megapixels", "700 s": an amount in the limit's unit. */
export function inUnit(key: LimitKey, amount: number): string {
  const d: LimitDef = LIMITS[key];
  const v = amount / SCALE[d.unit];
  return `${Number.isInteger(v) ? v : v >= 10 ? v.toFixed(1) : Number(v.toPrecision(3))} ${d.unit}`;
}

/**
 * Message and hint of the diagnostic refusing `file` over limit `key`; `amount` is how much it has (or declares),
 * in base units, or the phrase that leads to "the limit of …" ("it holds more than") where reading stopped at the limit.
 */
export function overLimit(key: LimitKey, file: string, amount: number | string): { message: string; hint: string } {
  const d: LimitDef = LIMITS[key];
  const max = limit(key);
  return {
    message: typeof amount === "number" ? `${file}: ${inUnit(key, amount)} is over the limit of ${inUnit(key, max)} for ${d.what}` : `${file}: ${amount} the limit of ${inUnit(key, max)} for ${d.what}`,
    hint: `if the file is what you meant, raise the limit: ${d.env}=${Math.ceil((typeof amount === "number" ? amount : max * 2) / SCALE[d.unit])} or more (in ${d.unit}; default ${d.default})`,
  };
}

/** Message and hint of NN7041: `file` is a `kind` (directory, device, FIFO, socket), not a regular file. */
export function notRegular(file: string, kind: string, role: string): { message: string; hint: string } {
  return { message: `${file} is a ${kind}, not a regular file, and cannot be read as ${role}`, hint: "name a regular file (devices such as /dev/zero, FIFOs and directories are refused: they have no size to bound)" };
}

/** What a stat result is, for NN7041; null for a regular file. */
export function fileKind(st: { isFile(): boolean; isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string | null {
  if (st.isFile()) return null;
  return st.isDirectory() ? "directory" : st.isFIFO() ? "FIFO (named pipe)" : st.isSocket() ? "socket" : st.isCharacterDevice() || st.isBlockDevice() ? "device" : "special file";
}

/** The one-line text a runtime error (DataError) carries: "NN7042: message; hint". */
export function limitText(code: string, t: { message: string; hint: string }): string {
  return `${code}: ${t.message}; ${t.hint}`;
}

/** Diagnostic of a path (import, data file or folder, tokenizer file, init weights) outside the project root (compiler/root.ts). */
export const OUTSIDE_ROOT_CODE = "NN7050";
/** Diagnostic of an import of a file whose name does not end in .nnet (refused unread: its text would be quoted). */
export const NOT_NNET_CODE = "NN7051";

/** The virtual file systems whose files claim to be regular files of size 0 (/proc/self/environ): their kind, or null. */
export function specialFileKind(realPath: string): string | null {
  const m = /^\/(proc|sys)(\/|$)/.exec(realPath);
  return m ? `virtual file of /${m[1]}` : null;
}

const ORIGIN: Record<string, string> = {
  flag: "given by --root",
  env: "given by NNETC_ROOT",
  workspace: "the editor's workspace folder",
  marker: "the nearest folder above the .nnet file holding package.json or .nnetroot",
  file: "the .nnet file's folder: no folder above it holds package.json or .nnetroot",
};

/** Message and hint of NN7050: `written` (as the .nnet file wrote it) resolves to `real`, outside the project root. */
export function outsideRoot(written: string, real: string, root: string, origin: string): { message: string; hint: string } {
  const where = real === written ? "" : ` resolves to ${real}, which`;
  return {
    message: `"${written}"${where} is outside the project root ${root} (${ORIGIN[origin] ?? origin}); nnetc reads only files inside it`,
    hint: "move or copy the file into the project (a symlink that leads outside counts as outside), or widen the root: --root DIR or NNETC_ROOT=DIR (a folder holding both), or put a .nnetroot file in a folder above both",
  };
}

/** Message and hint of NN7051: an import of `written`, a file whose name does not end in .nnet. */
export function notNnet(written: string): { message: string; hint: string } {
  return { message: `cannot import "${written}": only .nnet files can be imported, and it was not read`, hint: "import a file whose name ends in .nnet" };
}
