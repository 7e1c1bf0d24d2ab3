// `nnetc summary`: a Keras-style table of a checked model, parameter totals and FLOPs per sample.
import { evalDim, fmtShape, symbolsOf } from "./ir/dims.js";
import { OPS, type OpKind } from "./ir/ops.js";
import type { IRModel, IRModule, IRPlan } from "./ir/types.js";
import { estimateTrainingMemory, fmtBytes, fmtEstimate, largestBatch, WASM_LIMIT, type MemoryEstimate } from "./memory.js";
import { isAdapter, phaseTrainable } from "../runtime/spec.js";
import { isPrunable } from "./plan/tables.js";

export interface SummaryRow {
  name: string;
  type: string;
  outputShape: (number | string)[] | null;
  params: number;
  /** A later use of a shared layer: its weights are counted at the first use. */
  shared?: boolean;
}

export interface Summary {
  model: string;
  layers: SummaryRow[];
  params: { total: number; trainable: number; nonTrainable: number };
  /** Bytes of the weights as float32 (or their declared type). */
  bytes: number;
  /** FLOPs for one sample (a multiply-add counts 2); symbolic dimensions at their bound, else 1. */
  flops: number;
  /** Values used for symbolic dimensions when counting FLOPs. */
  dims: Record<string, number>;
}

const BYTES: Record<string, number> = { f16: 2, f32: 4, f64: 8, i8: 1, i32: 4, i64: 8, bool: 1 };

/**
 * What each LoRA phase of the plans training `m` trains (runtime/spec.ts's phaseTrainable, the rule the
 * engines follow): the adapters' size and the trainable weights against all of the model's, one line each.
 */
export function loraLines(m: IRModel, plans: readonly IRPlan[]): string[] {
  const size = (ps: readonly { shape: readonly number[] }[]) => ps.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const total = size(m.params);
  const n = (x: number) => x.toLocaleString("en-US");
  // Sizes as the summary's "Total params" line gives them (1,024 bytes a KB): KB under a MB, MB above.
  const kb = (bytes: number) => (bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / (1024 * 1024)).toFixed(1)} MB`);
  const adapters = m.params.filter(isAdapter);
  const out: string[] = [];
  for (const p of plans.filter((x) => x.model === m.name)) {
    for (const ph of p.phases.filter((x) => x.lora)) {
      const t = size(phaseTrainable(m.params, ph));
      const frozen = m.params.filter((w) => !phaseTrainable(m.params, ph).includes(w) && !isAdapter(w));
      const q = new Set(ph.lora!.base === "int8" ? ph.lora!.quantize ?? [] : []);
      const int8 = frozen.filter((w) => q.has(w.name));
      // int8 kernels: one byte a value and a float32 scale per output channel (the last axis)
      const int8Bytes = int8.reduce((s, w) => s + size([w]) + 4 * w.shape[w.shape.length - 1]!, 0);
      const floatBytes = 4 * size(frozen.filter((w) => !q.has(w.name)));
      const base = q.size
        ? `; frozen base ${n(size(frozen))} weights: ${int8.length} kernel${int8.length === 1 ? "" : "s"} int8 (${kb(int8Bytes)} with scales, ${kb(4 * size(int8))} as float32), the rest float32 (${kb(floatBytes)})`
        : `; frozen base ${n(size(frozen))} weights float32 (${kb(floatBytes)})`;
      out.push(`LoRA in phase ${ph.name} (train ${p.model} on ${p.dataset}): rank ${ph.lora!.rank} on ${ph.lora!.targets.length} projection${ph.lora!.targets.length === 1 ? "" : "s"}, ${n(size(adapters))} adapter weights (${kb(4 * size(adapters))}); trains ${n(t)} of ${n(total)} weights (${((100 * t) / total).toFixed(2)}%)${base}`);
    }
  }
  return out;
}

/**
 * The memory one training step of the plan training `m` needs on TensorFlow.js at the plan's batch
 * (compiler/memory.ts, what `nnetc train` checks: NN7012), and the largest batch the wasm backend's 4 GiB holds.
 */
export function trainingMemory(m: IRModel, module: IRModule): (MemoryEstimate & { wasmLargestBatch: number }) | null {
  const plan = module.plans.find((p) => p.model === m.name);
  if (!plan) return null;
  const e = estimateTrainingMemory(m, plan, module.datasets);
  return { ...e, wasmLargestBatch: largestBatch(e, WASM_LIMIT) };
}

export function memoryLine(e: NonNullable<ReturnType<typeof trainingMemory>>): string {
  const fits = e.total <= WASM_LIMIT ? "fits the wasm backend's 4 GiB" : e.wasmLargestBatch > 0 ? `over the wasm backend's 4 GiB, which holds batch ${e.wasmLargestBatch}` : "over the wasm backend's 4 GiB even at batch 1";
  const unbound = e.unbound.length ? `; ${e.unbound.join(", ")} counted as 1 (no bound)` : "";
  return `Training memory (tfjs, plan ${e.plan}${e.phase !== "main" ? `, phase ${e.phase}` : ""}): ${fmtEstimate(e)} (${fmtBytes(e.perSample)} per sample); ${fits}${unbound}`;
}

