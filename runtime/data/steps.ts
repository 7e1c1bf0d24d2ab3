// Preprocessing: a field is a column piped through steps (scale, normalize, reshape, cast, pad, one_hot,
// tokenize, shift). compileField checks the chain once against the column's per-sample type and the
// field's declared type, then runs it on the requested samples only, at batch time.
import type { AttrValue, DType } from "../../compiler/ir/types.js";
import type { CallSpec, FieldSpec } from "../spec.js";
import { type Column, prod } from "./columns.js";
import { DataError } from "./errors.js";
import { encodeText, PAD_ID, padId, UNK_ID, type Vocabulary } from "./tokenize.js";
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
  /** Gather and preprocess the given rows of the column. */
  run(column: Column, rows: ArrayLike<number>): Tensor;
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

interface Stage {
  out: VType;
  /** `rows`: the samples' rows in their source (mask_tokens draws its masks from them). */
  apply(v: Val, rows: ArrayLike<number>): Val;
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
  for (const step of field.steps) {
    const s = stage(step, t, column, name, err, vocabFor, vocab, columnOf);
    stages.push(s);
    t = s.out;
    // attention_mask's 0/1 and mask_tokens' labels are no longer ids of the vocabulary.
    vocab = s.vocab ?? (step.fn === "attention_mask" || step.fn === "token_types" || (step.fn === "mask_tokens" && step.args?.labels === true) ? null : vocab);
  }
  if (t.kind === "text") throw err(`column "${column.name}" holds text; turn it into numbers with tokenize(vocab: …, max_len: …)`);
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
    run(col, rows) {
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
      for (const s of stages) v = s.apply(v, rows);
      return finish(num(v), last.int, field, rows, dtype);
    },
  };
}

