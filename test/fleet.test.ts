import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildClient } from './harness/child.js';
import { LineProcess, type Line } from './harness/line-process.js';
import { RedisServer, redisUnavailable } from './harness/redis.js';

// Front servers, fleet workers and clients in processes of their own, on a real redis-server.
const FRONT = fileURLToPath(new URL('./fixtures/fleet-front.mjs', import.meta.url));
const FLEET = fileURLToPath(new URL('./fixtures/fleet-worker.mjs', import.meta.url));
const LEASE_MS = 1000;
const LEASE_CHECK_MS = 50;

const unavailable = await redisUnavailable();
if (unavailable !== undefined) console.warn(`[fleet] skipped: ${unavailable}`);
const title = unavailable === undefined ? 'a BullMQ fleet on a real redis-server' : `a BullMQ fleet (skipped: ${unavailable})`;

describe.skipIf(unavailable !== undefined)(title, () => {
  let redis: RedisServer;
  const processes: Array<LineProcess | ChildClient> = [];
  let queueNo = 0;

  beforeAll(async () => {
    redis = await RedisServer.start();
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.dispose()));
    await redis?.stop();
  });

  /** A queue of its own per test, so tests never see each other's jobs. */
  /** Checks `done` every 10 ms until it holds; gives up after 5 s. */
  async function until(done: () => Promise<boolean>, what: string): Promise<void> {
    for (let i = 0; i < 500; i++) {
      if (await done()) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`${what}: not within 5 s`);
  }

  let queueName = '';
  async function fleet(workers: number, front: Record<string, unknown> = {}): Promise<{ front: LineProcess; port: number; workers: LineProcess[] }> {
    const queue = `fleet-${process.pid}-${++queueNo}`;
    queueName = queue;
    const started = Array.from({ length: workers }, (_, i) => {
      const w = new LineProcess(FLEET, { redisPort: redis.port, queue, leaseCheckMs: LEASE_CHECK_MS }, `fleet worker ${i}`);
      processes.push(w);
      return w;
    });
    const f = new LineProcess(FRONT, { redisPort: redis.port, queue, leaseMs: LEASE_MS, ...front }, 'front server');
    processes.push(f);
    await Promise.all(started.map((w) => w.line('ready')));
    const { port } = (await f.line('listening')) as Line & { port: number };
    return { front: f, port, workers: started };
  }

  function client(port: number): ChildClient {
    const c = new ChildClient(port);
    processes.push(c);
    return c;
  }

  /** The fleet worker whose thread runs `tag`, once it started. */
  async function runner(workers: LineProcess[], tag: string): Promise<LineProcess> {
    return Promise.any(workers.map((w) => w.line('job-start', (l) => l.tag === tag).then(() => w)));
  }

  it('runs a call on the fleet: ACCEPTED at once, progress and the result come back', async () => {
    const { port } = await fleet(1);
    const c = client(port);
    await c.waitFor('connected');
    c.send({ cmd: 'call', id: 1, method: 'spin', params: { kind: 'spin', tag: 'ok', ms: 50 } });
    await c.waitFor('accepted', (e) => e.id === 1);
    const progress = await c.waitFor('progress', (e) => e.id === 1);
    expect((progress.data as { started: string }).started).toBe('ok');
    const result = await c.waitFor('result', (e) => e.id === 1);
    expect(result.value).toEqual({ done: 'ok' });
  });

  it('a client SIGKILLed: the job stops on the fleet worker running it, failed with the abort code', async () => {
    const { workers, port } = await fleet(2);
    const c = client(port);
    await c.waitFor('connected');
    c.send({ cmd: 'call', id: 1, method: 'spin', params: { kind: 'spin', tag: 'killed-client', ms: 20_000 } });
    const w = await runner(workers, 'killed-client');
    // ChildClient.kill returns this process's performance.now(); the lines carry epoch ms.
    const killedAt = performance.timeOrigin + c.kill('SIGKILL');
    const stop = await w.line('job-stop', (l) => l.tag === 'killed-client');
    expect((stop.stoppedAt as number) - killedAt).toBeLessThan(1000);
    const failed = await w.line('failed', (l) => l.tag === 'killed-client');
    expect(failed.reason).toMatch(/^HW_ERR_PEER_(CLOSED|RESET): /);
    expect(w.count('job-start', (l) => l.tag === 'killed-client')).toBe(1);
  });

  it('a client that cancels: the job stops, failed HW_ERR_CANCELLED; a waiting job is removed and never starts', async () => {
    const { workers, port } = await fleet(1);
    const c = client(port);
    await c.waitFor('connected');
    // Four fill the worker (concurrency 4); the fifth waits in the queue.
    for (let id = 1; id <= 5; id++) c.send({ cmd: 'call', id, method: 'spin', params: { kind: 'spin', tag: `c${id}`, ms: 20_000 } });
    const w = workers[0]!;
    await Promise.all([1, 2, 3, 4].map((id) => w.line('job-start', (l) => l.tag === `c${id}`)));
    c.send({ cmd: 'cancel', id: 5 });
    await c.waitFor('error', (e) => e.id === 5);
    // The call ends at once; its job leaves the queue a round trip later. Wait for that before freeing a slot.
    await until(async () => (await redis.command('LLEN', `bull:${queueName}:wait`)).startsWith(':0'), 'the waiting job removed');
    c.send({ cmd: 'cancel', id: 1 });
    const error = await c.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_ABORTED');
    await w.line('job-stop', (l) => l.tag === 'c1');
    expect((await w.line('failed', (l) => l.tag === 'c1')).reason).toMatch(/^HW_ERR_CANCELLED: /);
    // The freed slot goes to no one: the fifth job was removed while it waited.
    c.kill('SIGKILL');
    await Promise.all([2, 3, 4].map((id) => w.line('job-stop', (l) => l.tag === `c${id}`)));
    expect(w.count('job-start', (l) => l.tag === 'c5')).toBe(0);
    // Nothing is left in Redis once the verdicts lapse (after leaseMs): no job, no owner lease, no verdict.
    await until(async () => !/:hw:|:[0-9a-f-]{36}/.test(await redis.command('KEYS', `bull:${queueName}:*`)), 'nothing left in Redis');
  });

  it('a cancel request heard before its job reached the worker stops the job as it starts', async () => {
    // The front server's removal of a waiting job can lose the race with a worker that has just taken it:
    // the published request then reaches the worker before the job does. No verdict key is written here,
    // so only the request the worker kept can stop the job before its 20 s are up.
    const { workers } = await fleet(1);
    const w = workers[0]!;
    const jobId = `heard-${process.pid}`;
    const cancel = JSON.stringify({ jobId, code: 'HW_ERR_PEER_RESET', message: 'the client reset the connection' });
    const queue = new Queue(queueName, { connection: redis.connection });
    const commands = new Redis(redis.connection);
    try {
      expect(await commands.publish(`bull:${queueName}:hw:cancel`, cancel)).toBe(1);
      expect(await commands.set(`bull:${queueName}:hw:owner:heard-owner`, '1', 'PX', 60_000)).toBe('OK');
      const data = { params: { kind: 'spin', tag: 'heard', ms: 20_000 }, owner: 'heard-owner', leaseMs: 60_000, idempotent: false };
      await queue.add('spin', data, { jobId, attempts: 1 });
      const failed = await w.line('failed', (l) => l.tag === 'heard', 10_000);
      expect(failed.reason).toMatch(/^HW_ERR_PEER_RESET: /);
      expect((await w.line('stop-decided', (l) => l.jobId === jobId)).code).toBe('HW_ERR_PEER_RESET');
    } finally {
      commands.disconnect();
      await queue.close();
    }
  });

  it('the front server SIGKILLed: its jobs stop through the lease, within leaseMs + leaseCheckMs', async () => {
    const { front, workers, port } = await fleet(1);
    const c = client(port);
    await c.waitFor('connected');
    c.send({ cmd: 'call', id: 1, method: 'spin', params: { kind: 'spin', tag: 'orphan', ms: 20_000 } });
    const w = await runner(workers, 'orphan');
    const killedAt = front.kill('SIGKILL');
    const stop = await w.line('job-stop', (l) => l.tag === 'orphan');
    const took = (stop.stoppedAt as number) - killedAt;
    // The bound, plus 10 % and a margin for a loaded machine.
    expect(took).toBeLessThan((LEASE_MS + LEASE_CHECK_MS) * 1.1 + 250);
    expect((await w.line('stop-decided')).code).toBe('HW_ERR_LEASE_EXPIRED');
    expect((await c.waitFor('closed')).code).toBeDefined();
  });

  it('a fleet worker SIGKILLed mid-job: the call gets HW_ERR_WORKER_CRASHED; an idempotent one runs once more, once', async () => {
    const { workers, port } = await fleet(2);
    const c = client(port);
    await c.waitFor('connected');
    c.send({ cmd: 'call', id: 1, method: 'spin', params: { kind: 'spin', tag: 'once', ms: 20_000 } });
    c.send({ cmd: 'call', id: 2, method: 'spin-idem', params: { kind: 'spin', tag: 'twice', ms: 1500 } });
    const [w1, w2] = [await runner(workers, 'once'), await runner(workers, 'twice')];
    // Kill whichever workers run them (the same one, or both); the survivor, or a new one, picks the stalled jobs up.
    const victims = new Set([w1, w2]);
    for (const v of victims) v.kill('SIGKILL');
    const survivors = workers.filter((w) => !victims.has(w));
    if (survivors.length === 0) {
      const spare = new LineProcess(FLEET, { redisPort: redis.port, queue: queueName, leaseCheckMs: LEASE_CHECK_MS }, 'spare fleet worker');
      processes.push(spare);
      survivors.push(spare);
    }
    const error = await c.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_WORKER_CRASHED');
    const result = await c.waitFor('result', (e) => e.id === 2);
    expect(result.value).toEqual({ done: 'twice' });
    // The non-idempotent job never started again; the idempotent one started once more, on a survivor.
    expect(survivors.reduce((n, w) => n + w.count('job-start', (l) => l.tag === 'once'), 0)).toBe(0);
    expect(survivors.reduce((n, w) => n + w.count('job-start', (l) => l.tag === 'twice'), 0)).toBe(1);
  });

  it("a fleet worker that lost the job's BullMQ lock stops the job's thread; the call ends once, and the job never runs twice", async () => {
    const { workers, port } = await fleet(1);
    const w = workers[0]!;
    const c = client(port);
    await c.waitFor('connected');
    c.send({ cmd: 'call', id: 1, method: 'spin', params: { kind: 'spin', tag: 'unlocked', ms: 20_000 } });
    await w.line('job-start', (l) => l.tag === 'unlocked');
    // Drop the lock behind the worker's back, as an expired lock taken over by a stalled-job check would be.
    const jobId = /\$\d+\r\n(\S+)\r\n/.exec(await redis.command('LINDEX', `bull:${queueName}:active`, '0'))?.[1];
    expect(jobId).toBeDefined();
    expect(await redis.command('DEL', `bull:${queueName}:${jobId}:lock`)).toBe(':1\r\n');
    // BullMQ's next lock renewal fails (within lockMs / 2): the thread stops long before its 20 s are up.
    const stopped = await w.line('job-stop', (l) => l.tag === 'unlocked', 10_000);
    expect((await w.line('stop-decided', (l) => l.jobId === jobId)).code).toBe('HW_ERR_JOB_LOST');
    // The stalled-job check gives the job back to the queue; not idempotent, it fails rather than run again.
    const error = await c.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_WORKER_CRASHED');
    expect(w.count('job-start', (l) => l.tag === 'unlocked')).toBe(1);
    // It stopped before the call ended: the failure came from the stalled-job check, not from a job that ran on.
    expect(stopped.stoppedAt as number).toBeLessThan(performance.timeOrigin + error.receivedAt);
    // One outcome: the second run's refusal. The first run's own failure was refused by BullMQ (its lock was gone).
    c.send({ cmd: 'call', id: 2, method: 'spin', params: { kind: 'echo', value: 7 } });
    await c.waitFor('result', (e) => e.id === 2);
    expect(c.events.filter((e) => e.id === 1 && (e.event === 'error' || e.event === 'result'))).toHaveLength(1);
  });
});
