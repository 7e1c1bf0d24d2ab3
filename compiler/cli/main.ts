// argv → compiler API → stdout/stderr and an exit code. No logic of its own beyond I/O.
// Exit codes: 0 clean (warnings allowed), 1 errors in the input, 2 usage or I/O problems.
import { Command, CommanderError } from "commander";
import { readSource } from "../read_source.js";
import { pathChecker, projectRoot, ROOT_ENV, ROOT_MARKER } from "../root.js";
import { LIMITS, limit, limitText, overLimit } from "../limits.js";
import { existsSync, readFileSync, readSync, statSync, writeFileSync, renameSync, openSync, fsyncSync, closeSync, unlinkSync } from "node:fs";
import * as path from "node:path";
import { isMainThread, workerData } from "node:worker_threads";
import { fileURLToPath, pathToFileURL } from "node:url";
import { compile, type CompileResult, type Host } from "../index.js";
import { diag } from "../diagnostics.js";
import { diagnosticToJson, renderDiagnostic, renderPlain, summaryLine } from "../render.js";
import { loraLines, memoryLine, renderSummary, renderWeightsEffect, summarize, trainingMemory, weightsEffect } from "../summary.js";
import { SourceFile } from "../source.js";
import { GENERATE_DEFAULTS } from "../../runtime/decoder.js";

const VERSION = "0.1.0";

/** A problem with the command line or the file system: reported in one line, exit code 2. */
class UsageError extends Error {}

/** A project config (nnetc.config.mjs) with errors: its diagnostics were printed, exit code 1. */
class ConfigError extends Error {}

function readText(file: string): ReturnType<typeof readSource> {
  return readSource(file, { strictUtf8: true });
}

/** --root DIR (a program option): the project root every path a .nnet file names must lie in (compiler/root.ts). */
let rootFlag: string | undefined;

/** The host for `file`: imports and data paths confined to its project root; `also`: further allowed folders (--data). */
function hostFor(file: string, also: readonly string[] = []): Host {
  const root = projectRoot(file, rootFlag ? { dir: rootFlag, origin: "flag" } : undefined);
  return { readFile: readText, checkPath: pathChecker(root, also) };
}

function load(file: string, also: readonly string[] = []): CompileResult {
  const r = readText(file);
  if ("error" in r) throw new UsageError(`cannot read ${file}: ${r.error}`);
  return compile(file, r.text, hostFor(file, also));
}

function color(): boolean {
  return !!process.stderr.isTTY && !process.env.NO_COLOR;
}

function report(res: CompileResult, json: boolean): boolean {
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (!json) {
    for (const d of res.diagnostics) process.stderr.write(renderDiagnostic(d, res.sources, { color: color() }) + "\n\n");
  }
  return errors.length === 0;
}

/** Write a file so that a crash never leaves it half-written: temp file, fsync, rename. */
function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    const fd = openSync(tmp, "r");
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* nothing to clean up */
    }
    throw new UsageError(`cannot write ${file}: ${(e as Error).message}`);
  }
}

function pickModel(res: CompileResult, file: string, name: string | undefined) {
  const models = res.module.models;
  if (name) {
    const m = models.find((x) => x.name === name);
    if (!m) throw new UsageError(`${file} has no model "${name}"; it declares: ${models.map((x) => x.name).join(", ") || "no models"}`);
    return m;
  }
  if (models.length === 1) return models[0]!;
  if (models.length === 0) throw new UsageError(`${file} declares no model`);
  const second = models[1]!.span;
  const d = diag("ambiguousModel", { file, start: second.start, end: second.end }, { models: models.map((x) => x.name).join(", ") });
  process.stderr.write(renderDiagnostic(d, res.sources, { color: color() }) + "\n");
  throw new UsageError(""); // the diagnostic above says it all
}

/** `nnetc COMMAND --help` ends with these: one table, so that every command shows how it is typed (cli.test checks each
 *  command has examples and that each example names its command). */
export const HELP_EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  check: ["nnetc check models/mlp.nnet", "nnetc check models/*.nnet --json"],
  summary: ["nnetc summary models/resnet50.nnet", "nnetc summary models/fashion_cnn.nnet -O2 --weights runs/fashioncnn"],
  compile: [
    "nnetc compile models/mlp.nnet -o src/generated",
    "nnetc compile models/fashion_cnn.nnet --target onnx --weights runs/fashioncnn -o fashion.onnx",
    "nnetc compile models/fashion_cnn.nnet --weights runs/fashioncnn --quantize int8",
    "nnetc compile models/mlp.nnet --emit ir -O2 --print-passes -o mlp.ir.json",
  ],
  train: [
    "nnetc train models/mlp.nnet",
    "nnetc train models/fashion_cnn.nnet --epochs 2 --batch 64 --out runs/try1",
    "nnetc train models/fashion_cnn.nnet --out runs/try1 --resume",
    "nnetc train models/minilm_spam.nnet --engine torch --device cuda --precision bf16",
  ],
  eval: ["nnetc eval models/mlp.nnet --weights runs/mlp", "nnetc eval models/fashion_cnn.nnet --weights runs/fashioncnn --engine onnx --json"],
  predict: [
    "nnetc predict models/fashion_cnn.nnet --weights runs/fashioncnn --input shoe.png boot.jpg",
    "nnetc predict models/text_classifier.nnet --weights runs/spamclassifier --input mail/ --top 1 --json",
    "nnetc predict models/vae.nnet --weights runs/vae --from sample_normal --input random:16 --seed 1 --grid samples.png",
  ],
  generate: [
    'nnetc generate models/char_gpt.nnet --weights runs/chargpt --prompt "Dear friend" --max-new 80',
    'nnetc generate models/gpt2_small.nnet --weights models/pretrained/gpt2 --prompt "Hello" --temperature 0.8 --top-p 0.9',
  ],
  serve: [
    "nnetc serve models/mlp.nnet --weights runs/mlp",
    "nnetc serve models/fashion_cnn.nnet models/text_classifier.nnet --weights runs/fashioncnn runs/spam --engine onnx --port 8080",
    "curl -s localhost:8000/v2/models/MLP",
    "curl -s --data-binary @shoe.png -H 'Content-Type: image/png' localhost:8000/models/FashionCNN/predict",
  ],
  lsp: ["nnetc lsp --stdio"],
  data: ["nnetc data models/fashion_cnn.nnet -n 3", "nnetc data models/minilm_spam.nnet --split test -n 2 --start 100"],
  plot: ["nnetc plot runs/mlp", "nnetc plot runs/fashioncnn -o curves.svg"],
  fmt: ["nnetc fmt models/mlp.nnet", "nnetc fmt --check models/*.nnet", "cat my.nnet | nnetc fmt --stdin my.nnet"],
};

