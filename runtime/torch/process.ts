// The PyTorch engine's process: runtime/torch/engine.py started once with a Python that has torch, spoken to
// in JSON lines (one request, one reply, in order). Tensors travel as safetensors files in a private
// temporary folder. What the Python side reports as an error is a TorchError naming the emitted module's
// line; a Python that cannot start, has no torch or too old a one is a numbered RunError (NN7001–NN7003).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RunError } from "../errors.js";
import { runError } from "../run_diagnostics.js";

/** runtime/torch/engine.py in the package, whether this code runs from dist/runtime/torch/ or bundled into dist/nnetc.mjs. */
export const ENGINE_PY = ["../../../runtime/torch/engine.py", "../runtime/torch/engine.py"].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((f) => existsSync(f)) ?? "runtime/torch/engine.py";

/** An exception inside the engine (Python side): "Type: message", and its traceback's frames outside torch ("FILE:LINE in FUNCTION", innermost last). */
export class TorchError extends RunError {
  constructor(
    message: string,
    readonly frames: readonly string[] = [],
  ) {
    super(message);
  }
}

/** The project's Python environment (.venv at the package's root, made by scripts/setup.mjs), if there is one. */
const VENV_PYTHON = ["../../../.venv/bin/python", "../.venv/bin/python"].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((f) => existsSync(f));

/**
 * The Python that runs the engine: NNETC_PYTHON, else the project's .venv (Debian's python3 with its
 * python3-torch, plus runtime/torch/requirements.txt), else Debian's /usr/bin/python3, else python3.
 */
export function pythonFor(): string {
  return process.env.NNETC_PYTHON || VENV_PYTHON || (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
}

/** What a Python with torch says of itself (engine.py's hello). */
export interface TorchHello {
  torch: string;
  python: string;
  cuda: boolean;
  cuda_devices: number;
  mps: boolean;
}

type Probe = { ok: true; hello: TorchHello } | { ok: false; why: string; ran: boolean };

/** Whether `python` can import torch and numpy, and what it says of itself; a reason when it cannot. Asked once per Python. */
export function probeTorch(python = pythonFor()): Probe {
  const known = probed.get(python);
  if (known) return known;
  const r = probeOnce(python);
  probed.set(python, r);
  return r;
}

const probed = new Map<string, Probe>();

function probeOnce(python: string): Probe {
  const r = spawnSync(python, [ENGINE_PY, "--hello"], { encoding: "utf8", timeout: 120_000 });
  if (r.error) return { ok: false, ran: false, why: (r.error as NodeJS.ErrnoException).code === "ENOENT" ? "no such program" : ((r.error as NodeJS.ErrnoException).code ?? r.error.message) };
  if (r.status !== 0) return { ok: false, ran: true, why: r.stderr.trim().split("\n").pop() || `exit code ${r.status}` };
  try {
    return { ok: true, hello: JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as TorchHello };
  } catch {
    return { ok: false, ran: true, why: `it answered ${JSON.stringify(r.stdout.trim().slice(0, 200))} (is it Python 3?)` };
  }
}

/** Whether a torch version string ("1.13.0a0", "2.4.1+cu121") is 1.13 or newer. */
export function torchSupported(version: string): boolean {
  const [major, minor] = version.split(".").map((x) => parseInt(x, 10));
  return major! > 1 || (major === 1 && minor! >= 13);
}

/** Refuse a Python that cannot run the engine: NN7001 (none), NN7002 (no torch or numpy), NN7003 (torch < 1.13). */
export function checkPython(python = pythonFor()): TorchHello {
  const probe = probeTorch(python);
  if (!probe.ok) throw probe.ran ? runError("noTorch", { python, why: probe.why }) : runError("noPython", { python, why: probe.why });
  if (!torchSupported(probe.hello.torch)) throw runError("torchTooOld", { python, version: probe.hello.torch });
  return probe.hello;
}

interface Pending {
  resolve: (r: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

export class TorchProcess {
  private next = 1;
  private pending = new Map<number, Pending>();
  private buffer = "";
  private stderr = "";
  private exited: string | null = null;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      this.buffer += chunk;
      for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (!line.trim()) continue;
        const reply = JSON.parse(line) as Record<string, unknown> & { id: number; ok: boolean; error?: string; frames?: string[] };
        const p = this.pending.get(reply.id);
        this.pending.delete(reply.id);
        if (!p) continue;
        if (reply.ok) p.resolve(reply);
        else p.reject(new TorchError(reply.error ?? "unknown error", reply.frames ?? []));
      }
    });
    // A write to a process that has just died fails with EPIPE; its exit (below) rejects what was asked.
    child.stdin.on("error", () => {});
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (s: string) => {
      this.stderr = (this.stderr + s).slice(-20_000);
    });
    child.on("exit", (code, signal) => {
      this.exited = signal ? `killed by ${signal}` : `exited with code ${code}`;
      const tail = this.stderr.trim().split("\n").slice(-5).join("\n");
      for (const p of this.pending.values()) p.reject(new TorchError(`its process ${this.exited}${tail ? `:\n${tail}` : ""}`));
      this.pending.clear();
    });
  }

  /** Start the engine with `python`, checked first to have torch ≥ 1.13 (NN7001, NN7002, NN7003). */
  static async start(python = pythonFor()): Promise<TorchProcess> {
    checkPython(python);
    const child = spawn(python, ["-u", ENGINE_PY], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
    const p = new TorchProcess(child);
    await p.request("hello");
    return p;
  }

  /** One request; its reply (a rejected promise with a TorchError for an exception on the Python side). */
  request(cmd: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(new TorchError(`its process ${this.exited}`));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(JSON.stringify({ id, cmd, ...args }) + "\n");
    });
  }

  /** Stop the process (its stdin closes; it exits when it has answered what it was asked). */
  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.child.stdin.end();
    await done;
  }
}
