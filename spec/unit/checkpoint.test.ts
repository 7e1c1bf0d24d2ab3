// The checkpoint layer (runtime/checkpoint): safetensors encoding/decoding, half-precision conversion,
// checkpoint folders (atomic write, pruning, verification), and TensorFlow.js model.json weights.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  CheckpointError,
  DTYPE_NAMES,
  bf16ToF32,
  decodeSafetensors,
  dtypeSize,
  encodeSafetensors,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  toFloat32,
  type DType,
  type HostData,
  type HostTensor,
} from "../../runtime/checkpoint/safetensors.js";
import {
  checkpointName,
  latestCheckpoint,
  listCheckpoints,
  loadSafetensors,
  readCheckpoint,
  saveSafetensors,
  writeCheckpoint,
  writeFileAtomic,
  type CheckpointStateJson,
} from "../../runtime/checkpoint/store.js";
import { loadTfjsWeights } from "../../runtime/checkpoint/tfjs.js";
import { pythonFor } from "../../runtime/torch/process.js";

// ── helpers ───────────────────────────────────────────────────────────────────────────────────────

const tmpRoots: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "nnetc-ckpt-"));
  tmpRoots.push(d);
  return d;
}
test.after(() => {
  for (const d of tmpRoots) fs.rmSync(d, { recursive: true, force: true });
});

function bytesOf(data: HostData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Exact equality of two tensor maps: same names, dtypes, shapes, array types and bytes (NaN payloads included). */
function sameTensors(a: Record<string, HostTensor>, b: Record<string, HostTensor>): void {
  assert.equal(Object.keys(a).sort(), Object.keys(b).sort());
  for (const k of Object.keys(a)) {
    const x = a[k]!;
    const y = b[k]!;
    assert.is(y.dtype, x.dtype, `dtype of ${k}`);
    assert.equal(y.shape, x.shape, `shape of ${k}`);
    assert.is(y.data.constructor, x.data.constructor, `array type of ${k}`);
    assert.is(y.data.length, x.data.length, `length of ${k}`);
    assert.ok(Buffer.from(bytesOf(x.data)).equals(Buffer.from(bytesOf(y.data))), `bytes of ${k}`);
  }
}

/** Runs fn, expects a CheckpointError with the code, returns it. */
function throwsCkpt(fn: () => unknown, code: string, ...patterns: (string | RegExp)[]): CheckpointError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw new Error(`expected CheckpointError ${code}, got ${String(e)}`);
    assert.is(e.code, code, e.message);
    for (const p of patterns) assert.match(e.message, p);
    return e;
  }
  throw new Error(`expected CheckpointError ${code}, nothing was thrown`);
}

/** A safetensors file from a raw header text (not padded) and data bytes. */
function rawFile(header: string, data: number[] | Uint8Array = []): Uint8Array {
  const h = Buffer.from(header, "utf8");
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function sample(dtype: DType, n: number, seed = 1): HostData {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648);
  const ints = (lo: number, hi: number) => Array.from({ length: n }, () => lo + (next() % (hi - lo + 1)));
  switch (dtype) {
    case "F64":
      return Float64Array.from({ length: n }, () => (next() - 1e9) / 1e5);
    case "F32":
      return Float32Array.from({ length: n }, () => (next() - 1e9) / 1e5);
    case "F16":
    case "BF16":
    case "U16":
      return Uint16Array.from(ints(0, 65535));
    case "I64":
      return BigInt64Array.from(ints(0, 1e9), (v, i) => BigInt(v) * (i % 2 ? -1n : 1n) * 1234567n);
    case "U64":
      return BigUint64Array.from(ints(0, 1e9), (v) => BigInt(v) * 98765431n);
    case "I32":
      return Int32Array.from(ints(-2147483648, 2147483647));
    case "I16":
      return Int16Array.from(ints(-32768, 32767));
    case "I8":
      return Int8Array.from(ints(-128, 127));
    case "U32":
      return Uint32Array.from(ints(0, 4294967295));
    case "BOOL":
      return Uint8Array.from(ints(0, 1));
    default:
      return Uint8Array.from(ints(0, 255));
  }
}

// ── safetensors: byte-exact encoding ──────────────────────────────────────────────────────────────

test("encodes a small example byte for byte", () => {
  const buf = encodeSafetensors(
    {
      b: { dtype: "U8", shape: [2], data: new Uint8Array([1, 2]) },
      a: { dtype: "F32", shape: [], data: new Float32Array([1]) },
    },
    { k: "v" },
  );
  // Header: 130 bytes of JSON, padded with 6 spaces to 136; "__metadata__" first, then the F32 tensor
  // (larger items first), then the U8 one. Data: 4 bytes of the F32 scalar, then the 2 bytes.
  const json = '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}';
  assert.is(json.length, 130);
  // prettier-ignore
  const expected = [
    136, 0, 0, 0, 0, 0, 0, 0,                          // u64 LE header length = 136
    ...Buffer.from(json, "ascii"),
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20,                // padding
    0x00, 0x00, 0x80, 0x3f,                            // 1.0f LE
    1, 2,
  ];
  assert.equal(Array.from(buf), expected);

  // Without metadata: 56 bytes of JSON, already a multiple of 8, so no padding; int16 -2 is fe ff.
  const buf2 = encodeSafetensors({ x: { dtype: "I16", shape: [1, 2], data: new Int16Array([-2, 3]) } });
  const json2 = '{"x":{"dtype":"I16","shape":[1,2],"data_offsets":[0,4]}}';
  assert.is(json2.length, 56);
  // prettier-ignore
  assert.equal(Array.from(buf2), [56, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from(json2, "ascii"), 0xfe, 0xff, 0x03, 0x00]);
});

test("encoding is deterministic and independent of insertion order", () => {
  const t = (v: number): HostTensor => ({ dtype: "F32", shape: [1], data: new Float32Array([v]) });
  const a = encodeSafetensors({ z: t(1), a: t(2), m: t(3) }, { y: "1", b: "2" });
  const b = encodeSafetensors({ m: t(3), a: t(2), z: t(1) }, { b: "2", y: "1" });
  assert.equal(Array.from(a), Array.from(b));
  // empty metadata is the same as none
  assert.equal(Array.from(encodeSafetensors({ a: t(2) }, {})), Array.from(encodeSafetensors({ a: t(2) })));
});

test("every tensor is aligned to its item size in the file, header padded to 8", () => {
  const tensors: Record<string, HostTensor> = {};
  DTYPE_NAMES.forEach((d, i) => (tensors[`t${i}`] = { dtype: d, shape: [3], data: sample(d, 3, i + 1) }));
  const buf = encodeSafetensors(tensors, { note: "odd" });
  const n = Number(new DataView(buf.buffer).getBigUint64(0, true));
  assert.is(n % 8, 0);
  const header = JSON.parse(Buffer.from(buf.subarray(8, 8 + n)).toString("utf8"));
  for (const [name, e] of Object.entries<any>(header)) {
    if (name === "__metadata__") continue;
    assert.is((8 + n + e.data_offsets[0]) % dtypeSize(e.dtype), 0, name);
  }
});

// ── safetensors: round trips ──────────────────────────────────────────────────────────────────────