/**
 * The summary of a model. With `density` (a layer's fraction of nonzero kernel weights), each layer's FLOPs
 * are scaled by it: the work left when multiplications by zero weights are skipped.
 */
export function summarize(m: IRModel, density?: (layer: string) => number): Summary {
  const seen = new Set<string>();
  const perLayer = new Map<string, number>();
  for (const w of m.params) perLayer.set(w.layer, (perLayer.get(w.layer) ?? 0) + w.shape.reduce((a, b) => a * b, 1));
  const batchSyms = new Set(m.inputs.map((i) => i.shape[0]).filter((d): d is string => typeof d === "string"));
  const env: Record<string, number> = Object.create(null); // dim names are user names ("constructor")
  for (const s of batchSyms) env[s] = 1;
  for (const d of m.dims) if (!(d.name in env)) env[d.name] = d.max ?? 1;
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  const concrete = (s: (number | string)[] | null) => {
    if (!s) return null;
    const out: number[] = [];
    for (const d of s) {
      const v = evalDim(d, env);
      // Unknown, or not positive when an unbounded symbol stands at 1: this node's FLOPs are not counted.
      if (v === undefined || v < 1) return null;
      out.push(v);
    }
    return out;
  };
  let flops = 0;
  const layers: SummaryRow[] = [];
  for (const n of m.nodes) {
    if (n.op === "constant") continue;
    const def = OPS[n.op as OpKind];
    const out = concrete(n.shape);
    const ins = n.inputs.map((i) => concrete(byId.get(i)?.shape ?? null));
    if (def.flops && out && ins.every((x) => x)) flops += def.flops(ins as number[][], out, n.attrs) * (density?.(n.name) ?? 1);
    const first = !seen.has(n.name);
    seen.add(n.name);
    layers.push({ name: n.name, type: n.op, outputShape: n.shape, params: first ? perLayer.get(n.name) ?? 0 : 0, ...(first ? {} : { shared: true }) });
  }
  let total = 0;
  let trainable = 0;
  let bytes = 0;
  for (const w of m.params) {
    const count = w.shape.reduce((a, b) => a * b, 1);
    total += count;
    if (w.trainable) trainable += count;
    bytes += count * (BYTES[w.dtype] ?? 4);
  }
  const usedDims: Record<string, number> = {};
  for (const n of m.nodes) for (const d of n.shape ?? []) for (const s of symbolsOf(d)) if (s in env) usedDims[s] = env[s]!;
  return { model: m.name, layers, params: { total, trainable, nonTrainable: total - trainable }, bytes, flops: Math.round(flops), dims: usedDims };
}

const num = (n: number) => n.toLocaleString("en-US");

