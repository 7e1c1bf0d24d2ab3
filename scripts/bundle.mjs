#!/usr/bin/env node
// Bundles the CLI into one file: loading chevrotain's hundreds of ES modules one by one costs ~0.5 s
// of start-up, which `nnetc check` cannot afford (target: under 0.5 s for the whole process).
import { build } from "esbuild";
import { chmodSync } from "node:fs";
import { fileURLToPath } from "node:url";

const outfile = "dist/nnetc.mjs";
await build({
  entryPoints: ["dist/compiler/cli/main.js"],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outfile,
  // Optional runtime backends are loaded lazily and never bundled.
  external: ["@tensorflow/*", "@stdlib/*", "@huggingface/*", "prettier", "prettier/*", "sharp", "@img/*", "webgpu", "onnxruntime-node", "onnxruntime-web"],
  // The formatter's printer (prettier/doc, 60 kB) is bundled, so that only `nnetc fmt` loads it: an external
  // import would be loaded at start-up by every command.
  alias: { "prettier/doc": fileURLToPath(import.meta.resolve("prettier/doc")) },
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __nnetcRequire } from 'node:module'; const require = __nnetcRequire(import.meta.url);" },
  logLevel: "warning",
});
chmodSync(outfile, 0o755);

// The Node loader's hooks, bundled for the same reason: a cache miss compiles, and loading the compiler's
// modules one by one would cost most of a second on the first import of a .nnet file.
await build({
  entryPoints: ["dist/compiler/loader/hooks.js"],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outfile: "dist/compiler/loader/hooks.bundle.mjs",
  external: ["@tensorflow/*", "@stdlib/*", "@huggingface/*", "prettier", "prettier/*", "sharp", "@img/*", "webgpu", "onnxruntime-node", "onnxruntime-web"],
  banner: { js: "import { createRequire as __nnetcRequire } from 'node:module'; const require = __nnetcRequire(import.meta.url);" },
  logLevel: "warning",
});
