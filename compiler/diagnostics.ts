// THE table of diagnostics. Every message the compiler can print is declared here once, with its number.
// NN1xxx syntax · NN2xxx names and arguments · NN3xxx shapes and dtypes · NN4xxx training plans ·
// NN5xxx datasets · NN6xxx export · NN7xxx engines and the machine · NN9xxx internal. spec/diagnostics/
// holds a failing example of every code (or says in diagnostics.test.ts's EXCLUDED which test triggers it).
import type { Span } from "./ast/types.js";
import { LIMITS, NOT_NNET_CODE, NOT_REGULAR_CODE, notNnet, notRegular, OUTSIDE_ROOT_CODE, outsideRoot, overLimit, type LimitKey } from "./limits.js";

export type Severity = "error" | "warning";

export interface Related {
  span: Span;
  message: string;
}

export interface Diagnostic {
  code: string;
  severity: Severity;
  message: string;
  hint?: string;
  span: Span;
  related?: Related[];
}

interface Def<A> {
  code: string;
  severity: Severity;
  /** One line saying what the code means, for the reference table in spec/language.md. */
  title: string;
  render: (a: A) => { message: string; hint?: string };
}

function def<A>(code: string, severity: Severity, title: string, render: (a: A) => { message: string; hint?: string }): Def<A> {
  return { code, severity, title, render };
}

/** The diagnostic of a limit of compiler/limits.ts: its code, and the message that names the limit and its variable. */
function limitDef(key: LimitKey): Def<{ file: string; size: number | string }> {
  const l = LIMITS[key];
  return def(l.code, "error", `over ${l.env} (default ${l.default} ${l.unit}): ${l.what}`, (a) => overLimit(key, a.file, a.size));
}

const didYouMean = (s?: string) => (s ? `did you mean "${s}"?` : undefined);

