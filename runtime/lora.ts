// LoRA adapters merged into their base weights: W + (alpha/rank)·A·B for every dense layer and attention
// projection a plan adapts (node attributes `lora`, `lora_scale`; weights `lora_a` [in, rank], `lora_b`
// [rank, out]). Pure host arithmetic, no TensorFlow.js: ONNX export and `compile --merge-lora` use it, and a
// merged model computes what the adapter model computes (dropout aside, which is off at inference).

interface Host {
  shape: readonly number[];
  data: Float32Array;
}

/** The adapted kernels of `model`: `name` → merged [in, out] values (the adapters themselves are left out by the caller). */
export function mergedKernels(model: { nodes: readonly { name: string; attrs: Readonly<Record<string, unknown>> }[] }, get: (name: string) => Host | undefined): Map<string, Host> {
  const out = new Map<string, Host>();
  for (const n of model.nodes) {
    const groups = n.attrs.lora as string[] | undefined;
    if (!groups?.length) continue;
    const scale = Number(n.attrs.lora_scale ?? 1);
    for (const g of groups) {
      const p = `${n.name}/${g ? `${g}/` : ""}`;
      const w = get(`${p}kernel`);
      const a = get(`${p}lora_a`);
      const b = get(`${p}lora_b`);
      if (!w || !a || !b || out.has(`${p}kernel`)) continue;
      const [fi, fo] = w.shape as [number, number];
      const r = a.shape[1]!;
      const merged = Float32Array.from(w.data);
      for (let i = 0; i < fi; i++) {
        for (let k = 0; k < r; k++) {
          const av = a.data[i * r + k]! * scale;
          if (av === 0) continue;
          for (let j = 0; j < fo; j++) merged[i * fo + j]! += av * b.data[k * fo + j]!;
        }
      }
      out.set(`${p}kernel`, { shape: [fi, fo], data: merged });
    }
  }
  return out;
}