function program(): Command {
  const prog = new Command("nnetc")
    .description("compiler for .nnet neural-network descriptions")
    .version(VERSION, "-v, --version")
    .showHelpAfterError("(run nnetc --help for usage)")
    .option("--root <dir>", `project root: imports and data paths must lie inside it (default: ${ROOT_ENV}, else the nearest folder above the .nnet file with package.json or ${ROOT_MARKER})`)
    .hook("preAction", (cmd) => {
      const r = (cmd.opts() as { root?: string }).root;
      if (r === undefined) return;
      if (!existsSync(r) || !statSync(r).isDirectory()) throw new UsageError(`--root ${r}: no such folder`);
      rootFlag = path.resolve(r);
      process.env[ROOT_ENV] = rootFlag; // the runtime (data files, tokenizer files, init weights) reads it there
    })
    .exitOverride();

  // The project's plugins (nnetc.config.mjs beside the .nnet file or above it: spec/language.md §15), loaded before
  // any command that reads a .nnet file, so that every stage sees them in its tables.
  prog.hook("preAction", async (_prog, action) => {
    // The language server loads each document's own; fmt and plot read no tables plugins extend.
    if (["lsp", "fmt", "plot"].includes(action.name())) return;
    const file = action.args.find((a) => a.endsWith(".nnet") && existsSync(a));
    const { loadProjectPlugins } = await import("../plugin/load.js");
    const r = await loadProjectPlugins(file ? path.dirname(path.resolve(file)) : process.cwd());
    if (!r.diagnostics.length) return;
    for (const d of r.diagnostics) process.stderr.write(renderPlain(d) + "\n\n");
    throw new ConfigError();
  });

  prog
    .command("check")
    .description("parse and check .nnet files: syntax, names, shapes, dtypes and training plans")
    .argument("<files...>", ".nnet files")
    .option("--json", "print diagnostics as JSON")
    .action((files: string[], o: { json?: boolean }) => {
      let ok = true;
      const all: unknown[] = [];
      for (const f of files) {
        const res = load(f);
        const clean = report(res, !!o.json);
        ok &&= clean;
        if (o.json) all.push(...res.diagnostics.map((d) => diagnosticToJson(d, res.sources)));
        else if (clean) {
          const m = res.module;
          const warn = res.diagnostics.length ? `, ${summaryLine(res.diagnostics)}` : "";
          process.stdout.write(`${f}: ok (${plural(m.models.length, "model")}, ${plural(m.datasets.length, "dataset")}, ${plural(m.plans.length, "plan")}${warn})\n`);
        } else process.stderr.write(`${f}: ${summaryLine(res.diagnostics)}\n`);
      }
      if (o.json) process.stdout.write(JSON.stringify(all, null, 2) + "\n");
      process.exitCode = ok ? 0 : 1;
    });

  prog
    .command("summary")
    .description("print a model's layers, output shapes, parameter counts and FLOPs")
    .argument("<file>", ".nnet file")
    .option("--model <name>", "the model to summarize (needed when the file declares several)")
    .option("--json", "print the summary as JSON")
    .option("-O, --opt <level>", "summarize the model optimized for inference at this level (0, 1, 2), with the change from -O0", "0")
    .option("--weights <run>", "also show what trained weights do: a run folder, checkpoint, or pruned/quantized .safetensors file (params nonzero, bytes on disk, FLOPs -O0 → -O2)")
    .action(async (file: string, o: { model?: string; json?: boolean; opt: string; weights?: string }) => {
      const res = load(file);
      const clean = report(res, !!o.json);
      if (!clean) {
        if (o.json) process.stdout.write(JSON.stringify({ diagnostics: res.diagnostics.map((d) => diagnosticToJson(d, res.sources)) }, null, 2) + "\n");
        else process.stderr.write(`${file}: ${summaryLine(res.diagnostics)}\n`);
        process.exitCode = 1;
        return;
      }
      const model = pickModel(res, file, o.model);
      const s = summarize(model);
      if (o.weights !== undefined) {
        // Reads the file without TensorFlow.js: summary stays a compile-time command.
        const rt = (await import(pathToFileURL(runtimeFile("weights.js")).href)) as typeof import("../../runtime/weights.js");
        const errors = (await import(pathToFileURL(runtimeFile("errors.js")).href)) as typeof import("../../runtime/errors.js");
        const ck = (await import(pathToFileURL(runtimeFile("checkpoint/index.js")).href)) as typeof import("../../runtime/checkpoint/index.js");
        let info;
        try {
          info = rt.weightsInfo(o.weights, rt.fingerprint(model));
        } catch (e) {
          if (e instanceof errors.RunError || e instanceof ck.CheckpointError) {
            process.stderr.write(`${e instanceof errors.RunError ? e.report() : `nnetc: ${e.message}`}\n`);
            process.exitCode = 2;
            return;
          }
          throw e;
        }
        const o2 = (await forInference(res, "2")).models.find((x) => x.name === model.name)!;
        const effect = weightsEffect(model, o2, info);
        process.stdout.write(o.json ? JSON.stringify({ ...s, weights: effect }, null, 2) + "\n" : renderSummary(s) + "\n" + renderWeightsEffect(effect) + "\n");
        return;
      }
      const lora = loraLines(model, res.module.plans);
      // The plan's training step on TensorFlow.js at its batch: what nnetc train checks against the backend (NN7012).
      const memory = trainingMemory(model, res.module);
      const lines = [...lora, ...(memory ? [memoryLine(memory)] : [])];
      if (o.opt === "0") {
        process.stdout.write((o.json ? JSON.stringify({ ...s, ...(lora.length ? { lora } : {}), ...(memory ? { memory } : {}) }, null, 2) : renderSummary(s) + lines.map((l) => `\n${l}`).join("")) + "\n");
        return;
      }
      // The optimized model's summary, and what the passes changed.
      const opt = (await forInference(res, o.opt)).models.find((x) => x.name === model.name)!;
      const t = summarize(opt);
      const change = { level: Number(o.opt), nodes: [model.nodes.length, opt.nodes.length], params: [s.params.total, t.params.total], bytes: [s.bytes, t.bytes], flops: [s.flops, t.flops] };
      if (o.json) process.stdout.write(JSON.stringify({ ...t, optimized: change, ...(memory ? { memory } : {}) }, null, 2) + "\n");
      else {
        const n = (x: number) => x.toLocaleString("en-US");
        process.stdout.write(renderSummary(t) + "\n" + lines.map((l) => `${l}\n`).join(""));
        process.stdout.write(`-O${o.opt} for inference, from -O0: nodes ${n(model.nodes.length)} → ${n(opt.nodes.length)}, params ${n(s.params.total)} → ${n(t.params.total)}, bytes ${n(s.bytes)} → ${n(t.bytes)}, FLOPs per sample ${n(s.flops)} → ${n(t.flops)}\n`);
      }
    });

  prog
    .command("compile")
    .description("compile .nnet files to TypeScript modules (or JavaScript, or declarations); --emit ir prints the checked IR as JSON")
    .argument("<files...>", ".nnet files")
    .option("--target <kind>", "ts: a TypeScript module; js: the same as JavaScript; dts: FILE.d.nnet.ts declarations for importing the .nnet file itself; onnx: FILE.onnx, the inference model with its weights; tfjs-layers: a Keras model.json + weights for tf.loadLayersModel (-o DIR); pytorch: FILE.py, a torch.nn.Module per model (with --weights, also FILE.MODEL.safetensors, its state_dict); peft: a LoRA run's adapters for Hugging Face PEFT (--weights RUN -o DIR)", "ts")
    .option("--emit <what>", "ir: the checked IR as JSON instead of code")
    .option("-o, --out <path>", "output folder for code (default: beside each .nnet file; - for stdout); for --emit ir and --target onnx, a file (onnx: - only when stdout is not a terminal)")
    .option("-w, --watch", "compile again whenever a file (or a file it imports) changes")
    .option("-O, --opt <level>", "optimization level 0, 1 or 2 (see --print-passes): code and --target onnx default to 1, --emit ir to 0 (the checked IR)")
    .option("--for <mode>", "with --emit ir: optimize for infer or train (training keeps every weight)", "infer")
    .option("--after <pass>", "with --emit ir: the IR after this pass")
    .option("--print-passes", "with --emit ir: list the passes of the level, what each changed, on stderr")
    .option("--quantize <kind>", "also write the trained weights (--weights) quantized: int8 or float16, as FILE.<kind>.safetensors")
    .option("--prune <sparsity>", "also write the trained weights (--weights) magnitude-pruned: this fraction of every conv/dense kernel set to zero, as FILE.pruned.safetensors (FILE.pruned.<kind>.safetensors with --quantize)")
    .option("--weights <run>", "with --quantize, --prune, --target onnx or --target tfjs-layers: a run folder, checkpoint, .safetensors file or Hugging Face model folder (onnx: also an int8 file from --quantize)")
    .option("--force", "with --quantize, --prune or --target peft: replace an existing weights file")
    .option("--base <dir>", "with --target peft: the Hugging Face model folder the LoRA run started from (default: the run's init, else the plan's init with layout huggingface)")
    .option("--checkpoint-activations", "with --target pytorch: run each block instance through torch.utils.checkpoint (less memory in training)")
    .action(async (files: string[], o: { checkpointActivations?: boolean; target: string; emit?: string; out?: string; watch?: boolean; opt?: string; for: string; after?: string; printPasses?: boolean; quantize?: string; prune?: string; weights?: string; force?: boolean; base?: string }) => {
      if (o.checkpointActivations && o.target !== "pytorch") throw new UsageError("--checkpoint-activations goes with --target pytorch");
      if (o.base !== undefined && o.target !== "peft") throw new UsageError("--base goes with --target peft");
      if (o.target === "peft") {
        await compilePeft(files, o);
        return;
      }
      if (o.target === "onnx") {
        await compileOnnx(files, o, o.opt ?? "1");
        return;
      }
      if (o.target === "pytorch") {
        await compilePytorch(files, o, o.opt ?? "1");
        return;
      }
      if (o.quantize !== undefined && o.quantize !== "int8" && o.quantize !== "float16") throw new UsageError(`--quantize ${o.quantize}: choose int8 or float16`);
      if (o.prune !== undefined && !(/^\s*[\d.eE+-]+\s*$/.test(o.prune) && Number(o.prune) >= 0 && Number(o.prune) < 1)) throw new UsageError(`--prune ${o.prune}: give the fraction of weights to set to zero, a number in [0, 1) such as 0.5`);
      const flag = o.quantize !== undefined ? "--quantize" : "--prune";
      if (o.quantize !== undefined || o.prune !== undefined) {
        if (!o.weights) throw new UsageError(`${flag} needs --weights RUN (the trained weights to ${flag === "--quantize" ? "quantize" : "prune"})`);
        if (files.length > 1 || o.watch || o.emit !== undefined || o.out === "-") throw new UsageError(`${flag} takes one file, writes files (not -o -), and works without --watch and --emit`);
      }
      if (o.emit !== undefined && o.emit !== "ir") throw new UsageError(`--emit ${o.emit} is not supported: use --emit ir for the IR, or --target ts|js|dts for code`);
      if (!["ts", "js", "dts", "tfjs-layers"].includes(o.target)) throw new UsageError(`--target ${o.target} is not supported: choose ts, js, dts, onnx, tfjs-layers, pytorch or peft`);
      if (o.target === "tfjs-layers") {
        if (files.length > 1 || o.watch || o.emit !== undefined || o.quantize !== undefined) throw new UsageError("--target tfjs-layers takes one file, without --watch, --emit or --quantize");
        if (!o.out || o.out === "-") throw new UsageError("--target tfjs-layers needs -o DIR: the folder for model.json and its weights");
        if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new UsageError(`-o ${o.out} is a file; tfjs-layers writes a folder (model.json + group1-shard1of1.bin)`);
        const file = files[0]!;
        const res = compiled(file);
        if (!res) return;
        const { mainModel } = await import("../emit/index.js");
        const model = mainModel(res.module)!;
        const { kerasModel } = await import("../emit/keras.js");
        const k = kerasModel(model);
        if (!k.model) {
          report({ ...res, diagnostics: k.diagnostics }, false);
          process.stderr.write(`${file}: ${summaryLine(k.diagnostics)}\n`);
          process.exitCode = 1;
          return;
        }
        const rt = await runtime();
        process.exitCode = await rt.exportLayersCommand({ file, module: res.module, model: model.name, topology: k.model.topology, weightNames: k.model.weightNames, ...(o.weights ? { weights: o.weights } : {}), outDir: o.out });
        return;
      }
      if (o.emit === "ir") {
        if (files.length > 1) throw new UsageError("--emit ir takes one file");
        if (o.watch) throw new UsageError("--watch works with code targets, not --emit ir");
        const file = files[0]!;
        const res = compiled(file);
        if (!res) return;
        const level = optLevel(o.opt ?? "0");
        if (o.for !== "infer" && o.for !== "train") throw new UsageError(`--for ${o.for}: use infer or train`);
        const { optimize, passesFor } = await import("../passes/index.js");
        const list = passesFor(level, o.for);
        if (o.after !== undefined && !list.some((p) => p.name === o.after)) {
          throw new UsageError(`--after ${o.after}: no such pass at -O${level} for ${o.for}${list.length ? ` (passes: ${list.map((p) => p.name).join(", ")})` : " (-O0 runs none)"}`);
        }
        const opt = optimize(res.module, { level, mode: o.for, ...(o.after !== undefined ? { after: o.after } : {}) });
        if (o.printPasses) {
          process.stderr.write(`-O${level} for ${o.for}: ${list.length ? list.map((p) => p.name).join(" → ") : "no passes"}\n`);
          for (const st of opt.stages) {
            process.stderr.write(`  ${st.pass.padEnd(16)} ${st.model.padEnd(16)} ${st.changed ? "changed" : "unchanged"}  nodes ${st.nodesBefore} → ${st.nodesAfter}  weights ${st.paramsBefore} → ${st.paramsAfter}\n`);
          }
        }
        const text = JSON.stringify(opt.module, null, 2) + "\n";
        if (o.out && o.out !== "-") writeAtomic(o.out, text);
        else process.stdout.write(text);
        return;
      }
      if (o.after !== undefined) throw new UsageError("--after works with --emit ir (the IR after a pass)");
      const level = optLevel(o.opt ?? "1");
      if (o.printPasses) {
        const { passesFor } = await import("../passes/index.js");
        for (const mode of ["train", "infer"] as const) {
          const list = passesFor(level, mode);
          process.stderr.write(`-O${level} for ${mode === "train" ? "training (forward, fit, trainStep)" : "inference (predict, evaluate)"}: ${list.length ? list.map((p) => p.name).join(" → ") : "no passes"}\n`);
        }
      }
      if (o.out === "-" && files.length > 1) throw new UsageError("-o - (stdout) takes one file");
      if (o.out && o.out !== "-" && existsSync(o.out) && !statSync(o.out).isDirectory()) throw new UsageError(`-o ${o.out} is a file; code goes into a folder`);
      const target = o.target as "ts" | "js" | "dts";
      const { compileToCode, watchFiles } = await import("./codegen.js");
      const results = [];
      for (const f of files) results.push(await compileToCode(f, target, o.out, { load, report, writeAtomic }, level));
      const ok = results.every((r) => r !== null);
      if (ok && (o.quantize || o.prune !== undefined)) {
        // The weights of the module's default export, the model its load() reads them into.
        const res = results[0]!;
        const { mainModel } = await import("../emit/index.js");
        const { isPrunable } = await import("../plan/tables.js");
        const model = mainModel(res.module)!;
        const rt = await runtime();
        process.exitCode = await rt.quantizeCommand({
          file: files[0]!,
          module: res.module,
          model: model.name,
          weights: o.weights!,
          ...(o.quantize ? { kind: o.quantize as "int8" | "float16" } : {}),
          ...(o.prune !== undefined ? { prune: { sparsity: Number(o.prune), weights: model.params.filter(isPrunable).map((p) => p.name) } } : {}),
          sparse: model.params.filter(isPrunable).map((p) => p.name),
          ...(o.out ? { outDir: o.out } : {}),
          ...(o.force ? { force: true } : {}),
        });
        return;
      }
      if (!o.watch) {
        process.exitCode = ok ? 0 : 1;
        return;
      }
      await watchFiles(files, target, o.out, { load, report, writeAtomic }, level);
    });

  withEngineOptions(
    prog
      .command("train")
      .description("train a model with the file's training plan (phases, schedule, early stopping, checkpoints)")
      .argument("<file>", ".nnet file")
      .option("--model <name>", "whose plan to run (when the file has several)")
      .option("--data <dir>", "folder holding the dataset's files (default: next to the .nnet file, then system locations)")
      .option("--epochs <n>", "override the epochs of every phase", int("epochs"))
      .option("--batch <n>", "override the batch size", int("batch"))
      .option("--backend <name>", "tensorflow, webgpu, wasm or cpu (default: the fastest present)")
      .option("--out <dir>", "output folder for checkpoints, metrics.jsonl and the model (default: runs/<model>)")
      .option("--resume", "continue the run in --out from its newest checkpoint (from scratch when it has none yet)")
      .option("--force", "start a new run in an --out that holds one: its files are moved into OUT/replaced-TIME/ first")
      .option("--seed <n>", "random seed (default: the plan's seed)", int("seed"))
      .option("--tensorboard <dir>", "write TensorBoard event files into DIR (default: OUT/tensorboard): loss and learning rate per step, losses and metrics per epoch, weight histograms, the graph")
      .option("--no-tensorboard", "write no TensorBoard event files")
      .option("--init-from <file>", "start from pretrained weights: a .safetensors file, a run folder or a TensorFlow.js model.json (replaces the plan's init)")
      .option("--map <file>", "with --init-from: a JSON object renaming tensors of the file to layers or weights, {\"fc\": \"head\", …}")
      .option("--layout <layout>", "with --init-from: nnetc (layer/role names), torch (a PyTorch state_dict, converted) or huggingface (a model folder)")
      .option("--allow-missing", "with --init-from: weights the file lacks keep their initial values")
      .option("--allow-extra", "with --init-from: ignore tensors of the file that no weight takes")
      .option("--json", "one JSON object per event instead of text")
      .option("-O, --opt <level>", "optimization level of the training forward pass: 0, 1 or 2 (every weight is kept, so checkpoints are the same)", "1"),
  )
    .option("--nproc <n>", "with --engine torch: start N data-parallel workers on this machine (DDP; each takes --batch per step)")
    .option("--nnodes <m>", "with --nproc: machines in the job (run the same command on each, with its --node-rank)")
    .option("--node-rank <r>", "with --nnodes: this machine's number, 0 for the one at --master")
    .option("--master <host:port>", "with --nnodes: where the workers meet (machine 0's address and a free port)")
    .option("--checkpoint-activations", "with --engine torch: keep only each block's inputs and recompute its activations in backward (less memory, about a third more compute)")
    .action(async (file: string, o: { checkpointActivations?: boolean; model?: string; data?: string; epochs?: number; batch?: number; backend?: string; out?: string; resume?: boolean; force?: boolean; seed?: number; tensorboard?: string | boolean; json?: boolean; initFrom?: string; map?: string; layout?: string; allowMissing?: boolean; allowExtra?: boolean; opt: string; nproc?: string; nnodes?: string; nodeRank?: string; master?: string } & EngineFlags) => {
      const { launch, launchPlan, LaunchError } = await import("./launch.js");
      let job: ReturnType<typeof launchPlan>;
      try {
        job = launchPlan(o);
      } catch (e) {
        if (e instanceof LaunchError) throw new UsageError(e.message);
        throw e;
      }
      if (job) {
        if (o.engine !== "torch") throw new UsageError("--nproc and --nnodes start PyTorch workers: add --engine torch");
        if (process.env.WORLD_SIZE && process.env.RANK) throw new UsageError("this process is already a worker of a job (RANK and WORLD_SIZE are set, e.g. by torchrun): drop --nproc, --nnodes, --node-rank and --master");
        process.exitCode = await launch({ argv: [process.argv[1]!, ...withoutLaunchFlags(process.argv.slice(2))], ...job, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
        return;
      }
      const distributed = workerOf(process.env);
      if (distributed && o.engine !== "torch") throw new UsageError(`this process is worker ${distributed.rank} of ${distributed.world} (RANK and WORLD_SIZE are set): a data-parallel job needs --engine torch`);
      if (!o.initFrom && (o.map !== undefined || o.layout !== undefined || o.allowMissing || o.allowExtra)) throw new UsageError("--map, --layout, --allow-missing and --allow-extra go with --init-from FILE");
      if (o.force && o.resume) throw new UsageError("--force starts a new run (moving the old one aside); --resume continues it (drop one of them)");
      if (o.initFrom && o.resume) throw new UsageError("--init-from starts a new run; --resume continues one from its checkpoint (drop one of them)");
      const res = compiled(file, o.data);
      if (!res) return;
      const { optimize } = await import("../passes/index.js");
      const module = optimize(res.module, { level: optLevel(o.opt), mode: "train" }).module;
      const torch = engineOptions(o);
      if (o.checkpointActivations && !torch) throw new UsageError("--checkpoint-activations goes with --engine torch");
      const rt = await runtime();
      process.exitCode = await rt.trainCommand({ file, module, ...(o.engine === "onnx" ? { onnx: { level: optLevel(o.opt), version: VERSION } } : {}), ...(torch ? { torch: { ...torch, ...(o.checkpointActivations ? { checkpointActivations: true } : {}), ...(distributed ? { distributed, device: torch.device === "cuda" ? `cuda:${distributed.localRank}` : torch.device } : {}) } } : {}), ...(o.model ? { model: o.model } : {}), ...(o.backend ? { backend: o.backend } : {}), ...(o.data ? { dataDir: o.data } : {}), ...(o.epochs ? { epochs: o.epochs } : {}), ...(o.batch ? { batch: o.batch } : {}), ...(o.out ? { outDir: o.out } : {}), resume: !!o.resume, ...(o.force ? { force: true } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.tensorboard === false ? { tensorboard: null } : typeof o.tensorboard === "string" ? { tensorboard: o.tensorboard } : {}), ...(o.initFrom ? { init: { from: o.initFrom, ...(o.map !== undefined ? { map: o.map } : {}), ...(o.layout !== undefined ? { layout: o.layout } : {}), allowMissing: !!o.allowMissing, allowExtra: !!o.allowExtra } } : {}), json: !!o.json });
    });

  withEngineOptions(
    prog
      .command("eval")
      .description("evaluate trained weights on the dataset's test split with the plan's loss and metrics")
      .argument("<file>", ".nnet file")
      .requiredOption("--weights <dir>", "a run folder (model.safetensors or checkpoints), a checkpoint folder, a tfjs model.json, or a Hugging Face model folder (config.json)")
      .option("--model <name>", "which model (when the file has several)")
      .option("--data <dir>", "folder holding the dataset's files")
      .option("--backend <name>", "tensorflow, webgpu, wasm or cpu")
      .option("--json", "print the result as JSON")
      .option("-O, --opt <level>", "optimization level for inference: 0, 1 or 2 (batchnorm folding, fused relu)", "1"),
  )
    .action(async (file: string, o: { weights: string; model?: string; data?: string; backend?: string; json?: boolean; opt: string } & EngineFlags, cmd: Command) => {
      const res = compiled(file, o.data);
      if (!res) return;
      const torch = engineOptions(o);
      const opt = inferenceLevel(o, cmd);
      const rt = await runtime();
      process.exitCode = await rt.evalCommand({ file, module: res.module, ...(torch ? { torch, trainModule: await forTraining(res, o.opt) } : {}), ...(o.engine === "onnx" ? { onnx: { level: optLevel(opt), version: VERSION } } : {}), inference: await forInference(res, opt), weights: o.weights, ...(o.model ? { model: o.model } : {}), ...(o.backend ? { backend: o.backend } : {}), ...(o.data ? { dataDir: o.data } : {}), json: !!o.json });
    });

  withEngineOptions(
    prog
      .command("predict")
      .description("run trained weights on inputs: per sample the top classes (names from the run) or the outputs' values; a PNG grid of image outputs")
      .argument("<file>", ".nnet file")
      .requiredOption("--weights <dir>", "a run folder, a checkpoint folder, a tfjs model.json, or a Hugging Face model folder (config.json)")
      .requiredOption("--input <what...>", 'image or text files or folders (prepared by the dataset\'s own steps), a JSON file ({"image": […]} or a list of such objects), test:N for the first N test samples, or random:N for N rows of N(0, 1) (float inputs: latents, noise)')
      .option("--model <name>", "which model (when the file has several)")
      .option("--from <layer>", "run the model from this layer, binding or input on, given as an input of that name (only the outputs computed from it; a VAE's decoder: --from sample_normal --input random:16)")
      .option("--top <k>", "classification outputs: print the k most likely classes (default 3)", int("top"))
      .option("--seed <n>", "seed of --input random:N (default 0)", int("seed"))
      .option("--grid <file>", "write an image-valued output's samples as one PNG grid: FILE.png, or OUTPUT=FILE.png when several outputs are images")
      .option("--json", "one JSON line per sample: every output's values, and for classification outputs the top classes' ids, names and probabilities")
      .option("--data <dir>", "folder holding the dataset's files (for --input test:N)")
      .option("--backend <name>", "tensorflow, webgpu, wasm or cpu")
      .option("-O, --opt <level>", "optimization level for inference: 0, 1 or 2", "1"),
  )
    .action(async (file: string, o: { weights: string; input: string[]; model?: string; from?: string; top?: number; seed?: number; grid?: string; json?: boolean; data?: string; backend?: string; opt: string } & EngineFlags, cmd: Command) => {
      const res = compiled(file, o.data);
      if (!res) return;
      const torch = engineOptions(o);
      const opt = inferenceLevel(o, cmd);
      const rt = await runtime();
      process.exitCode = await rt.predictCommand({ file, module: res.module, ...(torch ? { torch, trainModule: await forTraining(res, o.opt) } : {}), ...(o.engine === "onnx" ? { onnx: { level: optLevel(opt), version: VERSION } } : {}), inference: await forInference(res, opt), weights: o.weights, input: o.input, ...(o.model ? { model: o.model } : {}), ...(o.from !== undefined ? { from: o.from } : {}), ...(o.top !== undefined ? { top: o.top } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.grid !== undefined ? { grid: o.grid } : {}), ...(o.backend ? { backend: o.backend } : {}), ...(o.data ? { dataDir: o.data } : {}), json: !!o.json });
    });

  prog
    .command("generate")
    .description("continue a prompt with a decoder (token ids → next-token logits), or an encoder–decoder's source, streaming the tokens")
    .argument("<file>", ".nnet file")
    .requiredOption("--weights <dir>", "a run folder, a checkpoint, or a Hugging Face model folder (config.json + model.safetensors)")
    .option("--prompt <text>", "the text to continue (tokenized as the model's dataset is, or with --tokenizer)")
    .option("--prompt-ids <ids>", "the prompt as token ids: 5,17,42")
    .option("--source <text>", "an encoder–decoder's source text (tokenized with its source field's vocabulary); the prompt is then optional")
    .option("--source-ids <ids>", "an encoder–decoder's source as token ids: 5,17,42")
    .option("--start <token>", "an encoder–decoder's first decoder token without a prompt (an id or a token; default: the vocabulary's [CLS], <s> or <|endoftext|>)")
    .option("--max-new <n>", "at most this many new tokens", int("max-new"), GENERATE_DEFAULTS.maxNew)
    .option("--greedy", "always the most likely token (the default without --temperature, --top-k or --top-p)")
    .option("--temperature <t>", "sample at this temperature", float("temperature"))
    .option("--top-k <k>", "sample among the k most likely tokens", int("top-k"))
    .option("--top-p <p>", "sample among the most likely tokens whose probabilities add up to p (nucleus)", float("top-p"))
    .option("--seed <n>", "seed of the sampling", int("seed"), GENERATE_DEFAULTS.seed)
    .option("--stop <token>", "an id or token that ends the generation (repeatable; GPT-2's <|endoftext|> by default)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--no-cache", "recompute the whole sequence at every step instead of keeping keys and values")
    .option("--tokenizer <file>", "tokenizer.json, vocab.txt, or encoder.json (with --merges)")
    .option("--merges <file>", "GPT-2's vocab.bpe, with --tokenizer encoder.json")
    .option("--model <name>", "which model (when the file has several)")
    .option("--backend <name>", "tensorflow, webgpu, wasm or cpu")
    .option("--json", "one JSON line at the end (ids, text, tokens/s) instead of streamed text")
    .action(async (file: string, o: { weights: string; prompt?: string; promptIds?: string; source?: string; sourceIds?: string; start?: string; maxNew: number; greedy?: boolean; temperature?: number; topK?: number; topP?: number; seed: number; stop: string[]; cache: boolean; tokenizer?: string; merges?: string; model?: string; backend?: string; json?: boolean }) => {
      const sampling = o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined;
      if (o.greedy && sampling) throw new UsageError("--greedy takes no --temperature, --top-k or --top-p");
      if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new UsageError(`--top-p ${o.topP}: give a probability in (0, 1]`);
      if (o.temperature !== undefined && !(o.temperature >= 0)) throw new UsageError(`--temperature ${o.temperature}: give a number ≥ 0`);
      if (o.merges && !o.tokenizer) throw new UsageError("--merges goes with --tokenizer encoder.json");
      const res = compiled(file);
      if (!res) return;
      const rt = await runtime();
      process.exitCode = await rt.generateCommand({
        file,
        module: res.module,
        weights: o.weights,
        ...(o.prompt !== undefined ? { prompt: o.prompt } : {}),
        ...(o.promptIds !== undefined ? { promptIds: o.promptIds } : {}),
        ...(o.source !== undefined ? { source: o.source } : {}),
        ...(o.sourceIds !== undefined ? { sourceIds: o.sourceIds } : {}),
        ...(o.start !== undefined ? { start: o.start } : {}),
        maxNew: o.maxNew,
        greedy: !sampling,
        temperature: o.temperature ?? GENERATE_DEFAULTS.temperature,
        topK: o.topK ?? null,
        topP: o.topP ?? null,
        seed: o.seed,
        stop: o.stop,
        cache: o.cache,
        ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}),
        ...(o.merges ? { merges: o.merges } : {}),
        ...(o.model ? { model: o.model } : {}),
        ...(o.backend ? { backend: o.backend } : {}),
        json: !!o.json,
      });
    });

  withEngineOptions(
    prog
      .command("serve")
      .description("serve trained models over HTTP: the Open Inference Protocol v2 (KServe, Triton), dynamic batching, Prometheus metrics, hot reload of weights")
      .argument("<files...>", ".nnet files (each serves its plan's model, else its last)")
      .requiredOption("--weights <runs...>", "one run folder (or checkpoint, safetensors file) per file, in the same order; watched for newer weights")
      .option("--port <n>", "TCP port (0: any free one)", nonNegative("port"), 8000)
      .option("--host <address>", "address to bind (default 127.0.0.1: this machine only)", "127.0.0.1")
      .option("--max-batch <n>", "most rows one batch runs (1: batching off)", int("max-batch"), 32)
      .option("--max-delay-ms <ms>", "longest a request waits for others to join its batch when the engine is idle (0: never; requests arriving while a batch runs join the next)", float("max-delay-ms"), 0)
      .option("--max-queue <n>", "most requests waiting per model; more get 503 with Retry-After", int("max-queue"), 1024)
      .option("--timeout-ms <ms>", "a request not answered by then gets 503 with Retry-After", int("timeout-ms"), 30000)
      .option("--body-limit-mb <mb>", "largest request body; larger get 413", float("body-limit-mb"), 32)
      .option("--token <token>", "ask every request but /v2/health/* for Authorization: Bearer TOKEN (or NNETC_SERVE_TOKEN)")
      .option("--no-watch", "do not reload weights when the run folder changes")
      .option("--access-log", "one JSON log line per request (else: start, reloads, errors, shutdown)")
      .option("--backend <name>", "tensorflow, webgpu, wasm or cpu")
      .option("-O, --opt <level>", "optimization level for inference: 0, 1 or 2 (onnx: 2 unless given)", "1"),
  )
    .action(async (files: string[], o: { weights: string[]; port: number; host: string; maxBatch: number; maxDelayMs: number; maxQueue: number; timeoutMs: number; bodyLimitMb: number; token?: string; watch: boolean; accessLog?: boolean; backend?: string; opt: string } & EngineFlags, cmd: Command) => {
      const torch = engineOptions(o);
      const opt = inferenceLevel(o, cmd);
      if (!(o.maxDelayMs >= 0)) throw new UsageError(`--max-delay-ms ${o.maxDelayMs}: give a number of milliseconds ≥ 0`);
      if (!(o.bodyLimitMb > 0)) throw new UsageError(`--body-limit-mb ${o.bodyLimitMb}: give a positive number`);
      if (o.port > 65535) throw new UsageError(`--port ${o.port}: give 0 to 65535`);
      const results = [];
      for (const f of files) {
        const res = compiled(f);
        if (!res) return;
        results.push(res);
      }
      const rt = await runtime();
      const token = o.token ?? (process.env.NNETC_SERVE_TOKEN || undefined);
      const models = [];
      for (const [i, res] of results.entries()) models.push({ file: files[i]!, module: res.module, inference: await forInference(res, opt), ...(torch ? { trainModule: await forTraining(res, o.opt) } : {}), weights: o.weights[i] ?? "" });
      process.exitCode = await rt.serveCommand({
        file: files[0]!,
        module: results[0]!.module,
        ...(torch ? { torch } : {}),
        ...(o.backend ? { backend: o.backend } : {}),
        serve: { models, engine: o.engine as "tfjs" | "onnx" | "torch", ...(torch ? { torch } : {}), level: optLevel(opt), version: VERSION, host: o.host, port: o.port, maxBatch: o.maxBatch, maxDelayMs: o.maxDelayMs, maxQueue: o.maxQueue, timeoutMs: o.timeoutMs, bodyLimitMb: o.bodyLimitMb, ...(token ? { token } : {}), watch: o.watch, accessLog: !!o.accessLog },
        ...(o.weights.length !== files.length ? { weightsCount: { files: files.length, weights: o.weights.length } } : {}),
      });
    });

  prog
    .command("lsp")
    .description("run the language server over stdin/stdout (editors start it; see editor/vscode)")
    .option("--stdio", "talk LSP over stdin/stdout (the only transport; accepted for editors that pass it)")
    .action(async () => {
      const { runStdio } = await import("../lsp/stdio.js");
      runStdio();
      await new Promise<never>(() => {}); // the connection ends the process on exit or when stdin closes
    });

  prog
    .command("data")
    .description("print a dataset's samples as the model gets them, one JSON line each (fields after preprocessing, tokens, class names)")
    .argument("<file>", ".nnet file")
    .option("--dataset <name>", "which dataset (default: the first training plan's, or the file's only one)")
    .option("--split <split>", "train (the training source, before any validation hold-out) or test", "train")
    .option("-n, --count <n>", "how many samples (at most 10,000)", int("count"), 5)
    .option("--start <index>", "the first sample's index in the split", int("start"), 0)
    .option("--data <dir>", "folder holding the dataset's files")
    .option("--epoch <n>", "show the training samples as augmented in this epoch (1, 2, …; random steps draw from the plan's seed or --seed)", int("epoch"))
    .option("--seed <n>", "with --epoch: the run's seed, when the plan sets none", int("seed"))
    .action(async (file: string, o: { dataset?: string; split: string; count: number; start: number; data?: string; epoch?: number; seed?: number }) => {
      if (o.split !== "train" && o.split !== "test") throw new UsageError(`--split ${o.split}: choose train or test`);
      if (o.epoch !== undefined && o.split === "test") throw new UsageError("--epoch shows training augmentation; the test split is never augmented");
      if (o.epoch !== undefined && o.epoch < 1) throw new UsageError(`--epoch ${o.epoch}: epochs count from 1`);
      const res = compiled(file, o.data);
      if (!res) return;
      const { datasets, plans } = res.module;
      if (!datasets.length) throw new UsageError(`${file} declares no dataset`);
      const name = o.dataset ?? plans[0]?.dataset ?? (datasets.length === 1 ? datasets[0]!.name : undefined);
      if (name === undefined) throw new UsageError(`${file} declares ${datasets.length} datasets (${datasets.map((d) => d.name).join(", ")}): choose one with --dataset`);
      const ds = datasets.find((d) => d.name === name);
      if (!ds) throw new UsageError(`--dataset ${name}: ${file} has no such dataset (it has ${datasets.map((d) => d.name).join(", ")})`);
      const plan = plans.find((p) => p.dataset === ds.name);
      const { showData } = await import("../../runtime/data/show.js");
      const { DataError } = await import("../../runtime/data/errors.js");
      try {
        const seed = o.seed ?? plan?.seed ?? undefined;
        if (o.epoch !== undefined && seed === undefined) throw new UsageError(`--epoch: the plan of ${file} sets no seed, so its runs drew one: give it with --seed (a run's seed is in the epoch line "augmentation: … from seed N")`);
        await showData({ dataset: ds as never, baseDir: path.dirname(path.resolve(file)), dataDir: o.data ?? null, seed: seed ?? 0, split: o.split, start: o.start, count: o.count, ...(o.epoch !== undefined ? { epoch: o.epoch } : {}), out: (l) => process.stdout.write(l), log: (m) => process.stderr.write(`${m}\n`) });
      } catch (e) {
        if (e instanceof DataError) throw new UsageError(e.message);
        throw e;
      }
    });

  prog
    .command("plot")
    .description("render a run's loss and metric curves (its metrics.jsonl) as an SVG file and a PNG beside it")
    .argument("<dir>", "a run folder")
    .option("-o, --out <file>", "where to write the SVG; the PNG goes beside it with .png (default: DIR/curves.svg and DIR/curves.png)")
    .action(async (dir: string, o: { out?: string }) => {
      const file = path.join(dir, "metrics.jsonl");
      if (!existsSync(file)) throw new UsageError(`${dir} has no metrics.jsonl (is it a folder written by nnetc train?)`);
      const { plotSvg, readMetrics, svgToPng } = await import("../../runtime/plot.js");
      const records = readMetrics(file);
      if (records.length === 0) throw new UsageError(`${file} holds no epochs yet`);
      const stem = (o.out ?? path.join(dir, "curves.svg")).replace(/\.(svg|png)$/i, "");
      const svg = plotSvg(records, `${path.basename(path.resolve(dir))}: ${records.length} epoch${records.length === 1 ? "" : "s"}`);
      const png = await svgToPng(svg);
      writeAtomic(`${stem}.svg`, svg);
      writeAtomic(`${stem}.png`, png);
      process.stdout.write(`wrote ${stem}.svg and ${stem}.png\n`);
    });

  prog
    .command("fmt")
    .description("format .nnet files in place (house style: spec/language.md §14); comments are kept")
    .argument("[files...]", ".nnet files")
    .option("--check", "write nothing; list the files that are not formatted and exit 1 if there are any")
    .option("--stdin", "format standard input to standard output (a FILE argument names it in messages)")
    .action(async (files: string[], o: { check?: boolean; stdin?: boolean }) => {
      const { format } = await import("../format/index.js");
      if (o.stdin && files.length > 1) throw new UsageError("--stdin formats one text: give at most one FILE (its name, for messages)");
      if (!o.stdin && files.length === 0) throw new UsageError("give the .nnet files to format (e.g. nnetc fmt models/*.nnet), or --stdin");
      const inputs = o.stdin ? [{ file: files[0] ?? "<stdin>", text: readStdin() }] : files.map((file) => ({ file, text: null as string | null }));
      let failed = false;
      const unformatted: string[] = [];
      for (const input of inputs) {
        const file = input.file;
        let text = input.text;
        if (text === null) {
          const r = readText(file);
          if ("error" in r) throw new UsageError(`cannot read ${file}: ${r.error}`);
          text = r.text;
        }
        const res = format(file, text);
        if (!res.ok) {
          const sources = new Map([[file, new SourceFile(file, text)]]);
          for (const d of res.diagnostics) process.stderr.write(renderDiagnostic(d, sources, { color: color() }) + "\n\n");
          process.stderr.write(`${file}: ${summaryLine(res.diagnostics)}; not formatted\n`);
          failed = true;
          continue;
        }
        if (o.stdin) {
          if (o.check) {
            if (res.changed) unformatted.push(file);
          } else process.stdout.write(res.text);
          continue;
        }
        if (!res.changed) continue;
        if (o.check) unformatted.push(file);
        else {
          writeAtomic(file, res.text);
          process.stdout.write(`formatted ${file}\n`);
        }
      }
      if (unformatted.length) {
        process.stdout.write(unformatted.map((f) => `${f}\n`).join(""));
        process.stderr.write(`${plural(unformatted.length, "file")} not formatted; run nnetc fmt ${o.stdin || unformatted.length === 1 ? "on it" : "on them"} to fix\n`);
      }
      process.exitCode = failed || unformatted.length ? 1 : 0;
    });
  for (const cmd of prog.commands) {
    const examples = HELP_EXAMPLES[cmd.name()];
    if (examples) cmd.addHelpText("after", `\nExamples:\n${examples.map((e) => `  ${e}`).join("\n")}`);
  }
  prog.addHelpText("after", `\nExamples:\n  nnetc train models/mlp.nnet\n  nnetc check models/*.nnet\n  nnetc predict --help`);
  return prog;
}

