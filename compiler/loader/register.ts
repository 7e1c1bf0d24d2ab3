// `node --import nnetc/register app.js`: registers the module hooks of hooks.ts, so that `import model from
// "./mlp.nnet"` compiles the file on the fly (cached on disk) and gives its main model's module. Node 20.6+.
import { existsSync } from "node:fs";
import * as nodeModule from "node:module";

const register = (nodeModule as { register?: (specifier: string, parentURL: string) => void }).register;
if (typeof register !== "function") {
  throw new Error(`nnetc/register needs Node.js 20.6 or later (module.register); this is ${process.version}. Compile the .nnet file instead: nnetc compile FILE --target js`);
}
// The bundle (scripts/bundle.mjs) when the build made one: it loads in one read, not hundreds.
register(existsSync(new URL("./hooks.bundle.mjs", import.meta.url)) ? "./hooks.bundle.mjs" : "./hooks.js", import.meta.url);
