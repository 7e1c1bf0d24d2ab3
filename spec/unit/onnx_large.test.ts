// ONNX export of the zoo's large models (ResNet-50 at -O1 and -O2, VGG16, BERT-base, GPT-2 small), each in a
// process of its own: onnxruntime-node against the interpreter on the same weights (max |Δ| ≤ 1e-4, batch 2,
// batch 1 for 224×224 images) and the ONNX checker (full_check). Slow on a small machine (minutes: most of it
// the interpreter's 224×224 convolutions on wasm and copying hundreds of MB of weights).
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertClose, equivalence, LARGE, onnxCheck } from "./onnx_shared.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "nnetc-onnx-large-"));

const RUNS: [string, number][] = [["resnet50.nnet", 1], ["resnet50.nnet", 2], ...LARGE.filter((f) => f !== "resnet50.nnet").map((f): [string, number] => [f, 1])];

for (const [file, level] of RUNS) {
  test(`onnx: models/${file} at -O${level} equals the interpreter in onnxruntime and passes the ONNX checker`, async () => {
    const lines = await equivalence(tmp, [`${level}:${file}`]);
    assert.is(lines.length, 1);
    assertClose(lines);
    onnxCheck(lines.map((l) => l.onnx));
    // Each file is hundreds of MB: gone before the next model's.
    rmSync(lines[0]!.onnx, { force: true });
  });
}

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test.run();
