// TensorBoard event files of a training run (nnetc train writes them into OUT/tensorboard/ by default).
//
//   DIR/train/events.out.tfevents.TIME.HOST.PID.nnetc       per step: batch_loss, learning_rate; per epoch:
//                                                           epoch_LOSS_OR_METRIC (the training side), a
//                                                           histogram of every weight, and the model's graph once
//   DIR/validation/events.out.tfevents.TIME.HOST.PID.nnetc  per epoch: epoch_NAME of every val_NAME
//
// Keras's layout (train/ and validation/ runs with the same tags, so TensorBoard draws loss and val_loss in one
// chart), with one x axis for everything: the global step (as Lightning logs), an epoch's values at the step
// that ends it; `epoch` is a scalar too. Records are TFRecords (length, masked CRC32C of the length, the
// serialized Event, its masked CRC32C) holding tensorflow.Event protos, encoded by protobufjs from the few
// message types below (field numbers of tensorflow/core/util/event.proto, framework/summary.proto, graph.proto).
//
// Each start of a trainer (a new run, or --resume) writes new files and never touches older ones: a file
// begins with file_version and a SessionLog START at the first step it trains (the checkpoint's step + 1), so
// TensorBoard's reader drops the steps an interrupted run logged after its last checkpoint (purge_orphaned_data
// drops every event at or after a START's step). Files are written
// record by record, one write each: a crash leaves at most a cut last record, which readers skip.
//
// nnetc/runtime: no compiler import.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import protobuf from "protobufjs/light.js";
import CRC32C from "crc-32/crc32c.js";

const DESCRIPTOR = {
  nested: {
    tensorflow: {
      nested: {
        Event: {
          oneofs: { what: { oneof: ["fileVersion", "graphDef", "summary", "sessionLog"] } },
          fields: { wallTime: { type: "double", id: 1 }, step: { type: "int64", id: 2 }, fileVersion: { type: "string", id: 3 }, graphDef: { type: "bytes", id: 4 }, summary: { type: "Summary", id: 5 }, sessionLog: { type: "SessionLog", id: 7 } },
        },
        SessionLog: { fields: { status: { type: "int32", id: 1 }, checkpointPath: { type: "string", id: 2 }, msg: { type: "string", id: 3 } } },
        Summary: {
          fields: { value: { rule: "repeated", type: "Value", id: 1 } },
          nested: {
            Value: {
              oneofs: { value: { oneof: ["simpleValue", "histo"] } },
              fields: { tag: { type: "string", id: 1 }, simpleValue: { type: "float", id: 2 }, histo: { type: "HistogramProto", id: 5 } },
            },
          },
        },
        HistogramProto: {
          fields: { min: { type: "double", id: 1 }, max: { type: "double", id: 2 }, num: { type: "double", id: 3 }, sum: { type: "double", id: 4 }, sumSquares: { type: "double", id: 5 }, bucketLimit: { rule: "repeated", type: "double", id: 6, options: { packed: true } }, bucket: { rule: "repeated", type: "double", id: 7, options: { packed: true } } },
        },
        GraphDef: { fields: { node: { rule: "repeated", type: "NodeDef", id: 1 }, versions: { type: "VersionDef", id: 4 } } },
        VersionDef: { fields: { producer: { type: "int32", id: 1 } } },
        NodeDef: { fields: { name: { type: "string", id: 1 }, op: { type: "string", id: 2 }, input: { rule: "repeated", type: "string", id: 3 }, device: { type: "string", id: 4 }, attr: { keyType: "string", type: "AttrValue", id: 5 } } },
        AttrValue: {
          oneofs: { value: { oneof: ["list", "s", "i", "f", "b", "shape"] } },
          fields: { list: { type: "ListValue", id: 1 }, s: { type: "bytes", id: 2 }, i: { type: "int64", id: 3 }, f: { type: "float", id: 4 }, b: { type: "bool", id: 5 }, shape: { type: "TensorShapeProto", id: 7 } },
          nested: { ListValue: { fields: { shape: { rule: "repeated", type: "TensorShapeProto", id: 7 } } } },
        },
        TensorShapeProto: {
          fields: { dim: { rule: "repeated", type: "Dim", id: 2 }, unknownRank: { type: "bool", id: 3 } },
          nested: { Dim: { fields: { size: { type: "int64", id: 1 }, name: { type: "string", id: 2 } } } },
        },
      },
    },
  },
};

let types: { Event: protobuf.Type; GraphDef: protobuf.Type } | null = null;
function proto() {
  if (!types) {
    const root = protobuf.Root.fromJSON(DESCRIPTOR);
    types = { Event: root.lookupType("tensorflow.Event"), GraphDef: root.lookupType("tensorflow.GraphDef") };
  }
  return types;
}

// ── TFRecord framing ───────────────────────────────────────────────────────────────────────────────

/** TFRecord's masked CRC32C (tensorflow/core/lib/hash/crc32c.h Mask). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = CRC32C.buf(bytes, 0) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: uint64 length, masked CRC of the length, the data, masked CRC of the data (all little-endian). */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

