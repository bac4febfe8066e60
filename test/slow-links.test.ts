import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '@heartwire/client';
import type { ServerOptions } from '@heartwire/server';
import { FaultProxy, type Direction } from './harness/fault-proxy.js';
import { KiB, MiB, rate, serveSlowLink as serve } from './harness/slow-link.js';

/*
 * Healthy peers on slow links (PROTOCOL.md §5): a paced proxy delivers one
 * direction at 64 or 256 KiB/s while a long job is in flight and another call
 * moves a frame of up to maxFrameBytes through it, for longer than the silent
 * bound. Nobody may get a verdict: the PONG that waits behind an upload, and
 * the PING that waits behind a download, must not make a live peer look
 * silent. The same paths with a peer frozen are in slow-links-frozen.test.ts.
 * Bounds are loose; measured times print with a "[slow-links]" prefix.
 */

/** The server's defaults (1000 / 3000 / 5000 ms), and short bounds. */
const DEFAULT_BOUNDS: ServerOptions = {};
const SHORT_BOUNDS: ServerOptions = { heartbeatMs: 250, silentMs: 750, stallMs: 1500 };
/** The encoding of a CALL's [method, bytes] or a RESULT's bytes takes a few bytes of the frame: keep a margin. */
const ENCODING_ROOM = 64;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

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
