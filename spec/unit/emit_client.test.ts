// The v2 (Open Inference Protocol) client of emitted modules, against a small v2 server in the test (node:http on
// 127.0.0.1): the request bodies it sends (path, token, names, shapes, datatypes as the IR says — FP32, INT64,
// BOOL —, data flat and row-major), typed outputs decoded from responses (flat or nested, batch > 1) equal to
// predict() on the server's side, the server's errors as a typed InferenceError, responses that break the
// protocol refused without leaking tensors, inputs that do not fit refused before anything is sent, and the
// emitted types (wrong inputs do not compile, infer()'s result is the module's outputs).
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { emitCode } from "../../compiler/emit/index.js";
import { compile } from "../../compiler/index.js";
import { InferenceError, type InferRequest, type WireTensor } from "../../runtime/client.js";
import { memoryHost, ROOT } from "../helpers.js";

// Inside the package, so that the emitted module's `import "nnetc/runtime"` resolves to this build.
const DIR = path.join(ROOT, "dist/tmp-client");
const SOURCE = `/// Three inputs of three dtypes, three outputs.
model Pair {
  input image: f32[batch, 2, 3]
  input ids: i64[batch, seq <= 6]
  input keep: bool[batch, 3]
  pooled = ids -> embedding(10, 3) -> global_avg_pool1d()
  flat = image -> flatten() -> dense(3)
  output logits = flat + pooled
  output doubled = ids * 2
  output kept = keep
}
`;

type Out = { logits: tf.Tensor; doubled: tf.Tensor; kept: tf.Tensor };
type In = { image: tf.Tensor; ids: tf.Tensor; keep: tf.Tensor };
interface Client {
  infer(inputs: unknown, o?: { id?: string; outputs?: string[]; signal?: AbortSignal }): Promise<Record<string, tf.Tensor>>;
  metadata(): Promise<{ name: string }>;
  ready(): Promise<boolean>;
  live(): Promise<boolean>;
}
interface Emitted {
  create(o?: { seed?: number; backend?: string }): Promise<unknown>;
  predict(m: unknown, x: In): Out;
  createClient(baseUrl: string, o?: object): Client;
}

function emit(flavor: "js" | "ts"): string {
  const file = path.join(DIR, "pair.nnet");
  const res = compile(file, SOURCE, memoryHost({ [file]: SOURCE }));
  assert.equal(res.diagnostics.map((d) => d.message), []);
  return emitCode(res, { file, outFile: path.join(DIR, `pair.${flavor}`), flavor });
}

// ── The server ─────────────────────────────────────────────────────────────────────────────────────

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}
type Handler = (req: Seen, res: ServerResponse) => void;
let server: Server;
let base: string;
let seen: Seen[] = [];
let handler: Handler;
let mod: Emitted;
let model: unknown;

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
};

/** A v2 server in a few lines: it decodes the request into tensors, runs predict() and answers every (or the asked) output. */
const v2: Handler = (req, res) => {
  if (req.method === "GET" && req.url === "/v2/health/ready") return json(res, 200, {});
  if (req.method === "GET" && req.url === "/v2/models/Pair") {
    return json(res, 200, { name: "Pair", platform: "nnetc", versions: ["1"], inputs: [{ name: "image", datatype: "FP32", shape: [-1, 2, 3] }], outputs: [{ name: "logits", datatype: "FP32", shape: [-1, 3] }] });
  }
  if (req.method !== "POST" || req.url !== "/v2/models/Pair/infer") return json(res, 404, { error: `no route ${req.method} ${req.url}` });
  if (req.headers.authorization !== "Bearer s3cret") return json(res, 401, { error: "missing or wrong bearer token" });
  const r = JSON.parse(req.body) as InferRequest;
  const dtype = { FP32: "float32", INT64: "int32", BOOL: "bool" } as const;
  const x = Object.fromEntries(r.inputs.map((i) => [i.name, tf.tensor(i.data as number[], i.shape, dtype[i.datatype as keyof typeof dtype])])) as In;
  const y = mod.predict(model, x) as unknown as Record<string, tf.Tensor>;
  const datatype: Record<string, string> = { logits: "FP32", doubled: "INT64", kept: "BOOL" };
  const names = r.outputs?.map((o) => o.name) ?? Object.keys(y);
  const outputs = names.map((name) => ({ name, shape: y[name]!.shape, datatype: datatype[name], data: y[name]!.dtype === "bool" ? Array.from(y[name]!.dataSync(), (v) => v !== 0) : Array.from(y[name]!.dataSync()) }));
  tf.dispose([...Object.values(x), ...Object.values(y)]);
  json(res, 200, { model_name: "Pair", ...(r.id !== undefined ? { id: r.id } : {}), outputs });
};

