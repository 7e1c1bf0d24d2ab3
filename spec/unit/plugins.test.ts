// Plugins (GitHub issue 19, scope 2; spec/language.md §15): the example project examples/plugin-swish (an op, a
// loss, a metric, a data source, a preprocessing step and a callback in nnetc.config.mjs) end to end — check,
// summary, training on tfjs and on torch, ONNX export run by onnxruntime-node, `compile --target ts` refused,
// the language server's completion and hover — plus the registry (a plugin op is in every engine's table or gets
// NN8004), validation (NN8001–NN8003) and plugins that throw (NN8005, never NN9001).
import * as tf from "@tensorflow/tfjs-core";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type * as L from "vscode-languageserver";
import { referenceTables } from "../../compiler/docs.js";
import { pluginRefusals } from "../../compiler/emit/index.js";
import { KERAS } from "../../compiler/emit/keras.js";
import { exportOnnx, LOWER } from "../../compiler/emit/onnx/index.js";
import { emitTorch, TORCH } from "../../compiler/emit/torch.js";
import { compile } from "../../compiler/index.js";
import { OP_NAMES, OPS, type OpKind } from "../../compiler/ir/ops.js";
import { LOSSES, METRICS, PREPROCESS, SOURCES } from "../../compiler/plan/tables.js";
import { clearPlugins, loadedPlugins } from "../../compiler/plugin/api.js";
import { installConfig, loadProjectPlugins } from "../../compiler/plugin/load.js";
import { IMPLS, pluginForward } from "../../runtime/interpret.js";
import { initBackend } from "../../runtime/backend.js";
import { connect } from "../lsp-client.js";
import { memoryHost, ROOT, runNode } from "../helpers.js";
import { requireTorch } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const EXAMPLE = path.join(ROOT, "examples/plugin-swish");
const WAVE = path.join(EXAMPLE, "wave.nnet");
const CONFIG = path.join(EXAMPLE, "nnetc.config.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-plugins-"));

test.after(() => {
  clearPlugins();
  rmSync(dir, { recursive: true, force: true });
});

const codesOf = (ds: readonly { code: string }[]) => ds.map((d) => d.code);

// ── in process: the tables ──────────────────────────────────────────────────────────────────────────

test("plugins: the example's config loads clean and adds its entries to the built-ins' own tables", async () => {
  const r = await loadProjectPlugins(EXAMPLE);
  assert.is(r.file, CONFIG);
  assert.equal(r.diagnostics, []);
  assert.equal(loadedPlugins().map((p) => p.plugin.name), ["swish-example"]);
  assert.ok(OP_NAMES.includes("swish"));
  assert.equal(OPS["swish" as OpKind].plugin, { name: "swish-example", file: CONFIG });
  assert.ok(LOSSES.log_cosh && METRICS.max_error && SOURCES.waves && PREPROCESS.offset);
  assert.ok(referenceTables().includes("`swish(beta: float = 1)`"), "the generated reference lists the plugin op");
  const res = compile(WAVE, readFileSync(WAVE, "utf8"), memoryHost());
  assert.equal(codesOf(res.diagnostics), []);
  const node = res.module.models[0]!.nodes.find((n) => n.op === "swish")!;
  assert.equal(node.attrs.beta, 1.5);
  assert.equal(node.shape, ["batch", 16]);
});

