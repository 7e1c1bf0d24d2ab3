// A typed client for the Open Inference Protocol ("v2", KServe and Triton's REST protocol), which `nnetc serve`
// speaks: an emitted module's createClient(baseUrl) sends its typed inputs (tf.Tensors) as a v2 infer request and
// answers its typed outputs. Platform-neutral (fetch only: Node 20, browsers, workers, Deno); imports no Node
// built-in and nothing of the compiler but types (spec/unit/browser_bundle.test.ts keeps it so).
//
// The wire format, as https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol defines it:
//   POST {base}/v2/models/{name}[/versions/{v}]/infer   {id?, inputs: [{name, shape, datatype, data}], outputs?: [{name}]}
//     → 200 {model_name, model_version?, id?, outputs: [{name, shape, datatype, data}]}  |  4xx/5xx {error}
//   GET  {base}/v2/models/{name}[/versions/{v}]          → {name, versions?, platform, inputs, outputs}
//   GET  {base}/v2/health/ready, /v2/health/live          → 200 when ready / live
// Data is row-major; the client sends it flat, and accepts flat or nested (the protocol allows both).
import * as tf from "@tensorflow/tfjs-core";
import type { DType } from "../compiler/ir/types.js";

/** The protocol's tensor datatypes. */
export type Datatype = "BOOL" | "UINT8" | "UINT16" | "UINT32" | "UINT64" | "INT8" | "INT16" | "INT32" | "INT64" | "FP16" | "FP32" | "FP64" | "BYTES";

/**
 * THE datatype an IR dtype has on the wire (a model's inputs and outputs in metadata, requests and responses).
 * TensorFlow.js holds f16/f64 as float32 and i8/i64 as int32 (compiler/emit/ts.ts TFJS); the wire keeps the IR's.
 */
export const DATATYPE: Readonly<Record<DType, Datatype>> = { f16: "FP16", f32: "FP32", f64: "FP64", i8: "INT8", i32: "INT32", i64: "INT64", bool: "BOOL" };

