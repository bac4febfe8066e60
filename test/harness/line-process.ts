import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Waiter } from './waiter.js';
import { killAndWait } from './kill-and-wait.js';

/** A line a fixture printed: `event`, `t` (its clock as epoch ms), and its fields. */
export interface Line {
  readonly event: string;
  readonly t: number;
  readonly [key: string]: unknown;
}

/**
 * A fixture script in its own process that prints JSON lines on stdout (the
 * fleet tests' front servers and fleet workers). Its lines are recorded as
 * they arrive; tests wait on them, kill it, or freeze it.
 */
export class LineProcess {
  readonly process: ChildProcess;
  readonly lines: Line[] = [];
  readonly exited: Promise<unknown>;
  private readonly waiter = new Waiter();
  private stderr = '';

  constructor(
    fixture: string,
    options: Record<string, unknown>,
    private readonly name: string,
  ) {
    this.process = spawn(process.execPath, [fixture, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = once(this.process, 'exit');
    this.process.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    createInterface({ input: this.process.stdout! }).on('line', (text) => {
      try {
        this.lines.push(JSON.parse(text) as Line);
      } catch {
        return;
      }
      this.waiter.wake();
    });
  }

  /** The first line (recorded or future) with this event that matches. */
  line(event: string, match: (l: Line) => boolean = () => true, timeoutMs = 20_000): Promise<Line> {
    return this.waiter.until(
      () => this.lines.find((l) => l.event === event && match(l)),
      `"${event}" from ${this.name} (stderr: ${this.stderr.trim() || 'empty'})`,
      timeoutMs,
    );
  }

  count(event: string, match: (l: Line) => boolean = () => true): number {
    return this.lines.filter((l) => l.event === event && match(l)).length;
  }

  get pid(): number {
    return this.process.pid as number;
  }

  /** Sends `signal`; returns the epoch ms at that moment (comparable with the lines' `t`). */
  kill(signal: NodeJS.Signals): number {
    const at = performance.timeOrigin + performance.now();
    this.process.kill(signal);
    return at;
  }

  /** Makes sure the process is gone (SIGKILL, which ends a frozen one too). */
  dispose(): Promise<void> {
    return killAndWait(this.process, this.exited);
  }
}
