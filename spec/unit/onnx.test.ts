// ONNX export (nnetc compile --target onnx): the protobuf writer against a small decoder (property test),
// every zoo model but the four large ones (spec/unit/onnx_large.test.ts) and every op the zoo does not use
// (spec/onnx/ops.nnet) run in onnxruntime-node against the interpreter on the same weights (max |Δ| ≤ 1e-4)
// and accepted by the ONNX checker (full_check), int8 weights exported as DequantizeLinear, and the CLI.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as fc from "fast-check";
import * as ort from "onnxruntime-node";
import * as tf from "@tensorflow/tfjs-core";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { exportOnnx, OPSET } from "../../compiler/emit/onnx/index.js";
import { encodeModel, ONNX_DTYPE, Writer } from "../../compiler/emit/onnx/proto.js";
import { mainModel } from "../../compiler/emit/index.js";
import { optimize } from "../../compiler/passes/index.js";
import { encodeSafetensors } from "../../runtime/checkpoint/index.js";
import { initBackend } from "../../runtime/backend.js";
import { Rng } from "../../runtime/data/rng.js";
import { run } from "../../runtime/interpret.js";
import { dequantizeWeights, quantizeWeights } from "../../runtime/quantize.js";
import { fingerprint } from "../../runtime/weights.js";
import { finalWeights } from "../../runtime/onnx.js";
import { ROOT, runNode } from "../helpers.js";
import { batchFor, load, maxAbsDiff, seededHost } from "./onnx_equiv.worker.js";
import { assertClose, equivalence, LARGE, onnxCheck, TOLERANCE } from "./onnx_shared.js";

const CLI = path.join(ROOT, "dist/compiler/cli/main.js");

// ── the protobuf writer ─────────────────────────────────────────────────────────────────────────────

type Field = { field: number; wire: number; value: bigint | number | Uint8Array };

/** A small protobuf decoder: the fields of one message, varints as unsigned 64-bit BigInts. */
function decode(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const x = b[i++]!;
      v |= BigInt(x & 0x7f) << shift;
      if (x < 0x80) return v;
      shift += 7n;
    }
  };
  while (i < b.length) {
    const tag = Number(varint());
    const field = tag >> 3;
    const wire = tag & 7;
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 5) {
      out.push({ field, wire, value: new DataView(b.buffer, b.byteOffset + i, 4).getFloat32(0, true) });
      i += 4;
    } else if (wire === 2) {
      const n = Number(varint());
      out.push({ field, wire, value: b.subarray(i, i + n) });
      i += n;
    } else throw new Error(`wire type ${wire}`);
  }
  return out;
}

type Item = { kind: "int"; field: number; v: number } | { kind: "float"; field: number; v: number } | { kind: "string"; field: number; v: string } | { kind: "bytes"; field: number; v: Uint8Array } | { kind: "msg"; field: number; v: Item[] };

const fieldNo = fc.integer({ min: 1, max: 2000 });
const leaf: fc.Arbitrary<Item> = fc.oneof(
  fc.record({ kind: fc.constant("int" as const), field: fieldNo, v: fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), fc.maxSafeInteger(), fc.constant(-1)) }),
  fc.record({ kind: fc.constant("float" as const), field: fieldNo, v: fc.float({ noNaN: true }) }),
  fc.record({ kind: fc.constant("string" as const), field: fieldNo, v: fc.string({ unit: "grapheme", maxLength: 20 }) }),
  fc.record({ kind: fc.constant("bytes" as const), field: fieldNo, v: fc.uint8Array({ maxLength: 300 }) }),
);
const items = fc.letrec((tie) => ({
  item: fc.oneof({ depthSize: "small" }, leaf, fc.record({ kind: fc.constant("msg" as const), field: fieldNo, v: tie("list") as fc.Arbitrary<Item[]> })),
  list: fc.array(tie("item"), { maxLength: 6 }),
})).list as fc.Arbitrary<Item[]>;

