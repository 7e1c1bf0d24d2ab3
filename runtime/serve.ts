// nnetc serve: trained models behind the Open Inference Protocol v2 (KServe / Triton REST) on Fastify —
// health, server and model metadata (shapes and datatypes from the IR, symbolic sizes -1), infer (validated
// before any tensor: serve_request.ts), dynamic batching (serve_batch.ts), a predict route for raw inputs the
// dataset's own steps prepare (text, image bytes: data/raw.ts, answered as `predict --json` rows), an OpenAPI
// document generated from the IR, Prometheus metrics (prom-client), JSON log lines, bearer-token auth, hot reload
// of weights when the run folder changes, and a graceful close (stop accepting, drain, dispose).
// The engines are the ones predict uses: the interpreter on TensorFlow.js, onnx_engine.ts, torch/engine.ts.
import { createHash, timingSafeEqual } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync, watch, writeFileSync, type FSWatcher } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import * as tf from "@tensorflow/tfjs-core";
import type { IRModel, IRModule } from "../compiler/ir/types.js";
import { latestCheckpoint, type HostTensor } from "./checkpoint/index.js";
import { DataError } from "./data/index.js";
import { deriveWeights } from "./derive.js";
import { RunError } from "./errors.js";
import { run } from "./interpret.js";
import { classOutputs, predictionRow } from "./predict.js";
import { runError } from "./run_diagnostics.js";
import { Batcher, type HostOutput, type Runner } from "./serve_batch.js";
import { HttpError, parseInfer, V2_DATATYPES, v2Shape, type HostInput } from "./serve_request.js";
import { batchTensors, trainedWeights } from "./steps.js";
import type { TorchRunOptions } from "./torch/engine.js";
import { fingerprint, loadTrained } from "./weights.js";

/** The defaults of the serving flags (measured: bench/serve.ts; spec/language.md §12.9). */
export const SERVE_DEFAULTS = {
  port: 8000,
  host: "127.0.0.1",
  maxBatch: 32,
  maxDelayMs: 0,
  maxQueue: 1024,
  timeoutMs: 30_000,
  bodyLimitMb: 32,
  /** Most rows in one request, and values over all its inputs. */
  maxRows: 1024,
  maxElements: 16 * 2 ** 20,
};

/** One file's model to serve. */
export interface ServeModel {
  file: string;
  module: IRModule;
  /** The module optimized for inference at the -O level (tfjs, onnx). */
  inference: IRModule;
  /** --engine torch: the module optimized for training (what the torch engine runs). */
  trainModule?: IRModule;
  weights: string;
}

export interface ServeOptions {
  models: ServeModel[];
  engine: "tfjs" | "onnx" | "torch";
  torch?: TorchRunOptions;
  /** The -O level (metadata), and nnetc's version (ONNX producer, server metadata). */
  level: number;
  version: string;
  host?: string;
  port?: number;
  maxBatch?: number;
  maxDelayMs?: number;
  maxQueue?: number;
  timeoutMs?: number;
  bodyLimitMb?: number;
  maxRows?: number;
  /** Bearer token every route but /v2/health/* asks for. */
  token?: string;
  /** Watch each run folder and swap in newer weights (default true). */
  watch?: boolean;
  /** A JSON log line per request too (default: only start, reloads, errors, shutdown). */
  accessLog?: boolean;
  /** Where log records go (default: stderr, one JSON object a line). */
  log?: (rec: Record<string, unknown>) => void;
}

/** What a served model's current weights brought besides the runner: class names, vocabularies, column shapes. */
interface Meta {
  from: string;
  classes?: string[];
  vocab?: ReturnType<typeof loadTrained>["vocab"];
  columns?: Record<string, number[]>;
}

interface Served {
  name: string;
  file: string;
  spec: ServeModel;
  /** The model as declared (fingerprint, params) and as run (inference form). */
  model: IRModel;
  fast: IRModel;
  dims: Map<string, number | undefined>;
  batcher: Batcher;
  meta: Meta;
  /** What the weights on disk were when loaded (path, mtime, size): a reload happens when this changes. */
  signature: string;
  reloading: Promise<void> | null;
  again: boolean;
}

