// The model a side-by-side inference benchmark runs: a zoo file's trained model (its plan's, else the last),
// optimized at -O2 for inference, with seeded weights — batchnorm statistics and affine terms away from 0 and 1,
// as after training — and the weights an export needs (folded batchnorm derived). `rand` goes on from the
// weights' seed, for the inputs.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { compile } from "../compiler/index.js";
import type { IRModel } from "../compiler/ir/types.js";
import { optimize } from "../compiler/passes/index.js";
import type { HostTensor } from "../runtime/checkpoint/index.js";
import { initialValues } from "../runtime/init.js";
import { finalWeights } from "../runtime/onnx.js";
import { ROOT } from "./common.js";

export async function seededInferenceModel(name: string): Promise<{ model: IRModel; weights: Awaited<ReturnType<typeof finalWeights>>["weights"]; rand: () => number }> {
  const rel = `models/${name}.nnet`;
  const res = compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), { readFile: (f) => ({ text: readFileSync(path.join(ROOT, f), "utf8") }) });
  const plan = res.module.plans[0];
  const m0 = res.module.models.find((m) => m.name === plan?.model) ?? res.module.models[res.module.models.length - 1]!;
  const model = optimize({ ...res.module, models: [m0] }, { level: 2, mode: "infer" }).module.models[0]!;
  const { host, rand } = seededHostWeights(m0);
  const { weights } = await finalWeights(model, host);
  return { model, weights, rand };
}

/** Seeded weights of `m0` as training leaves them (batchnorm statistics and affine terms away from 0 and 1); `rand` goes on from their seed. */
export function seededHostWeights(m0: IRModel): { host: Record<string, HostTensor>; rand: () => number } {
  let s = 3;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const host: Record<string, HostTensor> = {};
  for (const p of m0.params) {
    const data = initialValues(p, rand);
    if (/^(moving_mean|moving_variance|gamma|beta)$/.test(p.role)) for (let i = 0; i < data.length; i++) data[i] = 0.5 + rand();
    host[p.name] = { dtype: "F32", shape: [...p.shape], data };
  }
  return { host, rand };
}
