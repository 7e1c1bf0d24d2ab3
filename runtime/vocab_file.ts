// Tokenizer files for generation (Node only: nnetc generate, and generate() of nnetc/runtime/node): a
// --tokenizer file, or the one a plan's dataset tokenizes its token input with. runtime/generate.ts, the
// generation loop itself, reads no files, so that it runs in browsers too.
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { parseVocabularyFile, type Vocabulary } from "./data/index.js";
import { RunError } from "./errors.js";
import type { DatasetSpec, PlanSpec } from "./spec.js";

/** A tokenizer file: read (at most 64 MB) and parsed, or a RunError naming it. */
export function readVocabularyFile(file: string, merges: string | undefined, what: string, lowercase = true): Vocabulary {
  const read = (f: string, w: string) => {
    if (!existsSync(f)) throw new RunError(`generate: ${w} ${f} does not exist`);
    if (statSync(f).size > 64 << 20) throw new RunError(`generate: ${w} ${f} is over 64 MB`);
    return readFileSync(f, "utf8");
  };
  const v = parseVocabularyFile(file, read(file, what), merges ? read(merges, "merges") : null, lowercase);
  if (typeof v === "string") throw new RunError(`generate: ${what} ${file} is not a tokenizer nnetc reads: ${v}`);
  return v;
}

/** The vocabulary of the token input `ids`: the run's saved one, else the plan dataset's tokenize file (paths against `baseDir`); null for ids only. */
export function generationVocabulary(saved: Record<string, Vocabulary> | undefined, ids: string, plan: Pick<PlanSpec, "dataset"> | null | undefined, datasets: readonly DatasetSpec[], baseDir: string): Vocabulary | null {
  if (saved?.[ids]) return saved[ids]!;
  const ds = plan && datasets.find((d) => d.name === plan.dataset);
  const step = ds?.fields.find((f) => f.name === ids)?.steps.find((s) => s.fn === "tokenize");
  if (step && typeof step.args.vocab === "string") {
    return readVocabularyFile(path.resolve(baseDir, step.args.vocab), typeof step.args.merges === "string" ? path.resolve(baseDir, step.args.merges) : undefined, "the dataset's tokenizer", step.args.lowercase !== false);
  }
  return null;
}
