/**
 * The servers `pnpm bench:waste` compares, one per process (argv[2]: JSON
 * { system, heartbeatMs, silentMs }). Each runs the same job, a 'spin' loop
 * of `ms` (checking ctx.aborted for 'coop') or one pbkdf2Sync of `iterations`
 * ('native'), and prints { port } once it listens; a heartwire server also
 * prints { verdict } when it stops a call: process.hrtime.bigint() then
 * (CLOCK_MONOTONIC, one clock for every process of the machine).
 * bench/waste.ts measures this process's CPU.
 */
import { pbkdf2Sync } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { createServer, worker, type CallContext } from '@heartwire/server';
import { benchService, keepaliveOptions } from '../lib/grpc.js';
import { threadSelf } from './cpu-time.js';

export type WasteSystem =
  | 'heartwire-worker'
  | 'heartwire-worker-coop'
  | 'heartwire-process'
  | 'heartwire-process-coop'
  | 'heartwire-main'
  | 'naive-net'
  | 'grpc-js';

export interface WasteJob {
  /** 'coop': the spin loop of job.mjs, checking ctx.aborted on every turn (the -coop systems). */
  readonly kind: 'spin' | 'coop' | 'native';
  readonly ms?: number;
  readonly iterations?: number;
}

const { system, heartbeatMs, silentMs } = JSON.parse(process.argv[2] as string) as {
  system: WasteSystem;
  heartbeatMs: number;
  silentMs: number;
};

/** What a job says when it starts: the OS thread it runs on (here, the server's main thread). */
const started = JSON.stringify({ tid: threadSelf() });

/** Cooperative servers work in slices this long, then let the event loop run. */
const SLICE_MS = 5;

function spinUntil(until: number): void {
  while (performance.now() < until);
}

function runBlocking(job: WasteJob): void {
  if (job.kind === 'native') pbkdf2Sync('secret', 'salt', job.iterations as number, 64, 'sha512');
  else spinUntil(performance.now() + (job.ms as number));
}

const listening = (port: number): void => {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
};

if (system === 'naive-net') {
  // As a first answer would write it: one request per line, the job runs in the data handler,
  // and the socket is read again only between requests.
  const server = net.createServer((socket) => {
    let pending = '';
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      pending += chunk.toString();
      for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
        const job = JSON.parse(pending.slice(0, nl)) as WasteJob;
        pending = pending.slice(nl + 1);
        socket.write(`${started}\n`);
        runBlocking(job);
        socket.write('done\n');
      }
    });
  });
  server.listen(0, '127.0.0.1', () => listening((server.address() as net.AddressInfo).port));
} else if (system === 'grpc-js') {
  // A careful grpc-js handler: it yields every 5 ms and stops on 'cancelled'; keepalive at
  // heartwire's interval and bound catches a frozen client.
  const server = new grpc.Server(keepaliveOptions(heartbeatMs, silentMs));
  server.addService(benchService, {
    call: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.alloc(0)),
    job: async (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      let cancelled = false;
      call.on('cancelled', () => (cancelled = true));
      call.on('error', () => {});
      const job = JSON.parse(call.request.toString()) as WasteJob;
      call.write(Buffer.from(started));
      await nextTurn();
      if (job.kind === 'native') {
        runBlocking(job);
      } else {
        const until = performance.now() + (job.ms as number);
        while (!cancelled && performance.now() < until) {
          spinUntil(Math.min(until, performance.now() + SLICE_MS));
          await nextTurn();
        }
      }
      if (!cancelled) call.end();
    },
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    listening(port);
  });
} else {
  // When the server stopped the call: the bench times detection from the kill to here. The
  // subscriber runs before the job is told to stop, so it reads a clock and nothing else.
  diagnostics.subscribe('heartwire:server:call:abort', () => {
    process.stdout.write(`${JSON.stringify({ verdict: String(process.hrtime.bigint()) })}\n`);
  });
  const server = createServer({ heartbeatMs, silentMs, threadPoolSize: 1, processPoolSize: 1 });
  const module = new URL('./job.mjs', import.meta.url);
  if (system === 'heartwire-worker' || system === 'heartwire-worker-coop') {
    server.handle('job', worker(module));
  } else if (system === 'heartwire-process' || system === 'heartwire-process-coop') {
    server.handle('job', worker(module, { isolation: 'process' }));
  } else {
    server.handle('job', async (job: WasteJob, ctx: CallContext) => {
      ctx.progress(JSON.parse(started));
      await ctx.yield();
      if (job.kind === 'native') {
        runBlocking(job);
        return 'done';
      }
      const until = performance.now() + (job.ms as number);
      while (performance.now() < until) {
        spinUntil(Math.min(until, performance.now() + SLICE_MS));
        await ctx.yield();
      }
      return 'done';
    });
  }
  server.listen(0, '127.0.0.1', () => listening((server.address() as net.AddressInfo).port));
}
