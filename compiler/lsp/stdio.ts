// `nnetc lsp`: the language server over stdin/stdout. The process ends when the client sends `exit` or
// closes stdin (vscode-languageserver does both).
import node from "vscode-languageserver/node";
import { startServer } from "./server.js";

export function runStdio(): void {
  const conn = node.createConnection(process.stdin, process.stdout);
  // Nothing else may write to stdout: it carries the protocol. Console output goes to the client's log.
  console.log = (...a: unknown[]) => conn.console.log(a.join(" "));
  console.info = console.log;
  startServer(conn);
}
