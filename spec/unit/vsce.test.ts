// The VS Code extension packages offline (scripts/package-vscode.mjs: type-check, esbuild bundle, vsce
// package --no-dependencies), and the .vsix holds what VS Code needs: the manifest contributions, the
// grammars, the language configuration, the extension bundle and a server that runs on its own.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { inflateRawSync } from "node:zlib";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { grammarFiles } from "../../compiler/editor/tmlanguage.js";
import { ROOT, runNode } from "../helpers.js";

/** The files of a zip archive (stored or deflated entries), read from its central directory. */
function unzip(buf: Buffer): Map<string, Buffer> {
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  assert.ok(eocd >= 0, "not a zip file");
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const files = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    assert.is(buf.readUInt32LE(p), 0x02014b50);
    const method = buf.readUInt16LE(p + 10);
    const size = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString("utf8", p + 46, p + 46 + nameLen);
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(dataStart, dataStart + size);
    files.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return files;
}

const dir = mkdtempSync(path.join(tmpdir(), "nnetc-vsce-"));
let files: Map<string, Buffer>;

test.after(() => rmSync(dir, { recursive: true, force: true }));

test("vsce packages the extension offline", async () => {
  const out = path.join(dir, "nnet.vsix");
  const r = await runNode([path.join(ROOT, "scripts/package-vscode.mjs"), "-o", out], { timeoutMs: 120000 });
  assert.is(r.code, 0, r.stderr + r.stdout);
  files = unzip(readFileSync(out));
});

test("the .vsix holds the grammars, the language configuration, the extension bundle and the server", () => {
  for (const f of ["extension/package.json", "extension/language-configuration.json", "extension/syntaxes/nnet.tmLanguage.json", "extension/syntaxes/nnet.markdown.tmLanguage.json", "extension/dist/extension.js", "extension/server/nnetc.mjs", "extension/LICENSE.txt"]) {
    assert.ok(files.has(f), `${f} is missing; the package holds ${[...files.keys()].join(", ")}`);
  }
  assert.not.ok([...files.keys()].some((f) => f.startsWith("extension/src/")), "sources are not shipped");
  const g = grammarFiles();
  assert.is(files.get("extension/syntaxes/nnet.tmLanguage.json")!.toString(), g["grammar/nnet.tmLanguage.json"]);
  assert.is(files.get("extension/syntaxes/nnet.markdown.tmLanguage.json")!.toString(), g["grammar/nnet.markdown.tmLanguage.json"]);
  const manifest = JSON.parse(files.get("extension/package.json")!.toString());
  assert.equal(manifest.contributes.languages[0].id, "nnet");
  assert.equal(manifest.contributes.languages[0].extensions, [".nnet"]);
  assert.equal(manifest.contributes.grammars.map((x: { scopeName: string }) => x.scopeName), ["source.nnet", "markdown.nnet.codeblock"]);
  const conf = JSON.parse(files.get("extension/language-configuration.json")!.toString());
  assert.equal(conf.comments, { lineComment: "//", blockComment: ["/*", "*/"] });
  const bundle = files.get("extension/dist/extension.js")!.toString();
  assert.ok(bundle.includes('require("vscode")'), "vscode is external");
  assert.not.ok(/require\("vscode-languageclient/.test(bundle), "the language client is bundled");
});

test("the packaged server runs on its own (no node_modules): initialize, formatting, shutdown, exit", async () => {
  const alone = path.join(dir, "alone");
  const server = path.join(alone, "nnetc.mjs");
  mkdirSync(alone);
  writeFileSync(server, files.get("extension/server/nnetc.mjs")!);
  const p = spawn(process.execPath, [server, "lsp", "--stdio"], { cwd: alone, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  p.stdout.on("data", (b) => (out += b));
  const send = (o: unknown) => {
    const s = JSON.stringify(o);
    p.stdin.write(`Content-Length: ${Buffer.byteLength(s)}\r\n\r\n${s}`);
  };
  const exited = new Promise<number | null>((resolve) => p.on("exit", resolve));
  const uri = "untitled:messy.nnet";
  send({ jsonrpc: "2.0", id: 1, method: "initialize", params: { processId: null, rootUri: null, capabilities: {} } });
  send({ jsonrpc: "2.0", method: "initialized", params: {} });
  send({ jsonrpc: "2.0", method: "textDocument/didOpen", params: { textDocument: { uri, languageId: "nnet", version: 1, text: "model M{input x:f32[batch,4]\noutput y=x->dense(2)}\n" } } });
  send({ jsonrpc: "2.0", id: 3, method: "textDocument/formatting", params: { textDocument: { uri }, options: { tabSize: 2, insertSpaces: true } } });
  // the check runs in the bundle's own worker thread (compiler/lsp/worker.ts), not in-process
  for (const t0 = Date.now(); !out.includes("publishDiagnostics") && Date.now() - t0 < 15000; ) await new Promise((r) => setTimeout(r, 50));
  send({ jsonrpc: "2.0", id: 2, method: "shutdown" });
  send({ jsonrpc: "2.0", method: "exit" });
  const timer = setTimeout(() => p.kill(), 15000);
  const code = await exited;
  clearTimeout(timer);
  assert.is(code, 0, out);
  assert.ok(out.includes('"serverInfo":{"name":"nnetc"}'), out);
  assert.ok(/"id":3,"result":\[\{"range":/.test(out), `the packaged server formats (prettier/doc is inside it): ${out}`);
  assert.ok(out.includes('"method":"textDocument/publishDiagnostics"'), out);
  assert.not.ok(out.includes("checking worker"), `the packaged server's checking worker started: ${out}`);
});

test.run();
