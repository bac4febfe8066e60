import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, worker, type HeartwireServer, type ServerOptions } from '@heartwire/server';
import { ChildClient } from './harness/child.js';
import { JobBeacons } from './harness/job-beacons.js';
import { ServerEvents, startServer } from './harness/server.js';
import { watchPoolCrashes } from './harness/pool-crashes.js';

const JOBS = new URL('./fixtures/jobs.mjs', import.meta.url);
/** How long a queued call waits for the one thread, from its ACCEPTED: well past a 400 ms silent bound. */
const QUEUED_MS = 1500;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server whose method `job` runs test/fixtures/jobs.mjs in worker threads, and what it publishes. */
async function setup(options: ServerOptions = {}, more: (server: HeartwireServer) => void = () => {}) {
  const events = new ServerEvents();
  cleanups.push(() => events.dispose());
  const beacons = new JobBeacons();
  cleanups.push(() => beacons.dispose());
  const started = await startServer({ threadPoolSize: 1, ...options }, (server) => {
    server.handle('job', worker(JOBS));
    more(server);
  });
  cleanups.push(started.close);
  return { ...started, events, beacons };
}

function spawnClient(port: number, options: Record<string, unknown> = {}): ChildClient {
  const child = new ChildClient(port, options);
  cleanups.push(() => child.dispose());
  return child;
}

async function connected(port: number, options: Record<string, unknown> = {}): Promise<ChildClient> {
  const child = spawnClient(port, options);
  await child.waitFor('connected');
  return child;
}

