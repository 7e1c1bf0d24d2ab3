// Semantics of the language: blocks, repeat, naming, sharing, imports, symbolic shapes, plans.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { globMatches } from "../../compiler/check/index.js";
import { summarize } from "../../compiler/summary.js";
import { codes, compileText, expectClean } from "../helpers.js";

const model = (body: string, extra = "") => compileText(`${extra}\nmodel M {\n${body}\n}`);
const shapeOf = (r: ReturnType<typeof compileText>, binding: string) => r.module.models[0]!.nodes.find((n) => n.binding === binding)?.shape;

test("repeat with an index and compile-time conditionals", () => {
  const r = model(`input x: f32[batch, 32, 32, 3]
    repeat 3 as i { x = x -> conv2d(8 * (i + 1), 3, stride: i == 0 ? 1 : 2, padding: same) }
    output y = x -> flatten`);
  expectClean(r);
  assert.equal(shapeOf(r, "y"), ["batch", 8 * 8 * 24]);
  assert.equal(r.module.models[0]!.nodes.filter((n) => n.op === "conv2d").map((n) => n.name), ["conv2d", "conv2d_1", "conv2d_2"]);
});

test("block instances become layer-name prefixes; as names a layer", () => {
  const r = model(`input x: f32[batch, 8]
    output y = x -> B(4) -> B(2) -> dense(1) as head`, `block B(n: int) { out = in -> dense(n) -> relu }`);
  expectClean(r);
  assert.equal(r.module.models[0]!.params.map((p) => p.name), ["B/dense/kernel", "B/dense/bias", "B_1/dense/kernel", "B_1/dense/bias", "head/kernel", "head/bias"]);
});

test("a name given twice with as is an error", () => {
  const r = model(`input x: f32[batch, 8]
    output y = x -> dense(4) as a -> dense(2) as a`);
  assert.equal(codes(r), ["NN2003"]);
});

test("a layer instance applied twice shares one set of weights", () => {
  const r = model(`input a: f32[batch, 16]
    input b: f32[batch, 16]
    layer enc = dense(8)
    output y = (a -> enc) + (b -> enc)`);
  expectClean(r);
  const s = summarize(r.module.models[0]!);
  assert.is(s.params.total, 16 * 8 + 8);
  assert.ok(s.layers.some((l) => l.name === "enc" && l.shared));
});

test("a shared layer applied to a different feature size is an error", () => {
  const r = model(`input a: f32[batch, 16]
    input b: f32[batch, 12]
    layer enc = dense(8)
    output y = (a -> enc) + (b -> enc)`);
  assert.equal(codes(r), ["NN3014"]);
});

test("tied_dense reuses the embedding table", () => {
  const r = model(`input ids: i32[batch, seq <= 16]
    layer emb = embedding(100, 8)
    output logits = ids -> emb -> tied_dense(emb)`);
  expectClean(r);
  assert.is(summarize(r.module.models[0]!).params.total, 800);
  assert.equal(shapeOf(r, "logits"), ["batch", "seq", 100]);
});

test("imports bring blocks from other files; errors name the file and the block", () => {
  const files = { "lib.nnet": `block Mlp(n: int) { out = in -> dense(n) }` };
  const ok = compileText(`import { Mlp } from "./lib.nnet"\nmodel M { input x: f32[batch, 4]\n output y = x -> Mlp(2) }`, "main.nnet", files);
  expectClean(ok);
  assert.equal(codes(compileText(`import { Mpl } from "./lib.nnet"\nmodel M { input x: f32[batch, 4]\n output y = x }`, "main.nnet", files)), ["NN2009"]);
  assert.equal(codes(compileText(`import { A } from "./missing.nnet"\nmodel M { input x: f32[batch, 4]\n output y = x }`, "main.nnet", files)), ["NN2008"]);
  const cyc = { "a.nnet": `import { B } from "./b.nnet"\nblock A() { out = in }`, "b.nnet": `import { A } from "./a.nnet"\nblock B() { out = in }` };
  assert.ok(codes(compileText(cyc["a.nnet"]!, "a.nnet", cyc)).includes("NN2020"));
});

test("a block that uses itself is reported, not expanded forever", () => {
  const r = model(`input x: f32[batch, 4]\n output y = x -> Loop(1)`, `block Loop(n: int) { out = in -> Loop(n) }`);
  assert.ok(codes(r).includes("NN2015"));
});

