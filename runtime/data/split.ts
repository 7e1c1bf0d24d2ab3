// A Split: some rows of a Table, with one compiled preprocessing pipeline per field. batch() gathers and
// preprocesses only the requested samples.
import type { Column, Table } from "./columns.js";
import { DataError } from "./errors.js";
import type { FieldInfo, FieldPipeline, Tensor } from "./steps.js";

export type Batch = Record<string, Tensor>;

export interface Split {
  /** Number of samples. */
  readonly size: number;
  /** Per field: batch element type and per-sample shape. */
  readonly fields: Readonly<Record<string, FieldInfo>>;
  /** The preprocessed fields (or only those named) of the samples at `indices` (0 ≤ i < size), in order. */
  batch(indices: ArrayLike<number>, only?: readonly string[]): Batch;
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
  }

  batch(indices: ArrayLike<number>, only?: readonly string[]): Batch {
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
      out[name] = p.pipeline.run(p.column, rows);
    }
    if (only) for (const name of only) if (!(name in out)) throw new DataError(`no field "${name}" (fields: ${[...this.pipelines.keys()].join(", ")})`);
    return out;
  }
}

/** The samples of `split` at `indices`, as a split of its own (e.g. a validation split). */
export function subset(split: Split, indices: ArrayLike<number>): Split {
  checkIndices(indices, split.size);
  const map = Uint32Array.from(indices);
  return {
    size: map.length,
    fields: split.fields,
    batch(idx, only) {
      checkIndices(idx, map.length);
      const inner = new Uint32Array(idx.length);
      for (let i = 0; i < idx.length; i++) inner[i] = map[idx[i]!]!;
      return split.batch(inner, only);
    },
  };
}
