// A Hugging Face tokenizer.json that nnetc's own tokenizers (wordpiece.ts, bpe.ts) do not run — Unigram (T5,
// ALBERT), SentencePiece-style BPE with byte fallback (Llama 2, Mistral), byte-level BPE behind a regex split
// (Llama 3), RoBERTa's <s> … </s> framing, … — run by @huggingface/tokenizers (pure JS, kept by Hugging Face).
// spec/unit/hf_tokenizers.test.ts checks its ids against the Python package on the SpamAssassin corpus.
//   encode    the library's ids of the text without special tokens, cut to max_len less the tokens the
//             post-processor adds (its template: Llama's <s> before, T5's </s> after), then framed as the
//             template says — what Python's `enable_truncation(max_len)` gives — and padded;
//   padding   tokenizer_config.json's pad_token, else the tokenizer.json's padding token, else a token named
//             <pad>, [PAD] or <|pad|>, else the end-of-text token (eos_token, </s>, <|endoftext|>,
//             <|end_of_text|>: Llama 2 has no padding token, and generation stops there), else id 0.
// The Vocabulary carries tokenizer.json's text and tokenizer_config.json's fields the library reads, so a run
// (model.json, checkpoints) tokenizes with its own copy. The library is loaded when such a vocabulary is first
// used, not at start-up, through Node's require (process.getBuiltinModule, so that the module imports no Node
// built-in and bundles for browsers; there the library is not loaded and such a vocabulary is refused).
import { DataError, jsonProblem } from "./errors.js";
import type { Vocabulary } from "./tokenize.js";

export const HF_TOKENIZERS_PACKAGE = "@huggingface/tokenizers";

/** What a tokenizer.json may be (its text): the same bound as the other readers' files, doubled. */
export const HF_LIMITS = { bytes: 32 << 20, tokens: 1 << 20, configBytes: 1 << 20 } as const;

/** The part of @huggingface/tokenizers' Tokenizer nnetc uses (its own types do not resolve under NodeNext). */
interface HfTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean | null }): string;
  token_to_id(token: string): number | undefined;
  get_vocab(withAdded?: boolean): Map<string, number>;
  post_processor: ((tokens: string[], pair: string[] | null, addSpecial: boolean) => { tokens: string[] }) | null;
}

/** tokenizer_config.json's fields the library reads (token objects written as their content). */
const CONFIG_STRINGS = ["bos_token", "eos_token", "pad_token", "unk_token", "target_lang"] as const;
const CONFIG_FLAGS = ["remove_space", "clean_up_tokenization_spaces", "do_lowercase_and_remove_accent"] as const;

let library: { Tokenizer: new (json: object, config: object) => HfTokenizer } | null = null;

function load(): NonNullable<typeof library> {
  if (library) return library;
  const nodeModule = typeof process === "undefined" ? undefined : process.getBuiltinModule?.("node:module");
  if (!nodeModule) throw new DataError(`this tokenizer.json is run by the npm package ${HF_TOKENIZERS_PACKAGE}, which nnetc loads on Node only: outside Node, use a vocabulary of nnetc's own tokenizers (wordpiece, bpe, word, char)`);
  try {
    // The CommonJS build, required synchronously: encoding is synchronous, and the CLI bundle leaves it out.
    library = nodeModule.createRequire(import.meta.url)(HF_TOKENIZERS_PACKAGE) as NonNullable<typeof library>;
  } catch (e) {
    throw new DataError(`this tokenizer.json is run by the npm package ${HF_TOKENIZERS_PACKAGE}, which could not be loaded (${(e as Error).message.split("\n")[0]}); run: npm install ${HF_TOKENIZERS_PACKAGE}`);
  }
  return library;
}

