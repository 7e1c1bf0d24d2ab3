#!/usr/bin/env node
// Packages the VS Code extension (editor/vscode) as a .vsix, offline, without publishing:
//   1. type-checks src/extension.ts against @types/vscode;
//   2. bundles it with vscode-languageclient into dist/extension.js (esbuild; "vscode" stays external);
//   3. copies the generated grammars (grammar/*.tmLanguage.json) and the bundled server (dist/nnetc.mjs,
//      from `npm run build`) into the extension;
//   4. runs `vsce package --no-dependencies`.
// Usage: node scripts/package-vscode.mjs [-o OUT.vsix]   (default: editor/vscode/nnet-VERSION.vsix)
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ext = path.join(root, "editor/vscode");
const require = createRequire(import.meta.url);
const fail = (m) => {
  process.stderr.write(`package-vscode: ${m}\n`);
  process.exit(2);
};

const args = process.argv.slice(2);
const o = args.indexOf("-o");
const version = JSON.parse(readFileSync(path.join(ext, "package.json"), "utf8")).version;
const out = path.resolve(o >= 0 && args[o + 1] ? args[o + 1] : path.join(ext, `nnet-${version}.vsix`));

const server = path.join(root, "dist/nnetc.mjs");
if (!existsSync(server)) fail("dist/nnetc.mjs is missing: run npm run build first");

execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(ext, "tsconfig.json")], { stdio: "inherit" });

await build({
  entryPoints: [path.join(ext, "src/extension.ts")],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node18",
  external: ["vscode"],
  outfile: path.join(ext, "dist/extension.js"),
  logLevel: "warning",
});

mkdirSync(path.join(ext, "syntaxes"), { recursive: true });
for (const g of ["nnet.tmLanguage.json", "nnet.markdown.tmLanguage.json"]) copyFileSync(path.join(root, "grammar", g), path.join(ext, "syntaxes", g));
mkdirSync(path.join(ext, "server"), { recursive: true });
copyFileSync(server, path.join(ext, "server/nnetc.mjs"));

const vsce = path.join(path.dirname(require.resolve("@vscode/vsce/package.json")), "vsce");
execFileSync(process.execPath, [vsce, "package", "--no-dependencies", "--allow-missing-repository", "-o", out], { cwd: ext, stdio: ["ignore", "inherit", "inherit"] });
