import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '@heartwire/core';
import type { CallContext } from '@heartwire/server';
import { RawPeer } from './harness/raw.js';
import { ServerEvents, startServer } from './harness/server.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A job that runs until its signal aborts. */
const forever = (_params: unknown, ctx: CallContext): Promise<never> =>
  new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));

describe('the server never stops reading', () => {
  it('a FIN behind far more than a socket high-water mark of call data still aborts every job at once', async () => {
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    const calls = 50;
    const { port, close } = await startServer({ maxCallsPerConnection: calls }, (server) => server.handle('work', forever));
    cleanups.push(close);
    const { peer } = await RawPeer.handshake(port);
    cleanups.push(() => {
      peer.socket.destroy();
    });
    // 50 calls of 60 KiB each: 3 MB, ~190 times Node 20's 16 KiB read high-water mark.
    const params = new Uint8Array(60 * 1024);
    for (let id = 1; id <= calls; id++) peer.call(id, 'work', params);
    await peer.frame((f) => f.type === FrameType.ACCEPTED && f.stream === calls);
    const finAt = performance.now();
    peer.socket.end();
    await events.abort((m) => m.id === calls);
    const aborted = events.aborts.filter((m) => m.method === 'work');
    expect(aborted).toHaveLength(calls);
    for (const abort of aborted) {
      expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
      // Loose: a FIN is read at once; this only fails if the server stopped reading.
      expect(abort.at - finAt).toBeLessThan(1500);
    }
  });

  it('every call gets its early header before any handler of the same chunk runs', async () => {
    const order: string[] = [];
    const { port, close } = await startServer({}, (server) =>
      server.handle('step', (n: number) => {
        order.push(`run ${n}`);
        return n;
      }),
    );
    cleanups.push(close);
    const { peer } = await RawPeer.handshake(port);
    cleanups.push(() => {
      peer.socket.destroy();
    });
    // Three CALLs in one write: one chunk for the server.
    peer.socket.cork();
    for (const id of [1, 2, 3]) peer.call(id, 'step', id);
    peer.socket.uncork();
    await peer.frame((f) => f.type === FrameType.RESULT && f.stream === 3);
    const sequence = peer.frames
      .filter((f) => f.stream !== 0)
      .map((f) => `${f.type === FrameType.ACCEPTED ? 'accepted' : 'result'} ${f.stream}`);
    expect(sequence).toEqual(['accepted 1', 'accepted 2', 'accepted 3', 'result 1', 'result 2', 'result 3']);
    expect(order).toEqual(['run 1', 'run 2', 'run 3']);
  });
});
