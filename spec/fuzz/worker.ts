// A worker thread that runs fuzz targets (./targets.ts) on the texts it is sent, so that the caller can time
// every input out: a target that loops never yields, and only ending its thread stops it (./pool.ts).
import { parentPort } from "node:worker_threads";
import { RUN, type Target } from "./targets.js";

export interface FuzzJob {
  id: number;
  target: Target;
  text: string;
}

export interface FuzzDone {
  id: number;
  problems: string[];
  ms: number;
}

parentPort?.on("message", (job: FuzzJob) => {
  const t0 = performance.now();
  let problems: string[];
  try {
    problems = RUN[job.target](job.text);
  } catch (e) {
    problems = [`the target threw: ${String(e)}`];
  }
  parentPort!.postMessage({ id: job.id, problems, ms: performance.now() - t0 } satisfies FuzzDone);
});
