// The reference tables of spec/language.md, rendered from the code tables that define them: the op
// registry, the training-plan and dataset vocabulary, and the diagnostics table. Pure: no I/O.
// spec/unit/docs.test.ts fails when the generated section of spec/language.md differs from this output.
import { DIAGNOSTICS } from "./diagnostics.js";
import { LIMITS, NOT_REGULAR_CODE, type LimitDef } from "./limits.js";
import { OPS, type OpCategory, type OpDef, type OpKind } from "./ir/ops.js";
import { formatSignature, type ParamSpec, type Signature } from "./ir/signature.js";
import { LOSSES, METRICS, OPTIMIZERS, PREPROCESS, SCHEDULES, SETTINGS, SOURCES } from "./plan/tables.js";

/** Escape what would break a Markdown table cell: pipes (also inside code spans, per GFM) and newlines. */
function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function code(s: string): string {
  return "`" + s + "`";
}

function table(head: string[], rows: string[][]): string {
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows) lines.push(`| ${r.map(cell).join(" | ")} |`);
  return lines.join("\n");
}

/** The description of a callee, followed by the notes its parameters carry. */
function describe(sig: Signature, skip: readonly string[] = []): string {
  const notes = sig.params.filter((p) => p.doc && !skip.includes(p.name)).map((p) => `${code(p.name)}: ${p.doc}`);
  return notes.length ? `${sig.doc}. ${notes.join("; ")}` : sig.doc;
}

/**
 * A parameter's accepted range as compile-time checking applies it (compiler/lower/values.ts): `exclusive`
 * excludes both bounds, `maxExclusive` only the upper one.
 */
function bounds(p: { name: string; min?: number; max?: number; exclusive?: boolean; maxExclusive?: boolean }): string {
  const lo = p.min;
  const hi = p.max;
  if (lo === undefined && hi === undefined) return "";
  const loEx = !!p.exclusive;
  const hiEx = !!p.exclusive || !!p.maxExclusive;
  if (lo !== undefined && hi !== undefined) return `${loEx ? "(" : "["}${lo}, ${hi}${hiEx ? ")" : "]"}`;
  if (lo !== undefined) return `${loEx ? ">" : "≥"} ${lo}`;
  return `${hiEx ? "<" : "≤"} ${hi}`;
}

/** Ranges of the numeric parameters that have one: `units ≥ 1`, `rate [0, 1]`. */
function ranges(params: readonly ParamSpec[]): string {
  return params
    .filter((p) => (p.type === "int" || p.type === "float" || p.type === "int2" || p.type === "padding") && (p.min !== undefined || p.max !== undefined))
    .map((p) => `${p.name} ${bounds(p)}`)
    .join(", ");
}

function inputCount([lo, hi]: readonly [number, number]): string {
  if (lo === hi) return String(lo);
  if (hi === Infinity) return `${lo}+`;
  return `${lo}–${hi}`;
}

const CATEGORY_TITLES: Record<OpCategory, string> = {
  core: "Core",
  conv: "Convolution",
  pool: "Pooling",
  norm: "Normalization and regularization",
  embedding: "Embeddings",
  recurrent: "Recurrent",
  attention: "Attention",
  shape: "Shape and type",
  math: "Arithmetic",
  activation: "Activations",
  plugin: "Plugin ops (this project's nnetc.config.mjs)",
};

function opsSection(): string {
  const out: string[] = ["### Layers and operations", ""];
  out.push(
    "Every op that `.nnet` source can call, by category. **Inputs** is the number of tensor inputs (piped with `->` or given as leading positional arguments); the signature lists the other parameters, with defaults. Ranges are checked at compile time (NN2019).",
  );
  const byCategory = new Map<OpCategory, [string, OpDef][]>();
  for (const [name, def] of Object.entries(OPS) as [OpKind, OpDef][]) {
    if (def.internal) continue;
    const list = byCategory.get(def.category) ?? [];
    list.push([name, def]);
    byCategory.set(def.category, list);
  }
  for (const [cat, title] of Object.entries(CATEGORY_TITLES) as [OpCategory, string][]) {
    const ops = byCategory.get(cat);
    if (!ops?.length) continue;
    out.push("", `#### ${title}`, "");
    out.push(table(["Op", "Inputs", "Signature", "Ranges", "Description"], ops.map(([name, def]) => [code(name), inputCount(def.inputs), code(formatSignature(name, def, "", true)), ranges(def.params), describe(def)])));
  }
  return out.join("\n");
}

function lossesSection(): string {
  const target: Record<string, string> = {
    classes: "integer class ids shaped like the prediction without its last axis, or float one-hot rows shaped like the prediction",
    binary: "values in {0, 1} shaped like the prediction",
    values: "values shaped like the prediction",
    sequence: "integer labels [batch, max_len] padded with the blank id, at most the prediction's time steps",
  };
  return [
    "### Losses",
    "",
    "`prediction` names a model output and `target` a dataset field (type `ref`).",
    "",
    table(["Loss", "Signature", "Ranges", "Target", "Description"], Object.entries(LOSSES).map(([name, l]) => [code(name), code(formatSignature(name, l, "", true)), ranges(l.params), target[l.target] ?? l.target, describe(l, ["prediction", "target"])])),
  ].join("\n");
}

