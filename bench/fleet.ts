/**
 * `pnpm bench:fleet`: jobs on a BullMQ fleet over a real redis-server on
 * loopback, with front servers, fleet workers and clients in processes of
 * their own.
 *
 * 1. Client SIGKILL → the fleet job's loop stops, over TRIALS trials each, for
 *    heartwire-queue (the job in a worker thread, terminated), plain BullMQ
 *    with a cooperative processor (5 ms slices, its AbortSignal checked
 *    between them) cancelled through Redis pub/sub and `worker.cancelJob()`
 *    as BullMQ's guide shows, and BullMQ's default (the job runs to its end;
 *    DEFAULT_JOB_MS long). Both fronts are heartwire servers, so hang-up
 *    detection is the same; only what crosses the queue differs.
 * 2. The lease bound: the front server SIGKILLed with a job running → the
 *    job's thread stops, over LEASE_TRIALS trials, against leaseMs + leaseCheckMs.
 * 3. Short jobs per second through heartwire-queue and plain BullMQ: LOAD_CLIENTS
 *    client processes × LOAD_CONCURRENCY calls in flight, LOAD_CALLS calls per
 *    client, ROUNDS rounds alternating the two systems.
 *
 * Times are epoch ms taken in each process (performance.timeOrigin + now()),
 * comparable on one machine. Env: TRIALS (50), DEFAULT_JOB_MS (1000),
 * LEASE_TRIALS (10), LEASE_MS (1000), LEASE_CHECK_MS (100), LOAD_CLIENTS (2),
 * LOAD_CONCURRENCY (32), LOAD_CALLS (1500), ROUNDS (3).
 */
import { fileURLToPath } from 'node:url';
import { ChildClient } from '../test/harness/child.js';
import { LineProcess, type Line } from '../test/harness/line-process.js';
import { RedisServer } from '../test/harness/redis.js';
import { intEnv } from './lib/env.js';
import { header, table, writeResults } from './lib/report.js';
import { median, round, summarize, type Summary } from './lib/stats.js';

const TRIALS = intEnv('TRIALS', 50);
const DEFAULT_JOB_MS = intEnv('DEFAULT_JOB_MS', 1000);
const LEASE_TRIALS = intEnv('LEASE_TRIALS', 10);
const LEASE_MS = intEnv('LEASE_MS', 1000);
const LEASE_CHECK_MS = intEnv('LEASE_CHECK_MS', 100);
const LOAD_CLIENTS = intEnv('LOAD_CLIENTS', 2);
const LOAD_CONCURRENCY = intEnv('LOAD_CONCURRENCY', 32);
const LOAD_CALLS = intEnv('LOAD_CALLS', 1500);
const ROUNDS = intEnv('ROUNDS', 3);
/** Fleet jobs at once per worker process, and heartwire's thread pool size. */
const CONCURRENCY = 4;

const path = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const HW_FRONT = path('../test/fixtures/fleet-front.mjs');
const HW_WORKER = path('../test/fixtures/fleet-worker.mjs');
const PLAIN_FRONT = path('./fleet/plain-front.mjs');
const PLAIN_WORKER = path('./fleet/plain-worker.mjs');
const LOAD_CLIENT = path('./fleet/load-client.mjs');

type System = 'heartwire-queue' | 'bullmq-cooperative' | 'bullmq-default';
let queueNo = 0;

async function startFleet(redis: RedisServer, system: System): Promise<{ front: LineProcess; worker: LineProcess; port: number; queue: string }> {
  const queue = `bench-${++queueNo}`;
  const base = { redisPort: redis.port, queue, concurrency: CONCURRENCY };
  const worker =
    system === 'heartwire-queue'
      ? new LineProcess(HW_WORKER, { ...base, leaseCheckMs: LEASE_CHECK_MS, lockMs: 5000, stalledCheckMs: 2500 }, 'fleet worker')
      : new LineProcess(PLAIN_WORKER, { ...base, cooperative: system === 'bullmq-cooperative' }, 'plain worker');
  const front =
    system === 'heartwire-queue'
      ? new LineProcess(HW_FRONT, { ...base, leaseMs: LEASE_MS }, 'front server')
      : new LineProcess(PLAIN_FRONT, base, 'plain front');
  await worker.line('ready');
  const { port } = (await front.line('listening')) as Line & { port: number };
  return { front, worker, port, queue };
}

