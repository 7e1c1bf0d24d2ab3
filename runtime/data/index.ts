// The data layer of the runtime, independent of TensorFlow.js: loadDataset turns an IR dataset into train
// and test splits whose batch() yields plain typed arrays. Raw columns stay compact (Fashion-MNIST is 47 MB
// of bytes); preprocessing runs per batch. See runtime/data/README.md.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import type { CallSpec, DatasetSpec, FieldSpec } from "../spec.js";
import type { Column, Table } from "./columns.js";
import { prod } from "./columns.js";
import { columnsHint, DataError } from "./errors.js";
import { confineDataPath, FULL_SET_HINT, resolveDataDir } from "./resolve.js";
import { Rng, shuffledIndices } from "./rng.js";
import { loadSource } from "./sources.js";
import { type Split, subset, TableSplit } from "./split.js";
import { compileField, type FieldPipeline } from "./steps.js";
import { buildVocabulary, type SplitMode, type Vocabularies, type Vocabulary, vocabularyProblem } from "./tokenize.js";
import { BPE_LIMITS, parseBpeVocab } from "./bpe.js";
import { parseWordPieceVocab, WORDPIECE_LIMITS } from "./wordpiece.js";
import { parseTokenizerJson } from "./tokenizer_json.js";
import { HF_LIMITS } from "./hf_tokenizer.js";
import { buildVectorizer, VECTORIZE_LIMITS, type VectorizeMode } from "./vectorize.js";

export { DataError, type DataCode } from "./errors.js";
export { Rng, shuffledIndices } from "./rng.js";
export { subset, type Batch, type Split } from "./split.js";
export type { FieldInfo, OutDType, Tensor } from "./steps.js";
export { isRedrawnStep } from "./steps.js";
export { buildVocabulary, decodeIds, encodeText, tokenizeText, PAD_ID, UNK_ID, type SplitMode, type Vocabularies, type Vocabulary } from "./tokenize.js";
export { DEBIAN_FASHION_MNIST, embeddedDataDir, resolveDataDir, type ResolveOptions, type ResolvedSources } from "./resolve.js";
export { parseCsv } from "./csv.js";
export { parseIdx, readIdx } from "./idx.js";
export { decodeImage, IMAGE_EXTENSIONS, IMAGE_LIMITS, resizeRgb } from "./image.js";
export { SPAM_ASSASSIN_PACKAGE, spamAssassinTable } from "./sources.js";

/**
 * A tokenize step's vocabulary file, by its kind: GPT-2's encoder.json with its merges' text, a Hugging Face
 * tokenizer.json (a `.json` file without merges; with the tokenizer_config.json beside it, if any), else BERT's
 * vocab.txt; a message when it is not one.
 */
export function parseVocabularyFile(file: string, text: string, mergesText: string | null, lowercase: boolean, config?: { text: string } | null): Vocabulary | string {
  if (mergesText !== null) return parseBpeVocab(text, mergesText);
  if (!/\.json$/i.test(file)) return parseWordPieceVocab(text, lowercase);
  return parseTokenizerJson(text, (config === undefined ? tokenizerConfigBeside(file) : config)?.text ?? null);
}

/** The tokenizer_config.json in a tokenizer.json's folder (its pad, eos, … tokens), or null. */
export function tokenizerConfigBeside(file: string): { file: string; text: string; sha256: string } | null {
  if (!/\.json$/i.test(file)) return null;
  const config = path.join(path.dirname(file), "tokenizer_config.json");
  if (config === file || !existsSync(config) || !statSync(config).isFile()) return null;
  if (statSync(config).size > HF_LIMITS.configBytes) throw new DataError(`${config} is over ${HF_LIMITS.configBytes >> 20} MB`);
  const bytes = readFileSync(config);
  return { file: config, text: bytes.toString("utf8"), sha256: createHash("sha256").update(bytes).digest("hex") };
}