test("round trip: every dtype, scalars, empty shapes, metadata", () => {
  const tensors: Record<string, HostTensor> = {};
  for (const d of DTYPE_NAMES) {
    tensors[`${d}.matrix`] = { dtype: d, shape: [2, 3], data: sample(d, 6) };
    tensors[`${d}.scalar`] = { dtype: d, shape: [], data: sample(d, 1, 7) };
    tensors[`${d}.empty`] = { dtype: d, shape: [0], data: sample(d, 0) };
    tensors[`${d}.empty3`] = { dtype: d, shape: [4, 0, 2], data: sample(d, 0) };
  }
  const metadata = { format: "pt", "ünïcode ✓": "välue 🎉", empty: "" };
  const out = decodeSafetensors(encodeSafetensors(tensors, metadata));
  sameTensors(tensors, out.tensors);
  assert.equal(out.metadata, metadata);
});

test("round trip: no tensors at all", () => {
  const buf = encodeSafetensors({});
  assert.equal(Array.from(buf), [8, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from("{}      ")]);
  const out = decodeSafetensors(buf);
  assert.equal(Object.keys(out.tensors), []);
  assert.equal(out.metadata, {});
});

test("round trip: many tensors, odd names", () => {
  const tensors: Record<string, HostTensor> = {};
  for (let i = 0; i < 600; i++) tensors[`layer.${i}/kernel`] = { dtype: "F32", shape: [i % 5, 2], data: sample("F32", (i % 5) * 2, i) as Float32Array };
  Object.defineProperty(tensors, "__proto__", { value: { dtype: "I8", shape: [1], data: new Int8Array([-1]) }, enumerable: true });
  tensors["名前 \"quoted\" \\"] = { dtype: "U8", shape: [1], data: new Uint8Array([9]) };
  const out = decodeSafetensors(encodeSafetensors(tensors));
  assert.is(Object.getPrototypeOf(out.tensors), Object.prototype);
  assert.ok(Object.prototype.hasOwnProperty.call(out.tensors, "__proto__"));
  sameTensors(tensors, out.tensors);
});

test("round trip: NaN payloads, infinities and -0 survive bit for bit", () => {
  const f32 = new Float32Array([NaN, -0, Infinity, -Infinity, 1e-45, 3.4028234663852886e38]);
  new Uint32Array(f32.buffer)[0] = 0x7fa00001; // a signalling NaN with a payload
  const f64 = new Float64Array([NaN, -0, Infinity, 5e-324]);
  const t = { a: { dtype: "F32", shape: [6], data: f32 }, b: { dtype: "F64", shape: [4], data: f64 } } satisfies Record<string, HostTensor>;
  sameTensors(t, decodeSafetensors(encodeSafetensors(t)).tensors);
});

test("decoding reads from an unaligned view and never aliases the input", () => {
  const buf = encodeSafetensors({ w: { dtype: "F64", shape: [2], data: new Float64Array([1.5, -2.25]) } });
  const big = new Uint8Array(buf.length + 3);
  big.set(buf, 3);
  const view = big.subarray(3);
  const out = decodeSafetensors(view).tensors["w"]!;
  assert.ok(out.data instanceof Float64Array);
  assert.equal(Array.from(out.data as Float64Array), [1.5, -2.25]);
  big.fill(0);
  assert.equal(Array.from(out.data as Float64Array), [1.5, -2.25]);
});

test("decoding a Node Buffer (which may share a pooled ArrayBuffer) copies only its own bytes", () => {
  const buf = Buffer.from(encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) }, i: { dtype: "I8", shape: [1], data: new Int8Array([-3]) } }));
  assert.ok(buf.byteOffset > 0 || buf.buffer.byteLength > buf.length, "pooled Buffer expected");
  const t = decodeSafetensors(buf).tensors;
  assert.is(t["w"]!.data.buffer.byteLength, 8);
  assert.equal(Array.from(t["w"]!.data as Float32Array), [1, 2]);
  assert.equal(Array.from(t["i"]!.data as Int8Array), [-3]);
});

test("encoder accepts subarray views and Float32Array for F16/BF16", () => {
  const backing = new Float32Array([9, 1, 2, 3, 9]);
  const view = backing.subarray(1, 4);
  const out = decodeSafetensors(
    encodeSafetensors({
      v: { dtype: "F32", shape: [3], data: view },
      h: { dtype: "F16", shape: [3], data: new Float32Array([1, 0.5, 65504]) },
      b: { dtype: "BF16", shape: [2], data: new Float32Array([1, -2]) },
    }),
  ).tensors;
  assert.equal(Array.from(out["v"]!.data as Float32Array), [1, 2, 3]);
  assert.equal(Array.from(out["h"]!.data as Uint16Array), [0x3c00, 0x3800, 0x7bff]);
  assert.equal(Array.from(toFloat32(out["h"]!)), [1, 0.5, 65504]);
  assert.equal(Array.from(out["b"]!.data as Uint16Array), [0x3f80, 0xc000]);
  assert.equal(Array.from(toFloat32(out["b"]!)), [1, -2]);
  assert.equal(Array.from(toFloat32({ dtype: "I64", shape: [2], data: new BigInt64Array([3n, -4n]) })), [3, -4]);
  assert.equal(Array.from(toFloat32({ dtype: "U8", shape: [2], data: new Uint8Array([3, 255]) })), [3, 255]);
});

test("encoder refuses inconsistent tensors", () => {
  throwsCkpt(() => encodeSafetensors({ a: { dtype: "F32", shape: [3], data: new Float32Array(2) } }), "ST_ENCODE", /3 elements/, /2 data elements/);
  throwsCkpt(() => encodeSafetensors({ a: { dtype: "I32", shape: [2], data: new Float32Array(2) } }), "ST_ENCODE", /Float32Array/, /Int32Array/);
  throwsCkpt(() => encodeSafetensors({ a: { dtype: "Q4" as DType, shape: [2], data: new Float32Array(2) } }), "ST_ENCODE", /unknown dtype "Q4"/);
  throwsCkpt(() => encodeSafetensors({ a: { dtype: "F32", shape: [-1], data: new Float32Array(0) } }), "ST_ENCODE", /non-negative integers/);
  throwsCkpt(() => encodeSafetensors({ a: { dtype: "F32", shape: [1.5], data: new Float32Array(0) } }), "ST_ENCODE", /non-negative integers/);
  throwsCkpt(() => encodeSafetensors({ __metadata__: { dtype: "F32", shape: [], data: new Float32Array(1) } }), "ST_ENCODE", /reserves/);
  throwsCkpt(() => encodeSafetensors({}, { n: 3 as unknown as string }), "ST_ENCODE", /must be strings/);
});

// ── safetensors: corruption ───────────────────────────────────────────────────────────────────────

const GOOD = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}}';
const NINE = [0, 0, 128, 63, 0, 0, 0, 64, 7];

test("a hand-made file without padding decodes (the reference writer's layout is not required)", () => {
  const out = decodeSafetensors(rawFile(GOOD, NINE)).tensors;
  assert.equal(Array.from(out["a"]!.data as Float32Array), [1, 2]);
  assert.equal(Array.from(out["b"]!.data as Uint8Array), [7]);
});

