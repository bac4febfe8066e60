import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@heartwire/client';
import { createServer, worker } from '@heartwire/server';
import { enqueue, runWorker } from '@heartwire/queue';
import { JobBeacons } from './harness/job-beacons.js';
import { RedisServer, redisUnavailable } from './harness/redis.js';

// A front server and a fleet worker in this process, each given an ioredis instance of the caller's
// own rather than connection options: heartwire duplicates it for its own connections and never closes it.
const JOBS = new URL('./fixtures/jobs.mjs', import.meta.url);

const unavailable = await redisUnavailable();
const title = unavailable === undefined ? 'a BullMQ fleet on ioredis instances the caller owns' : `ioredis instances (skipped: ${unavailable})`;

describe.skipIf(unavailable !== undefined)(title, () => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await RedisServer.start();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('runs and cancels calls; closing the handler, the queue and the fleet worker leaves both instances open, for their owner to close', async () => {
    // BullMQ's workers need maxRetriesPerRequest: null on an instance they are given.
    const frontRedis = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null });
    const fleetRedis = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null });
    const queue = new Queue('owned', { connection: frontRedis });
    const handler = enqueue(queue, { leaseMs: 1000 });
    const fleet = runWorker({ queue: 'owned', connection: fleetRedis, jobs: { spin: worker(JOBS) }, leaseCheckMs: 50, concurrency: 2, pools: { threadPoolSize: 2 } });
    const server = createServer();
    server.handle('spin', handler);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const beacons = new JobBeacons();
    const client = await connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
    try {
      await fleet.ready;
      const progress: unknown[] = [];
      expect(await client.call('spin', { kind: 'progress', count: 3 }, { onProgress: (p) => progress.push(p) })).toEqual({ sent: 3 });
      expect(progress).toEqual([0, 1, 2]);

      const cancel = new AbortController();
      const call = client.call('spin', { kind: 'spin', tag: 'owned-cancel', ms: 20_000 }, { signal: cancel.signal });
      call.catch(() => {});
      const beacon = await beacons.started('owned-cancel');
      cancel.abort();
      await expect(call).rejects.toMatchObject({ code: 'HW_ERR_ABORTED' });
      await beacons.stopped(beacon);
    } finally {
      await client.close();
      await new Promise((resolve) => server.close(resolve));
      await handler.close();
      await queue.close();
      await fleet.close();
      beacons.dispose();
    }
    // Nothing of heartwire's or BullMQ's closed the caller's instances: they still answer, until their owner quits them.
    expect([frontRedis.status, fleetRedis.status]).toEqual(['ready', 'ready']);
    expect(await frontRedis.ping()).toBe('PONG');
    expect(await fleetRedis.ping()).toBe('PONG');
    await Promise.all([frontRedis.quit(), fleetRedis.quit()]);
  });
});
