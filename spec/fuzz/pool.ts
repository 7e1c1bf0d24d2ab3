// Worker threads that run fuzz targets with a wall-clock limit per input. A worker whose input runs past the
// limit is ended (a hang cannot be interrupted otherwise) and replaced; a worker that dies (out of memory,
// a crash in native code) fails only the input it was running. Loading the compiler in a fresh thread is not
// timed: each worker runs a warm-up text first.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { Target } from "./targets.js";
import type { FuzzDone, FuzzJob } from "./worker.js";

export type Outcome = { problems: string[]; ms: number };

const WARM_UP = "model M { input x: f32[batch, 2]\n output y = x -> dense(2) }\n";

class Slot {
  private worker: Worker | undefined;
  private next = 0;

  private async ready(): Promise<Worker> {
    if (this.worker) return this.worker;
    // spec/run.mjs sets NO_COLOR and uvu FORCE_COLOR: a worker with both warns on start. Color is no use here.
    const { FORCE_COLOR: _, ...env } = process.env;
    const w = new Worker(new URL("./worker.js", import.meta.url), { env });
    w.unref();
    this.worker = w;
    for (const target of ["check", "fmt", "lsp"] as const) {
      const r = await this.send(w, target, WARM_UP, 120_000);
      if (r.problems.length) throw new Error(`the fuzz worker did not start: ${r.problems.join("; ")}`);
    }
    return w;
  }

  async run(target: Target, text: string, limitMs: number): Promise<Outcome> {
    return this.send(await this.ready(), target, text, limitMs);
  }

  private send(w: Worker, target: Target, text: string, limitMs: number): Promise<Outcome> {
    const id = this.next++;
    const t0 = performance.now();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        w.off("message", onMessage);
        w.off("error", onError);
        w.off("exit", onExit);
      };
      const drop = () => {
        void w.terminate();
        if (this.worker === w) this.worker = undefined;
      };
      const onMessage = (r: FuzzDone) => {
        if (r.id !== id) return;
        done();
        resolve({ problems: r.problems, ms: r.ms });
      };
      const onError = (e: Error) => {
        done();
        drop();
        resolve({ problems: [`${target}: the worker died: ${e.message}`], ms: performance.now() - t0 });
      };
      const onExit = (code: number) => {
        done();
        drop();
        resolve({ problems: [`${target}: the worker exited with code ${code}`], ms: performance.now() - t0 });
      };
      const timer = setTimeout(() => {
        done();
        drop();
        resolve({ problems: [`${target} did not finish within ${limitMs} ms`], ms: limitMs });
      }, limitMs);
      w.on("message", onMessage);
      w.on("error", onError);
      w.on("exit", onExit);
      w.postMessage({ id, target, text } satisfies FuzzJob);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }
}

/** `size` workers; `run` waits for a free one. */
export class Pool {
  private readonly free: Slot[];
  private readonly waiting: ((s: Slot) => void)[] = [];
  private readonly slots: Slot[];

  constructor(
    size = Math.max(1, Math.min(2, availableParallelism())),
    readonly limitMs = 10_000,
  ) {
    this.slots = Array.from({ length: size }, () => new Slot());
    this.free = [...this.slots];
  }

  async run(target: Target, text: string, limitMs = this.limitMs): Promise<Outcome> {
    const slot = this.free.pop() ?? (await new Promise<Slot>((r) => this.waiting.push(r)));
    try {
      return await slot.run(target, text, limitMs);
    } finally {
      const w = this.waiting.shift();
      if (w) w(slot);
      else this.free.push(slot);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.close()));
  }
}
