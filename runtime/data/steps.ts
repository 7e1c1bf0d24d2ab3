// Preprocessing: a field is a column piped through steps. Each step is a kernel of STEP_KERNELS (one entry
// per name of compiler/plan/tables.ts's PREPROCESS, which holds its signature and whether it is random);
// compileField checks the chain once against the column's per-sample type and the field's declared type,
// then runs it on the requested samples only, at batch time. Random steps (augmentation) draw from a hash of
// (seed, epoch, source row, step, k) — no state, so an epoch's draws are the same after --resume and whatever
// the batch — and only in a training epoch's view of a split (Split.augmented): evaluation, validation,
// prediction and the test split see them pass the samples through (random_crop takes its centre).
// mask_tokens draws in a training epoch's view too (dynamic masking), and elsewhere masks with one fixed draw.
import { guard, onPlugins, PluginError } from "../../compiler/plugin/api.js";
import type { AttrValue, DType } from "../../compiler/ir/types.js";
import type { CallSpec, FieldSpec } from "../spec.js";
import { type Column, prod } from "./columns.js";
import { ownNamesOnly } from "../../compiler/own.js";
import { parseNumber } from "./csv.js";
import { cellText, DataError } from "./errors.js";
import { dctMatrix, MAX_CLIP, melWeights, nextPow2, resampledLength, resampleSinc, Stft, stftFrames } from "./dsp.js";
import { encodeText, PAD_ID, padId, UNK_ID, type Vocabulary } from "./tokenize.js";
import { vectorizeText } from "./vectorize.js";
import { encodeWordPiecePair, specialId } from "./wordpiece.js";

export type OutDType = "float32" | "int32";

export interface FieldInfo {
  /** The element type of batches (f16/f32/f64 → float32; i8/i32/i64/bool → int32). */
  dtype: OutDType;
  /** Per-sample shape after preprocessing, as declared (symbolic dimensions resolved). */
  shape: number[];
  /** The field's declared element type. */
  declared: DType;
  column: string;
}

export interface Tensor {
  dtype: OutDType;
  /** [batch, ...per-sample shape] */
  shape: number[];
  data: Float32Array | Int32Array;
}

type VType = { kind: "num"; int: boolean; shape: number[] } | { kind: "text" };
type NumVal = { kind: "num"; int: boolean; shape: number[]; n: number; data: Float32Array | Int32Array };
type Val = NumVal | { kind: "text"; n: number; data: string[] };

export interface FieldPipeline {
  info: FieldInfo;
  /** Whether a step is random (augmentation): a training epoch's samples differ from the plain ones. */
  random: boolean;
  /** Gather and preprocess the given rows of the column (with a training epoch's draws, or none). */
  run(column: Column, rows: ArrayLike<number>, draw?: Draw | null): Tensor;
}

export function outDType(d: DType): OutDType {
  return d === "f16" || d === "f32" || d === "f64" ? "float32" : "int32";
}

const fmt = (s: readonly (number | string)[]) => `[${s.join(", ")}]`;
const INT_RANGE: Partial<Record<DType, [number, number]>> = { i8: [-128, 127], i32: [-2147483648, 2147483647], i64: [-2147483648, 2147483647] };

const f16buf = new Float32Array(1);
const f16bits = new Uint32Array(f16buf.buffer);
/** Round to the nearest half-precision value (kept in a float32). */
export function roundF16(x: number): number {
  f16buf[0] = x;
  const b = f16bits[0]!;
  const exp = (b >>> 23) & 0xff;
  if (exp === 0xff) return f16buf[0]!;
  const a = Math.abs(x);
  if (a >= 65520) return x > 0 ? Infinity : -Infinity;
  if (a < 2 ** -24 / 2) return x < 0 ? -0 : 0;
  // Quantum: 2^(e-10) for normals, 2^-24 for subnormals; round half to even.
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  const q = 2 ** (e - 10);
  const m = a / q;
  let r = Math.round(m);
  if (r - m === 0.5 && r % 2 === 1) r -= 1;
  return Math.sign(x) * r * q;
}

/** A training epoch's draws: random steps are active only with one. */
export interface Draw {
  seed: number;
  epoch: number;
}

interface ApplyCtx {
  /** The samples' rows in their source (mask_tokens and the random steps draw from them). */
  rows: ArrayLike<number>;
  /** The epoch's draws in training, else null. */
  draw: Draw | null;
}

interface Stage {
  out: VType;
  apply(v: Val, ctx: ApplyCtx): Val;
  /** tokenize: the vocabulary its ids come from (attention_mask reads its padding id). */
  vocab?: Vocabulary;
}

function num(v: Val): NumVal {
  return v as NumVal;
}

function args(c: CallSpec): Record<string, AttrValue> {
  return c.args ?? {};
}