/** All of standard input as UTF-8 text. */
function readStdin(): string {
  try {
    // bounded as a file is (NNETC_MAX_SOURCE_MB): at most limit + 1 bytes are read
    const max = limit("sourceBytes");
    const chunks: Buffer[] = [];
    let n = 0;
    for (;;) {
      const b = Buffer.alloc(Math.min(1 << 20, max + 1 - n));
      let k: number;
      try {
        k = readSync(0, b, 0, b.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue;
        if ((e as NodeJS.ErrnoException).code === "EOF") break;
        throw e;
      }
      if (k === 0) break;
      chunks.push(b.subarray(0, k));
      n += k;
      if (n > max) throw new UsageError(limitText(LIMITS.sourceBytes.code, overLimit("sourceBytes", "standard input", "it holds more than")));
    }
    return Buffer.concat(chunks).toString("utf8").replace(/^\uFEFF/, "");
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read standard input: ${(e as Error).message}`);
  }
}

/**
 * The runtime, loaded only by the commands that need tensors. Found beside this file whether it runs as
 * dist/compiler/cli/main.js or as the bundle dist/nnetc.mjs.
 */
async function runtime(): Promise<typeof import("../../runtime/commands.js")> {
  return (await import(pathToFileURL(runtimeFile("commands.js")).href)) as typeof import("../../runtime/commands.js");
}

/** A runtime module's file, from the bundle (dist/nnetc.mjs) or from dist/compiler/cli. */
function runtimeFile(name: string): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const file = [path.join(here, "runtime", name), path.join(here, "../../runtime", name)].find((f) => existsSync(f));
  if (!file) throw new UsageError("the runtime is missing from this installation (dist/runtime); run npm run build");
  return file;
}

function float(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new UsageError(`--${name} needs a number, got "${v}"`);
    return n;
  };
}

function nonNegative(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} needs a non-negative integer, got "${v}"`);
    return n;
  };
}

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < (name === "seed" ? 0 : 1)) throw new UsageError(`--${name} needs a${name === "seed" ? " non-negative" : " positive"} integer, got "${v}"`);
    return n;
  };
}

