// A small, serializable PRNG (sfc32, seeded through splitmix32) and a seeded Fisher–Yates shuffle, so that
// training can checkpoint `rng.state()` and resume with exactly the same data order.
import { DataError } from "./errors.js";

function splitmix32(x: number): () => number {
  let s = x >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Any finite number is a seed; integers up to 2^53 are distinct seeds. */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new DataError(`random seed must be a finite number, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(Math.abs(seed) / 4294967296) >>> 0;
    const mix = splitmix32(lo ^ Math.imul(hi, 0x27d4eb2f) ^ (seed < 0 ? 0x5bd1e995 : 0));
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix() | 1;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Four unsigned 32-bit integers; `Rng.from(state)` continues the sequence exactly. JSON-safe. */
  state(): number[] {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  /** Restore a generator from `state()` (or its JSON text). */
  static from(state: readonly number[] | string): Rng {
    let s: unknown = state;
    if (typeof state === "string") {
      try {
        s = JSON.parse(state);
      } catch {
        throw new DataError(`invalid random-generator state ${JSON.stringify(state.slice(0, 80))}: not JSON`);
      }
    }
    if (!Array.isArray(s) || s.length !== 4 || !s.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) {
      throw new DataError(`invalid random-generator state ${JSON.stringify(s)}: expected four unsigned 32-bit integers`);
    }
    const r = Object.create(Rng.prototype) as Rng;
    [r.a, r.b, r.c, r.d] = s as number[];
    return r;
  }
}

/** 0 … n-1 in a random order drawn from `rng` (Fisher–Yates; advances `rng` by n-1 draws). */
export function shuffledIndices(n: number, rng: Rng): Uint32Array {
  if (!Number.isInteger(n) || n < 0) throw new DataError(`cannot shuffle ${n} indices`);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}