test("symbolic dimensions flow through flatten, reshape and matmul", () => {
  const r = model(`input x: f32[batch, seq <= 64, 32]
    output f = x -> flatten
    heads = x -> reshape([seq, 4, 8]) -> transpose([0, 2, 1, 3])
    back = heads -> transpose([0, 2, 1, 3]) -> reshape([-1, 32])
    output y = back + x
    output flat = f`);
  expectClean(r);
  assert.equal(shapeOf(r, "f"), ["batch", "32*seq"]);
  assert.equal(shapeOf(r, "heads"), ["batch", 4, "seq", 8]);
  assert.equal(shapeOf(r, "back"), ["batch", "seq", 32]);
});

test("conv and pool arithmetic: padding, stride, dilation", () => {
  const r = model(`input x: f32[batch, 28, 28, 1]
    output a = x -> conv2d(4, 3, stride: 2, padding: same)
    output b = x -> conv2d(4, 3, dilation: 2)
    output c = x -> conv2d(4, [5, 3]) -> max_pool2d(3, stride: 2)
    output y = concat(a -> flatten, b -> flatten, c -> flatten, axis: 1)`);
  expectClean(r);
  assert.equal(shapeOf(r, "a"), ["batch", 14, 14, 4]);
  assert.equal(shapeOf(r, "b"), ["batch", 24, 24, 4]);
  assert.equal(shapeOf(r, "c"), ["batch", 11, 12, 4]);
});

test("a window larger than its input is caught with the sizes", () => {
  const r = model(`input x: f32[batch, 4, 4, 1]\n output y = x -> conv2d(2, 5)`);
  assert.equal(codes(r), ["NN3004"]);
  assert.match(r.diagnostics[0]!.message, "window 5");
});

test("attention heads must divide the width; positional embeddings bound the sequence", () => {
  assert.equal(codes(model(`input x: f32[batch, 16, 768]\n output y = x -> attention(10)`)), ["NN3005"]);
  assert.equal(codes(model(`input x: f32[batch, seq, 8]\n output y = x -> pos_embedding(32)`)), ["NN3011"]);
  assert.equal(codes(model(`input x: f32[batch, seq <= 64, 8]\n output y = x -> pos_embedding(32)`)), ["NN3011"]);
  expectClean(model(`input x: f32[batch, seq <= 32, 8]\n output y = x -> pos_embedding(32)`));
});

test("every error in a file is reported, without cascades from an unknown shape", () => {
  const r = model(`input x: f32[batch, 28, 28, 1]
    output a = x -> dense(10)
    b = a -> relu -> dense(4)
    output c = x -> conv2dd(3, 3)
    output y = x -> attention(5)`);
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  assert.equal(errors.map((d) => d.code), ["NN3001", "NN2001", "NN3001"]);
  assert.match(errors[1]!.hint!, 'did you mean "conv2d"?');
});

test("an unused binding is a warning, not an error", () => {
  const r = model(`input x: f32[batch, 4]\n dead = x -> dense(3)\n output y = x -> dense(2)`);
  assert.equal(codes(r), ["NN2021"]);
  assert.is(r.diagnostics[0]!.severity, "warning");
});

test("literal scalars take the other operand's type", () => {
  expectClean(model(`input ids: i32[batch, 8]\n output z = ids * 0`));
  expectClean(model(`input x: f32[batch, 8]\n output z = x * 0.5 + 1`));
});

test("freeze globs: * within a segment, ** across, block instances select their insides", () => {
  assert.ok(globMatches("conv*", "conv2d_1"));
  assert.not.ok(globMatches("conv*", "Stage/conv2d"));
  assert.ok(globMatches("**/conv*", "Stage/Bottleneck/conv2d"));
  assert.ok(globMatches("Stage_1", "Stage_1/Bottleneck/conv2d"));
  assert.not.ok(globMatches("Stage_1", "Stage_10/conv2d"));
  assert.ok(globMatches("Layer_[1-3]", "Layer_2/dense"));
  assert.not.ok(globMatches("Layer_[1-3]", "Layer_4/dense"));
  assert.not.ok(globMatches("[z-a]", "z"));
});

const DATA = `dataset d {
  source idx(images: "i.gz", labels: "l.gz")
  field x: f32[8] = images -> reshape([8])
  field label: i32 = labels
}`;

