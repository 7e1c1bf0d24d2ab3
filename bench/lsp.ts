// npm run bench:lsp: the language server's edit-to-diagnostics latency on models/resnet50.nnet, the
// figure issue 6 asks for (target: median under 100 ms). An in-process client (spec/lsp-client.ts) opens the
// file, then sends small edits one at a time and times each didChange → publishDiagnostics, with the
// server's default debounce. Reports cold (the first 20 edits after opening) and warm (the next 40).
import { readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { DEFAULT_DEBOUNCE_MS } from "../compiler/lsp/server.js";
import { connect } from "../spec/lsp-client.js";
import { ROOT } from "./common.js";

const file = path.join(ROOT, "models/resnet50.nnet");
const uri = pathToFileURL(file).href;
const text = readFileSync(file, "utf8");

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

const client = await connect();
const first = client.nextDiagnostics(uri);
client.notify("textDocument/didOpen", { textDocument: { uri, languageId: "nnet", version: 1, text } });
await first;
const i = text.indexOf("dense(1000") + 6;
const line = text.slice(0, i).split("\n").length - 1;
const character = i - text.lastIndexOf("\n", i - 1) - 1;
const times: number[] = [];
for (let k = 0; k < 60; k++) {
  const version = k + 2;
  const d = client.nextDiagnostics(uri, version);
  const t0 = performance.now();
  client.notify("textDocument/didChange", { textDocument: { uri, version }, contentChanges: [{ range: { start: { line, character }, end: { line, character: character + 4 } }, text: String(1000 + (k % 9)) }] });
  const r = await d;
  if (r.diagnostics.length) throw new Error(`unexpected diagnostics: ${JSON.stringify(r.diagnostics)}`);
  times.push(performance.now() - t0);
}
client.close();
const cold = times.slice(0, 20);
const warm = times.slice(20);
console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)}`);
console.log(`resnet50.nnet didChange → publishDiagnostics (debounce ${DEFAULT_DEBOUNCE_MS} ms included)`);
console.log(`  first 20 edits: median ${q(cold, 0.5).toFixed(1)} ms, p90 ${q(cold, 0.9).toFixed(1)} ms`);
console.log(`  next 40 edits:  median ${q(warm, 0.5).toFixed(1)} ms, p90 ${q(warm, 0.9).toFixed(1)} ms`);