test("plugins: the checker applies a plugin op's signature and shape rule like a built-in's (NN8006 at the layer, never NN9001)", () => {
  const src = (body: string) => `model M {\n  input x: i32[batch, 4]\n  input f: f32[batch, 4]\n  ${body}\n}\n`;
  const rule = compile("t.nnet", src("output y = x -> swish"), memoryHost());
  assert.equal(codesOf(rule.diagnostics), ["NN8006"]);
  assert.match(rule.diagnostics[0]!.message, /swish needs a float tensor, not i32/);
  assert.is(rule.diagnostics[0]!.span.start, src("output y = x -> swish").indexOf("swish"));
  const bad = compile("t.nnet", src("output y = f -> swish(gamma: 2)"), memoryHost());
  assert.ok(bad.diagnostics.length && bad.diagnostics.every((d) => d.code.startsWith("NN2")), JSON.stringify(codesOf(bad.diagnostics)));
  const range = compile("t.nnet", src("output y = f -> swish(beta: -1)"), memoryHost());
  assert.equal(codesOf(range.diagnostics), ["NN2019"]);
  const typo = compile("t.nnet", src("output y = f -> swihs"), memoryHost());
  assert.match(typo.diagnostics.map((d) => `${d.message} ${d.hint ?? ""}`).join(" "), /swish/);
});

test("plugins: the op's custom gradient equals autodiff of its forward (the interpreter runs it under tf.customGrad)", async () => {
  await initBackend("cpu");
  const from = loadedPlugins().find((p) => p.plugin.name === "swish-example")!;
  const op = from.plugin.ops!.find((o) => o.name === "swish")!;
  const x = tf.tensor1d([-3, -1.2, -0.1, 0, 0.4, 1, 2.5, 6]);
  for (const beta of [1, 1.5, 0.3]) {
    const custom = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(pluginForward(op, from, [t], { beta }), tf.range(1, 9))))(x);
    const auto = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(op.tfjs(tf, [t], { beta }) as tf.Tensor, tf.range(1, 9))))(x);
    const d = tf.max(tf.abs(tf.sub(custom, auto))).dataSync()[0]!;
    assert.ok(d < 1e-5, `beta ${beta}: max |custom - autodiff| = ${d}`);
  }
});

test("plugins: every plugin op has an entry in every engine's op table, or a numbered diagnostic (NN8004) where it has none", () => {
  for (const p of loadedPlugins())
    for (const op of p.plugin.ops ?? []) {
      for (const [name, table] of [["interpreter", IMPLS], ["ONNX", LOWER], ["PyTorch", TORCH], ["tfjs-layers", KERAS]] as const) assert.ok(Object.hasOwn(table, op.name), `${op.name}: no ${name} entry`);
    }
  const wave = compile(WAVE, readFileSync(WAVE, "utf8"), memoryHost());
  assert.equal([...new Set(codesOf(pluginRefusals(wave.module)))], ["NN8004"], "emitted TypeScript has no plugin ops");
  // A plugin op without onnx and torch lowerings: NN8004 naming the plugin and its file, from each target.
  const file = path.join(dir, "bare.config.mjs");
  assert.equal(installConfig({ plugins: [{ name: "bare", ops: [{ name: "bare_op", doc: "x + 1", tfjs: (tf: { add(a: unknown, b: number): unknown }, [x]: unknown[]) => tf.add(x, 1) }] }] }, file), []);
  assert.not.ok(Object.hasOwn(LOWER, "bare_op") || Object.hasOwn(TORCH, "bare_op"));
  const m = compile("t.nnet", "model M {\n  input x: f32[batch, 3]\n  output y = x -> bare_op\n}\n", memoryHost());
  assert.equal(codesOf(m.diagnostics), []);
  const onnx = exportOnnx(m.module.models[0]!, new Map(), {} as never);
  assert.equal(codesOf(onnx.diagnostics), ["NN8004"]);
  assert.match(onnx.diagnostics[0]!.message, /bare_op.*plugin "bare".*bare\.config\.mjs.*no ONNX form/);
  const torch = emitTorch(m.module, { displayPath: "t.nnet", sourceText: () => "", version: "test", level: 0 } as never);
  assert.equal(codesOf(torch.diagnostics), ["NN8004"]);
});

