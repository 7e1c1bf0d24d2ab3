// The MLP of models/mlp.nnet, used through its compiled TypeScript module: create, train one epoch with the
// file's plan, predict, save, load. Generate the module first (see README.md):
//   npx nnetc compile models/mlp.nnet -o examples/fashion-app/generated
import * as tf from "@tensorflow/tfjs-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as nn from "nnetc/runtime";
import mlp, { type Inputs } from "./generated/mlp.js";

const work = mkdtempSync(path.join(tmpdir(), "fashion-app-"));
const model = await mlp.create({ seed: 1 });
console.log(`${mlp.name}: ${mlp.params.length} weight tensors, backend ${model.backend}`);

// One epoch of the plan in mlp.nnet (Adam, batches of 128) on Fashion-MNIST: without the training files,
// nnetc/runtime splits the 10,000 test images shipped with nnetc 80/20 into training and test data.
const run = await mlp.fit(model, { epochs: 1, out: path.join(work, "run"), log: false });
console.log(`trained 1 epoch: loss ${run.epochs[0]!.loss.toFixed(3)}, test accuracy ${(run.test!.accuracy! * 100).toFixed(1)}%`);

// Predict the first 500 test images and count the right answers ourselves.
const test = await nn.sampleBatch(model, 500);
const image = test.image as Inputs["image"];
const labels = test.label!.dataSync();
const predicted = (m: typeof model) => tf.tidy(() => mlp.predict(m, { image }).logits.argMax(-1).dataSync());
const classes = predicted(model);
const correct = classes.filter((c, i) => c === labels[i]).length;
const names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"];
console.log(`first predictions: ${[...classes.slice(0, 5)].map((c) => names[c]).join(", ")}`);
console.log(`accuracy on ${labels.length} test images: ${((100 * correct) / labels.length).toFixed(1)}%`);

// Save as model.safetensors + model.json, load into a new model, and check it predicts the same.
await mlp.save(model, path.join(work, "saved"));
const loaded = await mlp.load(path.join(work, "saved"));
const same = predicted(loaded).every((c, i) => c === classes[i]);
console.log(`saved to ${path.join(work, "saved")}; the loaded model predicts the same: ${same}`);

mlp.dispose(model);
mlp.dispose(loaded);
tf.dispose(test);