function metricsSection(): string {
  return [
    "### Metrics",
    "",
    "`prediction` and `target` default to those of the first loss term. **Better** is the direction early stopping's `mode: auto` uses.",
    "",
    table(
      ["Metric", "Signature", "Better", "Kind", "Description"],
      Object.entries(METRICS).map(([name, m]) => [code(name), code(formatSignature(name, m, "", true)), m.higherIsBetter ? "higher" : "lower", m.classification ? "classification" : "regression", describe(m, ["prediction", "target"])]),
    ),
  ].join("\n");
}

function signatureTable(title: string, intro: string, entries: Record<string, Signature>, head = "Name"): string {
  return [
    `### ${title}`,
    "",
    intro,
    "",
    table([head, "Signature", "Ranges", "Description"], Object.entries(entries).map(([name, s]) => [code(name), code(formatSignature(name, s, "", true)), ranges(s.params), describe(s)])),
  ].join("\n");
}

function sourcesSection(): string {
  return [
    "### Data sources",
    "",
    "Used by the dataset settings `source` and `test`. **Columns** are what a field may read; `—` means the columns come from the file (CSV header, JSON keys) and are not checked at compile time.",
    "",
    table(["Source", "Signature", "Columns", "Description"], Object.entries(SOURCES).map(([name, s]) => [code(name), code(formatSignature(name, s, "", true)), s.columns ? s.columns.map(code).join(", ") : "—", describe(s)])),
  ].join("\n");
}

function settingValue(name: string): string {
  const s = SETTINGS[name]!;
  switch (s.kind) {
    case "int":
    case "float": {
      // The scalar settings are checked like parameters.
      const r = bounds({ name, ...s });
      return `${s.kind}${r ? ` ${r}` : ""}`;
    }
    case "args": {
      const sig = formatSignature(name, s.sig!, "", true);
      return `named arguments: ${code(sig.slice(name.length + 1, -1))}`;
    }
    case "call":
      return name === "optimizer" ? "an optimizer call" : name === "source" || name === "test" ? "a source call" : "a call";
    case "calls":
      return "metrics, separated by commas";
    case "chain":
      return "schedules chained with `->`";
    case "loss":
      return "a loss, or a weighted sum of losses";
    case "strings":
      return "layer names or quoted globs, separated by commas";
    case "name":
      return "a dataset name";
    case "bool":
      return "`true` or `false`";
  }
}

function settingsSection(): string {
  const where = (name: string) => SETTINGS[name]!.in.map(code).join(", ");
  return [
    "### Settings",
    "",
    "Settings of `dataset`, `train` and `phase` declarations. **In** says where each may appear; a `phase` setting overrides the plan-level one for that phase.",
    "",
    table(["Setting", "In", "Value", "Description", "Example"], Object.keys(SETTINGS).map((name) => [code(name), where(name), settingValue(name), SETTINGS[name]!.doc, code(SETTINGS[name]!.example)])),
  ].join("\n");
}

function diagnosticsSection(): string {
  const rows = Object.entries(DIAGNOSTICS).map(([key, d]) => [code(d.code), d.severity, code(key), d.title]);
  return [
    "### Diagnostics",
    "",
    "NN1xxx syntax · NN2xxx names and arguments · NN3xxx shapes and dtypes · NN4xxx training plans · NN5xxx datasets · NN6xxx export · NN7xxx engines and the machine (run time, exit code 2) · NN9xxx internal. Warnings do not make `nnetc` fail.",
    "",
    table(["Code", "Severity", "Key", "Meaning"], rows),
  ].join("\n");
}

function limitsSection(): string {
  const rows = Object.values(LIMITS).map((l: LimitDef) => [code(l.env), `${l.default} ${l.unit}`, l.what, code(l.code)]);
  return [
    "### Resource limits",
    "",
    `Every resource a file can make nnetc use is bounded (compiler/limits.ts). A file over a limit is refused before it is read whole, with the diagnostic that names the limit and its variable; set the variable (a positive number, in the unit shown) to raise it. Imports and data files must be regular files: a device such as \`/dev/zero\`, a FIFO or a directory is refused (${code(NOT_REGULAR_CODE)}). Gzip-compressed IDX files are inflated within the data-file limit, so a compression bomb stops there.`,
    "",
    table(["Variable", "Default", "Bounds", "Diagnostic"], rows),
  ].join("\n");
}

/**
 * The Markdown of every reference table, in the order spec/language.md presents them, as subsections
 * `### 13.1 …`, `### 13.2 …` of the section numbered `section`. Ends with a newline.
 */
export function referenceTables(section = 13): string {
  let n = 0;
  return (
    [
      opsSection(),
      lossesSection(),
      metricsSection(),
      signatureTable("Optimizers", "Used by the `optimizer` setting. Without one, a plan uses `adam` with its defaults.", OPTIMIZERS, "Optimizer"),
      signatureTable("Learning-rate schedules", "Used by the `schedule` setting; `warmup` chains with the schedule that follows it: `schedule warmup(epochs: 1) -> cosine`.", SCHEDULES, "Schedule"),
      sourcesSection(),
      signatureTable("Preprocessing steps", "Steps of a dataset field, applied left to right: `field image: f32[784] = images -> scale(1 / 255) -> reshape([784])`.", PREPROCESS, "Step"),
      settingsSection(),
      diagnosticsSection(),
      limitsSection(),
    ]
      .map((md) => md.replace(/^### /, () => `### ${section}.${++n} `))
      .join("\n\n") + "\n"
  );
}
