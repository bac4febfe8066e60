import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '@heartwire/client';
import type { HeartwireServer, ServerOptions } from '@heartwire/server';
import { ChildClient } from './harness/child.js';
import { FaultProxy, type Direction } from './harness/fault-proxy.js';
import { IdleJobs } from './harness/idle-jobs.js';
import { ServerProcess } from './harness/server-process.js';
import { ServerEvents, startServer } from './harness/server.js';

/*
 * Healthy peers on slow links (PROTOCOL.md §5): a paced proxy delivers one
 * direction at 64 or 256 KiB/s while a long job is in flight and another call
 * moves a frame of up to maxFrameBytes through it, for longer than the silent
 * bound. Nobody may get a verdict: the PONG that waits behind an upload, and
 * the PING that waits behind a download, must not make a live peer look
 * silent. Then the same paths with the client frozen (SIGSTOP) mid-upload and
 * mid-download: still caught, within the bound PROTOCOL.md §5 gives. Bounds
 * are loose; measured times print with a "[slow-links]" prefix.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
/** Scheduling noise on a busy 2-core machine, never the protocol. */
const SLACK_MS = 1500;
/** The server's defaults (1000 / 3000 / 5000 ms), and short bounds. */
const DEFAULT_BOUNDS: ServerOptions = {};
const SHORT_BOUNDS: ServerOptions = { heartbeatMs: 250, silentMs: 750, stallMs: 1500 };
/** The encoding of a CALL's [method, bytes] or a RESULT's bytes takes a few bytes of the frame: keep a margin. */
const ENCODING_ROOM = 64;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server with an idle `job`, `upload` (returns how many bytes arrived) and `download` (returns that many bytes). */
async function serve(options: ServerOptions, register: (server: HeartwireServer) => void = () => {}) {
  const jobs = new IdleJobs();
  const { port, close } = await startServer(options, (server) => {
    server.handle('job', jobs.handler);
    server.handle('upload', (params: Uint8Array) => params.byteLength);
    server.handle('download', (params: { bytes: number }) => new Uint8Array(params.bytes));
    register(server);
  });
  return { jobs, port, close };
}

function rate(bytesPerSecond: number): string {
  return `${bytesPerSecond / KiB} KiB/s`;
}

interface Transfer {
  readonly bytesPerSecond: number;
  readonly direction: Direction;
  readonly bounds: ServerOptions;
  readonly boundsName: string;
  readonly maxFrameBytes: number;
  /** No long job beside the transfer: the transfer's own call is all that is in flight. */
  readonly alone?: boolean;
}

const transfers: Transfer[] = [];
for (const [bytesPerSecond, maxFrameBytes] of [
  [64 * KiB, 512 * KiB],
  [256 * KiB, 2 * MiB],
] as const) {
  for (const direction of ['toServer', 'toClient'] as const) {
    transfers.push({ bytesPerSecond, direction, bounds: DEFAULT_BOUNDS, boundsName: 'default bounds', maxFrameBytes });
    transfers.push({ bytesPerSecond, direction, bounds: SHORT_BOUNDS, boundsName: 'short bounds', maxFrameBytes });
  }
}
// The default maxFrameBytes (4 MiB) with the default bounds: 16 s each way.
for (const direction of ['toServer', 'toClient'] as const) {
  transfers.push({ bytesPerSecond: 256 * KiB, direction, bounds: DEFAULT_BOUNDS, boundsName: 'default bounds', maxFrameBytes: 4 * MiB });
}
// The transfer's call alone: while a CALL still arrives, the server already heartbeats for it.
for (const direction of ['toServer', 'toClient'] as const) {
  transfers.push({ bytesPerSecond: 64 * KiB, direction, bounds: SHORT_BOUNDS, boundsName: 'short bounds', maxFrameBytes: 512 * KiB, alone: true });
}

