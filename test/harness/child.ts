import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Waiter } from './waiter.js';
import { killAndWait } from './kill-and-wait.js';

/** A line the fixture printed, with the parent's `performance.now()` when it arrived. */
export interface ChildEvent {
  readonly event: string;
  readonly receivedAt: number;
  readonly [key: string]: unknown;
}

/** How to start the child: `wrap` is an argv prefix to run node under (it must exec node in place, keeping the pid), e.g. `ip netns exec NAME`; `fixture` another script speaking the same JSON lines. */
export interface SpawnHow {
  readonly wrap?: readonly string[];
  readonly fixture?: string;
}

/**
 * A real client in its own process (test/fixtures/client.mjs, running the
 * built @heartwire/client), driven by JSON lines on stdin and reporting JSON
 * lines on stdout. Tests kill it, freeze it, or ask it to misbehave.
 */
export class ChildClient {
  readonly process: ChildProcess;
  readonly events: ChildEvent[] = [];
  readonly exited: Promise<unknown>;
  private readonly waiter = new Waiter();
  private stderr = '';

  constructor(port: number, options: Record<string, unknown> = {}, how: SpawnHow = {}) {
    const fixture = how.fixture ?? fileURLToPath(new URL('../fixtures/client.mjs', import.meta.url));
    const [command, ...args] = [...(how.wrap ?? []), process.execPath, fixture, JSON.stringify({ port, ...options })];
    this.process = spawn(command as string, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = once(this.process, 'exit');
    this.process.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      this.events.push({ ...parsed, event: String(parsed.event), receivedAt: performance.now() });
      this.waiter.wake();
    });
  }

  get pid(): number {
    return this.process.pid as number;
  }

  /** Sends one command line to the fixture. */
  send(command: Record<string, unknown>): void {
    this.process.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** Resolves with the first event (recorded or future) named `event` that matches. */
  waitFor(event: string, match: (e: ChildEvent) => boolean = () => true, timeoutMs = 20_000): Promise<ChildEvent> {
    return this.waiter.until(
      () => this.events.find((e) => e.event === event && match(e)),
      `"${event}" from the child (stderr: ${this.stderr.trim() || 'empty'})`,
      timeoutMs,
    );
  }

  /** Sends `signal` and returns the parent's clock at that moment. */
  kill(signal: NodeJS.Signals): number {
    const at = performance.now();
    this.process.kill(signal);
    return at;
  }

  /** Makes sure the process is gone (SIGKILL, which ends a frozen one too). */
  dispose(): Promise<void> {
    return killAndWait(this.process, this.exited);
  }
}