test("plans: weighted losses, metric defaults, phases and freeze by binding", () => {
  const r = compileText(`model M { input x: f32[batch, 8]
    features = x -> dense(16, activation: relu)
    output logits = features -> dense(3) }
  ${DATA}
  train M on d {
    loss 0.7 * cross_entropy(logits, label, smoothing: 0.1) + 0.3 * cross_entropy(logits, label)
    metrics accuracy, f1(average: macro)
    validation 0.2
    phase pretrain { epochs 2 }
    phase finetune { freeze features; lr 1e-4; epochs 1; early_stop monitor: val_f1, patience: 1 }
  }`);
  expectClean(r);
  const plan = r.module.plans[0]!;
  assert.equal(plan.loss.map((t) => [t.weight, t.fn, t.prediction, t.target]), [[0.7, "cross_entropy", "logits", "label"], [0.3, "cross_entropy", "logits", "label"]]);
  assert.equal(plan.metrics[0]!.args, { prediction: "logits", target: "label", ignore: null });
  assert.equal(plan.phases.map((p) => p.frozenLayers), [[], ["dense"]]);
  assert.is(plan.phases[1]!.optimizer.args.lr, 1e-4);
  assert.is(plan.phases[1]!.earlyStop!.mode, "max");
});

test("plans: wrong references, targets and monitors are caught", () => {
  const r = compileText(`model M { input x: f32[batch, 8]\n output logits = x -> dense(3, activation: softmax) }
  ${DATA}
  train M on d {
    loss cross_entropy(logits, labels)
    metrics acuracy
    early_stop monitor: val_loss
  }`);
  assert.equal(codes(r), ["NN4002", "NN4001", "NN4007"]);
});

test("plans: cross_entropy on a softmax output warns that logits are expected", () => {
  const r = compileText(`model M { input x: f32[batch, 8]\n output probs = x -> dense(3) -> softmax }
  ${DATA}
  train M on d { loss cross_entropy(probs, label) }`);
  assert.equal(codes(r), ["NN4005"]);
});

test("slice, squeeze and expand_dims: shapes over fixed and symbolic axes, negative axes counted from the end", () => {
  const r = model(`input x: f32[batch, seq <= 16, 8]
    output a = x -> slice(1)
    output b = x -> slice(1, -2)
    output c = x -> slice(-3)
    output d = x -> slice(-3, -1, axis: 1)
    output e = x -> slice(0, 1) -> squeeze(1)
    output f = x -> slice(2, 6, axis: -1)
    output g = x -> expand_dims(-1)
    output h = x -> expand_dims(1) -> squeeze(-3)
    `);
  expectClean(r);
  assert.equal(["a", "b", "c", "d", "e", "f", "g", "h"].map((k) => shapeOf(r, k)), [
    ["batch", "seq-1", 8], ["batch", "seq-3", 8], ["batch", 3, 8], ["batch", 2, 8], ["batch", 8], ["batch", "seq", 4], ["batch", "seq", 8, 1], ["batch", "seq", 8],
  ]);
  const bad = (body: string) => codes(model(`input x: f32[batch, seq <= 16, 8]\n${body}`));
  assert.equal(bad("output y = x -> slice(-3, 2)"), ["NN2019"]);
  assert.equal(bad("output y = x -> slice(3, 3, axis: 2)"), ["NN2019"]);
  assert.equal(bad("output y = x -> slice(0, 9, axis: 2)"), ["NN3017"]);
  assert.equal(bad("output y = x -> slice(-9, axis: 2)"), ["NN3017"]);
  assert.equal(bad("output y = x -> slice(0, axis: 0)"), ["NN3009"]);
  assert.equal(bad("output y = x -> squeeze(1)"), ["NN3001"]);
  assert.equal(bad("output y = x -> squeeze(3)"), ["NN3009"]);
  assert.equal(bad("output y = x -> expand_dims(0)"), ["NN3009"]);
  assert.equal(bad("output y = x -> expand_dims(-5)"), ["NN3009"]);
  assert.equal(bad("output y = x -> groupnorm(3)"), ["NN3010"]);
  assert.equal(bad("output y = x -> flatten -> instancenorm"), ["NN3001"]);
  assert.equal(bad("output y = x -> parameter([0, 4])"), ["NN2019"]);
  assert.equal(bad("output y = x -> parameter([65536, 65536])"), ["NN2019"]);
  const p = model(`input x: f32[batch, seq <= 16, 8]\n output y = concat(x -> parameter([1, 8]) as cls, x, axis: 1)`);
  expectClean(p);
  assert.equal(shapeOf(p, "y"), ["batch", "seq+1", 8]);
  assert.equal(p.module.models[0]!.params.map((w) => [w.name, w.shape, w.init]), [["cls/value", [1, 8], "zeros"]]);
});

test.run();