/** A tensor in a request or a response. */
export interface WireTensor {
  name: string;
  shape: number[];
  datatype: Datatype;
  /** Row-major: flat, or nested as the shape (responses may nest). */
  data: unknown[];
  parameters?: Record<string, unknown>;
}
export interface InferRequest {
  id?: string;
  inputs: WireTensor[];
  /** The outputs wanted (all when absent). */
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
  parameters?: Record<string, unknown>;
}
export interface InferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  outputs: WireTensor[];
  parameters?: Record<string, unknown>;
}
/** An input or output in model metadata: symbolic dimensions are -1. */
export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  shape: number[];
}
export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** What the client needs of a model: its name and its inputs' and outputs' specs (an emitted module's def). */
export interface ClientModel {
  name: string;
  inputs: readonly ClientTensorSpec[];
  outputs: readonly ClientTensorSpec[];
}
export interface ClientTensorSpec {
  name: string;
  shape: readonly (number | string)[];
  dtype: "float32" | "int32" | "bool";
  /** The IR's dtype (i64, f16…); without it the wire datatype follows the tfjs dtype. */
  irDtype?: DType;
}

export interface ClientOptions {
  /** Sent as `Authorization: Bearer TOKEN` (a function is asked before each request: refreshed tokens). */
  token?: string | (() => string | Promise<string>);
  /** The fetch to use (default: globalThis.fetch), e.g. one with a proxy agent, retries or test doubles. */
  fetch?: typeof fetch;
  /** The model's name on the server (default: the model's name in the .nnet file). */
  model?: string;
  /** A model version: requests go to /v2/models/{name}/versions/{version}/… */
  version?: string;
  /** Give up on a request after this many milliseconds (default 60 000; 0: never). */
  timeoutMs?: number;
  /** Refuse a response body larger than this (default 256 MiB): what a server sends us is bounded. */
  maxResponseBytes?: number;
  /** More headers for every request. */
  headers?: Record<string, string>;
}

export interface InferOptions<K extends string> {
  /** The request's id; the server echoes it. */
  id?: string;
  /** Only these outputs (the server computes and sends only them). */
  outputs?: readonly K[];
  /** Cancels the request (fetch's AbortError is thrown as fetch throws it). */
  signal?: AbortSignal;
}

/** A client for one model on a v2 server. Outputs are new tensors: the caller disposes them. */
export interface Client<I, O> {
  /** The model's name on the server and the base URL requests go to. */
  readonly model: string;
  readonly baseUrl: string;
  /** Run the model on the server: the inputs (a batch, batch ≥ 1) as the module's predict() takes them. */
  infer<K extends keyof O & string = keyof O & string>(inputs: I, options?: InferOptions<K>): Promise<Pick<O, K>>;
  /** GET /v2/models/{name}: the server's description of the model. */
  metadata(options?: { signal?: AbortSignal }): Promise<ModelMetadata>;
  /** GET /v2/health/ready: true when the server answers 200 (false for any other status; network failures throw). */
  ready(options?: { signal?: AbortSignal }): Promise<boolean>;
  /** GET /v2/health/live: true when the server answers 200. */
  live(options?: { signal?: AbortSignal }): Promise<boolean>;
}

/**
 * Why a request failed. `kind`: "input" (the inputs do not fit the model: nothing was sent), "network" (no
 * response: connection refused, DNS, CORS…), "timeout" (timeoutMs passed), "server" (the server answered 4xx or
 * 5xx: `status`, and its `{error}` as the message), "protocol" (a response that is not what the protocol
 * defines for this model: wrong outputs, shapes, datatypes or data).
 */
export class InferenceError extends Error {
  override readonly name = "InferenceError";
  constructor(
    message: string,
    readonly kind: "input" | "network" | "timeout" | "server" | "protocol",
    /** The HTTP status (0 when there was no response). */
    readonly status = 0,
    /** Seconds the server asks to wait before retrying (a 503's Retry-After), when it said. */
    readonly retryAfter?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_RESPONSE = 256 * 1024 ** 2;
/** An error body longer than this is cut (its message is for people). */
const MAX_ERROR_BODY = 64 * 1024;

/** The wire datatype of a spec'd tensor. */
export function datatypeOf(spec: Pick<ClientTensorSpec, "dtype" | "irDtype">): Datatype {
  return spec.irDtype ? DATATYPE[spec.irDtype] : spec.dtype === "float32" ? "FP32" : spec.dtype === "int32" ? "INT32" : "BOOL";
}

/** The range of integers a datatype holds that tfjs's int32 also holds. */
function intRange(d: Datatype): [number, number] | null {
  switch (d) {
    case "INT8":
      return [-128, 127];
    case "INT16":
      return [-32768, 32767];
    case "UINT8":
      return [0, 255];
    case "UINT16":
      return [0, 65535];
    case "INT32":
    case "INT64":
    case "UINT32":
    case "UINT64":
      return [d.startsWith("U") ? 0 : -(2 ** 31), 2 ** 31 - 1];
    default:
      return null;
  }
}

const shapeText = (s: readonly (number | string)[]) => `[${s.join(", ")}]`;

function isTensor(x: unknown): x is tf.Tensor {
  return !!x && typeof x === "object" && Array.isArray((x as tf.Tensor).shape) && typeof (x as tf.Tensor).dtype === "string" && typeof (x as tf.Tensor).data === "function";
}

/**
 * Bind a tensor's shape against its spec: fixed dimensions must match, a symbolic one takes (or must equal)
 * a size in `dims`; a compound one ("64*seq", computed by the model) only needs a size. Returns a problem, or null.
 */
function bindShape(shape: readonly number[], spec: readonly (number | string)[], dims: Map<string, number>): string | null {
  if (shape.length !== spec.length) return `rank ${shape.length}, expected ${spec.length}`;
  for (let i = 0; i < spec.length; i++) {
    const want = spec[i]!;
    const got = shape[i]!;
    if (!Number.isSafeInteger(got) || got < 0) return `dimension ${i} is ${String(got)}, not a size`;
    if (typeof want === "number") {
      if (got !== want) return `dimension ${i} is ${got}, expected ${want}`;
    } else if (/^[A-Za-z_]\w*$/.test(want)) {
      const bound = dims.get(want);
      if (bound === undefined) dims.set(want, got);
      else if (bound !== got) return `dimension ${i} ("${want}") is ${got}, but "${want}" is ${bound} in another tensor`;
    }
  }
  return null;
}

/** The request body of one infer call, from the model's inputs (tensors); throws an "input" InferenceError. */
export async function encodeRequest(model: ClientModel, inputs: Record<string, unknown>, options: { id?: string; outputs?: readonly string[] } = {}): Promise<InferRequest> {
  if (!inputs || typeof inputs !== "object") throw new InferenceError(`${model.name}: infer() takes an object of tensors (${model.inputs.map((i) => i.name).join(", ")})`, "input");
  const known = new Set(model.inputs.map((i) => i.name));
  for (const k of Object.keys(inputs)) if (!known.has(k)) throw new InferenceError(`${model.name} has no input "${k}" (its inputs: ${[...known].join(", ")})`, "input");
  const dims = new Map<string, number>();
  const wire: WireTensor[] = [];
  for (const spec of model.inputs) {
    const t = inputs[spec.name];
    const want = `${spec.dtype} ${shapeText(spec.shape)}`;
    if (t === undefined) throw new InferenceError(`${model.name}: input "${spec.name}" is missing (a ${want} tensor)`, "input");
    if (!isTensor(t)) throw new InferenceError(`${model.name}: input "${spec.name}" is not a tensor (expected ${want}: tf.tensor(data, shape, "${spec.dtype}"))`, "input");
    if (t.isDisposed) throw new InferenceError(`${model.name}: input "${spec.name}" is a disposed tensor`, "input");
    if (t.dtype !== spec.dtype) throw new InferenceError(`${model.name}: input "${spec.name}" is ${t.dtype}, expected ${spec.dtype} (tf.cast(x, "${spec.dtype}"))`, "input");
    const problem = bindShape(t.shape, spec.shape, dims);
    if (problem) throw new InferenceError(`${model.name}: input "${spec.name}" has shape ${shapeText(t.shape)}, expected ${shapeText(spec.shape)}: ${problem}`, "input");
    const values = await t.data();
    let data: (number | boolean)[];
    if (t.dtype === "bool") data = Array.from(values as Uint8Array, (v) => v !== 0);
    else {
      data = Array.from(values as Float32Array | Int32Array);
      const bad = data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new InferenceError(`${model.name}: input "${spec.name}" holds ${String(data[bad])} at flat index ${bad}, which JSON cannot carry`, "input");
    }
    wire.push({ name: spec.name, shape: [...t.shape], datatype: datatypeOf(spec), data });
  }
  const req: InferRequest = { ...(options.id !== undefined ? { id: options.id } : {}), inputs: wire };
  if (options.outputs) {
    const outs = new Set(model.outputs.map((o) => o.name));
    for (const o of options.outputs) if (!outs.has(o)) throw new InferenceError(`${model.name} has no output "${o}" (its outputs: ${[...outs].join(", ")})`, "input");
    req.outputs = [...new Set(options.outputs)].map((name) => ({ name }));
  }
  return req;
}

/** Flatten row-major data (flat or nested as `shape`) into at most `count` values; null when it does not fit. */
function flatten(data: unknown, shape: readonly number[], count: number): unknown[] | null {
  if (!Array.isArray(data)) return null;
  if (data.length === count && !data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown, axis: number): boolean => {
    if (axis === shape.length) {
      if (Array.isArray(v) || out.length >= count) return false;
      out.push(v);
      return true;
    }
    if (!Array.isArray(v) || v.length !== shape[axis]) return false;
    for (const x of v) if (!walk(x, axis + 1)) return false;
    return true;
  };
  return shape.length > 0 && walk(data, 0) && out.length === count ? out : null;
}

/**
 * The typed outputs of a response to `request`, as tensors (the caller disposes them); throws a "protocol"
 * InferenceError when the response is not what the protocol and the model define. `wanted`: the outputs asked for.
 */
export function decodeResponse(model: ClientModel, request: InferRequest, body: unknown, wanted?: readonly string[]): Record<string, tf.Tensor> {
  const fail = (why: string) => new InferenceError(`${model.name}: the server's response ${why}`, "protocol");
  if (!body || typeof body !== "object" || !Array.isArray((body as InferResponse).outputs)) throw fail("has no outputs list");
  const res = body as InferResponse;
  if (request.id !== undefined && res.id !== undefined && res.id !== request.id) throw fail(`answers request "${String(res.id)}", not "${request.id}"`);
  // The inputs' symbolic sizes (batch, seq…) bind the outputs' dimensions of the same name.
  const dims = new Map<string, number>();
  for (const i of request.inputs) bindShape(i.shape, model.inputs.find((s) => s.name === i.name)!.shape, dims);
  const names = wanted ?? model.outputs.map((o) => o.name);
  const byName = new Map<string, WireTensor>();
  for (const o of res.outputs) {
    if (!o || typeof o !== "object" || typeof o.name !== "string") throw fail("has an output without a name");
    if (byName.has(o.name)) throw fail(`has output "${o.name}" twice`);
    byName.set(o.name, o);
  }
  const made: Record<string, tf.Tensor> = {};
  try {
    for (const name of names) {
      const spec = model.outputs.find((o) => o.name === name)!;
      const o = byName.get(name);
      if (!o) throw fail(`lacks output "${name}" (it has: ${[...byName.keys()].join(", ") || "none"})`);
      const datatype = datatypeOf(spec);
      if (o.datatype !== datatype) throw fail(`gives output "${name}" as ${String(o.datatype)}, expected ${datatype}`);
      if (!Array.isArray(o.shape)) throw fail(`gives output "${name}" no shape`);
      const problem = bindShape(o.shape, spec.shape, dims);
      if (problem) throw fail(`gives output "${name}" shape ${shapeText(o.shape)}, expected ${shapeText(spec.shape)}: ${problem}`);
      const count = o.shape.reduce((a, b) => a * b, 1);
      const flat = flatten(o.data, o.shape, count);
      if (!flat) throw fail(`gives output "${name}" data that is not ${count} values in shape ${shapeText(o.shape)}`);
      let values: Float32Array | Int32Array | Uint8Array;
      const range = intRange(datatype);
      if (datatype === "BOOL") {
        values = new Uint8Array(count);
        for (let i = 0; i < count; i++) {
          if (typeof flat[i] !== "boolean") throw fail(`gives output "${name}" a non-boolean value at flat index ${i}`);
          values[i] = flat[i] ? 1 : 0;
        }
      } else if (range) {
        values = new Int32Array(count);
        for (let i = 0; i < count; i++) {
          const v = flat[i];
          if (typeof v !== "number" || !Number.isInteger(v)) throw fail(`gives output "${name}" a non-integer value at flat index ${i}`);
          if (v < range[0] || v > range[1]) throw fail(`gives output "${name}" the value ${v} at flat index ${i}, outside ${datatype === "INT64" || datatype === "UINT64" ? "int32, which TensorFlow.js holds it in" : datatype}`);
          values[i] = v;
        }
      } else {
        values = new Float32Array(count);
        for (let i = 0; i < count; i++) {
          const v = flat[i];
          if (typeof v !== "number") throw fail(`gives output "${name}" a non-number at flat index ${i}`);
          values[i] = v;
        }
      }
      made[name] = tf.tensor(values, o.shape, spec.dtype);
    }
  } catch (e) {
    for (const t of Object.values(made)) t.dispose();
    throw e;
  }
  return made;
}

/** A response's body as JSON, read up to `limit` bytes (a bigger one is cancelled and refused). */
async function readJson(res: Response, limit: number, what: string): Promise<unknown> {
  const declared = Number(res.headers.get("content-length"));
  const tooBig = () => new InferenceError(`${what}: the response is larger than ${limit} bytes (ClientOptions.maxResponseBytes)`, "protocol", res.status);
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => {});
    throw tooBig();
  }
  let text: string;
  if (res.body) {
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooBig();
      }
      chunks.push(value);
    }
    const all = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) all.set(c, (at += c.byteLength) - c.byteLength);
    text = new TextDecoder().decode(all);
  } else {
    text = await res.text();
    if (text.length > limit) throw tooBig();
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new InferenceError(`${what}: the response is not JSON (${JSON.stringify(text.slice(0, 80))}${text.length > 80 ? "…" : ""})`, "protocol", res.status);
  }
}

