// npm run bench:source: what the source pipeline costs per MB of .nnet text (issue 18; target: `nnetc check` of
// a 1 MB file in under 2 s and 200 MB peak RSS). Generates sources of 0.25, 0.5 and 1 MB from renamed copies of
// the zoo (models/*.nnet: models, blocks, datasets, plans, doc and line comments; every copy's declarations get
// their own names, imports become the copied blocks), then, for each size, in a fresh child process each time:
// - `nnetc check FILE` (the bundled CLI), wall time and peak RSS (the child's resourceUsage().maxRSS at exit);
// - the stages in-process (compile()'s onStage: lex, parse/CST, AST, IR lowering, checks, plan checks,
//   diagnostics), CPU time and peak RSS at the end of each.
// CPU time (user + system) is reported beside wall time: on a machine shared with other jobs the wall time
// measures the other jobs as much as nnetc.
// Medians of --runs (default 3). Figures are reported, never asserted.
//
// Before and after the work of issue 18 (2 AMD EPYC cores shared with other jobs, load average 15-18, so wall
// time is 3-6x the CPU time; node 20.20; median of 3; CPU = user + system; the source has 642 models, 570
// datasets, 593 plans at 1 MB). Since the AST is built while parsing, "parse" includes it and "ast" is ~0.
//   before (73a2794)  wall s  CPU s  peak MB   stages: CPU ms (peak RSS MB at its end)
//   0.25 MB             6.54   1.59      185   lex 75, parse 434, ast 398, lower 430, check 182, plan 113
//   0.5 MB             10.17   2.99      270   lex 92, parse 610, ast 559, lower 641, check 396, plan 176
//   1 MB               24.76   4.23      432   lex 153 (124), parse 842 (303), ast 969 (337), lower 982 (376), check 635 (437), plan 281 (440)
//   after (12c3d5a)
//   0.25 MB             5.43   1.37      121   lex 65, parse 628, lower 286, check 132, plan 42
//   0.5 MB              9.49   1.74      163   lex 105, parse 729, lower 542, check 185, plan 81
//   1 MB               15.06   2.29      219   lex 189 (135), parse 948 (162), lower 798 (201), check 307 (217), plan 149 (221)
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { compile, type Host } from "../compiler/index.js";
import { median, opt, ROOT } from "./common.js";

const MB = 2 ** 20;

