import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ServerOptions } from '@heartwire/server';
import { Waiter } from './waiter.js';
import { killAndWait } from './kill-and-wait.js';

/** Where it listens, how long SIGTERM lets calls drain, its `createServer` options, and whether its jobs hang. */
export interface ServerProcessOptions {
  readonly port?: number;
  readonly drainMs?: number;
  readonly server?: ServerOptions;
  /** Every `work` call runs until the process dies (30 s at most), whatever its `ms`. */
  readonly hang?: boolean;
}

/**
 * A real heartwire server in its own process (test/fixtures/server.mjs, on
 * the built @heartwire/server), for tests that kill, stop and restart
 * servers for real. Its JSON lines are recorded as they arrive.
 */
export class ServerProcess {
  readonly process: ChildProcess;
  readonly lines: Array<{ event: string; [key: string]: unknown }> = [];
  readonly exited: Promise<unknown>;
  private readonly waiter = new Waiter();

  private constructor(options: ServerProcessOptions) {
    const fixture = fileURLToPath(new URL('../fixtures/server.mjs', import.meta.url));
    this.process = spawn(process.execPath, [fixture, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.exited = once(this.process, 'exit');
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      this.lines.push(JSON.parse(line) as { event: string });
      this.waiter.wake();
    });
  }

  /** Starts a server process and resolves once it listens; `port` 0 (default) picks a free one. */
  static async start(options: ServerProcessOptions = {}): Promise<ServerProcess & { port: number }> {
    const server = new ServerProcess(options);
    const { port } = (await server.line('listening')) as unknown as { port: number };
    return Object.assign(server, { port });
  }

  /** The first line (recorded or future) with this event that matches. */
  line(event: string, match: (l: Record<string, unknown>) => boolean = () => true, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return this.waiter.until(() => this.lines.find((l) => l.event === event && match(l)), `"${event}" from the server process`, timeoutMs);
  }

  /**
   * {@link calls}, once the call tagged `last` has been reported. Its line comes through the
   * process's stdout and its result through the socket: a result in hand says nothing of the
   * line. Lines keep their order, so every call started before `last` is in the list.
   */
  async callsThrough(last: unknown): Promise<unknown[]> {
    await this.line('call', (l) => l.tag === last);
    return this.calls();
  }

  /** Tags of the `work` calls this server started. */
  calls(): unknown[] {
    return this.lines.filter((l) => l.event === 'call').map((l) => l.tag);
  }

  /** Kills it for good (SIGKILL, which ends a frozen process too) and waits until it is gone. */
  kill(): Promise<void> {
    return killAndWait(this.process, this.exited);
  }
}