test.before(async () => {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  writeFileSync(path.join(DIR, "pair.js"), emit("js"));
  mod = (await import(pathToFileURL(path.join(DIR, "pair.js")).href)) as Emitted;
  model = await mod.create({ seed: 7, backend: "cpu" });
  server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (s: string) => (body += s));
    req.on("end", () => {
      const s = { method: req.method!, url: req.url!, headers: req.headers, body };
      seen.push(s);
      handler(s, res);
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
test.after(async () => {
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
  rmSync(DIR, { recursive: true, force: true });
});
test.before.each(() => {
  seen = [];
  handler = v2;
});

/** Inputs of batch `b` and sequence `seq`, from a seeded stream. */
function inputs(b: number, seq: number, seed = 1): In {
  let s = seed;
  const r = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  return {
    image: tf.tensor(Array.from({ length: b * 6 }, () => r() * 4 - 2), [b, 2, 3]),
    ids: tf.tensor(Array.from({ length: b * seq }, () => Math.floor(r() * 10)), [b, seq], "int32"),
    keep: tf.tensor(Array.from({ length: b * 3 }, () => (r() < 0.5 ? 1 : 0)), [b, 3], "bool"),
  };
}
const client = (o: object = {}) => mod.createClient(base, { token: "s3cret", ...o });
/** The client's output `a` equals predict()'s `b`, and has the tfjs dtype of the IR's (predict() of \`ids * 2\` is float32). */
const same = (a: tf.Tensor, b: tf.Tensor, what: string) => {
  assert.equal(a.shape, b.shape, `${what}: shape`);
  assert.is(a.dtype, { logits: "float32", doubled: "int32", kept: "bool" }[what], `${what}: dtype`);
  assert.equal(Array.from(a.dataSync()), Array.from(b.dataSync()), `${what}: values`);
};
async function rejects(p: Promise<unknown>, kind: string, pattern: RegExp, status?: number): Promise<InferenceError> {
  const e = await p.then(
    () => assert.unreachable(`expected an InferenceError (${kind})`),
    (e: unknown) => e,
  );
  assert.instance(e, InferenceError);
  const err = e as InferenceError;
  assert.is(err.kind, kind, err.message);
  assert.match(err.message, pattern);
  if (status !== undefined) assert.is(err.status, status);
  return err;
}

// ── Requests and responses ─────────────────────────────────────────────────────────────────────────

test("infer() sends the v2 request the IR describes (batch 3): path, token, names, shapes, FP32/INT64/BOOL, flat row-major data", async () => {
  const x = inputs(3, 5);
  const y = await client().infer(x);
  assert.is(seen.length, 1);
  const s = seen[0]!;
  assert.is(s.method, "POST");
  assert.is(s.url, "/v2/models/Pair/infer");
  assert.is(s.headers.authorization, "Bearer s3cret");
  assert.match(String(s.headers["content-type"]), /^application\/json/);
  const body = JSON.parse(s.body) as InferRequest;
  assert.equal(Object.keys(body), ["inputs"], "no id, no outputs unless asked");
  assert.equal(body.inputs.map((i) => [i.name, i.shape, i.datatype]), [["image", [3, 2, 3], "FP32"], ["ids", [3, 5], "INT64"], ["keep", [3, 3], "BOOL"]]);
  const wire = (n: string) => body.inputs.find((i) => i.name === n)!.data;
  assert.equal(wire("image"), Array.from(x.image.dataSync()), "float32 values exactly, flat");
  assert.equal(wire("ids"), Array.from(x.ids.dataSync()));
  assert.equal(wire("keep"), Array.from(x.keep.dataSync(), (v) => v !== 0), "BOOL as JSON booleans");
  // The outputs are what predict() gives on the same inputs, typed as the module's outputs.
  const local = mod.predict(model, x);
  assert.equal(Object.keys(y).sort(), ["doubled", "kept", "logits"]);
  for (const k of ["logits", "doubled", "kept"] as const) same(y[k]!, local[k], k);
  assert.is(y.doubled!.dtype, "int32");
  assert.is(y.kept!.dtype, "bool");
  tf.dispose([...Object.values(x), ...Object.values(y), ...Object.values(local)]);
});

test("property: any batch and sequence, any values — the server sees the tensors' exact data and the client decodes predict()'s outputs", async () => {
  const c = client();
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 2 ** 30 }), async (b, seq, seed) => {
      seen = [];
      const x = inputs(b, seq, seed);
      const y = await c.infer(x);
      const body = JSON.parse(seen[0]!.body) as InferRequest;
      for (const i of body.inputs) {
        const t = x[i.name as keyof In];
        assert.equal(i.shape, t.shape);
        assert.equal(i.data, t.dtype === "bool" ? Array.from(t.dataSync(), (v) => v !== 0) : Array.from(t.dataSync()));
      }
      const local = mod.predict(model, x);
      for (const k of ["logits", "doubled", "kept"] as const) same(y[k]!, local[k], k);
      tf.dispose([...Object.values(x), ...Object.values(y), ...Object.values(local)]);
    }),
    { numRuns: 25, seed: 20 },
  );
});

