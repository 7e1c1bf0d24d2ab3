// The language server checks documents off the main loop (compiler/lsp/worker.ts): requests are answered while
// a 1 MB document's check runs in the worker, a newer edit cancels the check in flight and only the latest
// version's diagnostics are published, closing a document drops its check, a worker that cannot start leaves
// checking in-process, and the bundled server (dist/nnetc.mjs lsp) starts its worker from the bundle itself.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type * as L from "vscode-languageserver";
import type { ServerOptions } from "../../compiler/lsp/server.js";
import { connect, type Client } from "../lsp-client.js";
import { ROOT } from "../helpers.js";

type Check = Parameters<NonNullable<ServerOptions["onCheck"]>>[0];

const dir = mkdtempSync(path.join(tmpdir(), "nnetc-lspw-"));
writeFileSync(path.join(dir, ".nnetroot"), "");
const SMALL = `model Small {
  input x: f32[batch, 4]
  h = x -> dense(8) -> relu
  output y = h -> dense(2)
}
`;
/** About 1 MB of small models (its check takes seconds: ~2 s on one free core). */
const BIG = Array.from({ length: 10925 }, (_, i) => `model M${i} {\n  input x: f32[batch, 4]\n  h = x -> dense(8) -> relu\n  output y = h -> dense(2)\n}\n`).join("");
const smallUri = pathToFileURL(path.join(dir, "small.nnet")).href;
const bigUri = pathToFileURL(path.join(dir, "big.nnet")).href;
const bigLines = BIG.split("\n").length - 1;

const events: (Check & { at: number })[] = [];
const waiters: { pick: (e: Check) => boolean; resolve: () => void }[] = [];
let client: Client;

/** The first check event from now on matching `pick`. */
function event(pick: (e: Check) => boolean): Promise<void> {
  return new Promise((resolve) => waiters.push({ pick, resolve }));
}

test.before(async () => {
  client = await connect({
    debounceMs: 5,
    onCheck: (e) => {
      events.push({ ...e, at: performance.now() });
      for (const w of [...waiters]) if (w.pick(e)) waiters.splice(waiters.indexOf(w), 1), w.resolve();
    },
  });
});
test.after(() => {
  client.close();
  rmSync(dir, { recursive: true, force: true });
});

const open = (uri: string, text: string) => client.notify("textDocument/didOpen", { textDocument: { uri, languageId: "nnet", version: 1, text } });
const at = (line: number, character: number): L.Position => ({ line, character });
/** An edit of the big document's end: a clean comment, or (broken) a model with an unknown layer. */
const edit = (version: number, broken: boolean) =>
  client.notify("textDocument/didChange", {
    textDocument: { uri: bigUri, version },
    contentChanges: [{ range: { start: at(bigLines, 0), end: at(bigLines, 0) }, text: broken ? `model Bad${version} { input x: f32[batch, 4]\n output y = x -> nosuchlayer(2) }\n` : `// edit ${version}\n` }],
  });
const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
};

test("requests on a small document are answered while a 1 MB document is checked in the worker", async () => {
  const small = client.nextDiagnostics(smallUri);
  open(smallUri, SMALL);
  assert.equal((await small).diagnostics, []);
  const started = event((e) => e.uri === bigUri && e.event === "start");
  const big = client.nextDiagnostics(bigUri);
  let bigDone = false;
  void big.then(() => (bigDone = true));
  open(bigUri, BIG);
  await started;
  const t0 = performance.now();
  const [h, th] = await timed(() => client.request<L.Hover | null>("textDocument/hover", { textDocument: { uri: smallUri }, position: at(2, 12) }));
  const [c, tc] = await timed(() => client.request<L.CompletionItem[]>("textDocument/completion", { textDocument: { uri: smallUri }, position: at(2, 8) }));
  const [s, ts] = await timed(() => client.request<L.DocumentSymbol[]>("textDocument/documentSymbol", { textDocument: { uri: smallUri } }));
  const [f, tf] = await timed(() => client.request<L.TextEdit[]>("textDocument/formatting", { textDocument: { uri: smallUri }, options: { tabSize: 2, insertSpaces: true } }));
  const answered = performance.now();
  assert.not.ok(bigDone, "the big check was still in flight when the requests were answered");
  assert.match((h!.contents as L.MarkupContent).value, /dense/);
  assert.ok(c.some((i) => i.label === "dense"));
  assert.equal(s.map((x) => x.name), ["Small"]);
  assert.equal(f, []);
  const r = await big;
  const bigMs = performance.now() - t0;
  assert.equal(r.diagnostics, []);
  assert.ok(events.some((e) => e.uri === bigUri && e.event === "publish" && e.worker), "checked in the worker");
  console.log(`  while a 1 MB check ran (${bigMs.toFixed(0)} ms after the requests began): hover ${th.toFixed(0)} ms, completion ${tc.toFixed(0)} ms, symbols ${ts.toFixed(0)} ms, formatting ${tf.toFixed(0)} ms`);
  for (const [name, ms] of [["hover", th], ["completion", tc], ["documentSymbol", ts], ["formatting", tf]] as const) assert.ok(ms < Math.max(250, bigMs / 4), `${name} took ${ms.toFixed(0)} ms, the check ${bigMs.toFixed(0)} ms`);
  assert.ok(answered - t0 < bigMs / 2);
});

