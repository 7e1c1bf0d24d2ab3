// The checking worker's entry when the compiler runs unbundled (dist/compiler/lsp/worker_main.js). Bundled
// (dist/nnetc.mjs, the VS Code extension's server), the bundle itself is the entry: cli/main.ts starts the loop.
import { isCheckWorker, runCheckWorker } from "./worker.js";

if (isCheckWorker()) runCheckWorker();