test("infer() with outputs and an id: the request names them, the result holds only them; nested response data is read row-major", async () => {
  const x = inputs(2, 4);
  const y = await client().infer(x, { id: "req-1", outputs: ["logits"] });
  const body = JSON.parse(seen[0]!.body) as InferRequest;
  assert.is(body.id, "req-1");
  assert.equal(body.outputs, [{ name: "logits" }]);
  assert.equal(Object.keys(y), ["logits"]);
  same(y.logits!, mod.predict(model, x).logits, "logits");
  // Nested data, as the protocol allows.
  handler = (_req, res) => json(res, 200, { model_name: "Pair", outputs: [{ name: "doubled", shape: [2, 2], datatype: "INT64", data: [[1, 2], [3, 4]] }] });
  const n = await client().infer(inputs(2, 2), { outputs: ["doubled"] });
  assert.equal(n.doubled!.arraySync(), [[1, 2], [3, 4]]);
  tf.dispose([...Object.values(x), ...Object.values(y), n.doubled!]);
});

test("the server's errors are InferenceErrors: 4xx/5xx {error} with the status, Retry-After on 503, no token → 401", async () => {
  const x = inputs(1, 2);
  await rejects(client({ token: undefined }).infer(x), "server", /answered 401: missing or wrong bearer token/, 401);
  handler = (_req, res) => json(res, 400, { error: 'input "ids": expected shape [-1, -1], got [2]' });
  await rejects(client().infer(x), "server", /answered 400: input "ids": expected shape/, 400);
  handler = (_req, res) => json(res, 503, { error: "queue full" }, { "retry-after": "2" });
  const busy = await rejects(client().infer(x), "server", /503: queue full/, 503);
  assert.is(busy.retryAfter, 2);
  handler = (_req, res) => {
    res.writeHead(502, { "content-type": "text/html" });
    res.end("<html>bad gateway</html>");
  };
  await rejects(client().infer(x), "server", /answered 502 Bad Gateway$/, 502);
  handler = v2;
  // A token function is asked for each request.
  let asked = 0;
  await client({ token: () => (asked++, "s3cret") }).infer(x).then((y) => tf.dispose(Object.values(y)));
  assert.is(asked, 1);
  tf.dispose(Object.values(x));
});

