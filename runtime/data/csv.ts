// CSV (RFC 4180 and the usual liberties): quoted fields with "" for a quote, delimiters and newlines inside
// quotes, CRLF or LF, a leading byte-order mark. Lenient: it never throws; a stray quote inside an unquoted
// field is kept as text, text after a closing quote is appended, an unclosed quote runs to the end.
// Completely empty lines are skipped.

export interface CsvRecords {
  rows: string[][];
  /** The 1-based line on which each row starts. */
  lines: number[];
}

export function parseCsvWithLines(text: string, delimiter = ","): CsvRecords {
  const rows: string[][] = [];
  const lines: number[] = [];
  const delim = delimiter.length > 0 ? delimiter : ",";
  const d0 = delim.charCodeAt(0);
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  while (i < n) {
    // A completely empty line is not a record.
    const c0 = text.charCodeAt(i);
    if (c0 === 10 || c0 === 13) {
      i += c0 === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
      line++;
      continue;
    }
    const row: string[] = [];
    const start = line;
    for (;;) {
      // One field starting at i.
      let value = "";
      if (text.charCodeAt(i) === 34) {
        i++;
        let from = i;
        for (;;) {
          const q = text.indexOf('"', i);
          if (q < 0) {
            value += text.slice(from, n);
            i = n;
            break;
          }
          if (text.charCodeAt(q + 1) === 34) {
            value += text.slice(from, q + 1);
            i = q + 2;
            from = i;
            continue;
          }
          value += text.slice(from, q);
          i = q + 1;
          break;
        }
        for (let k = value.indexOf("\n"); k >= 0; k = value.indexOf("\n", k + 1)) line++;
        for (let k = value.indexOf("\r"); k >= 0; k = value.indexOf("\r", k + 1)) if (value.charCodeAt(k + 1) !== 10) line++;
      }
      // Unquoted text (or whatever follows a closing quote) up to the delimiter or the end of the line.
      const from = i;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c === 10 || c === 13) break;
        if (c === d0 && text.startsWith(delim, i)) break;
        i++;
      }
      value += text.slice(from, i);
      row.push(value);
      if (i < n && text.charCodeAt(i) === d0 && text.startsWith(delim, i)) {
        i += delim.length;
        continue;
      }
      break;
    }
    rows.push(row);
    lines.push(start);
    if (i < n) {
      i += text.charCodeAt(i) === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
      line++;
    }
  }
  return { rows, lines };
}

/** Parse CSV text into rows of fields. Never throws. */
export function parseCsv(text: string, delimiter = ","): string[][] {
  return parseCsvWithLines(text, delimiter).rows;
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A decimal number written in a cell (surrounding spaces allowed), or null. */
export function parseNumber(cell: string): number | null {
  const s = cell.trim();
  if (!NUMBER.test(s)) return null;
  const v = Number(s);
  return Number.isFinite(v) ? v : null;
}

const NON_FINITE = /^[+-]?(?:nan|inf|infinity)$/i;

/** A cell written as a number that is no finite one: NaN, ±inf(inity) in any case, or a decimal beyond float64 (1e400). */
export function isNonFiniteCell(cell: string): boolean {
  const s = cell.trim();
  return NON_FINITE.test(s) || (NUMBER.test(s) && !Number.isFinite(Number(s)));
}
