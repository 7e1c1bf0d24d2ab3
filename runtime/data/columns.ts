// Columns: the raw data of a source, one value per sample, kept in its compact on-disk type (a Uint8Array
// of pixels stays a Uint8Array). Preprocessing happens later, per batch (steps.ts).
export type NumStore = Uint8Array | Int8Array | Uint16Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface NumColumn {
  kind: "num";
  name: string;
  /** Per-sample shape ([] for scalars). */
  shape: number[];
  /** Every value is an integer (the column is gathered into an Int32Array). */
  int: boolean;
  /** Copy the given samples, one after another, into `out` (length rows.length × prod(shape)). */
  gather(rows: ArrayLike<number>, out: Int32Array | Float32Array): void;
  /** Where a row of the source is, for messages ("data.csv:12"); absent for sources without rows of text. */
  where?: (row: number) => string;
}

export interface TextColumn {
  kind: "text";
  name: string;
  data: string[];
  where?: (row: number) => string;
}

export type Column = NumColumn | TextColumn;

/** The samples of one source: columns of equal length. */
export interface Table {
  size: number;
  /** What the samples came from, for messages ("idx(/data/train-images-idx3-ubyte.gz)"). */
  origin: string;
  columns: Map<string, Column>;
  /** The class names, index = label, for sources that derive labels from names (folders, spam). */
  classes: string[] | null;
  /** Where a row is, for messages: "data.csv:12" (the line it starts on), "data.jsonl:3", "labels.idx: item 7". */
  where?: (row: number) => string;
}

export function prod(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

const INT_STORES = [Uint8Array, Int8Array, Uint16Array, Int16Array, Int32Array];

/** A column backed by one typed array holding all samples back to back. */
export function storedColumn(name: string, data: NumStore, shape: number[]): NumColumn {
  const size = prod(shape);
  const int = INT_STORES.some((c) => data instanceof c);
  return {
    kind: "num",
    name,
    shape,
    int,
    gather(rows, out) {
      const n = rows.length;
      if (size === 1) {
        for (let i = 0; i < n; i++) out[i] = data[rows[i]!]!;
        return;
      }
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        out.set(data.subarray(r * size, r * size + size), i * size);
      }
    },
  };
}

/** Values parsed from text (CSV cells, JSON numbers): integers in int32 range are stored as Int32Array. */
export function numbersColumn(name: string, values: ArrayLike<number>, shape: number[]): NumColumn {
  let int = true;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
      int = false;
      break;
    }
  }
  const store = int ? Int32Array.from(values as ArrayLike<number>) : Float64Array.from(values as ArrayLike<number>);
  return storedColumn(name, store, shape);
}