test("responses that break the protocol are refused, naming what is wrong, and leave no tensor behind", async () => {
  const x = inputs(2, 3);
  const good = () => [
    { name: "logits", shape: [2, 3], datatype: "FP32", data: [1, 2, 3, 4, 5, 6] },
    { name: "doubled", shape: [2, 3], datatype: "INT64", data: [0, 2, 4, 6, 8, 10] },
    { name: "kept", shape: [2, 3], datatype: "BOOL", data: [true, false, true, false, true, false] },
  ];
  const cases: [string, (o: WireTensor[]) => unknown, RegExp][] = [
    ["missing output", (o) => ({ outputs: o.slice(0, 2) }), /lacks output "kept"/],
    ["wrong datatype", (o) => ((o[1]!.datatype = "FP32"), { outputs: o }), /"doubled" as FP32, expected INT64/],
    ["another batch", (o) => ((o[2]!.shape = [3, 3]), (o[2]!.data = [...(o[2]!.data as boolean[]), true, true, true]), { outputs: o }), /"kept" shape \[3, 3\].*"batch" is 2/],
    ["short data", (o) => ((o[0]!.data = [1, 2, 3]), { outputs: o }), /"logits" data that is not 6 values/],
    ["INT64 outside int32", (o) => ((o[1]!.data[5] = 2 ** 40), { outputs: o }), /value 1099511627776 at flat index 5, outside int32/],
    ["not a number", (o) => ((o[0]!.data[0] = null), { outputs: o }), /non-number at flat index 0/],
    ["another request's id", (o) => ({ id: "other", outputs: o }), /answers request "other", not "mine"/],
    ["twice the same output", (o) => ({ outputs: [...o, o[0]] }), /output "logits" twice/],
    ["no outputs", () => ({ model_name: "Pair" }), /has no outputs list/],
  ];
  const before = tf.memory().numTensors;
  for (const [what, make, pattern] of cases) {
    handler = (_req, res) => json(res, 200, make(good() as WireTensor[]));
    await rejects(client().infer(x, { id: "mine" }), "protocol", pattern).catch((e: Error) => assert.unreachable(`${what}: ${e.message}`));
  }
  handler = (_req, res) => json(res, 200, "{not json");
  await rejects(client().infer(x), "protocol", /not JSON/);
  handler = (_req, res) => json(res, 200, { outputs: good() });
  await rejects(client({ maxResponseBytes: 100 }).infer(x), "protocol", /larger than 100 bytes/);
  assert.is(tf.memory().numTensors, before, "tensors leaked");
  tf.dispose(Object.values(x));
});

test("inputs that do not fit the model are refused before anything is sent", async () => {
  const x = inputs(2, 3);
  const c = client();
  const cases: [unknown, RegExp][] = [
    [{ image: x.image, ids: x.ids }, /input "keep" is missing \(a bool \[batch, 3\] tensor\)/],
    [{ ...x, extra: x.image }, /Pair has no input "extra" \(its inputs: image, ids, keep\)/],
    [{ ...x, ids: tf.zeros([2, 3]) }, /input "ids" is float32, expected int32/],
    [{ ...x, image: tf.zeros([2, 3, 2]) }, /input "image" has shape \[2, 3, 2\], expected \[batch, 2, 3\]: dimension 1 is 3, expected 2/],
    [{ ...x, keep: tf.zeros([3, 3], "bool") }, /input "keep" .*"batch" is 2 in another tensor/],
    [{ ...x, image: tf.fill([2, 2, 3], NaN) }, /input "image" holds NaN at flat index 0, which JSON cannot carry/],
    [{ ...x, image: [[1, 2, 3]] }, /input "image" is not a tensor/],
  ];
  for (const [bad, pattern] of cases) await rejects(c.infer(bad), "input", pattern);
  await rejects(c.infer(x, { outputs: ["nope"] }), "input", /no output "nope"/);
  assert.is(seen.length, 0, "nothing reached the server");
  tf.dispose(Object.values(x));
});