// ── histograms ────────────────────────────────────────────────────────────────────────────────────

let defaultLimits: Float64Array | null = null;
/** TensorFlow's default histogram buckets (core/lib/histogram: ±1e-12 × 1.1^k up to 1e20, 0, and DBL_MAX). */
export function histogramLimits(): Float64Array {
  if (!defaultLimits) {
    const pos: number[] = [];
    for (let v = 1e-12; v < 1e20; v *= 1.1) pos.push(v);
    defaultLimits = Float64Array.from([...pos.map((v) => -v).reverse(), 0, ...pos, Number.MAX_VALUE]);
  }
  return defaultLimits;
}

export interface Histogram {
  min: number;
  max: number;
  num: number;
  sum: number;
  sumSquares: number;
  bucketLimit: number[];
  bucket: number[];
}

/**
 * A HistogramProto of `values` as TensorFlow encodes one: a value goes to the first bucket whose limit is above
 * it, and runs of empty buckets are collapsed into their last one (Histogram::EncodeToProto). Non-finite values
 * are left out (TensorBoard draws none).
 */
export function histogram(values: ArrayLike<number>): Histogram {
  const limits = histogramLimits();
  const counts = new Float64Array(limits.length);
  let min = Infinity;
  let max = -Infinity;
  let num = 0;
  let sum = 0;
  let sumSquares = 0;
  for (let k = 0; k < values.length; k++) {
    const x = values[k]!;
    if (!Number.isFinite(x)) continue;
    if (x < min) min = x;
    if (x > max) max = x;
    num++;
    sum += x;
    sumSquares += x * x;
    let lo = 0;
    let hi = limits.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (limits[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    counts[lo]!++;
  }
  const bucketLimit: number[] = [];
  const bucket: number[] = [];
  for (let i = 0; i < limits.length; ) {
    let end = limits[i]!;
    let count = counts[i]!;
    i++;
    if (count <= 0) {
      while (i < limits.length && counts[i]! <= 0) {
        end = limits[i]!;
        count = counts[i]!;
        i++;
      }
    }
    bucketLimit.push(end);
    bucket.push(count);
  }
  return num ? { min, max, num, sum, sumSquares, bucketLimit, bucket } : { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit, bucket };
}

// ── the graph ─────────────────────────────────────────────────────────────────────────────────────

/** What the graph is drawn from: a model's IR nodes (compiler/ir/types.ts IRModel, structurally). */
export interface GraphModel {
  inputs: readonly { name: string; node: string }[];
  outputs: readonly { name: string; node: string }[];
  nodes: readonly { id: string; op: string; name: string; inputs: readonly string[]; attrs: Readonly<Record<string, unknown>>; shape: readonly (number | string | object)[] | null; dtype: string | null; binding?: string }[];
}

/** A NodeDef name TensorFlow accepts: [A-Za-z0-9.][A-Za-z0-9_.\-/>]*. */
const nodeName = (s: string) => {
  const t = s.replace(/[^A-Za-z0-9_.\-/>]/g, "_");
  return /^[A-Za-z0-9.]/.test(t) ? t : `x${t}`;
};

/**
 * A GraphDef of the model: one NodeDef per IR node, its op as the type, its layer path as the name (block
 * instances `Stage_1/Bottleneck/…` become TensorBoard's collapsible scopes; a second use of a shared layer and
 * nodes without a layer get their node id appended), edges from the IR's inputs, the output shape in
 * `_output_shapes` (symbolic dimensions as -1) and the attributes as text.
 */
export function graphDef(model: GraphModel): Uint8Array {
  const seen = new Set<string>();
  const names = new Map<string, string>();
  for (const n of model.nodes) {
    let name = nodeName(n.name || n.binding || n.id);
    if (seen.has(name)) name = `${name}_${n.id}`;
    seen.add(name);
    names.set(n.id, name);
  }
  const text = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v) ?? "null");
  const node = model.nodes.map((n) => {
    const attr: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(n.attrs)) attr[k] = { s: text(v) };
    if (n.dtype) attr.dtype = { s: text(n.dtype) };
    if (n.shape) attr._output_shapes = { list: { shape: [{ dim: n.shape.map((d) => ({ size: typeof d === "number" ? d : -1 })) }] } };
    return { name: names.get(n.id)!, op: n.op, input: n.inputs.map((i) => names.get(i) ?? nodeName(i)), device: "", attr };
  });
  const { GraphDef } = proto();
  return GraphDef.encode(GraphDef.fromObject({ node, versions: { producer: 22 } })).finish();
}

// ── the writer ────────────────────────────────────────────────────────────────────────────────────

export const EVENT_PREFIX = "events.out.tfevents.";

/** The event files under a TensorBoard folder (relative paths, sorted): what the run manifest lists. */
export function eventFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile() && e.name.startsWith(EVENT_PREFIX)) out.push(r);
    }
  };
  walk("");
  return out.sort();
}

/**
 * Why event files cannot go into `dir`, or null when they can: a part of the path that exists and is not a
 * folder, or the nearest existing folder not writable. Checked before a run starts (NN7060), so that it writes nothing.
 */
