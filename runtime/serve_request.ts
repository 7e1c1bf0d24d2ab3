// nnetc serve's requests, before any tensor exists: the Open Inference Protocol v2 infer body checked against
// the IR (names, datatypes, shapes, sizes, element types) and turned into row-major host arrays, and the
// errors the server answers with. Pure: no tfjs, no HTTP framework (spec/unit/serve.test.ts drives it through
// the server, one kind of bad request after another).
import type { DType, IRModel } from "../compiler/ir/types.js";

/** THE map of IR dtypes to the v2 protocol's datatype names. */
export const V2_DATATYPES: Record<DType, string> = { f16: "FP16", f32: "FP32", f64: "FP64", i8: "INT8", i32: "INT32", i64: "INT64", bool: "BOOL" };
const KNOWN_DATATYPES = new Set(["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]);

/** An answer other than 200: the HTTP status, a stable error kind (metrics label, tests) and what to do. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    message: string,
    /** Seconds, for 503: the Retry-After header. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

const bad = (kind: string, message: string) => new HttpError(400, kind, message);

/** A request's input on the host, row-major; rows = shape[0]. */
export interface HostInput {
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface InferRequest {
  id?: string;
  inputs: Record<string, HostInput>;
  rows: number;
  /** The per-sample sizes of every input: requests batch together only when equal. */
  key: string;
  /** The outputs asked for (null: all). */
  outputs: string[] | null;
}

export interface RequestLimits {
  /** Most rows in one request. */
  maxRows: number;
  /** Most elements over all of one request's inputs. */
  maxElements: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The IR's shape of an input with symbolic dims as -1 (the protocol's "variable size"). */
export const v2Shape = (shape: readonly (number | string)[]): number[] => shape.map((d) => (typeof d === "number" ? d : -1));

/** Flatten `v` (a flat list, or nested lists as deep as the shape) into `out`; false when it is neither. */
function flatten(v: unknown, depth: number, out: unknown[]): boolean {
  if (!Array.isArray(v)) return false;
  if (v.length && Array.isArray(v[0])) {
    if (depth <= 1) return false;
    for (const x of v) if (!flatten(x, depth - 1, out)) return false;
    return true;
  }
  for (const x of v) {
    if (Array.isArray(x)) return false;
    out.push(x);
  }
  return true;
}

/** A v2 infer request body checked against model `m` and turned into host arrays, or the HttpError (400) naming what is wrong. */
export function parseInfer(body: unknown, m: IRModel, dims: ReadonlyMap<string, number | undefined>, limits: RequestLimits): InferRequest {
  if (!isObject(body)) throw bad("body_not_object", 'the body must be a JSON object: {"inputs": [{"name", "shape", "datatype", "data"}, …]}');
  if (body.id !== undefined && typeof body.id !== "string") throw bad("bad_id", '"id" must be a string');
  if (body.parameters !== undefined && !isObject(body.parameters)) throw bad("bad_parameters", '"parameters" must be an object');
  if (isObject(body.parameters) && body.parameters.binary_data_output) throw bad("binary_data", "binary tensor data (binary_data_output) is not supported: nnetc serve speaks the JSON form of the protocol");
  if (!Array.isArray(body.inputs)) throw bad("no_inputs", `"inputs" must be a list of tensors, one for each input of model "${m.name}": ${m.inputs.map((i) => i.name).join(", ")}`);
  const out: Record<string, HostInput> = {};
  let rows = -1;
  let total = 0;
  const symbols = new Map<string, { size: number; input: string }>();
  for (const t of body.inputs as unknown[]) {
    if (!isObject(t)) throw bad("input_not_object", 'each entry of "inputs" must be an object {"name", "shape", "datatype", "data"}');
    if (typeof t.name !== "string") throw bad("input_no_name", 'each entry of "inputs" needs a "name" (a string)');
    const inp = m.inputs.find((i) => i.name === t.name);
    if (!inp) throw bad("unknown_input", `model "${m.name}" has no input "${t.name}"; its inputs: ${m.inputs.map((i) => i.name).join(", ")}`);
    if (out[inp.name]) throw bad("duplicate_input", `input "${inp.name}" is given twice`);
    const want = V2_DATATYPES[inp.dtype];
    const expected = `[${v2Shape(inp.shape).join(", ")}]`;
    if (typeof t.datatype !== "string" || !KNOWN_DATATYPES.has(t.datatype)) throw bad("unknown_datatype", `input "${inp.name}": "datatype" must be one of the protocol's (${[...KNOWN_DATATYPES].join(", ")}); this input takes ${want}`);
    if (t.datatype !== want) throw bad("wrong_datatype", `input "${inp.name}" takes ${want}, not ${t.datatype}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) throw bad("bad_shape", `input "${inp.name}": "shape" must be a list of non-negative integers; expected ${expected} (-1: any size)`);
    const shape = t.shape as number[];
    if (shape.length !== inp.shape.length) throw bad("wrong_rank", `input "${inp.name}" has ${shape.length} dimension${shape.length === 1 ? "" : "s"} [${shape.join(", ")}]; expected ${expected} (-1: any size)`);
    for (let k = 0; k < shape.length; k++) {
      const d = inp.shape[k]!;
      if (k > 0 && typeof d === "number" && shape[k] !== d) throw bad("wrong_shape", `input "${inp.name}" has shape [${shape.join(", ")}]; expected ${expected} (-1: any size): dimension ${k} must be ${d}`);
      if (k === 0 && shape[0] === 0) throw bad("empty_batch", `input "${inp.name}" holds no rows (dimension 0 is 0)`);
      if (typeof d === "string") {
        if (shape[k]! < 1) throw bad("empty_dimension", `input "${inp.name}" has shape [${shape.join(", ")}]: dimension ${k} (${d}) must be at least 1`);
        const max = dims.get(d);
        if (max !== undefined && shape[k]! > max) throw bad("dimension_over_bound", `input "${inp.name}" has shape [${shape.join(", ")}]: dimension ${k} (${d}) is at most ${max}`);
        const seen = symbols.get(d);
        if (seen && seen.size !== shape[k]) throw bad("dimension_mismatch", `input "${inp.name}" has ${d} = ${shape[k]} but input "${seen.input}" has ${d} = ${seen.size}; inputs sharing a size must agree`);
        symbols.set(d, { size: shape[k]!, input: inp.name });
      }
    }
    if (shape[0]! > limits.maxRows) throw bad("too_many_rows", `input "${inp.name}" holds ${shape[0]} rows; one request takes at most ${limits.maxRows}`);
    const n = shape.reduce((a, b) => a * b, 1);
    total += n;
    if (total > limits.maxElements) throw new HttpError(413, "too_many_elements", `the inputs hold over ${limits.maxElements.toLocaleString("en-US")} values; send fewer rows per request`);
    const flat: unknown[] = [];
    if (t.data === undefined) throw bad("no_data", `input "${inp.name}" has no "data"`);
    if (!flatten(t.data, shape.length, flat)) throw bad("bad_data", `input "${inp.name}": "data" must be a list of numbers, flat in row-major order or nested as the shape ${expected}`);
    if (flat.length !== n) throw bad("data_size", `input "${inp.name}" has shape [${shape.join(", ")}], which holds ${n} values, but "data" has ${flat.length}`);
    const isInt = inp.dtype.startsWith("i") || inp.dtype === "bool";
    const data = isInt ? new Int32Array(n) : new Float32Array(n);
    for (let j = 0; j < n; j++) {
      let x = flat[j];
      if (inp.dtype === "bool" && typeof x === "boolean") x = x ? 1 : 0;
      if (typeof x !== "number") throw bad("bad_element", `input "${inp.name}": value ${j} is ${JSON.stringify(x) ?? String(x)}, not a number`);
      if (isInt && (!Number.isInteger(x) || x < -(2 ** 31) || x >= 2 ** 31)) throw bad("not_integer", `input "${inp.name}" takes ${want}: value ${j} is ${x}, not a 32-bit integer`);
      data[j] = x;
    }
    if (rows >= 0 && shape[0] !== rows) throw bad("batch_mismatch", `input "${inp.name}" has ${shape[0]} rows but the other inputs have ${rows}; every input gives the same rows`);
    rows = shape[0]!;
    out[inp.name] = { shape, data };
  }
  const missing = m.inputs.filter((i) => !out[i.name]);
  if (missing.length) throw bad("missing_input", `no value for input${missing.length > 1 ? "s" : ""} ${missing.map((i) => `"${i.name}" (${V2_DATATYPES[i.dtype]} [${v2Shape(i.shape).join(", ")}])`).join(", ")}`);
  if (rows === 0) throw bad("empty_batch", "the inputs hold no rows (dimension 0 is 0)");
  let outputs: string[] | null = null;
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs)) throw bad("bad_outputs", '"outputs" must be a list of {"name": …}');
    outputs = [];
    for (const o of body.outputs as unknown[]) {
      const name = isObject(o) ? o.name : undefined;
      if (typeof name !== "string" || !m.outputs.some((x) => x.name === name)) throw bad("unknown_output", `model "${m.name}" has no output ${JSON.stringify(name) ?? "(no name)"}; its outputs: ${m.outputs.map((x) => x.name).join(", ")}`);
      outputs.push(name);
    }
  }
  const key = m.inputs.map((i) => out[i.name]!.shape.slice(1).join("x")).join("|");
  return { ...(typeof body.id === "string" ? { id: body.id } : {}), inputs: out, rows, key, outputs };
}
