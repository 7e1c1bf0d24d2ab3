// Raw files as samples (nnetc predict --input shoe.png, review.txt, a folder): each file becomes the value of
// the column the model's input fields read, in the form the dataset's source gives that column (an image
// decoded and resized as image_folder does, grey at the IDX file's size; a text file's text), and then goes
// through the dataset's own compiled preprocessing steps (steps.ts) with the run's saved vocabularies: the
// numbers the model sees are those training gave it for the same file.
import type { Dirent } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import * as path from "node:path";
import type { CallSpec, DatasetSpec, FieldSpec } from "../spec.js";
import { type Column, storedColumn, type Table } from "./columns.js";
import { DataError } from "./errors.js";
import { AUDIO_EXTENSIONS, AUDIO_LIMITS, decodeWav, fitClip, type Align } from "./audio.js";
import { decodeImage, IMAGE_EXTENSIONS, IMAGE_LIMITS, resizeRgb } from "./image.js";
import { TableSplit, type Split } from "./split.js";
import { compileField, STEP_KERNELS, type FieldPipeline } from "./steps.js";
import type { Vocabularies } from "./tokenize.js";

/** At most this many files in one prediction (a folder's included). */
export const RAW_LIMITS = { files: 10_000, textBytes: 16 * 2 ** 20, totalTextBytes: 256 * 2 ** 20 };

/** What a column's raw value is: `shape` the per-sample shape of a numeric column, `encoding` a text file's. */
export interface RawTarget {
  kind: RawKind;
  column: string;
  shape?: number[];
  encoding?: "utf8" | "latin1";
  /** Audio: the rate clips are resampled to (null: the file's own), and where a clip sits in its length. */
  rate?: number | null;
  align?: Align;
}

/**
 * THE table of raw file kinds: the extensions a folder is filtered by (null: every file), and how one file
 * becomes a column value (images, WAV clips as audio_folder reads them, text files).
 */
export const RAW_KINDS = {
  image: {
    what: `images (${IMAGE_EXTENSIONS.join(", ")})`,
    extensions: IMAGE_EXTENSIONS as readonly string[] | null,
    async read(file: string, t: RawTarget): Promise<Uint8Array> {
      const shape = t.shape!;
      const img = await decodeImage(await readBounded(file, IMAGE_LIMITS.bytes), file);
      const [h, w] = shape as [number, number];
      const channels = shape.length === 3 ? shape[2]! : 1;
      if (h !== w || (channels !== 1 && channels !== 3)) throw new DataError(`${file}: the dataset's column "${t.column}" holds [${shape.join(", ")}] values, not square grey or RGB images`);
      const rgb = new Uint8Array(h * w * 3);
      resizeRgb(img, h, rgb, 0);
      if (channels === 3) return rgb;
      // grey columns (IDX): ITU-R BT.601 luma of the resized RGB
      const grey = new Uint8Array(h * w);
      for (let i = 0; i < grey.length; i++) grey[i] = Math.round(0.299 * rgb[3 * i]! + 0.587 * rgb[3 * i + 1]! + 0.114 * rgb[3 * i + 2]!);
      return grey;
    },
  },
  audio: {
    what: `WAV files (${AUDIO_EXTENSIONS.join(", ")})`,
    extensions: AUDIO_EXTENSIONS as readonly string[] | null,
    async read(file: string, t: RawTarget): Promise<Float32Array> {
      // As audio_folder reads a clip: mono, at the source's rate, padded or cut to the column's length.
      const clip = decodeWav(await readBounded(file, AUDIO_LIMITS.bytes), file);
      const out = new Float32Array(t.shape![0]!);
      fitClip(clip, t.rate ?? clip.rate, out.length, t.align ?? "start", out, 0);
      return out;
    },
  },
  text: {
    what: "files",
    extensions: null as readonly string[] | null,
    async read(file: string, t: RawTarget): Promise<string> {
      return Buffer.from(await readBounded(file, RAW_LIMITS.textBytes)).toString(t.encoding ?? "utf8");
    },
  },
} as const;
export type RawKind = keyof typeof RAW_KINDS;

/**
 * Per data source, the kind of raw file its sample column takes and that column's shape (when the source call
 * says it; otherwise the run's saved column shapes). A source not here takes text when the fields tokenize.
 */
const RAW_SOURCES: Record<string, (call: CallSpec) => { kind: RawKind; shape?: number[]; encoding?: "utf8" | "latin1"; rate?: number | null; align?: Align }> = {
  image_folder: (c) => ({ kind: "image", shape: [Number(c.args.size), Number(c.args.size), 3] }),
  image_mask_folder: (c) => ({ kind: "image", shape: [Number(c.args.size), Number(c.args.size), 3] }),
  idx: () => ({ kind: "image" }),
  audio_folder: (c) => ({ kind: "audio", rate: typeof c.args.rate === "number" ? c.args.rate : null, align: c.args.align === "center" ? "center" : "start" }),
  text_folder: (c) => ({ kind: "text", encoding: c.args.encoding === "latin1" ? "latin1" : "utf8" }),
  spam_assassin: () => ({ kind: "text" }),
};

