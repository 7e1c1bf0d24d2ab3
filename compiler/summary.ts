// `nnetc summary`: a Keras-style table of a checked model, parameter totals and FLOPs per sample.
import { evalDim, fmtShape, symbolsOf } from "./ir/dims.js";
import { OPS, type OpKind } from "./ir/ops.js";
import type { IRModel } from "./ir/types.js";

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

export function summarize(m: IRModel): Summary {
  const seen = new Set<string>();
  const perLayer = new Map<string, number>();
  for (const w of m.params) perLayer.set(w.layer, (perLayer.get(w.layer) ?? 0) + w.shape.reduce((a, b) => a * b, 1));
  const batchSyms = new Set(m.inputs.map((i) => i.shape[0]).filter((d): d is string => typeof d === "string"));
  const env: Record<string, number> = {};
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
    if (def.flops && out && ins.every((x) => x)) flops += def.flops(ins as number[][], out, n.attrs);
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