function write(list: Item[]): Writer {
  const w = new Writer();
  for (const it of list) {
    if (it.kind === "int") w.int(it.field, it.v);
    else if (it.kind === "float") w.float(it.field, it.v);
    else if (it.kind === "string") w.string(it.field, it.v);
    else if (it.kind === "bytes") w.raw(it.field, it.v);
    else w.message(it.field, write(it.v));
  }
  return w;
}

function check(list: Item[], bytes: Uint8Array): void {
  const fields = decode(bytes);
  assert.is(fields.length, list.length);
  list.forEach((it, k) => {
    const f = fields[k]!;
    assert.is(f.field, it.field);
    if (it.kind === "int") assert.is(BigInt.asIntN(64, f.value as bigint), BigInt(it.v));
    else if (it.kind === "float") assert.is(f.value, Math.fround(it.v));
    else if (it.kind === "string") assert.is(new TextDecoder().decode(f.value as Uint8Array), it.v);
    else if (it.kind === "bytes") assert.equal([...(f.value as Uint8Array)], [...it.v]);
    else check(it.v, f.value as Uint8Array);
  });
}

test("onnx: the protobuf writer's fields, nested to any depth, decode to what was written", () => {
  fc.assert(
    fc.property(items, (list) => {
      const w = write(list);
      const bytes = w.finish();
      assert.is(bytes.length, w.length);
      check(list, bytes);
    }),
    { numRuns: 300 },
  );
});

test("onnx: a hand-built model (y = x + c) loads and runs in onnxruntime", async () => {
  const bytes = encodeModel({
    irVersion: 8,
    opsets: [{ domain: "", version: OPSET }],
    producer: "test",
    producerVersion: "0",
    metadata: {},
    graph: {
      name: "g",
      nodes: [{ op: "Add", inputs: ["x", "c"], outputs: ["y"], name: "add", attrs: {} }],
      initializers: [{ name: "c", dtype: ONNX_DTYPE.FLOAT, dims: [3], raw: new Uint8Array(Float32Array.of(1, 2, 3).buffer) }],
      inputs: [{ name: "x", dtype: ONNX_DTYPE.FLOAT, shape: ["batch", 3] }],
      outputs: [{ name: "y", dtype: ONNX_DTYPE.FLOAT, shape: ["batch", 3] }],
    },
  });
  const s = await ort.InferenceSession.create(bytes);
  const y = await s.run({ x: new ort.Tensor("float32", Float32Array.of(10, 20, 30, 40, 50, 60), [2, 3]) });
  assert.equal([...(y.y!.data as Float32Array)], [11, 22, 33, 41, 52, 63]);
  await s.release();
});

// ── the zoo and the op fixture against the interpreter, and the ONNX checker ────────────────────────────

const tmp = mkdtempSync(path.join(os.tmpdir(), "nnetc-onnx-"));
const zoo = readdirSync(path.join(ROOT, "models")).filter((f) => f.endsWith(".nnet") && !LARGE.includes(f)).sort();

test("onnx: every small zoo model and every op of spec/onnx/ops.nnet at -O1 (-O0 and -O2 for some) equal the interpreter in onnxruntime and pass the ONNX checker", async () => {
  const specs = [...[...zoo, "spec/onnx/ops.nnet"].map((f) => `1:${f}`), "0:spec/onnx/ops.nnet", ...["fashion_cnn.nnet", "mobilenet_v2.nnet", "spec/onnx/ops.nnet"].map((f) => `2:${f}`)];
  const lines = await equivalence(tmp, specs);
  // ops.nnet's eight models at three levels, the two named zoo models at -O2 too
  assert.is(lines.length, zoo.length + 8 * 3 + 2);
  assertClose(lines);
  const ops = onnxCheck(lines.map((l) => l.onnx));
  // Layout: a CNN transposes at its input and before its flatten only; batchnorm is folded away at -O2.
  assert.is(ops[path.join(tmp, "fashion_cnn.O1.onnx")]!.Transpose, 2);
  assert.is(ops[path.join(tmp, "mobilenet_v2.O1.onnx")]!.Transpose, 1);
  assert.ok(ops[path.join(tmp, "mobilenet_v2.O1.onnx")]!.Mul! > 0 && !ops[path.join(tmp, "mobilenet_v2.O2.onnx")]!.Mul, "batchnorm is folded at -O2");
});

