// nnetc plot: one panel per quantity, train and validation curves together, valid SVG.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { plotSvg } from "../../runtime/plot.js";

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

test.run();