function numArg(c: CallSpec, name: string, dflt: number | null, field: string): number {
  const v = args(c)[name];
  if (v === undefined || v === null) {
    if (dflt !== null) return dflt;
    throw new DataError(`field "${field}": ${c.fn} needs a ${name} argument`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw new DataError(`field "${field}": ${c.fn}'s ${name} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Check a field's steps against its column and declared type; `vocabFor` supplies the vocabulary of a
 * tokenize step (built from the training split, or reused).
 */
export function compileField(field: FieldSpec, column: Column, vocabFor: (step: CallSpec) => Vocabulary, columnOf: (name: string) => Column | undefined = () => undefined): FieldPipeline {
  const name = field.name;
  const err = (msg: string) => new DataError(`field "${name}": ${msg}`);
  let t: VType = column.kind === "text" ? { kind: "text" } : { kind: "num", int: column.int, shape: [...column.shape] };
  const stages: Stage[] = [];
  let vocab: Vocabulary | null = null;
  let random = false;
  for (const [index, step] of field.steps.entries()) {
    const kernel = Object.hasOwn(STEP_KERNELS, step.fn) ? STEP_KERNELS[step.fn] : undefined;
    if (!kernel) throw err(`unknown preprocessing step ${step.fn}`);
    if (kernel.input === "text" && t.kind !== "text") throw err(`${step.fn} needs text, but its input is numbers of shape ${fmt(t.shape)}`);
    if (kernel.input === "num" && t.kind === "text") {
      if (column.kind === "text") notNumbers(column, name, step.fn);
      const eg = column.kind === "text" && column.data.length ? ` (e.g. ${JSON.stringify(column.data[0]!.slice(0, 40))})` : "";
      throw err(`${step.fn} needs numbers, but column "${column.name}" holds text${eg}; text needs tokenize(vocab: …, max_len: …) first`);
    }
    // A random step's draws are salted by its place in the chain, or by its group: steps of one group (and kind)
    // draw alike in every field, so an image and its mask flip together.
    const group = args(step).group;
    const salt = typeof group === "string" ? (0x40000000 | fnv1a(`${group}/${step.fn}`)) >>> 0 : index;
    const s = kernel.compile({ step, t, column, field: name, err, vocabFor, vocabBefore: vocab, columnOf, index: salt });
    random ||= kernel.random === true || kernel.redrawn?.(args(step)) === true;
    stages.push(s);
    t = s.out;
    // attention_mask's 0/1 and mask_tokens' labels are no longer ids of the vocabulary.
    vocab = s.vocab ?? (kernel.dropsIds?.(args(step)) ? null : vocab);
  }
  if (t.kind === "text") {
    if (column.kind === "text" && !field.steps.length) notNumbers(column, name, null);
    throw err(`column "${column.name}" holds text; turn it into numbers with tokenize(vocab: …, max_len: …)`);
  }
  // The declared per-sample shape: constants must match, symbolic dimensions take the data's size.
  const declared = field.shape;
  const actual = t.shape;
  const bound = new Map<string, number>();
  let ok = declared.length === actual.length;
  for (let i = 0; ok && i < declared.length; i++) {
    const d = declared[i]!;
    if (typeof d === "number") ok = d === actual[i];
    else if (bound.has(d)) ok = bound.get(d) === actual[i];
    else bound.set(d, actual[i]!);
  }
  if (!ok) {
    const via = field.steps.length ? ` after ${field.steps.map((s) => s.fn).join(" -> ")}` : "";
    throw err(`declared ${field.dtype}${fmt(declared)}, but column "${column.name}"${via} gives samples of shape ${fmt(actual)}`);
  }
  const dtype = outDType(field.dtype);
  const info: FieldInfo = { dtype, shape: actual, declared: field.dtype, column: column.name };
  const last = t;
  return {
    info,
    random,
    run(col, rows, draw = null) {
      const n = rows.length;
      let v: Val;
      if (col.kind === "text") {
        const data = new Array<string>(n);
        for (let i = 0; i < n; i++) data[i] = col.data[rows[i]!]!;
        v = { kind: "text", n, data };
      } else {
        const size = prod(col.shape);
        const data = col.int ? new Int32Array(n * size) : new Float32Array(n * size);
        col.gather(rows, data);
        v = { kind: "num", int: col.int, shape: col.shape, n, data };
      }
      const ctx: ApplyCtx = { rows, draw };
      for (const s of stages) v = s.apply(v, ctx);
      return finish(num(v), last.int, field, rows, dtype, col.where);
    },
  };
}

/**
 * A text column that a field reads as numbers, without tokenizing it: NN5012 naming the first cell that is not a
 * number (its file and line, the column, what kind of cell: errors.ts's cellText). Returns only when every cell is one (JSON strings of numbers).
 */
function notNumbers(column: Extract<Column, { kind: "text" }>, field: string, step: string | null): void {
  const i = column.data.findIndex((c) => parseNumber(c) === null);
  if (i < 0) return;
  const cell = column.data[i]!;
  const at = column.where ? column.where(i) : `row ${i}`;
  const all = column.data.every((c) => parseNumber(c) === null);
  const what = cell.trim() === "" ? "is empty" : `holds ${cellText(cell)}`; // never the cell's text: the file may be any file
  throw new DataError(
    `${at}: column "${column.name}" ${what}, which is not a number (field "${field}"${step ? `'s ${step}` : ""} reads it as numbers${all ? "; no cell of the column is a number: it holds text" : ""})`,
    "notANumber",
  );
}

/** Convert to the declared element type, checking integer fields hold integers in range and float fields finite numbers. */
function finish(v: NumVal, int: boolean, field: FieldSpec, rows: ArrayLike<number>, dtype: OutDType, where?: (row: number) => string): Tensor {
  const shape = [v.n, ...v.shape];
  const size = prod(v.shape);
  if (dtype === "float32") {
    let data = v.data;
    if (field.dtype === "f16") {
      data = new Float32Array(v.data.length);
      for (let i = 0; i < data.length; i++) data[i] = roundF16(v.data[i]!);
    } else if (!(data instanceof Float32Array)) data = Float32Array.from(data);
    // A value beyond float32 (or f16), or a step's NaN (log of 0): NN5011 rather than a NaN loss.
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      if (Number.isFinite(x)) continue;
      const row = rows[Math.floor(i / Math.max(1, size))]!;
      const src = v.data[i]!;
      const why = Number.isFinite(src) ? `${src} is beyond ${field.dtype === "f16" ? "f16" : "float32"}'s range` : `it is ${x}${field.steps.length ? ` after ${field.steps.map((s) => s.fn).join(" -> ")}` : ""}`;
      throw new DataError(`${where ? where(row) : `sample ${row}`}: field "${field.name}" is not a finite number (${why})`, "nonFiniteValue");
    }
    return { dtype, shape, data };
  }
  const src = v.data;
  if (field.dtype === "bool") {
    const data = new Int32Array(src.length);
    for (let i = 0; i < src.length; i++) data[i] = src[i] !== 0 ? 1 : 0;
    return { dtype, shape, data };
  }
  const [lo, hi] = INT_RANGE[field.dtype] ?? [-2147483648, 2147483647];
  for (let i = 0; i < src.length; i++) {
    const x = src[i]!;
    if ((!int && !Number.isInteger(x)) || x < lo || x > hi) {
      const sample = rows[Math.floor(i / Math.max(1, size))];
      const why = !Number.isInteger(x) ? "is not an integer (add a cast step to truncate)" : `is outside ${field.dtype} range [${lo}, ${hi}]`;
      throw new DataError(`field "${field.name}": value ${x} of sample ${sample} ${why}`);
    }
  }
  return { dtype, shape, data: src instanceof Int32Array ? src : Int32Array.from(src) };
}

/** A header field's name (RFC 5322: printable ASCII but the colon); a header block starts with one and its colon, or with mbox's "From " line. */
const HEADER_NAME = "[!-9;-~]+";
const HEADER_BLOCK = new RegExp(`^${HEADER_NAME}:|^From `);
const IS_HEADER_NAME = new RegExp(`^${HEADER_NAME}$`);

/**
 * An e-mail (RFC 822: header lines, a blank line, the body) as the text a tokenizer should see: by default its
 * Subject's value and its body; with `headers`, each named header the message has, in the list's order, as one
 * `Name: value` line (folded lines joined; a header given twice keeps every occurrence), then the body. The other
 * header lines (Received, Return-Path, …) are dropped. Text that does not start with a header block is returned
 * unchanged.
 */
export function mailBody(text: string, headers: readonly string[] | null = null): string {
  const m = /\r?\n\r?\n/.exec(text);
  if (!m) return text;
  const head = text.slice(0, m.index);
  if (!HEADER_BLOCK.test(head)) return text;
  const body = text.slice(m.index + m[0].length);
  // The header lines once, unfolded (a line starting with white space continues the one before it), as
  // (lower-case name, value) pairs; a value keeps what follows the colon and its blanks, as the Subject always did.
  const fields = head
    .replace(/\r?\n[ \t]+/g, " ")
    .split(/\r?\n/)
    .flatMap((l) => {
      const colon = l.indexOf(":");
      return colon > 0 ? [[l.slice(0, colon).toLowerCase(), l.slice(colon + 1).replace(/^[ \t]+/, "")] as const] : [];
    });
  const values = (name: string) => {
    const lower = name.toLowerCase();
    return fields.filter(([n]) => n === lower).map(([, v]) => v);
  };
  if (headers === null) {
    const subject = values("subject")[0] ?? "";
    return subject ? `${subject}\n${body}` : body;
  }
  const kept = headers.flatMap((h) => values(h).map((v) => `${h}: ${v}`));
  return kept.length ? `${kept.join("\n")}\n${body}` : body;
}

/** What masked-language modelling needs of a vocabulary: its mask token, the ids never masked, where ordinary tokens start, and the label of an unmasked position (the padding id). */
function maskPlan(v: Vocabulary, err: (m: string) => DataError, specialsOnly = false): { mask: number; special: Set<number>; firstWord: number; size: number; ignore: number } {
  const ids = new Map<string, number>();
  for (let i = 0; i < v.tokens.length && i < v.size; i++) if (!ids.has(v.tokens[i]!)) ids.set(v.tokens[i]!, i);
  const pad = padId(v);
  if (v.split === "wordpiece" || v.split === "bpe" || v.split === "hf") {
    const names = v.split === "wordpiece" ? ["[MASK]"] : v.split === "bpe" ? ["<mask>", "<|mask|>"] : ["<mask>", "[MASK]", "<|mask|>"];
    const mask = names.map((t) => ids.get(t)).find((x) => x !== undefined);
    if (mask === undefined && !specialsOnly) throw err(`mask_tokens needs the vocabulary's mask token (${names.join(" or ")}), and this ${v.split === "bpe" ? "BPE" : v.split === "hf" ? "Hugging Face" : "WordPiece"} vocabulary has none`);
    // Bracketed specials ([CLS], [SEP], <|endoftext|>, <s>, …) are never masked nor drawn as random tokens.
    const special = new Set<number>(mask === undefined ? [pad] : [pad, mask]);
    let firstWord = v.size;
    for (const [t, i] of ids) {
      if (/^\[[A-Z]+\]$|^<\|?[a-z_]+\|?>$|^\[unused\d+\]$/.test(t)) special.add(i);
      else firstWord = Math.min(firstWord, i);
    }
    return { mask: mask ?? -1, special, firstWord: Math.min(firstWord, v.size - 1), size: v.size, ignore: pad };
  }
  // A vocabulary built from the data has no mask token: a masked position reads <unk> (which is never a target).
  return { mask: UNK_ID, special: new Set([PAD_ID, UNK_ID]), firstWord: 2, size: Math.max(3, Math.min(v.size, v.tokens.length)), ignore: PAD_ID };
}

/** A uniform number in [0, 1) that depends only on (seed, row, position, salt): mask_tokens' fixed masking (outside training epochs, and in every epoch with dynamic: false), alike in a sample's ids and labels fields and in every run. */
function maskHash(seed: number, row: number, pos: number, salt: number): number {
  let h = mix32(seed ^ 0x5bd1e995);
  h = mix32(h ^ row);
  h = mix32(h ^ pos);
  h = mix32(h ^ salt);
  return h / 4294967296;
}

/** FNV-1a over a string's UTF-16 code units: an unsigned 32-bit value. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** murmur3's finalizer after a golden-ratio step: an unsigned 32-bit value. */
function mix32(x: number): number {
  let h = (x + 0x9e3779b9) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A uniform number in [0, 1) of a training epoch's draws: it depends only on (seed, epoch, source row, step, k). */
/** The draws of a generating step (random_normal) outside training: one fixed value per sample, whatever the run. */
const FIXED_DRAW: Draw = { seed: 0x6e6f6973, epoch: 0xffffffff };

function drawn(d: Draw, row: number, step: number, k: number): number {
  let h = mix32(d.seed ^ 0x2545f491);
  h = mix32(h ^ Math.floor(d.seed / 4294967296));
  h = mix32(h ^ d.epoch);
  h = mix32(h ^ row);
  h = mix32(h ^ step);
  h = mix32(h ^ k);
  return h / 4294967296;
}

/** What a kernel is given to compile one step of a field. */
interface StepCtx {
  step: CallSpec;
  /** The step's input, per sample. */
  t: VType;
  column: Column;
  field: string;
  err: (m: string) => DataError;
  vocabFor: (s: CallSpec) => Vocabulary;
  /** The vocabulary of the ids coming in (right after tokenize), or null. */
  vocabBefore: Vocabulary | null;
  columnOf: (name: string) => Column | undefined;
  /** What random steps salt their draws with: the step's position in the chain (two alike steps differ), or a hash of its group. */
  index: number;
}

interface StepKernel {
  /** What the step takes: text, or numbers. */
  input: "text" | "num";
  /** Random (augmentation): active in training epochs only; must agree with PREPROCESS[name].random. */
  random?: true;
  /**
   * Not augmentation, yet drawn afresh in each training epoch with these arguments (mask_tokens' dynamic
   * masking): a training epoch's view differs from the split, which the step changes too (a fixed draw).
   */
  redrawn?(a: Record<string, AttrValue>): boolean;
  /** Whether its output, given these arguments, no longer holds the incoming vocabulary's ids. */
  dropsIds?(a: Record<string, AttrValue>): boolean;
  compile(c: StepCtx): Stage;
}

/** An image's height, width and channels from a per-sample shape [h, w] or [h, w, c]. */
function imageDims(c: StepCtx): { h: number; w: number; ch: number; shape: number[] } {
  const shape = (c.t as Extract<VType, { kind: "num" }>).shape;
  if (shape.length !== 2 && shape.length !== 3) throw c.err(`${c.step.fn} works on images of shape [height, width] or [height, width, channels], but its input has shape ${fmt(shape)}`);
  return { h: shape[0]!, w: shape[1]!, ch: shape[2] ?? 1, shape };
}

/** A clip's number of samples, from a per-sample shape [samples]. */
function clipLength(t: VType, fn: string, err: (m: string) => DataError): number {
  const shape = (t as Extract<VType, { kind: "num" }>).shape;
  if (shape.length !== 1) throw err(`${fn} works on audio clips of shape [samples] (audio_folder's audio column), but its input has shape ${fmt(shape)}`);
  return shape[0]!;
}

/** [frames, bins] of a spectrogram-like per-sample shape. */
function spectrumDims(t: VType, fn: string, what: string, err: (m: string) => DataError): [number, number] {
  const shape = (t as Extract<VType, { kind: "num" }>).shape;
  if (shape.length !== 2) throw err(`${fn} works on ${what}, but its input has shape ${fmt(shape)}`);
  return [shape[0]!, shape[1]!];
}

/** A copy of the samples as float32 (random steps make new values; integer images become float). */
function floats(v: NumVal): Float32Array {
  return v.data instanceof Float32Array ? new Float32Array(v.data) : Float32Array.from(v.data);
}

/**
 * dst = src warped by the inverse map (y, x) ↦ (m[0]·y' + m[1]·x' + m[2], m[3]·y' + m[4]·x' + m[5]) around the
 * image centre (y' = y - cy, x' = x - cx), bilinear, zero outside — for one sample of h × w × ch values.
 */
function warp(src: Float32Array, dst: Float32Array, at: number, h: number, w: number, ch: number, m: readonly number[]): void {
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const yy = y - cy;
      const xx = x - cx;
      const sy = m[0]! * yy + m[1]! * xx + m[2]! + cy;
      const sx = m[3]! * yy + m[4]! * xx + m[5]! + cx;
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const fy = sy - y0;
      const fx = sx - x0;
      const o = at + (y * w + x) * ch;
      for (let k = 0; k < ch; k++) {
        let acc = 0;
        for (let dy = 0; dy < 2; dy++) {
          const py = y0 + dy;
          const wy = dy ? fy : 1 - fy;
          if (py < 0 || py >= h || wy === 0) continue;
          for (let dx = 0; dx < 2; dx++) {
            const px = x0 + dx;
            const wx = dx ? fx : 1 - fx;
            if (px < 0 || px >= w || wx === 0) continue;
            acc += wy * wx * src[at + (py * w + px) * ch + k]!;
          }
        }
        dst[o + k] = acc;
      }
    }
  }
}