/** The fields of a tokenizer_config.json's text that matter here; a message when it is not a JSON object. */
export function parseTokenizerConfig(text: string): Record<string, string | boolean | string[]> | string {
  if (text.length > HF_LIMITS.configBytes) return `it is over ${HF_LIMITS.configBytes >> 20} MB`;
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    return `it is not JSON (${jsonProblem(e)})`;
  }
  if (!j || typeof j !== "object" || Array.isArray(j)) return "it is not a JSON object";
  const o = j as Record<string, unknown>;
  const token = (x: unknown) => (typeof x === "string" ? x : x && typeof x === "object" && typeof (x as { content?: unknown }).content === "string" ? (x as { content: string }).content : undefined);
  const out: Record<string, string | boolean | string[]> = {};
  for (const k of CONFIG_STRINGS) {
    const t = token(o[k]);
    if (t !== undefined) out[k] = t;
  }
  for (const k of CONFIG_FLAGS) if (typeof o[k] === "boolean") out[k] = o[k] as boolean;
  if (Array.isArray(o.additional_special_tokens)) out.additional_special_tokens = o.additional_special_tokens.map(token).filter((t): t is string => t !== undefined);
  return out;
}

interface Frame {
  tok: HfTokenizer;
  before: number[];
  after: number[];
  /** max_len → text → framed ids. */
  cache: Map<number, Map<string, Int32Array>>;
}

const frames = new WeakMap<Vocabulary, Frame>();

/** The library's tokenizer of a vocabulary and its template's special ids; a DataError when it cannot load it. */
function frame(v: Vocabulary): Frame {
  let f = frames.get(v);
  if (f) return f;
  const made = make(v.hf!.tokenizer, v.hf!.config);
  if (typeof made === "string") throw new DataError(`the saved Hugging Face tokenizer cannot be loaded: ${made}`);
  frames.set(v, made);
  return made;
}

function make(text: string, config: Record<string, unknown>): Frame | string {
  const { Tokenizer } = load();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    return `it is not JSON (${jsonProblem(e)})`;
  }
  // The library reads these keys unguarded: null where a tokenizer.json has none.
  for (const k of ["normalizer", "pre_tokenizer", "post_processor", "decoder"]) if (!(k in json)) json[k] = null;
  if (!Array.isArray(json.added_tokens)) json.added_tokens = [];
  const model = json.model as { type?: unknown } | null;
  const what = `model ${String(model?.type)}, normalizer ${kinds(json.normalizer)}, pre_tokenizer ${kinds(json.pre_tokenizer)}, post_processor ${kinds(json.post_processor)}, decoder ${kinds(json.decoder)}`;
  let tok: HfTokenizer;
  try {
    tok = new Tokenizer(json, config);
    if (typeof tok.encode("a b", { add_special_tokens: true })?.ids?.length !== "number") throw new Error("it encodes no ids");
  } catch (e) {
    return `${HF_TOKENIZERS_PACKAGE} cannot run it (${String((e as Error)?.message ?? e).split("\n")[0]}); it holds ${what}`;
  }
  // The template: where the text's tokens go among the special tokens the post-processor adds.
  const mark = "\u0000nnetc-text\u0000";
  const framed = tok.post_processor ? tok.post_processor([mark], null, true).tokens : [mark];
  const at = framed.indexOf(mark);
  const id = (t: string) => tok.token_to_id(t) ?? -1;
  const before = framed.slice(0, at).map(id);
  const after = framed.slice(at + 1).map(id);
  if (at < 0 || [...before, ...after].some((i) => i < 0)) return `its post-processor's special tokens (${framed.filter((t) => t !== mark).join(" ")}) are not in its vocabulary`;
  return { tok, before, after, cache: new Map() };
}

function kinds(c: unknown): string {
  if (!c || typeof c !== "object") return "none";
  const o = c as { type?: unknown; normalizers?: unknown; pretokenizers?: unknown; processors?: unknown; decoders?: unknown };
  const parts = [o.normalizers, o.pretokenizers, o.processors, o.decoders].find(Array.isArray) as unknown[] | undefined;
  return parts ? `${String(o.type)}[${parts.map(kinds).join(", ")}]` : String(o.type);
}