test("metadata(), ready(), live(); an unreachable server, a slow one and an aborted request", async () => {
  const c = client();
  const meta = await c.metadata();
  assert.is(meta.name, "Pair");
  assert.equal([seen[0]!.method, seen[0]!.url, seen[0]!.headers.authorization], ["GET", "/v2/models/Pair", "Bearer s3cret"]);
  assert.is(await c.ready(), true);
  assert.is(await c.live(), false, "404 is not live");
  handler = (_req, res) => json(res, 503, { error: "loading" });
  assert.is(await c.ready(), false);
  // Another model name and a version.
  handler = (_req, res) => json(res, 404, { error: "unknown model" });
  await rejects(mod.createClient(base, { model: "pair v2", version: "3" }).metadata(), "server", /404: unknown model/, 404);
  assert.is(seen.at(-1)!.url, "/v2/models/pair%20v2/versions/3");
  // Nobody listening.
  const closed = createServer();
  await new Promise<void>((ok) => closed.listen(0, "127.0.0.1", ok));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((ok) => closed.close(ok));
  const x = inputs(1, 1);
  await rejects(mod.createClient(`http://127.0.0.1:${port}`).infer(x), "network", /could not reach http:\/\/127\.0\.0\.1:\d+\/v2\/models\/Pair\/infer/, 0);
  // A server that never answers.
  handler = () => {};
  await rejects(client({ timeoutMs: 150 }).infer(x), "timeout", /no answer .* within 150 ms/);
  const stop = new AbortController();
  const p = client({ timeoutMs: 0 }).infer(x, { signal: stop.signal });
  setTimeout(() => stop.abort(), 50);
  await p.then(
    () => assert.unreachable("aborted"),
    (e: Error) => assert.is(e.name, "AbortError"),
  );
  assert.throws(() => mod.createClient("127.0.0.1:8000"), /not an http\(s\) URL/);
  tf.dispose(Object.values(x));
});

test("the emitted TypeScript types the client: infer() takes the module's inputs and gives its outputs", () => {
  writeFileSync(path.join(DIR, "pair.ts"), emit("ts"));
  const usage = `import * as tf from "@tensorflow/tfjs-core";
import { createClient, type Inputs, type Outputs } from "./pair.js";
const c = createClient("http://127.0.0.1:8000", { token: "t" });
export async function ok(x: Inputs): Promise<Outputs> { return c.infer(x); }
export async function some(x: Inputs): Promise<tf.Tensor> { const y = await c.infer(x, { outputs: ["logits"] }); return y.logits; }
export async function bad(x: Inputs) {
  // @ts-expect-error: not an output of Pair
  await c.infer(x, { outputs: ["nope"] });
  // @ts-expect-error: an input is missing
  await c.infer({ image: x.image, ids: x.ids });
  const y = await c.infer(x, { outputs: ["logits"] });
  // @ts-expect-error: not asked for
  return y.doubled;
}
`;
  writeFileSync(path.join(DIR, "usage.ts"), usage);
  const program = ts.createProgram([path.join(DIR, "usage.ts")], { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, noEmit: true, skipLibCheck: true, types: ["node"] });
  const diags = ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? path.basename(d.file.fileName) : ""}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
  assert.equal(diags, []);
});

test.run();
