// nnetc train --nproc N [--nnodes M --node-rank R --master HOST:PORT]: starts the workers of a data-parallel
// job on this machine, each one `nnetc train` with the same arguments and torchrun's environment contract
// (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) — so that torchrun, SLURM or a
// Kubernetes PyTorchJob can start the same workers instead. The workers meet through torch.distributed
// (runtime/torch/engine.py); this process only starts them, passes rank 0's output through, and when one
// dies reports its rank and cause and stops the others.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { diag, NO_SPAN } from "../diagnostics.js";
import { renderPlain } from "../render.js";

export interface LaunchOptions {
  /** The worker command: the nnetc script and its arguments, without the launcher's own flags. */
  argv: string[];
  nproc: number;
  nnodes: number;
  nodeRank: number;
  /** HOST:PORT of rank 0's rendezvous; null: 127.0.0.1 and a free port (one machine only). */
  master: string | null;
  out: (s: string) => void;
  err: (s: string) => void;
}

export class LaunchError extends Error {}

/** A port nothing listens on now (on 127.0.0.1). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The launcher's flags, checked; usage problems are LaunchErrors (exit code 2). */
export function launchPlan(o: { nproc?: string; nnodes?: string; nodeRank?: string; master?: string }): { nproc: number; nnodes: number; nodeRank: number; master: string | null } | null {
  if (o.nproc === undefined && o.nnodes === undefined && o.nodeRank === undefined && o.master === undefined) return null;
  const int = (v: string | undefined, d: number, name: string, min: number) => {
    if (v === undefined) return d;
    if (!/^\d+$/.test(v) || Number(v) < min) throw new LaunchError(`--${name} ${v}: give a whole number ≥ ${min}`);
    return Number(v);
  };
  const nproc = int(o.nproc, 1, "nproc", 1);
  const nnodes = int(o.nnodes, 1, "nnodes", 1);
  const nodeRank = int(o.nodeRank, 0, "node-rank", 0);
  if (nproc > 64) throw new LaunchError(`--nproc ${nproc}: at most 64 workers per machine`);
  if (nodeRank >= nnodes) throw new LaunchError(`--node-rank ${nodeRank}: machines are numbered 0 to ${nnodes - 1} (--nnodes ${nnodes})`);
  if (nnodes > 1 && o.master === undefined) throw new LaunchError("--nnodes above 1 needs --master HOST:PORT, the address of the machine with --node-rank 0 (the same on every machine)");
  if (o.master !== undefined) {
    const m = /^([^:\s]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(o.master);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new LaunchError(`--master ${o.master}: give HOST:PORT, e.g. 10.0.0.1:29500`);
  }
  return { nproc, nnodes, nodeRank, master: o.master ?? null };
}

/** Start this machine's workers and wait for them: 0 when all finish, else the first failure's exit code. */
export async function launch(o: LaunchOptions): Promise<number> {
  const master = o.master ?? `127.0.0.1:${await freePort()}`;
  const cut = master.lastIndexOf(":");
  const addr = master.slice(0, cut).replace(/^\[|\]$/g, "");
  const port = master.slice(cut + 1);
  const world = o.nnodes * o.nproc;
  const loopback = addr === "127.0.0.1" || addr === "localhost" || addr === "::1";
  if (o.nodeRank === 0) o.err(`launching ${o.nproc} worker${o.nproc === 1 ? "" : "s"} of ${world} (machine ${o.nodeRank} of ${o.nnodes}, rendezvous ${master})\n`);
  const children: { rank: number; child: ChildProcess; tail: string; code: number | null; signal: NodeJS.Signals | null }[] = [];
  let failed: { rank: number; code: number | null; signal: NodeJS.Signals | null; tail: string } | null = null;
  const done = new Promise<void>((resolve) => {
    let running = o.nproc;
    for (let i = 0; i < o.nproc; i++) {
      const rank = o.nodeRank * o.nproc + i;
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(i),
        WORLD_SIZE: String(world),
        LOCAL_WORLD_SIZE: String(o.nproc),
        GROUP_RANK: String(o.nodeRank),
        MASTER_ADDR: addr,
        MASTER_PORT: port,
        ...(loopback && !process.env.GLOO_SOCKET_IFNAME ? { GLOO_SOCKET_IFNAME: "lo" } : {}),
      };
      const child = spawn(process.execPath, o.argv, { env, stdio: ["ignore", "pipe", "pipe"] });
      const entry = { rank, child, tail: "", code: null as number | null, signal: null as NodeJS.Signals | null };
      children.push(entry);
      child.stdout!.on("data", (b: Buffer) => {
        if (rank === 0) o.out(b.toString());
      });
      child.stderr!.on("data", (b: Buffer) => {
        const s = b.toString();
        entry.tail = (entry.tail + s).slice(-4000);
        if (rank === 0) o.err(s);
        else o.err(s.replace(/^(?=.)/gm, `[rank ${rank}] `));
      });
      child.on("exit", (code, signal) => {
        entry.code = code;
        entry.signal = signal;
        if ((code !== 0 || signal) && !failed) {
          failed = { rank, code, signal, tail: entry.tail };
          // One worker down stops the job: the others would wait for it in every collective.
          for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGTERM");
          setTimeout(() => {
            for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
          }, 5000).unref();
        }
        if (--running === 0) resolve();
      });
    }
  });
  // Ctrl-C: every worker stops at the next epoch (with a checkpoint from rank 0); twice: at once.
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    for (const c of children) if (c.child.exitCode === null) c.child.kill(interrupts > 1 ? "SIGKILL" : "SIGINT");
  };
  process.on("SIGINT", onSigint);
  try {
    await done;
  } finally {
    process.off("SIGINT", onSigint);
  }
  const f = failed as { rank: number; code: number | null; signal: NodeJS.Signals | null; tail: string } | null;
  if (!f) return 0;
  // nnetc's own exit codes (1 diverged, 2 refused, 130 interrupted): the worker said why, its lines passed through.
  if (!f.signal && (f.code === 1 || f.code === 2 || f.code === 130)) return f.code;
  const how = f.signal ? `was killed by ${f.signal}` : `exited with code ${f.code}`;
  const last = f.tail.trim().split("\n").filter((l) => l.trim()).slice(-3).join("\n    ");
  const d = diag("workerDied", NO_SPAN, { rank: f.rank, how, last: last ? `\n    ${last}` : "" });
  o.err(`nnetc: ${renderPlain(d)}\n`);
  return 1;
}
