/**
 * The server side of `pnpm bench:scale`, measured from inside (run with
 * --expose-gc so RSS is read after a full collection):
 *   heartwire  jobs that run until their call is aborted; each abort is
 *              recorded with its time (shared clock), code and client address,
 *              from the server's call:abort channel. Argument 4 says what a
 *              job holds: `waits` (default) waits for work done elsewhere and
 *              reads nothing of its context; `signal` reads ctx.signal and
 *              listens for its abort, so each job also holds Node's AbortSignal;
 *   bare       a `net` server that sends a 1-byte ping to every socket once
 *              per `heartbeatMs`, spread over the interval in 10 ms slices,
 *              and reads the 1-byte pongs: the limit.
 */
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import inspector from 'node:inspector/promises';
import { join } from 'node:path';
import v8 from 'node:v8';
import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createServer } from '@heartwire/server';
import type { AbortReason } from '@heartwire/core';
import { servePeer } from '../lib/process.js';
import { sharedNow, until } from './clock.js';

const mode = process.argv[2];
const heartbeatMs = Number(process.argv[3] ?? 1000);
/** heartwire only: what each job holds (see heartwire()). */
const job = process.argv[4] ?? 'waits';

/**
 * RSS after a full collection, and where it went: the V8 heap's spaces, and
 * memory outside it. The last-resort flavour also gives back the young
 * generation grown during the connection storm (Node 24; Node 20 keeps it
 * whatever is asked), so what is left is what the connections hold.
 */
function rssAfterGc(): { rss: number; heapUsed: number; spaces: Record<string, number>; external: number } {
  const gc = (globalThis as { gc?: (options?: object) => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  gc();
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  const { rss, heapUsed, external } = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.physical_space_size]));
  // SCALE_HEAP_SNAPSHOT=dir: a heap snapshot each time, to see what a connection holds.
  const dir = process.env.SCALE_HEAP_SNAPSHOT;
  if (dir !== undefined) v8.writeHeapSnapshot(join(dir, `scale-${mode}-${process.pid}-${Date.now()}.heapsnapshot`));
  return { rss, heapUsed, spaces, external };
}

/**
 * CPU time (user + system) this process spent between shared times `from`
 * and `to`. With SCALE_CPU_PROF=dir, that window alone is also profiled
 * (dir/scale-MODE-PID.cpuprofile): the profile then shows the steady state,
 * not the connection storm before it.
 */
async function cpu({ from, to }: { from: number; to: number }): Promise<{ cpuUs: number; wallMs: number }> {
  const profiler = process.env.SCALE_CPU_PROF === undefined ? undefined : new inspector.Session();
  profiler?.connect();
  await until(from);
  await profiler?.post('Profiler.enable');
  await profiler?.post('Profiler.start');
  const startedAt = sharedNow();
  const start = process.cpuUsage();
  await until(to);
  const used = process.cpuUsage(start);
  const wallMs = sharedNow() - startedAt;
  if (profiler !== undefined) {
    const { profile } = await profiler.post('Profiler.stop');
    mkdirSync(process.env.SCALE_CPU_PROF as string, { recursive: true });
    writeFileSync(join(process.env.SCALE_CPU_PROF as string, `scale-${mode}-${process.pid}.cpuprofile`), JSON.stringify(profile));
    profiler.disconnect();
  }
  return { cpuUs: used.user + used.system, wallMs };
}

interface Abort {
  readonly at: number;
  readonly code: string;
  readonly address: string | undefined;
}

async function heartwire(): Promise<void> {
  // maxConnections' default (1000) guards a server of CPU-heavy jobs; this one must hold the bench's 10,000,
  // all from one address (the per-address default is 100).
  const server = createServer({ heartbeatMs, maxConnections: 20_000, maxConnectionsPerAddress: 20_000 });
  const aborts: Abort[] = [];
  let running = 0;
  // Every abort, as the server reports it (the moment the job's signal would fire), whatever the job reads.
  diagnostics.subscribe('heartwire:server:call:abort', (message) => {
    const { reason, remoteAddress } = message as { reason: AbortReason; remoteAddress: string | undefined };
    aborts.push({ at: sharedNow(), code: reason.code, address: remoteAddress });
    running--;
  });
  server.handle(
    'job',
    job === 'waits'
      ? // A job whose work happens elsewhere, waited for until the call ends: it makes no AbortSignal.
        () => {
          running++;
          return new Promise<void>(() => {});
        }
      : // A job that reads ctx.signal and listens for its abort: Node's AbortSignal is made for it.
        (_params: unknown, ctx) => {
          running++;
          return new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servePeer(
    { port: (server.address() as AddressInfo).port },
    {
      rss: rssAfterGc,
      cpu,
      now: sharedNow,
      stats: () => ({ connections: server.connectionCount, running }),
      /** Aborts of jobs whose client connected from `address`. */
      aborts: ({ address }) => aborts.filter((a) => a.address === address),
    },
  );
}

async function bare(): Promise<void> {
  const SLICE_MS = 10;
  const slices = heartbeatMs / SLICE_MS;
  const buckets: Set<net.Socket>[] = Array.from({ length: slices }, () => new Set());
  const ping = Buffer.from([1]);
  let sockets = 0;
  const server = net.createServer({ noDelay: true }, (socket) => {
    const bucket = buckets[sockets++ % slices]!;
    bucket.add(socket);
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => bucket.delete(socket));
  });
  // Slices follow the clock, not the timer: a late timer catches up, so every socket gets one ping per interval.
  const startedAt = performance.now();
  let done = 0;
  const tick = (): void => {
    const due = Math.floor((performance.now() - startedAt) / SLICE_MS);
    for (; done <= due; done++) for (const socket of buckets[done % slices]!) socket.write(ping);
    setTimeout(tick, startedAt + done * SLICE_MS - performance.now());
  };
  tick();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servePeer(
    { port: (server.address() as AddressInfo).port },
    { rss: rssAfterGc, cpu, stats: () => ({ connections: buckets.reduce((n, b) => n + b.size, 0), running: 0 }) },
  );
}

if (job !== 'waits' && job !== 'signal') throw new Error(`job must be waits or signal, got ${job}`);
if (mode === 'heartwire') await heartwire();
else if (mode === 'bare') await bare();
else throw new Error(`usage: server.ts heartwire|bare [heartbeatMs] [waits|signal], got ${mode}`);
