import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { HeartwireError } from '@heartwire/core';
import type { CallContext } from '../src/calls/handler.js';
import { WORKER_ENTRY } from '../src/jobs/entries.js';
import { WorkerPool } from '../src/jobs/worker-pool.js';
import { Waiter } from '../../../test/harness/waiter.js';

const fixture = (name: string): URL => new URL(`../../../test/fixtures/${name}`, import.meta.url);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function context(onProgress: (data: unknown) => void = () => {}): CallContext {
  const signal = new AbortController().signal;
  return {
    method: 'job',
    id: 1,
    signal,
    aborted: false,
    throwIfAborted: () => {},
    remoteAddress: undefined,
    remotePort: undefined,
    progress: (data) => {
      onProgress(data);
      return true;
    },
    yield: () => Promise.resolve(),
  };
}

function request(params: Record<string, unknown>) {
  return { module: fixture('jobs.mjs').href, params, method: 'job', id: 1 };
}

describe('WorkerPool', () => {
  it('a thread that dies before it is ready fails the job it was started for, and the pool does not start threads forever', async () => {
    const crashes: HeartwireError[] = [];
    const waiter = new Waiter();
    const pool = new WorkerPool({
      entry: fixture('broken-thread.mjs'),
      size: 2,
      queueLimit: 10,
      heapMb: 0,
      graceMs: 5,
      onIdleCrash: (error) => {
        crashes.push(error);
        waiter.wake();
      },
    });
    cleanups.push(() => pool.close());
    const echo = request({ kind: 'echo', value: 1 });
    // The first job starts two threads (one for it, the spare); the first to die fails it.
    await expect(pool.run(echo, context())).rejects.toMatchObject({ code: 'HW_ERR_WORKER_CRASHED', message: /cannot start/ });
    await waiter.until(() => (crashes.length >= 2 ? true : undefined), 'the spare to die too', 10_000);
    // No spare is started any more: the next job starts one thread, for itself, which dies and fails it.
    await expect(pool.run(echo, context())).rejects.toMatchObject({ code: 'HW_ERR_WORKER_CRASHED' });
    await waiter.until(() => (crashes.length >= 3 ? true : undefined), 'the third thread to die', 10_000);
    await pool.close();
    expect(crashes).toHaveLength(3);
  });

  it('close() fails the running and the queued job with HW_ERR_SERVER_SHUTDOWN and resolves once its threads are gone', async () => {
    const pool = new WorkerPool({ entry: WORKER_ENTRY, size: 1, queueLimit: 10, heapMb: 0, graceMs: 5, onIdleCrash: () => {} });
    cleanups.push(() => pool.close());
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const spin = pool.run(request({ kind: 'spin', tag: 'closed', ms: 20_000 }), context(() => started()));
    const queued = pool.run(request({ kind: 'echo', value: 'never' }), context());
    await running;
    const closed = pool.close();
    await expect(spin).rejects.toMatchObject({ code: 'HW_ERR_SERVER_SHUTDOWN' });
    await expect(queued).rejects.toMatchObject({ code: 'HW_ERR_SERVER_SHUTDOWN' });
    await closed;
    await expect(pool.run(request({ kind: 'echo', value: 'late' }), context())).rejects.toMatchObject({ code: 'HW_ERR_SERVER_SHUTDOWN' });
  });

  it('keeps the process alive while a job runs, and lets it exit once its threads are idle', async () => {
    const child = spawn(process.execPath, [fileURLToPath(fixture('pool-exit-when-idle.mjs'))], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const [code] = (await Promise.race([
      once(child, 'exit'),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`still running after 20 s (stdout: ${out})`)), 20_000)),
    ])) as [number | null];
    // Exit code 13 and no output would be a top-level await the pool let the process abandon.
    expect(out).toBe('{"done":"exit-when-idle"}\n');
    expect(code).toBe(0);
  });
});