describe('jobs in worker threads', () => {
  it('a tight-loop job stops when its client is SIGKILLed: its thread stops counting, is replaced, and the next call runs', async () => {
    const { port, events, beacons } = await setup();
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'spin', tag: 'killed' } });
    const beacon = await beacons.started('killed');
    await child.waitFor('progress', (e) => e.id === 1);
    const killedAt = child.kill('SIGKILL');
    const abort = await events.abort((m) => m.method === 'job');
    expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
    const stoppedAt = await beacons.stopped(beacon);
    // The loop never yields: only terminating its thread stops it (~2 ms; loose bound for a busy machine).
    expect(stoppedAt - killedAt).toBeLessThan(1000);

    const next = await connected(port);
    next.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'echo', value: 'after' } });
    const result = await next.waitFor('result', (e) => e.id === 1);
    expect(result.value).toMatchObject({ echo: 'after' });
    expect((result.value as { threadId: number }).threadId).not.toBe(beacon.threadId);
  });

  it('a tight-loop job stops when its client cancels; the same connection then completes another call', async () => {
    const { port, events, beacons } = await setup();
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'spin', tag: 'cancelled' } });
    const beacon = await beacons.started('cancelled');
    await child.waitFor('progress', (e) => e.id === 1);
    child.send({ cmd: 'cancel', id: 1 });
    expect((await child.waitFor('error', (e) => e.id === 1)).code).toBe('HW_ERR_ABORTED');
    expect((await events.abort()).reason.code).toBe('HW_ERR_CANCELLED');
    await beacons.stopped(beacon);

    child.send({ cmd: 'call', id: 2, method: 'job', params: { kind: 'echo', value: 2 } });
    expect((await child.waitFor('result', (e) => e.id === 2)).value).toMatchObject({ echo: 2 });
    expect(child.events.filter((e) => e.event === 'closed')).toEqual([]);
  });

  it('progress from inside the worker reaches the client in order, all of it before the result', async () => {
    const { port } = await setup();
    const child = await connected(port);
    const count = 300;
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'progress', count } });
    expect((await child.waitFor('result', (e) => e.id === 1)).value).toEqual({ sent: count });
    const seen = child.events.filter((e) => e.event === 'progress' || e.event === 'result');
    expect(seen.map((e) => (e.event === 'progress' ? e.data : 'result'))).toEqual([
      ...Array.from({ length: count }, (_, i) => i),
      'result',
    ]);
  });

  it('a queued call has its early header and heartbeats while it waits: a client expecting frames every 400 ms waits 1.5 s', async () => {
    const { port, events, beacons } = await setup({ heartbeatMs: 100, silentMs: 300 }, (server) => {
      // Runs on the same one thread as `job`; its own name tells the two calls apart on the server.
      server.handle('queued', worker(JOBS));
    });
    const first = await connected(port);
    const second = await connected(port, { serverSilentMs: 400 });
    first.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'spin', tag: 'ahead' } });
    const ahead = await beacons.started('ahead');
    second.send({ cmd: 'call', id: 1, method: 'queued', params: { kind: 'echo', value: 'queued' } });
    const accepted = await second.waitFor('accepted', (e) => e.id === 1);
    // The wait itself is under test: the thread stays busy for QUEUED_MS from the moment the
    // queued call was accepted, however long the hops through the two clients took.
    await sleep(QUEUED_MS);
    beacons.release(ahead);
    const queuedResult = await second.waitFor('result', (e) => e.id === 1);
    expect((await first.waitFor('result', (e) => e.id === 1)).value).toEqual({ done: 'ahead' });
    expect(queuedResult.value).toMatchObject({ echo: 'queued' });
    // It waited far past its 400 ms bound, with no false verdict on either side. Both times are
    // the second client's own clock.
    expect((queuedResult.t as number) - (accepted.t as number)).toBeGreaterThan(1000);
    // The spin ended before the call it held up. The server's order of events, not the moments
    // two client processes printed their results: nothing orders those.
    expect(events.ends.map((e) => [e.method, e.outcome])).toEqual([
      ['job', 'result'],
      ['queued', 'result'],
    ]);
    expect(second.events.filter((e) => e.event === 'error' || e.event === 'closed')).toEqual([]);
    expect(events.aborts).toEqual([]);
  });

  it('a queued job whose client leaves never starts: the job queued after it starts first', async () => {
    const { port, events, beacons } = await setup();
    const first = await connected(port);
    const leaver = await connected(port);
    first.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'spin', tag: 'running' } });
    await beacons.started('running');
    leaver.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'spin', tag: 'never' } });
    await leaver.waitFor('accepted', (e) => e.id === 1);
    leaver.kill('SIGKILL');
    await events.abort((m) => m.reason.code === 'HW_ERR_PEER_CLOSED');
    first.send({ cmd: 'call', id: 2, method: 'job', params: { kind: 'spin', tag: 'after', ms: 10 } });
    await first.waitFor('accepted', (e) => e.id === 2);
    first.send({ cmd: 'cancel', id: 1 });
    expect((await first.waitFor('result', (e) => e.id === 2)).value).toEqual({ done: 'after' });
    // One thread, first in first out: had "never" been left in the queue it would have run before "after".
    expect(beacons.beacons.map((b) => b.tag)).toEqual(['running', 'after']);
  });

  it('past threadQueueLimit a call fails at once with HW_ERR_QUEUE_FULL; the queue then drains', async () => {
    const { port, beacons } = await setup({ threadQueueLimit: 1 });
    const child = await connected(port);
    // The thread stays busy until released: a 300 ms spin could end before call 3, sent after
    // four hops through the child's pipes, arrived; call 2 would then run and leave room for it.
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'spin', tag: 'q1' } });
    const q1 = await beacons.started('q1');
    child.send({ cmd: 'call', id: 2, method: 'job', params: { kind: 'echo', value: 'waits' } });
    await child.waitFor('accepted', (e) => e.id === 2);
    child.send({ cmd: 'call', id: 3, method: 'job', params: { kind: 'echo', value: 'refused' } });
    const refused = await child.waitFor('error', (e) => e.id === 3);
    expect(refused.code).toBe('HW_ERR_QUEUE_FULL');
    expect(refused.message).toContain('threadQueueLimit');
    beacons.release(q1);
    expect((await child.waitFor('result', (e) => e.id === 2)).value).toMatchObject({ echo: 'waits' });
    expect((await child.waitFor('result', (e) => e.id === 1)).value).toEqual({ done: 'q1' });
  });

  it('server.close() stops a running job\'s thread', async () => {
    const { port, beacons, close } = await setup();
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'spin', tag: 'shutdown' } });
    const beacon = await beacons.started('shutdown');
    await close();
    expect((await child.waitFor('error', (e) => e.id === 1)).code).toBe('HW_ERR_SERVER_SHUTDOWN');
    await beacons.stopped(beacon);
  });
});