test("corrupt files give CheckpointError with a clear message", () => {
  const good = rawFile(GOOD, NINE);
  throwsCkpt(() => decodeSafetensors(new Uint8Array(5)), "ST_TOO_SHORT", /5 bytes/, /shorter than the 8-byte header length/);
  throwsCkpt(() => decodeSafetensors(good.subarray(0, 40)), "ST_HEADER_LENGTH", /truncated/);
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 0xffffffffffffffffn, true);
  throwsCkpt(() => decodeSafetensors(huge), "ST_HEADER_LENGTH", /18446744073709551615 bytes/);
  throwsCkpt(() => decodeSafetensors(good.subarray(0, good.length - 1)), "ST_OFFSETS", /truncated/);
  throwsCkpt(() => decodeSafetensors(rawFile(GOOD, [...NINE, 0])), "ST_OFFSETS", /1 bytes after the last tensor/);
  throwsCkpt(() => decodeSafetensors(rawFile('{"a":', NINE)), "ST_HEADER_JSON", /not valid JSON/);
  throwsCkpt(() => decodeSafetensors(rawFile("[1,2]")), "ST_HEADER_JSON", /does not start with "\{"/);
  throwsCkpt(() => decodeSafetensors(rawFile("null")), "ST_HEADER_JSON");
  const badUtf8 = rawFile("{}  ");
  badUtf8[9] = 0xff;
  throwsCkpt(() => decodeSafetensors(badUtf8), "ST_HEADER_UTF8", /not valid UTF-8/);
  throwsCkpt(() => decodeSafetensors(rawFile(GOOD.replace('"F32"', '"Q4"'), NINE)), "ST_DTYPE", /"Q4"/, /supported: F64, F32/);
  throwsCkpt(() => decodeSafetensors(rawFile(GOOD.replace('"shape":[2]', '"shape":[3]'), NINE)), "ST_SIZE", /needs 3 × 4 = 12 bytes/);
  throwsCkpt(() => decodeSafetensors(rawFile(GOOD.replace('"shape":[2]', '"shape":[-2]'), NINE)), "ST_HEADER_ENTRY", /non-negative integers/);
  throwsCkpt(() => decodeSafetensors(rawFile(GOOD.replace('"shape":[2]', '"shape":"2"'), NINE)), "ST_HEADER_ENTRY", /shape/);
  throwsCkpt(() => decodeSafetensors(rawFile(GOOD.replace("[0,8]", "[0,-8]"), NINE)), "ST_HEADER_ENTRY", /data_offsets/);
  throwsCkpt(() => decodeSafetensors(rawFile(GOOD.replace("[0,8]", "[8,0]"), NINE)), "ST_OFFSETS", /end before begin/);
  throwsCkpt(() => decodeSafetensors(rawFile(GOOD.replace("[8,9]", "[8,90]"), NINE)), "ST_OFFSETS", /only 9 bytes/);
  throwsCkpt(() => decodeSafetensors(rawFile(GOOD.replace('"dtype":"F32",', ""), NINE)), "ST_HEADER_ENTRY", /no dtype/);
  throwsCkpt(() => decodeSafetensors(rawFile('{"a":3}')), "ST_HEADER_ENTRY", /"a"/);
  throwsCkpt(() => decodeSafetensors(rawFile('{"__metadata__":{"k":1}}')), "ST_HEADER_ENTRY", /metadata "k"/);
  throwsCkpt(() => decodeSafetensors(rawFile('{"__metadata__":[]}')), "ST_HEADER_ENTRY", /__metadata__/);
  // overlapping: b starts inside a
  const overlap = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  throwsCkpt(() => decodeSafetensors(rawFile(overlap, NINE.slice(0, 8))), "ST_OFFSETS", /"a" \[0, 8\] and "b" \[4, 8\] overlap/);
  // identical ranges
  const same = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
  throwsCkpt(() => decodeSafetensors(rawFile(same, [1])), "ST_OFFSETS", /overlap/);
  // a hole between tensors
  const hole = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}';
  throwsCkpt(() => decodeSafetensors(rawFile(hole, [1, 2, 3])), "ST_OFFSETS", /bytes 1\.\.2 .* belong to no tensor/);
  // every message tells what to do
  const e = throwsCkpt(() => decodeSafetensors(rawFile(overlap, NINE.slice(0, 8))), "ST_OFFSETS");
  assert.match(e.message, /re-export it or use another copy/);
});

test("every single-byte truncation of a valid file is refused", () => {
  const buf = encodeSafetensors({ a: { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }, b: { dtype: "I8", shape: [], data: new Int8Array([5]) } }, { m: "x" });
  for (let len = 0; len < buf.length; len++) {
    assert.throws(() => decodeSafetensors(buf.subarray(0, len)), (e: unknown) => e instanceof CheckpointError, `length ${len}`);
  }
});

// ── half precision ────────────────────────────────────────────────────────────────────────────────

test("f16 conversion: known values and rounding", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [65519.99, 0x7bff], // below the midpoint to Infinity
    [65520, 0x7c00], // the midpoint rounds to even: Infinity
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: even is 0
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units: even is 2
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -25, 0x0400], // tie between largest subnormal (odd) and smallest normal
    [1 / 3, 0x3555],
    [0.1, 0x2e66],
    [1 + 2 ** -11, 0x3c00], // tie, rounds to even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // tie, rounds to even (up)
    [1e-10, 0x0000],
  ];
  for (const [v, bits] of cases) assert.is(f32ToF16(v), bits, `f32ToF16(${v})`);
  assert.is(f32ToF16(NaN) & 0x7c00, 0x7c00);
  assert.ok((f32ToF16(NaN) & 0x3ff) !== 0);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.is(f16ToF32(0x7c00), Infinity);
  assert.is(Object.is(f16ToF32(0x8000), -0), true);
  assert.is(f16ToF32(0x0001), 2 ** -24);
  assert.is(f16ToF32(0x3555), 0.333251953125);
});

test("f16 and bf16: every bit pattern survives bits → f32 → bits", () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = f16ToF32(h);
    if (Number.isNaN(v)) assert.ok(Number.isNaN(f16ToF32(f32ToF16(v))));
    else if (f32ToF16(v) !== h) assert.unreachable(`f16 ${h.toString(16)} → ${v} → ${f32ToF16(v).toString(16)}`);
    const b = bf16ToF32(h);
    if (Number.isNaN(b)) assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(b))));
    else if (f32ToBf16(b) !== h) assert.unreachable(`bf16 ${h.toString(16)} → ${b} → ${f32ToBf16(b).toString(16)}`);
  }
});

test("f16 rounding is to the nearest representable value, ties to even (property)", () => {
  // every finite half value, sorted, with its bit pattern
  const finite: [number, number][] = [];
  for (let h = 0; h < 0x10000; h++) if ((h & 0x7c00) !== 0x7c00 && h !== 0x8000) finite.push([f16ToF32(h), h]);
  finite.sort((a, b) => a[0] - b[0]);
  fc.assert(
    fc.property(fc.float({ noNaN: true, min: -65504, max: 65504 }), (x) => {
      const h = f32ToF16(x);
      if (x === 0) return h === (Object.is(x, -0) ? 0x8000 : 0);
      let lo = 0;
      let hi = finite.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (finite[mid]![0] <= x) lo = mid;
        else hi = mid;
      }
      const [a, ha] = finite[lo]!;
      const [b, hb] = finite[hi]!;
      const da = Math.abs(x - a);
      const db = Math.abs(x - b);
      const want = da < db ? ha : db < da ? hb : (ha & 1) === 0 ? ha : hb;
      // the result's magnitude is right; its sign follows x (so 0 may come back as -0's pattern)
      return f16ToF32(h) === f16ToF32(want);
    }),
    { seed: 42, numRuns: 5000 },
  );
});

