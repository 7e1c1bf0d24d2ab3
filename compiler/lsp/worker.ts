// The language server's checking worker (node:worker_threads): compiles one document per job with the host and
// project root the server would use (open documents win over the disk; the worker reads imported files
// itself) and returns what publishing needs as plain data: the LSP diagnostics and the files the check read.
// The server (server.ts) keeps at most one job in flight, terminates the worker to cancel a job a newer edit
// or a close made stale, and falls back to checking in-process when the worker cannot start.
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { loadProjectPlugins } from "../plugin/load.js";
import { TextDocument } from "vscode-languageserver-textdocument";
import type * as L from "vscode-languageserver";
import { lspDiagnostics, Workspace } from "./server.js";

/** What marks a worker thread as the checking worker (workerData[WORKER_FLAG] === true). */
export const WORKER_FLAG = "nnetcLspWorker";

export interface CheckJob {
  id: number;
  uri: string;
  version: number;
  /** Every open document (the one checked included): uri, version, text. */
  docs: [string, number, string][];
  /** The editor's workspace folders (absolute paths). */
  folders: string[];
  /** Load the document's project config (nnetc.config.mjs) first, as the server does: a worker is a thread of its own, with its own tables. */
  plugins?: boolean;
}

export type CheckResult = { id: number; uri: string; version: number; diagnostics: L.Diagnostic[]; reads: string[] } | { id: number; uri: string; version: number; missing: true };

/** One check, as the worker runs it (also the in-process fallback's code path: the same function). */
export function checkJob(job: CheckJob): CheckResult {
  const ws = new Workspace();
  ws.workspaceFolders = job.folders;
  for (const [uri, version, text] of job.docs) ws.docs.set(uri, TextDocument.create(uri, "nnet", version, text));
  const a = ws.analyze(job.uri);
  if (!a) return { id: job.id, uri: job.uri, version: job.version, missing: true };
  return { id: job.id, uri: job.uri, version: job.version, diagnostics: lspDiagnostics(a), reads: [...(ws.reads.get(job.uri) ?? [])] };
}

/** Whether this thread was started as the checking worker. */
export function isCheckWorker(): boolean {
  return !isMainThread && !!parentPort && (workerData as Record<string, unknown> | null)?.[WORKER_FLAG] === true;
}

/** The worker's loop: a job in, its result out. Says "ready" first, so the server can tell a worker that never started. */
export function runCheckWorker(): void {
  const port = parentPort!;
  // The worker shares the server's stdout, which carries the protocol: anything logged goes to stderr.
  console.log = console.info = console.debug = (...a: unknown[]) => console.error(...a);
  port.on("message", async (job: CheckJob) => {
    // the server sends one job at a time, so awaiting the config keeps results in order; its problems are the
    // server's to show (it loaded the same config)
    if (job.plugins && job.uri.startsWith("file:")) await loadProjectPlugins(path.dirname(fileURLToPath(job.uri))).catch(() => undefined);
    port.postMessage(checkJob(job));
  });
  port.postMessage("ready");
}