/** A random geometric step: each sample of a training epoch warped by the inverse map its draws give (identity otherwise). */
function warpKernel(mapOf: (u: (k: number) => number, h: number, w: number) => number[] | null): StepKernel["compile"] {
  return (c) => {
    const { h, w, ch } = imageDims(c);
    const shape = (c.t as Extract<VType, { kind: "num" }>).shape;
    return {
      out: { kind: "num", int: false, shape },
      apply(v, { rows, draw }) {
        if (!draw) return v;
        const src = floats(num(v));
        const dst = new Float32Array(src.length);
        const size = h * w * ch;
        for (let s = 0; s < v.n; s++) {
          const m = mapOf((k) => drawn(draw, rows[s]!, c.index, k), h, w);
          if (m) warp(src, dst, s * size, h, w, ch, m);
          else dst.set(src.subarray(s * size, (s + 1) * size), s * size);
        }
        return { ...num(v), int: false, data: dst };
      },
    };
  };
}

/** The token id that token_dropout writes: the vocabulary's unknown token. */
function unknownId(v: Vocabulary, err: (m: string) => DataError): number {
  if (v.split === "word" || v.split === "char") return UNK_ID;
  const at = ["[UNK]", "<unk>", "<|unk|>"].map((t) => v.tokens.indexOf(t)).find((i) => i >= 0);
  if (at === undefined) throw err(`token_dropout replaces tokens by the unknown token, and this ${v.split === "bpe" ? "byte-level BPE" : "tokenizer's"} vocabulary has none (byte-level BPE never needs one); use mask_tokens instead`);
  return at;
}

