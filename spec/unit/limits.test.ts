// The resource limits of compiler/limits.ts: each refuses an input just over it with its numbered diagnostic,
// naming the file and the variable that raises it, within a second and without reading the input whole
// (/dev/zero, a FIFO, a gzip bomb). Limits are lowered through their environment variables.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TextDocument } from "vscode-languageserver-textdocument";
import { compile } from "../../compiler/index.js";
import { LIMITS, limit } from "../../compiler/limits.js";
import { Workspace } from "../../compiler/lsp/server.js";
import { readSource } from "../../compiler/read_source.js";
import { decodeWav } from "../../runtime/data/audio.js";
import { readDataFile } from "../../runtime/data/files.js";
import { readIdx } from "../../runtime/data/idx.js";
import { decodeImage, encodePng } from "../../runtime/data/image.js";
import { loadSource } from "../../runtime/data/sources.js";
import { ROOT } from "../helpers.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-limits-"));
const host = { readFile: (f: string) => readSource(f) };
const MODEL = "block Head(x) {\n  dense(x, 2)\n}\n";

/** Run `f` with the environment variables `env` set, assert it took under a second, then restore them. */
async function within<T>(env: Record<string, string>, f: () => T | Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    const ms = performance.now() - t0;
    for (const [k, v] of Object.entries(saved)) (v === undefined ? delete process.env[k] : (process.env[k] = v));
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  }
}

async function refused(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected ${re}`);
}

const importOf = (from: string) => `import { Head } from ${JSON.stringify(from)}\n`;

test("the table: each limit has its own code and variable, and a variable overrides the default", () => {
  const defs = Object.values(LIMITS);
  assert.is(new Set(defs.map((d) => d.code)).size, defs.length);
  assert.is(new Set(defs.map((d) => d.env)).size, defs.length);
  assert.is(limit("sourceBytes"), 4 * 2 ** 20);
  process.env.NNETC_MAX_SOURCE_MB = "0.5";
  assert.is(limit("sourceBytes"), 2 ** 19);
  process.env.NNETC_MAX_SOURCE_MB = "nonsense";
  assert.is(limit("sourceBytes"), 4 * 2 ** 20); // not a positive number: the default
  delete process.env.NNETC_MAX_SOURCE_MB;
});

test("NN7040: a source file just over NNETC_MAX_SOURCE_MB, and an import over it", async () => {
  const max = 1000;
  const big = path.join(dir, "big.nnet");
  writeFileSync(big, MODEL + "#".repeat(max - MODEL.length) + "\n");
  const env = { NNETC_MAX_SOURCE_MB: String(max / 2 ** 20) };
  await within(env, () => {
    const r = readSource(big);
    assert.ok("error" in r && r.refused?.code === "NN7040");
    assert.match((r as { error: string }).error, /^NN7040: .*big\.nnet: 0\.000955 MB is over the limit of 0\.000954 MB for a \.nnet file.*NNETC_MAX_SOURCE_MB=1 or more \(in MB; default 4\)/);
  });
  const main = path.join(dir, "main.nnet");
  const res = await within(env, () => compile(main, importOf("big.nnet"), host));
  const d = res.diagnostics.find((x) => x.code === "NN7040");
  assert.ok(d, JSON.stringify(res.diagnostics));
  assert.match(d!.message, /big\.nnet: .* is over the limit of .* for a \.nnet file/);
  assert.match(d!.hint!, /NNETC_MAX_SOURCE_MB=/);
  assert.is(res.sources.get(main)!.text.slice(d!.span.start, d!.span.end), '"big.nnet"');
  // exactly at the limit: read
  writeFileSync(big, MODEL + "#".repeat(max - 1 - MODEL.length) + "\n");
  await within(env, () => assert.ok("text" in readSource(big)));
});

test("NN7040: the CLI refuses a file over the limit, and standard input over it", () => {
  const big = path.join(dir, "cli.nnet");
  writeFileSync(big, MODEL.repeat(40));
  const env = { ...process.env, NNETC_MAX_SOURCE_MB: "0.001" };
  const file = spawnSync(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "check", big], { env, encoding: "utf8" });
  assert.is(file.status, 2, file.stderr);
  assert.match(file.stderr, /NN7040: .*cli\.nnet: .* MB is over the limit of 0\.001 MB .*NNETC_MAX_SOURCE_MB=/);
  const stdin = spawnSync(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "fmt", "--stdin"], { env, input: MODEL.repeat(40), encoding: "utf8" });
  assert.is(stdin.status, 2, stdin.stderr);
  assert.match(stdin.stderr, /NN7040: standard input: it holds more than the limit of 0\.001 MB/);
});

test("NN7041: /dev/zero, a FIFO and a directory as imports are refused at once (check and the language server)", async () => {
  mkdirSync(path.join(dir, "folder.nnet"), { recursive: true });
  const fifo = path.join(dir, "pipe.nnet");
  const made = spawnSync("mkfifo", [fifo]).status === 0;
  // a .nnet name that leads to /dev/zero (an import of a name not ending in .nnet is NN7051, refused unread)
  symlinkSync("/dev/zero", path.join(dir, "zero.nnet"));
  const targets: [string, RegExp][] = [
    ["zero.nnet", /zero\.nnet is a device, not a regular file/],
    ["folder.nnet", /folder\.nnet is a directory, not a regular file/],
    ...(made ? [["pipe.nnet", /pipe\.nnet is a FIFO \(named pipe\), not a regular file/] as [string, RegExp]] : []),
  ];
  for (const [from, re] of targets) {
    const res = await within({}, () => compile(path.join(dir, "main.nnet"), importOf(from), host));
    const d = res.diagnostics.find((x) => x.code === "NN7041");
    assert.ok(d, `${from}: ${JSON.stringify(res.diagnostics)}`);
    assert.match(d!.message, re);
    assert.match(d!.message, /cannot be read as an imported \.nnet file/);
    // the language server reads imports from the disk the same way
    const ws = new Workspace();
    const uri = `file://${path.join(dir, "open.nnet")}`;
    ws.set(TextDocument.create(uri, "nnet", 1, importOf(from)));
    const a = await within({}, () => ws.analyze(uri));
    assert.ok(a!.result.diagnostics.some((x) => x.code === "NN7041"), from);
  }
  // the main file too
  const r = await within({}, () => readSource("/dev/zero"));
  assert.ok("error" in r && r.refused?.code === "NN7041");
});