test("plugins: validation names the plugin and its file: clashes (NN8003), malformed entries (NN8002), configs that fail (NN8001)", async () => {
  const file = path.join(dir, "v.config.mjs");
  const tfjs = () => null;
  const v = (plugins: unknown) => codesOf(installConfig({ plugins }, file));
  assert.equal(v([{ name: "a", ops: [{ name: "relu", doc: "", tfjs }] }]), ["NN8003"]);
  assert.equal(v([{ name: "a", losses: [{ name: "mse", doc: "", tfjs }] }]), ["NN8003"]);
  assert.equal(v([{ name: "a", ops: [{ name: "swish", doc: "", tfjs }] }]), ["NN8003"], "taken by the example's plugin");
  assert.equal(v([{ name: "a", ops: [{ name: "model", doc: "", tfjs }] }]), ["NN8003"], "a keyword");
  assert.equal(v([{ name: "a", ops: [{ name: "no_forward", doc: "" }] }]), ["NN8002"]);
  assert.equal(v([{ name: "a", metrics: [{ name: "m", doc: "", compute: tfjs }] }]), ["NN8002"], "no higherIsBetter");
  assert.equal(v([{ name: "a", ops: [{ name: "p", doc: "", tfjs, params: [{ name: "k", type: "complex" }] }] }]), ["NN8002"]);
  assert.equal(v([{ name: "a", callbacks: [{ name: "c" }] }]), ["NN8002"]);
  assert.equal(v([{ name: "a", layers: [] }]), ["NN8002"]);
  assert.equal(v([null]), ["NN8002"]);
  assert.equal(codesOf(installConfig(42, file)), ["NN8001"]);
  assert.ok(!OP_NAMES.includes("no_forward") && !OP_NAMES.includes("p"), "an invalid plugin installs nothing");
  const msg = installConfig({ plugins: [{ name: "clash", ops: [{ name: "relu", doc: "", tfjs }] }] }, file)[0]!.message;
  assert.match(msg, /plugin "clash" \(.*v\.config\.mjs\): op "relu" is already defined by nnetc/);
  // Through the CLI: a config that throws is NN8001 (exit 1), a shape rule that throws is NN8005.
  const proj = (name: string, config: string) => {
    const d = path.join(dir, name);
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, "nnetc.config.mjs"), config);
    writeFileSync(path.join(d, "m.nnet"), "model M {\n  input x: f32[batch, 3]\n  output y = x -> boom\n}\n");
    return d;
  };
  const t = proj("throws", `throw new Error("config kaboom");\n`);
  const r1 = await runNode([CLI, "check", path.join(t, "m.nnet")]);
  assert.is(r1.code, 1, r1.stderr);
  assert.match(r1.stderr, /error NN8001: cannot load .*throws\/nnetc\.config\.mjs: config kaboom/);
  assert.not.match(r1.stderr, /NN9001|internal/);
  const fmt = await runNode([CLI, "fmt", "--check", path.join(t, "m.nnet")]);
  assert.is(fmt.code, 0, "fmt does not load the config");
  const off = await runNode([CLI, "check", path.join(t, "m.nnet")], { env: { ...process.env, NNETC_NO_CONFIG: "1" } });
  assert.is(off.code, 1);
  assert.not.match(off.stderr, /NN8001/);
  assert.match(off.stderr, /NN2\d{3}.*boom/, "without the config, boom is an unknown op");
  const s = proj("shape", `export default { plugins: [{ name: "shaky", ops: [{ name: "boom", doc: "d", tfjs: (tf, [x]) => x, shape: () => { throw new Error("rule kaboom"); } }] }] };\n`);
  const r2 = await runNode([CLI, "check", path.join(s, "m.nnet")]);
  assert.is(r2.code, 1, r2.stderr);
  assert.match(r2.stderr, /m\.nnet:3:19 - error NN8005: plugin "shaky" \(.*shape\/nnetc\.config\.mjs\): op boom's shape rule failed: rule kaboom/);
});

