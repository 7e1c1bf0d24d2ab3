// A minimal protobuf writer for the ONNX messages the exporter needs (field numbers from onnx.proto, ONNX
// 1.12). Pure: messages in, bytes out. A message is kept as a list of chunks, so that large initializers
// (hundreds of MB of raw_data) are copied once, into the final buffer, not once per nesting level.

/** ONNX TensorProto.DataType values. */
export const ONNX_DTYPE = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;

/** An encoded (part of a) message: a list of byte chunks. */
export class Writer {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  private buf = new Uint8Array(256);
  private pos = 0;

  /** Move the bytes being collected into the chunk list. */
  flush(): void {
    if (this.pos === 0) return;
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.buf = new Uint8Array(256);
    this.pos = 0;
  }

  private byte(b: number): void {
    if (this.pos === this.buf.length) this.flush();
    this.buf[this.pos++] = b;
    this.length++;
  }

  private bytes(b: Uint8Array): void {
    if (b.length <= 64) for (const x of b) this.byte(x);
    else {
      this.flush();
      this.chunks.push(b);
      this.length += b.length;
    }
  }

  /** An unsigned varint, or a negative int64 as its 10-byte two's complement. */
  varint(v: number | bigint): void {
    let x = typeof v === "bigint" ? v : BigInt(v);
    if (x < 0n) x = BigInt.asUintN(64, x);
    if (x < 0x80n) {
      this.byte(Number(x));
      return;
    }
    while (x >= 0x80n) {
      this.byte(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.byte(Number(x));
  }

  private tag(field: number, wire: 0 | 1 | 2 | 5): void {
    this.varint((field << 3) | wire);
  }

  /** int32/int64/enum/bool field (wire type 0). */
  int(field: number, v: number | bigint): void {
    this.tag(field, 0);
    this.varint(v);
  }

  /** float field (wire type 5, little-endian). */
  float(field: number, v: number): void {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.bytes(b);
  }

  /** bytes field (wire type 2). */
  raw(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    this.bytes(b);
  }

  string(field: number, s: string): void {
    this.raw(field, new TextEncoder().encode(s));
  }

  /** An embedded message (wire type 2): the other writer's chunks, not copied. */
  message(field: number, m: Writer): void {
    this.tag(field, 2);
    this.varint(m.length);
    this.flush();
    m.flush();
    this.chunks.push(...m.chunks);
    this.length += m.length;
  }

  /** The chunks so far as one buffer. */
  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

// ── the ONNX messages ───────────────────────────────────────────────────────────────────────────────

export type AttrValue =
  | { kind: "int"; v: number }
  | { kind: "float"; v: number }
  | { kind: "string"; v: string }
  | { kind: "ints"; v: readonly number[] }
  | { kind: "floats"; v: readonly number[] }
  | { kind: "strings"; v: readonly string[] };

export interface NodeMsg {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name: string;
  attrs: Record<string, AttrValue>;
  doc?: string;
  domain?: string;
}

export interface TensorMsg {
  name: string;
  dtype: number;
  dims: readonly number[];
  /** Little-endian element bytes (TensorProto.raw_data). */
  raw: Uint8Array;
}

/** A dimension: a size, a symbolic name (dim_param), or null for unknown. */
export type DimMsg = number | string | null;

export interface ValueInfoMsg {
  name: string;
  dtype: number;
  shape: readonly DimMsg[];
  doc?: string;
}

export interface ModelMsg {
  irVersion: number;
  opsets: readonly { domain: string; version: number }[];
  producer: string;
  producerVersion: string;
  doc?: string;
  metadata: Record<string, string>;
  graph: {
    name: string;
    nodes: readonly NodeMsg[];
    initializers: readonly TensorMsg[];
    inputs: readonly ValueInfoMsg[];
    outputs: readonly ValueInfoMsg[];
    doc?: string;
  };
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, floats: 6, ints: 7, strings: 8 } as const;

function attribute(name: string, a: AttrValue): Writer {
  const w = new Writer();
  w.string(1, name);
  w.int(20, ATTR_TYPE[a.kind]);
  switch (a.kind) {
    case "float": w.float(2, a.v); break;
    case "int": w.int(3, a.v); break;
    case "string": w.string(4, a.v); break;
    case "floats": for (const x of a.v) w.float(7, x); break;
    case "ints": for (const x of a.v) w.int(8, x); break;
    case "strings": for (const x of a.v) w.string(9, x); break;
  }
  return w;
}

export function encodeNode(n: NodeMsg): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.op);
  for (const [k, v] of Object.entries(n.attrs)) w.message(5, attribute(k, v));
  if (n.doc) w.string(6, n.doc);
  if (n.domain) w.string(7, n.domain);
  return w;
}

export function encodeTensor(t: TensorMsg): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dtype);
  w.string(8, t.name);
  w.raw(9, t.raw);
  return w;
}

export function encodeValueInfo(v: ValueInfoMsg): Writer {
  const shape = new Writer();
  for (const d of v.shape) {
    const dim = new Writer();
    if (typeof d === "number") dim.int(1, d);
    else if (typeof d === "string") dim.string(2, d);
    shape.message(1, dim);
  }
  const tensor = new Writer();
  tensor.int(1, v.dtype);
  tensor.message(2, shape);
  const type = new Writer();
  type.message(1, tensor);
  const w = new Writer();
  w.string(1, v.name);
  w.message(2, type);
  if (v.doc) w.string(3, v.doc);
  return w;
}

export function encodeModel(m: ModelMsg): Uint8Array {
  const g = new Writer();
  for (const n of m.graph.nodes) g.message(1, encodeNode(n));
  g.string(2, m.graph.name);
  for (const t of m.graph.initializers) g.message(5, encodeTensor(t));
  if (m.graph.doc) g.string(10, m.graph.doc);
  for (const i of m.graph.inputs) g.message(11, encodeValueInfo(i));
  for (const o of m.graph.outputs) g.message(12, encodeValueInfo(o));
  const w = new Writer();
  w.int(1, m.irVersion);
  w.string(2, m.producer);
  w.string(3, m.producerVersion);
  if (m.doc) w.string(6, m.doc);
  w.message(7, g);
  for (const o of m.opsets) {
    const op = new Writer();
    op.string(1, o.domain);
    op.int(2, o.version);
    w.message(8, op);
  }
  for (const [key, value] of Object.entries(m.metadata)) {
    const e = new Writer();
    e.string(1, key);
    e.string(2, value);
    w.message(14, e);
  }
  return w.finish();
}
