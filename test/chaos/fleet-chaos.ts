/**
 * The fleet chaos run: calls from client processes through front servers to
 * fleet workers on a real redis-server, while clients, fleet workers and
 * front servers are SIGKILLed at random moments and Redis is restarted once
 * (without its data). Afterwards it checks that:
 *  - every call issued by a client that lived ended exactly once, with a
 *    correct result or a coded error;
 *  - no job ran twice, except an idempotent one, at most twice;
 *  - every job that started on a fleet worker that lived has stopped;
 *  - nothing was left in Redis: no job, no lease, every job list empty.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { LineProcess, type Line } from '../harness/line-process.js';
import { RedisServer } from '../harness/redis.js';

const FRONT = fileURLToPath(new URL('../fixtures/fleet-front.mjs', import.meta.url));
const FLEET = fileURLToPath(new URL('../fixtures/fleet-worker.mjs', import.meta.url));
const CLIENT = fileURLToPath(new URL('./fleet-client.mjs', import.meta.url));
const QUEUE = 'chaos';
const LEASE_MS = 1000;

export interface FleetChaosOptions {
  readonly calls: number;
  /** Client processes at once. */
  readonly clients: number;
  readonly callsPerClient: number;
  /** Calls in flight per client. */
  readonly concurrency: number;
  readonly frontServers: number;
  readonly fleetWorkers: number;
  /** A random kill (client, fleet worker or front server) every this many ms. */
  readonly killEveryMs: number;
  readonly seed: number;
  readonly log?: (line: string) => void;
}

export interface FleetChaosReport {
  readonly calls: number;
  readonly seconds: number;
  readonly outcomes: Record<string, number>;
  readonly clientsKilled: number;
  readonly frontServersKilled: number;
  readonly fleetWorkersKilled: number;
  readonly redisRestarts: number;
  readonly jobsStarted: number;
  readonly idempotentRerun: number;
  readonly violations: string[];
}

interface ClientRun {
  readonly child: ChildProcess;
  readonly ids: number[];
  readonly issued: Set<number>;
  readonly ends: Map<number, string[]>;
  killed: boolean;
  done: boolean;
  readonly exited: Promise<unknown>;
}

