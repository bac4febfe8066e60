/**
 * The server side of `pnpm bench:scale`, measured from inside (run with
 * --expose-gc so RSS is read after a full collection):
 *   heartwire  jobs that run until their signal aborts; each abort is
 *              recorded with its time (shared clock), code and client address;
 *   bare       a `net` server that sends a 1-byte ping to every socket once
 *              per `heartbeatMs`, spread over the interval in 10 ms slices,
 *              and reads the 1-byte pongs: the limit.
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createServer } from '@heartwire/server';
import type { AbortReason } from '@heartwire/core';
import { servePeer } from '../lib/process.js';
import { sharedNow, until } from './clock.js';

const mode = process.argv[2];
const heartbeatMs = Number(process.argv[3] ?? 1000);

function rssAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  gc();
  gc();
  return process.memoryUsage.rss();
}

/** CPU time (user + system) this process spent between shared times `from` and `to`. */
async function cpu({ from, to }: { from: number; to: number }): Promise<{ cpuUs: number; wallMs: number }> {
  await until(from);
  const startedAt = sharedNow();
  const start = process.cpuUsage();
  await until(to);
  const used = process.cpuUsage(start);
  return { cpuUs: used.user + used.system, wallMs: sharedNow() - startedAt };
}

interface Abort {
  readonly at: number;
  readonly code: string;
  readonly address: string | undefined;
}

async function heartwire(): Promise<void> {
  const server = createServer({ heartbeatMs });
  const aborts: Abort[] = [];
  let running = 0;
  server.handle('job', (_params: unknown, ctx) => {
    running++;
    return new Promise<void>((resolve) => {
      ctx.signal.addEventListener(
        'abort',
        () => {
          aborts.push({ at: sharedNow(), code: (ctx.signal.reason as AbortReason).code, address: ctx.remoteAddress });
          running--;
          resolve();
        },
        { once: true },
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servePeer(
    { port: (server.address() as AddressInfo).port },
    {
      rss: rssAfterGc,
      cpu,
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

if (mode === 'heartwire') await heartwire();
else if (mode === 'bare') await bare();
else throw new Error(`usage: server.ts heartwire|bare [heartbeatMs], got ${mode}`);