test("NN7041 and NN7042: data files: /dev/zero, a FIFO; a CSV just over NNETC_MAX_DATA_FILE_MB", async () => {
  await within({}, () => refused(readIdx("/dev/zero"), /^NN7041: \/dev\/zero is a device, not a regular file, and cannot be read as an IDX file/));
  const fifo = path.join(dir, "data.fifo");
  if (spawnSync("mkfifo", [fifo]).status === 0) await within({}, () => refused(readDataFile(fifo), /^NN7041: .*data\.fifo is a FIFO/));
  const csv = path.join(dir, "big.csv");
  writeFileSync(csv, "a,b\n" + "1,2\n".repeat(300)); // 1204 bytes
  await within({ NNETC_MAX_DATA_FILE_MB: String(1203 / 2 ** 20) }, () =>
    refused(loadSource({ fn: "csv", args: { path: csv } } as never, { wanted: new Set(["a"]), log: () => {}, note: () => {}, classes: null, baseDir: dir }), /^NN7042: .*big\.csv: 0\.00115 MB is over the limit of 0\.00115 MB for one data file.*NNETC_MAX_DATA_FILE_MB=/),
  );
  await within({ NNETC_MAX_DATA_FILE_MB: String(1204 / 2 ** 20) }, async () => assert.is((await readDataFile(csv)).length, 1204));
});

test("NN7042: a gzip bomb (20 MB of zeros in ~20 kB) stops at NNETC_MAX_DATA_FILE_MB, decompressed", async () => {
  const bomb = path.join(dir, "bomb-idx3-ubyte.gz");
  const n = 20 * 2 ** 20;
  const raw = Buffer.alloc(n);
  raw.set([0, 0, 8, 1, (n - 8) >>> 24, ((n - 8) >>> 16) & 255, ((n - 8) >>> 8) & 255, (n - 8) & 255]);
  const gz = gzipSync(raw, { level: 9 });
  assert.ok(gz.length < 100_000, `${gz.length} bytes compressed`);
  writeFileSync(bomb, gz);
  await within({ NNETC_MAX_DATA_FILE_MB: "1" }, () => refused(readIdx(bomb), /^NN7042: .*bomb-idx3-ubyte\.gz: decompressed, it is more than the limit of 1 MB for one data file.*NNETC_MAX_DATA_FILE_MB=2/));
  // under the limit it is an IDX file like any other
  const idx = await within({ NNETC_MAX_DATA_FILE_MB: "21" }, () => readIdx(bomb));
  assert.equal(idx.dims, [n - 8]);
});

