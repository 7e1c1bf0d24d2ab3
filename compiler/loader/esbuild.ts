// `import nnetc from "nnetc/esbuild"`; `esbuild.build({ plugins: [nnetc()] })`. See plugin.ts.
import { esbuild } from "./plugin.js";

export type { NnetPluginOptions } from "./plugin.js";
export default esbuild;
