// runtime/ops.ts globalMax (global_max_pool1d/2d): its written-out gradient (a mask from (x − max) == 0, which
// avoids tfjs-backend-wasm's slow broadcasting Equal) equals tf.max's own, exactly, ties included (every tied
// position gets dy, as tf.max's gradient gives it), on wasm and cpu.
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { initBackend } from "../../runtime/backend.js";
import { Rng } from "../../runtime/data/rng.js";
import * as ops from "../../runtime/ops.js";

test.before(async () => {
  await initBackend("wasm");
});

test("globalMax's value and gradient equal tf.max's (pool1d and pool2d shapes, ties, any backend)", () => {
  const sample = fc.record({ dims: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 3, maxLength: 4 }), levels: fc.integer({ min: 1, max: 5 }), seed: fc.integer({ min: 1, max: 1 << 30 }) });
  fc.assert(
    fc.property(sample, ({ dims, levels, seed }) => {
      const rng = new Rng(seed);
      const axes = dims.length === 3 ? [1] : [1, 2];
      const n = dims.reduce((a, b) => a * b, 1);
      // Few distinct values, so that ties are common; some negative.
      const xs = Array.from({ length: n }, () => Math.floor(rng.next() * levels) - 1.5);
      const outN = n / axes.reduce((a, i) => a * dims[i]!, 1);
      const mix = Array.from({ length: outN }, () => rng.next() * 2 - 1);
      for (const backend of ["wasm", "cpu"]) {
        tf.setBackend(backend);
        const [ours, theirs] = [(x: tf.Tensor) => ops.globalMax(x, axes), (x: tf.Tensor) => tf.max(x, axes)].map((f) =>
          tf.tidy(() => {
            const x = tf.tensor(xs, dims);
            const y = f(x);
            const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(f(x), tf.tensor(mix, y.shape))))(x);
            return [y.shape, Array.from(y.dataSync()), Array.from(g.dataSync())];
          }),
        );
        assert.equal(ours, theirs, `${backend} ${JSON.stringify(dims)}`);
      }
      tf.setBackend("wasm");
    }),
    { numRuns: 60, seed: 5 },
  );
});

test.run();