export interface RunningServer {
  url: string;
  port: number;
  app: FastifyInstance;
  registry: Registry;
  /** Reload a model's weights now if they changed on disk (what the watcher does). */
  reload(name: string): Promise<void>;
  /** Stop accepting, answer every accepted request, dispose the engines. */
  close(): Promise<void>;
}

const defaultLog = (rec: Record<string, unknown>) => process.stderr.write(JSON.stringify({ time: new Date().toISOString(), ...rec }) + "\n");

/** The model a file serves: its first plan's, else its last (what an emitted module exports by default). */
function servedModel(module: IRModule): IRModel | undefined {
  const plan = module.plans[0];
  return module.models.find((m) => m.name === plan?.model) ?? module.models[module.models.length - 1];
}

/** The weights loadTrained would read now, as path + mtime + size (cheap: no file is read). */
export function weightsSignature(where: string): string {
  const sig = (f: string) => {
    const st = statSync(f);
    return `${f}:${st.mtimeMs}:${st.size}`;
  };
  try {
    if (statSync(where).isFile()) return sig(where);
    const model = path.join(where, "model.safetensors");
    if (existsSync(model)) return sig(model);
    const ck = existsSync(path.join(where, "manifest.json")) ? where : latestCheckpoint(where);
    return ck ? sig(path.join(ck, "manifest.json")) : "none";
  } catch {
    return "none";
  }
}

/** A runner on the chosen engine with the weights found at `spec.weights`. */
async function loadRunner(o: ServeOptions, spec: ServeModel, m: IRModel, fast: IRModel): Promise<{ runner: Runner; meta: Meta }> {
  const trained = loadTrained(spec.weights, fingerprint(m), "--weights", m);
  const meta: Meta = { from: trained.from, ...(trained.classes ? { classes: trained.classes } : {}), ...(trained.vocab ? { vocab: trained.vocab } : {}), ...(trained.columns ? { columns: trained.columns } : {}) };
  if (o.engine === "onnx") {
    const { startOnnx } = await import("./onnx_engine.js");
    // Idle pool threads sleep at once: spinning ones would take the cores the event loop needs for HTTP and JSON.
    const session = await startOnnx(m, fast, trained, { producerVersion: o.version, spinning: false });
    return { meta, runner: { run: (inputs) => session.run(inputs), dispose: () => session.dispose() } };
  }
  if (o.engine === "torch") {
    const { startTorch } = await import("./torch/engine.js");
    const { hostWeight } = await import("./steps.js");
    const tm = spec.trainModule!.models.find((x) => x.name === m.name)!;
    const e = await startTorch(tm, o.torch!, Object.fromEntries(tm.params.map((p) => [p.name, hostWeight(trained.weights, p.name, p.shape, trained.from)])));
    return {
      meta,
      runner: {
        async run(inputs) {
          const host = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { dtype: v.data instanceof Int32Array ? "I32" : "F32", shape: v.shape, data: v.data } as HostTensor]));
          const got = await e.predict(host);
          return Object.fromEntries(m.outputs.map((x) => [x.name, { shape: got[x.name]!.shape, data: Float32Array.from(got[x.name]!.data as Float32Array) }]));
        },
        dispose: () => e.dispose(),
      },
    };
  }
  const weights = trainedWeights(m.params, trained);
  const fastWeights = deriveWeights(fast.params, weights);
  return {
    meta,
    runner: {
      async run(inputs) {
        const tensors = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.data instanceof Int32Array ? "int32" : "float32")]));
        try {
          const outputs = tf.tidy(() => run(fast, fastWeights, tensors, { training: false }).outputs);
          const res: Record<string, HostOutput> = {};
          try {
            for (const [k, v] of Object.entries(outputs)) res[k] = { shape: v.shape, data: (await v.data()) as Float32Array | Int32Array };
          } finally {
            tf.dispose(Object.values(outputs));
          }
          return res;
        } finally {
          tf.dispose(Object.values(tensors));
        }
      },
      dispose() {
        for (const w of new Set([...weights.values(), ...fastWeights.values()])) if (!w.isDisposed) w.dispose();
      },
    },
  };
}