export const STEP_KERNELS: Record<string, StepKernel> = {
  tokenize: {
    input: "text",
    compile({ step, field, err, vocabFor, columnOf }) {
      const maxLen = numArg(step, "max_len", null, field);
      if (!Number.isInteger(maxLen) || maxLen < 1) throw err(`tokenize's max_len must be a positive integer, got ${maxLen}`);
      const vocab = vocabFor(step);
      const pairName = args(step).pair;
      if (typeof pairName === "string") {
        // A pair of texts (question and passage, two sentences): BERT's [CLS] a [SEP] b [SEP].
        const other = columnOf(pairName);
        if (!other) throw err(`tokenize's pair names column "${pairName}", which the source does not have`);
        if (other.kind !== "text") throw err(`tokenize's pair column "${pairName}" holds numbers, not text`);
        if (vocab.split !== "wordpiece") throw err(`tokenize's pair works with a WordPiece vocabulary (BERT's [CLS] a [SEP] b [SEP]); ${vocab.split === "bpe" ? "GPT-2's byte-level BPE has no pair template" : "a vocabulary built from the data has no separator"}: join the two texts in the data instead`);
        if (maxLen < 3) throw err(`tokenize with a pair needs max_len ≥ 3 ([CLS], [SEP], [SEP]), got ${maxLen}`);
        return {
          vocab,
          out: { kind: "num", int: true, shape: [maxLen] },
          apply(v, { rows }) {
            const texts = v.data as string[];
            const out = new Int32Array(v.n * maxLen);
            for (let i = 0; i < v.n; i++) encodeWordPiecePair(texts[i]!, other.data[rows[i]!] ?? "", vocab, maxLen, out, i * maxLen);
            return { kind: "num", int: true, shape: [maxLen], n: v.n, data: out };
          },
        };
      }
      return {
        vocab,
        out: { kind: "num", int: true, shape: [maxLen] },
        apply(v) {
          const texts = v.data as string[];
          const out = new Int32Array(v.n * maxLen);
          for (let i = 0; i < v.n; i++) encodeText(texts[i]!, vocab, maxLen, out, i * maxLen);
          return { kind: "num", int: true, shape: [maxLen], n: v.n, data: out };
        },
      };
    },
  },

  vectorize: {
    input: "text",
    dropsIds: () => true,
    compile({ step, vocabFor }) {
      const vocab = vocabFor(step);
      const size = vocab.size;
      return {
        out: { kind: "num", int: false, shape: [size] },
        apply(v) {
          const texts = v.data as string[];
          const out = new Float32Array(v.n * size);
          for (let i = 0; i < v.n; i++) vectorizeText(texts[i]!, vocab, out, i * size);
          return { kind: "num", int: false, shape: [size], n: v.n, data: out };
        },
      };
    },
  },

  mail_body: {
    input: "text",
    compile({ step, t, field }) {
      const raw = args(step).headers;
      if (raw !== undefined && raw !== null && !(Array.isArray(raw) && raw.every((h) => typeof h === "string" && IS_HEADER_NAME.test(h)))) {
        throw new DataError(`field "${field}": mail_body's headers must be a list of header names such as ["From", "Subject"], got ${JSON.stringify(raw)}`);
      }
      const headers = (raw ?? null) as string[] | null;
      return { out: t, apply: (v) => ({ kind: "text", n: v.n, data: (v.data as string[]).map((x) => mailBody(x, headers)) }) };
    },
  },

  scale: {
    input: "num",
    compile({ step, t, field }) {
      const factor = numArg(step, "factor", null, field);
      return {
        out: { kind: "num", int: false, shape: (t as NumVal).shape },
        apply(v) {
          const src = num(v).data;
          const out = new Float32Array(src.length);
          for (let i = 0; i < src.length; i++) out[i] = src[i]! * factor;
          return { ...num(v), int: false, data: out };
        },
      };
    },
  },

  normalize: {
    input: "num",
    compile({ step, t, field, err }) {
      const mean = numArg(step, "mean", 0, field);
      const std = numArg(step, "std", 1, field);
      if (!(std > 0)) throw err(`normalize's std must be positive, got ${std}`);
      return {
        out: { kind: "num", int: false, shape: (t as NumVal).shape },
        apply(v) {
          const src = num(v).data;
          const out = new Float32Array(src.length);
          for (let i = 0; i < src.length; i++) out[i] = (src[i]! - mean) / std;
          return { ...num(v), int: false, data: out };
        },
      };
    },
  },

  reshape: {
    input: "num",
    compile({ step, t, err }) {
      const shape = (t as NumVal).shape;
      const raw = args(step).shape;
      if (!Array.isArray(raw) || !raw.every((d) => typeof d === "number" && Number.isInteger(d) && (d >= 1 || d === -1))) {
        throw err(`reshape needs a list of positive integers, got ${JSON.stringify(raw)}`);
      }
      const target = raw as number[];
      const have = prod(shape);
      const free = target.filter((d) => d === -1).length;
      const known = prod(target.filter((d) => d !== -1));
      if (free > 1 || (free === 1 ? have % known !== 0 : known !== have)) {
        throw err(`cannot reshape samples of shape ${fmt(shape)} (${have} values) to ${fmt(target)}`);
      }
      const out = target.map((d) => (d === -1 ? have / known : d));
      return { out: { kind: "num", int: (t as NumVal).int, shape: out }, apply: (v) => ({ ...num(v), shape: out }) };
    },
  },

  cast: {
    input: "num",
    compile({ step, t, err }) {
      const shape = (t as NumVal).shape;
      const to = String(args(step).dtype) as DType;
      const float = to === "f16" || to === "f32" || to === "f64";
      if (!float && !["i8", "i32", "i64", "bool"].includes(to)) throw err(`cast to unknown type ${JSON.stringify(args(step).dtype)}`);
      return {
        out: { kind: "num", int: !float, shape },
        apply(v) {
          const src = num(v).data;
          if (float) {
            const out = src instanceof Float32Array ? new Float32Array(src) : Float32Array.from(src);
            if (to === "f16") for (let i = 0; i < out.length; i++) out[i] = roundF16(out[i]!);
            return { ...num(v), int: false, data: out };
          }
          const out = new Int32Array(src.length);
          for (let i = 0; i < src.length; i++) {
            const x = src[i]!;
            if (to === "bool") out[i] = x !== 0 ? 1 : 0;
            else if (Number.isNaN(x)) out[i] = 0;
            else if (to === "i8") out[i] = (Math.trunc(x) << 24) >> 24;
            else {
              const y = Math.trunc(x);
              if (y < -2147483648 || y > 2147483647) throw err(`cast(${to}): value ${x} does not fit the runtime's 32-bit integers`);
              out[i] = y;
            }
          }
          return { ...num(v), int: true, data: out };
        },
      };
    },
  },

  pad: {
    input: "num",
    compile(c) {
      const p = numArg(c.step, "pixels", null, c.field);
      if (!Number.isInteger(p) || p < 1) throw c.err(`pad's pixels must be a positive integer, got ${p}`);
      const shape = (c.t as NumVal).shape;
      if (shape.length !== 2 && shape.length !== 3) throw c.err(`pad works on images of shape [height, width] or [height, width, channels], but its input has shape ${fmt(shape)}; put pad before reshape`);
      const { h, w, ch } = imageDims(c);
      const oh = h + 2 * p;
      const ow = w + 2 * p;
      const out = shape.length === 2 ? [oh, ow] : [oh, ow, ch];
      return {
        out: { kind: "num", int: (c.t as NumVal).int, shape: out },
        apply(v) {
          const src = num(v).data;
          const dst = src instanceof Int32Array ? new Int32Array(v.n * oh * ow * ch) : new Float32Array(v.n * oh * ow * ch);
          const row = w * ch;
          for (let s = 0; s < v.n; s++) {
            for (let y = 0; y < h; y++) {
              const from = (s * h + y) * row;
              dst.set(src.subarray(from, from + row), ((s * oh + y + p) * ow + p) * ch);
            }
          }
          return { ...num(v), shape: out, data: dst };
        },
      };
    },
  },

  one_hot: {
    input: "num",
    dropsIds: () => true,
    compile({ step, t, field, err, column }) {
      const shape = (t as NumVal).shape;
      const k = numArg(step, "classes", null, field);
      if (!Number.isInteger(k) || k < 1) throw err(`one_hot's classes must be a positive integer, got ${k}`);
      if (prod(shape) !== 1 || shape.length > 1) throw err(`one_hot needs one class id per sample, but its input has shape ${fmt(shape)}`);
      return {
        out: { kind: "num", int: false, shape: [k] },
        apply(v, ctx) {
          const src = num(v).data;
          const out = new Float32Array(v.n * k);
          for (let i = 0; i < v.n; i++) {
            const c = src[i]!;
            if (!Number.isInteger(c) || c < 0 || c >= k) {
              const row = ctx.rows[i]!;
              throw new DataError(`${column.where ? column.where(row) : `sample ${row}`}: field "${field}" is ${c}, but one_hot(classes: ${k}) takes class ids 0 to ${k - 1}`, "labelOutOfRange");
            }
            out[i * k + c] = 1;
          }
          return { kind: "num", int: false, shape: [k], n: v.n, data: out };
        },
      };
    },
  },

  shift: {
    input: "num",
    compile({ step, t, field, err }) {
      const by = numArg(step, "by", 1, field);
      if (!Number.isInteger(by) || by < 1) throw err(`shift's by must be a positive integer, got ${by}`);
      const shape = (t as NumVal).shape;
      if (shape.length < 1) throw err("shift needs a sequence per sample, but its input is a scalar");
      const len = shape[0]!;
      const inner = prod(shape.slice(1));
      const size = len * inner;
      return {
        out: t,
        apply(v) {
          const src = num(v).data;
          const dst = src instanceof Int32Array ? new Int32Array(src.length) : new Float32Array(src.length);
          if (by < len) for (let s = 0; s < v.n; s++) dst.set(src.subarray(s * size + by * inner, (s + 1) * size), s * size);
          return { ...num(v), data: dst };
        },
      };
    },
  },

  attention_mask: {
    input: "num",
    dropsIds: () => true,
    compile({ t, err, vocabBefore }) {
      // 1 for a token, 0 for padding: the padding id of the vocabulary the ids came from.
      if (!vocabBefore) throw err("attention_mask marks the padding of token ids: put it right after tokenize(…)");
      const pad = padId(vocabBefore);
      return {
        out: { kind: "num", int: true, shape: (t as NumVal).shape },
        apply(v) {
          const src = num(v).data;
          const dst = new Int32Array(src.length);
          for (let i = 0; i < src.length; i++) dst[i] = src[i] === pad ? 0 : 1;
          return { ...num(v), int: true, data: dst };
        },
      };
    },
  },

  token_types: {
    input: "num",
    dropsIds: () => true,
    compile({ t, err, vocabBefore }) {
      // BERT's segment ids: 0 through the first [SEP], 1 after it (a pair's second text), 0 for padding.
      if (!vocabBefore) throw err("token_types marks the two texts of tokenize(…, pair: …)'s ids: put it right after tokenize(…)");
      const pad = padId(vocabBefore);
      const sep = vocabBefore.split === "wordpiece" ? specialId(vocabBefore, "[SEP]") : -1;
      const shape = (t as NumVal).shape;
      const len = prod(shape);
      return {
        out: { kind: "num", int: true, shape },
        apply(v) {
          const src = num(v).data;
          const dst = new Int32Array(src.length);
          for (let s = 0; s < v.n; s++) {
            let seps = 0;
            for (let i = s * len; i < (s + 1) * len; i++) {
              const id = src[i]!;
              dst[i] = id === pad || seps === 0 ? 0 : 1;
              if (id === sep) seps++;
            }
          }
          return { ...num(v), int: true, data: dst };
        },
      };
    },
  },

  mask_tokens: {
    input: "num",
    dropsIds: (a) => a.labels === true,
    redrawn: (a) => a.dynamic !== false,
    compile({ step, t, field, err, vocabBefore }) {
      if (!vocabBefore) throw err("mask_tokens masks token ids: put it right after tokenize(…)");
      const rate = numArg(step, "rate", 0.15, field);
      if (!(rate > 0 && rate < 1)) throw err(`mask_tokens' rate must be between 0 and 1, got ${rate}`);
      const seed = numArg(step, "seed", 0, field);
      if (!Number.isInteger(seed)) throw err(`mask_tokens' seed must be an integer, got ${seed}`);
      const labels = args(step).labels === true;
      const dynamic = args(step).dynamic !== false;
      // A training epoch's draws are salted by the step's seed alone (not by its field or place in the chain),
      // so that an ids field and a labels field of one text pick alike in every epoch.
      const salt = (0x80000000 | fnv1a(`mask_tokens/${seed}`)) >>> 0;
      const plan = maskPlan(vocabBefore, err);
      const shape = (t as NumVal).shape;
      const len = prod(shape);
      return {
        out: { kind: "num", int: true, shape },
        apply(v, { rows, draw }) {
          const src = num(v).data;
          const dst = new Int32Array(src.length);
          // Dynamic masking (RoBERTa's): new picks each training epoch; elsewhere, and with dynamic: false, the
          // fixed picks of the seed and the row (the original BERT's static masking), so validation compares.
          const u = dynamic && draw ? (row: number, i: number, k: number) => drawn(draw, row, salt, i * 3 + k) : (row: number, i: number, k: number) => maskHash(seed, row, i, k);
          for (let s = 0; s < v.n; s++) {
            const row = rows[s]!;
            for (let i = 0; i < len; i++) {
              const at = s * len + i;
              const id = src[at]!;
              const masked = !plan.special.has(id) && u(row, i, 0) < rate;
              if (labels) dst[at] = masked ? id : plan.ignore;
              else if (!masked) dst[at] = id;
              else {
                // BERT's 80/10/10: [MASK], a random token of the vocabulary, or the token itself.
                const w = u(row, i, 1);
                dst[at] = w < 0.8 ? plan.mask : w < 0.9 ? plan.firstWord + Math.floor(u(row, i, 2) * (plan.size - plan.firstWord)) : id;
              }
            }
          }
          return { kind: "num", int: true, shape, n: v.n, data: dst };
        },
      };
    },
  },

  // ——— Audio (dsp.ts) ———

  resample: {
    input: "num",
    compile({ step, t, field, err }) {
      const from = numArg(step, "orig_freq", null, field);
      const to = numArg(step, "new_freq", null, field);
      for (const [k, v] of [["orig_freq", from], ["new_freq", to]] as const) if (!Number.isInteger(v) || v < 1) throw err(`resample's ${k} must be a positive integer (Hz), got ${v}`);
      const n = clipLength(t, "resample", err);
      const len = resampledLength(n, from, to);
      if (len > MAX_CLIP) throw err(`resample(${from} → ${to} Hz) makes clips of ${len} samples, over the ${MAX_CLIP} a clip may hold`);
      return {
        out: { kind: "num", int: false, shape: [len] },
        apply(v) {
          const src = num(v).data;
          const out = new Float32Array(v.n * len);
          for (let s = 0; s < v.n; s++) resampleSinc(src.subarray(s * n, (s + 1) * n), from, to, out, s * len);
          return { kind: "num", int: false, shape: [len], n: v.n, data: out };
        },
      };
    },
  },

  spectrogram: {
    input: "num",
    compile({ step, t, field, err }) {
      const frame = numArg(step, "frame", null, field);
      const hop = numArg(step, "hop", null, field);
      if (!Number.isInteger(frame) || frame < 2) throw err(`spectrogram's frame must be an integer ≥ 2, got ${frame}`);
      if (!Number.isInteger(hop) || hop < 1) throw err(`spectrogram's hop must be a positive integer, got ${hop}`);
      const fft = numArg(step, "fft", nextPow2(frame), field);
      if (!Number.isInteger(fft) || fft < frame || fft !== nextPow2(fft)) throw err(`spectrogram's fft must be a power of two ≥ frame (${frame}), got ${fft}; e.g. fft: ${nextPow2(frame)}`);
      const n = clipLength(t, "spectrogram", err);
      const frames = stftFrames(n, frame, hop);
      if (frames < 1) throw err(`spectrogram's frame (${frame}) is longer than the clip (${n} samples)`);
      const stft = new Stft(frame, hop, fft);
      const shape = [frames, stft.bins];
      const size = frames * stft.bins;
      return {
        out: { kind: "num", int: false, shape },
        apply(v) {
          const src = num(v).data;
          const out = new Float32Array(v.n * size);
          for (let s = 0; s < v.n; s++) stft.run(src, s * n, n, out, s * size);
          return { kind: "num", int: false, shape, n: v.n, data: out };
        },
      };
    },
  },

  mel: {
    input: "num",
    compile({ step, t, field, err }) {
      const mels = numArg(step, "bins", null, field);
      const rate = numArg(step, "rate", null, field);
      const fmin = numArg(step, "fmin", 0, field);
      const fmax = numArg(step, "fmax", rate / 2, field);
      if (!Number.isInteger(mels) || mels < 1) throw err(`mel's bins must be a positive integer, got ${mels}`);
      if (!Number.isInteger(rate) || rate < 1) throw err(`mel's rate must be a positive integer (Hz), got ${rate}`);
      if (!(fmin >= 0 && fmin < fmax && fmax <= rate / 2)) throw err(`mel needs 0 ≤ fmin < fmax ≤ rate / 2 (${rate / 2} Hz), got fmin ${fmin} and fmax ${fmax}`);
      const [frames, bins] = spectrumDims(t, "mel", "a spectrogram [frames, bins] (after spectrogram(…))", err);
      if (bins < 2) throw err(`mel needs at least 2 frequency bins, got ${bins}`);
      const w = melWeights(bins, mels, rate, fmin, fmax);
      // Each band's triangle covers a few bins: its first and last nonzero weight.
      const lo = new Int32Array(mels).fill(bins);
      const hi = new Int32Array(mels).fill(-1);
      for (let i = 0; i < bins; i++) {
        for (let j = 0; j < mels; j++) {
          if (w[i * mels + j] === 0) continue;
          lo[j] = Math.min(lo[j]!, i);
          hi[j] = i;
        }
      }
      const log = args(step).log === true;
      const shape = [frames, mels];
      return {
        out: { kind: "num", int: false, shape },
        apply(v) {
          const src = num(v).data;
          const out = new Float32Array(v.n * frames * mels);
          for (let r = 0; r < v.n * frames; r++) {
            for (let j = 0; j < mels; j++) {
              let acc = 0;
              for (let i = lo[j]!; i <= hi[j]!; i++) acc += src[r * bins + i]! * w[i * mels + j]!;
              out[r * mels + j] = log ? Math.log(acc + 1e-6) : acc;
            }
          }
          return { kind: "num", int: false, shape, n: v.n, data: out };
        },
      };
    },
  },

  mfcc: {
    input: "num",
    compile({ step, t, field, err }) {
      const keep = numArg(step, "n", null, field);
      const [frames, bins] = spectrumDims(t, "mfcc", "a log-mel spectrogram [frames, bins] (after mel(…, log: true))", err);
      if (!Number.isInteger(keep) || keep < 1 || keep > bins) throw err(`mfcc's n must be an integer from 1 to the mel bins (${bins}), got ${keep}`);
      const d = dctMatrix(bins, keep);
      const shape = [frames, keep];
      return {
        out: { kind: "num", int: false, shape },
        apply(v) {
          const src = num(v).data;
          const out = new Float32Array(v.n * frames * keep);
          for (let r = 0; r < v.n * frames; r++) {
            for (let k = 0; k < keep; k++) {
              let acc = 0;
              for (let i = 0; i < bins; i++) acc += d[k * bins + i]! * src[r * bins + i]!;
              out[r * keep + k] = acc;
            }
          }
          return { kind: "num", int: false, shape, n: v.n, data: out };
        },
      };
    },
  },

  // ——— Augmentation: random, training epochs only ———

  random_flip: {
    input: "num",
    random: true,
    compile(c) {
      const mode = String(args(c.step).mode ?? "horizontal");
      if (!["horizontal", "vertical", "both"].includes(mode)) throw c.err(`random_flip's mode must be horizontal, vertical or both, got ${JSON.stringify(mode)}`);
      const { h, w, ch, shape } = imageDims(c);
      return {
        out: { kind: "num", int: (c.t as NumVal).int, shape },
        apply(v, { rows, draw }) {
          if (!draw) return v;
          const src = num(v).data;
          const dst = src instanceof Int32Array ? new Int32Array(src.length) : new Float32Array(src.length);
          const size = h * w * ch;
          for (let s = 0; s < v.n; s++) {
            const fx = mode !== "vertical" && drawn(draw, rows[s]!, c.index, 0) < 0.5;
            const fy = mode !== "horizontal" && drawn(draw, rows[s]!, c.index, 1) < 0.5;
            for (let y = 0; y < h; y++) {
              const sy = fy ? h - 1 - y : y;
              for (let x = 0; x < w; x++) {
                const sx = fx ? w - 1 - x : x;
                const o = s * size + (y * w + x) * ch;
                const i = s * size + (sy * w + sx) * ch;
                for (let k = 0; k < ch; k++) dst[o + k] = src[i + k]!;
              }
            }
          }
          return { ...num(v), data: dst };
        },
      };
    },
  },

  random_crop: {
    input: "num",
    random: true,
    compile(c) {
      const size = numArg(c.step, "size", null, c.field);
      const pad = numArg(c.step, "padding", 0, c.field);
      const { h, w, ch, shape } = imageDims(c);
      if (!Number.isInteger(pad) || pad < 0) throw c.err(`random_crop's padding must be an integer ≥ 0, got ${pad}`);
      const H = h + 2 * pad;
      const W = w + 2 * pad;
      if (!Number.isInteger(size) || size < 1 || size > H || size > W) throw c.err(`random_crop's size must be an integer from 1 to ${Math.min(H, W)} (the image, ${h} × ${w}, padded by ${pad}), got ${size}`);
      const out = shape.length === 2 ? [size, size] : [size, size, ch];
      return {
        out: { kind: "num", int: (c.t as NumVal).int, shape: out },
        apply(v, { rows, draw }) {
          const src = num(v).data;
          const dst = src instanceof Int32Array ? new Int32Array(v.n * size * size * ch) : new Float32Array(v.n * size * size * ch);
          for (let s = 0; s < v.n; s++) {
            // Training: a random window of the zero-padded image; otherwise its centre.
            const oy = draw ? Math.floor(drawn(draw, rows[s]!, c.index, 0) * (H - size + 1)) : Math.floor((H - size) / 2);
            const ox = draw ? Math.floor(drawn(draw, rows[s]!, c.index, 1) * (W - size + 1)) : Math.floor((W - size) / 2);
            for (let y = 0; y < size; y++) {
              const sy = y + oy - pad;
              if (sy < 0 || sy >= h) continue;
              for (let x = 0; x < size; x++) {
                const sx = x + ox - pad;
                if (sx < 0 || sx >= w) continue;
                const o = ((s * size + y) * size + x) * ch;
                const i = ((s * h + sy) * w + sx) * ch;
                for (let k = 0; k < ch; k++) dst[o + k] = src[i + k]!;
              }
            }
          }
          return { ...num(v), shape: out, data: dst };
        },
      };
    },
  },

  random_rotation: {
    input: "num",
    random: true,
    compile(c) {
      const deg = numArg(c.step, "degrees", null, c.field);
      if (!(deg > 0 && deg <= 180)) throw c.err(`random_rotation's degrees must be in (0, 180], got ${deg}`);
      return warpKernel((u) => {
        const a = ((u(0) * 2 - 1) * deg * Math.PI) / 180;
        const co = Math.cos(a);
        const si = Math.sin(a);
        return [co, -si, 0, si, co, 0];
      })(c);
    },
  },

  random_translate: {
    input: "num",
    random: true,
    compile(c) {
      const f = numArg(c.step, "fraction", null, c.field);
      if (!(f > 0 && f < 1)) throw c.err(`random_translate's fraction must be between 0 and 1, got ${f}`);
      // Whole pixels, up to fraction × height (width) each way: the picture moves, nothing is resampled.
      return warpKernel((u, h, w) => {
        const dy = Math.round((u(0) * 2 - 1) * f * h);
        const dx = Math.round((u(1) * 2 - 1) * f * w);
        return dy === 0 && dx === 0 ? null : [1, 0, -dy, 0, 1, -dx];
      })(c);
    },
  },

  random_zoom: {
    input: "num",
    random: true,
    compile(c) {
      const f = numArg(c.step, "fraction", null, c.field);
      if (!(f > 0 && f < 1)) throw c.err(`random_zoom's fraction must be between 0 and 1, got ${f}`);
      // A scale in [1 - f, 1 + f] about the centre: > 1 zooms in.
      return warpKernel((u) => {
        const z = 1 + (u(0) * 2 - 1) * f;
        return [1 / z, 0, 0, 0, 1 / z, 0];
      })(c);
    },
  },

  color_jitter: {
    input: "num",
    random: true,
    compile(c) {
      const a = ["brightness", "contrast", "saturation"].map((k) => numArg(c.step, k, 0, c.field));
      a.forEach((x, i) => {
        if (!(x >= 0 && x < 1)) throw c.err(`color_jitter's ${["brightness", "contrast", "saturation"][i]} must be in [0, 1), got ${x}`);
      });
      const [bright, contrast, sat] = a as [number, number, number];
      const { h, w, ch, shape } = imageDims(c);
      if (sat > 0 && ch !== 3) throw c.err(`color_jitter's saturation needs RGB images ([height, width, 3]), but its input has shape ${fmt(shape)}`);
      const px = h * w;
      return {
        out: { kind: "num", int: false, shape },
        apply(v, { rows, draw }) {
          if (!draw) return v;
          const x = floats(num(v));
          const size = px * ch;
          for (let s = 0; s < v.n; s++) {
            const at = s * size;
            const u = (k: number) => drawn(draw, rows[s]!, c.index, k);
            // torchvision's factors: brightness scales, contrast blends with the mean grey, saturation with each pixel's grey.
            const fb = 1 + (u(0) * 2 - 1) * bright;
            const fc = 1 + (u(1) * 2 - 1) * contrast;
            const fs = 1 + (u(2) * 2 - 1) * sat;
            if (fb !== 1) for (let i = at; i < at + size; i++) x[i] = x[i]! * fb;
            if (fc !== 1) {
              let mean = 0;
              for (let p = 0; p < px; p++) mean += ch === 3 ? 0.299 * x[at + p * 3]! + 0.587 * x[at + p * 3 + 1]! + 0.114 * x[at + p * 3 + 2]! : x[at + p * ch]!;
              mean /= px;
              for (let i = at; i < at + size; i++) x[i] = (x[i]! - mean) * fc + mean;
            }
            if (fs !== 1) {
              for (let p = at; p < at + size; p += 3) {
                const g = 0.299 * x[p]! + 0.587 * x[p + 1]! + 0.114 * x[p + 2]!;
                for (let k = 0; k < 3; k++) x[p + k] = (x[p + k]! - g) * fs + g;
              }
            }
          }
          return { ...num(v), int: false, data: x };
        },
      };
    },
  },

  random_erasing: {
    input: "num",
    random: true,
    compile(c) {
      const prob = numArg(c.step, "probability", 0.5, c.field);
      const lo = numArg(c.step, "min_area", 0.02, c.field);
      const hi = numArg(c.step, "max_area", 0.33, c.field);
      const value = numArg(c.step, "value", 0, c.field);
      if (!(prob > 0 && prob <= 1)) throw c.err(`random_erasing's probability must be in (0, 1], got ${prob}`);
      if (!(lo > 0 && lo <= hi && hi <= 1)) throw c.err(`random_erasing's areas must satisfy 0 < min_area ≤ max_area ≤ 1, got ${lo} and ${hi}`);
      const { h, w, ch, shape } = imageDims(c);
      return {
        out: { kind: "num", int: false, shape },
        apply(v, { rows, draw }) {
          if (!draw) return v;
          const x = floats(num(v));
          const size = h * w * ch;
          for (let s = 0; s < v.n; s++) {
            const u = (k: number) => drawn(draw, rows[s]!, c.index, k);
            if (u(0) >= prob) continue;
            // A rectangle of a random share of the area and an aspect ratio log-uniform in [0.3, 3.3] (Zhong et al., 2017).
            const area = (lo + u(1) * (hi - lo)) * h * w;
            const ratio = Math.exp(Math.log(0.3) + u(2) * (Math.log(3.3) - Math.log(0.3)));
            const eh = Math.max(1, Math.min(h, Math.round(Math.sqrt(area * ratio))));
            const ew = Math.max(1, Math.min(w, Math.round(Math.sqrt(area / ratio))));
            const y0 = Math.floor(u(3) * (h - eh + 1));
            const x0 = Math.floor(u(4) * (w - ew + 1));
            for (let y = y0; y < y0 + eh; y++) x.fill(value, s * size + (y * w + x0) * ch, s * size + (y * w + x0 + ew) * ch);
          }
          return { ...num(v), int: false, data: x };
        },
      };
    },
  },

  gaussian_noise: {
    input: "num",
    random: true,
    compile(c) {
      const std = numArg(c.step, "std", null, c.field);
      if (!(std > 0)) throw c.err(`gaussian_noise's std must be positive, got ${std}`);
      const shape = (c.t as NumVal).shape;
      const size = prod(shape);
      return {
        out: { kind: "num", int: false, shape },
        apply(v, { rows, draw }) {
          if (!draw) return v;
          const x = floats(num(v));
          for (let s = 0; s < v.n; s++) {
            for (let i = 0; i < size; i++) {
              // Box–Muller from two of the sample's draws per value.
              const u1 = drawn(draw, rows[s]!, c.index, 2 * i) || 2 ** -32;
              const u2 = drawn(draw, rows[s]!, c.index, 2 * i + 1);
              x[s * size + i]! += std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
            }
          }
          return { ...num(v), int: false, data: x };
        },
      };
    },
  },

  random_normal: {
    input: "num",
    random: true,
    compile(c) {
      const mean = numArg(c.step, "mean", 0, c.field);
      const std = numArg(c.step, "std", 1, c.field);
      if (!(std > 0)) throw c.err(`random_normal's std must be positive, got ${std}`);
      const shape = (c.t as NumVal).shape;
      const size = prod(shape);
      return {
        out: { kind: "num", int: false, shape },
        apply(v, { rows, draw }) {
          // Outside training each sample keeps one fixed draw (validation and test losses stay comparable).
          const d = draw ?? FIXED_DRAW;
          const x = new Float32Array(v.n * size);
          for (let s = 0; s < v.n; s++) {
            for (let i = 0; i < size; i++) {
              const u1 = drawn(d, rows[s]!, c.index, 2 * i) || 2 ** -32;
              const u2 = drawn(d, rows[s]!, c.index, 2 * i + 1);
              x[s * size + i] = mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
            }
          }
          return { kind: "num", int: false, shape, n: v.n, data: x };
        },
      };
    },
  },

  token_dropout: {
    input: "num",
    random: true,
    compile(c) {
      if (!c.vocabBefore) throw c.err("token_dropout replaces token ids: put it right after tokenize(…)");
      const rate = numArg(c.step, "rate", null, c.field);
      if (!(rate > 0 && rate < 1)) throw c.err(`token_dropout's rate must be between 0 and 1, got ${rate}`);
      const plan = maskPlan(c.vocabBefore, c.err, true);
      const unk = unknownId(c.vocabBefore, c.err);
      const shape = (c.t as NumVal).shape;
      const len = prod(shape);
      return {
        out: { kind: "num", int: true, shape },
        apply(v, { rows, draw }) {
          if (!draw) return v;
          const src = num(v).data;
          const dst = Int32Array.from(src);
          for (let s = 0; s < v.n; s++) {
            for (let i = 0; i < len; i++) {
              const at = s * len + i;
              if (!plan.special.has(src[at]!) && drawn(draw, rows[s]!, c.index, i) < rate) dst[at] = unk;
            }
          }
          return { kind: "num", int: true, shape, n: v.n, data: dst };
        },
      };
    },
  },
};

