/**
 * Splits a byte stream into lines, across chunk boundaries, with the
 * platform's `TextDecoder` (no Node API). Empty lines (NDJSON filler) are
 * dropped here, so no one above sees the filler.
 */
export class LineReader {
  private readonly decoder = new TextDecoder();
  private pending = '';

  /** The complete, non-empty lines `chunk` finished. */
  push(chunk: Uint8Array): string[] {
    this.pending += this.decoder.decode(chunk, { stream: true });
    const lines: string[] = [];
    let start = 0;
    for (let nl = this.pending.indexOf('\n'); nl !== -1; nl = this.pending.indexOf('\n', start)) {
      const line = this.pending.slice(start, nl).trim();
      if (line.length > 0) lines.push(line);
      start = nl + 1;
    }
    this.pending = this.pending.slice(start);
    return lines;
  }
}
