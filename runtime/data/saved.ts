// What a run saves of its data beside the weights (class names, column shapes), and reading it back. No file
// access here: the platform-neutral nnetc/runtime reads it from a weights file's metadata too.

/** What a run saves of its data besides vocabularies (model.json, checkpoints, exported files): class names and column shapes. */
export interface SavedData {
  classes?: string[];
  columns?: Record<string, number[]>;
}

/** A saved record read back (model.json, a checkpoint's state, a file's metadata), each part only when well formed; older runs have none. */
export function readSavedData(o: { classes?: unknown; columns?: unknown } | undefined): SavedData {
  const out: SavedData = {};
  if (Array.isArray(o?.classes) && o.classes.length > 0 && o.classes.every((c) => typeof c === "string")) out.classes = o.classes as string[];
  const cols = o?.columns;
  if (cols && typeof cols === "object" && !Array.isArray(cols)) {
    const ok = Object.entries(cols).filter(([, v]) => Array.isArray(v) && v.length <= 8 && v.every((d) => Number.isInteger(d) && d > 0 && d <= 1 << 20));
    if (ok.length) out.columns = Object.fromEntries(ok) as Record<string, number[]>;
  }
  return out;
}