async function readBounded(file: string, limit: number): Promise<Uint8Array> {
  let st;
  try {
    st = await stat(file);
  } catch (e) {
    throw new DataError(`--input ${file}: no such file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new DataError(`--input ${file}: not a file`);
  if (st.size > limit) throw new DataError(`--input ${file}: ${(st.size / 2 ** 20).toFixed(1)} MB is over the ${limit / 2 ** 20} MB a file may take`);
  return new Uint8Array(await readFile(file));
}

/**
 * Which column raw files fill for the fields `names` of `ds`, and as what. Every field must read one column
 * (the tokenized text and its attention mask both read "text").
 */
export function rawTarget(ds: DatasetSpec, names: readonly string[], savedColumns: Record<string, number[]> | undefined, fallbackShape: (field: FieldSpec) => number[] | undefined): RawTarget {
  const fields = names.map((n) => {
    const f = ds.fields.find((x) => x.name === n);
    if (!f) throw new DataError(`the model's input "${n}" is no field of dataset "${ds.name}", so raw files cannot be prepared for it; give --input FILE.json`);
    return f;
  });
  const columns = [...new Set(fields.map((f) => f.column))];
  if (columns.length !== 1) throw new DataError(`the model's inputs read ${columns.length} columns of dataset "${ds.name}" (${columns.join(", ")}): a raw file gives one; give --input FILE.json`);
  const column = columns[0]!;
  const src = ds.source;
  const bySource = src && Object.hasOwn(RAW_SOURCES, src.fn) ? RAW_SOURCES[src.fn]!(src) : null;
  const textSteps = fields.every((f) => f.steps.length > 0 && STEP_KERNELS[f.steps[0]!.fn]?.input === "text");
  const kind = bySource?.kind ?? (textSteps ? "text" : null);
  if (!kind) throw new DataError(`dataset "${ds.name}" reads its samples from ${src ? `${src.fn}()` : "no source"}, whose values nnetc cannot make from a file; give --input FILE.json`);
  const shape = kind === "image" ? (savedColumns?.[column] ?? bySource?.shape ?? fallbackShape(fields[0]!)) : kind === "audio" ? savedColumns?.[column] : undefined;
  if ((kind === "image" || kind === "audio") && !shape) throw new DataError(`the run does not record the size of column "${column}" (trained by an older nnetc); give --input FILE.json`);
  return { kind, column, ...(shape ? { shape } : {}), ...(bySource?.encoding ? { encoding: bySource.encoding } : {}), ...(kind === "audio" ? { rate: bySource?.rate ?? null, align: bySource?.align ?? "start" } : {}) };
}

async function listFiles(dir: string, extensions: readonly string[] | null): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new DataError(`--input ${dir}: cannot list the folder (${(e as Error).message})`);
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const p = path.join(dir, e.name);
    const isFile = e.isFile() || (e.isSymbolicLink() && (await stat(p).catch(() => null))?.isFile());
    if (isFile && (!extensions || extensions.includes(path.extname(e.name).toLowerCase()))) out.push(p);
  }
  return out.sort();
}

/** The files of `args` (files, and folders' files of the kind, sorted), bounded. */
export async function rawFiles(args: readonly string[], kind: RawKind): Promise<string[]> {
  const k = RAW_KINDS[kind];
  const files: string[] = [];
  for (const a of args) {
    const st = await stat(a).catch(() => null);
    if (!st) throw new DataError(`--input ${a}: no such file or folder`);
    if (st.isDirectory()) {
      const got = await listFiles(a, k.extensions);
      if (!got.length) throw new DataError(`--input ${a}: the folder holds no ${k.what}`);
      files.push(...got);
    } else files.push(a);
    if (files.length > RAW_LIMITS.files) throw new DataError(`--input: over ${RAW_LIMITS.files.toLocaleString("en-US")} files; predict fewer at a time`);
  }
  return files;
}

/**
 * The samples of raw `files` for the fields `names` of `ds`, preprocessed by the dataset's steps with the
 * run's saved vocabularies (a field that tokenizes or vectorizes needs the run's: ids must mean what they meant).
 */
export async function rawSplit(ds: DatasetSpec, names: readonly string[], files: readonly string[], target: RawTarget, vocab: Vocabularies | undefined): Promise<Split> {
  const kind = RAW_KINDS[target.kind];
  let column: Column;
  if (target.kind === "text") {
    const data: string[] = [];
    let total = 0;
    for (const f of files) {
      const text = await (kind.read as (f: string, t: RawTarget) => Promise<string>)(f, target);
      total += text.length;
      if (total > RAW_LIMITS.totalTextBytes) throw new DataError(`--input: the text files up to ${f} hold over ${RAW_LIMITS.totalTextBytes / 2 ** 20} MB of text; predict fewer at a time`);
      data.push(text);
    }
    column = { kind: "text", name: target.column, data };
  } else {
    const per = target.shape!.reduce((a, b) => a * b, 1);
    const data = target.kind === "audio" ? new Float32Array(files.length * per) : new Uint8Array(files.length * per);
    for (let i = 0; i < files.length; i++) data.set(await (kind.read as (f: string, t: RawTarget) => Promise<Uint8Array | Float32Array>)(files[i]!, target), i * per);
    column = storedColumn(target.column, data, target.shape!);
  }
  const table: Table = { size: files.length, origin: "--input", columns: new Map([[target.column, column]]), classes: null };
  const pipes = new Map<string, { pipeline: FieldPipeline; column: Column }>();
  for (const n of names) {
    const field = ds.fields.find((x) => x.name === n)!;
    const vocabFor = () => {
      const v = vocab?.[field.name];
      if (!v) throw new DataError(`field "${field.name}" needs the vocabulary it was trained with, and the run saved none; retrain with this nnetc, or give --input FILE.json of ids`);
      return v;
    };
    pipes.set(n, { pipeline: compileField(field, column, vocabFor, (c) => table.columns.get(c)), column });
  }
  return new TableSplit(table, null, pipes);
}