describe('a failing job in a worker thread fails its call only', () => {
  it('throw → HW_ERR_HANDLER with its message; a HeartwireError keeps its code; an unsendable result → HW_ERR_ENCODE; the thread is kept', async () => {
    const { port } = await setup();
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'echo', value: 'before' } });
    const before = (await child.waitFor('result', (e) => e.id === 1)).value as { threadId: number };
    child.send({ cmd: 'call', id: 2, method: 'job', params: { kind: 'throw', message: 'bad input 42' } });
    child.send({ cmd: 'call', id: 3, method: 'job', params: { kind: 'throw-coded', message: 'no way' } });
    child.send({ cmd: 'call', id: 4, method: 'job', params: { kind: 'unsendable' } });
    expect(await child.waitFor('error', (e) => e.id === 2)).toMatchObject({ code: 'HW_ERR_HANDLER', message: 'bad input 42' });
    expect(await child.waitFor('error', (e) => e.id === 3)).toMatchObject({ code: 'APP_ERR_NOPE', message: 'no way' });
    expect((await child.waitFor('error', (e) => e.id === 4)).code).toBe('HW_ERR_ENCODE');
    // The thread caught the DataCloneError and sent the error instead: none of these cost it.
    // (The pool gives a job the thread that ended a job last, never the spare while that one is free.)
    child.send({ cmd: 'call', id: 5, method: 'job', params: { kind: 'echo', value: 'after' } });
    expect((await child.waitFor('result', (e) => e.id === 5)).value).toMatchObject({ echo: 'after', threadId: before.threadId });
  });

  it('process.exit, an uncaught error, the heap limit → HW_ERR_WORKER_*; each time the pool recovers and the next call succeeds; other calls are untouched', async () => {
    const { port, events } = await setup({ jobHeapMb: 32 }, (server) => {
      server.handle('main', (value: unknown) => ({ main: value }));
    });
    const child = await connected(port);
    const bystander = await connected(port);
    bystander.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'spin', tag: 'bystander', ms: 100 } });
    const cases = [
      { kind: 'exit', code: 'HW_ERR_WORKER_CRASHED', message: /exited with code 3/ },
      { kind: 'uncaught', code: 'HW_ERR_WORKER_CRASHED', message: /thrown outside the job/ },
      { kind: 'oom', code: 'HW_ERR_WORKER_OUT_OF_MEMORY', message: /out of memory/ },
    ];
    let id = 0;
    for (const c of cases) {
      child.send({ cmd: 'call', id: ++id, method: 'job', params: { kind: c.kind } });
      const error = await child.waitFor('error', (e) => e.id === id);
      expect(error.code, c.kind).toBe(c.code);
      expect(error.message, c.kind).toMatch(c.message);
      child.send({ cmd: 'call', id: ++id, method: 'job', params: { kind: 'echo', value: c.kind } });
      expect((await child.waitFor('result', (e) => e.id === id)).value).toMatchObject({ echo: c.kind });
      child.send({ cmd: 'call', id: ++id, method: 'main', params: c.kind });
      expect((await child.waitFor('result', (e) => e.id === id)).value).toEqual({ main: c.kind });
    }
    expect((await bystander.waitFor('result', (e) => e.id === 1)).value).toEqual({ done: 'bystander' });
    expect([...child.events, ...bystander.events].filter((e) => e.event === 'closed')).toEqual([]);
    expect(events.closes).toEqual([]);
  });
});

describe('a thread that dies between jobs', () => {
  it('is published on heartwire:server:pool:crash and replaced; the next call succeeds', async () => {
    const watch = watchPoolCrashes(cleanups);
    const { port } = await setup();
    const child = await connected(port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'exit-later' } });
    expect((await child.waitFor('result', (e) => e.id === 1)).value).toBe('returned');
    const crash = await watch.first(5000);
    expect(crash.isolation).toBe('thread');
    expect(crash.error.code).toBe('HW_ERR_WORKER_CRASHED');
    expect(crash.error.message).toMatch(/exited with code 7/);
    child.send({ cmd: 'call', id: 2, method: 'job', params: { kind: 'echo', value: 'again' } });
    expect((await child.waitFor('result', (e) => e.id === 2)).value).toMatchObject({ echo: 'again' });
    expect(watch.crashes).toHaveLength(1);
  });
});

describe('worker() and the pool options are checked', () => {
  it('a relative path, a non-file URL and a bad isolation throw InvalidOptionError; so do pool sizes below 1', () => {
    expect(() => worker('relative/job.mjs')).toThrow(/file: URL or an absolute path/);
    expect(() => worker(new URL('https://example.com/job.mjs'))).toThrow(/file: URL/);
    expect(() => worker(JOBS, { isolation: 'fiber' as never })).toThrow(/isolation/);
    for (const option of ['threadPoolSize', 'threadQueueLimit', 'processPoolSize', 'processQueueLimit']) {
      expect(() => createServer({ [option]: 0 }), option).toThrow(new RegExp(option));
    }
    expect(() => createServer({ jobHeapMb: -1 })).toThrow(/jobHeapMb/);
    expect(() => createServer({ jobAbortGraceMs: -1 })).toThrow(/jobAbortGraceMs/);
    expect(() => createServer({ jobAbortGraceMs: 60_001 })).toThrow(/jobAbortGraceMs/);
    expect(() => createServer({ jobAbortGraceMs: 0 })).not.toThrow();
    expect(() => createServer({ loopBlockWarnMs: 1.5 })).toThrow(/loopBlockWarnMs/);
  });
});
