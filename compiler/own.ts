// Name tables keyed by user-written names (ops, losses, settings, …) must find only their own entries: a plain
// object literal also "has" constructor, __proto__, toString, valueOf, … through Object.prototype, and a file
// that names one of those would reach a function where the compiler expects a table entry (an internal error).

/** Cuts each table off from Object.prototype, in place: `T[name]` and `name in T` then see own entries only. */
export function ownNamesOnly(...tables: object[]): void {
  for (const t of tables) Object.setPrototypeOf(t, null);
}

/** `t[name]` when `name` is one of t's own keys, else undefined (for tables that keep their prototype). */
export function own<T>(t: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.hasOwn(t, name) ? t[name] : undefined;
}