describe.concurrent('healthy peers on a slow link get no verdict', () => {
  for (const t of transfers) {
    const what = t.direction === 'toServer' ? 'upload' : 'download';
    const beside = t.alone === true ? 'with no other call' : 'beside a long job';
    it(`${what} of ${t.maxFrameBytes / KiB} KiB (maxFrameBytes) at ${rate(t.bytesPerSecond)}, ${t.boundsName}, ${beside}`, async () => {
      const { jobs, port, close } = await serve({ ...t.bounds, maxFrameBytes: t.maxFrameBytes });
      const proxy = await FaultProxy.start({ port, pace: { [t.direction]: { bytesPerSecond: t.bytesPerSecond } } });
      const client = await connect({ host: '127.0.0.1', port: proxy.port });
      let closedWith: unknown = 'open';
      client.on('close', (err) => (closedWith = err));
      try {
        const job = t.alone === true ? undefined : client.call('job', { ms: 10 * 60_000 }).catch((err: unknown) => err);
        if (job !== undefined) await jobs.started();
        const bytes = t.maxFrameBytes - ENCODING_ROOM;
        const startedAt = performance.now();
        const result =
          t.direction === 'toServer'
            ? await client.call<number>('upload', new Uint8Array(bytes))
            : ((await client.call<Uint8Array>('download', { bytes })).byteLength);
        const tookMs = performance.now() - startedAt;
        console.log(`[slow-links] ${what} of ${bytes} B at ${rate(t.bytesPerSecond)}, ${t.boundsName}, ${beside}: ${tookMs.toFixed(0)} ms`);
        expect(result).toBe(bytes);
        // The link really was that slow: the transfer outlasted the silent bound several times over.
        expect(tookMs).toBeGreaterThan(((bytes / t.bytesPerSecond) * 1000) * 0.9);
        expect(closedWith).toBe('open');
        if (job !== undefined) {
          expect(jobs.runs[0]?.signal.aborted).toBe(false);
          await client.close();
          expect(await job).toMatchObject({ code: 'HW_ERR_CLIENT_CLOSED' });
        }
      } finally {
        await client.close();
        await proxy.close();
        await close();
      }
    });
  }
});

describe('a CALL still arriving is a call in flight', () => {
  it('an upload that takes longer than idleTimeoutMs, on a connection idle before it, is not idle', async () => {
    const idleTimeoutMs = 1000;
    const { port, close } = await serve({ ...SHORT_BOUNDS, idleTimeoutMs });
    cleanups.push(close);
    const proxy = await FaultProxy.start({ port, pace: { toServer: { bytesPerSecond: 64 * KiB } } });
    cleanups.push(() => proxy.close());
    const client = await connect({ host: '127.0.0.1', port: proxy.port });
    cleanups.push(() => client.close());
    const goaways: unknown[] = [];
    client.on('goaway', (body) => goaways.push(body));
    // Idle for most of the timeout first, then 3 s of upload.
    await new Promise((resolve) => setTimeout(resolve, idleTimeoutMs * 0.8));
    const bytes = 192 * KiB;
    expect(await client.call('upload', new Uint8Array(bytes))).toBe(bytes);
    expect(goaways).toEqual([]);
    // Idle again, the connection is closed as it should be.
    await new Promise((resolve) => client.once('goaway', resolve));
    expect(goaways).toMatchObject([{ code: 'HW_ERR_IDLE_TIMEOUT' }]);
  });
});