const ENGINE_HELP = "tfjs (TensorFlow.js: --backend), torch (PyTorch in a Python process: --device, --precision; see spec/language.md §12.6) or, for eval and predict, onnx (the model exported to ONNX in memory, run by onnxruntime-node; -O2 unless -O is given; §12.7)";

/** The engine options train, eval and predict share. */
function withEngineOptions(c: Command): Command {
  return c
    .option("--engine <name>", ENGINE_HELP, "tfjs")
    .option("--device <device>", "with --engine torch: cpu, cuda, cuda:N or mps", "cpu")
    .option("--precision <p>", "with --engine torch: fp32 or bf16 (autocast)", "fp32");
}

interface EngineFlags {
  engine: string;
  device: string;
  precision: string;
  opt: string;
  backend?: string;
}

/** The launcher's flags taken out of a command line (the workers get the rest). */
function withoutLaunchFlags(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (/^--(nproc|nnodes|node-rank|master)$/.test(a)) i++;
    else if (!/^--(nproc|nnodes|node-rank|master)=/.test(a)) out.push(a);
  }
  return out;
}

/** This process's place in a data-parallel job, from torchrun's environment contract; null outside one. */
function workerOf(env: NodeJS.ProcessEnv): { rank: number; world: number; localRank: number; master: string } | null {
  const world = Number(env.WORLD_SIZE ?? "1");
  if (!(world > 1)) return null;
  const rank = Number(env.RANK);
  // Without LOCAL_RANK (a PyTorchJob pod, an srun task) the worker is alone on its machine: device 0.
  const localRank = Number(env.LOCAL_RANK ?? "0");
  if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw new UsageError(`WORLD_SIZE=${env.WORLD_SIZE} but RANK=${env.RANK ?? "(unset)"}: a worker's RANK is 0 to ${world - 1}`);
  if (!env.MASTER_ADDR || !env.MASTER_PORT) throw new UsageError("a worker of a job needs MASTER_ADDR and MASTER_PORT (torchrun sets them; or start the job with --nproc)");
  return { rank, world, localRank, master: `${env.MASTER_ADDR.includes(":") ? `[${env.MASTER_ADDR}]` : env.MASTER_ADDR}:${env.MASTER_PORT}` };
}

