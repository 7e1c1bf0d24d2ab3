// npm run bench:checkpoint — what activation checkpointing (`--checkpoint-activations`) buys and costs on the
// torch engine: the module of `nnetc compile --target pytorch` with and without it, each in a fresh Python
// process, takes --steps training steps (forward, cross-entropy, backward, an SGD update) on random inputs; the
// bench prints the peak memory those steps added (ru_maxrss after minus before) and the median step time.
// Models: bench/models/encoder.nnet (4 layers, width 256, 128 tokens, batch 64) and ResNet-50 at --image pixels
// (default 128, batch 8).
// Medians of --repeats interleaved runs. A benchmark, not a test: nothing is asserted.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pythonFor } from "../runtime/torch/process.js";
import { median, opt, ROOT, torchEnv } from "./common.js";

const REPEATS = Number(opt("repeats", "3"));
const STEPS = Number(opt("steps", "3"));
const THREADS = opt("threads", "1");
const IMAGE = Number(opt("image", "128"));

interface Case {
  name: string;
  file: string;
  batch: number;
  /** The model's input as Python: a tensor of the batch. */
  input: string;
  classes: number;
}

const CASES: Case[] = [
  { name: "encoder", file: "bench/models/encoder.nnet", batch: Number(opt("encoder-batch", "64")), input: "torch.randint(0, 2000, (B, 128))", classes: 4 },
  { name: "resnet50", file: "models/resnet50.nnet", batch: Number(opt("resnet-batch", "8")), input: `torch.randn(B, ${IMAGE}, ${IMAGE}, 3)`, classes: 1000 },
];

const DRIVER = String.raw`
import importlib.util, json, resource, sys, time
import torch
import torch.nn.functional as F
path, cls, B, steps, input_expr, classes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
spec = importlib.util.spec_from_file_location("m", path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
torch.manual_seed(0)
model = getattr(mod, cls)()
model.train()
x = eval(input_expr)
y = torch.randint(0, classes, (B,))
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
def step():
  out = model(x)
  logits = next(iter(out.values()))
  loss = F.cross_entropy(logits, y)
  loss.backward()
  opt.step()
  opt.zero_grad(set_to_none=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(steps):
  t0 = time.perf_counter()
  step()
  times.append(time.perf_counter() - t0)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times.sort()
print(json.dumps({"peak_mb": (after - before) / 1024, "step_s": times[len(times) // 2]}))
`;

const tmp = mkdtempSync(path.join(os.tmpdir(), "nnetc-bench-ckpt-"));
try {
  const python = pythonFor();
  writeFileSync(path.join(tmp, "driver.py"), DRIVER);
  // A fixed mmap threshold: glibc then returns every freed tensor to the system at once, so the high-water
  // mark is the tensors' peak, not the allocator's (its dynamic threshold keeps freed memory resident).
  const env = torchEnv(THREADS, { MALLOC_MMAP_THRESHOLD_: "131072" });
  const version = spawnSync(python, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" }).stdout.trim();
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; PyTorch ${version} on the CPU (${python}), ${THREADS} thread(s); ${STEPS} steps per run, medians of ${REPEATS} runs`);
  for (const c of CASES.filter((c) => opt("models", "encoder,resnet50").split(",").includes(c.name))) {
    const modules: Record<string, { py: string; cls: string }> = {};
    for (const [variant, flags] of [["plain", []], ["checkpointed", ["--checkpoint-activations"]]] as const) {
      const r = spawnSync(process.execPath, [path.join(ROOT, "dist/nnetc.mjs"), "compile", path.join(ROOT, c.file), "--target", "pytorch", ...flags, "-o", "-"], { encoding: "utf8", maxBuffer: 64 << 20 });
      if (r.status !== 0) throw new Error(`compile ${c.file}: ${r.stderr}`);
      const py = path.join(tmp, `${c.name}_${variant}.py`);
      writeFileSync(py, r.stdout);
      // The file's first model: a model's class says what its inputs are (helper classes do not).
      const cls = /^class (\w+)\(nn\.Module\):\n {4}"""(?:(?!^class )[^])*?^ {4}Inputs: /m.exec(r.stdout)?.[1];
      if (!cls) throw new Error(`no model class in the module of ${c.file}`);
      modules[variant] = { py, cls };
    }
    const blocks = (readFileSync(modules.checkpointed!.py, "utf8").match(/= _checkpointed\(/g) ?? []).length;
    const runs: Record<string, { peak_mb: number; step_s: number }[]> = { plain: [], checkpointed: [] };
    for (let i = 0; i < REPEATS; i++) {
      for (const variant of ["plain", "checkpointed"]) {
        const m = modules[variant]!;
        const r = spawnSync(python, [path.join(tmp, "driver.py"), m.py, m.cls, String(c.batch), String(STEPS), c.input.replace(/\bB\b/g, String(c.batch)), String(c.classes)], { env, encoding: "utf8" });
        if (r.status !== 0) throw new Error(`${c.name} ${variant}: ${r.stderr.slice(-2000)}`);
        runs[variant]!.push(JSON.parse(r.stdout.trim().split("\n").pop()!));
        const last = runs[variant]![runs[variant]!.length - 1]!;
        console.log(`  ${c.name} run ${i + 1} ${variant.padEnd(12)} peak +${last.peak_mb.toFixed(0)} MB, step ${last.step_s.toFixed(3)} s`);
      }
    }
    const pm = median(runs.plain!.map((r) => r.peak_mb));
    const cm = median(runs.checkpointed!.map((r) => r.peak_mb));
    const pt = median(runs.plain!.map((r) => r.step_s));
    const ct = median(runs.checkpointed!.map((r) => r.step_s));
    console.log(`${c.name} (batch ${c.batch}, ${blocks} checkpointed blocks): training memory ${pm.toFixed(0)} MB → ${cm.toFixed(0)} MB (${(cm / pm).toFixed(2)}×), step ${pt.toFixed(3)} s → ${ct.toFixed(3)} s (${(ct / pt).toFixed(2)}×)`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
