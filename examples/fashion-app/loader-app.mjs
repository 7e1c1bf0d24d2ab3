// The same MLP, imported straight from its .nnet file: nnetc/register compiles models/mlp.nnet on first
// import (and caches the JavaScript in node_modules/.cache/nnetc until the file changes). Run from the
// repository root:
//   node --import nnetc/register examples/fashion-app/loader-app.mjs
import * as tf from "@tensorflow/tfjs-core";
import * as nn from "nnetc/runtime";
import mlp from "../../models/mlp.nnet";

const model = await mlp.create({ seed: 2 });
console.log(`imported ${mlp.name} from ${mlp.def.source.pathname.split("/").slice(-2).join("/")}: inputs ${mlp.inputs.map((i) => `${i.name} [${i.shape}]`).join(", ")}`);

// A hand-written loop: 3 passes of trainStep over the first 2,048 training images, in batches of 128.
const train = await nn.sampleBatch(model, 2048, { split: "train" });
for (let pass = 1; pass <= 3; pass++) {
  let total = 0;
  for (let start = 0; start < 2048; start += 128) {
    const batch = tf.tidy(() => ({ image: train.image.slice(start, 128), label: train.label.slice(start, 128) }));
    total += mlp.trainStep(model, batch);
    tf.dispose(batch);
  }
  console.log(`pass ${pass}: mean loss ${(total / 16).toFixed(3)}`);
}

// Accuracy on 1,000 test images, and the plan's own metrics on the whole test split.
const test = await nn.sampleBatch(model, 1000);
const correct = tf.tidy(() => mlp.predict(model, { image: test.image }).logits.argMax(-1).equal(test.label).sum().dataSync()[0]);
console.log(`accuracy on 1000 test images: ${(correct / 10).toFixed(1)}%`);
const metrics = await mlp.evaluate(model);
console.log(`evaluate(): loss ${metrics.loss.toFixed(3)}, accuracy ${(metrics.accuracy * 100).toFixed(1)}%`);

mlp.dispose(model);
tf.dispose([train, test]);