/** A vocabulary run by the library from tokenizer.json's text (and tokenizer_config.json's, if any); a message saying why not. */
export function hfVocabulary(text: string, configText: string | null): Vocabulary | string {
  if (text.length > HF_LIMITS.bytes) return `it is over ${HF_LIMITS.bytes >> 20} MB`;
  const config = configText === null ? {} : parseTokenizerConfig(configText);
  if (typeof config === "string") return `its tokenizer_config.json is unusable: ${config}`;
  const f = make(text, config);
  if (typeof f === "string") return f;
  const vocab = f.tok.get_vocab(true);
  if (vocab.size > HF_LIMITS.tokens) return `its vocabulary has ${vocab.size} tokens; at most ${HF_LIMITS.tokens} are read`;
  let size = 0;
  for (const i of vocab.values()) size = Math.max(size, i + 1);
  if (size < 2) return "its vocabulary has under 2 tokens";
  const tokens: string[] = new Array(size).fill("");
  for (const [t, i] of vocab) tokens[i] = t;
  const v: Vocabulary = { split: "hf", lowercase: false, size, tokens, hf: { tokenizer: text, config, pad: padOf(f.tok, text, config) } };
  frames.set(v, f);
  return v;
}

function padOf(tok: HfTokenizer, text: string, config: Record<string, unknown>): number {
  const id = (t: unknown) => (typeof t === "string" ? tok.token_to_id(t) : undefined);
  const padding = (JSON.parse(text) as { padding?: { pad_token?: unknown } | null }).padding;
  for (const t of [config.pad_token, padding?.pad_token, "<pad>", "[PAD]", "<|pad|>", config.eos_token, "</s>", "<|endoftext|>", "<|end_of_text|>"]) {
    const i = id(t);
    if (i !== undefined) return i;
  }
  return 0;
}

/** Texts encoded per max_len, kept for the next epoch (the library runs a whole text at a time: ~5 ms for 2,000 characters of Llama's BPE). */
const CACHED_TEXTS = 1 << 16;

/** Token ids of `text` as Python's tokenizer gives them with truncation at maxLen, padded with the vocabulary's pad id. */
export function encodeHf(text: string, v: Vocabulary, maxLen: number, out: Int32Array, offset: number): Int32Array {
  const f = frame(v);
  let cache = f.cache.get(maxLen);
  if (!cache) f.cache.set(maxLen, (cache = new Map()));
  let all = cache.get(text);
  if (!all) {
    const ids = f.tok.encode(text, { add_special_tokens: false }).ids;
    const room = Math.max(0, maxLen - f.before.length - f.after.length);
    all = Int32Array.from([...f.before, ...(ids.length > room ? ids.slice(0, room) : ids), ...f.after].slice(0, maxLen));
    if (cache.size >= CACHED_TEXTS) cache.clear();
    cache.set(text, all);
  }
  out.set(all, offset);
  out.fill(v.hf!.pad, offset + all.length, offset + maxLen);
  return out;
}

/** The special tokens the template puts after a text (T5's </s>): a prompt to continue ends before them. */
export function hfAfter(v: Vocabulary): number[] {
  return frame(v).after;
}

/** The text of ids, special tokens dropped, as the tokenizer's decoder writes it. */
export function decodeHf(ids: ArrayLike<number>, v: Vocabulary): string {
  const list = Array.from(ids).filter((i) => i !== v.hf!.pad);
  if (!list.length) return "";
  const clean = v.hf!.config.clean_up_tokenization_spaces;
  return frame(v).tok.decode(list, { skip_special_tokens: true, clean_up_tokenization_spaces: typeof clean === "boolean" ? clean : false });
}

/** Check a saved vocabulary's hf part; a message or null. */
export function hfProblem(o: Record<string, unknown>): string | null {
  const hf = o.hf as { tokenizer?: unknown; config?: unknown; pad?: unknown } | undefined;
  if (!hf || typeof hf !== "object") return "its Hugging Face tokenizer is missing";
  if (typeof hf.tokenizer !== "string" || hf.tokenizer.length > HF_LIMITS.bytes) return `its tokenizer.json is not a text of at most ${HF_LIMITS.bytes >> 20} MB`;
  if (!hf.config || typeof hf.config !== "object" || Array.isArray(hf.config)) return "its tokenizer_config fields are not an object";
  if (!Number.isInteger(hf.pad) || (hf.pad as number) < 0 || (hf.pad as number) >= (o.size as number)) return `its padding id ${JSON.stringify(hf.pad)} is not an id of the vocabulary`;
  return null;
}