export interface LoadOptions {
  /** --data DIR: where source paths resolve; null → against baseDir. */
  dataDir: string | null;
  /** The .nnet file's folder. */
  baseDir: string;
  /**
   * The run's seed. Held-out test splits deliberately do not depend on it: they use the dataset's own
   * `split seed:` (default 0), so that train, eval and predict see the same test samples whatever seed
   * each is run with.
   */
  seed: number;
  /** Saved vocabularies (by field name) to reuse instead of building new ones (evaluation, resume). */
  vocab?: Vocabularies;
  /** The run's saved class names (evaluation, resume): the source's must agree, so label ids mean what they meant. */
  classes?: string[];
  log?: (msg: string) => void;
  /**
   * Integer fields that are class ids, by field name: the classes of the output they are the target of (a
   * cross_entropy, focal or dice loss), checked in full when the splits are built (NN5010).
   */
  labels?: Readonly<Record<string, LabelRange>>;
  /** Folders searched for missing IDX files (default [DEBIAN_FASHION_MNIST]). */
  fallbackDirs?: readonly string[];
  /** The embedded Fashion-MNIST test set (default: data/fashion-mnist of the package); null disables it. */
  embeddedDir?: string | null;
}

/** The ids a label field may hold: 0 to classes − 1, and the loss's ignore ids (padding); `by` says why. */
export interface LabelRange {
  classes: number;
  ignore: readonly number[];
  /** What takes the ids, for the message: 'logits has 3 classes: cross_entropy(logits, label)'. */
  by: string;
}

/** NN5010 at the first sample of `split` whose `field` holds an id outside `range`. */
function checkLabels(split: Split, field: string, data: ArrayLike<number>, from: number, per: number, range: LabelRange): void {
  for (let i = 0; i < data.length; i++) {
    const y = data[i]!;
    if ((y >= 0 && y < range.classes) || range.ignore.includes(y)) continue;
    const k = from + Math.floor(i / per);
    const at = split.locate ? split.locate(k) : `sample ${k}`;
    const ign = range.ignore.length ? ` (or ${range.ignore.join(", ")}, which the loss ignores)` : "";
    throw new DataError(`${at}: field "${field}" is ${y}${per > 1 ? ` at position ${i % per}` : ""}, but ${range.by} takes class ids 0 to ${range.classes - 1}${ign}`, "labelOutOfRange");
  }
}

export interface LoadedData {
  train: Split;
  test: Split | null;
  /** The vocabulary of every tokenized field, by field name: save it with the model. */
  vocab: Vocabularies;
  /** Things the user should know (fallbacks taken, splits made), one sentence each. */
  notes: string[];
  /** Class names (index = label id) for sources that name their classes (folders, spam_assassin); else null. */
  classes: string[] | null;
  /** Per-sample shape of each numeric column a field reads (predict's raw inputs are made to fit it). */
  columns: Record<string, number[]>;
}

// What a run saves of its data besides vocabularies (model.json, checkpoints, exported files): data/saved.ts.
export { readSavedData, type SavedData } from "./saved.js";
import type { SavedData } from "./saved.js";

/** The record of `d` a run saves; written beside the vocabularies. */
export function savedData(d: LoadedData): SavedData {
  return { ...(d.classes ? { classes: d.classes } : {}), ...(Object.keys(d.columns).length ? { columns: d.columns } : {}) };
}

/** Sorted train and test rows: a `fraction` of n held out, chosen by a seeded shuffle (or the tail). */
export function holdOut(n: number, fraction: number, seed: number, shuffle = true): { train: Uint32Array; test: Uint32Array } {
  if (n < 2) throw new DataError(`cannot hold out a test split from ${n} sample${n === 1 ? "" : "s"}`);
  const nTest = Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  const order = shuffle ? shuffledIndices(n, new Rng(seed)) : Uint32Array.from({ length: n }, (_, i) => i);
  return { train: order.slice(0, n - nTest).sort(), test: order.slice(n - nTest).sort() };
}

function columnFor(table: Table, field: FieldSpec): Column {
  // A field that generates its values (random_normal) reads no column: zeros of its shape, drawn over by its first step.
  if (field.column === "") {
    const shape = field.shape.map(Number);
    return { kind: "num", name: field.name, shape, int: false, gather: (_rows, out) => out.fill(0) };
  }
  const c = table.columns.get(field.column);
  if (!c) {
    const have = [...table.columns.keys()];
    throw new DataError(`field "${field.name}" reads column "${field.column}", which ${table.origin} does not have (${columnsHint(field.column, have)})`);
  }
  return c;
}

const pct = (f: number) => `${Math.round(f * 1000) / 10}%`;

