// The bundler plugin: `import model from "./mlp.nnet"` in code bundled by esbuild or Vite (and, through
// unplugin, Rollup, Rolldown, webpack, Rspack) becomes the file's main model module, compiled as the Node
// loader does (compileForImport: the "js" flavor, the same disk cache). Compile errors are reported through
// the bundler's own error mechanism, one rendered diagnostic each, located in the .nnet file.
//
// Where the module's `source` (the .nnet file, against which a training plan's data paths resolve and which
// saved models name) points after bundling: emitted code says `new URL("./mlp.nnet", import.meta.url)`, and in
// a bundle import.meta.url is the bundle's URL, not the .nnet file's. By default ("absolute") the plugin
// replaces import.meta.url there with the .nnet file's own file: URL on the machine that bundled it, so a
// bundle run in place finds the file and its data; a bundle moved to another machine keeps that path (data is
// then found through fit({ data }) / evaluate({ data }), or the embedded Fashion-MNIST). With
// `source: "relative"` the emitted code is kept, so the .nnet file is looked for beside the bundle (copy it
// there).
//
// Browsers: the emitted module imports "nnetc/runtime", which package.json's export conditions resolve to the
// platform-neutral entry (runtime/index.ts) in a browser build and to runtime/node.ts (files: fit, save,
// weights from paths) in a Node one, so bundles for either need nothing marked external. The plugin knows
// which it builds for (option `platform`; default: esbuild's platform, Vite's client or SSR environment, Node
// for the other bundlers): a browser has no file to point at, so there `source` ("absolute") is `nnet:/` and
// the .nnet file's path relative to the working directory, and no build machine's path ends up in a page.
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { createUnplugin, type UnpluginInstance } from "unplugin";
import { compileForImport, displayPath, NnetCompileError } from "./hooks.js";

export interface NnetPluginOptions {
  /** Cache folder, or false for none (default: $NNETC_CACHE_DIR, else node_modules/.cache/nnetc). */
  cache?: string | false;
  /** What the module's `source` URL is in the bundle: the .nnet file's absolute URL (default), or relative to the bundle. */
  source?: "absolute" | "relative";
  /** What the bundle runs on (default: esbuild's `platform`, Vite's client (browser) or SSR (node) build, else node). */
  platform?: "browser" | "node";
  /** Browser builds: ship the models' inference graphs so that load(…, { engine: "onnx" }) runs on onnxruntime-web (default true; false: smaller bundles, no ONNX engine). */
  onnx?: boolean;
}

/** .nnet ids, with the query a bundler may add (`?v=…`). */
const NNET_ID = /\.nnet(?:\?.*)?$/;

const SOURCE_LINE = /^const source = new URL\(("(?:[^"\\]|\\.)*"), import\.meta\.url\);$/m;

/**
 * Pin the module's `source` to the .nnet file itself: `new URL("./mlp.nnet", "file:///…/mlp.nnet")`; for a
 * browser, to its path relative to `cwd` (its name when outside): `new URL("./mlp.nnet", "nnet:/models/mlp.nnet")`.
 */
export function pinSource(code: string, file: string, platform: "browser" | "node" = "node", cwd = process.cwd()): string {
  if (!SOURCE_LINE.test(code)) throw new Error(`nnetc plugin: the code emitted for ${file} has no "const source = new URL(…, import.meta.url)" line to pin (nnetc's emitter and plugin disagree; please report it)`);
  const rel = path.relative(cwd, file);
  const base = platform === "browser" ? `nnet:/${(rel.startsWith("..") || path.isAbsolute(rel) ? path.basename(file) : rel).split(path.sep).join("/")}` : pathToFileURL(file).href;
  return code.replace(SOURCE_LINE, (_line, ref: string) => `const source = new URL(${ref}, ${JSON.stringify(base)});`);
}

const RUNTIME_IMPORT = /^import \* as nn from "nnetc\/runtime";$/m;

/**
 * For a browser build: the code that registers the inference graphs of the models of `file` (each model's -O2
 * inference form, the IR that engine "onnx" exports to ONNX with the loaded weights), since a browser has no
 * compiler to make them as Node does (runtime/onnx_load.ts). Parsed only when a model is loaded with engine "onnx".
 */
