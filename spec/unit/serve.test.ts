// nnetc serve on loopback ports, bounded in time: the Open Inference Protocol v2 endpoints as the protocol
// defines them, infer equal to `nnetc predict` on the same inputs (JSON rows and a PNG through the predict
// route), dynamic batching that never mixes requests' rows, 20+ kinds of bad request each answered 4xx/503 with
// a message and no stack while the server keeps serving, auth, metrics, a weight reload under load that fails
// no request, SIGTERM under load that answers every accepted request and exits 0, and NN7070–NN7073.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { test } from "uvu";
import * as assert from "uvu/assert";
import Ajv2020 from "ajv/dist/2020.js";
import { initBackend } from "../../runtime/backend.js";
import { encodeSafetensors } from "../../runtime/checkpoint/index.js";
import { initialValues } from "../../runtime/init.js";
import { startServer, type RunningServer, type ServeOptions } from "../../runtime/serve.js";
import { fingerprint } from "../../runtime/weights.js";
import { RunError } from "../../runtime/errors.js";
import { optimize } from "../../compiler/passes/index.js";
import type { IRModule } from "../../compiler/ir/types.js";
import { compileText, expectClean, ROOT } from "../helpers.js";
import { requireTorch } from "./torch_shared.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-serve-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

const MODEL = `model Tiny {
  input image: f32[batch, 8, 8, 3]
  output logits = image -> flatten -> dense(16, activation: relu) -> dense(3)
}

dataset colours {
  source image_folder(path: "imgs", size: 8)
  field image: f32[8, 8, 3] = image -> scale(1 / 255)
  field label: i32 = label
}

train Tiny on colours {
  loss      cross_entropy(logits, label)
  optimizer adam(lr: 0.05)
  batch     6
  epochs    1
}
`;
const SEQ = `model Seq {
  input ids: i32[batch, seq]
  input mask: f32[batch, seq]
  output pooled = ids -> embedding(50, 4) -> dense(2)
}
`;

const file = path.join(TMP, "tiny.nnet");
const run = path.join(TMP, "run");
writeFileSync(file, MODEL);
const res = compileText(MODEL, file);
expectClean(res);
const module: IRModule = res.module;
const inference = optimize(module, { level: 1, mode: "infer" }).module;
const model = module.models[0]!;

/** model.safetensors of seeded weights (seed s), written atomically, with the run's class names. */
function writeWeights(dir: string, seed: number): void {
  mkdirSync(dir, { recursive: true });
  let s = seed;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const t = Object.fromEntries(model.params.map((p) => [p.name, { dtype: "F32" as const, shape: [...p.shape], data: initialValues(p, rand).map((x) => x + (rand() - 0.5) * 0.2) }]));
  writeFileSync(path.join(dir, ".model.tmp"), encodeSafetensors(t, { fingerprint: fingerprint(model) }));
  renameSync(path.join(dir, ".model.tmp"), path.join(dir, "model.safetensors"));
  writeFileSync(path.join(dir, "model.json"), JSON.stringify({ classes: ["blue", "green", "red"], columns: { image: [8, 8, 3] } }));
}
writeWeights(run, 7);

let n = 0;
/** Distinct rows: row r of request q. */
const rowOf = (q: number, r: number) => Array.from({ length: 8 * 8 * 3 }, (_, i) => ((q * 31 + r * 17 + i * 7) % 101) / 50 - 1);
const body = (rows: number[][], extra: Record<string, unknown> = {}) => ({ id: `req-${n++}`, inputs: [{ name: "image", shape: [rows.length, 8, 8, 3], datatype: "FP32", data: rows.flat() }], ...extra });

