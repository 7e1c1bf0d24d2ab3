// Finding, loading, validating and installing a project's plugins (spec/language.md §15). The config file is
// nnetc.config.mjs (or nnetc.config.js) in the .nnet file's folder or the nearest folder above it; its default
// export is defineConfig({ plugins }). Every problem is a numbered diagnostic naming the file (NN8001–NN8003),
// and a plugin is installed only when all its entries are valid: nothing half-registered.
import { existsSync, statSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { diag, NO_SPAN, type Diagnostic } from "../diagnostics.js";
import { BUILTIN_OPS } from "../ir/ops.js";
import { BUILTINS } from "../lower/values.js";
import { BUILTIN_NAMES } from "../plan/tables.js";
import { KEYWORDS } from "../../grammar/tokens.js";
import { addPlugin, clearPlugins, loadedPlugins, pluginEntry, type NnetcPlugin } from "./api.js";

export const CONFIG_FILES = ["nnetc.config.mjs", "nnetc.config.js"] as const;

/** The config file that applies to files in `dir`: the nearest one in it or a folder above it, or null. */
export function findConfig(dir: string): string | null {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    for (const name of CONFIG_FILES) {
      const f = path.join(d, name);
      if (existsSync(f) && statSync(f).isFile()) return f;
    }
    if (path.dirname(d) === d) return null;
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PARAM_TYPES = ["int", "float", "bool", "string", "enum", "ints"];
const KINDS = [
  ["ops", "op"],
  ["losses", "loss"],
  ["metrics", "metric"],
  ["sources", "data source"],
  ["steps", "preprocessing step"],
] as const;

/** What is wrong with a plugin, as NN8002/NN8003 diagnostics (empty: it may be installed). */
export function validatePlugin(p: unknown, file: string, index: number): Diagnostic[] {
  const out: Diagnostic[] = [];
  if (!p || typeof p !== "object") return [diag("pluginInvalid", NO_SPAN, { plugin: `#${index + 1}`, file, what: `plugins[${index}] is ${p === null ? "null" : typeof p}, not a plugin object (definePlugin({ name, ops, losses, … }))` })];
  const pl = p as Record<string, unknown>;
  const plugin = typeof pl.name === "string" && pl.name ? pl.name : `#${index + 1}`;
  const bad = (what: string) => out.push(diag("pluginInvalid", NO_SPAN, { plugin, file, what }));
  if (typeof pl.name !== "string" || !pl.name) bad("it has no name (a non-empty string)");
  const known = new Set(["name", "ops", "losses", "metrics", "sources", "steps", "callbacks"]);
  for (const k of Object.keys(pl)) if (!known.has(k)) bad(`unknown field "${k}" (a plugin has ${[...known].join(", ")})`);
  const fn = (e: Record<string, unknown>, field: string, where: string, required: boolean) => {
    if (e[field] === undefined) {
      if (required) bad(`${where} has no ${field} function`);
    } else if (typeof e[field] !== "function") bad(`${where}'s ${field} is ${typeof e[field]}, not a function`);
  };
  const params = (e: Record<string, unknown>, where: string) => {
    if (e.params === undefined) return;
    if (!Array.isArray(e.params)) return bad(`${where}'s params is not a list`);
    for (const q of e.params as Record<string, unknown>[]) {
      if (!q || typeof q.name !== "string" || !IDENT.test(q.name)) bad(`${where} has a parameter without a valid name`);
      else if (!PARAM_TYPES.includes(q.type as string)) bad(`${where}'s parameter ${q.name} has type ${JSON.stringify(q.type)}, not one of ${PARAM_TYPES.join(", ")}`);
      else if (q.type === "enum" && !(Array.isArray(q.values) && q.values.length && q.values.every((v) => typeof v === "string"))) bad(`${where}'s enum parameter ${q.name} has no values (a list of words)`);
    }
  };
  for (const [field, kind] of KINDS) {
    const list = pl[field];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      bad(`${field} is not a list`);
      continue;
    }
    for (const raw of list) {
      const e = (raw ?? {}) as Record<string, unknown>;
      const name = e.name;
      if (typeof name !== "string" || !IDENT.test(name)) {
        bad(`a ${kind} has ${typeof name === "string" ? `the name "${name}", which is not an identifier` : "no name"}`);
        continue;
      }
      const where = `${kind} ${name}`;
      if (typeof e.doc !== "string") bad(`${where} has no doc (a string; hover and the docs show it)`);
      const builtin = field === "ops" ? BUILTIN_OPS.has(name) || Object.hasOwn(BUILTINS, name) || KEYWORDS.includes(name) : BUILTIN_NAMES[field].has(name);
      const other = pluginEntry(field, name);
      if (builtin) out.push(diag("pluginNameClash", NO_SPAN, { plugin, file, kind, name, other: field === "ops" && KEYWORDS.includes(name) ? "the language (a keyword)" : "nnetc (a built-in)" }));
      else if (other) out.push(diag("pluginNameClash", NO_SPAN, { plugin, file, kind, name, other: `plugin "${other.from.plugin.name}" (${other.from.file})` }));
      else if ((list as { name?: unknown }[]).filter((x) => x?.name === name).length > 1) bad(`${where} is defined twice`);
      params(e, where);
      if (field === "ops") {
        fn(e, "tfjs", where, true);
        for (const f of ["shape", "flops", "gradient", "onnx", "torch"]) fn(e, f, where, false);
        const ins = e.inputs;
        const okIns = ins === undefined || (typeof ins === "number" && Number.isInteger(ins) && ins >= 1) || (Array.isArray(ins) && ins.length === 2 && ins.every((n) => Number.isInteger(n) && n >= 1) && ins[0] <= ins[1]);
        if (!okIns) bad(`${where}'s inputs is ${JSON.stringify(ins)}, not a count ≥ 1 or [min, max]`);
      } else if (field === "losses") {
        fn(e, "tfjs", where, true);
        if (e.torch !== undefined && typeof e.torch !== "string") bad(`${where}'s torch is not a string (a Python expression)`);
        if (e.target !== undefined && e.target !== "values" && e.target !== "classes") bad(`${where}'s target is ${JSON.stringify(e.target)}, not "values" or "classes"`);
      } else if (field === "metrics") {
        fn(e, "compute", where, true);
        if (typeof e.higherIsBetter !== "boolean") bad(`${where} has no higherIsBetter (true or false: early stopping's direction)`);
      } else if (field === "sources") {
        fn(e, "load", where, true);
        if (!Array.isArray(e.columns) || !e.columns.length || !e.columns.every((c) => typeof c === "string" && IDENT.test(c))) bad(`${where}'s columns is not a list of column names`);
      } else {
        fn(e, "apply", where, true);
      }
    }
  }
  if (pl.callbacks !== undefined) {
    if (!Array.isArray(pl.callbacks)) bad("callbacks is not a list");
    else
      for (const raw of pl.callbacks) {
        const e = (raw ?? {}) as Record<string, unknown>;
        const where = `callback ${typeof e.name === "string" ? e.name : "(unnamed)"}`;
        if (typeof e.name !== "string" || !e.name) bad("a callback has no name");
        const hooks = ["onTrainBegin", "onEpochEnd", "onTrainEnd"];
        if (!hooks.some((h) => e[h] !== undefined)) bad(`${where} has none of ${hooks.join(", ")}`);
        for (const h of hooks) fn(e, h, where, false);
      }
  }
  return out;
}

/** The plugins of the config file loaded last (the CLI and the language server load one project's at a time). */
let current: string | null = null;
let currentMtime = -1;
let currentProblems: Diagnostic[] = [];

/**
 * Loads the config that applies to `dir` (none: no plugins) and installs its valid plugins, replacing the ones of
 * another config. Returns the config file and the problems (NN8001–NN8003), none of which throws.
 * NNETC_NO_CONFIG=1 loads nothing.
 */
export async function loadProjectPlugins(dir: string): Promise<{ file: string | null; diagnostics: Diagnostic[]; changed: boolean }> {
  const file = process.env.NNETC_NO_CONFIG === "1" ? null : findConfig(dir);
  const mtime = file ? statSync(file).mtimeMs : -1;
  // The same config, unchanged since it was loaded (the language server asks at every document it opens).
  if (file === current && mtime === currentMtime) return { file, diagnostics: currentProblems, changed: false };
  if (current !== null || loadedPlugins().length) clearPlugins();
  current = file;
  currentMtime = mtime;
  currentProblems = [];
  if (!file) return { file, diagnostics: [], changed: true };
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`${pathToFileURL(file).href}?mtime=${mtime}`)) as Record<string, unknown>;
    currentProblems = installConfig(mod.default ?? mod.config, file);
  } catch (e) {
    currentProblems = [diag("pluginLoadFailed", NO_SPAN, { file, message: (e as Error)?.message ?? String(e) })];
  }
  return { file, diagnostics: currentProblems, changed: true };
}

/** Validates a config object and installs each plugin that has no problem. */
export function installConfig(config: unknown, file: string): Diagnostic[] {
  const plugins = Array.isArray(config) ? config : (config as { plugins?: unknown } | undefined)?.plugins;
  if (!Array.isArray(plugins)) return [diag("pluginLoadFailed", NO_SPAN, { file, message: "its default export is not defineConfig({ plugins: [...] })" })];
  const out: Diagnostic[] = [];
  plugins.forEach((p, i) => {
    const problems = validatePlugin(p, file, i);
    out.push(...problems);
    if (!problems.length) addPlugin({ plugin: p as NnetcPlugin, file });
  });
  return out;
}