/** The protocol's shape of every output, from the inference IR. */
function outputsMeta(fast: IRModel): { name: string; datatype: string; shape: number[] }[] {
  return fast.outputs.map((o) => {
    const n = fast.nodes.find((x) => x.id === o.node)!;
    return { name: o.name, datatype: V2_DATATYPES[n.dtype ?? "f32"], shape: v2Shape(n.shape ?? []) };
  });
}

/** The OpenAPI 3.1 document of the served models, generated from their IR: one request schema per model, its inputs' names, datatypes and ranks as constants. */
export function openApi(models: { name: string; fast: IRModel }[], version: string, auth: boolean): Record<string, unknown> {
  const error = { type: "object", required: ["error"], properties: { error: { type: "string" }, kind: { type: "string" } } };
  const tensorOut = { type: "object", required: ["name", "shape", "datatype", "data"], properties: { name: { type: "string" }, shape: { type: "array", items: { type: "integer" } }, datatype: { type: "string" }, data: { type: "array", items: { type: "number" } } } };
  const schemas: Record<string, unknown> = { Error: error };
  const paths: Record<string, unknown> = {
    "/v2/health/live": { get: { summary: "the server is up", security: [], responses: { 200: { description: "live" } } } },
    "/v2/health/ready": { get: { summary: "every model is loaded and the server is not shutting down", security: [], responses: { 200: { description: "ready" }, 503: { description: "not ready" } } } },
    "/v2": { get: { summary: "server metadata", responses: { 200: { description: "name, version, extensions" } } } },
    "/metrics": { get: { summary: "Prometheus metrics", responses: { 200: { description: "text exposition format" } } } },
  };
  const errs = { 400: { $ref: "#/components/responses/Error" }, 401: { $ref: "#/components/responses/Error" }, 404: { $ref: "#/components/responses/Error" }, 413: { $ref: "#/components/responses/Error" }, 503: { $ref: "#/components/responses/Error" } };
  for (const { name, fast } of models) {
    const id = name.replace(/[^A-Za-z0-9_]/g, "_");
    const tensor = (i: IRModel["inputs"][number]) => ({
      type: "object",
      required: ["name", "shape", "datatype", "data"],
      properties: {
        name: { const: i.name },
        datatype: { const: V2_DATATYPES[i.dtype] },
        shape: { type: "array", minItems: i.shape.length, maxItems: i.shape.length, prefixItems: i.shape.map((d, k) => (typeof d === "number" && k > 0 ? { const: d } : { type: "integer", minimum: 1 })) },
        data: { type: "array", description: "row-major values, flat or nested as the shape" },
        parameters: { type: "object" },
      },
      description: `${V2_DATATYPES[i.dtype]} [${v2Shape(i.shape).join(", ")}] (-1: any size)`,
    });
    schemas[`${id}_InferRequest`] = {
      type: "object",
      required: ["inputs"],
      properties: {
        id: { type: "string" },
        parameters: { type: "object" },
        inputs: { type: "array", minItems: fast.inputs.length, maxItems: fast.inputs.length, items: { oneOf: fast.inputs.map(tensor) } },
        outputs: { type: "array", items: { type: "object", required: ["name"], properties: { name: { enum: fast.outputs.map((o) => o.name) } } } },
      },
    };
    schemas[`${id}_InferResponse`] = { type: "object", required: ["model_name", "outputs"], properties: { model_name: { const: name }, model_version: { type: "string" }, id: { type: "string" }, outputs: { type: "array", items: tensorOut } } };
    const p = (s: string) => `/v2/models/${encodeURIComponent(name)}${s}`;
    paths[p("")] = { get: { summary: `metadata of ${name}: inputs and outputs with datatypes and shapes`, responses: { 200: { description: "model metadata" }, 404: errs[404] } } };
    paths[p("/ready")] = { get: { summary: `whether ${name} is ready`, responses: { 200: { description: "ready" }, 404: errs[404] } } };
    paths[p("/infer")] = {
      post: {
        summary: `run ${name}`,
        requestBody: { required: true, content: { "application/json": { schema: { $ref: `#/components/schemas/${id}_InferRequest` } } } },
        responses: { 200: { description: "outputs", content: { "application/json": { schema: { $ref: `#/components/schemas/${id}_InferResponse` } } } }, ...errs },
      },
    };
    paths[`/models/${encodeURIComponent(name)}/predict`] = {
      post: {
        summary: `${name} on raw inputs its dataset's steps prepare (text, image files): class names and probabilities as nnetc predict --json`,
        parameters: [{ name: "top", in: "query", schema: { type: "integer", minimum: 1 } }],
        requestBody: { required: true, content: { "text/plain": { schema: { type: "string" } }, "image/*": { schema: { type: "string", format: "binary" } }, "application/json": { schema: { type: "object", required: ["inputs"], properties: { inputs: { type: "array", items: { oneOf: [{ type: "string" }, { type: "object", required: ["b64"], properties: { b64: { type: "string", contentEncoding: "base64" } } }] } } } } } } },
        responses: { 200: { description: "one prediction per input" }, ...errs },
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "nnetc serve", version, description: "Open Inference Protocol v2 (REST) for the served .nnet models" },
    paths,
    components: { schemas, responses: { Error: { description: "what is wrong, and what to do", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } } }, ...(auth ? { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } } : {}) },
    ...(auth ? { security: [{ bearer: [] }] } : {}),
  };
}