// ── safetensors: property test ────────────────────────────────────────────────────────────────────

function dataArb(dtype: DType, n: number): fc.Arbitrary<HostData> {
  const len = { minLength: n, maxLength: n };
  switch (dtype) {
    case "F64":
      return fc.float64Array(len);
    case "F32":
      return fc.float32Array(len);
    case "I64":
      return fc.bigInt64Array(len);
    case "U64":
      return fc.bigUint64Array(len);
    case "I32":
      return fc.int32Array(len);
    case "U32":
      return fc.uint32Array(len);
    case "I16":
      return fc.int16Array(len);
    case "I8":
      return fc.int8Array(len);
    case "F16":
    case "BF16":
    case "U16":
      return fc.uint16Array(len);
    case "BOOL":
      return fc.array(fc.boolean(), len).map((a) => Uint8Array.from(a, Number));
    default:
      return fc.uint8Array(len);
  }
}

const tensorArb: fc.Arbitrary<HostTensor> = fc
  .record({ dtype: fc.constantFrom(...DTYPE_NAMES), shape: fc.array(fc.nat(4), { maxLength: 3 }) })
  .chain(({ dtype, shape }) => dataArb(dtype, shape.reduce((a, b) => a * b, 1)).map((data) => ({ dtype, shape, data })));

test("property: decode(encode(x)) == x and encode is a fixed point", () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string({ maxLength: 12 }), tensorArb, { maxKeys: 8 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 4 }), (raw, metadata) => {
      const tensors: Record<string, HostTensor> = {};
      for (const [k, v] of Object.entries(raw)) if (k !== "__metadata__") tensors[k] = v;
      delete (metadata as Record<string, string>)["__proto__"];
      const buf = encodeSafetensors(tensors, metadata);
      const out = decodeSafetensors(buf);
      sameTensors(tensors, out.tensors);
      assert.equal({ ...out.metadata }, { ...metadata });
      assert.ok(Buffer.from(encodeSafetensors(out.tensors, out.metadata)).equals(Buffer.from(buf)));
    }),
    { seed: 20240611, numRuns: 300 },
  );
});

test("property: random byte flips in the header never crash the decoder with anything but CheckpointError", () => {
  const buf = encodeSafetensors({ a: { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }, b: { dtype: "U8", shape: [3], data: new Uint8Array(3) } }, { k: "v" });
  fc.assert(
    fc.property(fc.nat(buf.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const copy = buf.slice();
      copy[i] ^= x;
      try {
        decodeSafetensors(copy);
      } catch (e) {
        return e instanceof CheckpointError;
      }
      return true;
    }),
    { seed: 7, numRuns: 2000 },
  );
});

// ── safetensors: cross-check with an independent writer/reader (python3 + numpy) ─────────────────

// Debian's python3 has numpy with python3-torch, which npm test installs (scripts/setup.mjs): the check runs everywhere the suite does.
const PYTHON = "/usr/bin/python3";

// Writes py.safetensors by hand from the documented layout (keys in insertion order, header not padded,
// so the data starts unaligned), and checks ts.safetensors (written by encodeSafetensors) the same way.
const PY = String.raw`
import json, struct, sys
import numpy as np
d = sys.argv[1]
vals = np.array([1.0, -2.5, 3.14159, 65504.0, 1e-5, 1/3, 65520.0, -0.0], dtype=np.float32)
arrays = {
  "z.f32": vals.reshape(2, 4),
  "a.f16": vals.astype(np.float16),
  "m.i64": np.array([[1, -2], [3, 2**40]], dtype=np.int64),
  "f64": np.array(3.5, dtype=np.float64),
  "i32": np.arange(-3, 3, dtype=np.int32).reshape(3, 1, 2),
  "i16": np.array([-32768, 32767], dtype=np.int16),
  "i8": np.array([-128, 5], dtype=np.int8),
  "u8": np.array([0, 255], dtype=np.uint8),
  "b": np.array([True, False, True]),
  "empty": np.zeros((0, 3), dtype=np.float32),
}
names = {np.float32: "F32", np.float16: "F16", np.int64: "I64", np.float64: "F64", np.int32: "I32",
         np.int16: "I16", np.int8: "I8", np.uint8: "U8", np.bool_: "BOOL"}
header = {"__metadata__": {"framework": "numpy", "x": "y"}}
blobs = []
off = 0
for k, a in arrays.items():
  b = a.astype(a.dtype.newbyteorder("<")).tobytes()
  header[k] = {"dtype": names[a.dtype.type], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
  blobs.append(b)
  off += len(b)
h = json.dumps(header).encode()
if len(h) % 8 == 0:
  h += b"  x"[:1]  # keep the header unpadded so the data is unaligned
with open(d + "/py.safetensors", "wb") as f:
  f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

# read ts.safetensors
buf = open(d + "/ts.safetensors", "rb").read()
n = struct.unpack("<Q", buf[:8])[0]
assert n % 8 == 0, "header not padded"
hdr = json.loads(buf[8:8 + n])
dt = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "F64": "<f8", "I32": "<i4", "U8": "u1", "BOOL": "?"}
out = {"metadata": hdr.pop("__metadata__", {})}
end = 0
for k, e in hdr.items():
  s, t = e["data_offsets"]
  end = max(end, t)
  a = np.frombuffer(buf[8 + n + s: 8 + n + t], dtype=dt[e["dtype"]]).reshape(e["shape"])
  vs = a.ravel().tolist()
  vs = [v if isinstance(v, bool) or np.isfinite(v) else ("NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")) for v in vs]
  out[k] = {"dtype": e["dtype"], "shape": list(a.shape), "values": vs}
assert 8 + n + end == len(buf), "trailing bytes"
out["f16_from_f32_bits"] = vals.astype(np.float16).view(np.uint16).tolist()
print(json.dumps(out))
`;

