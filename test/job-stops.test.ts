import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { worker, type JobIsolation, type ServerOptions } from '@heartwire/server';
import { ChildClient } from './harness/child.js';
import { JobBeacons } from './harness/job-beacons.js';
import { ServerEvents, startServer } from './harness/server.js';

/**
 * Cooperative stops: a worker() job is told through ctx.aborted / ctx.signal
 * that its call stopped, and one that ends within jobAbortGraceMs keeps its
 * thread or process. Graces here are long (a loaded machine may not run the
 * job's thread for a while); the default's few milliseconds are measured by
 * bench:waste, not here.
 */
const JOBS = new URL('./fixtures/jobs.mjs', import.meta.url);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(isolation: JobIsolation, options: ServerOptions = {}) {
  const events = new ServerEvents();
  cleanups.push(() => events.dispose());
  const beacons = new JobBeacons();
  cleanups.push(() => beacons.dispose());
  const started = await startServer({ threadPoolSize: 1, processPoolSize: 1, ...options }, (server) => {
    server.handle('job', worker(JOBS, { isolation }));
  });
  cleanups.push(started.close);
  return { ...started, events, beacons };
}

async function connected(port: number): Promise<ChildClient> {
  const child = new ChildClient(port);
  cleanups.push(() => child.dispose());
  await child.waitFor('connected');
  return child;
}

/** Where a job ran, as its 'started' progress or its echo says. */
interface Place {
  readonly threadId: number;
  readonly pid: number;
}

/** Starts `params` as call 1 on a new client, and resolves with where it runs once it reported. */
async function start(port: number, params: Record<string, unknown>): Promise<{ client: ChildClient; place: Place }> {
  const client = await connected(port);
  client.send({ cmd: 'call', id: 1, method: 'job', params });
  const place = (await client.waitFor('progress', (e) => e.id === 1)).data as Place;
  return { client, place };
}

/** Where the next job runs: an echo on a new connection. */
async function nextPlace(port: number): Promise<Place> {
  const client = await connected(port);
  client.send({ cmd: 'call', id: 1, method: 'job', params: { kind: 'echo', value: 'next' } });
  return (await client.waitFor('result', (e) => e.id === 1)).value as Place;
}

/** The pids of this process's job processes (the server runs in the test's process). */
function jobProcesses(): number[] {
  const pids = readdirSync('/proc/self/task').flatMap((tid) =>
    readFileSync(`/proc/self/task/${tid}/children`, 'latin1').trim().split(' ').filter(Boolean).map(Number),
  );
  return pids
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('process-job.js');
      } catch {
        return false; // exited meanwhile
      }
    })
    .sort();
}

describe('a thread job that checks ctx.aborted', () => {
  it('stops when its client is SIGKILLed and keeps its thread: the next job runs on the same thread', async () => {
    const { port, events, beacons } = await setup('thread', { jobAbortGraceMs: 5000 });
    const { client, place } = await start(port, { kind: 'coop', tag: 'coop-kill' });
    const beacon = await beacons.started('coop-kill');
    client.kill('SIGKILL');
    expect((await events.abort()).reason.code).toBe('HW_ERR_PEER_CLOSED');
    await beacons.stopped(beacon);
    // The pool gives a job the thread that ended a job last: the kept one, not the spare.
    expect((await nextPlace(port)).threadId).toBe(place.threadId);
  });

  it('a loop of pure arithmetic sees the flag too (its load is not hoisted out of the loop): thread kept', async () => {
    const { port, events } = await setup('thread', { jobAbortGraceMs: 5000 });
    const { client, place } = await start(port, { kind: 'coop-pure', tag: 'coop-pure' });
    client.send({ cmd: 'cancel', id: 1 });
    expect((await events.abort()).reason.code).toBe('HW_ERR_CANCELLED');
    expect((await nextPlace(port)).threadId).toBe(place.threadId);
  });

  it('awaiting ctx.signal: it aborts with an AbortReason carrying the call\'s code (a cancel), and the thread is kept', async () => {
    const { port, events, beacons } = await setup('thread', { jobAbortGraceMs: 5000 });
    const { client, place } = await start(port, { kind: 'coop-async', tag: 'coop-signal' });
    client.send({ cmd: 'cancel', id: 1 });
    expect((await client.waitFor('error', (e) => e.id === 1)).code).toBe('HW_ERR_ABORTED');
    expect((await events.abort()).reason.code).toBe('HW_ERR_CANCELLED');
    const signal = await beacons.started('coop-signal:signal');
    expect(signal).toMatchObject({ code: 'HW_ERR_CANCELLED', isAbortReason: true, aborted: true });
    expect((await nextPlace(port)).threadId).toBe(place.threadId);
  });

  it('with jobAbortGraceMs 0 its thread is terminated at once: the next job runs on another thread', async () => {
    const { port, beacons } = await setup('thread', { jobAbortGraceMs: 0 });
    const { client, place } = await start(port, { kind: 'coop', tag: 'coop-no-grace' });
    const beacon = await beacons.started('coop-no-grace');
    client.kill('SIGKILL');
    await beacons.stopped(beacon);
    expect((await nextPlace(port)).threadId).not.toBe(place.threadId);
  });
});

describe('a thread job that never checks', () => {
  it('runs on through its grace, then its thread is terminated; the spare takes the next job', async () => {
    const { port, events, beacons } = await setup('thread', { jobAbortGraceMs: 1500 });
    const { client, place } = await start(port, { kind: 'spin', tag: 'deaf' });
    const beacon = await beacons.started('deaf');
    client.kill('SIGKILL');
    await events.abort();
    const atVerdict = Atomics.load(beacon.counter, 0);
    // The next job waits for the deaf one's slot: its thread is terminated only once the grace ran out.
    const next = await nextPlace(port);
    expect(next.threadId).not.toBe(place.threadId);
    // It was not terminated at the verdict: its loop went on counting (a moment of CPU in 1.5 s is
    // all this needs, even on a loaded machine).
    expect(Atomics.load(beacon.counter, 0)).toBeGreaterThan(atVerdict);
    await beacons.stopped(beacon);
  });
});

describe('a process job that checks ctx.aborted', () => {
  it('stops when its client is SIGKILLed and keeps its process: no fork, the next job runs in a process that was there', async () => {
    const { port, events } = await setup('process', { jobAbortGraceMs: 5000 });
    const { client, place } = await start(port, { kind: 'coop', tag: 'coop-process' });
    // The job's process and the spare, both forked when the first job came.
    const before = jobProcesses();
    expect(before).toContain(place.pid);
    expect(before).toHaveLength(2);
    client.kill('SIGKILL');
    expect((await events.abort()).reason.code).toBe('HW_ERR_PEER_CLOSED');
    const next = await nextPlace(port);
    expect(before).toContain(next.pid);
    expect(jobProcesses()).toEqual(before);
  });

  it('one that never checks is killed after its grace; the spare process takes the next job', async () => {
    const { port } = await setup('process', { jobAbortGraceMs: 50 });
    const { client, place } = await start(port, { kind: 'spin', tag: 'deaf-process' });
    const [spare] = jobProcesses().filter((pid) => pid !== place.pid);
    client.send({ cmd: 'cancel', id: 1 });
    expect((await client.waitFor('error', (e) => e.id === 1)).code).toBe('HW_ERR_ABORTED');
    expect((await nextPlace(port)).pid).toBe(spare);
    expect(jobProcesses()).not.toContain(place.pid);
  });
});