/** Client SIGKILL → the job's loop stopped, in ms, per trial. */
async function killClientTrials(redis: RedisServer, system: System): Promise<number[]> {
  const fleet = await startFleet(redis, system);
  const samples: number[] = [];
  const jobMs = system === 'bullmq-default' ? DEFAULT_JOB_MS : 30_000;
  try {
    for (let trial = 0; trial < TRIALS; trial++) {
      const tag = `${system}-${trial}`;
      const client = new ChildClient(fleet.port);
      try {
        await client.waitFor('connected');
        client.send({ cmd: 'call', id: 1, method: 'spin', params: { kind: 'spin', tag, ms: jobMs } });
        await fleet.worker.line('job-start', (l) => l.tag === tag, 30_000);
        const killedAt = performance.timeOrigin + client.kill('SIGKILL');
        const stop = await fleet.worker.line('job-stop', (l) => l.tag === tag, jobMs + 30_000);
        samples.push((stop.stoppedAt as number) - killedAt);
      } finally {
        await client.dispose();
      }
    }
  } finally {
    await Promise.all([fleet.front.dispose(), fleet.worker.dispose()]);
  }
  return samples;
}

/** Front server SIGKILL → the job's thread stopped, in ms, per trial (a new front server each trial). */
async function leaseTrials(redis: RedisServer): Promise<number[]> {
  const samples: number[] = [];
  const queue = `bench-lease-${++queueNo}`;
  const worker = new LineProcess(HW_WORKER, { redisPort: redis.port, queue, concurrency: CONCURRENCY, leaseCheckMs: LEASE_CHECK_MS }, 'fleet worker');
  try {
    await worker.line('ready');
    for (let trial = 0; trial < LEASE_TRIALS; trial++) {
      const tag = `lease-${trial}`;
      const front = new LineProcess(HW_FRONT, { redisPort: redis.port, queue, leaseMs: LEASE_MS }, 'front server');
      const { port } = (await front.line('listening')) as Line & { port: number };
      const client = new ChildClient(port);
      try {
        await client.waitFor('connected');
        client.send({ cmd: 'call', id: 1, method: 'spin', params: { kind: 'spin', tag, ms: 30_000 } });
        await worker.line('job-start', (l) => l.tag === tag, 30_000);
        const killedAt = front.kill('SIGKILL');
        const stop = await worker.line('job-stop', (l) => l.tag === tag, 30_000);
        samples.push((stop.stoppedAt as number) - killedAt);
      } finally {
        await Promise.all([client.dispose(), front.dispose()]);
      }
    }
  } finally {
    await worker.dispose();
  }
  return samples;
}

/** Short calls per second through `system`'s front server and fleet worker. */
async function throughput(redis: RedisServer, system: 'heartwire-queue' | 'bullmq-cooperative'): Promise<number> {
  const fleet = await startFleet(redis, system);
  try {
    const clients = Array.from(
      { length: LOAD_CLIENTS },
      (_, i) => new LineProcess(LOAD_CLIENT, { port: fleet.port, calls: LOAD_CALLS, concurrency: LOAD_CONCURRENCY }, `load client ${i}`),
    );
    const startedAt = performance.now();
    const done = await Promise.all(clients.map((c) => c.line('done', () => true, 300_000)));
    const seconds = (performance.now() - startedAt) / 1000;
    const ok = done.reduce((n, l) => n + (l.ok as number), 0);
    if (ok !== LOAD_CLIENTS * LOAD_CALLS) throw new Error(`${system}: ${ok} of ${LOAD_CLIENTS * LOAD_CALLS} calls answered correctly`);
    await Promise.all(clients.map((c) => c.dispose()));
    return ok / seconds;
  } finally {
    await Promise.all([fleet.front.dispose(), fleet.worker.dispose()]);
  }
}

