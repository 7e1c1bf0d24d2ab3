// An example project config (spec/language.md §15): one plugin adding an op, a loss, a metric, a data
// source, a preprocessing step and a training callback. nnetc loads this file for every .nnet file in this
// folder (and below it); `nnetc check wave.nnet`, `summary`, `train` (--engine tfjs or torch), `compile --target
// onnx` and the language server all see what it adds as if it were built in.
import { appendFileSync } from "node:fs";
import * as path from "node:path";
import { defineConfig, definePlugin } from "nnetc/config";

const swish = definePlugin({
  name: "swish-example",
  ops: [
    {
      name: "swish",
      doc: "x · sigmoid(beta · x) (Ramachandran et al., 2017); beta 1 is silu",
      params: [{ name: "beta", type: "float", default: 1, min: 0, doc: "the sigmoid's slope" }],
      // The default shape rule (shaped like its float input) would do; written out to show the API.
      shape: ([x]) => (x.dtype.startsWith("f") ? { shape: x.shape, dtype: x.dtype } : `swish needs a float tensor, not ${x.dtype} (add cast(f32))`),
      flops: (_ins, out) => 5 * out.reduce((a, b) => a * b, 1),
      tfjs: (tf, [x], a) => tf.mul(x, tf.sigmoid(tf.mul(x, a.beta))),
      // d/dx x·σ(βx) = σ(βx) + βx·σ(βx)(1 - σ(βx))
      gradient: (tf, [x], _y, dy, a) => {
        const s = tf.sigmoid(tf.mul(x, a.beta));
        return [tf.mul(dy, tf.add(s, tf.mul(tf.mul(tf.mul(x, a.beta), s), tf.sub(1, s))))];
      },
      onnx: (g) => g.op("Mul", [g.inputs[0], g.op("Sigmoid", [g.op("Mul", [g.inputs[0], g.scalar(g.attrs.beta)])])]),
      torch: ([x], a) => `${x} * torch.sigmoid(${a.beta} * ${x})`,
    },
  ],
  losses: [
    {
      name: "log_cosh",
      doc: "mean of log(cosh(prediction - target)): squared near 0, absolute far away (Keras's LogCosh)",
      // log(cosh(d)) = |d| + log1p(e^(-2|d|)) - log 2, stable for large |d|
      tfjs: (tf, p, t) => {
        const d = tf.abs(tf.sub(tf.reshape(p, [-1]), tf.cast(tf.reshape(t, [-1]), "float32")));
        return tf.mean(tf.sub(tf.add(d, tf.log1p(tf.exp(tf.mul(d, -2)))), Math.LN2));
      },
      torch: "((pred.reshape(-1) - target.reshape(-1)).abs() + torch.log1p(torch.exp(-2 * (pred.reshape(-1) - target.reshape(-1)).abs())) - math.log(2)).mean()",
    },
  ],
  metrics: [
    {
      name: "max_error",
      doc: "the largest |prediction - target| over the split",
      higherIsBetter: false,
      compute: ({ scores, targets }) => {
        let m = 0;
        for (let i = 0; i < scores.length; i++) m = Math.max(m, Math.abs(scores[i] - targets[i]));
        return m;
      },
    },
  ],
  sources: [
    {
      name: "waves",
      doc: "n samples of x = (sin t, cos t) and y = sin 2t for t evenly spread over [0, 2π)",
      columns: ["x", "y"],
      params: [{ name: "n", type: "int", default: 256, min: 1 }],
      load: ({ n }) => {
        const x = new Float32Array(2 * n);
        const y = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const t = (2 * Math.PI * i) / n;
          x[2 * i] = Math.sin(t);
          x[2 * i + 1] = Math.cos(t);
          y[i] = Math.sin(2 * t);
        }
        return { rows: n, columns: { x: { shape: [2], values: x }, y: { shape: [1], values: y } } };
      },
    },
  ],
  steps: [
    {
      name: "offset",
      doc: "add a constant to every value (of a sample)",
      params: [{ name: "by", type: "float" }],
      apply: (values, { by }) => values.map((v) => v + by),
    },
  ],
  callbacks: [
    {
      name: "epoch_file",
      doc: "appends each epoch's record to callback.jsonl in the run folder; stops when the loss is below NNETC_EXAMPLE_STOP_BELOW",
      onTrainBegin(info) {
        this.file = path.join(info.outDir, "callback.jsonl");
        appendFileSync(this.file, JSON.stringify({ event: "begin", model: info.model, epochs: info.epochs }) + "\n");
      },
      onEpochEnd(record) {
        appendFileSync(this.file, JSON.stringify({ event: "epoch", epoch: record.epoch, loss: record.loss }) + "\n");
        const below = Number(process.env.NNETC_EXAMPLE_STOP_BELOW);
        return below && record.loss < below ? "stop" : undefined;
      },
      onTrainEnd(info) {
        appendFileSync(this.file, JSON.stringify({ event: "end", epochs: info.epochs, stopped: info.stopped }) + "\n");
      },
    },
  ],
});

export default defineConfig({ plugins: [swish] });