test("NN7043: the files of one dataset source together over NNETC_MAX_DATASET_MB", async () => {
  const idx = (name: string, count: number) => {
    const b = Buffer.alloc(8 + count);
    b.set([0, 0, 8, 1, 0, 0, count >> 8, count & 255]);
    writeFileSync(path.join(dir, name), b);
    return path.join(dir, name);
  };
  const labels = idx("labels-idx1-ubyte", 600);
  const images = idx("images-idx1-ubyte", 600);
  const call = { fn: "idx", args: { images, labels } } as never;
  const ctx = { wanted: new Set(["images", "labels"]), log: () => {}, note: () => {}, classes: null, baseDir: dir };
  // each file (608 bytes) is under the limit, the two (1216) are over it
  await within({ NNETC_MAX_DATASET_MB: String(1215 / 2 ** 20) }, () => refused(loadSource(call, ctx), /^NN7043: the files of idx\(\) \(at .*images-idx1-ubyte\): 0\.00116 MB is over the limit of 0\.00116 MB for the data files one dataset source reads.*NNETC_MAX_DATASET_MB=/));
  await within({ NNETC_MAX_DATASET_MB: String(1216 / 2 ** 20) }, async () => assert.is((await loadSource(call, ctx)).size, 600));
});

test("NN7044 and NN7045: an image file just over NNETC_MAX_IMAGE_MB, and one declaring more pixels than NNETC_MAX_IMAGE_MPIXELS", async () => {
  const png = await encodePng(new Uint8Array(30 * 40), 40, 30, 1); // 1200 pixels
  const file = path.join(dir, "img.png");
  writeFileSync(file, png);
  await within({ NNETC_MAX_IMAGE_MB: String((png.length - 1) / 2 ** 20) }, () => refused(readDataFile(file, { key: "imageBytes" }), /^NN7044: .*img\.png: .* MB is over the limit of .* MB for one image file.*NNETC_MAX_IMAGE_MB=/));
  await within({ NNETC_MAX_IMAGE_MB: String((png.length - 1) / 2 ** 20) }, () => refused(decodeImage(png, "img.png"), /^NN7044: img\.png/));
  await within({ NNETC_MAX_IMAGE_MPIXELS: "0.001199" }, () => refused(decodeImage(png, "img.png"), /^NN7045: img\.png: it declares more than the limit of 0\.0012 megapixels.*NNETC_MAX_IMAGE_MPIXELS=/));
  await within({ NNETC_MAX_IMAGE_MPIXELS: "0.0012" }, async () => assert.is((await decodeImage(png, "img.png")).width, 40));
});

/** A mono 8-bit PCM WAV file of `frames` samples at `rate` Hz. */
function wav(frames: number, rate: number): Uint8Array {
  const b = Buffer.alloc(44 + frames, 128);
  b.write("RIFF", 0);
  b.writeUInt32LE(36 + frames, 4);
  b.write("WAVEfmt ", 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate, 28);
  b.writeUInt16LE(1, 32);
  b.writeUInt16LE(8, 34);
  b.write("data", 36);
  b.writeUInt32LE(frames, 40);
  return b;
}

test("NN7046 and NN7047: an audio file just over NNETC_MAX_AUDIO_MB, and a clip just over NNETC_MAX_AUDIO_SECONDS", async () => {
  const clip = wav(3 * 1000, 1000); // 3 s
  assert.is(decodeWav(clip, "ok.wav").rate, 1000);
  await within({ NNETC_MAX_AUDIO_MB: String((clip.length - 1) / 2 ** 20) }, () => refused((async () => decodeWav(clip, "a.wav"))(), /^NN7046: a\.wav: .* MB is over the limit of .* MB for one audio \(WAV\) file.*NNETC_MAX_AUDIO_MB=/));
  await within({ NNETC_MAX_AUDIO_SECONDS: "2.9" }, () => refused((async () => decodeWav(clip, "a.wav"))(), /^NN7047: a\.wav: 3 s is over the limit of 2\.9 s .*NNETC_MAX_AUDIO_SECONDS=3/));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