// Plugin preprocessing steps (compiler/plugin/api.ts) join the table: numbers in, floats of the same shape out,
// one sample at a time.
onPlugins((from) => {
  const names: string[] = [];
  for (const st of from.plugin.steps ?? []) {
    names.push(st.name);
    STEP_KERNELS[st.name] = {
      input: "num",
      compile({ step, t }) {
        const shape = (t as NumVal).shape;
        const size = shape.reduce((a, b) => a * b, 1);
        const what = `preprocessing step ${st.name}'s apply`;
        return {
          out: { kind: "num", int: false, shape },
          apply(v) {
            const src = num(v);
            const out = new Float32Array(src.data.length);
            for (let i = 0; i < src.n; i++) {
              const sample = Float32Array.from(src.data.subarray(i * size, (i + 1) * size));
              const r = guard(from, what, () => st.apply(sample, step.args));
              if (!r || r.length !== size) throw new PluginError(from.plugin.name, from.file, what, new Error(`it returned ${r?.length ?? "no"} values for a sample of ${size}`));
              out.set(r, i * size);
            }
            return { ...src, int: false, data: out };
          },
        };
      },
    };
  }
  return () => {
    for (const n of names) delete STEP_KERNELS[n];
  };
});
ownNamesOnly(STEP_KERNELS);

/** Whether the preprocessing step `fn` is random (augmentation). */
/** Whether a step draws afresh in each training epoch: a random step, or one redrawn with these arguments (mask_tokens). */
export function isRedrawnStep(step: CallSpec): boolean {
  const k = Object.hasOwn(STEP_KERNELS, step.fn) ? STEP_KERNELS[step.fn]! : undefined;
  return k !== undefined && (k.random === true || k.redrawn?.(args(step)) === true);
}
