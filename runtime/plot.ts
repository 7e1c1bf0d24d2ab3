// `nnetc plot DIR`: the loss and metric curves of a run (its metrics.jsonl) as one SVG file and the same as PNG
// (the SVG rendered by sharp, whose librsvg draws the text with the machine's fonts). No tensors. One panel per
// quantity (train and val_ together), epochs on the x axis with whole-epoch ticks, phase boundaries dashed and
// named.
import { readFileSync } from "node:fs";

interface Series {
  name: string;
  points: [number, number][];
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

export function readMetrics(file: string): Record<string, unknown>[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** A panel's plot area inside its box: what the axes frame (exported for the PNG test, which looks at the axes' pixels). */
export const PANEL = { w: 520, h: 300, top: 30, pad: { l: 56, r: 12, t: 28, b: 40 } } as const;

/** Ticks at whole epochs: every one up to 10, else every 2, 5, 10, 20, 50… so that at most about 10 are drawn. */
export function epochTicks(xmin: number, xmax: number): number[] {
  const span = Math.max(1, xmax - xmin);
  let step = 1;
  for (let e = 1, k = 0; span / step > 10; k++, e = 10 ** Math.floor(k / 3)) step = [1, 2, 5][k % 3]! * e;
  const out: number[] = [];
  for (let x = Math.ceil(xmin / step) * step; x <= xmax + 1e-9; x += step) out.push(x);
  return out;
}

/** Where phases end: the last epoch of every phase but the last, with the next phase's name. */
export function phaseBoundaries(records: Record<string, unknown>[]): { epoch: number; next: string; first: string }[] {
  const out: { epoch: number; next: string; first: string }[] = [];
  for (let i = 1; i < records.length; i++) {
    const a = records[i - 1]!;
    const b = records[i]!;
    if (typeof a.phase === "string" && typeof b.phase === "string" && a.phase !== b.phase) out.push({ epoch: Number(a.epoch), next: b.phase, first: String(records[0]!.phase) });
  }
  return out;
}

function panel(title: string, series: Series[], phases: { epoch: number; next: string; first: string }[], x0: number, y0: number, w: number, h: number): string {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return "";
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  // x: from the start of the first epoch shown to the end of the last (epoch e's values are at its end, x = e).
  const [xmin, xmax] = [Math.min(...xs) - 1, Math.max(...xs)];
  let [ymin, ymax] = [Math.min(...ys), Math.max(...ys)];
  if (ymin === ymax) [ymin, ymax] = [ymin - 0.5, ymax + 0.5];
  const pad = PANEL.pad;
  const px = (x: number) => x0 + pad.l + ((x - xmin) / (xmax - xmin)) * (w - pad.l - pad.r);
  const py = (y: number) => y0 + h - pad.b - ((y - ymin) / (ymax - ymin)) * (h - pad.t - pad.b);
  const bottom = y0 + h - pad.b;
  const out: string[] = [`<text x="${x0 + pad.l}" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(title)}</text>`];
  for (let i = 0; i <= 4; i++) {
    const y = ymin + ((ymax - ymin) * i) / 4;
    out.push(`<text x="${x0 + pad.l - 6}" y="${py(y) + 4}" font-size="10" text-anchor="end">${esc(y.toPrecision(3))}</text>`);
    out.push(`<line x1="${x0 + pad.l}" x2="${x0 + w - pad.r}" y1="${py(y)}" y2="${py(y)}" stroke="#eee"/>`);
  }
  // Phase boundaries: a dashed line where a phase ends, each phase's name at the start of its stretch.
  const shown = phases.filter((b) => b.epoch > xmin && b.epoch < xmax);
  if (phases.length) {
    const starts = [{ x: xmin, name: phases[0]!.first }, ...phases.map((b) => ({ x: b.epoch, name: b.next }))].filter((s) => s.x >= xmin && s.x < xmax);
    for (const b of shown) out.push(`<line x1="${px(b.epoch).toFixed(1)}" x2="${px(b.epoch).toFixed(1)}" y1="${y0 + pad.t}" y2="${bottom}" stroke="#888" stroke-dasharray="4 3"/>`);
    for (const st of starts) out.push(`<text x="${(px(st.x) + 4).toFixed(1)}" y="${y0 + pad.t + 12}" font-size="10" fill="#666">${esc(st.name)}</text>`);
  }
  // The axes, with a tick and a label at whole epochs.
  out.push(`<line x1="${x0 + pad.l}" x2="${x0 + w - pad.r}" y1="${bottom}" y2="${bottom}" stroke="#333" shape-rendering="crispEdges"/>`);
  out.push(`<line x1="${x0 + pad.l}" x2="${x0 + pad.l}" y1="${y0 + pad.t}" y2="${bottom}" stroke="#333" shape-rendering="crispEdges"/>`);
  for (const t of epochTicks(xmin, xmax)) {
    out.push(`<line x1="${px(t).toFixed(1)}" x2="${px(t).toFixed(1)}" y1="${bottom}" y2="${bottom + 4}" stroke="#333"/>`);
    out.push(`<text x="${px(t).toFixed(1)}" y="${bottom + 15}" font-size="10" text-anchor="middle">${t}</text>`);
  }
  out.push(`<text x="${x0 + w / 2}" y="${y0 + h - 6}" font-size="11" text-anchor="middle">epoch</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const d = s.points.map(([x, y], k) => `${k ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join("");
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const [x, y] of s.points) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2.5" fill="${color}"/>`);
    out.push(`<text x="${x0 + w - pad.r - 4}" y="${y0 + pad.t + 14 + 14 * i}" font-size="11" text-anchor="end" fill="${color}">${esc(s.name)}</text>`);
  });
  return out.join("\n");
}

/** One panel for the losses and one per metric (train and validation together). */
export function plotSvg(records: Record<string, unknown>[], title: string): string {
  const keys = [...new Set(records.flatMap((r) => Object.keys(r)))].filter((k) => !["phase", "epoch", "step", "lr", "samplesPerSec", "seconds"].includes(k) && records.some((r) => typeof r[k] === "number"));
  const base = [...new Set(keys.map((k) => k.replace(/^val_/, "")))];
  const groups = base.map((b) => ({ title: b, keys: keys.filter((k) => k === b || k === `val_${b}`) }));
  const { w, h, top } = PANEL;
  const phases = phaseBoundaries(records);
  const cols = Math.min(2, groups.length);
  const rows = Math.ceil(groups.length / Math.max(cols, 1));
  const body = groups
    .map((g, i) => panel(g.title, g.keys.map((k) => ({ name: k, points: records.filter((r) => typeof r[k] === "number" && Number.isFinite(r[k])).map((r) => [Number(r.epoch), Number(r[k])] as [number, number]) })), phases, (i % cols) * w, top + Math.floor(i / cols) * h, w, h))
    .join("\n");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${cols * w}" height="${top + rows * h}" font-family="sans-serif" viewBox="0 0 ${cols * w} ${top + rows * h}">\n<rect width="100%" height="100%" fill="white"/>\n<text x="10" y="20" font-size="16">${esc(title)}</text>\n${body}\n</svg>\n`;
}

/** The SVG as a PNG of the same size (sharp: librsvg). */
export async function svgToPng(svg: string): Promise<Buffer> {
  const sharp = (await import("sharp")).default;
  return sharp(Buffer.from(svg)).png().toBuffer();
}