test("plugins: property — whatever a config exports, validation answers with diagnostics or installs cleanly; it never throws", () => {
  const file = path.join(dir, "prop.config.mjs");
  const entry = fc.record({ name: fc.oneof(fc.constantFrom("relu", "mse", "model", "p_op", "p_loss", ""), fc.string()), doc: fc.oneof(fc.string(), fc.anything()), tfjs: fc.oneof(fc.constant(() => null), fc.anything()), compute: fc.oneof(fc.constant(() => 0), fc.anything()), params: fc.oneof(fc.constant(undefined), fc.array(fc.record({ name: fc.string(), type: fc.oneof(fc.constantFrom("int", "float", "enum"), fc.anything()) }), { maxLength: 2 })), inputs: fc.oneof(fc.constant(undefined), fc.anything()), higherIsBetter: fc.anything() }, { requiredKeys: [] });
  const plugin = fc.oneof(fc.anything(), fc.record({ name: fc.oneof(fc.string(), fc.anything()), ops: fc.oneof(fc.array(entry, { maxLength: 3 }), fc.anything()), losses: fc.array(entry, { maxLength: 2 }), metrics: fc.array(entry, { maxLength: 2 }), callbacks: fc.oneof(fc.array(fc.anything(), { maxLength: 2 }), fc.anything()) }, { requiredKeys: [] }));
  const before = OP_NAMES.length;
  fc.assert(
    fc.property(fc.oneof(fc.anything(), fc.record({ plugins: fc.array(plugin, { maxLength: 3 }) })), (config) => {
      const n = loadedPlugins().length;
      const ds = installConfig(config, file);
      for (const d of ds) assert.ok(/^NN800[1-3]$/.test(d.code) && d.message.includes("prop.config.mjs") || d.code === "NN8001", `${d.code} ${d.message}`);
      // undo what this run installed, keeping the example's
      const added = loadedPlugins().slice(n);
      if (added.length) {
        const keep = loadedPlugins().slice(0, n);
        clearPlugins();
        for (const k of keep) installConfig({ plugins: [k.plugin] }, k.file);
      }
    }),
    { numRuns: 300, seed: 19 },
  );
  assert.is(OP_NAMES.length, before);
});

// ── the CLI, end to end ─────────────────────────────────────────────────────────────────────────────

test("plugins: check and summary show the plugin op like a built-in (FLOPs from its rule)", async () => {
  const c = await runNode([CLI, "check", WAVE]);
  assert.is(c.code, 0, c.stderr);
  const s = await runNode([CLI, "summary", WAVE]);
  assert.is(s.code, 0, s.stderr);
  assert.match(s.stdout, /swish \(swish\)\s+\[batch, 16\]\s+0/);
  assert.match(s.stdout, /swish_1 \(swish\)\s+\[batch, 16\]\s+0/);
  // dense 2·2·16 + 16·16·2 + 16·2 + biases 16 + 16 + 1 = 64 + 512 + 32 + 33, swish 5 per value × 32
  assert.match(s.stdout, /FLOPs per sample: 801 /);
});

const records = (file: string) => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);

test("plugins: trains on tfjs — the op (with its custom gradient), the source, the step, the loss, the metric and the callback", async () => {
  const out = path.join(dir, "run-tfjs");
  const r = await runNode([CLI, "train", WAVE, "--out", out, "--backend", "cpu"]);
  assert.is(r.code, 0, r.stderr);
  const m = records(path.join(out, "metrics.jsonl"));
  assert.is(m.length, 3);
  for (const e of m) assert.ok(Number.isFinite(e.loss) && Number.isFinite(e.max_error) && Number.isFinite(e.mse), JSON.stringify(e));
  assert.ok((m[2]!.loss as number) < (m[0]!.loss as number), "the loss falls");
  const cb = records(path.join(out, "callback.jsonl"));
  assert.equal(cb.map((e) => e.event), ["begin", "epoch", "epoch", "epoch", "end"]);
  assert.equal(cb.slice(1, 4).map((e) => e.loss), m.map((e) => e.loss), "onEpochEnd gets each epoch's record");
  // A callback that returns "stop" ends training (Keras's stop_training).
  const stop = path.join(dir, "run-stop");
  const r2 = await runNode([CLI, "train", WAVE, "--out", stop, "--backend", "cpu"], { env: { ...process.env, NNETC_EXAMPLE_STOP_BELOW: "100" } });
  assert.is(r2.code, 0, r2.stderr);
  assert.match(r2.stdout + r2.stderr, /callback epoch_file \(plugin "swish-example"\) stopped training after epoch 1/);
  assert.is(records(path.join(stop, "metrics.jsonl")).length, 1);
  assert.equal(records(path.join(stop, "callback.jsonl")).at(-1), { event: "end", epochs: 1, stopped: true });
});