export const DIAGNOSTICS = {
  // ── NN1xxx: syntax ────────────────────────────────────────────────────────────────────────────
  unexpectedChar: def<{ text: string; hint?: string }>("NN1001", "error", "a character that cannot start any token", (a) => ({
    message: `unexpected character ${/^[\x21-\x7e]$/.test(a.text) ? `"${a.text}"` : JSON.stringify(a.text)}`,
    hint: a.hint ?? "remove it; comments start with // or /*",
  })),
  unexpectedToken: def<{ found: string; expected: string }>("NN1002", "error", "a token where the grammar expects something else", (a) => ({
    message: `expected ${a.expected}, found ${a.found}`,
  })),
  unterminatedString: def<{}>("NN1003", "error", "a string literal without its closing quote", () => ({
    message: "unterminated string literal",
    hint: 'close it with " on the same line',
  })),
  unterminatedComment: def<{}>("NN1004", "error", "a block comment without its closing */", () => ({
    message: "unterminated block comment",
    hint: "close it with */",
  })),
  unexpectedDecl: def<{ found: string; hint?: string }>("NN1005", "error", "something other than a declaration at the top level of a file", (a) => ({
    message: `expected a declaration (model, block, dataset, train or import), found ${a.found}`,
    hint: a.hint ?? "statements belong inside a model or block body: model Name { … }",
  })),
  badNumber: def<{ text: string }>("NN1006", "error", "a number literal that is not a finite number", (a) => ({
    message: `invalid number ${a.text}`,
    hint: "numbers must be finite, and integers at most 9007199254740991",
  })),
  nestingTooDeep: def<{ limit: number }>("NN1007", "error", "expressions or bodies nested more deeply than the compiler allows", (a) => ({
    message: `nested more than ${a.limit} levels deep`,
    hint: "split the expression with bindings: name an inner part (x = …) and use the name; each parenthesis, list, call argument, ternary, unary - or not, repeat body and further operand of a + b + … chain is a level",
  })),

  // ── NN2xxx: names and arguments ──────────────────────────────────────────────────────────────────
  unknownLayer: def<{ name: string; suggestion?: string }>("NN2001", "error", "a call to a layer, block or function that does not exist", (a) => ({
    message: `unknown layer or block "${a.name}"`,
    hint: didYouMean(a.suggestion) ?? "see spec/language.md for the list of layers, or declare a block",
  })),
  undefinedName: def<{ name: string; suggestion?: string }>("NN2002", "error", "a name used before any binding, input or parameter defines it", (a) => ({
    message: `"${a.name}" is not defined`,
    hint: didYouMean(a.suggestion),
  })),
  duplicateDecl: def<{ kind: string; name: string }>("NN2003", "error", "two declarations or bindings that must be unique share a name", (a) => ({
    message: `${a.kind} "${a.name}" is declared more than once`,
    hint: "rename one of them",
  })),
  unknownArgument: def<{ callee: string; name: string; suggestion?: string; accepted: string }>("NN2004", "error", "a named argument the callee does not take", (a) => ({
    message: `${a.callee} has no parameter "${a.name}"`,
    hint: didYouMean(a.suggestion) ?? `it takes: ${a.accepted}`,
  })),
  missingArgument: def<{ callee: string; name: string; signature: string }>("NN2005", "error", "a required argument that is not given", (a) => ({
    message: `${a.callee} needs the argument "${a.name}"`,
    hint: `signature: ${a.signature}`,
  })),
  tooManyArguments: def<{ callee: string; max: number; signature: string }>("NN2006", "error", "more positional arguments than the callee takes", (a) => ({
    message: `${a.callee} takes at most ${a.max} positional argument${a.max === 1 ? "" : "s"}`,
    hint: `signature: ${a.signature}`,
  })),
  argumentType: def<{ callee: string; name: string; expected: string; got: string; hint?: string }>("NN2007", "error", "an argument of the wrong kind of value", (a) => ({
    message: `argument "${a.name}" of ${a.callee} must be ${a.expected}, got ${a.got}`,
    hint: a.hint,
  })),
  importNotFound: def<{ path: string; reason: string }>("NN2008", "error", "an import whose file cannot be read", (a) => ({
    message: `cannot import "${a.path}": ${a.reason}`,
    hint: "import paths are relative to the importing file",
  })),
  importMissingName: def<{ name: string; path: string; available: string; suggestion?: string }>("NN2009", "error", "an imported name that the imported file does not declare", (a) => ({
    message: `"${a.path}" declares no block "${a.name}"`,
    hint: didYouMean(a.suggestion) ?? (a.available ? `it declares: ${a.available}` : "it declares no blocks"),
  })),
  unknownModel: def<{ name: string; suggestion?: string }>("NN2010", "error", "a train plan or command naming a model that is not declared", (a) => ({
    message: `no model named "${a.name}"`,
    hint: didYouMean(a.suggestion),
  })),
  unknownDataset: def<{ name: string; suggestion?: string; available: string }>("NN2011", "error", "a train plan naming a dataset that is not declared", (a) => ({
    message: `no dataset named "${a.name}"`,
    hint: didYouMean(a.suggestion) ?? (a.available ? `declared datasets: ${a.available}` : "declare it: dataset Name { source …; field … }"),
  })),
  unknownSetting: def<{ where: string; name: string; suggestion?: string; accepted: string }>("NN2012", "error", "a setting that the enclosing declaration does not have", (a) => ({
    message: `unknown ${a.where} setting "${a.name}"`,
    hint: didYouMean(a.suggestion) ?? `settings here: ${a.accepted}`,
  })),
  duplicateSetting: def<{ name: string }>("NN2013", "error", "a setting given twice in one place", (a) => ({
    message: `"${a.name}" is set more than once`,
    hint: "keep one; a phase can override a plan-level setting",
  })),
  freezeMatchesNothing: def<{ pattern: string; layers: string }>("NN2014", "error", "a freeze pattern that matches no layer with weights", (a) => ({
    message: `freeze pattern "${a.pattern}" matches no layer with weights`,
    hint: a.layers ? `layers with weights include: ${a.layers}` : "the model has no layers with weights",
  })),
  recursiveBlock: def<{ name: string; path: string }>("NN2015", "error", "a block that uses itself, directly or through others", (a) => ({
    message: `block "${a.name}" uses itself (${a.path})`,
    hint: "use repeat for stacks of the same block",
  })),
  noOutputs: def<{ model: string }>("NN2016", "error", "a model that declares no output", (a) => ({
    message: `model "${a.model}" has no output`,
    hint: "declare one: output logits = …",
  })),
  blockWithoutOut: def<{ block: string }>("NN2017", "error", "a block body that never binds `out`", (a) => ({
    message: `block "${a.block}" never binds "out"`,
    hint: "a block's result is the binding named out: out = …",
  })),
  badEnum: def<{ callee: string; name: string; value: string; options: string; suggestion?: string }>("NN2018", "error", "a word that is not one of the values an argument accepts", (a) => ({
    message: `${a.callee}: "${a.value}" is not a valid ${a.name}`,
    hint: didYouMean(a.suggestion) ?? `one of: ${a.options}`,
  })),
  outOfRange: def<{ callee: string; name: string; value: string; range: string }>("NN2019", "error", "a number outside the range an argument accepts", (a) => ({
    message: `${a.callee}: ${a.name} = ${a.value} is out of range`,
    hint: `it must be ${a.range}`,
  })),
  importCycle: def<{ path: string }>("NN2020", "error", "files that import each other in a cycle", (a) => ({
    message: `import cycle through "${a.path}"`,
    hint: "move the shared blocks into a file that both import",
  })),
  unusedBinding: def<{ name: string }>("NN2021", "warning", "a binding whose value never reaches an output", (a) => ({
    message: `"${a.name}" is computed but never reaches an output`,
    hint: "use it, or remove it",
  })),
  notATensor: def<{ what: string; got: string }>("NN2022", "error", "a plain value used where a tensor is needed", (a) => ({
    message: `${a.what} needs a tensor, got ${a.got}`,
  })),
  notAValue: def<{ what: string; got: string }>("NN2023", "error", "a tensor used where a compile-time value is needed", (a) => ({
    message: `${a.what} must be known at compile time, got ${a.got}`,
    hint: "block parameters, repeat counts and layer arguments are compile-time values",
  })),
  wrongInputCount: def<{ callee: string; expected: string; got: number }>("NN2024", "error", "a layer or block given the wrong number of tensor inputs", (a) => ({
    message: `${a.callee} takes ${a.expected} tensor input${a.expected === "1" ? "" : "s"}, got ${a.got}`,
  })),
  notALayer: def<{ name: string }>("NN2025", "error", "a name applied as a layer that is not a layer instance", (a) => ({
    message: `"${a.name}" is not a layer`,
    hint: "only layer instances (layer name = …), layers and blocks can be applied with ->",
  })),
  misplacedStatement: def<{ what: string; where: string }>("NN2026", "error", "a statement where it is not allowed", (a) => ({
    message: `${a.what} is not allowed in ${a.where}`,
  })),
  ambiguousModel: def<{ models: string }>("NN2027", "error", "a command that needs one model given a file with several", (a) => ({
    message: `the file declares several models (${a.models})`,
    hint: "choose one with --model NAME",
  })),
  divisionByZero: def<{ op: string; left: string }>("NN2028", "error", "a compile-time division or remainder by zero", (a) => ({
    message: `${a.left} ${a.op} 0 divides by zero`,
    hint: "the right operand of / and % must not be 0; guard it with a conditional, e.g. d == 0 ? 1 : n % d",
  })),

  // ── NN3xxx: shapes and dtypes ────────────────────────────────────────────────────────────────────
  rankMismatch: def<{ op: string; expected: string; got: string; hint?: string }>("NN3001", "error", "an input of the wrong rank", (a) => ({
    message: `${a.op} expects ${a.expected}, got ${a.got}`,
    hint: a.hint,
  })),
  broadcastMismatch: def<{ op: string; left: string; right: string; axis: number }>("NN3002", "error", "operands whose shapes do not broadcast", (a) => ({
    message: `cannot ${a.op} ${a.left} and ${a.right}: dimension ${a.axis} differs`,
    hint: "shapes broadcast when each dimension is equal or 1",
  })),
  dtypeMismatch: def<{ op: string; expected: string; got: string; hint?: string }>("NN3003", "error", "an input of the wrong element type", (a) => ({
    message: `${a.op} expects ${a.expected}, got ${a.got}`,
    hint: a.hint,
  })),
  windowTooLarge: def<{ op: string; axis: string; size: string; window: string }>("NN3004", "error", "a kernel or pooling window larger than its (padded) input", (a) => ({
    message: `${a.op}: window ${a.window} does not fit in ${a.axis} of size ${a.size}`,
    hint: 'use padding: same, a smaller kernel, or remove a downsampling step before it',
  })),
  headsDivide: def<{ dim: string; heads: number }>("NN3005", "error", "an attention width that the number of heads does not divide", (a) => ({
    message: `attention: model width ${a.dim} is not divisible by ${a.heads} heads`,
    hint: "choose heads that divide the width, or set key_dim",
  })),
  reshapeCount: def<{ from: string; to: string }>("NN3006", "error", "a reshape that changes the number of elements", (a) => ({
    message: `cannot reshape ${a.from} to ${a.to}: element counts differ`,
  })),
  concatMismatch: def<{ axis: number; shapes: string }>("NN3007", "error", "concat operands that differ outside the concat axis", (a) => ({
    message: `concat along axis ${a.axis}: shapes ${a.shapes} differ outside that axis`,
  })),
  matmulMismatch: def<{ left: string; right: string; sizes: string; hint?: string }>("NN3008", "error", "matmul operands whose inner dimensions differ", (a) => ({
    message: `matmul: inner dimensions of ${a.left} and ${a.right} differ (${a.sizes})`,
    hint: a.hint,
  })),
  badAxis: def<{ op: string; axis: number; rank: number }>("NN3009", "error", "an axis outside the tensor's rank", (a) => ({
    message: `${a.op}: axis ${a.axis} is out of range for a rank-${a.rank} tensor`,
  })),
  groupsDivide: def<{ op: string; what: string; value: string; groups: number }>("NN3010", "error", "channel counts that the number of groups does not divide", (a) => ({
    message: `${a.op}: ${a.what} ${a.value} is not divisible by groups = ${a.groups}`,
  })),
  seqTooLong: def<{ op: string; dim: string; max: number }>("NN3011", "error", "a sequence longer than a positional embedding's table", (a) => ({
    message: `${a.op}: sequence length ${a.dim} may exceed max_len = ${a.max}`,
    hint: "bound the input dimension (seq <= N) with N at most max_len, or raise max_len",
  })),
  targetMismatch: def<{ loss: string; output: string; target: string; hint?: string }>("NN3012", "error", "a loss whose prediction and target shapes do not fit", (a) => ({
    message: `${a.loss}: prediction ${a.output} and target ${a.target} do not fit`,
    hint: a.hint,
  })),
  badPermutation: def<{ perm: string; rank: number }>("NN3013", "error", "a transpose permutation that is not a permutation of the axes", (a) => ({
    message: `transpose: ${a.perm} is not a permutation of ${a.rank} axes`,
  })),
  sharedShapeChanged: def<{ layer: string; before: string; now: string }>("NN3014", "error", "a shared layer applied to inputs that need different weight shapes", (a) => ({
    message: `shared layer "${a.layer}" needs weights ${a.now} here but ${a.before} where it was first used`,
    hint: "a shared layer must see inputs of the same feature size every time",
  })),
  inputShape: def<{ name: string; problem: string }>("NN3015", "error", "a model input whose declared type is not usable", (a) => ({
    message: `input "${a.name}": ${a.problem}`,
  })),
  inputMismatch: def<{ name: string; declared: string; got: string }>("NN3016", "error", "a block input that does not match its declared type", (a) => ({
    message: `block input "${a.name}" is declared ${a.declared}, got ${a.got}`,
  })),
  indexOutOfRange: def<{ op: string; index: number; size: number }>("NN3017", "error", "an index outside its axis", (a) => ({
    message: `${a.op}: index ${a.index} is out of range for an axis of size ${a.size}`,
  })),
  attentionGroups: def<{ what: string; by: string; hint: string }>("NN3018", "error", "attention heads that key/value heads or rotary embeddings cannot split", (a) => ({
    message: `attention: ${a.what} is not divisible by ${a.by}`,
    hint: a.hint,
  })),
  maskShape: def<{ op: string; expected: string; got: string }>("NN3019", "error", "a padding mask whose shape does not match the keys it masks", (a) => ({
    message: `${a.op}: mask must be ${a.expected}, got ${a.got}`,
    hint: "a padding mask has one entry per key: the tokenized field's attention_mask (text -> tokenize(…) -> attention_mask)",
  })),

  // ── NN4xxx: training plans ───────────────────────────────────────────────────────────────────────
  unknownPlanFunction: def<{ kind: string; name: string; suggestion?: string; options: string }>("NN4001", "error", "an unknown loss, metric, optimizer, schedule, source or preprocessing step", (a) => ({
    message: `unknown ${a.kind} "${a.name}"`,
    hint: didYouMean(a.suggestion) ?? `one of: ${a.options}`,
  })),
  unknownTensorRef: def<{ name: string; outputs: string; fields: string; suggestion?: string }>("NN4002", "error", "a loss or metric naming neither a model output nor a dataset field", (a) => ({
    message: `"${a.name}" is neither a model output nor a dataset field`,
    hint: didYouMean(a.suggestion) ?? `outputs: ${a.outputs || "none"}; fields: ${a.fields || "none"}`,
  })),
  missingSetting: def<{ where: string; name: string; example: string }>("NN4003", "error", "a required setting that is missing", (a) => ({
    message: `${a.where} has no ${a.name}`,
    hint: `add one, e.g. ${a.example}`,
  })),
  badLoss: def<{ problem: string }>("NN4004", "error", "a loss expression that is not a weighted sum of losses", (a) => ({
    message: `loss: ${a.problem}`,
    hint: "write a loss call, or a weighted sum such as 0.5 * mse(a, x) + cross_entropy(logits, label)",
  })),
  logitsExpected: def<{ loss: string; output: string; act: string }>("NN4005", "warning", "a loss that expects logits applied to probabilities", (a) => ({
    message: `${a.loss} expects logits, but "${a.output}" ends with ${a.act}`,
    hint: `remove the final ${a.act}, or pass from_logits: false`,
  })),
  allFrozen: def<{ phase: string }>("NN4006", "error", "a phase that freezes every layer with weights", (a) => ({
    message: `phase "${a.phase}" freezes every layer: nothing would train`,
    hint: "freeze fewer layers (a pattern such as \"Encoder/**\" or a binding name), or drop the phase",
  })),
  unknownMonitor: def<{ name: string; options: string; suggestion?: string }>("NN4007", "error", "early stopping or checkpointing that monitors a quantity the plan never measures", (a) => ({
    message: `cannot monitor "${a.name}": the plan does not measure it`,
    hint: didYouMean(a.suggestion) ?? `measured: ${a.options}`,
  })),
  notComparable: def<{ what: string; hint: string }>("NN4008", "error", "a metric or loss that does not fit the model's outputs", (a) => ({
    message: a.what,
    hint: a.hint,
  })),
  pruneSparsity: def<{ value: string }>("NN4009", "error", "a pruning sparsity outside [0, 1)", (a) => ({
    message: `sparsity ${a.value} is outside [0, 1): it is the fraction of weights set to zero`,
    hint: "write a fraction such as sparsity: 0.5 (half the weights); 1 would remove every weight",
  })),
  pruneMatchesNothing: def<{ pattern: string; layers: string }>("NN4010", "error", "a prune exclude pattern that matches no prunable layer", (a) => ({
    message: `exclude "${a.pattern}" matches no layer that pruning would touch`,
    hint: `prunable layers: ${a.layers || "none"}`,
  })),
  pruneSelectsNothing: def<{ why: string }>("NN4011", "error", "pruning that selects no weight", (a) => ({
    message: `prune selects no weight: ${a.why}`,
    hint: "pruning works on conv and dense kernels; remove the setting or an exclude pattern",
  })),
  exportNothing: def<Record<string, never>>("NN4012", "error", "an export setting that neither prunes nor quantizes", () => ({
    message: "export writes nothing: give quantize, prune or both",
    hint: "e.g. export quantize: int8, or export prune: 0.5, quantize: float16",
  })),

  initMapEntry: def<{ entry: string }>("NN4020", "error", "an init map entry that is not \"SOURCE -> TARGET\"", (a) => ({
    message: `init map entry ${JSON.stringify(a.entry)} is not of the form "SOURCE -> TARGET"`,
    hint: 'write each entry as "name in the file -> layer" or "name in the file -> layer/role", e.g. "features.0 -> conv2d"',
  })),
  initUnknownTarget: def<{ entry: string; target: string; suggestion?: string; layers: string }>("NN4021", "error", "an init map entry naming a layer or weight the model does not have", (a) => ({
    message: `init map entry ${JSON.stringify(a.entry)}: the model has no layer or weight "${a.target}"`,
    hint: didYouMean(a.suggestion) ?? `layers with weights: ${a.layers}`,
  })),
  loraMatchesNothing: def<{ pattern: string; candidates: string }>("NN4030", "error", "a lora target that matches no dense layer or attention projection", (a) => ({
    message: `lora target "${a.pattern}" matches no dense layer or attention projection`,
    hint: `LoRA adapts: ${a.candidates}`,
  })),
  loraDiffers: def<{ phase: string; first: string }>("NN4031", "error", "lora phases of one plan with different adapters", (a) => ({
    message: `phase ${a.phase}: lora must adapt the same targets with the same rank, alpha, dropout and base as phase ${a.first}`,
    hint: "the adapters are weights of the model, made once: set lora on the plan and let phases inherit it, or give every lora phase the same setting",
  })),
  loraBaseTrained: def<{ phase: string; layers: string; lora: string }>("NN4032", "error", "a phase that trains an adapted kernel lora base: int8 holds as int8", (a) => ({
    message: `phase ${a.phase} trains ${a.layers}, which lora base: int8 holds as int8 from phase ${a.lora} on`,
    hint: `int8 base kernels stay as they were quantized when phase ${a.lora} began: freeze those layers in phase ${a.phase}, train them before phase ${a.lora}, or use base: float32`,
  })),
  loraBasePruned: def<{ phase: string; layers: string; lora: string }>("NN4033", "error", "pruning an adapted kernel lora base: int8 holds as int8", (a) => ({
    message: `phase ${a.phase} prunes ${a.layers}, which lora base: int8 holds as int8 from phase ${a.lora} on`,
    hint: `int8 base kernels stay as they were quantized: prune before phase ${a.lora}, exclude those layers, or use base: float32`,
  })),
  mixNoInput: def<{ setting: string; model: string; what: string; hint: string }>("NN4040", "error", "mixup or cutmix on a model with nothing of its kind to mix", (a) => ({
    message: `${a.setting}: model ${a.model} has no ${a.what} to mix`,
    hint: a.hint,
  })),
  mixLoss: def<{ loss: string; setting: string; why: string }>("NN4041", "error", "mixup or cutmix with a loss whose targets cannot be mixed", (a) => ({
    message: `${a.setting} cannot mix the targets of ${a.loss}: ${a.why}`,
    hint: `remove ${a.setting}, or train with a loss that mixes (cross_entropy, binary_cross_entropy, focal${a.setting === "cutmix" ? "" : ", mse, mae, huber"})`,
  })),
  mixNoLabel: def<{ setting: string }>("NN4042", "error", "mixup or cutmix in a plan whose losses read no dataset target", (a) => ({
    message: `${a.setting} mixes labels, but no loss term reads a dataset target`,
    hint: "mixing needs a label (class ids, one-hot rows or values) to blend alongside the inputs; remove the setting",
  })),
  alternate: def<{ problem: string; hint: string }>("NN4050", "error", "an alternate block (adversarial training) that cannot run as written", (a) => ({
    message: `alternate: ${a.problem}`,
    hint: a.hint,
  })),
  constantTarget: def<{ loss: string; value: string; why: string }>("NN4051", "error", "a number as a loss's target where that loss cannot take one", (a) => ({
    message: `${a.loss} cannot take the number ${a.value} as its target: ${a.why}`,
    hint: "a number target is a constant of the prediction's shape: binary_cross_entropy(score, 1) for \"real\", 0 for \"fake\", or mse(x, 0)",
  })),
  ctcTooLong: def<{ target: string; labels: number; output: string; time: number }>("NN4060", "error", "a ctc label sequence longer than the prediction's time steps", (a) => ({
    message: `ctc: "${a.target}" holds up to ${a.labels} labels, but "${a.output}" has ${a.time} time steps: an alignment needs a frame per label (and a blank frame between repeated labels)`,
    hint: "keep more frames (a smaller stride or pool before the output), or shorten the labels' max length",
  })),
  ctcBlank: def<{ blank: number; output: string; classes: number }>("NN4061", "error", "a ctc blank id that is not one of the prediction's classes", (a) => ({
    message: `ctc: blank ${a.blank} is not a class of "${a.output}", which scores ${a.classes} classes (0 to ${a.classes - 1})`,
    hint: "the blank is one of the output's classes, usually 0 (blank: 0, the labels then count from 1), as PyTorch's ctc_loss and Keras's CTC take it",
  })),

  // ── NN5xxx: datasets ─────────────────────────────────────────────────────────────────────────────
  unknownColumn: def<{ name: string; source: string; columns: string; suggestion?: string }>("NN5001", "error", "a field reading a column its source does not have", (a) => ({
    message: `${a.source} source has no column "${a.name}"`,
    hint: didYouMean(a.suggestion) ?? `columns: ${a.columns}`,
  })),
  fieldShape: def<{ field: string; problem: string }>("NN5002", "error", "a field whose preprocessing does not produce its declared type", (a) => ({
    message: `field "${a.field}": ${a.problem}`,
  })),
  inputWithoutField: def<{ input: string; dataset: string; fields: string; suggestion?: string }>("NN5003", "error", "a model input that the dataset does not provide", (a) => ({
    message: `model input "${a.input}" has no field in dataset "${a.dataset}"`,
    hint: didYouMean(a.suggestion) ?? `fields: ${a.fields || "none"}`,
  })),
  fieldTypeMismatch: def<{ input: string; inputType: string; field: string; fieldType: string }>("NN5004", "error", "a model input whose type differs from its dataset field", (a) => ({
    message: `model input "${a.input}" is ${a.inputType} but dataset field "${a.field}" is ${a.fieldType}`,
  })),

  // Data checked when a split is built, before training (or evaluation) starts: raised at run time, exit code 2.
  // The data layer says the particulars (file:row, column, value); these give the code and what to do.
  labelOutOfRange: def<{ detail: string }>("NN5010", "error", "a class label outside [0, classes) of the output or step it feeds", (a) => ({
    message: a.detail,
    hint: "fix the label in the data, or give the output as many classes as the data has (its last layer's units; one_hot's classes); a padding label the loss should skip goes in its ignore: argument",
  })),
  nonFiniteValue: def<{ detail: string }>("NN5011", "error", "a NaN or infinite number in a numeric column of the data", (a) => ({
    message: a.detail,
    hint: "a NaN, an infinity or a number beyond float64 (1e400) makes every loss NaN: fix or drop the sample (a missing value needs a number of its own)",
  })),
  notANumber: def<{ detail: string }>("NN5012", "error", "a cell that is not a number in a column a field reads as numbers", (a) => ({
    message: a.detail,
    hint: "fix the cell (a decimal number such as 3, -0.5 or 1e-3), or, for a column of text, tokenize it: text -> tokenize(vocab: …, max_len: …)",
  })),
  nonFiniteResult: def<{ detail: string }>("NN5013", "error", "a test or evaluation loss that is NaN or infinite", (a) => ({
    message: a.detail,
    hint: "the model's outputs on these samples are not finite: an op outside its domain (log or sqrt of a negative number, a division by zero) on inputs the training data did not have, weights that overflowed, or test data unlike the training data (scale it alike); `nnetc predict --input test:N` shows the outputs",
  })),

  // ── NN6xxx: export ───────────────────────────────────────────────────────────────────────────────
  onnxUnsupported: def<{ op: string; layer: string; reason: string; hint?: string }>("NN6001", "error", "a layer that has no ONNX form (nnetc compile --target onnx)", (a) => ({
    message: `cannot export ${a.op} layer "${a.layer}" to ONNX: ${a.reason}`,
    hint: a.hint ?? "rewrite the layer with operations that export (spec/language.md §12), or use --target ts",
  })),
  noKerasLayer: def<{ layer: string; op: string; reason: string }>("NN6020", "error", "a layer that TensorFlow.js layers (Keras) has no equivalent for", (a) => ({
    message: `layer "${a.layer}" (${a.op}) has no TensorFlow.js layers (Keras) equivalent: ${a.reason}`,
    hint: "--target tfjs-layers exports models built from Keras layers only; use --target ts (or js) for this model, or rewrite the layer with ones Keras has",
  })),
  torchUnsupported: def<{ op: string; layer: string; reason: string; hint?: string }>("NN6030", "error", "a layer that has no PyTorch form (nnetc compile --target pytorch, --engine torch)", (a) => ({
    message: `cannot express ${a.op} layer "${a.layer}" in PyTorch: ${a.reason}`,
    hint: a.hint ?? "rewrite the layer with operations PyTorch has (spec/language.md §12.6), or use the tfjs engine",
  })),
  torchNameClash: def<{ layer: string; other: string; path: string }>("NN6031", "error", "two layers whose PyTorch module paths coincide", (a) => ({
    message: `layers "${a.other}" and "${a.layer}" would both be the PyTorch module ${a.path}`,
    hint: "a path segment that is a Python keyword or a torch.nn.Module attribute gets a trailing _; rename one of the layers (as NAME)",
  })),

  // ── NN7xxx: engines and the machine (--engine torch|onnx, --nproc): raised at run time, exit code 2 ─
  // Most have no place in a .nnet file (the span is then the file's start and the CLI prints no code frame).
  noPython: def<{ python: string; why: string }>("NN7001", "error", "no Python to run the torch engine", (a) => ({
    message: `the torch engine needs Python 3 with PyTorch, and ${a.python} cannot be run (${a.why})`,
    hint: "install Python 3 and PyTorch (Debian 12: apt-get install python3-torch libopenblas0-pthread), or set NNETC_PYTHON to a Python that has torch",
  })),
  noTorch: def<{ python: string; why: string }>("NN7002", "error", "a Python without PyTorch (or numpy)", (a) => ({
    message: `${a.python} cannot import PyTorch: ${a.why}`,
    hint: "install it (Debian 12: apt-get install python3-torch libopenblas0-pthread; elsewhere: pip install torch numpy), or set NNETC_PYTHON to a Python that has torch",
  })),
  torchTooOld: def<{ python: string; version: string }>("NN7003", "error", "a PyTorch older than the engine supports (1.13)", (a) => ({
    message: `the torch engine needs PyTorch 1.13 or newer; ${a.python} has ${a.version}`,
    hint: "upgrade it (Debian 12: apt-get install python3-torch; elsewhere: pip install -U torch), or set NNETC_PYTHON to a Python with a newer torch",
  })),
  unknownDevice: def<{ device: string }>("NN7004", "error", "a --device the torch engine does not know", (a) => ({
    message: `--device ${a.device}: not a device the torch engine knows`,
    hint: "use cpu, cuda, cuda:N (N counts from 0) or mps",
  })),
  deviceMissing: def<{ device: string; torch: string; why: string; hint: string }>("NN7005", "error", "a --device this machine's PyTorch cannot see", (a) => ({
    message: `--device ${a.device}: PyTorch ${a.torch} here ${a.why}`,
    hint: a.hint,
  })),
  precisionUnsupported: def<{ precision: string }>("NN7006", "error", "a --precision the torch engine does not do", (a) => ({
    message: a.precision === "fp16" ? "--precision fp16 needs loss scaling, which the torch engine does not do yet" : `--precision ${a.precision}: not a precision the torch engine knows`,
    hint: "use fp32, or bf16 (fp32's range at half the memory; autocast on CPU and on CUDA GPUs with bf16)",
  })),
  portInUse: def<{ master: string }>("NN7007", "error", "a data-parallel job's rendezvous port that is already taken", (a) => ({
    message: `the job's rendezvous ${a.master}: the port is already in use`,
    hint: "choose a free port (--master HOST:PORT, the same on every machine), or leave --master out on one machine and nnetc picks one",
  })),
  rendezvousFailed: def<{ rank: number; master: string; why: string }>("NN7008", "error", "a data-parallel worker that could not meet the others", (a) => ({
    message: `worker ${a.rank} could not meet the others at ${a.master} (${a.why})`,
    hint: "start every machine's command with the same --master and --nnodes, and let rank 0's machine be reachable at that address",
  })),
  workerDied: def<{ rank: number; how: string; last: string }>("NN7009", "error", "a data-parallel worker that stopped before the job ended", (a) => ({
    message: `worker ${a.rank} ${a.how}; the other workers were stopped${a.last ? `. Its last lines:${a.last}` : ""}`,
    hint: "fix what it reports, then run the same command with --resume: the job goes on from its last checkpoint",
  })),
  engineException: def<{ layer: string; op: string; error: string; at: string }>("NN7010", "error", "an exception inside the torch engine, in the code of a layer", (a) => ({
    message: `the torch engine failed in ${a.op} layer "${a.layer}": ${a.error} (${a.at})`,
    hint: "the layer's PyTorch code is `nnetc compile --target pytorch -o -`; a value out of the layer's range (a token id past the vocabulary, a wrong dtype) in the data is the usual cause",
  })),
  engineFailed: def<{ error: string }>("NN7011", "error", "the torch engine's process failed outside any layer", (a) => ({
    message: `the torch engine failed: ${a.error}`,
    hint: "if the message names memory, use a smaller batch (or accumulate N); otherwise please report it with the .nnet file and the command",
  })),

  trainingMemory: def<{ model: string; batch: number; estimate: string; total: string; backend: string; limit: string; limitWhat: string; fits: number }>("NN7012", "error", "a training step that needs more memory than the TensorFlow.js backend has (estimated before anything is allocated)", (a) => ({
    message: `training ${a.model} at batch ${a.batch} needs about ${a.total} on the ${a.backend} backend, which has ${a.limit} (${a.limitWhat}): ${a.estimate}`,
    hint: `${a.fits > 0 ? `use --batch ${a.fits} or less (the largest that fits; \`accumulate N\` in the plan keeps each step's samples), ` : "even one sample does not fit: "}or --engine torch (PyTorch, on a GPU with --device cuda)${a.backend === "wasm" ? ", or --backend cpu / tensorflow (the machine's memory, not WebAssembly's 4 GiB)" : ""}; \`nnetc summary\` shows the estimate`,
  })),

  onnxNoTraining: def<{ command: string }>("NN7020", "error", "--engine onnx asked to train (ONNX Runtime only runs inference)", (a) => ({
    message: `${a.command} --engine onnx: ONNX Runtime runs inference only, it cannot train`,
    hint: "train with --engine tfjs (the default) or --engine torch; eval and predict take --engine onnx",
  })),
  noOnnxRuntime: def<{ why: string }>("NN7021", "error", "onnxruntime-node cannot be loaded for --engine onnx", (a) => ({
    message: `--engine onnx needs onnxruntime-node, which cannot be loaded (${a.why})`,
    hint: "install it beside nnetc (npm install onnxruntime-node), or use --engine tfjs",
  })),

  // Run folders (OUT of nnetc train): one trainer at a time, every file checksummed, nothing overwritten.
  runLocked: def<{ dir: string; pid: number; host: string; started: string; command: string }>("NN7030", "error", "a run folder another trainer is writing (its lock file is held)", (a) => ({
    message: `${a.dir} is in use by another trainer: pid ${a.pid} on ${a.host}, started ${a.started} (${a.command})`,
    hint: `wait for it to finish, or train into another --out; if that process is gone (it ran on another machine), delete ${a.dir}/run.lock and run again`,
  })),
  runFileCorrupt: def<{ file: string; why: string }>("NN7031", "error", "a run folder file that does not match its checksum (run-manifest.json, or a checkpoint's record of metrics.jsonl)", (a) => ({
    message: `${a.file} is not the file the run wrote: ${a.why}`,
    hint: "it was changed or damaged after training; restore it from a copy, or train again: nnetc train --resume --out DIR rewrites the run's files from its newest checkpoint",
  })),
  runExists: def<{ dir: string; holds: string }>("NN7032", "error", "a new run into a folder that already holds one", (a) => ({
    message: `${a.dir} already holds a training run (${a.holds})`,
    hint: "continue it with --resume, choose another --out, or pass --force to start anew (the old run's files are moved into DIR/replaced-TIME/, nothing is deleted)",
  })),
  resumeOtherRun: def<{ dir: string; why: string }>("NN7033", "error", "--resume on a folder without a checkpoint that is not this plan's run", (a) => ({
    message: `--resume: ${a.dir} has no checkpoint to resume from, and ${a.why}`,
    hint: "resume in the run's own folder, or start a new run with --out DIR (an empty folder, or --force to move this one's files aside)",
  })),
  // NN7060–NN7064: TensorBoard event files (runtime/tensorboard.ts).
  tensorboardDir: def<{ dir: string; why: string }>("NN7060", "error", "a --tensorboard folder that cannot be made or written", (a) => ({
    message: `cannot write TensorBoard event files into ${a.dir}: ${a.why}`,
    hint: "give --tensorboard a folder you can write (it is made if missing), or train with --no-tensorboard",
  })),
  // NN7070–NN7089: nnetc serve (runtime/serve.ts). Bad requests are HTTP answers (400, 413, 503…), not diagnostics.
  serveListen: def<{ address: string; why: string }>("NN7070", "error", "nnetc serve cannot listen on its address (the port is taken, or not allowed)", (a) => ({
    message: `nnetc serve cannot listen on ${a.address}: ${a.why}`,
    hint: "choose another --port (--port 0 picks a free one), stop the process holding it, or pick a --host this machine has",
  })),
  serveDuplicateModel: def<{ name: string; first: string; second: string }>("NN7071", "error", "two files served at once declare models of the same name", (a) => ({
    message: `model "${a.name}" is served from ${a.first} and again from ${a.second}; the endpoints /v2/models/{name} need one model per name`,
    hint: "serve the files in separate servers, or rename one of the models",
  })),
  serveWeightsCount: def<{ files: number; weights: number }>("NN7072", "error", "nnetc serve given a different number of --weights than files", (a) => ({
    message: `nnetc serve was given ${a.files} file${a.files === 1 ? "" : "s"} and ${a.weights} --weights; each file's model needs its own run folder`,
    hint: "give --weights once per file, in the same order: nnetc serve a.nnet b.nnet --weights runs/a runs/b",
  })),
  serveNoModel: def<{ file: string }>("NN7073", "error", "a file given to nnetc serve declares no model", (a) => ({
    message: `${a.file} declares no model to serve`,
    hint: "serve a file with a model (the model of its training plan is served, else its last model)",
  })),
  // NN7040–NN7047: resource limits (compiler/limits.ts, one environment variable each). The data layer (nnetc/runtime,
  // which loads nothing else of the compiler) raises NN7041–NN7047 as DataErrors whose text is limits.ts's limitText.
  sourceTooLarge: limitDef("sourceBytes"),
  notRegularFile: def<{ file: string; kind: string; role: string }>(NOT_REGULAR_CODE, "error", "an import or data file that is not a regular file (/dev/zero, a FIFO, a directory)", (a) => notRegular(a.file, a.kind, a.role)),
  dataFileTooLarge: limitDef("dataFileBytes"),
  datasetTooLarge: limitDef("datasetBytes"),
  imageTooLarge: limitDef("imageBytes"),
  imageTooManyPixels: limitDef("imagePixels"),
  audioTooLarge: limitDef("audioBytes"),
  audioTooLong: limitDef("audioSeconds"),
  // NN7050–NN7051: paths stay in the project (compiler/root.ts). The data layer raises NN7050 as a DataError with its text.
  pathOutsideRoot: def<{ path: string; real: string; root: string; origin: string }>(OUTSIDE_ROOT_CODE, "error", "a path (import, data file or folder, tokenizer file, init weights) that resolves outside the project root", (a) => outsideRoot(a.path, a.real, a.root, a.origin)),
  importNotNnet: def<{ path: string }>(NOT_NNET_CODE, "error", "an import of a file whose name does not end in .nnet (refused unread)", (a) => notNnet(a.path)),


  // ── NN80xx: plugins (nnetc.config.mjs, compiler/plugin/): each message names the plugin and its config file ──
  pluginLoadFailed: def<{ file: string; message: string }>("NN8001", "error", "a project config (nnetc.config.mjs/.js) that cannot be loaded: it throws, has a syntax error or exports no config", (a) => ({
    message: `cannot load ${a.file}: ${a.message}`,
    hint: "the file must be an ES module whose default export is defineConfig({ plugins: [...] }) (import { defineConfig, definePlugin } from \"nnetc/config\"); set NNETC_NO_CONFIG=1 to run without it",
  })),
  pluginInvalid: def<{ plugin: string; file: string; what: string }>("NN8002", "error", "a plugin definition with a missing or malformed field", (a) => ({
    message: `plugin "${a.plugin}" (${a.file}): ${a.what}`,
    hint: "see spec/language.md §15 for each field a plugin op, loss, metric, data source, step and callback takes",
  })),
  pluginNameClash: def<{ plugin: string; file: string; kind: string; name: string; other: string }>("NN8003", "error", "a plugin op, loss, metric, source or step whose name is already taken (by a built-in or another plugin)", (a) => ({
    message: `plugin "${a.plugin}" (${a.file}): ${a.kind} "${a.name}" is already defined by ${a.other}`,
    hint: "rename it: a plugin cannot replace a built-in or another plugin's entry",
  })),
  pluginNoLowering: def<{ plugin: string; file: string; kind: string; name: string; target: string; field: string; layer: string; hint?: string }>("NN8004", "error", "a plugin op or loss used on an engine or target its plugin gives no lowering for", (a) => ({
    message: `${a.kind} "${a.name}"${a.layer ? ` (layer "${a.layer}")` : ""} of plugin "${a.plugin}" (${a.file}) has no ${a.target} form`,
    hint: a.hint ?? `add \`${a.field}\` to its definition in ${a.file}, or use another engine or target`,
  })),
  pluginThrew: def<{ plugin: string; file: string; what: string; message: string }>("NN8005", "error", "a plugin function that threw (or returned something unusable)", (a) => ({
    message: `plugin "${a.plugin}" (${a.file}): ${a.what} failed: ${a.message}`,
    hint: `this is an error in the plugin, not in nnetc: fix ${a.file} (or ask its author)`,
  })),
  pluginShapeRule: def<{ plugin: string; file: string; op: string; message: string; inputs: string }>("NN8006", "error", "a plugin op's shape rule refused its inputs or arguments", (a) => ({
    message: `${a.op}(${a.inputs}): ${a.message}`,
    hint: `the rule of op ${a.op} is plugin "${a.plugin}"'s (${a.file})`,
  })),

  // ── NN9xxx: internal ─────────────────────────────────────────────────────────────────────────────
  internal: def<{ message: string }>("NN9001", "error", "a compiler bug: please report it with the input file", (a) => ({
    message: `internal compiler error: ${a.message}`,
    hint: "this is a bug in nnetc; please report it with the file that triggers it",
  })),
} as const;

export type DiagnosticKey = keyof typeof DIAGNOSTICS;

/** The span of a diagnostic about the machine or the command (NN7xxx), not about a place in a file. */
export const NO_SPAN: Span = { file: "", start: 0, end: 0 };
export type ArgsOf<K extends DiagnosticKey> = (typeof DIAGNOSTICS)[K] extends Def<infer A> ? A : never;

/** Make a diagnostic from the table. The only way diagnostics are created. */
export function diag<K extends DiagnosticKey>(key: K, span: Span, args: ArgsOf<K>, related?: Related[]): Diagnostic {
  const d = DIAGNOSTICS[key] as Def<ArgsOf<K>>;
  const { message, hint } = d.render(args);
  const out: Diagnostic = { code: d.code, severity: d.severity, message, span };
  if (hint) out.hint = hint;
  if (related?.length) out.related = related;
  return out;
}

/** Closest candidate by edit distance, if it is close enough to be a plausible typo. */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    if (c === name) continue;
    const d = c.toLowerCase() === lower ? 0 : editDistance(lower, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.floor(name.length / 3));
  return best !== undefined && bestD <= limit ? best : undefined;
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 99;
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
