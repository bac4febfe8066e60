import { pbkdf2Sync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { worker, type ServerOptions } from '@heartwire/server';
import { ChildClient } from './harness/child.js';
import { ServerEvents, startServer } from './harness/server.js';
import { watchPoolCrashes } from './harness/pool-crashes.js';

const JOBS = new URL('./fixtures/jobs.mjs', import.meta.url);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: ServerOptions = {}) {
  const events = new ServerEvents();
  cleanups.push(() => events.dispose());
  const started = await startServer({ processPoolSize: 1, ...options }, (server) => {
    server.handle('job', worker(JOBS, { isolation: 'process' }));
  });
  cleanups.push(started.close);
  return { ...started, events };
}

async function connected(port: number): Promise<ChildClient> {
  const child = new ChildClient(port);
  cleanups.push(() => child.dispose());
  await child.waitFor('connected');
  return child;
}

/** pbkdf2Sync iterations that take about `ms` here (measured, so a slow machine gets fewer). */
function iterationsFor(ms: number): number {
  const sample = 20_000;
  const start = performance.now();
  pbkdf2Sync('secret', 'salt', sample, 64, 'sha512');
  return Math.ceil((sample * ms) / Math.max(1, performance.now() - start));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves with `performance.now()` once `pid` is gone (killed and reaped); rejects after `timeoutMs`. */
async function gone(pid: number, timeoutMs = 5000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (!alive(pid)) return performance.now();
    await sleep(2);
  }
  throw new Error(`process ${pid} still alive after ${timeoutMs} ms`);
}

describe('jobs in child processes (isolation: process)', () => {
  const PBKDF2_MS = 4000;

  it('a job stuck in one synchronous pbkdf2Sync call stops at once when its client is SIGKILLed; a new process takes the next call', async () => {
    const { port, events } = await setup();
    const iterations = iterationsFor(PBKDF2_MS);
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'pbkdf2', iterations } });
    const { pid } = (await child.waitFor('progress', (e) => e.id === 1)).data as { pid: number };
    expect(pid).not.toBe(process.pid);
    child.kill('SIGKILL');
    const abort = await events.abort();
    expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
    const goneAt = await gone(pid);
    // SIGKILL needs no cooperation from the job: gone in milliseconds, not when pbkdf2Sync returns (~4 s).
    expect(goneAt - abort.at).toBeLessThan(1000);

    const next = await connected(port);
    next.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'echo', value: 'next' } });
    const result = (await next.waitFor('result', (e) => e.id === 1)).value as { echo: string; pid: number };
    expect(result.echo).toBe('next');
    expect(result.pid).not.toBe(pid);
  });

  it('the same job stops at once when its client cancels; the connection goes on', async () => {
    const { port, events } = await setup();
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'pbkdf2', iterations: iterationsFor(PBKDF2_MS) } });
    const { pid } = (await child.waitFor('progress', (e) => e.id === 1)).data as { pid: number };
    child.send({ cmd: 'cancel', id: 1 });
    const abort = await events.abort();
    expect(abort.reason.code).toBe('HW_ERR_CANCELLED');
    expect((await gone(pid)) - abort.at).toBeLessThan(1000);
    child.send({ cmd: 'call', id: 2, method: 'job', params: { kind: 'echo', value: 2 } });
    expect((await child.waitFor('result', (e) => e.id === 2)).value).toMatchObject({ echo: 2 });
  });

  it('progress arrives in order before the result; a queued job whose client leaves never runs', async () => {
    const { port, events } = await setup();
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'progress', count: 200 } });
    expect((await child.waitFor('result', (e) => e.id === 1)).value).toEqual({ sent: 200 });
    const seen = child.events.filter((e) => e.event === 'progress' || e.event === 'result');
    expect(seen.map((e) => (e.event === 'progress' ? e.data : 'result'))).toEqual([...Array(200).keys(), 'result']);

    child.send({ cmd: 'call', id: 2, method: 'job', params: { kind: 'spin', tag: 'busy' } });
    const { pid } = (await child.waitFor('progress', (e) => e.id === 2)).data as { pid: number };
    const leaver = await connected(port);
    leaver.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'spin', tag: 'never' } });
    await leaver.waitFor('accepted', (e) => e.id === 1);
    leaver.kill('SIGKILL');
    await events.abort((m) => m.reason.code === 'HW_ERR_PEER_CLOSED');
    child.send({ cmd: 'call', id: 3, method: 'job', params: { kind: 'spin', tag: 'after', ms: 10 } });
    await child.waitFor('accepted', (e) => e.id === 3);
    child.send({ cmd: 'cancel', id: 2 });
    await gone(pid);
    expect((await child.waitFor('result', (e) => e.id === 3)).value).toEqual({ done: 'after' });
    // Only one process: the "never" job would have started (and reported progress) before "after".
    const started = child.events.concat(leaver.events).filter((e) => e.event === 'progress' && typeof e.data === 'object');
    expect(started.map((e) => (e.data as { started: string }).started)).toEqual(['busy', 'after']);
  });

  it('throw → HW_ERR_HANDLER; process.exit and the heap limit → HW_ERR_WORKER_CRASHED; the next call succeeds each time', async () => {
    const { port } = await setup({ jobHeapMb: 32 });
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'throw', message: 'in a process' } });
    expect(await child.waitFor('error', (e) => e.id === 1)).toMatchObject({ code: 'HW_ERR_HANDLER', message: 'in a process' });
    const cases = [
      { kind: 'exit', message: /exited with code 3/ },
      // V8 aborts the process when it reaches the heap limit.
      { kind: 'oom', message: /killed by SIGABRT/ },
    ];
    let id = 1;
    for (const c of cases) {
      child.send({ cmd: 'call', id: ++id, method: 'job', params: { kind: c.kind } });
      const error = await child.waitFor('error', (e) => e.id === id);
      expect(error.code, c.kind).toBe('HW_ERR_WORKER_CRASHED');
      expect(error.message, c.kind).toMatch(c.message);
      child.send({ cmd: 'call', id: ++id, method: 'job', params: { kind: 'echo', value: c.kind } });
      expect((await child.waitFor('result', (e) => e.id === id)).value).toMatchObject({ echo: c.kind });
    }
  });
});

