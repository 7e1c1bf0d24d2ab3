// Vite builds the browser page of the fashion-app example: `npx vite build examples/fashion-app/web`.
// nnetc's plugin compiles `import mlp from "….nnet"`; for this client build the module imports the
// platform-neutral nnetc/runtime (package.json's "browser" export condition).
import nnetc from "nnetc/vite";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [nnetc()],
  build: { target: "es2022", outDir: "dist", emptyOutDir: true },
  logLevel: "warn",
});
