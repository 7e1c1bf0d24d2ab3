// A generated module in a real browser: examples/fashion-app/web (models/mlp.nnet imported through nnetc's Vite
// plugin, hence the platform-neutral nnetc/runtime) is built with Vite and opened in Debian's Chromium, headless,
// driven by playwright-core (which never downloads a browser). The page loads weights that Node saved, predicts
// Fashion-MNIST test images three ways — tfjs on the wasm backend, tfjs on webgpu (navigator.gpu: Chromium's
// SwiftShader adapter under --enable-unsafe-webgpu; where the browser offers no adapter the run says so and is
// skipped), and engine "onnx" on onnxruntime-web's wasm build (its .wasm emitted by Vite, served by the test's
// server) — and each's logits must be Node's on the same weights and input. Every request the page makes goes
// to the test's server (anything else is aborted and fails the test). One browser launch; a screenshot of each
// run is kept in spec/artifacts/ (gitignored).
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ROOT, runNode } from "../helpers.js";

const CHROMIUM = "/usr/bin/chromium";
// --enable-unsafe-webgpu: WebGPU on Linux, where Chromium otherwise offers no adapter (here it gives SwiftShader's, a CPU one).
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const WEB = path.join(ROOT, "examples/fashion-app/web");
const ARTIFACTS = path.join(ROOT, "spec/artifacts");
const TOLERANCE = 1e-5;
const VITE_LIMIT_S = 300;

let work = "";
test.before(() => {
  work = mkdtempSync(path.join(tmpdir(), "nnetc-browser-"));
});
test.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Node's side: a seeded MLP saved as model.safetensors, 8 test images as input.json, and its logits for them. */
const NODE_SIDE = (out: string) => `
import { writeFileSync } from "node:fs";
import * as nn from ${JSON.stringify(path.join(ROOT, "dist/runtime/node.js"))};
import mlp from ${JSON.stringify(path.join(ROOT, "models/mlp.nnet"))};
const model = await mlp.create({ seed: 7, backend: "wasm" });
const batch = await nn.sampleBatch(model, 8);
const images = batch.image.arraySync();
const logits = mlp.predict(model, { image: batch.image }).logits.arraySync();
await mlp.save(model, ${JSON.stringify(out)});
writeFileSync(${JSON.stringify(path.join(out, "input.json"))}, JSON.stringify({ images }));
console.log(JSON.stringify({ backend: model.backend, logits }));
`;

const MIME: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json", ".safetensors": "application/octet-stream" };