/** --engine torch's options, or null for TensorFlow.js; flags that need the other engine are usage errors. */
function engineOptions(o: EngineFlags): { device: string; precision: string; level: number } | null {
  if (o.engine !== "tfjs" && o.engine !== "torch" && o.engine !== "onnx") throw new UsageError(`--engine ${o.engine}: choose tfjs, torch or onnx`);
  if (o.engine === "tfjs" || o.engine === "onnx") {
    if (o.device !== "cpu" || o.precision !== "fp32") throw new UsageError(`--device and --precision go with --engine torch (${o.engine === "onnx" ? "onnxruntime-node runs on the CPU" : "TensorFlow.js picks its device with --backend"})`);
    return null;
  }
  if (o.backend !== undefined) throw new UsageError("--backend chooses TensorFlow.js's backend; with --engine torch use --device");
  return { device: o.device, precision: o.precision, level: optLevel(o.opt) };
}

/** eval and predict's -O level: as given, else 2 with --engine onnx (the ONNX export's fastest form) and 1 on the other engines. */
function inferenceLevel(o: EngineFlags, cmd: Command): string {
  return o.engine === "onnx" && cmd.getOptionValueSource("opt") === "default" ? "2" : o.opt;
}

/** The module optimized for training at -O`level` (what the torch engine runs, whatever the command). */
async function forTraining(res: CompileResult, level: string) {
  const { optimize } = await import("../passes/index.js");
  return optimize(res.module, { level: optLevel(level), mode: "train" }).module;
}

