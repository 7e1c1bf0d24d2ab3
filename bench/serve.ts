// npm run bench:serve: nnetc serve under load on loopback (autocannon), for the MLP, the CNN and ResNet-50 with
// seeded weights (bench/seeded.ts) on ONNX Runtime (-O2, the fastest engine on CPU: bench/onnx.ts): throughput
// and p50/p99 latency at 1, 8 and 64 concurrent clients, each sending one-row v2 infer requests, with batching on
// (the defaults) and off (--max-batch 1), against the same engine in-process without HTTP running batches of as
// many rows as there are clients back to back (what a perfect server could give them). The server is a separate
// `nnetc serve` process, so autocannon's work is not counted as the server's; on a small machine they share
// cores. Bounded: SECONDS per cell (default 3; ResNet-50 twice that; a cell whose first batch outlasts it shows 0
// requests). MODELS=mlp,fashion_cnn and CLIENTS=1,8 narrow it. Reported, never asserted.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import autocannon from "autocannon";
import { compile } from "../compiler/index.js";
import { readFileSync } from "node:fs";
import { encodeSafetensors } from "../runtime/checkpoint/index.js";
import { initBackend } from "../runtime/backend.js";
import { loadOrt, OnnxSession } from "../runtime/onnx_engine.js";
import { fingerprint } from "../runtime/weights.js";
import { SERVE_DEFAULTS } from "../runtime/serve.js";
import { ROOT } from "./common.js";
import { seededHostWeights, seededInferenceModel } from "./seeded.js";

const SECONDS = Number(process.env.SECONDS ?? 3);
const CLIENTS = (process.env.CLIENTS ?? "1,8,64").split(",").map(Number);
const MODELS = (process.env.MODELS ?? "mlp,fashion_cnn,resnet50").split(",");
const CLI = path.join(ROOT, "dist/nnetc.mjs");

/** A run folder of the model's seeded weights, as nnetc train would leave model.safetensors. */
function seededRun(name: string, dir: string): string {
  const rel = `models/${name}.nnet`;
  const res = compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), { readFile: (f) => ({ text: readFileSync(path.join(ROOT, f), "utf8") }) });
  const m0 = res.module.models.find((m) => m.name === res.module.plans[0]?.model) ?? res.module.models[res.module.models.length - 1]!;
  const run = path.join(dir, name);
  mkdirSync(run, { recursive: true });
  writeFileSync(path.join(run, "model.safetensors"), encodeSafetensors(seededHostWeights(m0).host, { fingerprint: fingerprint(m0) }));
  return run;
}

async function startServe(name: string, run: string, extra: string[]): Promise<{ url: string; stop: () => Promise<void> }> {
  const p = spawn(process.execPath, [CLI, "serve", path.join(ROOT, `models/${name}.nnet`), "--weights", run, "--engine", "onnx", "--port", "0", "--no-watch", "--backend", "cpu", ...extra], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  const url = await new Promise<string>((resolve, reject) => {
    p.stderr.on("data", (b: Buffer) => {
      err += b.toString();
      const m = /"event":"listening","url":"([^"]+)"/.exec(err);
      if (m) resolve(m[1]!);
    });
    p.on("exit", (c) => reject(new Error(`nnetc serve exited ${c}: ${err}`)));
  });
  return { url, stop: () => new Promise((r) => (p.kill("SIGTERM"), p.on("exit", () => r()))) };
}

function load(url: string, model: string, body: string, connections: number, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ url: `${url}/v2/models/${model}/infer`, method: "POST", headers: { "content-type": "application/json" }, body, connections, duration: seconds, timeout: 60 }, (e, r) => (e ? reject(e) : resolve(r)));
  });
}

async function main(): Promise<void> {
  const ort = await loadOrt();
  await initBackend("cpu");
  const tmp = mkdtempSync(path.join(os.tmpdir(), "nnetc-bench-serve-"));
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"} (load ${os.loadavg()[0]!.toFixed(1)}), node ${process.version}; nnetc serve --engine onnx (onnxruntime-node ${ort.env.versions.common}, -O2) in its own process, autocannon in this one, loopback; one-row requests; ${SECONDS} s per cell (ResNet-50 ${2 * SECONDS} s); batching on: --max-batch ${SERVE_DEFAULTS.maxBatch} --max-delay-ms ${SERVE_DEFAULTS.maxDelayMs}`);
  console.log("model".padEnd(12) + "clients".padStart(8) + "  " + "in-process rows/s".padStart(18) + "served rows/s".padStart(15) + "p50 ms".padStart(9) + "p99 ms".padStart(9) + "  ×in-proc".padStart(10) + "  │ no batching rows/s".padStart(22) + "p50 ms".padStart(9) + "p99 ms".padStart(9) + "errors".padStart(8));
  try {
    for (const name of MODELS) {
      const seconds = name === "resnet50" ? 2 * SECONDS : SECONDS;
      const { model, weights, rand } = await seededInferenceModel(name);
      const inp = model.inputs[0]!;
      const per = inp.shape.slice(1).reduce<number>((a, b) => a * (b as number), 1);
      const row = Array.from({ length: per }, () => +rand().toFixed(4));
      const body = JSON.stringify({ inputs: [{ name: inp.name, shape: [1, ...inp.shape.slice(1)], datatype: "FP32", data: row }] });
      // In-process: the engine alone, batches of as many rows as clients, back to back.
      const session = await OnnxSession.create(model, weights);
      const inProcess = async (rows: number): Promise<number> => {
        const data = new Float32Array(rows * per);
        for (let r = 0; r < rows; r++) data.set(row, r * per);
        const feeds = { [inp.name]: { shape: [rows, ...(inp.shape.slice(1) as number[])], data } };
        await session.run(feeds);
        let n = 0;
        const t0 = performance.now();
        while (performance.now() - t0 < Math.min(seconds, 2) * 1000) {
          await session.run(feeds);
          n += rows;
        }
        return n / ((performance.now() - t0) / 1000);
      };
      const base = new Map<number, number>();
      for (const c of CLIENTS) base.set(c, await inProcess(c));
      await session.dispose();
      const run = seededRun(name, tmp);
      const on = await startServe(name, run, []);
      const resOn = new Map<number, autocannon.Result>();
      try {
        await load(on.url, model.name, body, 1, 1);
        for (const c of CLIENTS) resOn.set(c, await load(on.url, model.name, body, c, seconds));
      } finally {
        await on.stop();
      }
      const off = await startServe(name, run, ["--max-batch", "1"]);
      const resOff = new Map<number, autocannon.Result>();
      try {
        await load(off.url, model.name, body, 1, 1);
        for (const c of CLIENTS) resOff.set(c, await load(off.url, model.name, body, c, seconds));
      } finally {
        await off.stop();
      }
      const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toPrecision(2));
      for (const c of CLIENTS) {
        const a = resOn.get(c)!;
        const b = resOff.get(c)!;
        const rps = (r: autocannon.Result) => r["2xx"] / r.duration;
        console.log(name.padEnd(12) + String(c).padStart(8) + "  " + f(base.get(c)!).padStart(18) + f(rps(a)).padStart(15) + String(a.latency.p50).padStart(9) + String(a.latency.p99).padStart(9) + `${(rps(a) / base.get(c)!).toFixed(2)}×`.padStart(10) + "  │" + f(rps(b)).padStart(20) + String(b.latency.p50).padStart(9) + String(b.latency.p99).padStart(9) + String(a.errors + a.non2xx + b.errors + b.non2xx).padStart(8));
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
