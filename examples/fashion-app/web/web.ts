// The MLP of models/mlp.nnet in a browser: bundled by Vite with nnetc's plugin (`import mlp from "….nnet"`),
// which gives the module the platform-neutral nnetc/runtime. It loads trained weights from a URL (a
// model.safetensors that `nnetc train` or save() wrote), predicts a batch of images on the wasm backend and
// shows them with their predicted classes. Build and serve (see ../README.md):
//   npx vite build examples/fashion-app/web     (writes examples/fashion-app/web/dist)
// URL parameters: weights (default model.safetensors), input (default input.json: { "images": [[784 floats in
// [0, 1]], …] }), backend (default wasm; webgpu and cpu work too), engine (default tfjs; "onnx": the model's
// inference graph, which nnetc's plugin ships, on onnxruntime-web's wasm build, loaded only then).
// spec/unit/browser.test.ts runs it in Chromium.
/// <reference types="vite/client" />
/// <reference types="nnetc/nnet-modules" />
import * as tf from "@tensorflow/tfjs-core";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import wasm from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url";
import wasmSimd from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url";
import wasmThreaded from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url";
import mlp from "../../../models/mlp.nnet";

const CLASSES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"];

/** What the page did, for a test driving it (window.nnetcResult): the backend or engine and the logits, or the error. */
type Result = { backend: string; engine: string; logits: number[][]; classes: number[] } | { error: string };

// The wasm files as Vite emits them (hashed names): tfjs looks for them beside the page otherwise.
setWasmPaths({ "tfjs-backend-wasm.wasm": wasm, "tfjs-backend-wasm-simd.wasm": wasmSimd, "tfjs-backend-wasm-threaded-simd.wasm": wasmThreaded });

const params = new URLSearchParams(location.search);
const status = document.getElementById("status")!;

/**
 * onnxruntime-web's wasm build, imported only for engine "onnx", its .wasm file as Vite emits it (one thread: a
 * page without cross-origin isolation has no SharedArrayBuffer).
 */
async function onnxRuntime(): Promise<unknown> {
  const [ort, { default: ortWasm }] = await Promise.all([import("onnxruntime-web/wasm"), import("onnxruntime-web/ort-wasm-simd-threaded.wasm?url")]);
  ort.env.wasm.wasmPaths = { wasm: ortWasm };
  ort.env.wasm.numThreads = 1;
  return ort;
}

async function run(): Promise<Result> {
  // backend: wasm here; "webgpu" (navigator.gpu) and "cpu" work too. engine "onnx": onnxruntime-web.
  const engine = params.get("engine") === "onnx" ? "onnx" : "tfjs";
  const model = await mlp.load(params.get("weights") ?? "model.safetensors", { backend: (params.get("backend") ?? "wasm") as "wasm", ...(engine === "onnx" ? { engine, ort: await onnxRuntime() } : {}) });
  const { images } = (await (await fetch(params.get("input") ?? "input.json")).json()) as { images: number[][] };
  const input = tf.tensor2d(images, [images.length, 784]);
  const logits = (await mlp.predictAsync(model, { image: input })).logits;
  input.dispose();
  const values = (await logits.array()) as number[][];
  const classes = Array.from(await logits.argMax(-1).data());
  logits.dispose();
  mlp.dispose(model);
  const grid = document.getElementById("grid")!;
  images.forEach((pixels, i) => {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 28;
    const img = new ImageData(28, 28);
    pixels.forEach((v, k) => img.data.set([255 * (1 - v), 255 * (1 - v), 255 * (1 - v), 255], 4 * k));
    canvas.getContext("2d")!.putImageData(img, 0, 0);
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = CLASSES[classes[i]!]!;
    figure.append(canvas, caption);
    grid.append(figure);
  });
  status.textContent = `${images.length} images predicted ${engine === "onnx" ? "by onnxruntime-web (wasm)" : `on the ${model.backend} backend`}`;
  return { backend: model.backend, engine, logits: values, classes };
}

(window as unknown as { nnetcResult: Promise<Result> }).nnetcResult = run().catch((e: Error) => {
  status.className = "error";
  status.textContent = String(e.stack ?? e);
  return { error: `${e.name}: ${e.message}` };
});