/** Load a dataset: resolve its files, read the sources, split, build vocabularies and compile the fields. */
export async function loadDataset(ds: DatasetSpec, opts: LoadOptions): Promise<LoadedData> {
  const log = opts.log ?? (() => {});
  const resolved = resolveDataDir(ds, opts);
  const notes = [...resolved.notes];
  if (!resolved.source) throw new DataError(`dataset "${ds.name}" has no source`);
  // The columns fields read, and the second texts of tokenize(…, pair: column).
  const wanted = new Set(ds.fields.flatMap((f) => [...(f.column ? [f.column] : []), ...f.steps.map((s) => s.args.pair).filter((p): p is string => typeof p === "string")]));
  const ctx = { wanted, log, note: (m: string) => notes.push(m), baseDir: opts.baseDir, confine: (f: string) => confineDataPath(path.relative(opts.baseDir, f) || f, f, opts, "a data file") };
  const trainTable = await loadSource(resolved.source, { ...ctx, classes: null });
  const testTable = resolved.test ? await loadSource(resolved.test, { ...ctx, classes: trainTable.classes }) : null;
  if (trainTable.size === 0) throw new DataError(`dataset "${ds.name}": ${trainTable.origin} holds no samples`);
  if (opts.classes && trainTable.classes && opts.classes.join("\n") !== trainTable.classes.join("\n")) {
    const list = (c: string[]) => (c.length > 12 ? `${c.slice(0, 12).join(", ")}, … (${c.length})` : c.join(", "));
    throw new DataError(`the run was trained with the classes ${list(opts.classes)}, but ${trainTable.origin} now has ${list(trainTable.classes)}: label ids would mean other classes; restore the class folders, or train a new run`);
  }

  const splitSeed = typeof ds.split.seed === "number" ? ds.split.seed : 0;
  const shuffle = ds.split.shuffle !== false;
  let trainRows: Uint32Array | null = null;
  let testRows: Uint32Array | null = null;
  let testSource: Table | null = testTable;
  if (resolved.embeddedOnly) {
    const h = holdOut(trainTable.size, 0.2, splitSeed, true);
    trainRows = h.train;
    testRows = h.test;
    testSource = trainTable;
    const e = resolved.embeddedOnly;
    notes.push(
      `The Fashion-MNIST training files (${e.missing.join(", ")}) were not found (tried ${e.tried.join(", ")}), ` +
        `so the ${trainTable.size}-image Fashion-MNIST test set from ${e.from} is the only source, split 80/20 (seed ${splitSeed}) ` +
        `into ${h.train.length} training and ${h.test.length} test samples. For the full 60000-image training set, ${FULL_SET_HINT}.`,
    );
  } else if (typeof ds.split.test === "number" && ds.split.test > 0) {
    if (testTable) notes.push(`Dataset "${ds.name}" has a test source, so split test: ${ds.split.test} is ignored.`);
    else {
      const h = holdOut(trainTable.size, ds.split.test, splitSeed, shuffle);
      trainRows = h.train;
      testRows = h.test;
      testSource = trainTable;
      notes.push(`Held out ${pct(ds.split.test)} of ${trainTable.origin} as the test split (${shuffle ? `seed ${splitSeed}` : "the last samples"}): ${h.train.length} training and ${h.test.length} test samples.`);
    }
  }

  // Vocabularies: from the training rows only, shared by fields that tokenize one column alike.
  const vocab: Vocabularies = {};
  const built = new Map<string, Vocabulary>();
  const vocabFor = (field: FieldSpec, column: Column) => (step: CallSpec): Vocabulary => {
    if (step.fn === "vectorize") return (vocab[field.name] = vectorizerFor(field, column, step));
    if (typeof step.args.merges === "string" && typeof step.args.vocab !== "string") throw new DataError(`field "${field.name}": tokenize's merges (${step.args.merges}) go with a BPE vocabulary file, vocab: "encoder.json"`);
    if (typeof step.args.vocab === "string") return (vocab[field.name] = fileVocabFor(field, step));
    const size = step.args.vocab;
    const split: SplitMode = step.args.split === "char" ? "char" : "word";
    const lowercase = step.args.lowercase !== false;
    if (typeof size !== "number" || !Number.isInteger(size) || size < 2) throw new DataError(`field "${field.name}": tokenize's vocab must be an integer ≥ 2, got ${JSON.stringify(size)}`);
    const saved = opts.vocab?.[field.name];
    if (saved) {
      const problem = vocabularyProblem(saved);
      if (problem) throw new DataError(`the saved vocabulary of field "${field.name}" is unusable: ${problem}`);
      if (saved.vectorize) throw new DataError(`the saved vocabulary of field "${field.name}" is a vectorizer's, but the dataset now tokenizes the field; retrain, or restore the dataset's steps`);
      if (saved.split !== split || saved.lowercase !== lowercase || saved.size !== size) {
        throw new DataError(
          `the saved vocabulary of field "${field.name}" was built with vocab: ${saved.size}, split: ${saved.split}, lowercase: ${saved.lowercase}, ` +
            `but the dataset now says vocab: ${size}, split: ${split}, lowercase: ${lowercase}; retrain, or restore the dataset's tokenize settings`,
        );
      }
      return (vocab[field.name] = saved);
    }
    if (opts.vocab) notes.push(`No saved vocabulary for field "${field.name}": built a new one from the training split, so token ids may differ from the model's.`);
    const key = JSON.stringify([field.column, size, split, lowercase]);
    let v = built.get(key);
    if (!v) {
      const texts = (column as Extract<Column, { kind: "text" }>).data;
      const rows = trainRows;
      log(`building the vocabulary of field "${field.name}"`);
      v = buildVocabulary(rows ? Array.from(rows, (r) => texts[r]!) : texts, { size, split, lowercase });
      built.set(key, v);
    }
    return (vocab[field.name] = v);
  };

  /** vectorize(vocab: N, mode: …, ngrams: …): the run's saved vectorizer (its settings must not have changed), else one fitted on the training rows. */
  const vectorizerFor = (field: FieldSpec, column: Column, step: CallSpec): Vocabulary => {
    const size = step.args.vocab;
    if (typeof size !== "number" || !Number.isInteger(size) || size < 3) throw new DataError(`field "${field.name}": vectorize's vocab must be an integer ≥ 3, got ${JSON.stringify(size)}`);
    const ngrams = step.args.ngrams ?? 1;
    if (typeof ngrams !== "number" || !Number.isInteger(ngrams) || ngrams < 1 || ngrams > VECTORIZE_LIMITS.ngrams) throw new DataError(`field "${field.name}": vectorize's ngrams must be an integer from 1 to ${VECTORIZE_LIMITS.ngrams}, got ${JSON.stringify(ngrams)}`);
    const mode = (step.args.mode ?? "tf_idf") as VectorizeMode;
    const norm = step.args.norm === "l2" ? "l2" : "none";
    const split: SplitMode = step.args.split === "char" ? "char" : "word";
    const lowercase = step.args.lowercase !== false;
    const want = { size, split, lowercase, mode, ngrams, norm } as const;
    const saved = opts.vocab?.[field.name];
    if (saved) {
      const problem = vocabularyProblem(saved);
      if (problem) throw new DataError(`the saved vocabulary of field "${field.name}" is unusable: ${problem}`);
      const had = saved.vectorize ? { size: saved.size, split: saved.split, lowercase: saved.lowercase, mode: saved.vectorize.mode, ngrams: saved.vectorize.ngrams, norm: saved.vectorize.norm } : null;
      const say = (o: typeof want | NonNullable<typeof had>) => `vocab: ${o.size}, mode: ${o.mode}, ngrams: ${o.ngrams}, norm: ${o.norm}, split: ${o.split}, lowercase: ${o.lowercase}`;
      if (!had) throw new DataError(`the saved vocabulary of field "${field.name}" is a tokenizer's, but the dataset now vectorizes the field; retrain, or restore the dataset's steps`);
      if (JSON.stringify(had) !== JSON.stringify(want)) throw new DataError(`the saved vectorizer of field "${field.name}" was fitted with ${say(had)}, but the dataset now says ${say(want)}; retrain, or restore the dataset's vectorize settings`);
      return saved;
    }
    if (opts.vocab) notes.push(`No saved vectorizer for field "${field.name}": fitted a new one on the training split, so its columns may differ from the model's.`);
    const key = JSON.stringify(["vectorize", field.column, want]);
    let v = built.get(key);
    if (!v) {
      const texts = (column as Extract<Column, { kind: "text" }>).data;
      log(`fitting the ${mode} vectorizer of field "${field.name}" (${ngrams === 1 ? "words" : `1- to ${ngrams}-grams`}, ${size} columns)`);
      v = buildVectorizer(trainRows ? Array.from(trainRows, (r) => texts[r]!) : texts, want);
      built.set(key, v);
    }
    return v;
  };

  /**
   * tokenize(vocab: "vocab.txt") (WordPiece) or tokenize(vocab: "encoder.json", merges: "vocab.bpe") (byte-level
   * BPE): the run's saved copy when there is one (the files may have moved), else the files.
   */
  /**
   * The run's saved copy of a tokenizer file is what its ids mean: it is used even when the dataset's file has
   * changed since (or moved), and a changed file is said, with both checksums.
   */
  const told = new Set<string>();
  const changedSince = (field: FieldSpec, step: CallSpec, saved: Vocabulary): void => {
    if (!saved.files?.length) return;
    const args = [step.args.vocab, step.args.merges].filter((a): a is string => typeof a === "string");
    args.forEach((arg, i) => {
      const was = saved.files![i];
      const file = path.resolve(opts.baseDir, arg);
      if (!was || told.has(file) || !existsSync(file) || !statSync(file).isFile() || statSync(file).size > 2 * BPE_LIMITS.bytes) return;
      const now = createHash("sha256").update(readFileSync(file)).digest("hex");
      told.add(file);
      if (now !== was.sha256) notes.push(`field "${field.name}": ${file} has changed since the run was trained (SHA-256 ${now.slice(0, 12)}…, the run's copy ${was.sha256.slice(0, 12)}…); the run's saved copy tokenizes, so ids mean what they meant in training.`);
    });
  };

  const fileVocabFor = (field: FieldSpec, step: CallSpec): Vocabulary => {
    const bpe = typeof step.args.merges === "string";
    // A Hugging Face tokenizer.json says itself which model it is (WordPiece or byte-level BPE) and how it cases.
    const hf = !bpe && /\.json$/i.test(step.args.vocab as string);
    const kind = bpe ? "bpe" : "wordpiece";
    const lowercase = bpe ? false : step.args.lowercase !== false;
    if (step.args.split === "char") throw new DataError(`field "${field.name}": tokenize with a vocabulary file (${step.args.vocab}) splits as ${bpe ? "GPT-2" : "BERT"} does; drop split: char`);
    const saved = opts.vocab?.[field.name];
    if (saved) {
      const problem = vocabularyProblem(saved);
      if (problem) throw new DataError(`the saved vocabulary of field "${field.name}" is unusable: ${problem}`);
      changedSince(field, step, saved);
      if (!hf && (saved.split !== kind || saved.lowercase !== lowercase)) {
        const was = saved.split === "wordpiece" ? `WordPiece with lowercase: ${saved.lowercase}` : saved.split === "bpe" ? "byte-level BPE" : `one built from the data (vocab: ${saved.size})`;
        throw new DataError(`the saved vocabulary of field "${field.name}" is ${was}, but the dataset now says vocab: ${JSON.stringify(step.args.vocab)}${bpe ? `, merges: ${JSON.stringify(step.args.merges)}` : `, lowercase: ${lowercase}`}; retrain, or restore the dataset's tokenize settings`);
      }
      return saved;
    }
    // Two fields of one file's vocabulary (ids and their attention_mask) read it once.
    const key = JSON.stringify(["file", step.args.vocab, step.args.merges ?? null, lowercase]);
    const known = built.get(key);
    if (known) return known;
    const read = (arg: "vocab" | "merges", what: string) => {
      const file = path.resolve(opts.baseDir, step.args[arg] as string);
      confineDataPath(step.args[arg] as string, file, opts, "a tokenizer file");
      let st;
      try {
        st = statSync(file);
      } catch {
        throw new DataError(`field "${field.name}": tokenize's ${arg} file ${file} does not exist (give ${what}, relative to the .nnet file)`);
      }
      // Bounded before it is read: the reader of its kind would refuse it anyway, after reading it whole.
      const limit = bpe ? BPE_LIMITS.bytes : hf ? 2 * BPE_LIMITS.bytes : WORDPIECE_LIMITS.bytes;
      if (!st.isFile() || st.size > limit) throw new DataError(`field "${field.name}": tokenize's ${arg} file ${file} is ${st.isFile() ? `over ${limit >> 20} MB` : "not a file"}`);
      const bytes = readFileSync(file);
      return { file, text: bytes.toString("utf8"), sha256: createHash("sha256").update(bytes).digest("hex") };
    };
    const vocabFile = read("vocab", bpe ? "GPT-2's encoder.json" : hf ? "a Hugging Face tokenizer.json" : "a BERT vocab.txt");
    const mergesFile = bpe ? read("merges", "GPT-2's vocab.bpe") : null;
    const configFile = hf ? tokenizerConfigBeside(vocabFile.file) : null;
    const parsed = parseVocabularyFile(vocabFile.file, vocabFile.text, mergesFile?.text ?? null, lowercase, configFile);
    // The files' names and checksums: the vocabulary file, then the merges (BPE) or the tokenizer_config.json (Hugging Face, when one was read).
    const v = typeof parsed === "string" ? parsed : { ...parsed, files: [vocabFile, ...(mergesFile ? [mergesFile] : []), ...(configFile && parsed.split === "hf" ? [configFile] : [])].map((x) => ({ name: path.basename(x.file), sha256: x.sha256 })) };
    if (typeof v === "string") throw new DataError(`field "${field.name}": ${vocabFile.file}${bpe ? ` with ${step.args.merges}` : ""} is not ${bpe ? "a byte-level BPE vocabulary" : hf ? "a tokenizer nnetc reads" : "a WordPiece vocabulary"}: ${v}`);
    built.set(key, v);
    const what = v.split === "bpe" ? `byte-level BPE vocabulary of ${v.size} tokens and ${v.merges!.length} merges` : v.split === "hf" ? `Hugging Face tokenizer of ${v.size} tokens (run by @huggingface/tokenizers, padding id ${v.hf!.pad})` : `WordPiece vocabulary of ${v.size} tokens`;
    log(`field "${field.name}": ${what} from ${vocabFile.file}`);
    return v;
  };

  type Pipes = Map<string, { pipeline: FieldPipeline; column: Column }>;
  const trainPipes: Pipes = new Map();
  for (const field of ds.fields) {
    const column = columnFor(trainTable, field);
    trainPipes.set(field.name, { pipeline: compileField(field, column, vocabFor(field, column), (n) => trainTable.columns.get(n)), column });
  }
  let testPipes = trainPipes;
  if (testSource && testSource !== trainTable) {
    testPipes = new Map();
    for (const field of ds.fields) {
      const column = columnFor(testSource, field);
      // The test source reuses the training vocabularies.
      const pipeline = compileField(field, column, () => vocab[field.name]!, (n) => testSource.columns.get(n));
      const a = trainPipes.get(field.name)!.pipeline.info.shape;
      if (a.join(",") !== pipeline.info.shape.join(",")) {
        throw new DataError(`field "${field.name}": samples have shape [${a.join(", ")}] in the training source but [${pipeline.info.shape.join(", ")}] in the test source`);
      }
      testPipes.set(field.name, { pipeline, column });
    }
  }

  let train: Split = new TableSplit(trainTable, trainRows, trainPipes);
  let test: Split | null = testSource ? new TableSplit(testSource, testRows, testPipes) : null;
  if (ds.filter) {
    const { field, values } = ds.filter;
    const keep = new Set(values);
    const only = (s: Split): Split => {
      const labels = s.batch(Uint32Array.from({ length: s.size }, (_, i) => i), [field])[field]!.data;
      const rows: number[] = [];
      for (let i = 0; i < labels.length; i++) if (keep.has(labels[i]!)) rows.push(i);
      return subset(s, rows);
    };
    const before = train.size;
    train = only(train);
    if (test) test = only(test);
    notes.push(`Kept the samples whose ${field} is ${values.join(", ")}: ${train.size} of ${before} training${test ? ` and ${test.size} test` : ""} samples.`);
  }
  // Small numeric fields (labels) are checked in full now rather than failing mid-training (one_hot's range,
  // integer ranges, finite numbers), and class-id fields against the classes of what they feed (NN5010).
  const labels = Object.entries(opts.labels ?? {}).filter(([name]) => ds.fields.some((f) => f.name === name && /^[iu]\d+$/.test(f.dtype)));
  for (const split of test ? [train, test] : [train]) {
    const p = split === train ? trainPipes : testPipes;
    const small = [...p].filter(([name, x]) => x.column.kind === "num" && (prod(x.column.shape) <= 64 || labels.some(([l]) => l === name))).map(([name]) => name);
    if (!small.length) continue;
    for (let i = 0; i < split.size; i += 8192) {
      const idx = Uint32Array.from({ length: Math.min(8192, split.size - i) }, (_, k) => i + k);
      const b = split.batch(idx, small);
      for (const [name, range] of labels) if (b[name]) checkLabels(split, name, b[name]!.data, i, Math.max(1, prod(split.fields[name]!.shape)), range);
    }
  }
  const columns: Record<string, number[]> = {};
  for (const { column } of trainPipes.values()) if (column.kind === "num") columns[column.name] = [...column.shape];
  return { train, test, vocab, notes, classes: trainTable.classes, columns };
}
