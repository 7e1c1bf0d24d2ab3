// nnetc/runtime for browsers: the modules `nnetc compile` emits bundle with esbuild for platform "browser"
// (its "browser" export condition: runtime/index.ts, the platform-neutral entry) with no Node built-in, one
// case per zoo model; the neutral entry loads weights from bytes, a Response or a URL, checks them against
// the model as Node does, and without the Node part (runtime/node.ts) refuses what needs files with a clear
// error. spec/unit/browser.test.ts runs a bundled app in a real browser.
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import * as path from "node:path";
import type { Metafile } from "esbuild";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ROOT, nnetFilesUnder, runNode } from "../helpers.js";

/** Modules of runtime/ that read or write files: the neutral entry must never reach them. */
const NODE_ONLY = /dist\/runtime\/(node|train|weights|commands|vocab_file|pretrained|huggingface|export|checkpoint\/(store|tfjs|index)|data\/(index|sources|resolve|idx|audio|image|raw))\.js$/;
const BUILTIN = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** Every way a bundle can reach Node: an import of a built-in, an external other than tfjs, a Node-only runtime module. */
function nodeReach(meta: Metafile, inputs: Iterable<string>): string[] {
  const out: string[] = [];
  for (const f of inputs) {
    if (NODE_ONLY.test(f)) out.push(`${f} is bundled`);
    for (const i of meta.inputs[f]?.imports ?? []) {
      if (BUILTIN.has(i.path) || i.path.startsWith("node:")) out.push(`${f} imports ${i.path}`);
      // "<runtime>": an import() of a computed specifier (onnxruntime-web's loader of its own .mjs by URL), not a module.
      else if (i.external && !i.path.startsWith("@tensorflow/") && i.path !== "<runtime>") out.push(`${f} imports ${i.path} (left external)`);
    }
  }
  return out;
}

const zoo = nnetFilesUnder("models").map((f) => path.basename(f, ".nnet"));
let built: { meta: Metafile; errors: string[]; outputs: Map<string, string[]> } | null = null;

/** Every zoo model's emitted module (its spec/emitted golden, which emit.test keeps equal to `nnetc compile`), in one esbuild run. */
async function buildZoo(): Promise<NonNullable<typeof built>> {
  if (built) return built;
  const { build } = await import("esbuild");
  const r = await build({
    entryPoints: Object.fromEntries(zoo.map((m) => [m, path.join(ROOT, "spec/emitted", `${m}.ts`)])),
    bundle: true,
    platform: "browser",
    format: "esm",
    outdir: path.join(ROOT, "dist/spec/tmp-browser-bundle"),
    write: false,
    metafile: true,
    logLevel: "silent",
    // TensorFlow.js is bundled in the full case below (and by Vite in browser.test.ts), once.
    external: ["@tensorflow/*"],
    absWorkingDir: ROOT,
  }).catch((e: { errors?: { text: string; location: { file: string; line: number } | null }[] }) => {
    if (!e.errors) throw e;
    return { errors: e.errors, metafile: { inputs: {}, outputs: {} } as Metafile };
  });
  const errors = r.errors.map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ""}${e.text}`);
  const outputs = new Map(Object.entries(r.metafile!.outputs).map(([f, o]) => [path.basename(f, ".js"), Object.keys(o.inputs)]));
  return (built = { meta: r.metafile!, errors, outputs });
}

for (const m of zoo) {
  test(`models/${m}.nnet: its emitted module bundles for browsers with no Node built-in`, async () => {
    const b = await buildZoo();
    assert.equal(b.errors, [], "esbuild errors");
    const inputs = b.outputs.get(m);
    assert.ok(inputs, `no bundle for ${m}`);
    assert.ok(inputs!.includes("dist/runtime/index.js"), `the bundle has nnetc/runtime's neutral entry (inputs: ${inputs!.filter((f) => f.includes("runtime")).join(", ")})`);
    assert.equal(nodeReach(b.meta, inputs!), [], "reaches Node");
  });
}

test("nnetc/runtime with TensorFlow.js and its wasm backend bundles for browsers; for Node it is the Node entry", async () => {
  const { build } = await import("esbuild");
  const common = { stdin: { contents: `export * from "nnetc/runtime";`, resolveDir: ROOT }, bundle: true, format: "esm", write: false, metafile: true, logLevel: "silent", absWorkingDir: ROOT } as const;
  const browser = await build({ ...common, platform: "browser" });
  const inputs = Object.keys(browser.metafile.inputs);
  assert.ok(inputs.some((f) => f.includes("@tensorflow/tfjs-backend-wasm/")), "the wasm backend is in the bundle");
  // Engine "onnx" in a browser: the neutral session and onnxruntime-web's wasm build (a chunk a bundler loads on demand).
  assert.ok(inputs.includes("dist/runtime/onnx_session.js") && inputs.some((f) => f.endsWith("onnxruntime-web/dist/ort.wasm.bundle.min.mjs")), "onnxruntime-web (wasm) and runtime/onnx_session.js are in the bundle");
  assert.not.ok(inputs.some((f) => f.includes("onnxruntime-node")), "onnxruntime-node is not");
  assert.equal(nodeReach(browser.metafile, inputs), []);
  const node = await build({ ...common, platform: "node", external: ["@tensorflow/*", "@huggingface/*", "@stdlib/*", "sharp"] });
  assert.ok("dist/runtime/node.js" in node.metafile.inputs, "platform node: nnetc/runtime is runtime/node.ts (the \"node\" condition)");
});