export function tensorboardDirProblem(dir: string): string | null {
  let p = path.resolve(dir);
  for (;;) {
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOTDIR") {
        p = path.dirname(p);
        continue;
      }
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") return `${p}: ${(e as Error).message}`;
    }
    if (st) {
      if (!st.isDirectory()) return `${p} is not a folder`;
      try {
        fs.accessSync(p, fs.constants.W_OK | fs.constants.X_OK);
      } catch {
        return `${p} cannot be written`;
      }
      return null;
    }
    const up = path.dirname(p);
    if (up === p) return null;
    p = up;
  }
}

/** One event file, appended record by record (each record one write on a descriptor held open until close()). */
class EventFile {
  readonly file: string;
  private fd: number | null;
  constructor(dir: string, startStep: number) {
    fs.mkdirSync(dir, { recursive: true });
    // Readers take a folder's files in name order: this one must sort after every earlier one, even within the second.
    let t = Math.floor(Date.now() / 1000);
    for (const f of fs.readdirSync(dir)) {
      const m = /^events\.out\.tfevents\.(\d+)\./.exec(f);
      if (m && Number(m[1]) >= t) t = Number(m[1]) + 1;
    }
    this.file = path.join(dir, `${EVENT_PREFIX}${t}.${os.hostname().replace(/[^A-Za-z0-9_.-]/g, "_")}.${process.pid}.nnetc`);
    this.fd = fs.openSync(this.file, "wx");
    this.write({ wallTime: Date.now() / 1000, step: 0, fileVersion: "brain.Event:2" });
    this.write({ wallTime: Date.now() / 1000, step: startStep, sessionLog: { status: 1 } });
  }
  write(event: Record<string, unknown>): void {
    if (this.fd === null) return;
    const { Event } = proto();
    fs.writeSync(this.fd, tfRecord(Event.encode(Event.fromObject(event)).finish()));
  }
  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** Tag of a metrics.jsonl key in its run: `loss` → `epoch_loss`, `val_accuracy` → `epoch_accuracy` in validation/. */
export function epochTag(key: string): { run: "train" | "validation"; tag: string } {
  return key.startsWith("val_") ? { run: "validation", tag: `epoch_${key.slice(4)}` } : { run: "train", tag: `epoch_${key}` };
}

/** Keys of an epoch record that are not values to chart (they are the record's coordinates and timings). */
const NOT_SCALARS = new Set(["phase", "epoch", "step", "lr", "samplesPerSec", "seconds"]);

export class TensorBoardWriter {
  private train: EventFile;
  private validation: EventFile | null = null;
  /** `startStep`: the first step this trainer logs (1 for a new run; the checkpoint's step + 1 on resume). */
  constructor(readonly dir: string, private startStep: number) {
    this.train = new EventFile(path.join(dir, "train"), startStep);
  }
  private scalars(f: EventFile, step: number, values: [string, number][]): void {
    const value = values.filter(([, v]) => typeof v === "number").map(([tag, simpleValue]) => ({ tag, simpleValue }));
    if (value.length) f.write({ wallTime: Date.now() / 1000, step, summary: { value } });
  }
  /** The model's graph, once per file. */
  graph(model: GraphModel): void {
    this.train.write({ wallTime: Date.now() / 1000, step: this.startStep, graphDef: graphDef(model) });
  }
  /** One training step (its global number, 1-based as metrics.jsonl's `step`): its loss and learning rate. */
  step(step: number, loss: number, lr: number): void {
    this.scalars(this.train, step, [["batch_loss", loss], ["learning_rate", lr]]);
  }
  /** An epoch's record (as metrics.jsonl holds it), at the step that ended it. */
  epoch(record: Record<string, unknown>): void {
    const step = Number(record.step);
    const train: [string, number][] = [["epoch", Number(record.epoch)]];
    const val: [string, number][] = [];
    for (const [k, v] of Object.entries(record)) {
      if (NOT_SCALARS.has(k) || typeof v !== "number") continue;
      const t = epochTag(k);
      (t.run === "train" ? train : val).push([t.tag, v]);
    }
    this.scalars(this.train, step, train);
    if (val.length) this.scalars((this.validation ??= new EventFile(path.join(this.dir, "validation"), this.startStep)), step, val);
  }
  /** A histogram of every weight at `step` (tag: the weight's name, `dense_1/kernel`). */
  histograms(step: number, weights: Record<string, { data: ArrayLike<number> | BigInt64Array | BigUint64Array }>): void {
    const value = Object.entries(weights)
      .filter(([, w]) => !(w.data instanceof BigInt64Array || w.data instanceof BigUint64Array))
      .map(([tag, w]) => ({ tag, histo: histogram(w.data as ArrayLike<number>) }));
    if (value.length) this.train.write({ wallTime: Date.now() / 1000, step, summary: { value } });
  }
  /** Closes the files (the run's end, or its failure): what is written stays, and nothing more is. */
  close(): void {
    this.train.close();
    this.validation?.close();
  }
  /** The files this writer made. */
  files(): string[] {
    return [this.train.file, ...(this.validation ? [this.validation.file] : [])];
  }
}