export async function runFleetChaos(o: FleetChaosOptions): Promise<FleetChaosReport> {
  const log = o.log ?? (() => {});
  const startedAt = performance.now();
  let state = o.seed >>> 0;
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

  const redis = await RedisServer.start();
  const workerOptions = { redisPort: redis.port, queue: QUEUE, concurrency: 4, leaseCheckMs: 50, lockMs: 1000, stalledCheckMs: 500 };
  const allWorkers: LineProcess[] = [];
  const killedWorkers = new Set<LineProcess>();
  let workers: LineProcess[] = [];
  const fronts: Array<{ proc: LineProcess; port: number }> = [];
  const clients: ClientRun[] = [];
  let live: ClientRun[] = [];
  const counts = { clientsKilled: 0, frontServersKilled: 0, fleetWorkersKilled: 0, redisRestarts: 0 };
  const violations: string[] = [];

  const spawnWorker = (): LineProcess => {
    const w = new LineProcess(FLEET, workerOptions, 'fleet worker');
    allWorkers.push(w);
    workers.push(w);
    return w;
  };
  const spawnFront = async (port = 0): Promise<{ proc: LineProcess; port: number }> => {
    const proc = new LineProcess(FRONT, { redisPort: redis.port, queue: QUEUE, leaseMs: LEASE_MS, port }, 'front server');
    const line = (await proc.line('listening')) as Line & { port: number };
    return { proc, port: line.port };
  };
  const spawnClient = (ids: number[]): ClientRun => {
    const child = spawn(process.execPath, [CLIENT, JSON.stringify({
      port: pick(fronts).port,
      concurrency: o.concurrency,
      cancelRate: 0.05,
      idempotentRate: 0.3,
      seed: Math.floor(random() * 2 ** 31),
    })], { stdio: ['pipe', 'pipe', 'inherit'] });
    const run: ClientRun = { child, ids, issued: new Set(), ends: new Map(), killed: false, done: false, exited: once(child, 'exit') };
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const [kind, id, code] = line.split(' ');
      if (kind === 's') run.issued.add(Number(id));
      else if (kind === 'r') run.ends.set(Number(id), [...(run.ends.get(Number(id)) ?? []), code as string]);
      else if (kind === 'done') run.done = true;
    });
    child.stdin!.end(`${ids.join(' ')}\n`);
    clients.push(run);
    live.push(run);
    return run;
  };

  try {
    for (let i = 0; i < o.fleetWorkers; i++) spawnWorker();
    await Promise.all(workers.map((w) => w.line('ready')));
    for (let i = 0; i < o.frontServers; i++) fronts.push(await spawnFront());

    // Ids not yet handed out, and ids of killed clients that never went out: given to the next client.
    const unassigned: number[] = Array.from({ length: o.calls }, (_, i) => i + 1);
    const nextIds = (): number[] => unassigned.splice(0, o.callsPerClient);
    for (let i = 0; i < o.clients && unassigned.length > 0; i++) spawnClient(nextIds());

    const deadline = performance.now() + Math.max(120_000, o.calls * 30);
    let nextKillAt = performance.now() + o.killEveryMs;
    let restarted = false;
    let lastLog = 0;
    for (;;) {
      await sleep(20);
      if (performance.now() > deadline) {
        violations.push(`the run did not finish in ${Math.round((deadline - startedAt) / 1000)} s`);
        for (const run of live) run.child.kill('SIGKILL');
        break;
      }
      // Finished clients make room for new ones.
      for (const run of live.filter((r) => r.done)) {
        live = live.filter((r) => r !== run);
        if (unassigned.length > 0) spawnClient(nextIds());
      }
      const endedSoFar = clients.reduce((n, r) => n + r.ends.size, 0);
      if (performance.now() - lastLog > 5000) {
        lastLog = performance.now();
        log(`  ${endedSoFar} calls ended, ${live.length} clients, ${Math.round((performance.now() - startedAt) / 1000)} s`);
      }
      if (live.length === 0 && unassigned.length === 0) break;
      if (!restarted && endedSoFar >= o.calls / 2) {
        restarted = true;
        counts.redisRestarts++;
        log('  restarting redis-server (SIGKILL, back without its data)');
        await redis.restart();
        continue;
      }
      if (performance.now() < nextKillAt) continue;
      nextKillAt = performance.now() + o.killEveryMs * (0.5 + random());
      const what = random();
      if (what < 0.4 && live.length > 0) {
        const run = pick(live);
        run.killed = true;
        run.child.kill('SIGKILL');
        live = live.filter((r) => r !== run);
        counts.clientsKilled++;
        // What it never issued goes to another client.
        unassigned.push(...run.ids.filter((id) => !run.issued.has(id)));
        if (unassigned.length > 0) spawnClient(nextIds());
      } else if (what < 0.7) {
        const w = pick(workers);
        w.kill('SIGKILL');
        killedWorkers.add(w);
        workers = workers.filter((x) => x !== w);
        counts.fleetWorkersKilled++;
        spawnWorker();
      } else {
        const i = Math.floor(random() * fronts.length);
        const front = fronts[i]!;
        front.proc.kill('SIGKILL');
        await front.proc.exited;
        counts.frontServersKilled++;
        // Back on the same port: its clients reconnect to it.
        fronts[i] = await spawnFront(front.port);
      }
    }

    // Leases of killed front servers lapse, stalled jobs of killed fleet workers are picked up: let it settle.
    await Promise.all(clients.filter((r) => !r.killed).map((r) => r.exited));
    await sleep(LEASE_MS + 1500);

    // Every call of a client that lived ended exactly once, with a correct result or a coded error.
    const outcomes: Record<string, number> = {};
    for (const run of clients) {
      for (const [, codes] of run.ends) for (const code of codes) outcomes[code] = (outcomes[code] ?? 0) + 1;
      if (run.killed) continue;
      for (const id of run.ids) {
        const codes = run.ends.get(id) ?? [];
        if (codes.length !== 1) violations.push(`call ${id} ended ${codes.length} times`);
        else if (codes[0] !== 'ok' && !/^HW_ERR_/.test(codes[0]!)) violations.push(`call ${id} ended with ${codes[0]}`);
      }
    }

    // No job ran twice, except an idempotent one, at most twice; every job on a fleet worker that lived stopped.
    const starts = new Map<string, number>();
    let jobsStarted = 0;
    for (const w of allWorkers) {
      const stopped = new Set(w.lines.filter((l) => l.event === 'job-stop').map((l) => l.tag as string));
      for (const line of w.lines) {
        if (line.event !== 'job-start') continue;
        jobsStarted++;
        const tag = line.tag as string;
        starts.set(tag, (starts.get(tag) ?? 0) + 1);
        if (!killedWorkers.has(w) && !stopped.has(tag)) violations.push(`job ${tag} still runs on a fleet worker`);
      }
    }
    // Which calls were idempotent is the fleet workers' business; they log it when a job fails or completes.
    let idempotentRerun = 0;
    for (const [tag, n] of starts) {
      if (n === 1) continue;
      if (n > 2) violations.push(`job ${tag} ran ${n} times`);
      else idempotentRerun++;
    }

    // Nothing left in Redis.
    const check = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 3 });
    try {
      const leftovers = await redisLeftovers(check);
      violations.push(...leftovers);
    } finally {
      check.disconnect();
    }

    return {
      calls: o.calls,
      seconds: Math.round((performance.now() - startedAt) / 100) / 10,
      outcomes,
      ...counts,
      jobsStarted,
      idempotentRerun,
      violations,
    };
  } finally {
    for (const run of clients) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    await Promise.all([...allWorkers, ...fronts.map((f) => f.proc)].map((p) => p.dispose()));
    await redis.stop();
  }
}

/** What the queue left in Redis, polled for a few seconds while the last jobs are removed. */
async function redisLeftovers(redis: Redis): Promise<string[]> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const found: string[] = [];
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `bull:${QUEUE}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    for (const key of keys) {
      const rest = key.slice(`bull:${QUEUE}:`.length);
      if (rest.startsWith('hw:')) found.push(`lease or verdict left: ${key}`);
      else if (/^[0-9a-f-]{36}(:|$)/.test(rest)) found.push(`job key left: ${key}`);
    }
    for (const list of ['wait', 'active', 'paused']) {
      const n = await redis.llen(`bull:${QUEUE}:${list}`);
      if (n > 0) found.push(`${n} jobs left in ${list}`);
    }
    for (const set of ['failed', 'completed', 'delayed', 'prioritized', 'waiting-children']) {
      const n = await redis.zcard(`bull:${QUEUE}:${set}`);
      if (n > 0) found.push(`${n} jobs left in ${set}`);
    }
    if (found.length === 0 || performance.now() > deadline) return found.slice(0, 20);
    await sleep(250);
  }
}