/** The module optimized for inference at -O`level` (eval and predict run it; weights derive from the original's). */
async function forInference(res: CompileResult, level: string) {
  const { optimize } = await import("../passes/index.js");
  return optimize(res.module, { level: optLevel(level), mode: "infer" }).module;
}

/** compile --target onnx: one file's inference model (at -O`level`) and its weights as FILE.onnx. */
async function compileOnnx(files: string[], o: { out?: string; watch?: boolean; emit?: string; quantize?: string; weights?: string; for: string; after?: string }, level: string): Promise<void> {
  if (files.length > 1) throw new UsageError("--target onnx takes one file");
  if (o.watch || o.emit !== undefined || o.quantize !== undefined || o.after !== undefined) throw new UsageError("--target onnx works without --watch, --emit, --quantize and --after (export a quantized file with --weights FILE.int8.safetensors)");
  if (o.for !== "infer") throw new UsageError("--target onnx exports the inference model: --for train does not apply");
  if (o.out === "-" && process.stdout.isTTY) throw new UsageError("-o -: an ONNX file is binary and stdout is a terminal; redirect it (> model.onnx) or pass -o model.onnx");
  const file = files[0]!;
  const opt = optLevel(level);
  const res = compiled(file);
  if (!res) return;
  const { mainModel } = await import("../emit/index.js");
  const model = mainModel(res.module);
  if (!model) throw new UsageError(`${file} declares no model`);
  const base = `${path.basename(file).replace(/\.nnet$/, "")}.onnx`;
  const outFile = o.out === undefined ? path.join(path.dirname(file), base) : o.out !== "-" && existsSync(o.out) && statSync(o.out).isDirectory() ? path.join(o.out, base) : o.out;
  if (outFile !== "-" && !existsSync(path.dirname(path.resolve(outFile)))) throw new UsageError(`cannot write ${outFile}: its folder does not exist`);
  const rt = await runtime();
  process.exitCode = await rt.onnxCommand({
    file,
    module: res.module,
    inference: await forInference(res, String(opt)),
    model: model.name,
    level: opt,
    ...(o.weights !== undefined ? { weights: o.weights } : {}),
    outFile,
    version: VERSION,
    report: (ds) => {
      for (const d of ds) process.stderr.write(renderDiagnostic(d, res.sources, { color: color() }) + "\n\n");
    },
  });
}

