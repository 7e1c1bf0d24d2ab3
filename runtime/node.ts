// nnetc/runtime/node: nnetc/runtime with the Node-only part that reads and writes files — trained weights from
// paths, fit()/evaluate()/sampleBatch() on the plan's dataset, save(), a dataset's tokenizer file for generate().
// On Node, "nnetc/runtime" is this module (package.json's "node" export condition), so Node users and the
// modules `nnetc compile` emits see one API everywhere; browsers get runtime/index.ts alone. It exports
// exactly what runtime/index.ts exports (the same functions) and registers runtime/host.ts's NodeHost.
import { existsSync, mkdirSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { encodeSafetensors, writeFileAtomic } from "./checkpoint/index.js";
import { loadDataset, savedData } from "./data/index.js";
import { packVocabularies } from "./data/tokenize.js";
import { setNodeHost } from "./host.js";
import type { ModelDef } from "./index.js";
import { RunError } from "./errors.js";
import { readHostWeights } from "./steps.js";
import { train } from "./train.js";
import { generationVocabulary } from "./vocab_file.js";
import { fingerprint, loadTrained } from "./weights.js";
import { writeRunManifest } from "./run_folder.js";

export * from "./index.js";

/** The .nnet file a module was compiled from, as a path (its data paths resolve against its folder). */
const sourceFile = (def: ModelDef<unknown, unknown>) => (def.source.protocol === "file:" ? fileURLToPath(def.source) : def.source.pathname);

setNodeHost({
  loadTrained: (from, def) => loadTrained(from instanceof URL ? fileURLToPath(from) : from, fingerprint(def), "weights"),

  fit(model, net, plan, options) {
    const log = options.log === false ? () => {} : options.log ?? ((line: string) => process.stderr.write(line + "\n"));
    const stop = { requested: false };
    options.signal?.addEventListener("abort", () => (stop.requested = true), { once: true });
    return train({
      file: sourceFile(model.def),
      module: { plans: [plan], datasets: model.def.datasets },
      net,
      start: { weights: model.weights, rng: model.rng },
      dataDir: options.data ?? null,
      ...(options.epochs !== undefined ? { epochs: options.epochs } : {}),
      ...(options.batch !== undefined ? { batch: options.batch } : {}),
      outDir: options.out ?? path.join("runs", model.def.name.toLowerCase()),
      resume: !!options.resume,
      ...(model.seed !== null ? { seed: model.seed } : {}),
      json: false,
      log,
      stop,
      ...(options.onEpoch ? { onEpoch: options.onEpoch } : {}),
    });
  },

  async planSplit(model, plan, options) {
    const ds = model.def.datasets.find((d) => d.name === plan.dataset)!;
    const data = await loadDataset(ds, { dataDir: options.data ?? null, baseDir: path.dirname(sourceFile(model.def)), seed: model.seed ?? 0, ...(model.vocab ? { vocab: model.vocab } : {}), ...(model.saved?.classes ? { classes: model.saved.classes } : {}) });
    if (!model.vocab && data.vocab) model.vocab = data.vocab;
    model.saved ??= savedData(data);
    return options.split === "train" ? data.train : data.test ?? data.train;
  },

  async save(model, dir, options) {
    const file = path.join(dir, "model.safetensors");
    if (existsSync(file) && !options.overwrite) throw new RunError(`${dir} already holds a saved model; pass { overwrite: true } to replace it, or save to another folder`);
    mkdirSync(dir, { recursive: true });
    const fp = fingerprint(model.def);
    writeFileAtomic(file, encodeSafetensors(await readHostWeights(model.weights), { format: "nnetc", model: model.def.name, fingerprint: fp }));
    writeFileAtomic(path.join(dir, "model.json"), JSON.stringify({ model: model.def.name, fingerprint: fp, source: sourceFile(model.def), seed: model.seed, vocab: model.vocab ? packVocabularies(model.vocab) : undefined, ...model.saved }, null, 2) + "\n");
    // Checksummed as a run's files are (runtime/run_folder.ts): load() and nnetc eval check them.
    writeRunManifest(dir, fp, ["model.safetensors", "model.json"]);
  },

  datasetVocabulary: (def, ids) => generationVocabulary(undefined, ids, def.plan, def.datasets, path.dirname(sourceFile(def))),
});
