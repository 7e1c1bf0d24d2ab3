#!/usr/bin/env node
// Packages the VS Code extension (editor/vscode) as a .vsix, offline, without publishing:
//   1. type-checks src/extension.ts against @types/vscode;
//   2. bundles it with vscode-languageclient into dist/extension.js (esbuild; "vscode" stays external);
//   3. copies the generated grammars (grammar/*.tmLanguage.json) into the extension, and bundles the CLI
//      (dist/compiler/cli/main.js, from `npm run build`) as its server: like dist/nnetc.mjs, but
//      self-contained, since an installed extension has no node_modules. dist/nnetc.mjs leaves all of prettier
//      external (a dependency of the npm package); here only prettier's main module stays out (the code
//      emitter's formatting, which `nnetc lsp` never loads), so small subpaths such as prettier/doc are inlined;
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

const cli = path.join(root, "dist/compiler/cli/main.js");
if (!existsSync(cli)) fail("dist/compiler/cli/main.js is missing: run npm run build first");

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
await build({
  entryPoints: [cli],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outfile: path.join(ext, "server/nnetc.mjs"),
  external: ["@tensorflow/*", "@stdlib/*"],
  plugins: [{ name: "prettier-main-only", setup: (b) => b.onResolve({ filter: /^prettier$/ }, (a) => ({ path: a.path, external: true })) }],
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __nnetcRequire } from 'node:module'; const require = __nnetcRequire(import.meta.url);" },
  logLevel: "warning",
});

const vsce = path.join(path.dirname(require.resolve("@vscode/vsce/package.json")), "vsce");
execFileSync(process.execPath, [vsce, "package", "--no-dependencies", "--allow-missing-repository", "-o", out], { cwd: ext, stdio: ["ignore", "inherit", "inherit"] });