describe('the process pool', () => {
  it('past processQueueLimit a call fails at once with HW_ERR_QUEUE_FULL; close() kills the running job\'s process', async () => {
    const { port, close } = await setup({ processQueueLimit: 1 });
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'spin', tag: 'holds' } });
    const { pid } = (await child.waitFor('progress', (e) => e.id === 1)).data as { pid: number };
    child.send({ cmd: 'call', id: 2, method: 'job', params: { kind: 'echo', value: 'waits' } });
    await child.waitFor('accepted', (e) => e.id === 2);
    child.send({ cmd: 'call', id: 3, method: 'job', params: { kind: 'echo', value: 'refused' } });
    const refused = await child.waitFor('error', (e) => e.id === 3);
    expect(refused.code).toBe('HW_ERR_QUEUE_FULL');
    expect(refused.message).toContain('processQueueLimit');
    await close();
    expect((await child.waitFor('error', (e) => e.id === 1)).code).toBe('HW_ERR_SERVER_SHUTDOWN');
    expect((await child.waitFor('error', (e) => e.id === 2)).code).toBe('HW_ERR_SERVER_SHUTDOWN');
    expect(alive(pid)).toBe(false);
  });

  it('a process that dies between jobs is published on heartwire:server:pool:crash and replaced; the next call succeeds', async () => {
    const watch = watchPoolCrashes(cleanups);
    const { port } = await setup();
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'exit-later' } });
    expect((await child.waitFor('result', (e) => e.id === 1)).value).toBe('returned');
    const crash = await watch.first(5000);
    expect(crash.isolation).toBe('process');
    expect(crash.error.code).toBe('HW_ERR_WORKER_CRASHED');
    expect(crash.error.message).toMatch(/exited with code 7/);
    child.send({ cmd: 'call', id: 2, method: 'job', params: { kind: 'echo', value: 'again' } });
    expect((await child.waitFor('result', (e) => e.id === 2)).value).toMatchObject({ echo: 'again' });
  });
});
