// LoRA adapters merged into the weights they adapt, for inference (-O1): every adapted kernel becomes a derived
// weight, kernel + (alpha/rank)·lora_a·lora_b (runtime/derive.ts computes it when the model is loaded), the
// adapters leave the inference model and its nodes lose their `lora` attributes — so the inference form of an
// adapter model runs no adapter matmuls, as PEFT's merge_and_unload() makes it. Training keeps the adapters.
import type { IRModel, IRParam } from "../ir/types.js";
import type { Pass } from "./types.js";

const LORA_ATTRS = ["lora", "lora_rank", "lora_scale", "lora_dropout"];

export const mergeLora: Pass = {
  name: "merge-lora",
  level: 1,
  modes: ["infer"],
  doc: "LoRA adapters merged into the kernels they adapt (kernel + scale·A·B, derived when the model loads); the adapters leave the inference model",
  run(m) {
    const adapted = m.nodes.filter((n) => (n.attrs.lora as string[] | undefined)?.length);
    if (!adapted.length) return m;
    const params = new Map(m.params.map((p) => [p.name, p]));
    const merged = new Map<string, IRParam>();
    const dropped = new Set<string>();
    for (const n of adapted) {
      const scale = Number(n.attrs.lora_scale ?? 1);
      for (const g of n.attrs.lora as string[]) {
        const prefix = `${n.name}/${g ? `${g}/` : ""}`;
        const kernel = params.get(`${prefix}kernel`);
        const a = params.get(`${prefix}lora_a`);
        const b = params.get(`${prefix}lora_b`);
        if (!kernel || !a || !b || kernel.derive) return m; // not the checker's layout: leave the model as it is
        merged.set(kernel.name, { ...kernel, derive: { fn: "merge_lora", args: { kernel: kernel.name, a: a.name, b: b.name, scale } } });
        dropped.add(a.name).add(b.name);
      }
    }
    const nodes = m.nodes.map((n) => {
      if (!(n.attrs.lora as string[] | undefined)?.length) return n;
      const attrs = { ...n.attrs };
      for (const k of LORA_ATTRS) delete attrs[k];
      return { ...n, attrs };
    });
    return { ...m, nodes, params: m.params.filter((p) => !dropped.has(p.name)).map((p) => merged.get(p.name) ?? p) };
  },
};