async function start(o: Partial<ServeOptions> = {}): Promise<RunningServer> {
  return startServer({ models: [{ file, module, inference, weights: run }], engine: "tfjs", level: 1, version: "0.1.0", host: "127.0.0.1", port: 0, watch: false, log: () => {}, ...o });
}
async function post(url: string, b: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof b === "string" ? b : JSON.stringify(b) });
  const text = await r.text();
  return { status: r.status, json: JSON.parse(text) as Record<string, unknown>, headers: r.headers };
}
const logitsOf = (j: Record<string, unknown>) => ((j.outputs as { name: string; data: number[] }[]).find((o) => o.name === "logits")!.data);
const close = (a: number[], b: number[], tol = 1e-5) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!)));

test.before(async () => {
  await initBackend("cpu");
});


test("v2 endpoints: health, server and model metadata from the IR, model ready, OpenAPI that validates a real request", async () => {
  const s = await start();
  try {
    assert.is((await fetch(`${s.url}/v2/health/live`)).status, 200);
    assert.is((await fetch(`${s.url}/v2/health/ready`)).status, 200);
    const meta = (await (await fetch(`${s.url}/v2`)).json()) as { name: string; version: string; extensions: unknown[] };
    assert.equal([meta.name, meta.version, meta.extensions], ["nnetc", "0.1.0", []]);
    const m = (await (await fetch(`${s.url}/v2/models/Tiny`)).json()) as Record<string, unknown>;
    assert.equal(m.inputs, [{ name: "image", datatype: "FP32", shape: [-1, 8, 8, 3] }]);
    assert.equal(m.outputs, [{ name: "logits", datatype: "FP32", shape: [-1, 3] }]);
    assert.is((await fetch(`${s.url}/v2/models/Tiny/ready`)).status, 200);
    assert.is((await fetch(`${s.url}/v2/models/Nope/ready`)).status, 404);
    const doc = (await (await fetch(`${s.url}/openapi.json`)).json()) as { openapi: string; components: { schemas: Record<string, object> }; paths: Record<string, unknown> };
    assert.is(doc.openapi, "3.1.0");
    assert.ok(doc.paths["/v2/models/Tiny/infer"]);
    const ajv = new (Ajv2020 as unknown as typeof Ajv2020.default)({ strict: false });
    const validate = ajv.compile(doc.components.schemas.Tiny_InferRequest!);
    assert.ok(validate(body([rowOf(0, 0)])), JSON.stringify(validate.errors));
    assert.not.ok(validate({ inputs: [{ name: "image", shape: [1, 8, 8, 4], datatype: "FP32", data: [] }] }));
    const r = await post(`${s.url}/v2/models/Tiny/infer`, body([rowOf(0, 0)]));
    assert.is(r.status, 200);
    assert.is(r.json.model_name, "Tiny");
    assert.is(r.json.id, `req-${n - 1}`);
    const outs = r.json.outputs as { name: string; shape: number[]; datatype: string }[];
    assert.equal(outs.map((o) => [o.name, o.shape, o.datatype]), [["logits", [1, 3], "FP32"]]);
  } finally {
    await s.close();
  }
});