/** Retry-After in seconds (a number of seconds or an HTTP date), when given. */
function retryAfter(res: Response): number | undefined {
  const h = res.headers.get("retry-after");
  if (h === null) return undefined;
  if (/^\s*\d+\s*$/.test(h)) return Number(h);
  const t = Date.parse(h);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - Date.now()) / 1000));
}

/** Make a client for `model` on the v2 server at `baseUrl` (e.g. "http://127.0.0.1:8000"). */
export function clientFor<I, O>(model: ClientModel, baseUrl: string | URL, options: ClientOptions = {}): Client<I, O> {
  const base = String(baseUrl).replace(/\/+$/, "");
  if (!/^https?:\/\//i.test(base)) throw new InferenceError(`createClient: "${base}" is not an http(s) URL (e.g. "http://127.0.0.1:8000")`, "input");
  const name = options.model ?? model.name;
  const modelPath = `${base}/v2/models/${encodeURIComponent(name)}${options.version !== undefined ? `/versions/${encodeURIComponent(options.version)}` : ""}`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const limit = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
  const fetchFn = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));

  /** One request: headers, token, timeout and cancellation; fetch's own failures become "network"/"timeout". */
  async function send(url: string, method: "GET" | "POST", body: string | undefined, signal: AbortSignal | undefined, what: string): Promise<{ res: Response; done: () => void; timedOut: () => boolean }> {
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.token !== undefined) headers.authorization = `Bearer ${typeof options.token === "function" ? await options.token() : options.token}`;
    const ctl = new AbortController();
    let timedOut = false;
    const timer = timeoutMs > 0 ? setTimeout(() => ((timedOut = true), ctl.abort()), timeoutMs) : undefined;
    const onAbort = () => ctl.abort(signal!.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    try {
      const res = await fetchFn(url, { method, headers, ...(body !== undefined ? { body } : {}), signal: ctl.signal });
      return { res, done, timedOut: () => timedOut };
    } catch (e) {
      done();
      if (timedOut) throw new InferenceError(`${what}: no answer from ${url} within ${timeoutMs} ms`, "timeout", 0, undefined, { cause: e });
      if (signal?.aborted) throw e;
      throw new InferenceError(`${what}: could not reach ${url} (${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message})`, "network", 0, undefined, { cause: e });
    }
  }

  /** The JSON body of a 2xx response, or the server's error as an InferenceError. */
  async function answer(res: Response, what: string, bodyLimit: number): Promise<unknown> {
    if (res.ok) return readJson(res, bodyLimit, what);
    let message = `${res.status}${res.statusText ? ` ${res.statusText}` : ""}`;
    try {
      const b = await readJson(res, MAX_ERROR_BODY, what);
      const err = b && typeof b === "object" ? (b as { error?: unknown }).error : undefined;
      if (typeof err === "string" && err) message = `${res.status}: ${err}`;
    } catch {
      // no JSON {error}: the status says it
    }
    throw new InferenceError(`${what}: the server answered ${message}`, "server", res.status, retryAfter(res));
  }

  async function call(url: string, method: "GET" | "POST", body: string | undefined, signal: AbortSignal | undefined, what: string, bodyLimit: number): Promise<unknown> {
    const { res, done, timedOut } = await send(url, method, body, signal, what);
    try {
      return await answer(res, what, bodyLimit);
    } catch (e) {
      if (timedOut()) throw new InferenceError(`${what}: the answer from ${url} took longer than ${timeoutMs} ms`, "timeout", res.status, undefined, { cause: e });
      if (e instanceof InferenceError || signal?.aborted) throw e;
      throw new InferenceError(`${what}: the response broke off (${(e as Error).message})`, "network", res.status, undefined, { cause: e });
    } finally {
      done();
    }
  }

  async function health(which: "ready" | "live", signal?: AbortSignal): Promise<boolean> {
    const { res, done } = await send(`${base}/v2/health/${which}`, "GET", undefined, signal, `${which}()`);
    done();
    await res.body?.cancel().catch(() => {});
    return res.status === 200;
  }

  return {
    model: name,
    baseUrl: base,
    async infer<K extends keyof O & string>(inputs: I, o: InferOptions<K> = {}): Promise<Pick<O, K>> {
      const request = await encodeRequest(model, inputs as Record<string, unknown>, o);
      const body = await call(`${modelPath}/infer`, "POST", JSON.stringify(request), o.signal, `${name} infer`, limit);
      await tf.ready(); // a backend for the output tensors (the best registered one, if none was chosen)
      return decodeResponse(model, request, body, o.outputs) as Pick<O, K>;
    },
    async metadata(o = {}) {
      const what = `${name} metadata`;
      const b = (await call(modelPath, "GET", undefined, o.signal, what, limit)) as ModelMetadata;
      const okTensor = (t: TensorMetadata) => !!t && typeof t.name === "string" && typeof t.datatype === "string" && Array.isArray(t.shape) && t.shape.every((d) => Number.isInteger(d) && d >= -1);
      if (!b || typeof b !== "object" || typeof b.name !== "string" || !Array.isArray(b.inputs) || !Array.isArray(b.outputs) || !b.inputs.every(okTensor) || !b.outputs.every(okTensor)) {
        throw new InferenceError(`${what}: the response is not model metadata ({name, platform, inputs, outputs})`, "protocol", 200);
      }
      return b;
    },
    ready: (o = {}) => health("ready", o.signal),
    live: (o = {}) => health("live", o.signal),
  };
}
