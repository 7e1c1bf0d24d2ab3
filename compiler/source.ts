// Source files: text plus a line index, so that spans (offsets) become lines and columns on demand.
import type { Span } from "./ast/types.js";
import type { IRSpan } from "./ir/types.js";

export class SourceFile {
  private lineStarts: number[];
  constructor(readonly path: string, readonly text: string) {
    this.lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }
  /** 1-based line and column of an offset. */
  position(offset: number): { line: number; col: number } {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: o - this.lineStarts[lo]! + 1 };
  }
  lineText(line: number): string {
    const start = this.lineStarts[line - 1] ?? this.text.length;
    const end = this.lineStarts[line] ?? this.text.length + 1;
    return this.text.slice(start, end - 1).replace(/\r$/, "");
  }
  get lineCount(): number {
    return this.lineStarts.length;
  }
  irSpan(span: Span): IRSpan {
    const { line, col } = this.position(span.start);
    return { file: span.file, start: span.start, end: span.end, line, col };
  }
}