/**
 * compile --target pytorch: one file's models as a Python module FILE.py (-o DIR, default beside the file;
 * -o - prints it), from the IR optimized for training at -O`level` (every weight kept: the module trains and
 * infers with one forward). With --weights RUN, also FILE.MODEL.safetensors: the main model's trained
 * weights as that module's state_dict.
 */
async function compilePytorch(files: string[], o: { checkpointActivations?: boolean; out?: string; watch?: boolean; emit?: string; quantize?: string; prune?: string; weights?: string; after?: string }, level: string): Promise<void> {
  if (files.length > 1) throw new UsageError("--target pytorch takes one file");
  if (o.watch || o.emit !== undefined || o.quantize !== undefined || o.prune !== undefined || o.after !== undefined) throw new UsageError("--target pytorch works without --watch, --emit, --quantize, --prune and --after");
  if (o.weights !== undefined && o.out === "-") throw new UsageError("--weights writes a .safetensors file beside the module: give -o DIR, not -o -");
  if (o.out && o.out !== "-" && existsSync(o.out) && !statSync(o.out).isDirectory()) throw new UsageError(`-o ${o.out} is a file; --target pytorch writes into a folder`);
  const file = files[0]!;
  const opt = optLevel(level);
  const res = compiled(file);
  if (!res) return;
  const { optimize } = await import("../passes/index.js");
  const { emitTorch } = await import("../emit/torch.js");
  const { mainModel } = await import("../emit/index.js");
  const trainIR = optimize(res.module, { level: opt, mode: "train" }).module;
  const r = emitTorch(trainIR, { displayPath: file.split(path.sep).join("/"), sourceText: (f) => res.sources.get(f)?.text, version: VERSION, level: opt, checkpoint: !!o.checkpointActivations });
  if (!r.text) {
    report({ ...res, diagnostics: r.diagnostics }, false);
    process.stderr.write(`${file}: ${summaryLine(r.diagnostics)}\n`);
    process.exitCode = 1;
    return;
  }
  if (o.out === "-") {
    process.stdout.write(r.text);
    return;
  }
  const dir = o.out ?? path.dirname(file);
  if (!existsSync(dir)) throw new UsageError(`cannot write into ${dir}: no such folder`);
  const stem = path.basename(file).replace(/\.nnet$/, "").replace(/[^A-Za-z0-9_]/g, "_").replace(/^(?=\d)/, "_");
  const outFile = path.join(dir, `${stem}.py`);
  writeAtomic(outFile, r.text);
  process.stdout.write(`wrote ${outFile} (${trainIR.models.map((m) => m.name).join(", ")}; -O${opt})\n`);
  if (o.weights !== undefined) {
    const model = mainModel(trainIR)!;
    const rt = await runtime();
    process.exitCode = await rt.torchWeightsCommand({ file, module: trainIR, model: model.name, weights: o.weights, outFile: path.join(dir, `${stem}.${model.name}.safetensors`) });
  }
}