test("plugins: the trained model exports to ONNX and runs under onnxruntime-node with the interpreter's results", async () => {
  const run = path.join(dir, "run-tfjs");
  const onnx = path.join(dir, "wave.onnx");
  const c = await runNode([CLI, "compile", WAVE, "--target", "onnx", "--weights", run, "-o", onnx]);
  assert.is(c.code, 0, c.stderr);
  const ort = await import("onnxruntime-node");
  const session = await ort.InferenceSession.create(readFileSync(onnx));
  const types = new Set<string>();
  // the graph holds the plugin's lowering: Mul(x, Sigmoid(Mul(x, beta)))
  for (const b of [readFileSync(onnx)]) for (const t of ["Sigmoid", "Mul"]) if (b.includes(Buffer.from(t))) types.add(t);
  assert.equal([...types].sort(), ["Mul", "Sigmoid"]);
  const x = new ort.Tensor("float32", Float32Array.from([0.5, 1.5, -0.3, 0.2]), [2, 2]);
  const y = (await session.run({ [session.inputNames[0]!]: x }))[session.outputNames[0]!]!.data as Float32Array;
  assert.is(y.length, 2);
  const tf = await runNode([CLI, "eval", WAVE, "--weights", run, "--json", "--backend", "cpu"]);
  const ox = await runNode([CLI, "eval", WAVE, "--weights", run, "--json", "--engine", "onnx"]);
  assert.is(tf.code, 0, tf.stderr);
  assert.is(ox.code, 0, ox.stderr);
  const last = (s: string) => JSON.parse(s.trim().split("\n").at(-1)!) as Record<string, number>;
  const a = last(tf.stdout);
  const b = last(ox.stdout);
  for (const k of ["loss", "max_error", "mse"]) assert.ok(Math.abs(a[k]! - b[k]!) <= 1e-5 * Math.max(1, Math.abs(a[k]!)), `${k}: tfjs ${a[k]} vs onnx ${b[k]}`);
});

test("plugins: compile --target ts refuses a plugin op with NN8004 (an emitted module runs without the plugins)", async () => {
  const r = await runNode([CLI, "compile", WAVE, "--target", "ts", "-o", path.join(dir, "wave.ts")]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /wave\.nnet:6:\d+ - error NN8004: op "swish" \(layer "swish"\) of plugin "swish-example"/);
  assert.not.ok(existsSync(path.join(dir, "wave.ts")));
});

test("plugins: trains on torch (--engine torch): the op's and the loss's PyTorch forms", async () => {
  requireTorch();
  const out = path.join(dir, "run-torch");
  const r = await runNode([CLI, "train", WAVE, "--engine", "torch", "--out", out]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /engine: torch/);
  const m = records(path.join(out, "metrics.jsonl"));
  assert.is(m.length, 3);
  for (const e of m) assert.ok(Number.isFinite(e.loss) && Number.isFinite(e.max_error), JSON.stringify(e));
  assert.ok((m[2]!.loss as number) < (m[0]!.loss as number), "the loss falls");
  // The engines agree on what the op and the loss compute: the same weights evaluated on torch and on tfjs.
  const last = (s: string) => JSON.parse(s.trim().split("\n").at(-1)!) as Record<string, number>;
  const onTorch = await runNode([CLI, "eval", WAVE, "--weights", out, "--json", "--engine", "torch"]);
  const onTfjs = await runNode([CLI, "eval", WAVE, "--weights", out, "--json", "--backend", "cpu"]);
  assert.is(onTorch.code, 0, onTorch.stderr);
  assert.is(onTfjs.code, 0, onTfjs.stderr);
  const a = last(onTfjs.stdout);
  const b = last(onTorch.stdout);
  for (const k of ["loss", "max_error", "mse"]) assert.ok(Math.abs(a[k]! - b[k]!) <= 1e-5 * Math.max(1, Math.abs(a[k]!)), `${k}: tfjs ${a[k]} vs torch ${b[k]}`);
});

