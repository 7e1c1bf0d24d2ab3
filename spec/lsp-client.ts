// An in-process LSP client connected to startServer() by two PassThrough stream pairs: the real protocol
// (JSON-RPC framing, vscode-languageserver's connection), no child process. Used by spec/unit/lsp.test.ts
// and bench/lsp.ts.
import { PassThrough } from "node:stream";
import node from "vscode-languageserver/node";
import type * as L from "vscode-languageserver";
import { startServer, type ServerOptions } from "../compiler/lsp/server.js";

export interface Client {
  request<R>(method: string, params: unknown): Promise<R>;
  notify(method: string, params: unknown): void;
  /** The next publishDiagnostics for `uri` (optionally: for at least document version `version`). */
  nextDiagnostics(uri: string, version?: number): Promise<L.PublishDiagnosticsParams>;
  /** Every publishDiagnostics so far, in order. */
  published: L.PublishDiagnosticsParams[];
  close(): void;
}

/** `init`: more initialize parameters (workspaceFolders, rootUri). */
export async function connect(o: ServerOptions = {}, init: Record<string, unknown> = {}): Promise<Client> {
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  const server = node.createConnection(new node.StreamMessageReader(toServer), new node.StreamMessageWriter(toClient));
  startServer(server, o);
  const client = node.createProtocolConnection(new node.StreamMessageReader(toClient), new node.StreamMessageWriter(toServer));
  const waiting: { uri: string; version: number; resolve: (p: L.PublishDiagnosticsParams) => void }[] = [];
  const published: L.PublishDiagnosticsParams[] = [];
  client.onNotification("textDocument/publishDiagnostics", (p: L.PublishDiagnosticsParams) => {
    published.push(p);
    for (const w of [...waiting]) {
      if (w.uri === p.uri && (p.version ?? 0) >= w.version) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(p);
      }
    }
  });
  client.listen();
  await client.sendRequest("initialize", { processId: null, rootUri: null, capabilities: {}, ...init });
  client.sendNotification("initialized", {});
  return {
    request: (method, params) => client.sendRequest(method, params),
    notify: (method, params) => void client.sendNotification(method, params),
    published,
    nextDiagnostics: (uri, version = 0) => new Promise((resolve) => waiting.push({ uri, version, resolve })),
    close: () => {
      client.dispose();
      server.dispose();
      toServer.end();
      toClient.end();
    },
  };
}