/** The zoo, copy `k` of each file: declarations renamed `Name_vK_I`, imports replaced by the copied blocks' names. */
function zooCopies(): (k: number) => string[] {
  // Files that import come after the others, so that a source cut after any file has the blocks it uses.
  const all = readdirSync(path.join(ROOT, "models")).filter((f) => f.endsWith(".nnet")).sort();
  const imports = (f: string) => /^import\b/m.test(readFileSync(path.join(ROOT, "models", f), "utf8"));
  const files = [...all.filter((f) => !imports(f)), ...all.filter(imports)];
  const texts = files.map((f) => readFileSync(path.join(ROOT, "models", f), "utf8"));
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return (k) =>
    files.map((f, fi) => {
      let t = texts[fi]!;
      const suffix = (i: number) => `_v${k}_${i}`;
      const renamed = new Map<string, string>();
      for (const m of t.matchAll(/^(?:block|model)\s+(\w+)/gm)) renamed.set(m[1]!, m[1]! + suffix(fi));
      for (const m of t.matchAll(/^import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/gm)) {
        const from = files.indexOf(m[2]!.replace(/^\.\//, ""));
        for (const n of m[1]!.split(",").map((s) => s.trim()).filter(Boolean)) renamed.set(n, n + suffix(from));
      }
      t = t.replace(/^import[^\n]*\n/gm, "");
      // Block and model names, also as the prefix of layer names in freeze patterns ("Stage_1", "DecoderLayer_[1-9]").
      if (renamed.size) t = t.replace(new RegExp(`(?<!\\w)(${[...renamed.keys()].map(esc).join("|")})(?![A-Za-z])`, "g"), (n) => renamed.get(n)!);
      // Datasets only where a dataset is named (their names are also data sources' names: fashion_mnist(…)).
      for (const m of [...t.matchAll(/^dataset\s+(\w+)/gm)]) {
        const d = esc(m[1]!);
        const to = `${m[1]}${suffix(fi)}`;
        t = t
          .replace(new RegExp(`^dataset\\s+${d}\\b`, "gm"), `dataset ${to}`)
          .replace(new RegExp(`^(\\s+data\\s+)${d}\\b`, "gm"), `$1${to}`)
          .replace(new RegExp(`^(train\\s+\\w+\\s+on\\s+)${d}\\b`, "gm"), `$1${to}`);
      }
      return `// ---- copy ${k} of models/${f} ----\n${t}\n`;
    });
}

/** A source of at least `bytes` bytes: whole zoo files, copy after copy. */
export function generateSource(bytes: number): string {
  const copy = zooCopies();
  const parts: string[] = [];
  let size = 0;
  for (let k = 0; size < bytes; k++) {
    for (const part of copy(k)) {
      parts.push(part);
      size += Buffer.byteLength(part);
      if (size >= bytes) break;
    }
  }
  return parts.join("");
}

// The child's peak RSS (kB) and CPU time (µs, user + system) as it exits.
const USAGE_AT_EXIT = `data:text/javascript,${encodeURIComponent(
  `import { writeSync } from "node:fs"; process.on("exit", () => { const u = process.resourceUsage(); writeSync(2, "\\nNNETC_BENCH_USAGE " + u.maxRSS + " " + (u.userCPUTime + u.systemCPUTime) + "\\n"); });`,
)}`;

/** `nnetc check FILE` in a fresh process: wall seconds, CPU seconds and peak RSS (MB). */
function cliCheck(file: string): { s: number; cpu: number; mb: number; out: string } {
  const t = performance.now();
  const r = spawnSync(process.execPath, ["--import", USAGE_AT_EXIT, path.join(ROOT, "dist/nnetc.mjs"), "check", file], { cwd: ROOT, encoding: "utf8" });
  const s = (performance.now() - t) / 1000;
  const m = /NNETC_BENCH_USAGE (\d+) (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`nnetc check ${file} failed (exit ${r.status}):\n${r.stdout}${r.stderr.slice(0, 2000)}`);
  return { s, cpu: Number(m[2]) / 1e6, mb: Number(m[1]) / 1024, out: r.stdout.trim() };
}

type Stages = { stage: string; ms: number; mb: number }[];

/** The child's side of --stages FILE: compile() in-process, with the CPU time and peak RSS at the end of each stage. */
function stagesOf(file: string): Stages {
  const text = readFileSync(file, "utf8");
  const host: Host = { readFile: () => ({ error: "the benchmark's source imports nothing" }) };
  const out: Stages = [];
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let t = cpuMs();
  const lap = (stage: string) => {
    const now = cpuMs();
    out.push({ stage, ms: now - t, mb: process.resourceUsage().maxRSS / 1024 });
    t = now;
  };
  lap("start");
  const r = compile(file, text, host, { onStage: lap });
  if (r.diagnostics.some((d) => d.severity === "error")) throw new Error(`${file}: ${r.diagnostics.length} diagnostics, first ${r.diagnostics[0]!.message}`);
  return out;
}

if (process.argv[2] === "--stages") {
  process.stdout.write(JSON.stringify(stagesOf(process.argv[3]!)) + "\n");
} else {
  const runs = Number(opt("runs", "3"));
  const sizes = opt("sizes", "0.25,0.5,1").split(",").map(Number);
  const dir = mkdtempSync(path.join(os.tmpdir(), "nnetc-bench-source-"));
  const rev = (() => {
    try {
      return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    } catch {
      return "?";
    }
  })();
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}, commit ${rev}; median of ${runs} fresh processes`);
  console.log(`load average ${os.loadavg()[0]!.toFixed(1)}: on a shared machine wall time is inflated; CPU time (user + system) much less`);
  console.log("size".padEnd(10) + "bytes".padStart(9) + "wall s".padStart(8) + "CPU s".padStart(7) + "peak MB".padStart(9) + "CPU s/MB".padStart(10) + "MB/MB".padStart(7) + "   stages: CPU ms (peak RSS MB at its end)");
  try {
    for (const size of sizes) {
      const text = generateSource(size * MB);
      const file = path.join(dir, `source_${size}mb.nnet`);
      writeFileSync(file, text);
      const cli = Array.from({ length: runs }, () => cliCheck(file));
      const st = Array.from({ length: runs }, () => {
        const r = spawnSync(process.execPath, [path.join(ROOT, "dist/bench/source.js"), "--stages", file], { cwd: ROOT, encoding: "utf8" });
        if (r.status !== 0) throw new Error(`stages of ${file} failed:\n${r.stderr}`);
        return JSON.parse(r.stdout) as Stages;
      });
      const s = median(cli.map((c) => c.s));
      const cpu = median(cli.map((c) => c.cpu));
      const mb = median(cli.map((c) => c.mb));
      const mbytes = Buffer.byteLength(text) / MB;
      const names = st[0]!.map((x) => x.stage).filter((x) => x !== "start");
      const stages = names.map((n) => `${n} ${median(st.map((r) => r.find((x) => x.stage === n)!.ms)).toFixed(0)} (${median(st.map((r) => r.find((x) => x.stage === n)!.mb)).toFixed(0)})`).join(", ");
      console.log(`${size} MB`.padEnd(10) + String(Buffer.byteLength(text)).padStart(9) + s.toFixed(2).padStart(8) + cpu.toFixed(2).padStart(7) + mb.toFixed(0).padStart(9) + (cpu / mbytes).toFixed(2).padStart(10) + (mb / mbytes).toFixed(0).padStart(7) + `   ${stages}`);
      if (size === sizes[sizes.length - 1]) console.log(`  (${cli[0]!.out})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log("target (issue 18): nnetc check of a 1 MB file in under 2 s and 200 MB peak RSS");
}