export async function inferenceCode(code: string, file: string): Promise<string> {
  if (!RUNTIME_IMPORT.test(code) || !/^const source = new URL\(/m.test(code)) throw new Error(`nnetc plugin: the code emitted for ${file} lacks the nnetc/runtime import or the source line (nnetc's emitter and plugin disagree; please report it)`);
  const [{ compile }, { optimize }, { readSource }] = await Promise.all([import("../index.js"), import("../passes/index.js"), import("../read_source.js")]);
  const read = readSource(file);
  if ("error" in read) throw new Error(`cannot read ${file}: ${read.error}`);
  const res = compile(displayPath(file), read.text, { readFile: (f) => readSource(f) });
  const graphs: Record<string, unknown> = {};
  for (const m of res.module.models) graphs[m.name] = optimize({ ...res.module, models: [m] }, { level: 2, mode: "infer" }).module.models[0];
  // Spans name their files as seen from the working directory; a file outside it keeps only its name, so no
  // path of the build machine goes into a page.
  return `${code}\n// nnetc plugin, browser build: the models' inference graphs, for load(…, { engine: "onnx" }) on onnxruntime-web.\nnn.registerInference(source, () => JSON.parse(${JSON.stringify(JSON.stringify(graphs, (_k, v: unknown) => (typeof v === "string" && path.isAbsolute(v) ? path.basename(v) : v)))}));\n`;
}

/** What a build targets: esbuild's platform or Vite's build, read when the build starts (per plugin instance). */
interface Target {
  platform: "browser" | "node";
}

/** Vite's environment of a hook's context (Vite 6+): "client" builds for browsers, "server" for SSR. */
const viteConsumer = (ctx: unknown) => (ctx as { environment?: { config?: { consumer?: string } } }).environment?.config?.consumer;

export const unplugin: UnpluginInstance<NnetPluginOptions | undefined, false> = createUnplugin<NnetPluginOptions | undefined, false>((options = {}, meta, target: Target = { platform: "node" }) => ({
  name: "nnetc",
  enforce: "pre",
  load: {
    filter: { id: NNET_ID },
    async handler(id) {
      if (!NNET_ID.test(id) || id.startsWith("\0")) return null;
      const file = id.replace(/\?.*$/, "");
      try {
        const r = await compileForImport(file, options.cache === undefined ? {} : { cache: options.cache });
        for (const f of r.files) this.addWatchFile(f);
        for (const w of r.warnings) this.warn({ message: w, id: file });
        const consumer = viteConsumer(this);
        const platform = options.platform ?? (consumer ? (consumer === "client" ? "browser" : "node") : target.platform);
        const code = options.source === "relative" ? r.code : pinSource(r.code, file, platform);
        return { code: platform === "browser" && options.onnx !== false ? await inferenceCode(code, file) : code, map: null };
      } catch (e) {
        if (!(e instanceof NnetCompileError)) throw e;
        const errors = e.diagnostics.filter((d) => d.severity === "error");
        const first = errors[0];
        if (meta.framework === "esbuild" && errors.length > 0) {
          // esbuild collects errors and shows each with its location; the module is not used.
          for (const d of errors) this.error({ message: d.rendered, id: file, loc: { file: d.file, line: d.line, column: d.column - 1 } });
          return "";
        }
        // Rollup-style bundlers (Vite) stop at the first this.error: give it the whole report.
        this.error({ message: e.message, id: file, ...(first ? { loc: { file: path.resolve(first.file), line: first.line, column: first.column - 1 } } : {}) });
        return "";
      }
    },
  },
  esbuild: {
    loader: "js",
    onLoadFilter: /\.nnet$/,
    // esbuild's default platform is browser; neutral has no files either.
    setup: (build) => void (target.platform = build.initialOptions.platform === "node" ? "node" : "browser"),
  },
  vite: { configResolved: (config) => void (target.platform = config.build.ssr ? "node" : "browser") },
}));

/** esbuild plugin: `plugins: [nnetc()]`. */
export const esbuild = unplugin.esbuild;
/** Vite plugin: `plugins: [nnetc()]`. */
export const vite = unplugin.vite;
// unplugin.rollup(), unplugin.webpack(), unplugin.rspack()… are there too, from the same implementation, but
// untested here.
export default unplugin;
