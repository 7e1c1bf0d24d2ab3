// `import nnetc from "nnetc/vite"`; `defineConfig({ plugins: [nnetc()] })`. See plugin.ts.
import { vite } from "./plugin.js";

export type { NnetPluginOptions } from "./plugin.js";
export default vite;
