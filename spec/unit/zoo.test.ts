// The model zoo is the end-to-end test set: every file checks clean, and parameter counts equal
// what the reference implementations publish (Keras applications, the original BERT and GPT-2).
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile } from "../../compiler/index.js";
import { summarize } from "../../compiler/summary.js";
import { memoryHost, ROOT } from "../helpers.js";

const MODELS = path.join(ROOT, "models");
const files = readdirSync(MODELS).filter((f) => f.endsWith(".nnet")).sort();

function load(file: string) {
  const rel = path.join("models", file);
  return compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), memoryHost());
}

/** [file, model, total, non-trainable, source of the figure] */
const PUBLISHED: [string, string, number, number, string][] = [
  ["mlp.nnet", "MLP", 203_530, 0, "Keras Dense(256) + Dense(10) on 784 inputs"],
  ["fashion_cnn.nnet", "FashionCNN", 225_034, 0, "the PyTorch peer in shared/peers/torch_fmnist.py"],
  ["lenet5.nnet", "LeNet5", 61_706, 0, "LeNet-5, 6 and 16 filters of 5x5, 120-84-10"],
  ["vgg16.nnet", "VGG16", 138_357_544, 0, "keras.applications.VGG16(include_top=True)"],
  ["resnet50.nnet", "ResNet50", 25_636_712, 53_120, "keras.applications.ResNet50(include_top=True)"],
  ["mobilenet_v2.nnet", "MobileNetV2", 3_538_984, 34_112, "keras.applications.MobileNetV2(alpha=1.0, include_top=True)"],
  ["bert_base.nnet", "BertBase", 109_482_240, 0, "BERT-base uncased with pooler (HF BertModel)"],
  ["gpt2_small.nnet", "GPT2Small", 124_439_808, 0, "GPT-2 small with tied embeddings (HF GPT2LMHeadModel)"],
  ["llama.nnet", "SmolLM135M", 134_515_008, 0, "SmolLM-135M, the Llama architecture with tied embeddings (HF LlamaForCausalLM)"],
  ["text_classifier.nnet", "SpamClassifier", 1_346_306, 0, "Keras Embedding(20000, 64) + Bidirectional(LSTM(64)) + Dense(2)"],
  ["autoencoder.nnet", "Autoencoder", 209_968, 0, "Keras Dense 784-128-32-128-784"],
  ["vae.nnet", "VAE", 134_165, 0, "Keras's VAE example: encoder 69,076 + decoder 65,089"],
  ["resnet_cifar.nnet", "ResNet20", 274_042, 1_568, "ResNet-20 (He et al. 2015, 0.27 M), 1×1 projection shortcuts, convolutions without bias: 496 + 14,208 + 52,096 + 206,592 + 650 by hand"],
];

test("the zoo holds the ten models the language issue names", () => {
  for (const [f] of PUBLISHED) assert.ok(files.includes(f), `models/${f} is missing`);
});

for (const f of files) {
  test(`models/${f} checks clean and has a training plan`, () => {
    const r = load(f);
    assert.equal(r.diagnostics.map((d) => `${d.code} ${d.message}`), []);
    assert.ok(r.module.plans.length >= 1, "every zoo model has a training plan");
  });
}

for (const [f, model, total, nonTrainable, source] of PUBLISHED) {
  test(`${model} has ${total.toLocaleString("en-US")} parameters (${source})`, () => {
    const m = load(f).module.models.find((x) => x.name === model);
    assert.ok(m, `no model ${model} in ${f}`);
    const s = summarize(m!);
    assert.is(s.params.total, total);
    assert.is(s.params.nonTrainable, nonTrainable);
    assert.ok(s.flops > 0, "FLOPs are counted");
  });
}

test("FLOPs match the usual published figures within 5%", () => {
  // ResNet-50 ≈ 3.9 G multiply-adds, VGG16 ≈ 15.5 G, MobileNetV2 ≈ 0.30 G (x2 FLOPs per multiply-add).
  const expect: [string, string, number][] = [["resnet50.nnet", "ResNet50", 7.75e9], ["vgg16.nnet", "VGG16", 30.9e9], ["mobilenet_v2.nnet", "MobileNetV2", 0.61e9]];
  for (const [f, name, flops] of expect) {
    const s = summarize(load(f).module.models.find((x) => x.name === name)!);
    assert.ok(Math.abs(s.flops - flops) / flops < 0.05, `${name}: ${s.flops} FLOPs`);
  }
});

test("fine-tuning phases freeze what they name", () => {
  const plan = load("gpt2_small.nnet").module.plans[0]!;
  const frozen = plan.phases[0]!.frozenLayers;
  assert.ok(frozen.includes("wte") && frozen.includes("wpe"));
  assert.ok(frozen.includes("DecoderLayer_7/attn") && !frozen.some((l) => l.startsWith("DecoderLayer_8/")));
  const mobile = load("mobilenet_v2.nnet").module.plans[0]!;
  assert.ok(mobile.phases[0]!.frozenLayers.length > 50, "freeze features freezes the whole backbone");
  assert.not.ok(mobile.phases[0]!.frozenLayers.includes("dense"), "but not the head");
  assert.is(mobile.phases[1]!.frozenLayers.length, 0);
});

test.run();