test("rapid edits v2..v6: checks in flight are cancelled, and only v6's diagnostics are published", async () => {
  const mark = client.published.length;
  const firstEvent = events.length;
  const last = client.nextDiagnostics(bigUri, 6);
  for (let v = 2; v <= 6; v++) {
    const started = event((e) => e.uri === bigUri && e.event === "start" && e.version === v);
    edit(v, v % 2 === 0);
    await started; // each edit lands while the previous version's check runs
  }
  const r = await last;
  assert.is(r.version, 6);
  // v6's text: the broken models of v6, v4 and v2 (each edit inserts at the same place), one error each
  assert.equal(r.diagnostics.map((d) => [d.code, d.range.start.line]).sort((a, b) => Number(a[1]) - Number(b[1])), [1, 4, 7].map((k) => ["NN2001", bigLines + k]), JSON.stringify(r.diagnostics));
  await new Promise((res) => setTimeout(res, 300));
  const mine = client.published.slice(mark).filter((p) => p.uri === bigUri);
  assert.equal(mine.map((p) => p.version), [6], "one publish, for the latest version");
  const cancelled = events.slice(firstEvent).filter((e) => e.uri === bigUri && e.event === "cancel").map((e) => e.version);
  assert.equal(cancelled, [2, 3, 4, 5], "each superseded check was cancelled in flight");
});

test("closing a document drops its check in flight; nothing is published for it but the clearing", async () => {
  const mark = client.published.length;
  const started = event((e) => e.uri === bigUri && e.event === "start" && e.version === 7);
  edit(7, false);
  await started;
  client.notify("textDocument/didClose", { textDocument: { uri: bigUri } });
  await event((e) => e.uri === bigUri && e.event === "cancel" && e.version === 7);
  // the small document is checked after it, so it is a marker that the worker has moved on
  const small = client.nextDiagnostics(smallUri, 2);
  client.notify("textDocument/didChange", { textDocument: { uri: smallUri, version: 2 }, contentChanges: [{ text: SMALL + "// more\n" }] });
  await small;
  const mine = client.published.slice(mark).filter((p) => p.uri === bigUri);
  assert.equal(mine.map((p) => [p.version, p.diagnostics.length]), [[undefined, 0]]);
  assert.not.ok(events.some((e) => e.uri === bigUri && e.version === 7 && (e.event === "publish" || e.event === "drop")));
});

test("a worker that cannot start leaves checking in-process: diagnostics are still published", async () => {
  const seen: Check[] = [];
  const c = await connect({ debounceMs: 5, workerEntry: pathToFileURL(path.join(dir, "no-such-worker.mjs")), onCheck: (e) => seen.push(e) });
  const uri = pathToFileURL(path.join(dir, "fallback.nnet")).href;
  const d = c.nextDiagnostics(uri);
  c.notify("textDocument/didOpen", { textDocument: { uri, languageId: "nnet", version: 1, text: "model M {\n  input x: f32[batch, 4]\n  output y = x -> nosuchlayer(2)\n}\n" } });
  const r = await d;
  c.close();
  assert.equal(r.diagnostics.length, 1);
  assert.ok(seen.some((e) => e.event === "publish" && !e.worker), JSON.stringify(seen));
});

test("node dist/nnetc.mjs lsp: the bundle starts its own checking worker", async () => {
  const p = spawn(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "lsp", "--stdio"], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  p.stdout.on("data", (b) => (out += b));
  const send = (o: unknown) => {
    const s = JSON.stringify(o);
    p.stdin.write(`Content-Length: ${Buffer.byteLength(s)}\r\n\r\n${s}`);
  };
  const uri = pathToFileURL(path.join(dir, "cli.nnet")).href;
  send({ jsonrpc: "2.0", id: 1, method: "initialize", params: { processId: null, rootUri: null, capabilities: {} } });
  send({ jsonrpc: "2.0", method: "initialized", params: {} });
  send({ jsonrpc: "2.0", method: "textDocument/didOpen", params: { textDocument: { uri, languageId: "nnet", version: 1, text: "model M {\n  input x: f32[batch, 4]\n  output y = x -> nosuchlayer(2)\n}\n" } } });
  const t0 = Date.now();
  while (!out.includes("publishDiagnostics") && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 50));
  const exited = new Promise<number | null>((resolve) => p.on("exit", resolve));
  send({ jsonrpc: "2.0", id: 2, method: "shutdown" });
  send({ jsonrpc: "2.0", method: "exit" });
  const timer = setTimeout(() => p.kill(), 10000);
  const code = await exited;
  clearTimeout(timer);
  assert.ok(/"method":"textDocument\/publishDiagnostics".*nosuchlayer/s.test(out), out);
  assert.not.ok(out.includes("checking worker"), `the worker started: ${out}`);
  assert.is(code, 0, out);
});

test.run();
