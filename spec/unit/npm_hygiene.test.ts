// Issue 19: no npm warning in `npm ci`, `npm test` or `npx nnetc` output on a fresh clone. What makes npm warn is
// data we can check without reinstalling: a package whose engines exclude this Node (EBADENGINE), a dependency
// install script that allowScripts neither approves nor denies, and unknown keys in a project .npmrc.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import semver from "semver";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ROOT } from "../helpers.js";

const lock = JSON.parse(readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { engines?: { node?: string } | string[]; hasInstallScript?: boolean; optional?: boolean; dev?: boolean }> };
const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { allowScripts?: Record<string, boolean> };

test("every locked package's engines accept this Node (npm warns EBADENGINE otherwise)", () => {
  const bad: string[] = [];
  for (const [where, p] of Object.entries(lock.packages)) {
    const range = p.engines && !Array.isArray(p.engines) ? p.engines.node : undefined;
    if (!where || !range) continue;
    if (!semver.satisfies(process.version, range)) bad.push(`${where} wants node ${range}`);
  }
  assert.equal(bad, [], "pin or override these (package.json overrides) to releases that run on Node 20");
});

test("every dependency with an install script is approved or denied in allowScripts", () => {
  const names = Object.entries(lock.packages)
    .filter(([where, p]) => where && p.hasInstallScript)
    .map(([where]) => where.slice(where.lastIndexOf("node_modules/") + "node_modules/".length));
  const unreviewed = [...new Set(names)].filter((n) => !(n in (pkg.allowScripts ?? {})));
  assert.equal(unreviewed, [], "add them to package.json allowScripts (true only when the script is needed)");
  assert.is(pkg.allowScripts?.["onnxruntime-node"], false, "onnxruntime-node's script downloads CUDA binaries");
});

test("no project .npmrc key that npm does not know (it warns on every command)", () => {
  assert.not.ok(existsSync(path.join(ROOT, ".npmrc")), ".npmrc: allowScripts in package.json does the job");
});

test("npx nnetc prints no npm warning", () => {
  const r = spawnSync("npx", ["nnetc", "--version"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, "", "nothing on stderr");
  assert.not.match(r.stdout, /npm warn/i);
});

test.run();