/**
 * compile --target peft: the LoRA adapters of a run (--weights RUN) of the file's main model as a Hugging Face
 * PEFT adapter, DIR/adapter_config.json + DIR/adapter_model.safetensors, for the base model the run started from
 * (--base DIR, else the run's or the plan's init with layout huggingface).
 */
async function compilePeft(files: string[], o: { out?: string; watch?: boolean; emit?: string; quantize?: string; prune?: string; weights?: string; after?: string; force?: boolean; base?: string }): Promise<void> {
  if (files.length > 1) throw new UsageError("--target peft takes one file");
  if (o.watch || o.emit !== undefined || o.quantize !== undefined || o.prune !== undefined || o.after !== undefined) throw new UsageError("--target peft works without --watch, --emit, --quantize, --prune and --after");
  if (!o.weights) throw new UsageError("--target peft needs --weights RUN: the folder of a LoRA run (its adapters.safetensors)");
  if (!o.out || o.out === "-") throw new UsageError("--target peft needs -o DIR: the folder for adapter_config.json and adapter_model.safetensors");
  if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new UsageError(`-o ${o.out} is a file; --target peft writes a folder (adapter_config.json + adapter_model.safetensors)`);
  const file = files[0]!;
  const res = compiled(file);
  if (!res) return;
  const { mainModel } = await import("../emit/index.js");
  const model = mainModel(res.module);
  if (!model) throw new UsageError(`${file} declares no model`);
  const rt = await runtime();
  process.exitCode = await rt.peftCommand({ file, module: res.module, model: model.name, weights: o.weights, ...(o.base !== undefined ? { base: o.base } : {}), outDir: o.out, force: !!o.force });
}

/** -O0, -O1 or -O2 as given on the command line. */
function optLevel(level: string): 0 | 1 | 2 {
  if (!["0", "1", "2"].includes(level)) throw new UsageError(`-O${level} is not a level: use -O0, -O1 or -O2`);
  return Number(level) as 0 | 1 | 2;
}

/** Compile for a runtime command: errors are printed and end the command with exit code 1. */
function compiled(file: string, dataDir?: string): CompileResult | null {
  const res = load(file, dataDir !== undefined ? [dataDir] : []);
  if (!report(res, false)) {
    process.stderr.write(`${file}: ${summaryLine(res.diagnostics)}\n`);
    process.exitCode = 1;
    return null;
  }
  return res;
}

function plural(n: number, w: string): string {
  return `${n} ${w}${n === 1 ? "" : "s"}`;
}

export async function main(argv: string[]): Promise<number> {
  // A reader that stops early (nnetc compile … | head) is not an error.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  const prog = program();
  prog.configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  try {
    await prog.parseAsync(argv, { from: "user" });
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof ConfigError) return 1;
    if (e instanceof UsageError) {
      if (e.message) process.stderr.write(`nnetc: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`nnetc: internal error: ${(e as Error).message}\nThis is a bug in nnetc; please report it with the command and input.\n`);
    return 70;
  }
}

// Bundled (dist/nnetc.mjs, the VS Code extension's server), this file is also the language server's checking
// worker's entry (compiler/lsp/worker.ts): started as that worker, it runs the worker's loop, not the CLI.
if (!isMainThread && (workerData as Record<string, unknown> | null)?.nnetcLspWorker === true) {
  void import("../lsp/worker.js").then((w) => w.runCheckWorker());
} else {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