const redis = await RedisServer.start();
const redisVersion = (await redis.command('INFO', 'server')).match(/redis_version:(\S+)/)?.[1] ?? 'unknown';
console.log(`bench:fleet on ${header().machine}, node ${process.version}, redis-server ${redisVersion} on loopback`);
try {
  const kill: Record<System, Summary> = {} as Record<System, Summary>;
  for (const system of ['heartwire-queue', 'bullmq-cooperative', 'bullmq-default'] as const) {
    console.log(`client SIGKILL → job stopped: ${system}, ${TRIALS} trials`);
    kill[system] = summarize(await killClientTrials(redis, system));
  }
  console.log(`front server SIGKILL → job stopped (lease ${LEASE_MS} ms, checked every ${LEASE_CHECK_MS} ms), ${LEASE_TRIALS} trials`);
  const lease = summarize(await leaseTrials(redis));
  const rates: Record<'heartwire-queue' | 'bullmq', number[]> = { 'heartwire-queue': [], bullmq: [] };
  for (let r = 0; r < ROUNDS; r++) {
    console.log(`short jobs per second, round ${r + 1} of ${ROUNDS}`);
    rates['heartwire-queue'].push(await throughput(redis, 'heartwire-queue'));
    rates.bullmq.push(await throughput(redis, 'bullmq-cooperative'));
  }
  const hwRate = median(rates['heartwire-queue']);
  const plainRate = median(rates.bullmq);

  console.log('\nClient SIGKILL → the fleet job stopped (ms)\n');
  console.log(
    table(
      ['system', 'trials', 'p50', 'p99', 'max'],
      (Object.entries(kill) as Array<[System, Summary]>).map(([s, v]) => [s, v.trials, round(v.p50, 1), round(v.p99, 1), round(v.max, 1)]),
    ),
  );
  console.log(`\nFront server SIGKILL → its job stopped (ms; bound leaseMs + leaseCheckMs = ${LEASE_MS + LEASE_CHECK_MS})\n`);
  console.log(table(['trials', 'p50', 'p99', 'max'], [[lease.trials, round(lease.p50, 1), round(lease.p99, 1), round(lease.max, 1)]]));
  console.log('\nShort jobs per second (median of rounds; each round\'s figure in brackets)\n');
  console.log(
    table(
      ['system', 'jobs/s', 'rounds'],
      [
        ['heartwire-queue', Math.round(hwRate), rates['heartwire-queue'].map((x) => Math.round(x)).join(', ')],
        ['plain BullMQ', Math.round(plainRate), rates.bullmq.map((x) => Math.round(x)).join(', ')],
      ],
    ),
  );
  console.log(`\nheartwire-queue / plain BullMQ: ${round(hwRate / plainRate, 2)}`);
  const file = writeResults('fleet', {
    ...header(),
    redis: redisVersion,
    settings: { TRIALS, DEFAULT_JOB_MS, LEASE_TRIALS, LEASE_MS, LEASE_CHECK_MS, LOAD_CLIENTS, LOAD_CONCURRENCY, LOAD_CALLS, ROUNDS, CONCURRENCY },
    killClientToStopMs: kill,
    frontKillToStopMs: { ...lease, boundMs: LEASE_MS + LEASE_CHECK_MS },
    shortJobsPerSecond: { 'heartwire-queue': rates['heartwire-queue'], bullmq: rates.bullmq, ratio: hwRate / plainRate },
  });
  console.log(`\nwrote ${file}`);
} finally {
  await redis.stop();
}