/** Start the server; resolves once it listens (NN7070 when it cannot). */
export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const log = o.log ?? defaultLog;
  const opts = {
    maxBatch: o.maxBatch ?? SERVE_DEFAULTS.maxBatch,
    maxDelayMs: o.maxDelayMs ?? SERVE_DEFAULTS.maxDelayMs,
    maxQueue: o.maxQueue ?? SERVE_DEFAULTS.maxQueue,
    timeoutMs: o.timeoutMs ?? SERVE_DEFAULTS.timeoutMs,
  };
  const limits = { maxRows: o.maxRows ?? SERVE_DEFAULTS.maxRows, maxElements: SERVE_DEFAULTS.maxElements };
  const registry = new Registry();
  const requests = new Counter({ name: "nnetc_requests_total", help: "HTTP requests answered, by route, model and status code", labelNames: ["route", "model", "code"], registers: [registry] });
  const latency = new Histogram({ name: "nnetc_request_duration_seconds", help: "time from a request's arrival to its answer", labelNames: ["route", "model"], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] });
  const batchSize = new Histogram({ name: "nnetc_batch_size", help: "rows in each batch the engine ran", labelNames: ["model"], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], registers: [registry] });
  const batchRequests = new Histogram({ name: "nnetc_batch_requests", help: "requests gathered into each batch", labelNames: ["model"], buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [registry] });
  const inference = new Histogram({ name: "nnetc_inference_duration_seconds", help: "engine time of each batch", labelNames: ["model"], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  const queueDepth = new Gauge({ name: "nnetc_queue_depth", help: "requests waiting for a batch", labelNames: ["model"], registers: [registry] });
  const errors = new Counter({ name: "nnetc_errors_total", help: "answers other than 200, by status code and kind", labelNames: ["model", "code", "kind"], registers: [registry] });
  const reloads = new Counter({ name: "nnetc_weight_reloads_total", help: "hot reloads of weights, by result", labelNames: ["model", "result"], registers: [registry] });

  // Every model loaded before the port opens: ready means ready.
  const served = new Map<string, Served>();
  try {
    for (const spec of o.models) {
      const m = servedModel(spec.module);
      if (!m) throw runError("serveNoModel", { file: spec.file });
      const prev = served.get(m.name);
      if (prev) throw runError("serveDuplicateModel", { name: m.name, first: prev.file, second: spec.file });
      const fast = spec.inference.models.find((x) => x.name === m.name) ?? m;
      const signature = weightsSignature(spec.weights);
      const { runner, meta } = await loadRunner(o, spec, m, fast);
      const name = m.name;
      const batcher = new Batcher(runner, opts, {
        batch: (rows, reqs, s) => {
          batchSize.observe({ model: name }, rows);
          batchRequests.observe({ model: name }, reqs);
          inference.observe({ model: name }, s);
        },
        queue: (d) => queueDepth.set({ model: name }, d),
      });
      served.set(name, { name, file: spec.file, spec, model: m, fast, dims: new Map(fast.dims.map((d) => [d.name, d.max])), batcher, meta, signature, reloading: null, again: false });
    }
  } catch (e) {
    for (const s of served.values()) await s.batcher.close();
    throw e;
  }

  let closing = false;
  const app = Fastify({ logger: false, bodyLimit: Math.round((o.bodyLimitMb ?? SERVE_DEFAULTS.bodyLimitMb) * 2 ** 20), return503OnClosing: true, forceCloseConnections: "idle" });
  // Raw bodies for the predict route: image bytes and octet streams as Buffers (text/plain and JSON are Fastify's own).
  app.addContentTypeParser(/^(image\/[a-z0-9.+-]+|application\/octet-stream)$/i, { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  const modelOf = (req: FastifyRequest): Served => {
    const name = (req.params as { name?: string }).name ?? "";
    const s = served.get(name);
    if (!s) throw new HttpError(404, "unknown_model", `no model "${name}" is served; the models: ${[...served.keys()].join(", ")}`);
    return s;
  };

  const expected = o.token ? createHash("sha256").update(o.token).digest() : null;
  app.addHook("onRequest", async (req, reply) => {
    (req as { t0?: number }).t0 = performance.now();
    if (!expected || req.url.startsWith("/v2/health/")) return;
    const h = req.headers.authorization ?? "";
    const m = /^Bearer (.+)$/i.exec(h);
    const got = m ? createHash("sha256").update(m[1]!.trim()).digest() : null;
    if (!got || !timingSafeEqual(got, expected)) {
      reply.header("WWW-Authenticate", 'Bearer realm="nnetc"');
      throw new HttpError(401, got ? "bad_token" : "no_token", got ? "the bearer token is not this server's" : "this server asks for a bearer token: Authorization: Bearer TOKEN");
    }
  });

  // While draining, every answer closes its connection: an idle keep-alive socket would hold the close open.
  app.addHook("onSend", async (_req, reply, payload) => {
    if (closing) void reply.header("Connection", "close");
    return payload;
  });

  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    const model = (req.params as { name?: string } | undefined)?.name ?? "";
    const code = String(reply.statusCode);
    const seconds = (performance.now() - ((req as { t0?: number }).t0 ?? performance.now())) / 1000;
    requests.inc({ route, model: served.has(model) ? model : "", code });
    latency.observe({ route, model: served.has(model) ? model : "" }, seconds);
    if (o.accessLog || reply.statusCode >= 500) log({ level: reply.statusCode >= 500 ? "error" : "info", event: "request", method: req.method, url: req.url, status: reply.statusCode, ms: +(seconds * 1000).toFixed(2) });
  });

  app.setErrorHandler((e: Error & { statusCode?: number; code?: string }, req, reply: FastifyReply) => {
    const model = (req.params as { name?: string } | undefined)?.name ?? "";
    let status: number;
    let kind: string;
    let message: string;
    if (e instanceof HttpError) {
      status = e.status;
      kind = e.kind;
      message = e.message;
      if (e.retryAfter !== undefined) reply.header("Retry-After", String(e.retryAfter));
    } else if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      // Fastify's own: malformed JSON, body too large, unsupported media type.
      status = e.statusCode;
      kind = e.code ?? "bad_request";
      message = e.code === "FST_ERR_CTP_BODY_TOO_LARGE" ? `the body is over the server's limit of ${o.bodyLimitMb ?? SERVE_DEFAULTS.bodyLimitMb} MB (--body-limit-mb); send fewer rows per request` : e.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" ? `content type ${req.headers["content-type"] ?? "(none)"} is not accepted here: send application/json${req.url.startsWith("/models/") ? ", text/plain, or image bytes (image/png, image/jpeg, image/webp)" : ""}` : e.message;
    } else {
      // Anything else is ours: logged in full, answered without a stack.
      status = 500;
      kind = "internal";
      message = "the server failed on this request; it logged why";
      log({ level: "error", event: "internal_error", url: req.url, error: e instanceof RunError ? e.message : String(e?.stack ?? e) });
    }
    errors.inc({ model: served.has(model) ? model : "", code: String(status), kind });
    void reply.status(status).send({ error: message, kind });
  });

  app.setNotFoundHandler((req, reply) => {
    errors.inc({ model: "", code: "404", kind: "no_route" });
    void reply.status(404).send({ error: `no route ${req.method} ${req.url.split("?")[0]}; see GET /openapi.json`, kind: "no_route" });
  });

  const ready = () => !closing;
  app.get("/v2/health/live", async () => ({ live: true }));
  app.get("/v2/health/ready", async (_req, reply) => {
    if (!ready()) return reply.status(503).send({ ready: false });
    return { ready: true };
  });
  app.get("/v2", async () => ({ name: "nnetc", version: o.version, extensions: [] }));
  app.get("/v2/models/:name", async (req) => {
    const s = modelOf(req);
    return { name: s.name, versions: ["1"], platform: `nnetc-${o.engine}`, inputs: s.fast.inputs.map((i) => ({ name: i.name, datatype: V2_DATATYPES[i.dtype], shape: v2Shape(i.shape) })), outputs: outputsMeta(s.fast) };
  });
  app.get("/v2/models/:name/ready", async (req, reply) => {
    modelOf(req);
    if (!ready()) return reply.status(503).send({ ready: false });
    return { ready: true };
  });
  app.get("/openapi.json", async () => openApi([...served.values()].map((s) => ({ name: s.name, fast: s.fast })), o.version, !!o.token));
  app.get("/metrics", async (_req, reply) => {
    void reply.header("Content-Type", registry.contentType);
    return registry.metrics();
  });

  app.post("/v2/models/:name/infer", async (req) => {
    const s = modelOf(req);
    if (closing) throw new HttpError(503, "shutting_down", "the server is shutting down", 1);
    const r = parseInfer(req.body, s.fast, s.dims, limits);
    const out = await s.batcher.submit(r.inputs, r.rows, r.key);
    const meta = outputsMeta(s.fast);
    const want = r.outputs ?? s.fast.outputs.map((x) => x.name);
    return {
      model_name: s.name,
      model_version: "1",
      ...(r.id !== undefined ? { id: r.id } : {}),
      outputs: want.map((name) => {
        const v = out[name]!;
        const datatype = meta.find((x) => x.name === name)!.datatype;
        const isInt = datatype.startsWith("INT") || datatype === "BOOL";
        return { name, shape: v.shape, datatype, data: isInt ? Array.from(v.data, Math.round) : Array.from(v.data) };
      }),
    };
  });

  app.post("/models/:name/predict", async (req) => {
    const s = modelOf(req);
    if (closing) throw new HttpError(503, "shutting_down", "the server is shutting down", 1);
    const top = (req.query as { top?: string }).top;
    const k = top === undefined ? 3 : Number(top);
    if (!Number.isInteger(k) || k < 1) throw new HttpError(400, "bad_top", `?top=${top}: give a positive integer`);
    const items = rawItems(req.body, limits.maxRows);
    const inputs = await rawInputs(s, items);
    const rows = items.length;
    const out = await s.batcher.submit(inputs, rows, s.fast.inputs.map((i) => inputs[i.name]!.shape.slice(1).join("x")).join("|"));
    const res = Object.fromEntries(Object.entries(out).map(([n, v]) => [n, { shape: v.shape, data: v.data instanceof Float32Array ? v.data : Float32Array.from(v.data) }]));
    const plan = s.spec.module.plans.find((p) => p.model === s.model.name);
    const classes = classOutputs(s.fast, plan, Object.fromEntries(Object.entries(res).map(([n, v]) => [n, v.shape])), s.meta.classes);
    return { model_name: s.name, predictions: Array.from({ length: rows }, (_, i) => predictionRow(res, i, classes, k)) };
  });

  // Hot reload: watch each run folder; a change that gives other weights builds a new runner and swaps it in
  // between batches. A failed load (a file being written, a damaged checkpoint) keeps the old weights.
  const reload = async (name: string): Promise<void> => {
    const s = served.get(name)!;
    if (s.reloading) {
      s.again = true;
      return s.reloading;
    }
    s.reloading = (async () => {
      do {
        s.again = false;
        const sig = weightsSignature(s.spec.weights);
        if (sig === s.signature || sig === "none") continue;
        try {
          const { runner, meta } = await loadRunner(o, s.spec, s.model, s.fast);
          if (closing) {
            await runner.dispose();
            return;
          }
          await s.batcher.swap(runner);
          s.meta = meta;
          s.signature = sig;
          reloads.inc({ model: name, result: "ok" });
          log({ level: "info", event: "reload", model: name, from: meta.from });
        } catch (e) {
          reloads.inc({ model: name, result: "failed" });
          log({ level: "warn", event: "reload_failed", model: name, error: (e as Error).message, kept: s.meta.from });
        }
      } while (s.again);
    })().finally(() => {
      s.reloading = null;
    });
    return s.reloading;
  };
  const watchers: FSWatcher[] = [];
  const timers = new Set<NodeJS.Timeout>();
  if (o.watch !== false) {
    for (const s of served.values()) {
      const dir = statSync(s.spec.weights).isFile() ? path.dirname(s.spec.weights) : s.spec.weights;
      let pending: NodeJS.Timeout | null = null;
      try {
        const w = watch(dir, { recursive: true }, () => {
          if (pending) clearTimeout(pending);
          pending = setTimeout(() => {
            timers.delete(pending!);
            pending = null;
            void reload(s.name);
          }, 200);
          timers.add(pending);
        });
        w.on("error", (e) => log({ level: "warn", event: "watch_failed", model: s.name, error: e.message }));
        watchers.push(w);
      } catch (e) {
        log({ level: "warn", event: "watch_failed", model: s.name, error: (e as Error).message });
      }
    }
  }

  const host = o.host ?? SERVE_DEFAULTS.host;
  try {
    await app.listen({ host, port: o.port ?? SERVE_DEFAULTS.port });
  } catch (e) {
    for (const s of served.values()) await s.batcher.close();
    for (const w of watchers) w.close();
    throw runError("serveListen", { address: `${host}:${o.port ?? SERVE_DEFAULTS.port}`, why: (e as NodeJS.ErrnoException).code === "EADDRINUSE" ? "the port is in use" : (e as Error).message });
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : (o.port ?? SERVE_DEFAULTS.port);
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  log({ level: "info", event: "listening", url, engine: o.engine, level_O: o.level, models: [...served.values()].map((s) => ({ name: s.name, weights: s.meta.from })), maxBatch: opts.maxBatch, maxDelayMs: opts.maxDelayMs, maxQueue: opts.maxQueue, timeoutMs: opts.timeoutMs, auth: !!o.token, watch: o.watch !== false });

  let closed: Promise<void> | null = null;
  return {
    url,
    port,
    app,
    registry,
    reload,
    close() {
      closed ??= (async () => {
        closing = true;
        log({ level: "info", event: "shutdown", queued: [...served.values()].reduce((a, s) => a + s.batcher.depth, 0) });
        for (const w of watchers) w.close();
        for (const t of timers) clearTimeout(t);
        // Fastify stops accepting and waits for the requests it accepted, which wait for their batches.
        await app.close();
        for (const s of served.values()) {
          await s.reloading;
          await s.batcher.close();
        }
        log({ level: "info", event: "drained" });
      })();
      return closed;
    },
  };

  /** The predict route's body as raw items: strings are texts, Buffers and {b64} objects are files' bytes. */
  function rawItems(body: unknown, maxRows: number): (string | Buffer)[] {
    if (typeof body === "string") return [body];
    if (Buffer.isBuffer(body)) return [body];
    const list = typeof body === "object" && body !== null && Array.isArray((body as { inputs?: unknown }).inputs) ? ((body as { inputs: unknown[] }).inputs) : null;
    if (!list) throw new HttpError(400, "bad_raw_body", 'send text (text/plain), an image (image/png, image/jpeg, image/webp), or JSON {"inputs": ["text" | {"b64": "…"}, …]}');
    if (!list.length) throw new HttpError(400, "empty_batch", '"inputs" is empty');
    if (list.length > maxRows) throw new HttpError(400, "too_many_rows", `"inputs" holds ${list.length} items; one request takes at most ${maxRows}`);
    return list.map((x, i) => {
      if (typeof x === "string") return x;
      const b64 = typeof x === "object" && x !== null ? (x as { b64?: unknown }).b64 : undefined;
      if (typeof b64 !== "string" || !/^[A-Za-z0-9+/=\s]*$/.test(b64)) throw new HttpError(400, "bad_raw_item", `inputs[${i}] must be a text or {"b64": "<base64 bytes of a file>"}`);
      return Buffer.from(b64, "base64");
    });
  }

  /** Raw items as the model's inputs: written to a private folder and read as predict --input reads files (data/raw.ts). */
  async function rawInputs(s: Served, items: (string | Buffer)[]): Promise<Record<string, HostInput>> {
    const plan = s.spec.module.plans.find((p) => p.model === s.model.name);
    const ds = plan && s.spec.module.datasets.find((d) => d.name === plan.dataset);
    if (!ds) throw new HttpError(400, "no_dataset", `model "${s.name}" has no training plan with a dataset, whose steps would prepare raw inputs; use POST /v2/models/${s.name}/infer`);
    const { rawSplit, rawTarget } = await import("./data/raw.js");
    const names = s.fast.inputs.map((i) => i.name);
    const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-serve-"));
    try {
      let target;
      try {
        target = rawTarget(ds, names, s.meta.columns, (f) => (f.shape.slice(0, 2).every((d) => typeof d === "number") ? (f.shape.slice(0, 2) as number[]) : undefined));
      } catch (e) {
        throw new HttpError(400, "no_raw_form", `${(e as Error).message.replace(/give --input FILE\.json/, `use POST /v2/models/${s.name}/infer`)}`);
      }
      if (target.kind !== "text" && items.some((x) => typeof x === "string")) throw new HttpError(400, "bad_raw_item", `model "${s.name}" reads ${target.kind} files: send the file's bytes (Content-Type image/png, image/jpeg, image/webp) or JSON {"inputs": [{"b64": "…"}]}`);
      const files = items.map((x, i) => {
        const f = path.join(dir, `input-${i}`);
        writeFileSync(f, x);
        return f;
      });
      let split;
      try {
        split = await rawSplit(ds, names, files, target, s.meta.vocab);
      } catch (e) {
        if (e instanceof DataError || e instanceof RunError) throw new HttpError(400, "bad_raw_item", e.message.split(dir + path.sep).join(""));
        throw e;
      }
      const tensors = batchTensors(split, Array.from({ length: files.length }, (_, i) => i));
      try {
        const out: Record<string, HostInput> = {};
        for (const n of names) {
          const t = tensors[n]!;
          out[n] = { shape: t.shape, data: (await t.data()) as Float32Array | Int32Array };
        }
        return out;
      } finally {
        tf.dispose(Object.values(tensors));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
