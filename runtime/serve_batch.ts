// nnetc serve's dynamic batching: a model's requests wait in one queue; while the engine is busy they gather,
// and a batch leaves when it holds --max-batch rows or its oldest request has waited --max-delay-ms. A batch
// takes requests of equal per-sample sizes in arrival order, runs once, and each request gets back exactly its
// own rows. One batch runs at a time per model (the engines use every core for one run). Requests past the
// queue's length, or past their deadline, are refused with 503 and Retry-After.
import { HttpError, type HostInput } from "./serve_request.js";

/** An output's values, row-major. */
export interface HostOutput {
  shape: number[];
  data: Float32Array | Int32Array;
}

/** What a batch runs on: an engine holding one set of weights. */
export interface Runner {
  run(inputs: Record<string, HostInput>): Promise<Record<string, HostOutput>>;
  dispose(): Promise<void> | void;
}

export interface BatchOptions {
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  timeoutMs: number;
}

interface Item {
  inputs: Record<string, HostInput>;
  rows: number;
  key: string;
  arrived: number;
  done: boolean;
  timer: NodeJS.Timeout;
  resolve: (v: Record<string, HostOutput>) => void;
  reject: (e: unknown) => void;
}

export interface BatchEvents {
  /** A batch of `rows` rows from `requests` requests ran in `seconds`. */
  batch?(rows: number, requests: number, seconds: number): void;
  queue?(depth: number): void;
}

/** One model's queue and its current runner, swapped atomically between batches (hot reload). */
export class Batcher {
  private queue: Item[] = [];
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private runner: Runner;
  /** Runners replaced while a batch ran on them: disposed when it ends. */
  private retired: Runner[] = [];

  constructor(
    runner: Runner,
    private readonly o: BatchOptions,
    private readonly events: BatchEvents = {},
  ) {
    this.runner = runner;
  }

  get depth(): number {
    return this.queue.length;
  }

  /** The result of one request's rows; 503 when the queue is full or the deadline passes first. */
  submit(inputs: Record<string, HostInput>, rows: number, key: string): Promise<Record<string, HostOutput>> {
    if (this.queue.length >= this.o.maxQueue) return Promise.reject(new HttpError(503, "queue_full", `the queue holds ${this.o.maxQueue} requests (--max-queue); retry later`, 1));
    return new Promise((resolve, reject) => {
      const item: Item = {
        inputs,
        rows,
        key,
        arrived: performance.now(),
        done: false,
        resolve,
        reject,
        timer: setTimeout(() => {
          if (item.done) return;
          item.done = true;
          const i = this.queue.indexOf(item);
          if (i >= 0) this.queue.splice(i, 1);
          this.events.queue?.(this.queue.length);
          reject(new HttpError(503, "timeout", `no answer within ${this.o.timeoutMs} ms (--timeout-ms); the server is busy, retry later`, 1));
        }, this.o.timeoutMs),
      };
      this.queue.push(item);
      this.events.queue?.(this.queue.length);
      this.kick();
    });
  }

  /** Swap in new weights: the batch running now finishes on the old ones, every later batch runs on the new. */
  async swap(runner: Runner): Promise<void> {
    const old = this.runner;
    this.runner = runner;
    if (this.running) this.retired.push(old);
    else await old.dispose();
  }

  /** Wait for the queue to empty and the last batch to end (graceful shutdown), then dispose the runner. */
  async close(): Promise<void> {
    while (this.queue.length || this.running) await (this.running ?? new Promise((r) => setTimeout(r, 5)));
    if (this.timer) clearTimeout(this.timer);
    await this.runner.dispose();
  }

  private kick(): void {
    if (this.running || !this.queue.length) return;
    const rows = this.queue.reduce((a, x) => a + x.rows, 0);
    const waited = performance.now() - this.queue[0]!.arrived;
    if (rows >= this.o.maxBatch || waited >= this.o.maxDelayMs) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.running = this.dispatch().finally(() => {
        this.running = null;
        this.kick();
      });
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.kick();
      }, Math.max(0, this.o.maxDelayMs - waited));
    }
  }

  private async dispatch(): Promise<void> {
    // The oldest request's sizes decide the batch; later ones of the same sizes join it up to maxBatch rows.
    const first = this.queue[0]!;
    const take: Item[] = [];
    let rows = 0;
    for (const it of this.queue) {
      if (it.key !== first.key) continue;
      if (take.length && rows + it.rows > this.o.maxBatch) break;
      take.push(it);
      rows += it.rows;
    }
    this.queue = this.queue.filter((it) => !take.includes(it));
    this.events.queue?.(this.queue.length);
    const runner = this.runner;
    const t0 = performance.now();
    try {
      const inputs = take.length === 1 ? take[0]!.inputs : concatRows(take.map((t) => t.inputs), rows);
      const out = await runner.run(inputs);
      this.events.batch?.(rows, take.length, (performance.now() - t0) / 1000);
      let start = 0;
      for (const it of take) {
        const mine = take.length === 1 ? out : sliceRows(out, start, it.rows);
        start += it.rows;
        finish(it, () => it.resolve(mine));
      }
    } catch (e) {
      for (const it of take) finish(it, () => it.reject(e));
    } finally {
      for (const r of this.retired.splice(0)) await r.dispose();
    }
  }
}

function finish(it: Item, f: () => void): void {
  clearTimeout(it.timer);
  if (it.done) return;
  it.done = true;
  f();
}

/** Requests' inputs stacked along dimension 0. */
export function concatRows(parts: Record<string, HostInput>[], rows: number): Record<string, HostInput> {
  const out: Record<string, HostInput> = {};
  for (const name of Object.keys(parts[0]!)) {
    const first = parts[0]![name]!;
    const per = first.shape.slice(1).reduce((a, b) => a * b, 1);
    const data = first.data instanceof Int32Array ? new Int32Array(rows * per) : new Float32Array(rows * per);
    let at = 0;
    for (const p of parts) {
      data.set(p[name]!.data, at);
      at += p[name]!.data.length;
    }
    out[name] = { shape: [rows, ...first.shape.slice(1)], data };
  }
  return out;
}

/** Rows [start, start + n) of every output (copies: a request's answer holds nothing of another's). */
export function sliceRows(out: Record<string, HostOutput>, start: number, n: number): Record<string, HostOutput> {
  const mine: Record<string, HostOutput> = {};
  for (const [k, v] of Object.entries(out)) {
    const per = v.shape.slice(1).reduce((a, b) => a * b, 1);
    mine[k] = { shape: [n, ...v.shape.slice(1)], data: v.data.slice(start * per, (start + n) * per) };
  }
  return mine;
}
