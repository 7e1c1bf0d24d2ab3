// npm run bench:generate [-- --new 256 --runs 3 --layers 6 --width 384]: greedy generation of `new` tokens
// after a 16-token prompt by a GPT-2-style decoder with seeded random weights (bench/models/ is not needed: the
// model is written here), with the key/value cache and with full recomputation at every step, on TensorFlow.js
// (the backend initBackend picks: wasm here). Medians of `runs`; both ways must give the same tokens.
import { compile } from "../compiler/index.js";
import { initBackend } from "../runtime/backend.js";
import { generateIds } from "../runtime/interpret.js";
import { initWeights } from "../runtime/init.js";
import { Rng } from "../runtime/data/rng.js";
import { flag, median, opt } from "./common.js";

const NEW = Number(opt("new", "256"));
const RUNS = Number(opt("runs", "3"));
const LAYERS = Number(opt("layers", "6"));
const WIDTH = Number(opt("width", "384"));
const VOCAB = 8000;

const SRC = `
block DecoderLayer(width: int, heads: int) {
  a = in + (in -> layernorm -> attention(heads, causal: true))
  out = a + (a -> layernorm -> dense(4 * width) -> gelu(approximate: true) -> dense(width))
}
model Decoder {
  input ids: i32[batch, seq <= 512]
  layer wte = embedding(${VOCAB}, ${WIDTH})
  x = ids -> wte -> pos_embedding(512)
  repeat ${LAYERS} { x = x -> DecoderLayer(${WIDTH}, ${WIDTH / 64}) }
  output logits = x -> layernorm -> tied_dense(wte)
}
`;

const b = await initBackend(opt("backend", "") || undefined);
const res = compile("bench.nnet", SRC, { readFile: () => ({ error: "no imports here" }) });
if (res.diagnostics.some((d) => d.severity === "error")) throw new Error(res.diagnostics.map((d) => d.message).join("; "));
const m = res.module.models[0]!;
const rng = new Rng(1);
const weights = initWeights(m.params, () => rng.next());
const params = m.params.reduce((s, p) => s + p.shape.reduce((a, c) => a * c, 1), 0);
const prompt = Array.from({ length: 16 }, (_, i) => (i * 37 + 11) % VOCAB);
const opts = { maxNew: NEW, greedy: true, temperature: 1, topK: null, topP: null, seed: 0, stop: [] };
const rates: Record<"cache" | "recompute", number[]> = { cache: [], recompute: [] };
const tokens: Record<string, number[]> = {};
for (let r = 0; r < RUNS; r++) {
  for (const way of ["cache", "recompute"] as const) {
    if (way === "recompute" && flag("cache-only")) continue;
    const g = generateIds(m, weights, prompt, { ...opts, cache: way === "cache" });
    rates[way].push(g.tokensPerSec);
    tokens[way] = g.ids;
    console.log(`  run ${r + 1} ${way.padEnd(9)} ${g.ids.length} tokens in ${g.seconds.toFixed(2)} s: ${g.tokensPerSec.toFixed(1)} tokens/s`);
  }
}
if (tokens.recompute && tokens.cache!.join() !== tokens.recompute.join()) throw new Error("the cache changed the tokens");
const c = median(rates.cache);
const f = median(rates.recompute);
console.log(`\nGPT-2-style decoder, ${LAYERS} layers × ${WIDTH}, vocab ${VOCAB} (${(params / 1e6).toFixed(1)} M weights), ${NEW} new tokens after 16, greedy, TensorFlow.js ${b.name}, medians of ${RUNS}:`);
console.log(`  key/value cache ${c.toFixed(1)} tokens/s, recomputation ${f.toFixed(1)} tokens/s: ${(c / f).toFixed(2)}× ${tokens.recompute ? "(same tokens)" : ""}`);