test("infer and the predict route equal nnetc predict on the same inputs (JSON rows, a PNG)", async () => {
  const rows = [rowOf(1, 0), rowOf(1, 1), rowOf(1, 2)];
  const jsonFile = path.join(TMP, "rows.json");
  writeFileSync(jsonFile, JSON.stringify(rows.map((r) => ({ image: r }))));
  const png = path.join(TMP, "blue.png");
  const px = Buffer.alloc(8 * 8 * 3);
  for (let k = 0; k < px.length; k++) px[k] = [20, 40, 230][k % 3]! + (k % 5);
  await sharp(px, { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(png);
  const cli = (input: string) => {
    const p = spawnSync(process.execPath, [CLI, "predict", file, "--weights", run, "--input", input, "--json", "--backend", "cpu"], { encoding: "utf8", timeout: 120_000 });
    assert.is(p.status, 0, p.stderr);
    return p.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>).filter((x) => x.index !== undefined);
  };
  const want = cli(jsonFile);
  const wantPng = cli(png);
  const s = await start();
  try {
    const r = await post(`${s.url}/v2/models/Tiny/infer`, body(rows));
    assert.is(r.status, 200);
    assert.ok(close(logitsOf(r.json), want.flatMap((x) => x.logits as number[])), `${logitsOf(r.json)} vs ${want.map((x) => x.logits)}`);
    // The predict route: the PNG's bytes prepared by the dataset's steps, answered as predict --json rows.
    const bytes = await import("node:fs").then((f) => f.readFileSync(png));
    const pr = await fetch(`${s.url}/models/Tiny/predict?top=2`, { method: "POST", headers: { "content-type": "image/png" }, body: bytes });
    assert.is(pr.status, 200);
    const got = ((await pr.json()) as { predictions: Record<string, unknown>[] }).predictions;
    const { index: _i, file: _f, ...rest } = wantPng[0]!;
    assert.is(got[0]!.logits_name, rest.logits_name);
    assert.ok(close(got[0]!.logits as number[], rest.logits as number[]));
    assert.is((got[0]!.logits_top as unknown[]).length, 2);
    // The same bytes as JSON {b64}, twice: two rows.
    const pj = await post(`${s.url}/models/Tiny/predict`, { inputs: [{ b64: bytes.toString("base64") }, { b64: bytes.toString("base64") }] });
    assert.is(pj.status, 200);
    assert.is((pj.json.predictions as unknown[]).length, 2);
  } finally {
    await s.close();
  }
});

/** What a server on the default engine (tfjs) answers for `rows`: the reference the other engines must match. */
async function tfjsLogits(rows: number[][]): Promise<number[]> {
  const t = await start();
  try {
    return logitsOf((await post(`${t.url}/v2/models/Tiny/infer`, body(rows))).json);
  } finally {
    await t.close();
  }
}

test("--engine onnx serves what the tfjs engine serves", async () => {
  const rows = [rowOf(8, 0), rowOf(8, 1)];
  const want = await tfjsLogits(rows);
  const o2 = optimize(module, { level: 2, mode: "infer" }).module;
  const s = await start({ engine: "onnx", models: [{ file, module, inference: o2, weights: run }], level: 2 });
  try {
    const m = (await (await fetch(`${s.url}/v2/models/Tiny`)).json()) as { platform: string };
    assert.is(m.platform, "nnetc-onnx");
    const r = await post(`${s.url}/v2/models/Tiny/infer`, body(rows));
    assert.is(r.status, 200);
    assert.ok(close(logitsOf(r.json), want, 1e-4), `${logitsOf(r.json)} vs ${want}`);
  } finally {
    await s.close();
  }
});

test("--engine torch serves what the tfjs engine serves", async () => {
  requireTorch();
  const rows = [rowOf(9, 0), rowOf(9, 1), rowOf(9, 2)];
  const want = await tfjsLogits(rows);
  const trainModule = optimize(module, { level: 1, mode: "train" }).module;
  const s = await start({ engine: "torch", torch: { device: "cpu", precision: "fp32", level: 1 }, models: [{ file, module, inference, trainModule, weights: run }] });
  try {
    const r = await post(`${s.url}/v2/models/Tiny/infer`, body(rows));
    assert.is(r.status, 200);
    assert.ok(close(logitsOf(r.json), want, 1e-4), `${logitsOf(r.json)} vs ${want}`);
  } finally {
    await s.close();
  }
});

test("dynamic batching: concurrent requests share batches and each gets exactly its own rows", async () => {
  const solo = await start({ maxBatch: 1 });
  const expected: number[][] = [];
  const reqs = Array.from({ length: 24 }, (_, q) => Array.from({ length: 1 + (q % 3) }, (_, r) => rowOf(q + 10, r)));
  try {
    for (const rows of reqs) expected.push(logitsOf((await post(`${solo.url}/v2/models/Tiny/infer`, body(rows))).json));
  } finally {
    await solo.close();
  }
  const s = await start({ maxBatch: 16, maxDelayMs: 20 });
  try {
    const got = await Promise.all(reqs.map((rows) => post(`${s.url}/v2/models/Tiny/infer`, body(rows))));
    got.forEach((r, q) => {
      assert.is(r.status, 200);
      assert.ok(close(logitsOf(r.json), expected[q]!), `request ${q} got another request's rows`);
      assert.equal((r.json.outputs as { shape: number[] }[])[0]!.shape, [reqs[q]!.length, 3]);
    });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const count = Number(/nnetc_batch_size_count\{model="Tiny"\} (\d+)/.exec(metrics)?.[1]);
    const sum = Number(/nnetc_batch_size_sum\{model="Tiny"\} (\d+)/.exec(metrics)?.[1]);
    assert.is(sum, reqs.reduce((a, r) => a + r.length, 0));
    assert.ok(count < reqs.length, `${count} batches for ${reqs.length} requests: nothing was batched`);
    assert.ok(/nnetc_batch_size_bucket\{le="16",model="Tiny"\} \d+/.test(metrics));
    assert.match(metrics, /nnetc_requests_total\{route="\/v2\/models\/:name\/infer",model="Tiny",code="200"\} 24/);
    assert.match(metrics, /nnetc_queue_depth\{model="Tiny"\} 0/);
    assert.match(metrics, /nnetc_request_duration_seconds_bucket/);
  } finally {
    await s.close();
  }
});

test("bad requests: each of 24 kinds gets its status and a message naming the problem, no stack, and the server keeps serving", async () => {
  const s = await start({ bodyLimitMb: 0.005, maxRows: 8 });
  const seqFile = path.join(TMP, "seq.nnet");
  writeFileSync(seqFile, SEQ);
  const ok = body([rowOf(2, 0)]);
  const input = (over: Record<string, unknown>) => ({ inputs: [{ name: "image", shape: [1, 8, 8, 3], datatype: "FP32", data: rowOf(2, 0), ...over }] });
  const cases: [string, number, unknown, RegExp, string?][] = [
    ["malformed JSON", 400, "{not json", /JSON/i],
    ["body not an object", 400, [1, 2], /JSON object/],
    ["no inputs", 400, { id: "x" }, /"inputs" must be a list.*image/],
    ["input not an object", 400, { inputs: [3] }, /must be an object/],
    ["input without a name", 400, { inputs: [{ shape: [1] }] }, /needs a "name"/],
    ["unknown input", 400, input({ name: "img" }), /no input "img".*image/],
    ["duplicate input", 400, { inputs: [input({}).inputs[0], input({}).inputs[0]] }, /given twice/],
    ["unknown datatype", 400, input({ datatype: "FLOAT" }), /takes FP32/],
    ["wrong datatype", 400, input({ datatype: "INT32" }), /takes FP32, not INT32/],
    ["shape not integers", 400, input({ shape: [1, 8, "8", 3] }), /expected \[-1, 8, 8, 3\]/],
    ["wrong rank", 400, input({ shape: [1, 192] }), /image.*expected \[-1, 8, 8, 3\]/],
    ["wrong size", 400, input({ shape: [1, 8, 8, 4] }), /image.*expected \[-1, 8, 8, 3\].*dimension 3 must be 3/],
    ["no data", 400, input({ data: undefined }), /no "data"/],
    ["data not a list", 400, input({ data: "abc" }), /list of numbers/],
    ["data of the wrong size", 400, input({ data: [1, 2, 3] }), /holds 192 values.*has 3/],
    ["a string element", 400, input({ data: ["a", ...rowOf(2, 0).slice(1)] }), /value 0 is "a", not a number/],
    ["a null element", 400, input({ data: [null, ...rowOf(2, 0).slice(1)] }), /value 0 is null/],
    ["no rows", 400, input({ shape: [0, 8, 8, 3], data: [] }), /no rows/],
    ["too many rows", 400, input({ shape: [9, 8, 8, 3], data: [] }), /at most 8/],
    ["unknown output", 400, { ...ok, outputs: [{ name: "probs" }] }, /no output "probs".*logits/],
    ["bad id", 400, { ...ok, id: 5 }, /"id" must be a string/],
    ["binary data asked for", 400, { ...ok, parameters: { binary_data_output: true } }, /binary/],
    ["unknown model", 404, ok, /no model "Nope".*Tiny/, "/v2/models/Nope/infer"],
    ["unknown route", 404, ok, /no route POST/, "/v2/models/Tiny/explain"],
    ["unsupported content type", 415, "x=1", /content type.*application\/json/, "form"],
    ["body over the limit", 413, body(Array.from({ length: 8 }, (_, r) => rowOf(3, r))), /over the server's limit/],
    ["raw predict without a body form", 400, { text: "hi" }, /send text/, "/models/Tiny/predict"],
    ["raw predict: text to an image model", 400, { inputs: ["hello"] }, /reads image files/, "/models/Tiny/predict"],
    ["raw predict: bytes that are no image", 400, { inputs: [{ b64: Buffer.from("not an image").toString("base64") }] }, /./, "/models/Tiny/predict"],
    ["bad ?top", 400, { inputs: ["x"] }, /\?top=0/, "/models/Tiny/predict?top=0"],
  ];
  try {
    for (const [what, status, b, msg, where] of cases) {
      const url = `${s.url}${where && where.startsWith("/") ? where : "/v2/models/Tiny/infer"}`;
      const headers: Record<string, string> = where === "form" ? { "content-type": "application/x-www-form-urlencoded" } : {};
      const r = await post(url, b, headers);
      assert.is(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
      assert.type(r.json.error, "string", what);
      assert.match(r.json.error as string, msg, `${what}: ${r.json.error}`);
      assert.not.match(JSON.stringify(r.json), /\bat .*\.(js|ts):\d+/, `${what}: a stack trace`);
      const good = await post(`${s.url}/v2/models/Tiny/infer`, ok);
      assert.is(good.status, 200, `after ${what}`);
    }
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /nnetc_errors_total\{model="Tiny",code="400",kind="wrong_shape"\} 1/);
    assert.match(metrics, /nnetc_errors_total\{model="",code="404",kind="no_route"\} 1/);
  } finally {
    await s.close();
  }
  // Symbolic sizes: shared sizes must agree, and a dim with a bound is held to it.
  const seq = compileText(SEQ, seqFile);
  expectClean(seq);
  const seqRun = path.join(TMP, "seqrun");
  mkdirSync(seqRun, { recursive: true });
  const sm = seq.module.models[0]!;
  writeFileSync(path.join(seqRun, "model.safetensors"), encodeSafetensors(Object.fromEntries(sm.params.map((p) => [p.name, { dtype: "F32" as const, shape: [...p.shape], data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(0.1) }])), { fingerprint: fingerprint(sm) }));
  const s2 = await startServer({ models: [{ file: seqFile, module: seq.module, inference: seq.module, weights: seqRun }], engine: "tfjs", level: 0, version: "0.1.0", port: 0, watch: false, log: () => {} });
  try {
    const meta = (await (await fetch(`${s2.url}/v2/models/Seq`)).json()) as { inputs: unknown[] };
    assert.equal(meta.inputs, [{ name: "ids", datatype: "INT32", shape: [-1, -1] }, { name: "mask", datatype: "FP32", shape: [-1, -1] }]);
    const ids = { name: "ids", shape: [1, 3], datatype: "INT32", data: [1, 2, 3] };
    const r = await post(`${s2.url}/v2/models/Seq/infer`, { inputs: [ids, { name: "mask", shape: [1, 4], datatype: "FP32", data: [1, 1, 1, 1] }] });
    assert.is(r.status, 400);
    assert.match(r.json.error as string, /seq = 4 but input "ids" has seq = 3/);
    const f = await post(`${s2.url}/v2/models/Seq/infer`, { inputs: [{ ...ids, data: [1, 2.5, 3] }, { name: "mask", shape: [1, 3], datatype: "FP32", data: [1, 1, 1] }] });
    assert.is(f.status, 400);
    assert.match(f.json.error as string, /INT32: value 1 is 2.5, not a 32-bit integer/);
    const m = await post(`${s2.url}/v2/models/Seq/infer`, { inputs: [ids] });
    assert.is(m.status, 400);
    assert.match(m.json.error as string, /no value for input "mask" \(FP32 \[-1, -1\]\)/);
    const g = await post(`${s2.url}/v2/models/Seq/infer`, { inputs: [ids, { name: "mask", shape: [1, 3], datatype: "FP32", data: [[1, 1, 1]] }] });
    assert.is(g.status, 200, JSON.stringify(g.json));
    assert.equal((g.json.outputs as { shape: number[] }[])[0]!.shape, [1, 3, 2]);
  } finally {
    await s2.close();
  }
});

test("limits: a full queue and a request past its timeout get 503 with Retry-After; the server goes on", async () => {
  const s = await start({ maxQueue: 1, maxDelayMs: 400, maxBatch: 64 });
  try {
    const first = post(`${s.url}/v2/models/Tiny/infer`, body([rowOf(4, 0)]));
    await new Promise((r) => setTimeout(r, 50));
    const second = await post(`${s.url}/v2/models/Tiny/infer`, body([rowOf(4, 1)]));
    assert.is(second.status, 503);
    assert.is(second.headers.get("retry-after"), "1");
    assert.match(second.json.error as string, /queue holds 1 requests/);
    assert.is((await first).status, 200);
  } finally {
    await s.close();
  }
  const t = await start({ timeoutMs: 50, maxDelayMs: 1000, maxBatch: 64 });
  try {
    const r = await post(`${t.url}/v2/models/Tiny/infer`, body([rowOf(4, 2)]));
    assert.is(r.status, 503);
    assert.is(r.headers.get("retry-after"), "1");
    assert.match(r.json.error as string, /within 50 ms/);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    assert.match(metrics, /nnetc_errors_total\{model="Tiny",code="503",kind="timeout"\} 1/);
  } finally {
    await t.close();
  }
});

test("bearer token: every route but health asks for it", async () => {
  const s = await start({ token: "s3cret" });
  try {
    assert.is((await fetch(`${s.url}/v2/health/ready`)).status, 200);
    const none = await post(`${s.url}/v2/models/Tiny/infer`, body([rowOf(5, 0)]));
    assert.is(none.status, 401);
    assert.match(none.json.error as string, /Bearer/);
    assert.is((await post(`${s.url}/v2/models/Tiny/infer`, body([rowOf(5, 0)]), { authorization: "Bearer wrong" })).status, 401);
    assert.is((await fetch(`${s.url}/metrics`)).status, 401);
    assert.is((await post(`${s.url}/v2/models/Tiny/infer`, body([rowOf(5, 0)]), { authorization: "Bearer s3cret" })).status, 200);
  } finally {
    await s.close();
  }
});

test("hot reload under load: newer weights in the run folder are swapped in, and no request fails", async () => {
  const dir = path.join(TMP, "reload");
  writeWeights(dir, 7);
  const s = await startServer({ models: [{ file, module, inference, weights: dir }], engine: "tfjs", level: 1, version: "0.1.0", port: 0, watch: true, log: () => {}, maxDelayMs: 1 });
  const row = [rowOf(6, 0)];
  try {
    const before = logitsOf((await post(`${s.url}/v2/models/Tiny/infer`, body(row))).json);
    let stop = false;
    const statuses: number[] = [];
    const seen: number[][] = [];
    const client = async () => {
      while (!stop) {
        const r = await post(`${s.url}/v2/models/Tiny/infer`, body(row));
        statuses.push(r.status);
        if (r.status === 200) seen.push(logitsOf(r.json));
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await new Promise((r) => setTimeout(r, 100));
    writeWeights(dir, 99);
    const t0 = Date.now();
    while (Date.now() - t0 < 10_000 && !(seen.length && !close(seen[seen.length - 1]!, before))) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 100));
    stop = true;
    await Promise.all(clients);
    assert.ok(statuses.length > 10, `${statuses.length} requests`);
    assert.equal(statuses.filter((x) => x !== 200), [], "a request failed during the swap");
    const after = seen[seen.length - 1]!;
    assert.not.ok(close(after, before), "the new weights were not loaded");
    // Every answer is the old weights' or the new ones': never a mix.
    assert.ok(seen.every((v) => close(v, before) || close(v, after)));
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /nnetc_weight_reloads_total\{model="Tiny",result="ok"\} 1/);
  } finally {
    await s.close();
  }
});

test("SIGTERM under load: every accepted request is answered 200, then the process exits 0", async () => {
  const p = spawn(process.execPath, [CLI, "serve", file, "--weights", run, "--port", "0", "--backend", "cpu", "--max-batch", "64", "--max-delay-ms", "3000", "--no-watch"], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${err}`)), 60_000);
    p.stderr.on("data", (b: Buffer) => {
      err += b.toString();
      const m = /"event":"listening","url":"([^"]+)"/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  const exit = new Promise<number | null>((r) => p.on("exit", (code) => r(code)));
  const pending = Array.from({ length: 40 }, (_, q) => post(`${url}/v2/models/Tiny/infer`, body([rowOf(q, 0)])));
  // The batch waits up to 3 s for more rows: SIGTERM once all 40 requests are accepted and queued.
  const t0 = Date.now();
  while (Date.now() - t0 < 20_000) {
    const m = await (await fetch(`${url}/metrics`)).text();
    if (/nnetc_queue_depth\{model="Tiny"\} 40/.test(m)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  p.kill("SIGTERM");
  const got = await Promise.all(pending);
  assert.equal(got.map((r) => r.status), Array(40).fill(200));
  assert.is(await exit, 0, err);
  assert.match(err, /"event":"drained"/);
  // After the drain, nothing listens.
  const after = await fetch(`${url}/v2/health/live`).then(
    () => "answered",
    () => "refused",
  );
  assert.is(after, "refused");
});

test("NN7070–NN7073: a taken port, a model served twice, --weights per file, a file without a model", async () => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
  const port = (holder.address() as net.AddressInfo).port;
  try {
    const e = await start({ port }).then(
      (s) => s.close().then(() => null),
      (x: unknown) => x,
    );
    assert.instance(e, RunError);
    assert.match((e as RunError).report(), /NN7070.*port is in use/s);
  } finally {
    holder.close();
  }
  const dup = await startServer({ models: [{ file, module, inference, weights: run }, { file: "b.nnet", module, inference, weights: run }], engine: "tfjs", level: 1, version: "0.1.0", port: 0, watch: false, log: () => {} }).then(
    (s) => s.close().then(() => null),
    (x: unknown) => x,
  );
  assert.match((dup as RunError).report(), /NN7071.*"Tiny" is served from .*tiny\.nnet and again from b\.nnet/s);
  const nm = compileText("dataset d {\n  source csv(path: \"x.csv\")\n  field a: f32 = a\n}\n", "nomodel.nnet");
  const none = await startServer({ models: [{ file: "nomodel.nnet", module: nm.module, inference: nm.module, weights: run }], engine: "tfjs", level: 1, version: "0.1.0", port: 0, watch: false, log: () => {} }).then(
    (s) => s.close().then(() => null),
    (x: unknown) => x,
  );
  assert.match((none as RunError).report(), /NN7073/);
  const c = spawnSync(process.execPath, [CLI, "serve", file, file, "--weights", run, "--backend", "cpu"], { encoding: "utf8", timeout: 60_000 });
  assert.is(c.status, 2, c.stderr);
  assert.match(c.stderr, /NN7072.*2 files and 1 --weights/s);
});

test.run();
