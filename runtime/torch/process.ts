// The PyTorch engine's process: runtime/torch/engine.py started once with a Python that has torch, spoken to
// in JSON lines (one request, one reply, in order). Tensors travel as safetensors files in a private
// temporary folder. What the Python side reports as an error is a TorchError naming the emitted module's
// line; a Python that cannot start, or has no torch, is a TorchSetupError saying what to install.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RunError } from "../errors.js";

/** runtime/torch/engine.py in the package, whether this code runs from dist/runtime/torch/ or bundled into dist/nnetc.mjs. */
export const ENGINE_PY = ["../../../runtime/torch/engine.py", "../runtime/torch/engine.py"].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((f) => existsSync(f)) ?? "runtime/torch/engine.py";

/** An exception inside the engine (Python side): its type and message, and where in the emitted module. */
export class TorchError extends RunError {
  constructor(
    message: string,
    readonly where: string,
  ) {
    super(message);
  }
}

/** No Python, or no torch in it. */
export class TorchSetupError extends RunError {}

/** The Python that runs the engine: NNETC_PYTHON, else Debian's /usr/bin/python3 (python3-torch), else python3. */
export function pythonFor(): string {
  return process.env.NNETC_PYTHON || (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
}

/** Whether `python` can import torch and numpy, and its torch version; a reason when it cannot. */
export function probeTorch(python = pythonFor()): { ok: true; torch: string } | { ok: false; why: string } {
  const r = spawnSync(python, ["-c", "import numpy, torch; print(torch.__version__)"], { encoding: "utf8", timeout: 60_000 });
  if (r.error) return { ok: false, why: `cannot run ${python} (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})` };
  if (r.status !== 0) return { ok: false, why: `${python} cannot import torch: ${r.stderr.trim().split("\n").pop()}` };
  return { ok: true, torch: r.stdout.trim() };
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
        const reply = JSON.parse(line) as Record<string, unknown> & { id: number; ok: boolean; error?: string; where?: string };
        const p = this.pending.get(reply.id);
        this.pending.delete(reply.id);
        if (!p) continue;
        if (reply.ok) p.resolve(reply);
        else p.reject(new TorchError(reply.error ?? "unknown error", reply.where ?? ""));
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (s: string) => {
      this.stderr = (this.stderr + s).slice(-20_000);
    });
    child.on("exit", (code, signal) => {
      this.exited = signal ? `killed by ${signal}` : `exited with code ${code}`;
      const tail = this.stderr.trim().split("\n").slice(-5).join("\n");
      for (const p of this.pending.values()) p.reject(new TorchError(`the PyTorch engine ${this.exited}${tail ? `:\n${tail}` : ""}`, ""));
      this.pending.clear();
    });
  }

  /** Start the engine with `python` (checked to have torch first). */
  static async start(python = pythonFor()): Promise<TorchProcess> {
    const probe = probeTorch(python);
    if (!probe.ok) throw new TorchSetupError(`the torch engine needs PyTorch: ${probe.why}; install it (Debian: apt-get install python3-torch libopenblas0-pthread) or set NNETC_PYTHON to a Python that has torch`);
    const child = spawn(python, ["-u", ENGINE_PY], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
    const p = new TorchProcess(child);
    await p.request("hello");
    return p;
  }

  /** One request; its reply (a rejected promise with a TorchError for an exception on the Python side). */
  request(cmd: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(new TorchError(`the PyTorch engine ${this.exited}`, ""));
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
