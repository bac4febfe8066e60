/**
 * Benchmark peers in their own processes: the parent forks a `.ts` file (run
 * with tsx, or compiled to plain JavaScript first), sends it commands over IPC
 * and awaits the answers. Every process
 * started here is SIGKILLed when the parent exits, fails or is interrupted,
 * and a peer exits as soon as its parent is gone (the IPC channel closes).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: string;
}

const started = new Set<ChildProcess>();

/** Bundles done in this process, by source: each peer file is compiled once per run. */
const bundles = new Map<string, Promise<string>>();

/**
 * `file` bundled into bench/.build/ (beside bench/node_modules, so its package
 * imports resolve); the bundle's path. A dynamic `import()` becomes a chunk of
 * its own, loaded only when reached: a peer loads only what its system uses.
 */
function compiled(file: URL): Promise<string> {
  let bundle = bundles.get(file.href);
  if (bundle === undefined) {
    const name = basename(fileURLToPath(file), '.ts');
    const outdir = fileURLToPath(new URL(`../.build/${name}-${bundles.size}/`, import.meta.url));
    bundle = build({
      entryPoints: [fileURLToPath(file)],
      outdir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'error',
    }).then(() => join(outdir, `${name}.mjs`));
    bundles.set(file.href, bundle);
  }
  return bundle;
}

function killAll(): void {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** A peer process, seen from the parent. */
export class PeerProcess {
  readonly exited: Promise<unknown>;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  private readyInfo: Promise<Record<string, unknown>>;

  private constructor(readonly child: ChildProcess, readonly name: string) {
    started.add(child);
    this.exited = once(child, 'exit').finally(() => started.delete(child));
    let onReady!: (info: Record<string, unknown>) => void;
    this.readyInfo = new Promise((resolve) => {
      onReady = resolve;
    });
    child.on('message', (message: Reply | { ready: Record<string, unknown> }) => {
      if ('ready' in message) {
        onReady(message.ready);
        return;
      }
      const waiter = this.pending.get(message.id);
      if (waiter === undefined) return;
      this.pending.delete(message.id);
      if (message.ok) waiter.resolve(message.value);
      else waiter.reject(new Error(`${name}: ${message.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${name} exited (${signal ?? code})`));
      this.pending.clear();
    });
  }

  /**
   * Forks `file` (a URL, usually `new URL('./x.ts', import.meta.url)`) with
   * `args`; `nodeArgs` go to node (e.g. `--cpu-prof`). With `compiled`, the
   * file is first bundled to plain JavaScript (packages stay imports, so the
   * libraries run from their built `dist/`) and run by node alone: tsx's
   * loader costs a peer CPU per call (half as much again for the heartwire
   * client, measured), which no user's compiled program pays. Resolves once
   * the peer called {@link servePeer}, with what it reported.
   */
  static async start(
    file: URL,
    args: readonly string[],
    options: { name?: string; nodeArgs?: readonly string[]; timeoutMs?: number; compiled?: boolean } = {},
  ): Promise<{ peer: PeerProcess; info: Record<string, unknown> }> {
    const script = options.compiled === true ? await compiled(file) : fileURLToPath(file);
    const child = fork(script, args, {
      execArgv: [...(options.compiled === true ? [] : ['--import', 'tsx']), ...(options.nodeArgs ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const peer = new PeerProcess(child, options.name ?? `${fileURLToPath(file)} ${args.join(' ')}`);
    const timeoutMs = options.timeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const info = await Promise.race([
      peer.readyInfo,
      peer.exited.then(() => {
        throw new Error(`${peer.name} exited before it was ready`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${peer.name} not ready within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    return { peer, info };
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Sends a command and resolves with the peer's answer. */
  request<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, cmd, args });
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Asks the peer to exit (SIGKILL after `graceMs`) and waits until it has. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A command handler; each one names the arguments it takes. */
type Command = (args: any) => unknown;

/**
 * The peer's side: reports `info` as ready, answers each command with its
 * handler's (awaited) value, and exits when the parent disconnects or dies.
 */
export function servePeer(info: Record<string, unknown>, commands: Record<string, Command>): void {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('a bench peer must be started by PeerProcess.start (no IPC channel)');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: { id: number; cmd: string; args: Record<string, unknown> }) => {
    const command = commands[message.cmd];
    Promise.resolve()
      .then(() => {
        if (command === undefined) throw new Error(`unknown command ${message.cmd}`);
        return command(message.args);
      })
      .then(
        (value) => send({ id: message.id, ok: true, value }),
        (err: unknown) => send({ id: message.id, ok: false, error: (err as Error)?.stack ?? String(err) }),
      );
  });
  send({ ready: info });
}
