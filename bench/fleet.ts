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
 *    client, ROUNDS rounds alternating the systems, for echo jobs and for
 *    jobs with WORK_MS ms of CPU work (a loop, in the job's thread for
 *    heartwire and in the processor for BullMQ); timed from the first
 *    call to the last answer (the clients' start-up is not counted), after
 *    WARMUP_CALLS calls of one client that are not counted. Each round
 *    also gives the CPU seconds per 1,000 jobs of each process (front server,
 *    fleet worker with all its threads, redis-server, the clients; every
 *    process shares the machine's cores, so it is the total that limits the
 *    rate), and the Redis commands per job (INFO commandstats, which counts
 *    the commands inside BullMQ's Lua scripts too). A third system, plain
 *    BullMQ whose processor hands each job to a bare worker thread and back
 *    (one message each way, bench/fleet/bare-thread.mjs), is what the hop alone
 *    costs: the best any design can do that keeps jobs off the BullMQ
 *    worker's event loop, as heartwire-queue must.
 * 4. The thread hop alone, without Redis (bench/fleet/hop.mjs): HOP_JOBS echo
 *    jobs, 4 at a time, through heartwire's thread pool and, as the floor any
 *    pool pays, through bare worker threads with one message each way; back to
 *    back, and with 1 ms between a lane's jobs (the threads fall asleep, as in a
 *    fleet worker waiting for Redis); CPU µs per job, main thread and others.
 *
 * Times are epoch ms taken in each process (performance.timeOrigin + now()),
 * comparable on one machine. Env: TRIALS (50), DEFAULT_JOB_MS (1000),
 * LEASE_TRIALS (10), LEASE_MS (1000), LEASE_CHECK_MS (100), LOAD_CLIENTS (2),
 * LOAD_CONCURRENCY (32), LOAD_CALLS (1500), WARMUP_CALLS (1000), ROUNDS (3), FLEET_CONCURRENCY (4:
 * jobs at once per fleet worker, both systems), THREADS (FLEET_CONCURRENCY:
 * heartwire's thread pool), WORK_MS (0,1: one throughput run per value),
 * HOP_JOBS (10000), PARTS (kill,lease,rate,hop; a narrowed run prints its
 * tables and writes no results file).
 */
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { ChildClient } from '../test/harness/child.js';
import { LineProcess, type Line } from '../test/harness/line-process.js';
import { RedisServer } from '../test/harness/redis.js';
import { processCpuSeconds } from './lib/cpu.js';
import { intEnv, listEnv } from './lib/env.js';
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
/** Calls of one client through each fleet before a throughput round is measured. */
const WARMUP_CALLS = intEnv('WARMUP_CALLS', 1000);
/**
 * Short jobs' CPU work in ms, one throughput run each: 0 is a bare echo, the hop's worst case. The work
 * is a fixed number of loop turns (test/fixtures/jobs.mjs's work()), calibrated here to take that long
 * on this machine, so a job preempted by the machine's other processes does no less of it.
 */
const WORK_MS = (process.env.WORK_MS || '0,1').split(',').map((ms) => {
  const value = Number(ms);
  if (!Number.isFinite(value) || value < 0 || value > 1000) throw new Error(`WORK_MS must list ms from 0 to 1000, got ${ms}`);
  return value;
});
const HOP_JOBS = intEnv('HOP_JOBS', 10_000);
const ALL_PARTS = ['kill', 'lease', 'rate', 'hop'] as const;
/** The measurements to run; a narrowed run prints its tables but writes no results file. */
const PARTS = listEnv('PARTS', ALL_PARTS);
/** Fleet jobs at once per worker process (BullMQ's concurrency), for both systems. */
const CONCURRENCY = intEnv('FLEET_CONCURRENCY', 4);
/** heartwire's thread pool in the fleet worker; above it, a fleet worker's jobs wait in its pool. */
const THREADS = intEnv('THREADS', CONCURRENCY);

const path = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const HW_FRONT = path('../test/fixtures/fleet-front.mjs');
const HW_WORKER = path('../test/fixtures/fleet-worker.mjs');
const PLAIN_FRONT = path('./fleet/plain-front.mjs');
const PLAIN_WORKER = path('./fleet/plain-worker.mjs');
const LOAD_CLIENT = path('./fleet/load-client.mjs');
const HOP = path('./fleet/hop.mjs');
/** A string, not a literal, so TypeScript does not look for the .mjs fixture's types. */
const JOBS_MODULE: string = new URL('../test/fixtures/jobs.mjs', import.meta.url).href;

type System = 'heartwire-queue' | 'bullmq-cooperative' | 'bullmq-default' | 'bullmq-hop';
/** The systems of the throughput part: plain BullMQ is 'bullmq-cooperative' there. */
type RateSystem = 'heartwire-queue' | 'bullmq' | 'bullmq-hop';
let queueNo = 0;

async function startFleet(redis: RedisServer, system: System): Promise<{ front: LineProcess; worker: LineProcess; port: number; queue: string }> {
  const queue = `bench-${++queueNo}`;
  const base = { redisPort: redis.port, queue, concurrency: CONCURRENCY, threads: THREADS };
  const worker =
    system === 'heartwire-queue'
      ? new LineProcess(HW_WORKER, { ...base, leaseCheckMs: LEASE_CHECK_MS, lockMs: 5000, stalledCheckMs: 2500 }, 'fleet worker')
      : new LineProcess(PLAIN_WORKER, { ...base, cooperative: system !== 'bullmq-default', hop: system === 'bullmq-hop' }, 'plain worker');
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

/** One throughput round: calls per second, CPU seconds per 1,000 calls in each process, and Redis commands per call. */
interface Round {
  readonly jobsPerSecond: number;
  readonly cpuSecondsPer1000: Readonly<Record<'front' | 'worker' | 'redis' | 'clients' | 'total', number>>;
  readonly redisCommandsPerJob: Readonly<Record<string, number>>;
}

/** Short calls (each `work` turns of the work loop) per second through `system`'s front server and fleet worker, and what each process spent on them. */
async function throughput(redis: RedisServer, admin: Redis, system: 'heartwire-queue' | 'bullmq-cooperative' | 'bullmq-hop', work: number): Promise<Round> {
  const fleet = await startFleet(redis, system);
  try {
    // Warm first, as a fleet that has run a while is: JIT, connections, and threads that a pool starts as jobs
    // come (heartwire's five took about a quarter of a second of CPU, a tenth of a short round's).
    const warmup = new LineProcess(LOAD_CLIENT, { port: fleet.port, calls: WARMUP_CALLS, concurrency: LOAD_CONCURRENCY, work }, 'warm-up client');
    await warmup.line('done', () => true, 300_000);
    await warmup.dispose();
    const pids = { front: fleet.front.pid, worker: fleet.worker.pid, redis: redis.pid as number };
    await admin.config('RESETSTAT');
    const cpuBefore = { front: processCpuSeconds(pids.front), worker: processCpuSeconds(pids.worker), redis: processCpuSeconds(pids.redis) };
    const clients = Array.from(
      { length: LOAD_CLIENTS },
      (_, i) => new LineProcess(LOAD_CLIENT, { port: fleet.port, calls: LOAD_CALLS, concurrency: LOAD_CONCURRENCY, work }, `load client ${i}`),
    );
    const done = await Promise.all(clients.map((c) => c.line('done', () => true, 300_000)));
    const cpu = {
      front: processCpuSeconds(pids.front) - cpuBefore.front,
      worker: processCpuSeconds(pids.worker) - cpuBefore.worker,
      redis: processCpuSeconds(pids.redis) - cpuBefore.redis,
      clients: done.reduce((s, l) => s + (l.cpuSeconds as number), 0),
    };
    const commands = parseCommandStats(await admin.info('commandstats'));
    // From the first call of any client to the last answer: the clients' own start-up is not counted.
    const seconds = (Math.max(...done.map((l) => l.endedAt as number)) - Math.min(...done.map((l) => l.startedAt as number))) / 1000;
    const ok = done.reduce((n, l) => n + (l.ok as number), 0);
    if (ok !== LOAD_CLIENTS * LOAD_CALLS) throw new Error(`${system}: ${ok} of ${LOAD_CLIENTS * LOAD_CALLS} calls answered correctly`);
    await Promise.all(clients.map((c) => c.dispose()));
    const per1000 = (x: number): number => round((x / ok) * 1000, 3);
    const total = cpu.front + cpu.worker + cpu.redis + cpu.clients;
    return {
      jobsPerSecond: ok / seconds,
      cpuSecondsPer1000: { front: per1000(cpu.front), worker: per1000(cpu.worker), redis: per1000(cpu.redis), clients: per1000(cpu.clients), total: per1000(total) },
      // INFO and CONFIG are this benchmark's own.
      redisCommandsPerJob: Object.fromEntries(
        Object.entries(commands)
          .filter(([name]) => name !== 'info' && name !== 'config|resetstat')
          .map(([name, calls]) => [name, round(calls / ok, 2)]),
      ),
    };
  } finally {
    await Promise.all([fleet.front.dispose(), fleet.worker.dispose()]);
  }
}

/** One run of the thread hop alone (bench/fleet/hop.mjs). */
interface HopRun {
  readonly jobsPerSecond: number;
  readonly mainMicros: number;
  readonly threadMicros: number;
}

const HOP_CASES = [
  { system: 'pool', gapMs: 0, name: "heartwire's thread pool, back to back" },
  { system: 'raw', gapMs: 0, name: 'bare worker threads, back to back' },
  { system: 'pool', gapMs: 1, name: "heartwire's thread pool, 1 ms between a lane's jobs" },
  { system: 'raw', gapMs: 1, name: "bare worker threads, 1 ms between a lane's jobs" },
] as const;

/** The thread hop alone, in a process of its own: echo jobs through `system`, 4 at a time. */
async function hopRun(system: 'pool' | 'raw', gapMs: number): Promise<HopRun> {
  // With a gap, a lane does at most 1,000 jobs a second: fewer jobs keep the run short.
  const jobs = gapMs > 0 ? Math.ceil(HOP_JOBS / 3) : HOP_JOBS;
  const run = new LineProcess(HOP, { system, jobs, inFlight: 4, gapMs }, `hop ${system}`);
  try {
    const done = await run.line('done', () => true, 120_000);
    return { jobsPerSecond: done.jobsPerSecond as number, mainMicros: done.mainMicros as number, threadMicros: done.threadMicros as number };
  } finally {
    await run.dispose();
  }
}

/** Turns of the jobs' work loop per ms of CPU here: the fastest of 20 runs (the one least preempted). */
async function workTurnsPerMs(): Promise<number> {
  const jobs = (await import(JOBS_MODULE)) as { work(turns: number): number };
  const turns = 2_000_000;
  let fastest = Infinity;
  for (let i = 0; i < 20; i++) {
    const start = performance.now();
    jobs.work(turns);
    fastest = Math.min(fastest, performance.now() - start);
  }
  return turns / fastest;
}

/** `INFO commandstats` → calls per command. */
function parseCommandStats(info: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1] as string] = Number(match[2]);
  return calls;
}

const redis = await RedisServer.start();
const admin = new Redis(redis.connection);
const redisVersion = (await admin.info('server')).match(/redis_version:(\S+)/)?.[1] ?? 'unknown';
console.log(`bench:fleet on ${header().machine}, node ${process.version}, redis-server ${redisVersion} on loopback`);
try {
  const kill: Partial<Record<System, Summary>> = {};
  if (PARTS.includes('kill')) {
    for (const system of ['heartwire-queue', 'bullmq-cooperative', 'bullmq-default'] as const) {
      console.log(`client SIGKILL → job stopped: ${system}, ${TRIALS} trials`);
      kill[system] = summarize(await killClientTrials(redis, system));
    }
  }
  let lease: Summary | undefined;
  if (PARTS.includes('lease')) {
    console.log(`front server SIGKILL → job stopped (lease ${LEASE_MS} ms, checked every ${LEASE_CHECK_MS} ms), ${LEASE_TRIALS} trials`);
    lease = summarize(await leaseTrials(redis));
  }
  const rates: Array<{ workMs: number; turns: number; rounds: Record<RateSystem, Round[]> }> = [];
  if (PARTS.includes('rate')) {
    const perMs = await workTurnsPerMs();
    for (const workMs of WORK_MS) {
      const turns = Math.round(workMs * perMs);
      const rounds: Record<RateSystem, Round[]> = { 'heartwire-queue': [], bullmq: [], 'bullmq-hop': [] };
      for (let r = 0; r < ROUNDS; r++) {
        console.log(`short jobs (${workMs} ms of work) per second, round ${r + 1} of ${ROUNDS}`);
        rounds['heartwire-queue'].push(await throughput(redis, admin, 'heartwire-queue', turns));
        rounds.bullmq.push(await throughput(redis, admin, 'bullmq-cooperative', turns));
        rounds['bullmq-hop'].push(await throughput(redis, admin, 'bullmq-hop', turns));
      }
      rates.push({ workMs, turns, rounds });
    }
  }

  if (PARTS.includes('kill')) {
    console.log('\nClient SIGKILL → the fleet job stopped (ms)\n');
    console.log(
      table(
        ['system', 'trials', 'p50', 'p99', 'max'],
        (Object.entries(kill) as Array<[System, Summary]>).map(([s, v]) => [s, v.trials, round(v.p50, 1), round(v.p99, 1), round(v.max, 1)]),
      ),
    );
  }
  if (lease !== undefined) {
    console.log(`\nFront server SIGKILL → its job stopped (ms; bound leaseMs + leaseCheckMs = ${LEASE_MS + LEASE_CHECK_MS})\n`);
    console.log(table(['trials', 'p50', 'p99', 'max'], [[lease.trials, round(lease.p50, 1), round(lease.p99, 1), round(lease.max, 1)]]));
  }
  const hops: HopRun[][] = HOP_CASES.map(() => []);
  if (PARTS.includes('hop')) {
    for (let r = 0; r < ROUNDS; r++) {
      console.log(`the thread hop alone, round ${r + 1} of ${ROUNDS}`);
      for (const [i, c] of HOP_CASES.entries()) hops[i]!.push(await hopRun(c.system, c.gapMs));
    }
  }

  const names: Record<RateSystem, string> = { 'heartwire-queue': 'heartwire-queue', bullmq: 'plain BullMQ', 'bullmq-hop': 'BullMQ + bare thread hop' };
  const systems = Object.keys(names) as RateSystem[];
  const shortJobs = rates.map(({ workMs, turns, rounds }) => {
    const rate = (system: RateSystem): number => median(rounds[system].map((r) => r.jobsPerSecond));
    const cpu = (system: RateSystem, part: keyof Round['cpuSecondsPer1000']): number =>
      median(rounds[system].map((r) => r.cpuSecondsPer1000[part]));
    const what = workMs === 0 ? 'short jobs (echo)' : `short jobs with ${workMs} ms of CPU work (${turns} loop turns)`;
    console.log(`\n${what} per second (median of rounds; each round's figure after it)\n`);
    console.log(
      table(
        ['system', 'jobs/s', 'rounds'],
        systems.map((s) => [names[s], Math.round(rate(s)), rounds[s].map((r) => Math.round(r.jobsPerSecond)).join(', ')]),
      ),
    );
    const ratio = rate('heartwire-queue') / rate('bullmq');
    const hopRatio = rate('bullmq-hop') / rate('bullmq');
    console.log(`\nheartwire-queue / plain BullMQ: ${round(ratio, 2)}; BullMQ + bare thread hop / plain BullMQ: ${round(hopRatio, 2)}`);
    const parts = ['front', 'worker', 'redis', 'clients', 'total'] as const;
    console.log(`\nCPU seconds per 1,000 ${what}, by process (median of rounds; the fleet worker with its threads)\n`);
    console.log(table(['system', ...parts], systems.map((s) => [names[s], ...parts.map((p) => cpu(s, p))])));
    const perJob = (system: RateSystem, command: string): number =>
      median(rounds[system].map((r) => r.redisCommandsPerJob[command] ?? 0));
    const seen = [...new Set(systems.flatMap((s) => rounds[s].flatMap((r) => Object.keys(r.redisCommandsPerJob))))].sort();
    // Commands of the run's edges (connecting, setting up, the stalled-job check) round to 0 per job: left out.
    const commands = seen.filter((c) => systems.some((s) => perJob(s, c) >= 0.01));
    const all = (system: RateSystem): number => round(seen.reduce((n, c) => n + perJob(system, c), 0), 2);
    console.log(`\nRedis commands per job, ${what} (median of rounds; those below 0.01 left out, but counted in "all")\n`);
    console.log(
      table(
        ['command', ...systems.map((s) => names[s])],
        [...commands.map((c) => [c, ...systems.map((s) => perJob(s, c))]), ['all', ...systems.map(all)]],
      ),
    );
    return {
      workMs,
      turns,
      'heartwire-queue': rounds['heartwire-queue'].map((r) => r.jobsPerSecond),
      bullmq: rounds.bullmq.map((r) => r.jobsPerSecond),
      'bullmq-hop': rounds['bullmq-hop'].map((r) => r.jobsPerSecond),
      ratio,
      hopRatio,
      cpuSecondsPer1000: Object.fromEntries(systems.map((s) => [s, rounds[s].map((r) => r.cpuSecondsPer1000)])),
      redisCommandsPerJob: Object.fromEntries(systems.map((s) => [s, rounds[s].map((r) => r.redisCommandsPerJob)])),
    };
  });
  const hop = PARTS.includes('hop')
    ? HOP_CASES.map((c, i) => {
        const runs = hops[i]!;
        const mid = (f: (run: HopRun) => number): number => median(runs.map(f));
        return { ...c, jobsPerSecond: mid((x) => x.jobsPerSecond), mainMicros: mid((x) => x.mainMicros), threadMicros: mid((x) => x.threadMicros), runs };
      })
    : undefined;
  if (hop !== undefined) {
    console.log('\nThe thread hop alone: echo jobs, 4 threads, 4 at a time; CPU µs per job (median of rounds)\n');
    console.log(
      table(
        ['system', 'jobs/s', 'main thread', 'other threads', 'total'],
        hop.map((h) => [h.name, Math.round(h.jobsPerSecond), round(h.mainMicros, 1), round(h.threadMicros, 1), round(h.mainMicros + h.threadMicros, 1)]),
      ),
    );
  }
  if (PARTS.length === ALL_PARTS.length) {
    const file = writeResults('fleet', {
      ...header(),
      redis: redisVersion,
      settings: { TRIALS, DEFAULT_JOB_MS, LEASE_TRIALS, LEASE_MS, LEASE_CHECK_MS, LOAD_CLIENTS, LOAD_CONCURRENCY, LOAD_CALLS, WARMUP_CALLS, ROUNDS, CONCURRENCY, THREADS, WORK_MS, HOP_JOBS },
      killClientToStopMs: kill,
      frontKillToStopMs: { ...lease, boundMs: LEASE_MS + LEASE_CHECK_MS },
      shortJobs,
      hop,
    });
    console.log(`\nwrote ${file}`);
  }
} finally {
  admin.disconnect();
  await redis.stop();
}
