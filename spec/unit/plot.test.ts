// nnetc plot: one panel per quantity, train and validation curves together, valid SVG; epochs on the x axis,
// phase boundaries marked; the PNG beside it decoded back (size, axes and tick labels drawn); the CLI writes both.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRequire } from "node:module";
import { epochTicks, PANEL, phaseBoundaries, plotSvg, svgToPng } from "../../runtime/plot.js";
import { ROOT } from "../helpers.js";

// pngjs (no type declarations): an independent decoder of what sharp wrote.
interface Png {
  width: number;
  height: number;
  data: Buffer;
}
const { PNG } = createRequire(import.meta.url)("pngjs") as { PNG: { sync: { read(b: Buffer): Png } } };

test("one panel per quantity with a path per series", () => {
  const records = [1, 2, 3].map((epoch) => ({ phase: "main", epoch, step: epoch * 10, lr: 1e-3, loss: 1 / epoch, val_loss: 1.2 / epoch, accuracy: 0.5 + epoch / 10, val_accuracy: 0.45 + epoch / 10, samplesPerSec: 100, seconds: 1 }));
  const svg = plotSvg(records, "run <1>");
  assert.ok(svg.startsWith("<svg") && svg.trim().endsWith("</svg>"));
  assert.is((svg.match(/<path /g) ?? []).length, 4, "loss, val_loss, accuracy, val_accuracy");
  assert.ok(svg.includes(">loss<") && svg.includes(">accuracy<"));
  assert.ok(svg.includes("run &lt;1&gt;"), "text is escaped");
  assert.not.ok(svg.includes("NaN"));
});

test("non-finite values are left out rather than drawn", () => {
  const svg = plotSvg([{ epoch: 1, loss: 1 }, { epoch: 2, loss: Number.NaN }, { epoch: 3, loss: 0.5 }], "r");
  assert.not.ok(svg.includes("NaN"));
});

/** Six epochs in two phases, with validation. */
const PHASED = [1, 2, 3, 4, 5, 6].map((epoch) => ({ phase: epoch <= 2 ? "warm" : "finetune", epoch, step: epoch * 10, lr: 1e-3, loss: 1 / epoch, val_loss: 1.2 / epoch, accuracy: 0.5 + epoch / 20, val_accuracy: 0.45 + epoch / 20, samplesPerSec: 100, seconds: 1 }));

test("epochs on the x axis: a tick and a label per whole epoch (fewer when there are many); phase boundaries dashed and named", () => {
  assert.equal(epochTicks(0, 6), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(epochTicks(0, 40), [0, 5, 10, 15, 20, 25, 30, 35, 40]);
  assert.equal(epochTicks(0, 300), [0, 50, 100, 150, 200, 250, 300]);
  assert.equal(phaseBoundaries(PHASED), [{ epoch: 2, next: "finetune", first: "warm" }]);
  const svg = plotSvg(PHASED, "r");
  for (const t of [0, 1, 2, 3, 4, 5, 6]) assert.ok(svg.includes(`text-anchor="middle">${t}</text>`), `tick label ${t}`);
  assert.is((svg.match(/stroke-dasharray/g) ?? []).length, 2, "one boundary line in each of the two panels");
  assert.is((svg.match(/>warm</g) ?? []).length, 2);
  assert.is((svg.match(/>finetune</g) ?? []).length, 2);
});

/** Is pixel (x, y) of a decoded PNG darker than light grey? */
const dark = (png: Png, x: number, y: number) => {
  const i = (png.width * Math.round(y) + Math.round(x)) * 4;
  return png.data[i]! + png.data[i + 1]! + png.data[i + 2]! < 3 * 120;
};

test("PNG: the SVG's size, the axes drawn along their whole length, tick labels under the x axis, blank margins", async () => {
  const png = PNG.sync.read(await svgToPng(plotSvg(PHASED, "run")));
  const { w, h, top, pad } = PANEL;
  assert.is(png.width, 2 * w, "two panels side by side");
  assert.is(png.height, top + h);
  for (let panel = 0; panel < 2; panel++) {
    const x0 = panel * w;
    const bottom = top + h - pad.b;
    // The x axis (its row, or the next: anti-aliasing of a 1px line at a half-pixel) and the y axis (its column).
    const row = (y: number) => Array.from({ length: w - pad.l - pad.r - 4 }, (_, k) => dark(png, x0 + pad.l + 2 + k, y)).filter(Boolean).length;
    assert.ok(Math.max(row(bottom - 1), row(bottom), row(bottom + 1)) > 0.95 * (w - pad.l - pad.r - 4), `panel ${panel}: the x axis is drawn`);
    const col = (x: number) => Array.from({ length: h - pad.t - pad.b - 4 }, (_, k) => dark(png, x, top + pad.t + 2 + k)).filter(Boolean).length;
    assert.ok(Math.max(col(x0 + pad.l - 1), col(x0 + pad.l), col(x0 + pad.l + 1)) > 0.95 * (h - pad.t - pad.b - 4), `panel ${panel}: the y axis is drawn`);
    // Tick labels: text pixels in the band under the x axis; the title and the y labels: text left of the y axis.
    let labels = 0;
    for (let y = bottom + 6; y < bottom + 17; y++) for (let x = x0 + pad.l; x < x0 + w - pad.r; x++) labels += dark(png, x, y) ? 1 : 0;
    assert.ok(labels > 50, `panel ${panel}: tick labels under the axis (${labels} dark pixels)`);
    let yLabels = 0;
    for (let y = top + pad.t; y < bottom; y++) for (let x = x0 + 4; x < x0 + pad.l - 6; x++) yLabels += dark(png, x, y) ? 1 : 0;
    assert.ok(yLabels > 50, `panel ${panel}: value labels beside the y axis (${yLabels})`);
  }
  // A blank margin stays blank: the bottom-right corner.
  for (let y = png.height - 3; y < png.height; y++) for (let x = png.width - 10; x < png.width; x++) assert.not.ok(dark(png, x, y));
});

test("nnetc plot DIR writes curves.svg and curves.png; -o FILE.svg puts both beside FILE", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-plot-"));
  writeFileSync(path.join(dir, "metrics.jsonl"), PHASED.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const cli = (args: string[]) => spawnSync(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "plot", ...args], { encoding: "utf8" });
  const r = cli([dir]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, `wrote ${dir}/curves.svg and ${dir}/curves.png\n`);
  assert.ok(readFileSync(path.join(dir, "curves.svg"), "utf8").startsWith("<svg"));
  assert.is(PNG.sync.read(readFileSync(path.join(dir, "curves.png"))).width, 2 * PANEL.w);
  const o = cli([dir, "-o", path.join(dir, "out.svg")]);
  assert.is(o.status, 0, o.stderr);
  assert.ok(PNG.sync.read(readFileSync(path.join(dir, "out.png"))).height > 0);
});

test.run();