test("runtime/index.ts's fingerprintOf (WebCrypto) is runtime/weights.ts's fingerprint (node:crypto)", async () => {
  const nn = await import("../../runtime/node.js");
  const { fingerprint } = await import("../../runtime/weights.js");
  const params = [nn.param("dense", "kernel", [784, 256], "glorot_uniform"), nn.param("dense", "bias", [256], "zeros", false)];
  assert.is(await nn.fingerprintOf({ params }), fingerprint({ params }));
  assert.is.not(await nn.fingerprintOf({ params: params.slice(1) }), fingerprint({ params }));
});

/** Without runtime/node.ts: weights from bytes, a Response and a URL (a data: URL, fetched), the checks, and the refusals. */
const NEUTRAL = `
import * as tf from "@tensorflow/tfjs-core";
import * as nn from ${JSON.stringify(path.join(ROOT, "dist/runtime/index.js"))};
import { encodeSafetensors } from ${JSON.stringify(path.join(ROOT, "dist/runtime/checkpoint/safetensors.js"))};
const def = {
  name: "Tiny", source: new URL("file:///nowhere/tiny.nnet"), params: [nn.param("d", "kernel", [2, 2], "zeros"), nn.param("d", "bias", [2], "zeros")],
  inputs: [{ name: "x", shape: ["batch", 2], dtype: "float32" }], outputs: [{ name: "y", shape: ["batch", 2], dtype: "float32" }],
  plan: null, datasets: [], forward: (w, i) => ({ y: tf.add(tf.matMul(i.x, w["d/kernel"]), w["d/bias"]) }),
};
const fp = await nn.fingerprintOf(def);
const file = encodeSafetensors({ "d/kernel": { dtype: "F32", shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }, "d/bias": { dtype: "F32", shape: [2], data: Float32Array.of(0.5, -0.5) } }, { fingerprint: fp, classes: JSON.stringify(["a", "b"]) });
const y = async (weights) => { const m = await nn.create(def, { weights, backend: "cpu" }); const out = Array.from(nn.predict(m, { x: tf.tensor([[1, 1]]) }).y.dataSync()); return { out, classes: m.saved?.classes ?? null, seed: m.seed }; };
const err = async (f) => { try { await f(); return null; } catch (e) { return e.constructor.name + ": " + e.message; } };
const url = "data:application/octet-stream;base64," + Buffer.from(file).toString("base64");
const other = encodeSafetensors({ "d/kernel": { dtype: "F32", shape: [2, 2], data: new Float32Array(4) }, "d/bias": { dtype: "F32", shape: [2], data: new Float32Array(2) } }, { fingerprint: "0123456789abcdef" });
const model = await nn.create(def, { seed: 1, backend: "cpu" });
console.log(JSON.stringify({
  bytes: await y(file), buffer: await y(file.slice().buffer), response: await y(new Response(file)), url: await y(url), urlObject: await y(new URL(url)),
  mismatch: await err(() => nn.create(def, { weights: other, backend: "cpu" })),
  notFound: await err(() => nn.create(def, { weights: new Response("no", { status: 404, statusText: "Not Found" }), backend: "cpu" })),
  fit: await err(() => nn.fit(model)), save: await err(() => nn.save(model, "/tmp/x")), evaluate: await err(() => nn.evaluate(model)), sampleBatch: await err(() => nn.sampleBatch(model, 1)),
}));
`;

test("the neutral entry: weights from bytes, an ArrayBuffer, a Response, a URL; a different model's refused; file I/O refused with what to do", async () => {
  const r = await runNode(["--input-type=module", "-e", NEUTRAL], { timeoutMs: 60_000 });
  assert.is(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, { out: number[]; classes: string[] | null; seed: number | null } | string | null>;
  // [1, 1] · [[1, 2], [3, 4]] + [0.5, -0.5] = [4.5, 5.5]
  for (const k of ["bytes", "buffer", "response", "url", "urlObject"]) assert.equal(o[k], { out: [4.5, 5.5], classes: ["a", "b"], seed: null }, k);
  assert.match(String(o.mismatch), /RunError: the weights' bytes was trained for a different model/);
  assert.match(String(o.notFound), /RunError: weights the weights' Response: the server answered 404 Not Found/);
  assert.match(String(o.fit), /RunError: fit\(\) reads or writes files, which nnetc\/runtime does on Node only .*train with trainStep\(\)/);
  for (const k of ["save", "evaluate", "sampleBatch"]) assert.match(String(o[k]), new RegExp(`RunError: ${k}\\(\\) reads or writes files`), k);
});

test("package.json maps nnetc/runtime per platform and the emitted code imports nnetc/runtime", () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { exports: Record<string, Record<string, string>> };
  const rt = pkg.exports["./runtime"]!;
  assert.equal(Object.keys(rt), ["types", "browser", "node", "default"], "types first, browser before node (a resolver takes the first that matches)");
  assert.is(rt.browser, "./dist/runtime/index.js");
  assert.is(rt.default, "./dist/runtime/index.js");
  assert.is(rt.node, "./dist/runtime/node.js");
  assert.is(pkg.exports["./runtime/node"]!.default, "./dist/runtime/node.js");
});

test.run();