describe('a frozen peer on a slow link is still caught', () => {
  it('client frozen (SIGSTOP) mid-upload at 256 KiB/s: HW_ERR_PEER_SILENT once the path has drained and silentMs passed', async () => {
    const heartbeatMs = 500;
    const silentMs = 1500;
    const bytesPerSecond = 256 * KiB;
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    const { jobs, port, close } = await serve({ heartbeatMs, silentMs });
    cleanups.push(close);
    const proxy = await FaultProxy.start({ port, pace: { toServer: { bytesPerSecond } } });
    cleanups.push(() => proxy.close());
    const child = new ChildClient(proxy.port);
    cleanups.push(() => child.dispose());
    await child.waitFor('connected');
    child.send({ cmd: 'call', id: 1, method: 'job', params: { ms: 600_000 } });
    await jobs.started();
    const link = await proxy.link();
    child.send({ cmd: 'call', id: 2, method: 'upload', bytes: 3 * MiB });
    await proxy.until(() => (link.toServer.bytes > 512 * KiB ? true : undefined), '512 KiB of the upload through the proxy');

    const bytesAtFreeze = link.toServer.bytes;
    const frozenAt = child.kill('SIGSTOP');
    const abort = await events.abort((m) => m.method === 'job');
    const drained = link.toServer.bytes - bytesAtFreeze;
    const sinceLastByte = abort.at - link.toServer.lastWriteAt;
    const sinceFreeze = abort.at - frozenAt;
    console.log(
      `[slow-links] frozen mid-upload: verdict ${sinceFreeze.toFixed(0)} ms after the freeze, ` +
        `${sinceLastByte.toFixed(0)} ms after the last byte; ${drained} B drained from the path's buffers meanwhile`,
    );
    expect(abort.reason.code).toBe('HW_ERR_PEER_SILENT');
    // Never before silentMs without a byte; within heartbeatMs + silentMs of the last one.
    expect(sinceLastByte).toBeGreaterThanOrEqual(silentMs - 1);
    expect(sinceLastByte).toBeLessThan(heartbeatMs + silentMs + SLACK_MS);
    // The documented bound: heartbeatMs + silentMs + what was in the path's buffers at the rate of the link.
    expect(sinceFreeze).toBeLessThan(heartbeatMs + silentMs + (drained / bytesPerSecond) * 1000 + SLACK_MS);
  });

  it('client frozen (SIGSTOP) mid-download at 256 KiB/s: caught within heartbeatMs + silentMs, as stalled (our output was backed up)', async () => {
    const heartbeatMs = 500;
    const silentMs = 1500;
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    // A result far larger than the kernel's buffers on loopback (a few MiB): Node still holds
    // most of it at the verdict, so the verdict is stalled, not silent (PROTOCOL.md §5).
    const bytes = 12 * MiB;
    const { jobs, port, close } = await serve({
      heartbeatMs,
      silentMs,
      stallMs: 60_000,
      maxFrameBytes: 16 * MiB,
      maxWriteBacklogBytes: 16 * MiB,
    });
    cleanups.push(close);
    const proxy = await FaultProxy.start({ port, pace: { toClient: { bytesPerSecond: 256 * KiB } } });
    cleanups.push(() => proxy.close());
    const child = new ChildClient(proxy.port, { maxFrameBytes: 16 * MiB });
    cleanups.push(() => child.dispose());
    await child.waitFor('connected');
    child.send({ cmd: 'call', id: 1, method: 'job', params: { ms: 600_000 } });
    await jobs.started();
    const link = await proxy.link();
    child.send({ cmd: 'call', id: 2, method: 'download', params: { bytes } });
    await proxy.until(() => (link.toClient.bytes > 512 * KiB ? true : undefined), '512 KiB of the download through the proxy');

    const frozenAt = child.kill('SIGSTOP');
    const abort = await events.abort((m) => m.method === 'job');
    const sinceFreeze = abort.at - frozenAt;
    console.log(`[slow-links] frozen mid-download: verdict ${sinceFreeze.toFixed(0)} ms after the freeze`);
    expect(abort.reason.code).toBe('HW_ERR_PEER_STALLED');
    expect(sinceFreeze).toBeLessThan(heartbeatMs + silentMs + SLACK_MS);
    expect(abort.at - link.toServer.lastWriteAt).toBeGreaterThanOrEqual(silentMs - 1);
  });
});

