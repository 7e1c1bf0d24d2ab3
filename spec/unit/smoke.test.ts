import { test } from "uvu";
import * as assert from "uvu/assert";
import { codes, compileText, expectClean } from "../helpers.js";
import { summarize } from "../../compiler/summary.js";

test("an MLP checks clean and counts its parameters", () => {
  const r = compileText(`model M { input x: f32[batch, 784]
    h = x -> dense(256, activation: relu)
    output y = h -> dense(10) }`);
  expectClean(r);
  const s = summarize(r.module.models[0]!);
  assert.is(s.params.total, 203530);
});

test("dense on an image suggests flatten", () => {
  const r = compileText(`model M { input x: f32[batch, 28, 28, 1]
    output y = x -> dense(10) }`);
  assert.equal(codes(r), ["NN3001"]);
  assert.match(r.diagnostics[0]!.hint!, "add flatten");
});

test.run();
