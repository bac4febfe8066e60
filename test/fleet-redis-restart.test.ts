import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ChildClient } from './harness/child.js';
import { LineProcess, type Line } from './harness/line-process.js';
import { RedisServer, redisUnavailable } from './harness/redis.js';

// Redis itself dies mid-job (SIGKILL) and comes back on the same port: every call must end once, with a
// result or a coded error, and no job may run twice.
const FRONT = fileURLToPath(new URL('./fixtures/fleet-front.mjs', import.meta.url));
const FLEET = fileURLToPath(new URL('./fixtures/fleet-worker.mjs', import.meta.url));

const unavailable = await redisUnavailable();
const title = unavailable === undefined ? 'Redis restarted mid-job' : `Redis restarted mid-job (skipped: ${unavailable})`;

describe.skipIf(unavailable !== undefined)(title, () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  async function setUp(persist: boolean): Promise<{ redis: RedisServer; worker: LineProcess; client: ChildClient }> {
    const redis = await RedisServer.start({ persist });
    cleanups.push(() => redis.stop());
    // BullMQ's job locks as runWorker sets them by default (5 s), so a restart of a second does not lose them.
    const options = { redisPort: redis.port, queue: 'restart', leaseMs: 1000, leaseCheckMs: 50, lockMs: 5000, stalledCheckMs: 2500 };
    const worker = new LineProcess(FLEET, options, 'fleet worker');
    const front = new LineProcess(FRONT, options, 'front server');
    cleanups.push(() => worker.dispose(), () => front.dispose());
    await worker.line('ready');
    const { port } = (await front.line('listening')) as Line & { port: number };
    const client = new ChildClient(port);
    cleanups.push(() => client.dispose());
    await client.waitFor('connected');
    return { redis, worker, client };
  }

  /** Every call's outcomes: exactly one each, and what it was. */
  function outcomes(client: ChildClient, ids: number[]): Array<{ id: number; event: string; code?: unknown }> {
    return ids.map((id) => {
      const ends = client.events.filter((e) => e.id === id && (e.event === 'result' || e.event === 'error'));
      expect(ends, `call ${id} ends exactly once`).toHaveLength(1);
      return { id, event: ends[0]!.event, code: ends[0]!.code };
    });
  }

  it('without persistence (Redis comes back empty): running calls fail HW_ERR_JOB_LOST, their jobs stop, nothing runs twice', async () => {
    const { redis, worker, client } = await setUp(false);
    const ids = [1, 2, 3];
    for (const id of ids) client.send({ cmd: 'call', id, method: 'spin', params: { kind: 'spin', tag: `lost${id}`, ms: 20_000 } });
    await Promise.all(ids.map((id) => worker.line('job-start', (l) => l.tag === `lost${id}`)));
    await redis.restart();
    await Promise.all(ids.map((id) => client.waitFor('error', (e) => e.id === id)));
    await Promise.all(ids.map((id) => worker.line('job-stop', (l) => l.tag === `lost${id}`)));
    expect(outcomes(client, ids).map((o) => o.code)).toEqual(['HW_ERR_JOB_LOST', 'HW_ERR_JOB_LOST', 'HW_ERR_JOB_LOST']);
    // The fleet works again: a new call gets its result.
    client.send({ cmd: 'call', id: 4, method: 'spin', params: { kind: 'spin', tag: 'after', ms: 10 } });
    expect((await client.waitFor('result', (e) => e.id === 4)).value).toEqual({ done: 'after' });
    for (const id of [...ids, 4]) expect(worker.count('job-start', (l) => l.tag === `lost${id}` || (id === 4 && l.tag === 'after'))).toBe(1);
  });

  it('with persistence (append-only file): running calls end once, with their results or a coded error, and nothing runs twice', async () => {
    const { redis, worker, client } = await setUp(true);
    const ids = [1, 2, 3];
    for (const id of ids) client.send({ cmd: 'call', id, method: 'spin', params: { kind: 'spin', tag: `kept${id}`, ms: 1500 } });
    await Promise.all(ids.map((id) => worker.line('job-start', (l) => l.tag === `kept${id}`)));
    await redis.restart();
    await Promise.all(ids.map((id) => Promise.any([client.waitFor('result', (e) => e.id === id), client.waitFor('error', (e) => e.id === id)])));
    for (const o of outcomes(client, ids)) {
      if (o.event === 'error') expect(String(o.code)).toMatch(/^HW_ERR_/);
    }
    for (const id of ids) expect(worker.count('job-start', (l) => l.tag === `kept${id}`)).toBe(1);
  });
});