describe('a frozen server on a slow link is still caught by the client', () => {
  const heartbeatMs = 500;
  const silentMs = 1500;

  it('server frozen (SIGSTOP) mid-download at 256 KiB/s: HW_ERR_SERVER_SILENT heartbeatMs + silentMs after the last byte', async () => {
    // Far more than the kernels' buffers hold (a few MiB on loopback): the download outlives the freeze.
    const big = { maxFrameBytes: 16 * MiB, maxWriteBacklogBytes: 16 * MiB };
    const server = await ServerProcess.start({ server: { heartbeatMs, silentMs, ...big } });
    cleanups.push(() => server.kill());
    const proxy = await FaultProxy.start({ port: server.port, pace: { toClient: { bytesPerSecond: 256 * KiB } } });
    cleanups.push(() => proxy.close());
    const client = await connect({ host: '127.0.0.1', port: proxy.port, maxFrameBytes: 16 * MiB });
    cleanups.push(() => client.close());
    const download = client.call('download', { bytes: 12 * MiB }).catch((err: { code?: string }) => err);
    const link = await proxy.link();
    await proxy.until(() => (link.toClient.bytes > 512 * KiB ? true : undefined), '512 KiB of the download through the proxy');

    const bytesAtFreeze = link.toClient.bytes;
    const frozenAt = performance.now();
    server.process.kill('SIGSTOP');
    const error = (await download) as { code?: string };
    const verdictAt = performance.now();
    const sinceLastByte = verdictAt - link.toClient.lastWriteAt;
    console.log(
      `[slow-links] server frozen mid-download: verdict ${(verdictAt - frozenAt).toFixed(0)} ms after the freeze, ` +
        `${sinceLastByte.toFixed(0)} ms after the last byte; ${link.toClient.bytes - bytesAtFreeze} B drained meanwhile`,
    );
    expect(error.code).toBe('HW_ERR_SERVER_SILENT');
    expect(sinceLastByte).toBeGreaterThanOrEqual(heartbeatMs + silentMs - 1);
    expect(sinceLastByte).toBeLessThan(heartbeatMs + silentMs + SLACK_MS);
  });

  it('server frozen (SIGSTOP) mid-upload at 256 KiB/s: caught within heartbeatMs + silentMs, as stalled (our output was backed up)', async () => {
    // An upload far larger than the kernels' buffers on loopback: the client still holds most of it
    // at the verdict, so the verdict is stalled, not silent (PROTOCOL.md §5).
    const server = await ServerProcess.start({ server: { heartbeatMs, silentMs, maxFrameBytes: 16 * MiB } });
    cleanups.push(() => server.kill());
    const proxy = await FaultProxy.start({ port: server.port, pace: { toServer: { bytesPerSecond: 256 * KiB } } });
    cleanups.push(() => proxy.close());
    const client = await connect({ host: '127.0.0.1', port: proxy.port, stallMs: 60_000 });
    cleanups.push(() => client.close());
    const upload = client.call('upload', new Uint8Array(12 * MiB)).catch((err: { code?: string }) => err);
    const link = await proxy.link();
    await proxy.until(() => (link.toServer.bytes > 512 * KiB ? true : undefined), '512 KiB of the upload through the proxy');

    const frozenAt = performance.now();
    server.process.kill('SIGSTOP');
    const error = (await upload) as { code?: string };
    const sinceFreeze = performance.now() - frozenAt;
    console.log(`[slow-links] server frozen mid-upload: verdict ${sinceFreeze.toFixed(0)} ms after the freeze`);
    expect(error.code).toBe('HW_ERR_SERVER_STALLED');
    expect(sinceFreeze).toBeLessThan(heartbeatMs + silentMs + SLACK_MS);
    expect(performance.now() - link.toClient.lastWriteAt).toBeGreaterThanOrEqual(heartbeatMs + silentMs - 1);
  });
});
