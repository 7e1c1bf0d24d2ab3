// The VS Code extension: registers nothing itself beyond what package.json contributes (language, grammars,
// settings) and starts `nnetc lsp` over stdio, the bundled server or the one named by `nnet.server.path`.
import * as vscode from "vscode";
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from "vscode-languageclient/node";

let client: LanguageClient | undefined;

/** How to start the server: a script run by VS Code's Node, or an executable. */
export function serverOptions(configured: string, bundled: string): ServerOptions {
  const p = configured.trim();
  if (!p) return { module: bundled, args: ["lsp"], transport: TransportKind.stdio };
  if (/\.(mjs|cjs|js)$/i.test(p)) return { module: p, args: ["lsp"], transport: TransportKind.stdio };
  return { command: p, args: ["lsp"], transport: TransportKind.stdio };
}

async function start(context: vscode.ExtensionContext): Promise<void> {
  const configured = vscode.workspace.getConfiguration("nnet").get<string>("server.path", "");
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "nnet" },
      { scheme: "untitled", language: "nnet" },
    ],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.nnet") },
  };
  client = new LanguageClient("nnet", "nnet", serverOptions(configured, context.asAbsolutePath("server/nnetc.mjs")), clientOptions);
  await client.start();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(
    vscode.commands.registerCommand("nnet.restartServer", async () => {
      await client?.stop();
      await start(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration("nnet.server.path")) return;
      await client?.stop();
      await start(context);
    }),
  );
  await start(context);
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}