/** Convert to the declared element type, checking integer fields hold integers in range. */
function finish(v: NumVal, int: boolean, field: FieldSpec, rows: ArrayLike<number>, dtype: OutDType): Tensor {
  const shape = [v.n, ...v.shape];
  const size = prod(v.shape);
  if (dtype === "float32") {
    let data = v.data;
    if (field.dtype === "f16") {
      data = new Float32Array(v.data.length);
      for (let i = 0; i < data.length; i++) data[i] = roundF16(v.data[i]!);
    } else if (!(data instanceof Float32Array)) data = Float32Array.from(data);
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

/** An e-mail as its Subject and body: header lines (with their folded continuations) up to the first blank line dropped, but Subject. A text without a header block is returned as it is. */
export function mailBody(text: string): string {
  const m = /\r?\n\r?\n/.exec(text);
  if (!m) return text;
  const head = text.slice(0, m.index);
  if (!/^[!-9;-~]+:|^From /.test(head)) return text; // not a header block
  const subject = /^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head)?.[1]?.replace(/\r?\n[ \t]+/g, " ") ?? "";
  const body = text.slice(m.index + m[0].length);
  return subject ? `${subject}\n${body}` : body;
}

/** What masked-language modelling needs of a vocabulary: its mask token, the ids never masked, where ordinary tokens start, and the label of an unmasked position (the padding id). */
function maskPlan(v: Vocabulary, err: (m: string) => DataError): { mask: number; special: Set<number>; firstWord: number; size: number; ignore: number } {
  const ids = new Map<string, number>();
  for (let i = 0; i < v.tokens.length && i < v.size; i++) if (!ids.has(v.tokens[i]!)) ids.set(v.tokens[i]!, i);
  const pad = padId(v);
  if (v.split === "wordpiece" || v.split === "bpe" || v.split === "hf") {
    const names = v.split === "wordpiece" ? ["[MASK]"] : v.split === "bpe" ? ["<mask>", "<|mask|>"] : ["<mask>", "[MASK]", "<|mask|>"];
    const mask = names.map((t) => ids.get(t)).find((x) => x !== undefined);
    if (mask === undefined) throw err(`mask_tokens needs the vocabulary's mask token (${names.join(" or ")}), and this ${v.split === "bpe" ? "BPE" : v.split === "hf" ? "Hugging Face" : "WordPiece"} vocabulary has none`);
    // Bracketed specials ([CLS], [SEP], <|endoftext|>, <s>, …) are never masked nor drawn as random tokens.
    const special = new Set<number>([pad, mask]);
    let firstWord = v.size;
    for (const [t, i] of ids) {
      if (/^\[[A-Z]+\]$|^<\|?[a-z_]+\|?>$|^\[unused\d+\]$/.test(t)) special.add(i);
      else firstWord = Math.min(firstWord, i);
    }
    return { mask, special, firstWord: Math.min(firstWord, v.size - 1), size: v.size, ignore: pad };
  }
  // A vocabulary built from the data has no mask token: a masked position reads <unk> (which is never a target).
  return { mask: UNK_ID, special: new Set([PAD_ID, UNK_ID]), firstWord: 2, size: Math.max(3, Math.min(v.size, v.tokens.length)), ignore: PAD_ID };
}

/** A uniform number in [0, 1) that depends only on (seed, row, position, salt): the same sample is masked alike in its ids and labels fields, in every epoch and run. */
function maskHash(seed: number, row: number, pos: number, salt: number): number {
  let h = mix32(seed ^ 0x5bd1e995);
  h = mix32(h ^ row);
  h = mix32(h ^ pos);
  h = mix32(h ^ salt);
  return h / 4294967296;
}

/** murmur3's finalizer after a golden-ratio step: an unsigned 32-bit value. */
function mix32(x: number): number {
  let h = (x + 0x9e3779b9) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function stage(step: CallSpec, t: VType, column: Column, field: string, err: (m: string) => DataError, vocabFor: (s: CallSpec) => Vocabulary, vocabBefore: Vocabulary | null, columnOf: (name: string) => Column | undefined): Stage {
  const fn = step.fn;
  if (fn === "tokenize") {
    if (t.kind !== "text") throw err(`tokenize needs text, but its input is numbers of shape ${fmt(t.shape)}`);
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
        apply(v, rows) {
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
  }
  if (fn === "mail_body") {
    if (t.kind !== "text") throw err(`mail_body needs text, but its input is numbers of shape ${fmt(t.shape)}`);
    return { out: t, apply: (v) => ({ kind: "text", n: v.n, data: (v.data as string[]).map(mailBody) }) };
  }
  if (t.kind === "text") {
    const eg = column.kind === "text" && column.data.length ? ` (e.g. ${JSON.stringify(column.data[0]!.slice(0, 40))})` : "";
    throw err(`${fn} needs numbers, but column "${column.name}" holds text${eg}; text needs tokenize(vocab: …, max_len: …) first`);
  }
  const shape = t.shape;
  switch (fn) {
    case "scale":
    case "normalize": {
      const isScale = fn === "scale";
      const factor = isScale ? numArg(step, "factor", null, field) : 1;
      const mean = isScale ? 0 : numArg(step, "mean", 0, field);
      const std = isScale ? 1 : numArg(step, "std", 1, field);
      if (!(std > 0)) throw err(`normalize's std must be positive, got ${std}`);
      return {
        out: { kind: "num", int: false, shape },
        apply(v) {
          const src = num(v).data;
          const out = new Float32Array(src.length);
          if (isScale) for (let i = 0; i < src.length; i++) out[i] = src[i]! * factor;
          else for (let i = 0; i < src.length; i++) out[i] = (src[i]! - mean) / std;
          return { ...num(v), int: false, data: out };
        },
      };
    }
    case "reshape": {
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
      return { out: { kind: "num", int: t.int, shape: out }, apply: (v) => ({ ...num(v), shape: out }) };
    }
    case "cast": {
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
    }
    case "pad": {
      const p = numArg(step, "pixels", null, field);
      if (!Number.isInteger(p) || p < 1) throw err(`pad's pixels must be a positive integer, got ${p}`);
      if (shape.length !== 2 && shape.length !== 3) {
        throw err(`pad works on images of shape [height, width] or [height, width, channels], but its input has shape ${fmt(shape)}; put pad before reshape`);
      }
      const [h, w, c = 1] = shape as [number, number, number?];
      const oh = h + 2 * p;
      const ow = w + 2 * p;
      const out = shape.length === 2 ? [oh, ow] : [oh, ow, c];
      return {
        out: { kind: "num", int: t.int, shape: out },
        apply(v) {
          const src = num(v).data;
          const dst = src instanceof Int32Array ? new Int32Array(v.n * oh * ow * c) : new Float32Array(v.n * oh * ow * c);
          const row = w * c;
          for (let s = 0; s < v.n; s++) {
            for (let y = 0; y < h; y++) {
              const from = (s * h + y) * row;
              dst.set(src.subarray(from, from + row), ((s * oh + y + p) * ow + p) * c);
            }
          }
          return { ...num(v), shape: out, data: dst };
        },
      };
    }
    case "one_hot": {
      const k = numArg(step, "classes", null, field);
      if (!Number.isInteger(k) || k < 1) throw err(`one_hot's classes must be a positive integer, got ${k}`);
      if (prod(shape) !== 1 || shape.length > 1) throw err(`one_hot needs one class id per sample, but its input has shape ${fmt(shape)}`);
      return {
        out: { kind: "num", int: false, shape: [k] },
        apply(v) {
          const src = num(v).data;
          const out = new Float32Array(v.n * k);
          for (let i = 0; i < v.n; i++) {
            const c = src[i]!;
            if (!Number.isInteger(c) || c < 0 || c >= k) throw err(`one_hot(${k}): sample's class ${c} is not an integer in [0, ${k - 1}]`);
            out[i * k + c] = 1;
          }
          return { kind: "num", int: false, shape: [k], n: v.n, data: out };
        },
      };
    }
    case "shift": {
      const by = numArg(step, "by", 1, field);
      if (!Number.isInteger(by) || by < 1) throw err(`shift's by must be a positive integer, got ${by}`);
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
    }
    case "attention_mask": {
      // 1 for a token, 0 for padding: the padding id of the vocabulary the ids came from.
      if (!vocabBefore) throw err("attention_mask marks the padding of token ids: put it right after tokenize(…)");
      const pad = padId(vocabBefore);
      return {
        out: { kind: "num", int: true, shape },
        apply(v) {
          const src = num(v).data;
          const dst = new Int32Array(src.length);
          for (let i = 0; i < src.length; i++) dst[i] = src[i] === pad ? 0 : 1;
          return { ...num(v), int: true, data: dst };
        },
      };
    }
    case "token_types": {
      // BERT's segment ids: 0 through the first [SEP], 1 after it (a pair's second text), 0 for padding.
      if (!vocabBefore) throw err("token_types marks the two texts of tokenize(…, pair: …)'s ids: put it right after tokenize(…)");
      const pad = padId(vocabBefore);
      const sep = vocabBefore.split === "wordpiece" ? specialId(vocabBefore, "[SEP]") : -1;
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
    }
    case "mask_tokens": {
      if (!vocabBefore) throw err("mask_tokens masks token ids: put it right after tokenize(…)");
      const rate = numArg(step, "rate", 0.15, field);
      if (!(rate > 0 && rate < 1)) throw err(`mask_tokens' rate must be between 0 and 1, got ${rate}`);
      const seed = numArg(step, "seed", 0, field);
      if (!Number.isInteger(seed)) throw err(`mask_tokens' seed must be an integer, got ${seed}`);
      const labels = args(step).labels === true;
      const plan = maskPlan(vocabBefore, err);
      const len = prod(shape);
      return {
        out: { kind: "num", int: true, shape },
        apply(v, rows) {
          const src = num(v).data;
          const dst = new Int32Array(src.length);
          for (let s = 0; s < v.n; s++) {
            const row = rows[s]!;
            for (let i = 0; i < len; i++) {
              const at = s * len + i;
              const id = src[at]!;
              const masked = !plan.special.has(id) && maskHash(seed, row, i, 0) < rate;
              if (labels) dst[at] = masked ? id : plan.ignore;
              else if (!masked) dst[at] = id;
              else {
                // BERT's 80/10/10: [MASK], a random token of the vocabulary, or the token itself.
                const u = maskHash(seed, row, i, 1);
                dst[at] = u < 0.8 ? plan.mask : u < 0.9 ? plan.firstWord + Math.floor(maskHash(seed, row, i, 2) * (plan.size - plan.firstWord)) : id;
              }
            }
          }
          return { kind: "num", int: true, shape, n: v.n, data: dst };
        },
      };
    }
    default:
      throw err(`unknown preprocessing step ${fn}`);
  }
}