function human(n: number, unit: string, base = 1000): string {
  const units = base === 1024 ? ["B", "KB", "MB", "GB"] : ["", "K", "M", "G", "T"];
  let i = 0;
  while (n >= base && i < units.length - 1) {
    n /= base;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 2)} ${units[i]}${unit}`.trim();
}

export function renderSummary(s: Summary): string {
  const rows = s.layers.map((r) => [`${r.name} (${r.type})`, r.outputShape ? fmtShape(r.outputShape) : "?", r.shared ? "(shared)" : num(r.params)]);
  const head = ["Layer (type)", "Output shape", "Params"];
  const w = [0, 1, 2].map((i) => Math.max(head[i]!.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `${r[0]!.padEnd(w[0]!)}   ${r[1]!.padEnd(w[1]!)}   ${r[2]!.padStart(w[2]!)}`;
  const rule = "─".repeat(w[0]! + w[1]! + w[2]! + 6);
  const dims = Object.entries(s.dims).map(([k, v]) => `${k}=${v}`).join(", ");
  return [
    `Model: ${s.model}`,
    rule,
    line(head),
    rule,
    ...rows.map(line),
    rule,
    `Total params: ${num(s.params.total)} (${human(s.bytes, "", 1024)})`,
    `Trainable params: ${num(s.params.trainable)}`,
    `Non-trainable params: ${num(s.params.nonTrainable)}`,
    `FLOPs per sample: ${num(s.flops)} (${human(s.flops, "FLOPs")})${dims ? ` with ${dims}` : ""}`,
  ].join("\n");
}

/** What trained (possibly pruned or quantized) weights do to a model: `nnetc summary --weights`. */
export interface WeightsEffect {
  file: string;
  kind: string;
  params: { total: number; nonzero: number };
  /** Fraction of zeros over all weights, and over the prunable kernels alone. */
  sparsity: { all: number; kernels: number };
  bytes: { float32: number; file: number };
  /** FLOPs per sample at -O0 and -O2, counting every weight (dense) and skipping zero weights (sparse). */
  flops: { dense: [number, number]; sparse: [number, number] };
}

export function weightsEffect(m: IRModel, o2: IRModel, w: { file: string; kind: string; bytes: number; float32Bytes: number; counts: Record<string, { count: number; zeros: number }> }): WeightsEffect {
  let total = 0;
  let zeros = 0;
  let kTotal = 0;
  let kZeros = 0;
  const perLayer = new Map<string, { count: number; zeros: number }>();
  for (const p of m.params) {
    const c = w.counts[p.name];
    if (!c) continue;
    total += c.count;
    zeros += c.zeros;
    if (!isPrunable(p)) continue;
    kTotal += c.count;
    kZeros += c.zeros;
    const l = perLayer.get(p.layer) ?? { count: 0, zeros: 0 };
    perLayer.set(p.layer, { count: l.count + c.count, zeros: l.zeros + c.zeros });
  }
  const density = (layer: string) => {
    const l = perLayer.get(layer);
    return l && l.count ? 1 - l.zeros / l.count : 1;
  };
  return {
    file: w.file,
    kind: w.kind,
    params: { total, nonzero: total - zeros },
    sparsity: { all: total ? zeros / total : 0, kernels: kTotal ? kZeros / kTotal : 0 },
    bytes: { float32: w.float32Bytes, file: w.bytes },
    flops: { dense: [summarize(m).flops, summarize(o2).flops], sparse: [summarize(m, density).flops, summarize(o2, density).flops] },
  };
}

export function renderWeightsEffect(e: WeightsEffect): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return [
    `Weights: ${e.file} (${e.kind})`,
    `  Params: ${num(e.params.total)} total, ${num(e.params.nonzero)} nonzero (${pct(e.sparsity.all)} zero; conv/dense kernels ${pct(e.sparsity.kernels)} zero)`,
    `  Bytes on disk: ${num(e.bytes.float32)} as float32, ${num(e.bytes.file)} as ${e.kind} (${pct(e.bytes.file / e.bytes.float32)})`,
    `  FLOPs per sample, -O0 → -O2: ${num(e.flops.dense[0])} → ${num(e.flops.dense[1])} dense; ${num(e.flops.sparse[0])} → ${num(e.flops.sparse[1])} skipping zero weights`,
  ].join("\n");
}
