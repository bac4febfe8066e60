/** What every benchmark prints and writes: a table on stdout and a JSON file under bench/results/. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

/** One line naming the machine, as the README quotes it. */
export function machine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  const gib = Math.round(os.totalmem() / 2 ** 30);
  return `${cpus.length} × ${model}, ${gib} GiB, ${os.type()} ${os.release()}`;
}

/** The fields every results file starts with. */
export function header(): { date: string; machine: string; node: string } {
  return { date: new Date().toISOString(), machine: machine(), node: process.version };
}

/** What bench/results/NAME.json holds now, or an empty object. */
export function readResults(name: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(new URL(`../results/${name}.json`, import.meta.url), 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Writes `data` as bench/results/NAME.json and returns the path. */
export function writeResults(name: string, data: object): string {
  const dir = new URL('../results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${name}.json`, dir);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file.pathname;
}

type Cell = string | number;

/** A Markdown table, so the same text goes to the terminal and into the README. */
export function table(columns: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((row) => row.map((cell) => (typeof cell === 'number' ? formatNumber(cell) : cell)));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((r) => r[i]?.length ?? 0)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(columns), rule, ...text.map(line)].join('\n');
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
}
