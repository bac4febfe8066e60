import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const run = promisify(execFile);

/** Why a real redis-server cannot be started here, or undefined when it can. */
export async function redisUnavailable(): Promise<string | undefined> {
  try {
    await run('redis-server', ['--version'], { timeout: 10_000 });
    return undefined;
  } catch {
    return 'redis-server is not installed (.ci/run installs it with apt-get: redis-server)';
  }
}

/** How to start it: `persist` keeps the data across a restart (append-only file, fsync on every write). */
export interface RedisOptions {
  readonly persist?: boolean;
}

/**
 * A real redis-server (Debian's package) on a free loopback port, with its
 * own temp dir. It can be restarted on the same port (killed with SIGKILL, as
 * a crash would), and is stopped and its dir deleted by `stop()`.
 */
export class RedisServer {
  private child: ChildProcess | undefined;
  private exited: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: RedisOptions,
  ) {}

  static async start(options: RedisOptions = {}): Promise<RedisServer> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'heartwire-redis-'));
    // A lost race for the port (another engineer's test took it) is retried on a fresh one.
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(await freePort(), dir, options);
      try {
        await server.launch();
        return server;
      } catch (err) {
        await server.kill();
        if (attempt >= 3) {
          rmSync(dir, { recursive: true, force: true });
          throw err;
        }
      }
    }
  }

  /** ioredis options to reach it. */
  get connection(): { host: string; port: number; maxRetriesPerRequest: null } {
    // BullMQ's workers need maxRetriesPerRequest: null (their blocking reads wait as long as they must).
    return { host: '127.0.0.1', port: this.port, maxRetriesPerRequest: null };
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Kills it (SIGKILL), then starts it again on the same port and dir; resolves once it answers PING. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Kills it (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await this.exited;
  }

  /** Stops it and deletes its dir. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Sends one command (inline protocol) and resolves with the raw reply. */
  async command(...args: string[]): Promise<string> {
    const socket = net.connect(this.port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      socket.write(`${args.join(' ')}\r\n`);
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      return chunk.toString();
    } finally {
      socket.destroy();
    }
  }

  private async launch(): Promise<void> {
    const persist = this.options.persist === true;
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--save', '',
      '--appendonly', persist ? 'yes' : 'no',
      '--appendfsync', 'always',
      '--daemonize', 'no',
      '--protected-mode', 'yes',
      '--loglevel', 'notice',
      '--logfile', '',
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = once(child, 'exit').catch(() => undefined);
    let log = '';
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        log += `${line}\n`;
        if (line.includes('Ready to accept connections')) resolve();
      });
      child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
      child.once('exit', (code, signal) => reject(new Error(`redis-server exited (${code ?? signal}) before it was ready:\n${log}`)));
      child.once('error', reject);
    });
    const timeout = setTimeout(() => child.kill('SIGKILL'), 10_000);
    try {
      await ready;
    } finally {
      clearTimeout(timeout);
    }
    const pong = await this.command('PING');
    if (!pong.startsWith('+PONG')) throw new Error(`redis-server answered PING with ${JSON.stringify(pong)}`);
  }
}
