// A Split: some rows of a Table, with one compiled preprocessing pipeline per field. batch() gathers and
// preprocesses only the requested samples.
import type { Column, Table } from "./columns.js";
import { DataError } from "./errors.js";
import type { Draw, FieldInfo, FieldPipeline, Tensor } from "./steps.js";

export type Batch = Record<string, Tensor>;

export interface Split {
  /** Number of samples. */
  readonly size: number;
  /** Per field: batch element type and per-sample shape. */
  readonly fields: Readonly<Record<string, FieldInfo>>;
  /** The preprocessed fields (or only those named) of the samples at `indices` (0 ≤ i < size), in order. */
  batch(indices: ArrayLike<number>, only?: readonly string[]): Batch;
  /**
   * A training epoch's view of the split: its random steps (augmentation) draw with (seed, epoch) — the same
   * draws for a sample whatever its batch, and after --resume. The split itself when no step is random. Views
   * of one (seed, epoch) are one object (engines cache a split's data by identity).
   */
  augmented?(seed: number, epoch: number): Split;
  /** An augmented view's split (the one whose data it redraws); absent on splits themselves. */
  readonly base?: Split;
  /** Where sample `index` is in its source, for messages: "data.csv:12", "labels.idx: item 7", "csv(x.csv) sample 3". */
  locate?(index: number): string;
}

/** The last view made, kept so that an epoch's chunks of steps see one object. */
function memo(make: (seed: number, epoch: number) => Split): (seed: number, epoch: number) => Split {
  let last: { seed: number; epoch: number; view: Split } | null = null;
  return (seed, epoch) => {
    if (!last || last.seed !== seed || last.epoch !== epoch) last = { seed, epoch, view: make(seed, epoch) };
    return last.view;
  };
}

function checkIndices(indices: ArrayLike<number>, size: number): void {
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i]!;
    if (!Number.isInteger(k) || k < 0 || k >= size) throw new DataError(`sample index ${k} is out of range for a split of ${size} samples`);
  }
}

export class TableSplit implements Split {
  readonly size: number;
  readonly fields: Readonly<Record<string, FieldInfo>>;
  /** Whether a field has a random step. */
  readonly random: boolean;

  constructor(
    private readonly table: Table,
    /** Table rows of this split, or null for all of them. */
    private readonly rows: Uint32Array | null,
    private readonly pipelines: ReadonlyMap<string, { pipeline: FieldPipeline; column: Column }>,
  ) {
    this.size = rows ? rows.length : table.size;
    const fields: Record<string, FieldInfo> = {};
    for (const [name, p] of pipelines) fields[name] = p.pipeline.info;
    this.fields = Object.freeze(fields);
    this.random = [...pipelines.values()].some((p) => p.pipeline.random);
  }

  private readonly view = memo((seed, epoch): Split => {
    const draw: Draw = { seed, epoch };
    return { size: this.size, fields: this.fields, base: this, batch: (indices, only) => this.gather(indices, only, draw), augmented: (s, e) => this.augmented(s, e) };
  });

  augmented(seed: number, epoch: number): Split {
    return this.random ? this.view(seed, epoch) : this;
  }

  batch(indices: ArrayLike<number>, only?: readonly string[]): Batch {
    return this.gather(indices, only, null);
  }

  locate(index: number): string {
    const row = this.rows ? this.rows[index]! : index;
    return this.table.where ? this.table.where(row) : `${this.table.origin} sample ${row}`;
  }

  private gather(indices: ArrayLike<number>, only: readonly string[] | undefined, draw: Draw | null): Batch {
    checkIndices(indices, this.size);
    let rows: ArrayLike<number> = indices;
    if (this.rows) {
      const r = new Uint32Array(indices.length);
      for (let i = 0; i < indices.length; i++) r[i] = this.rows[indices[i]!]!;
      rows = r;
    }
    const out: Batch = {};
    for (const [name, p] of this.pipelines) {
      if (only && !only.includes(name)) continue;
      out[name] = p.pipeline.run(p.column, rows, draw);
    }
    if (only) for (const name of only) if (!(name in out)) throw new DataError(`no field "${name}" (fields: ${[...this.pipelines.keys()].join(", ")})`);
    return out;
  }
}

/** The samples of `split` at `indices`, as a split of its own (e.g. a validation split). */
export function subset(split: Split, indices: ArrayLike<number>): Split {
  checkIndices(indices, split.size);
  const map = Uint32Array.from(indices);
  const self: Split = {
    size: map.length,
    fields: split.fields,
    batch(idx, only) {
      checkIndices(idx, map.length);
      const inner = new Uint32Array(idx.length);
      for (let i = 0; i < idx.length; i++) inner[i] = map[idx[i]!]!;
      return split.batch(inner, only);
    },
    ...(split.locate ? { locate: (i: number) => split.locate!(map[i]!) } : {}),
  };
  if (split.augmented) {
    const view = memo((seed, epoch) => ({ ...subset(split.augmented!(seed, epoch), map), base: self, augmented: self.augmented! }));
    self.augmented = (seed, epoch) => (split.augmented!(seed, epoch) === split ? self : view(seed, epoch));
  }
  return self;
}