test("plugins: a plugin function that throws at run time is NN8005 naming the plugin (exit 2), never an internal error", async () => {
  const d = path.join(dir, "runtime-throw");
  mkdirSync(d, { recursive: true });
  writeFileSync(
    path.join(d, "nnetc.config.mjs"),
    `export default { plugins: [{ name: "flaky", ops: [{ name: "boom", doc: "d", tfjs: () => { throw new Error("forward kaboom"); } }],
      sources: [{ name: "four", doc: "d", columns: ["x"], load: () => ({ rows: 4, columns: { x: { shape: [3], values: new Float32Array(12) } } }) }] }] };\n`,
  );
  writeFileSync(path.join(d, "m.nnet"), "model M {\n  input x: f32[batch, 3]\n  output y = x -> dense(2) -> boom\n}\ndataset D {\n  source four()\n  field x: f32[3] = x\n}\ntrain M on D {\n  loss mean(y)\n  optimizer sgd\n  epochs 1\n  batch 2\n}\n");
  const r = await runNode([CLI, "train", path.join(d, "m.nnet"), "--out", path.join(d, "run"), "--backend", "cpu"]);
  assert.is(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /error NN8005: plugin "flaky" \(.*runtime-throw\/nnetc\.config\.mjs\): op boom's tfjs forward failed: forward kaboom/);
  assert.not.match(r.stderr, /NN9001|internal error/);
});

// ── the language server ─────────────────────────────────────────────────────────────────────────────

test("plugins: the language server loads the document's config: no diagnostics, the op in completion after -> and in hover", async () => {
  const client = await connect({ debounceMs: 5 });
  try {
    const uri = pathToFileURL(WAVE).href;
    const text = readFileSync(WAVE, "utf8");
    const d = client.nextDiagnostics(uri);
    client.notify("textDocument/didOpen", { textDocument: { uri, languageId: "nnet", version: 1, text } });
    assert.equal((await d).diagnostics, []);
    const lines = text.split("\n");
    const line = lines.findIndex((l) => l.includes("-> swish(beta"));
    const items = await client.request<L.CompletionItem[]>("textDocument/completion", { textDocument: { uri }, position: { line, character: lines[line]!.indexOf("swish(beta") } });
    const swish = items.find((i) => i.label === "swish");
    assert.ok(swish, "swish is offered");
    assert.match(JSON.stringify(swish), /beta/);
    const h = await client.request<L.Hover | null>("textDocument/hover", { textDocument: { uri }, position: { line, character: lines[line]!.indexOf("swish(beta") + 2 } });
    assert.match(JSON.stringify(h), /sigmoid\(beta · x\)/);
    assert.match(JSON.stringify(h), /plugin \\"swish-example\\" \(.*nnetc\.config\.mjs\)/);
  } finally {
    client.close();
  }
});

test("plugins: clearPlugins takes every entry out of every table again", () => {
  clearPlugins();
  assert.not.ok(OP_NAMES.includes("swish") || Object.hasOwn(OPS, "swish") || Object.hasOwn(IMPLS, "swish") || Object.hasOwn(LOWER, "swish") || Object.hasOwn(TORCH, "swish"));
  assert.not.ok("log_cosh" in LOSSES || "max_error" in METRICS || "waves" in SOURCES || "offset" in PREPROCESS);
  assert.not.ok(referenceTables().includes("`swish("));
});

test.run();