/** A static server for `dir` on 127.0.0.1 (a secure context, so WebCrypto checks the weights' fingerprint). */
function serve(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const file = path.join(dir, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    if (!file.startsWith(dir + path.sep) || !existsSync(file)) return void res.writeHead(404).end("not found");
    res.writeHead(200, { "content-type": MIME[path.extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  return new Promise((done) => server.listen(0, "127.0.0.1", () => done(server)));
}

/** The page's runs: query string, the backend the model reports, the engine, the screenshot's name. */
const RUNS = [
  { query: "backend=wasm", backend: "wasm", engine: "tfjs", shot: "browser-fashion-app.png" },
  { query: "backend=webgpu", backend: "webgpu", engine: "tfjs", shot: "browser-fashion-app-webgpu.png" },
  { query: "backend=wasm&engine=onnx", backend: "wasm", engine: "onnx", shot: "browser-fashion-app-onnx.png" },
] as const;

type PageResult = { backend: string; engine: string; logits: number[][]; classes: number[] } | { error: string };

test("examples/fashion-app/web: built by Vite with nnetc's plugin, run in Chromium on wasm, webgpu and onnxruntime-web, predicts as Node does", async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: node scripts/setup.mjs installs Debian's chromium (apt-get install chromium)`);
  const site = path.join(work, "site");
  const saved = path.join(work, "saved");
  mkdirSync(saved);
  // Node's side and Vite's build at once (both are mostly waiting on one core each).
  const { build } = await import("vite");
  const [node] = await Promise.all([
    runNode(["--import", "nnetc/register", "--input-type=module", "-e", NODE_SIDE(saved)], { env: { ...process.env, NNETC_CACHE_DIR: path.join(work, "cache") }, timeoutMs: 120_000 }),
    // Bounded: about a minute on a shared 2-core machine; a build that hangs fails the test instead.
    Promise.race([
      build({ configFile: path.join(WEB, "vite.config.mjs"), root: WEB, logLevel: "silent", build: { outDir: site, emptyOutDir: true, minify: false, reportCompressedSize: false } }),
      new Promise((_, fail) => setTimeout(() => fail(new Error(`Vite's build of ${WEB} took over ${VITE_LIMIT_S} s`)), VITE_LIMIT_S * 1000).unref()),
    ]),
  ]);
  assert.is(node.code, 0, node.stderr);
  const expected = JSON.parse(node.stdout.trim().split("\n").pop()!) as { backend: string; logits: number[][] };
  assert.is(expected.backend, "wasm");
  copyFileSync(path.join(saved, "model.safetensors"), path.join(site, "model.safetensors"));
  copyFileSync(path.join(saved, "input.json"), path.join(site, "input.json"));

  // The page's code is for a browser: no Node built-in, no Node-only runtime module, no path of this machine.
  const code = readdirSync(path.join(site, "assets")).filter((f) => f.endsWith(".js")).map((f) => readFileSync(path.join(site, "assets", f), "utf8")).join("\n");
  assert.not.match(code, /from\s*["']node:|require\(["']node:/, "a Node built-in in the bundle");
  assert.not.ok(code.includes(ROOT), "the build machine's path is in the bundle");
  assert.ok(code.includes("nnet:/models/mlp.nnet"), "the module's source is pinned for a browser");

  assert.match(code, /registerInference\(source/, "the plugin ships the inference graph (engine onnx)");
  assert.ok(readdirSync(path.join(site, "assets")).some((f) => /^ort-wasm-simd-threaded.*\.wasm$/.test(f)), "onnxruntime-web's .wasm is emitted beside the page");

  const server = await serve(site);
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
  const report: Record<string, unknown> = {};
  try {
    const page = await browser.newPage({ viewport: { width: 640, height: 420 } });
    const logs: string[] = [];
    const elsewhere: string[] = [];
    page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
    // No network: the page, its scripts and every .wasm come from the test's server.
    await page.route("**/*", (route) => (route.request().url().startsWith(origin + "/") ? route.continue() : (elsewhere.push(route.request().url()), route.abort())));
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.goto(`${origin}/index.html?weights=none`);
    const adapter = await page.evaluate(async () => {
      const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ info?: { vendor?: string; architecture?: string } } | null> } }).gpu;
      if (!gpu) return null;
      const a = await gpu.requestAdapter();
      return a ? `${a.info?.vendor ?? "?"} ${a.info?.architecture ?? ""}`.trim() : null;
    });
    for (const run of RUNS) {
      const what = `${run.engine} on ${run.backend}`;
      if (run.backend === "webgpu" && !adapter) {
        console.log(`    ${what}: skipped, the browser offers no WebGPU adapter (navigator.gpu.requestAdapter() gave none)`);
        report[what] = "no adapter";
        continue;
      }
      logs.length = 0;
      await page.goto(`${origin}/index.html?weights=model.safetensors&input=input.json&${run.query}`);
      const got = (await page.evaluate(() => Promise.race([(window as unknown as { nnetcResult: Promise<unknown> }).nnetcResult, new Promise((done) => setTimeout(() => done({ error: "no result in 90 s" }), 90_000))]))) as PageResult;
      await page.screenshot({ path: path.join(ARTIFACTS, run.shot) });
      assert.not.ok("error" in got, `${what}: the page failed: ${"error" in got ? got.error : ""}\n${logs.join("\n")}`);
      if ("error" in got) return;
      assert.is(got.backend, run.backend, what);
      assert.is(got.engine, run.engine, what);
      assert.is(got.logits.length, expected.logits.length);
      let worst = 0;
      got.logits.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - expected.logits[i]![j]!)))));
      assert.ok(worst <= TOLERANCE, `${what}: browser and Node logits differ by ${worst} (> ${TOLERANCE})`);
      const argmax = (r: number[]) => r.indexOf(Math.max(...r));
      assert.equal(got.classes, expected.logits.map(argmax), what);
      console.log(`    ${what}${run.backend === "webgpu" ? ` (adapter: ${adapter})` : ""}: max |browser - Node| ${worst.toExponential(1)}; screenshot ${path.relative(ROOT, path.join(ARTIFACTS, run.shot))}`);
      report[what] = { maxAbsDiff: worst, classes: got.classes, ...(run.backend === "webgpu" ? { adapter } : {}) };
    }
    assert.equal(elsewhere, [], "requests that did not go to the test's server");
    writeFileSync(path.join(ARTIFACTS, "browser-fashion-app.json"), JSON.stringify(report, null, 2) + "\n");
  } finally {
    await browser.close();
    server.close();
  }
});

test.run();
