// `nnetc plot DIR`: the loss and metric curves of a run (its metrics.jsonl) as one SVG file. No tensors.
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

function panel(title: string, series: Series[], x0: number, y0: number, w: number, h: number): string {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return "";
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [xmin, xmax] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  let [ymin, ymax] = [Math.min(...ys), Math.max(...ys)];
  if (ymin === ymax) [ymin, ymax] = [ymin - 0.5, ymax + 0.5];
  const pad = { l: 56, r: 12, t: 28, b: 36 };
  const px = (x: number) => x0 + pad.l + ((x - xmin) / (xmax - xmin)) * (w - pad.l - pad.r);
  const py = (y: number) => y0 + h - pad.b - ((y - ymin) / (ymax - ymin)) * (h - pad.t - pad.b);
  const out: string[] = [`<text x="${x0 + pad.l}" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(title)}</text>`];
  out.push(`<rect x="${x0 + pad.l}" y="${y0 + pad.t}" width="${w - pad.l - pad.r}" height="${h - pad.t - pad.b}" fill="none" stroke="#ccc"/>`);
  for (let i = 0; i <= 4; i++) {
    const y = ymin + ((ymax - ymin) * i) / 4;
    out.push(`<text x="${x0 + pad.l - 6}" y="${py(y) + 4}" font-size="10" text-anchor="end">${esc(y.toPrecision(3))}</text>`);
    out.push(`<line x1="${x0 + pad.l}" x2="${x0 + w - pad.r}" y1="${py(y)}" y2="${py(y)}" stroke="#eee"/>`);
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
  const w = 520;
  const h = 300;
  const cols = Math.min(2, groups.length);
  const rows = Math.ceil(groups.length / Math.max(cols, 1));
  const body = groups
    .map((g, i) => panel(g.title, g.keys.map((k) => ({ name: k, points: records.filter((r) => typeof r[k] === "number" && Number.isFinite(r[k])).map((r) => [Number(r.epoch), Number(r[k])] as [number, number]) })), (i % cols) * w, 30 + Math.floor(i / cols) * h, w, h))
    .join("\n");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${cols * w}" height="${30 + rows * h}" font-family="sans-serif" viewBox="0 0 ${cols * w} ${30 + rows * h}">\n<rect width="100%" height="100%" fill="white"/>\n<text x="10" y="20" font-size="16">${esc(title)}</text>\n${body}\n</svg>\n`;
}