test("cross-check with numpy: files written by hand in python decode; ours read back in python", () => {
  const probe = spawnSync(PYTHON, ["-c", "import numpy"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) assert.unreachable(`${PYTHON} cannot import numpy: install Debian's python3-numpy (apt-get install -y python3-numpy; npm test installs it with python3-torch)`);
  const d = tmpDir();
  const f32 = new Float32Array([1.0, -2.5, 3.14159, 65504.0, 1e-5, 1 / 3, 65520.0, -0.0]);
  const ours = encodeSafetensors(
    {
      w: { dtype: "F32", shape: [2, 4], data: f32 },
      h: { dtype: "F16", shape: [8], data: f32 }, // converted by our f32 → f16
      big: { dtype: "I64", shape: [2], data: new BigInt64Array([-5n, 2n ** 40n]) },
      d: { dtype: "F64", shape: [], data: new Float64Array([0.1]) },
      i: { dtype: "I32", shape: [1, 3], data: new Int32Array([-1, 0, 7]) },
      flag: { dtype: "BOOL", shape: [2], data: new Uint8Array([1, 0]) },
      e: { dtype: "U8", shape: [0], data: new Uint8Array(0) },
    },
    { framework: "nnetc" },
  );
  fs.writeFileSync(path.join(d, "ts.safetensors"), ours);
  fs.writeFileSync(path.join(d, "check.py"), PY);
  const r = spawnSync(PYTHON, [path.join(d, "check.py"), d], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  const py = JSON.parse(r.stdout);

  // python read ours
  assert.equal(py.metadata, { framework: "nnetc" });
  assert.equal(py.w, { dtype: "F32", shape: [2, 4], values: Array.from(f32) });
  assert.equal(py.h.values, Array.from(f32, (v) => f16ToF32(f32ToF16(v))).map((v) => (Number.isFinite(v) ? v : String(v))));
  assert.equal(py.big.values, [-5, 2 ** 40]);
  assert.equal(py.d, { dtype: "F64", shape: [], values: [0.1] });
  assert.equal(py.i.values, [-1, 0, 7]);
  assert.equal(py.flag.values, [true, false]);
  assert.equal(py.e, { dtype: "U8", shape: [0], values: [] });
  // numpy's float32 → float16 rounding agrees with ours
  assert.equal(py.f16_from_f32_bits, Array.from(float32ToFloat16Bits(f32)));

  // we read python's
  const theirs = decodeSafetensors(fs.readFileSync(path.join(d, "py.safetensors")));
  assert.equal(theirs.metadata, { framework: "numpy", x: "y" });
  const t = theirs.tensors;
  assert.equal(t["z.f32"]!.shape, [2, 4]);
  assert.equal(Array.from(t["z.f32"]!.data as Float32Array), Array.from(f32));
  assert.equal(Array.from(t["a.f16"]!.data as Uint16Array), py.f16_from_f32_bits);
  assert.equal(Array.from(t["m.i64"]!.data as BigInt64Array), [1n, -2n, 3n, 2n ** 40n]);
  assert.equal(t["f64"]!.shape, []);
  assert.equal(Array.from(t["f64"]!.data as Float64Array), [3.5]);
  assert.equal(t["i32"]!.shape, [3, 1, 2]);
  assert.equal(Array.from(t["i32"]!.data as Int32Array), [-3, -2, -1, 0, 1, 2]);
  assert.equal(Array.from(t["i16"]!.data as Int16Array), [-32768, 32767]);
  assert.equal(Array.from(t["i8"]!.data as Int8Array), [-128, 5]);
  assert.equal(Array.from(t["u8"]!.data as Uint8Array), [0, 255]);
  assert.is(t["b"]!.dtype, "BOOL");
  assert.equal(Array.from(t["b"]!.data as Uint8Array), [1, 0, 1]);
  assert.equal(t["empty"]!.shape, [0, 3]);
  assert.is(t["empty"]!.data.length, 0);
});

// ── safetensors: Hugging Face's own library (pinned in runtime/torch/requirements.txt, in the project's .venv) ──

// Their reader on our file (values, dtypes, shapes, metadata, through torch and numpy); their writer
// (torch tensors: BF16 included, which numpy lacks) read by ours.
const HF = String.raw`
import json, sys
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
d = sys.argv[1]
out = {}
with safe_open(d + "/ts.safetensors", framework="pt") as f:
  out["__metadata__"] = f.metadata()
  for k in f.keys():
    t = f.get_tensor(k)
    vs = t.ravel().tolist() if t.dtype == torch.bool else t.double().ravel().tolist()
    out[k] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": vs}
# numpy's reader too (it has no bfloat16)
with safe_open(d + "/ts.safetensors", framework="np") as f:
  out["__numpy__"] = {k: str(f.get_tensor(k).dtype) for k in f.keys() if k != "brain"}
x = torch.tensor([1.0, -2.5, 3.140625, 1e-3, 65504.0, -0.0], dtype=torch.float32)
save_file({
  "bf16": x.to(torch.bfloat16).reshape(2, 3),
  "f16": x.to(torch.float16),
  "f32": x.reshape(3, 2),
  "i64": torch.tensor([[-1, 2**40]], dtype=torch.int64),
  "u8": torch.tensor([0, 255], dtype=torch.uint8),
  "b": torch.tensor([True, False]),
}, d + "/hf.safetensors", metadata={"format": "pt", "by": "safetensors"})
out["__bits__"] = {"bf16": x.to(torch.bfloat16).view(torch.int16).tolist(), "f16": x.to(torch.float16).view(torch.int16).tolist()}
print(json.dumps(out))
`;

test("cross-check with Hugging Face's safetensors library: it reads our files, we read its files (BF16 included)", () => {
  const python = pythonFor();
  const probe = spawnSync(python, ["-c", "import safetensors, torch"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) assert.unreachable(`${python} cannot import safetensors and torch (${probe.stderr?.trim().split("\n").pop() ?? probe.error}): npm test makes .venv with runtime/torch/requirements.txt (scripts/setup.mjs)`);
  const d = tmpDir();
  const f32 = new Float32Array([0.5, -1.25, 3.5, 1e-7, -65504, 2 ** -20]);
  fs.writeFileSync(
    path.join(d, "ts.safetensors"),
    encodeSafetensors(
      {
        "dense/kernel": { dtype: "F32", shape: [3, 2], data: f32 },
        half: { dtype: "F16", shape: [6], data: f32 },
        brain: { dtype: "BF16", shape: [2, 3], data: f32 },
        step: { dtype: "I64", shape: [], data: new BigInt64Array([12345678901n]) },
        ids: { dtype: "I32", shape: [2], data: new Int32Array([-7, 2 ** 30]) },
        mask: { dtype: "BOOL", shape: [3], data: new Uint8Array([0, 1, 1]) },
      },
      { format: "nnetc", model: "M" },
    ),
  );
  fs.writeFileSync(path.join(d, "hf.py"), HF);
  const r = spawnSync(python, [path.join(d, "hf.py"), d], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  const hf = JSON.parse(r.stdout);
  // Theirs on ours.
  assert.equal(hf.__metadata__, { format: "nnetc", model: "M" });
  assert.equal(hf["dense/kernel"], { dtype: "float32", shape: [3, 2], values: Array.from(f32) });
  assert.equal(hf.half, { dtype: "float16", shape: [6], values: Array.from(f32, (v) => f16ToF32(f32ToF16(v))) });
  assert.equal(hf.brain, { dtype: "bfloat16", shape: [2, 3], values: Array.from(f32, (v) => bf16ToF32(f32ToBf16(v))) });
  assert.equal(hf.step, { dtype: "int64", shape: [], values: [12345678901] });
  assert.equal(hf.ids, { dtype: "int32", shape: [2], values: [-7, 2 ** 30] });
  assert.equal(hf.mask, { dtype: "bool", shape: [3], values: [false, true, true] });
  assert.equal(hf.__numpy__, { "dense/kernel": "float32", half: "float16", step: "int64", ids: "int32", mask: "bool" });
  // Ours on theirs.
  const theirs = decodeSafetensors(fs.readFileSync(path.join(d, "hf.safetensors")));
  assert.equal(theirs.metadata, { format: "pt", by: "safetensors" });
  const t = theirs.tensors;
  const bits = (a: number[]) => a.map((v) => v & 0xffff);
  assert.is(t.bf16!.dtype, "BF16");
  assert.equal(t.bf16!.shape, [2, 3]);
  assert.equal(Array.from(t.bf16!.data as Uint16Array), bits(hf.__bits__.bf16));
  assert.equal(Array.from(t.f16!.data as Uint16Array), bits(hf.__bits__.f16));
  // our BF16 conversion rounds as torch's does
  assert.equal(Array.from(float32ToBfloat16Bits([1.0, -2.5, 3.140625, 1e-3, 65504.0, -0.0])), bits(hf.__bits__.bf16));
  assert.equal(Array.from(t.f32!.data as Float32Array), [1.0, -2.5, 3.140625, Math.fround(1e-3), 65504.0, -0.0]);
  assert.equal(Array.from(t.i64!.data as BigInt64Array), [-1n, 2n ** 40n]);
  assert.equal(Array.from(t.u8!.data as Uint8Array), [0, 255]);
  assert.equal(Array.from(t.b!.data as Uint8Array), [1, 0]);
});

// ── checkpoint store ──────────────────────────────────────────────────────────────────────────────

function ckptData(step: number, fingerprint = "fp-model-a") {
  return {
    weights: {
      "dense/kernel": { dtype: "F32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, step]) },
      "dense/bias": { dtype: "F32", shape: [3], data: new Float32Array([0.5, -0.5, 0]) },
    } satisfies Record<string, HostTensor>,
    optimizer: {
      "adam/m/dense/kernel": { dtype: "F32", shape: [2, 3], data: new Float32Array(6).fill(0.1) },
      "adam/t": { dtype: "I64", shape: [], data: new BigInt64Array([BigInt(step)]) },
    } satisfies Record<string, HostTensor>,
    state: {
      step,
      epoch: Math.floor(step / 10),
      phase: "pretrain",
      schedule: { lr: 0.001, warmupDone: step > 3 },
      dataCursor: { shard: 2, index: step * 32 },
      rng: { seed: 1234, counter: [1, 2, 3, 4] },
      vocabularies: { tokens: ["<pad>", "a", "b", "ünï"] },
      fingerprint,
      extra: { bestLoss: 0.25, note: "hello" },
    } satisfies CheckpointStateJson,
  };
}

test("write then read a checkpoint: every part comes back", () => {
  const out = tmpDir();
  const data = ckptData(12);
  const dir = writeCheckpoint(out, data, { keep: 3 });
  assert.is(dir, path.join(out, "checkpoints", "ckpt-000000000012"));
  assert.is(checkpointName(12), "ckpt-000000000012");
  assert.equal(fs.readdirSync(dir).sort(), ["manifest.json", "optimizer.safetensors", "state.json", "weights.safetensors"]);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
  assert.is(manifest.format, "nnetc-checkpoint");
  assert.is(manifest.version, 1);
  assert.is(manifest.step, 12);
  assert.equal(manifest.files.map((f: { path: string }) => f.path), ["weights.safetensors", "optimizer.safetensors", "state.json"]);
  for (const f of manifest.files) {
    const bytes = fs.readFileSync(path.join(dir, f.path));
    assert.is(f.bytes, bytes.length);
    assert.match(f.sha256, /^[0-9a-f]{64}$/);
  }
  const back = readCheckpoint(dir, { fingerprint: "fp-model-a" });
  sameTensors(data.weights, back.weights);
  sameTensors(data.optimizer, back.optimizer);
  assert.equal(back.state, data.state);
  assert.equal(listCheckpoints(out), [dir]);
  assert.is(latestCheckpoint(out), dir);
  // no temporary leftovers
  assert.equal(fs.readdirSync(path.join(out, "checkpoints")), ["ckpt-000000000012"]);
});

test("no checkpoints: empty list, null latest", () => {
  const out = tmpDir();
  assert.equal(listCheckpoints(out), []);
  assert.is(latestCheckpoint(out), null);
  assert.equal(listCheckpoints(path.join(out, "does-not-exist")), []);
});

test("keep-last-K pruning, never touching other folders or files", () => {
  const out = tmpDir();
  const root = path.join(out, "checkpoints");
  fs.mkdirSync(path.join(root, "notes"), { recursive: true });
  fs.writeFileSync(path.join(root, "notes", "keep-me.txt"), "x");
  fs.writeFileSync(path.join(root, "README"), "mine");
  fs.mkdirSync(path.join(root, "ckpt-000000000000")); // no manifest: not a checkpoint, left alone
  fs.writeFileSync(path.join(root, "ckpt-000000000000", "weights.safetensors"), "partial");
  for (let s = 1; s <= 6; s++) writeCheckpoint(out, ckptData(s * 100), { keep: 2 });
  assert.equal(listCheckpoints(out).map((d) => path.basename(d)), ["ckpt-000000000500", "ckpt-000000000600"]);
  assert.equal(fs.readdirSync(root).sort(), ["README", "ckpt-000000000000", "ckpt-000000000500", "ckpt-000000000600", "notes"]);
  assert.is(fs.readFileSync(path.join(root, "notes", "keep-me.txt"), "utf8"), "x");

  // Ordering is by step, not by name length: step 10^12 sorts after 600 even with a longer name.
  const far = writeCheckpoint(out, ckptData(1_000_000_000_000), { keep: 2 });
  assert.equal(listCheckpoints(out).map((d) => path.basename(d)), ["ckpt-000000000600", path.basename(far)]);

  // The one just written is never pruned, even when it is not the newest by step.
  const back = writeCheckpoint(out, ckptData(50), { keep: 2 });
  assert.equal(listCheckpoints(out), [back, far]);

  // keep: 1 leaves only the new one; Infinity keeps all.
  writeCheckpoint(out, ckptData(2_000_000_000_000), { keep: 1 });
  assert.is(listCheckpoints(out).length, 1);
  for (let s = 1; s <= 3; s++) writeCheckpoint(out, ckptData(s), { keep: Infinity });
  assert.is(listCheckpoints(out).length, 4);
});

test("writing the same step again replaces it", () => {
  const out = tmpDir();
  writeCheckpoint(out, ckptData(7), { keep: 5 });
  const d = ckptData(7);
  d.state.extra.note = "second";
  const dir = writeCheckpoint(out, d, { keep: 5 });
  assert.is(readCheckpoint(dir).state.extra!["note"], "second");
  assert.equal(fs.readdirSync(path.join(out, "checkpoints")), ["ckpt-000000000007"]);
  // an incomplete folder in the way is kept under another name, not deleted
  fs.rmSync(path.join(dir, "manifest.json"));
  writeCheckpoint(out, ckptData(7), { keep: 5 });
  const names = fs.readdirSync(path.join(out, "checkpoints")).sort();
  assert.is(names.length, 2);
  assert.is(names[0], "ckpt-000000000007");
  assert.match(names[1]!, /^ckpt-000000000007\.replaced-/);
  assert.equal(listCheckpoints(out), [dir]);
});

test("saveSafetensors / loadSafetensors", () => {
  const d = tmpDir();
  const p = path.join(d, "final.safetensors");
  const t = { w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } } satisfies Record<string, HostTensor>;
  saveSafetensors(p, t, { step: "9" });
  const back = loadSafetensors(p);
  sameTensors(t, back.tensors);
  assert.equal(back.metadata, { step: "9" });
  fs.truncateSync(p, 30);
  const e = throwsCkpt(() => loadSafetensors(p), "ST_HEADER_LENGTH", /truncated/);
  assert.ok(e.message.startsWith(p + ": "), e.message);
  throwsCkpt(() => loadSafetensors(path.join(d, "none.safetensors")), "CKPT_MISSING_FILE", /does not exist/);
});

test("bad arguments are refused before anything is written", () => {
  const out = tmpDir();
  throwsCkpt(() => writeCheckpoint(out, ckptData(1), { keep: 0 }), "CKPT_ARGUMENT", /keep is 0/);
  throwsCkpt(() => writeCheckpoint(out, ckptData(1), { keep: 1.5 }), "CKPT_ARGUMENT", /positive integer/);
  throwsCkpt(() => writeCheckpoint(out, { ...ckptData(1), state: { ...ckptData(1).state, step: -1 } }, { keep: 1 }), "CKPT_ARGUMENT", /state\.step/);
  throwsCkpt(() => writeCheckpoint(out, { ...ckptData(1), state: { ...ckptData(1).state, fingerprint: "" } }, { keep: 1 }), "CKPT_ARGUMENT", /fingerprint/);
  const badWeights = { ...ckptData(1), weights: { w: { dtype: "F32", shape: [4], data: new Float32Array(3) } as HostTensor } };
  throwsCkpt(() => writeCheckpoint(out, badWeights, { keep: 1 }), "CKPT_ARGUMENT", /cannot write checkpoint: tensor "w"/);
  const cyclic: Record<string, unknown> = {};
  cyclic["self"] = cyclic;
  throwsCkpt(() => writeCheckpoint(out, { ...ckptData(1), state: { ...ckptData(1).state, extra: cyclic } }, { keep: 1 }), "CKPT_ARGUMENT", /JSON-serializable/);
  assert.is(fs.existsSync(path.join(out, "checkpoints")), false);
});

test("a crash mid-write leaves earlier checkpoints intact; leftovers are ignored, then cleaned", () => {
  const out = tmpDir();
  const root = path.join(out, "checkpoints");
  const first = writeCheckpoint(out, ckptData(10), { keep: 3 });
  const second = writeCheckpoint(out, ckptData(20), { keep: 3 });
  // A writer that died half way: a temp folder with some files, no manifest. Its pid is of an exited process.
  const deadPid = spawnSync(process.execPath, ["-e", ""]).pid!;
  const tmp = path.join(root, `.tmp-ckpt-${deadPid}-deadbeef`);
  fs.mkdirSync(tmp);
  fs.writeFileSync(path.join(tmp, "weights.safetensors"), "half");
  // A temp folder of a live process (this one's parent) must survive.
  const live = path.join(root, `.tmp-ckpt-${process.ppid}-cafecafe`);
  fs.mkdirSync(live);
  // A ckpt-named folder whose manifest lists a file that is missing or truncated: incomplete.
  const broken = path.join(root, "ckpt-000000000030");
  fs.cpSync(second, broken, { recursive: true });
  fs.rmSync(path.join(broken, "optimizer.safetensors"));
  const broken2 = path.join(root, "ckpt-000000000040");
  fs.cpSync(second, broken2, { recursive: true });
  fs.truncateSync(path.join(broken2, "weights.safetensors"), 10);
  // And one with the manifest of another step (copied by hand).
  fs.cpSync(second, path.join(root, "ckpt-000000000050"), { recursive: true });

  assert.equal(listCheckpoints(out), [first, second]);
  assert.is(latestCheckpoint(out), second);
  readCheckpoint(second, { fingerprint: "fp-model-a" });

  const third = writeCheckpoint(out, ckptData(60), { keep: 2 });
  assert.equal(listCheckpoints(out), [second, third]);
  assert.is(fs.existsSync(tmp), false, "dead writer's temp folder removed");
  assert.is(fs.existsSync(live), true, "live writer's temp folder kept");
  assert.is(fs.existsSync(broken), true, "incomplete ckpt folder not deleted");
  assert.is(fs.existsSync(broken2), true);
});

test("corruption is detected and the message names the file and the earlier checkpoint", () => {
  const out = tmpDir();
  const first = writeCheckpoint(out, ckptData(1), { keep: 5 });
  const fresh = () => writeCheckpoint(out, ckptData(2), { keep: 5 });

  // flip one byte of tensor data
  let dir = fresh();
  const w = path.join(dir, "weights.safetensors");
  const bytes = fs.readFileSync(w);
  bytes[bytes.length - 1] ^= 0x01;
  fs.writeFileSync(w, bytes);
  let e = throwsCkpt(() => readCheckpoint(dir), "CKPT_CORRUPT", /weights\.safetensors/, /corrupt/, /sha256/);
  assert.ok(e.message.includes(`resume from the earlier checkpoint ${first}`), e.message);
  assert.is(e.file, w);

  // truncated file
  dir = fresh();
  fs.truncateSync(path.join(dir, "optimizer.safetensors"), 20);
  throwsCkpt(() => readCheckpoint(dir), "CKPT_CORRUPT", /optimizer\.safetensors is 20 bytes but the manifest records \d+/, /earlier checkpoint/);

  // missing file
  dir = fresh();
  fs.rmSync(path.join(dir, "state.json"));
  throwsCkpt(() => readCheckpoint(dir), "CKPT_MISSING_FILE", /state\.json is missing/);

  // missing / garbled manifest
  dir = fresh();
  fs.rmSync(path.join(dir, "manifest.json"));
  throwsCkpt(() => readCheckpoint(dir), "CKPT_MANIFEST", /manifest\.json is missing/);
  dir = fresh();
  fs.writeFileSync(path.join(dir, "manifest.json"), "{not json");
  throwsCkpt(() => readCheckpoint(dir), "CKPT_MANIFEST", /manifest\.json is not valid JSON/);

  // a consistent-looking manifest over a damaged safetensors file (sha recomputed by an attacker/tool)
  dir = fresh();
  const m = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
  fs.writeFileSync(path.join(dir, "weights.safetensors"), "garbage!");
  m.files[0].bytes = 8;
  m.files[0].sha256 = createHash("sha256").update("garbage!").digest("hex");
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(m));
  throwsCkpt(() => readCheckpoint(dir), "CKPT_CORRUPT", /weights\.safetensors is not a valid safetensors file/);

  // newer format version
  dir = fresh();
  const m2 = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
  m2.version = 99;
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(m2));
  throwsCkpt(() => readCheckpoint(dir), "CKPT_VERSION", /format version 99/, /upgrade nnetc/);

  // no earlier checkpoint: the message says so
  const out2 = tmpDir();
  const only = writeCheckpoint(out2, ckptData(5), { keep: 5 });
  fs.appendFileSync(path.join(only, "state.json"), " ");
  throwsCkpt(() => readCheckpoint(only), "CKPT_CORRUPT", /state\.json/, /no earlier checkpoint/);

  throwsCkpt(() => readCheckpoint(path.join(out2, "nope")), "CKPT_MANIFEST", /does not exist/);
});

test("a checkpoint of a different model is refused", () => {
  const out = tmpDir();
  const dir = writeCheckpoint(out, ckptData(3, "fp-old"), { keep: 2 });
  throwsCkpt(() => readCheckpoint(dir, { fingerprint: "fp-new" }), "CKPT_FINGERPRINT", /checkpoint was written for a different model/, /fp-old/, /fp-new/);
  readCheckpoint(dir, { fingerprint: "fp-old" });
  readCheckpoint(dir);
});

test("writeFileAtomic writes, replaces, and leaves no temporary files", () => {
  const d = tmpDir();
  const p = path.join(d, "metrics.json");
  writeFileAtomic(p, "one");
  writeFileAtomic(p, new Uint8Array([116, 119, 111]));
  assert.is(fs.readFileSync(p, "utf8"), "two");
  assert.equal(fs.readdirSync(d), ["metrics.json"]);
  throwsCkpt(() => writeFileAtomic(path.join(d, "missing-dir", "x"), "x"), "CKPT_IO", /missing-dir/);
});

// ── TensorFlow.js weights ─────────────────────────────────────────────────────────────────────────

function tfjsModel(dir: string, opts: { dropShard?: boolean; extraByte?: boolean } = {}) {
  // group 0: a float32 kernel split across two shards, an int32 weight, a bool weight
  const kernel = new Float32Array([0.5, -1, 2, 3.25, -4, 1e-3]);
  const ids = new Int32Array([-7, 0, 123456]);
  const g0 = Buffer.concat([Buffer.from(kernel.buffer), Buffer.from(ids.buffer), Buffer.from([1, 0])]);
  fs.writeFileSync(path.join(dir, "group1-shard1of2.bin"), g0.subarray(0, 10));
  if (!opts.dropShard) fs.writeFileSync(path.join(dir, "group1-shard2of2.bin"), g0.subarray(10));
  // group 1: quantized weights
  const u8 = Buffer.from([0, 1, 255]);
  const u16 = Buffer.alloc(4);
  u16.writeUInt16LE(0, 0);
  u16.writeUInt16LE(1000, 2);
  const f16 = Buffer.alloc(4);
  f16.writeUInt16LE(0x3c00, 0);
  f16.writeUInt16LE(0xc100, 2);
  const q8i = Buffer.from([0, 3]);
  fs.writeFileSync(path.join(dir, "group2-shard1of1.bin"), Buffer.concat([u8, u16, f16, q8i, opts.extraByte ? Buffer.from([0]) : Buffer.alloc(0)]));
  const modelJson = {
    format: "layers-model",
    generatedBy: "hand",
    modelTopology: {},
    weightsManifest: [
      {
        paths: ["group1-shard1of2.bin", "group1-shard2of2.bin"],
        weights: [
          { name: "dense/kernel", shape: [2, 3], dtype: "float32" },
          { name: "emb/ids", shape: [3], dtype: "int32" },
          { name: "mask", shape: [2], dtype: "bool" },
        ],
      },
      {
        paths: ["group2-shard1of1.bin"],
        weights: [
          { name: "q/u8", shape: [3], dtype: "float32", quantization: { dtype: "uint8", scale: 0.5, min: -1, original_dtype: "float32" } },
          { name: "q/u16", shape: [1, 2], dtype: "float32", quantization: { dtype: "uint16", scale: 0.001, min: 2 } },
          { name: "q/f16", shape: [2], dtype: "float32", quantization: { dtype: "float16", original_dtype: "float32" } },
          { name: "q/int", shape: [2], dtype: "int32", quantization: { dtype: "uint8", scale: 0.4, min: 10 } },
        ],
      },
    ],
  };
  const p = path.join(dir, "model.json");
  fs.writeFileSync(p, JSON.stringify(modelJson));
  return { p, kernel, ids, modelJson };
}

test("loadTfjsWeights reads float32/int32/bool weights across shards and dequantizes", () => {
  const d = tmpDir();
  const { p, kernel, ids } = tfjsModel(d);
  const w = loadTfjsWeights(p);
  assert.equal(Object.keys(w), ["dense/kernel", "emb/ids", "mask", "q/u8", "q/u16", "q/f16", "q/int"]);
  assert.is(w["dense/kernel"]!.dtype, "F32");
  assert.equal(w["dense/kernel"]!.shape, [2, 3]);
  assert.is(w["dense/kernel"]!.data.length, 6);
  assert.equal(Array.from(w["dense/kernel"]!.data as Float32Array), Array.from(kernel));
  assert.equal(Array.from(w["emb/ids"]!.data as Int32Array), Array.from(ids));
  assert.is(w["emb/ids"]!.dtype, "I32");
  assert.is(w["mask"]!.dtype, "BOOL");
  assert.equal(Array.from(w["mask"]!.data as Uint8Array), [1, 0]);
  assert.equal(Array.from(w["q/u8"]!.data as Float32Array), [-1, -0.5, 126.5]);
  assert.equal(w["q/u16"]!.shape, [1, 2]);
  assert.equal(Array.from(w["q/u16"]!.data as Float32Array), [2, Math.fround(1000 * 0.001 + 2)]);
  assert.equal(Array.from(w["q/f16"]!.data as Float32Array), [1, -2.5]);
  assert.is(w["q/int"]!.dtype, "I32");
  assert.equal(Array.from(w["q/int"]!.data as Int32Array), [10, 11]);
  // the result can be written as safetensors directly
  sameTensors(w, decodeSafetensors(encodeSafetensors(w)).tensors);
});

test("loadTfjsWeights: clear errors for missing shards, size mismatches, bad model.json", () => {
  let d = tmpDir();
  let { p } = tfjsModel(d, { dropShard: true });
  throwsCkpt(() => loadTfjsWeights(p), "TFJS_SHARD", /group1-shard2of2\.bin/, /is missing/, /model\.json/);

  d = tmpDir();
  ({ p } = tfjsModel(d, { extraByte: true }));
  throwsCkpt(() => loadTfjsWeights(p), "TFJS_SIZE", /hold 14 bytes but its 4 weights need 13/);

  d = tmpDir();
  ({ p } = tfjsModel(d));
  fs.truncateSync(path.join(d, "group1-shard2of2.bin"), 3);
  throwsCkpt(() => loadTfjsWeights(p), "TFJS_SIZE", /weightsManifest\[0\]/, /truncated or belong to another model/);

  throwsCkpt(() => loadTfjsWeights(path.join(d, "nothing.json")), "TFJS_MODEL_JSON", /does not exist/);
  fs.writeFileSync(path.join(d, "bad.json"), "{");
  throwsCkpt(() => loadTfjsWeights(path.join(d, "bad.json")), "TFJS_MODEL_JSON", /not valid JSON/);
  fs.writeFileSync(path.join(d, "nomanifest.json"), JSON.stringify({ modelTopology: {} }));
  throwsCkpt(() => loadTfjsWeights(path.join(d, "nomanifest.json")), "TFJS_MODEL_JSON", /weightsManifest/);

  const { modelJson } = tfjsModel(d);
  const edit = (f: (m: any) => void) => {
    const m = structuredClone(modelJson);
    f(m);
    fs.writeFileSync(path.join(d, "edit.json"), JSON.stringify(m));
    return path.join(d, "edit.json");
  };
  throwsCkpt(() => loadTfjsWeights(edit((m) => (m.weightsManifest[0].weights[0].dtype = "string"))), "TFJS_DTYPE", /"string"/);
  throwsCkpt(() => loadTfjsWeights(edit((m) => (m.weightsManifest[1].weights[0].quantization.dtype = "int4"))), "TFJS_DTYPE", /"int4"/);
  throwsCkpt(() => loadTfjsWeights(edit((m) => delete m.weightsManifest[1].weights[0].quantization.scale)), "TFJS_MODEL_JSON", /scale and min/);
  throwsCkpt(() => loadTfjsWeights(edit((m) => (m.weightsManifest[1].weights[1].name = "q/u8"))), "TFJS_MODEL_JSON", /"q\/u8" appears twice/);
  throwsCkpt(() => loadTfjsWeights(edit((m) => (m.weightsManifest[0].weights[0].shape = [2, -3]))), "TFJS_MODEL_JSON", /non-negative/);
  throwsCkpt(() => loadTfjsWeights(edit((m) => delete m.weightsManifest[0].paths)), "TFJS_MODEL_JSON", /"paths"/);
});

test.run();