test("onnx: explicit padding from fold-padding (-O2) exports as the IR's [top, bottom, left, right] (regression, issue 13)", async () => {
  // The -O2 IR really holds explicit padding: otherwise this test would not exercise the bug.
  const mod = load("spec/onnx/padding.nnet");
  const o2 = optimize(mod, { level: 2, mode: "infer" }).module;
  const conv = o2.models.find((m) => m.name === "PaddedConv")!.nodes.find((n) => n.op === "conv2d")!;
  assert.equal(conv.attrs.padding, [1, 1, 1, 1]);
  const pool = o2.models.find((m) => m.name === "PaddedPool")!.nodes.find((n) => n.op === "max_pool2d")!;
  assert.equal(pool.attrs.padding, [2, 2, 2, 2]);
  const lines = await equivalence(tmp, [0, 1, 2].map((l) => `${l}:spec/onnx/padding.nnet`).concat("2:spec/passes/padding.nnet"));
  assert.is(lines.length, 3 * 3 + 1);
  assertClose(lines);
  // ONNX's pads are [begins…, ends…]: [top, left, bottom, right] for the IR's [top, bottom, left, right].
  const script = [
    "import json, sys, onnx",
    "out = {}",
    "for p in sys.argv[1:]:",
    "    m = onnx.load(p)",
    "    out[p] = [[n.op_type, list(a.ints)] for n in m.graph.node for a in n.attribute if a.name == 'pads']",
    "print(json.dumps(out))",
  ].join("\n");
  const files = ["PaddedConv", "PaddedPool", "Uneven"].map((m) => lines.find((l) => l.file === `spec/onnx/padding.nnet#${m} -O2`)!.onnx);
  onnxCheck(files);
  const r = spawnSync(existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3", ["-c", script, ...files], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  const pads = JSON.parse(r.stdout) as Record<string, [string, number[]][]>;
  assert.equal(pads[files[0]!], [["Conv", [1, 1, 1, 1]]]);
  assert.equal(pads[files[1]!], [["MaxPool", [2, 2, 2, 2]]]);
  // Uneven: pads ([2, 1] then 1) → [3, 3, 2, 2] on the conv; [1, 0] on the pool → [1, 1, 0, 0].
  assert.equal(pads[files[2]!], [["Conv", [3, 2, 3, 2]], ["MaxPool", [1, 0, 1, 0]]]);
});

test("onnx: export is a pure function: the same model and weights give the same bytes", async () => {
  const mod = load("mlp.nnet");
  const m = mainModel(mod)!;
  const { weights } = await finalWeights(m, seededHost(m, 3));
  const a = exportOnnx(m, weights, { producerVersion: "t" }).bytes!;
  const b = exportOnnx(m, weights, { producerVersion: "t" }).bytes!;
  assert.ok(Buffer.from(a).equals(Buffer.from(b)));
});

// ── int8 and the command line ───────────────────────────────────────────────────────────────────────

test("onnx: an int8-quantized fashion_cnn exports int8 initializers with DequantizeLinear and computes what the runtime computes with the dequantized weights", async () => {
  await initBackend("wasm");
  const mod = load("fashion_cnn.nnet");
  const m = mainModel(mod)!;
  const q = quantizeWeights(seededHost(m, 5), "int8");
  const file = path.join(tmp, "fashion_cnn.int8.safetensors");
  writeFileSync(file, encodeSafetensors(q, { format: "nnetc", model: m.name, fingerprint: fingerprint(m), quantized: "int8" }));
  const onnx = path.join(tmp, "fashion_cnn.int8.onnx");
  const r = await runNode([CLI, "compile", "models/fashion_cnn.nnet", "--target", "onnx", "--weights", file, "-o", onnx]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /4 int8 weights dequantized by DequantizeLinear/);
  const ops = onnxCheck([onnx])[onnx]!;
  assert.is(ops.DequantizeLinear, 4);
  // The runtime on the dequantized weights, at -O1 as the export.
  const fast = optimize({ ...mod, models: [m] }, { level: 1, mode: "infer" }).module.models[0]!;
  const deq = dequantizeWeights(q);
  const w = new Map(fast.params.map((p) => [p.name, tf.variable(tf.tensor(deq[p.name]!.data as Float32Array, p.shape), false)]));
  const rng = new Rng(2);
  const batch = batchFor(fast, () => rng.next());
  const x = batch.image!;
  const want = tf.tidy(() => Object.values(run(fast, w, { image: tf.tensor(x.data, x.shape) }, { training: false }).outputs)[0]!.dataSync());
  // The file's meaning (DequantizeLinear, then float operators) is the runtime's within 1e-4. onnxruntime's
  // default optimizations fuse DequantizeLinear → MatMul into an int8 kernel that also quantizes the
  // activations, which moves outputs by about 1e-3: within the tolerance of int8 quantization itself.
  const diff = async (options: ort.InferenceSession.SessionOptions) => {
    const s = await ort.InferenceSession.create(onnx, options);
    const got = await s.run({ [s.inputNames[0]!]: new ort.Tensor("float32", x.data as Float32Array, x.shape) });
    await s.release();
    return maxAbsDiff(got[s.outputNames[0]!]!.data as Float32Array, want as Float32Array);
  };
  const exact = await diff({ extra: { session: { disable_quant_qdq: "1" } } });
  const fused = await diff({});
  console.log(`    int8 fashion_cnn: max |Δ| ${exact.toExponential(1)} (onnxruntime's int8 kernels: ${fused.toExponential(1)})`);
  assert.ok(exact <= TOLERANCE, `max |Δ| ${exact}`);
  assert.ok(fused <= 1e-2, `max |Δ| with int8 kernels ${fused}`);
});

test("onnx: the CLI writes FILE.onnx (or -o -, the same bytes on a pipe) and reports bad weights and bad options with exit code 2", async () => {
  const dir = mkdtempSync(path.join(tmp, "cli-"));
  writeFileSync(path.join(dir, "mlp.nnet"), readFileSync(path.join(ROOT, "models/mlp.nnet")));
  const a = await runNode([CLI, "compile", path.join(dir, "mlp.nnet"), "--target", "onnx"]);
  assert.is(a.code, 0, a.stderr);
  assert.match(a.stderr, /wrote .*mlp\.onnx \(ONNX opset 17, -O1: .*weights: initial weights, seed 42 \(untrained/);
  const piped = spawnSync(process.execPath, [CLI, "compile", path.join(dir, "mlp.nnet"), "--target", "onnx", "-o", "-"], { cwd: ROOT, maxBuffer: 1 << 26 });
  assert.is(piped.status, 0);
  assert.ok(Buffer.from(piped.stdout).equals(readFileSync(path.join(dir, "mlp.onnx"))), "-o - writes the bytes FILE.onnx holds");
  const missing = await runNode([CLI, "compile", path.join(dir, "mlp.nnet"), "--target", "onnx", "--weights", path.join(dir, "nope")]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /--weights .*nope: no such file or folder/);
  const watch = await runNode([CLI, "compile", path.join(dir, "mlp.nnet"), "--target", "onnx", "--watch"]);
  assert.is(watch.code, 2);
  assert.match(watch.stderr, /--target onnx works without --watch/);
  const level = await runNode([CLI, "compile", path.join(dir, "mlp.nnet"), "--target", "onnx", "-O", "3"]);
  assert.is(level.code, 2);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test.run();
