import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type HeartwireClient } from '@heartwire/client';
import type { CallContext } from '@heartwire/server';
import { ServerEvents, startServer } from './harness/server.js';

const HOST = '127.0.0.1';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A job that runs until released or aborted. */
function gate() {
  const releases: Array<(value: unknown) => void> = [];
  const handler = (params: unknown, ctx: CallContext) =>
    new Promise((resolve, reject) => {
      releases.push(() => resolve(params));
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
    });
  return { handler, releases };
}

async function client(port: number, options: Record<string, unknown> = {}): Promise<HeartwireClient> {
  const c = await connect({ host: HOST, port, ...options });
  cleanups.push(() => c.close());
  return c;
}

/** A TCP listener that accepts and then says nothing: a server that hangs in its handshake. */
async function mute(): Promise<number> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s.on('error', () => {})));
  server.listen(0, HOST);
  await once(server, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

describe('client', () => {
  it('connect fails with a clear code: nothing listening, no handshake in time, aborted', async () => {
    const closed = net.createServer();
    closed.listen(0, HOST);
    await once(closed, 'listening');
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(connect({ host: HOST, port: freePort })).rejects.toMatchObject({ code: 'HW_ERR_CONNECTION_LOST' });

    const port = await mute();
    await expect(connect({ host: HOST, port, connectTimeoutMs: 300 })).rejects.toMatchObject({
      code: 'HW_ERR_CONNECT_TIMEOUT',
    });
    const controller = new AbortController();
    const pending = connect({ host: HOST, port, signal: controller.signal });
    controller.abort(new Error('user gave up'));
    await expect(pending).rejects.toMatchObject({ code: 'HW_ERR_ABORTED', cause: { message: 'user gave up' } });
    await expect(connect({ host: HOST, port, signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'HW_ERR_ABORTED',
    });
  });

  it('calls beyond the server\'s maxCalls wait here; one aborted while waiting is never sent', async () => {
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    const { handler, releases } = gate();
    const started: unknown[] = [];
    const { port, close } = await startServer({ maxCallsPerConnection: 1 }, (server) =>
      server.handle('job', (params: unknown, ctx: CallContext) => {
        started.push(params);
        return handler(params, ctx);
      }),
    );
    cleanups.push(close);
    const c = await client(port);
    const accepted: string[] = [];
    const first = c.call('job', 'first', { onAccepted: () => accepted.push('first') });
    const controller = new AbortController();
    const second = c.call('job', 'second', { signal: controller.signal });
    const third = c.call('job', 'third');
    await expect.poll(() => accepted).toEqual(['first']);
    expect(c.activeCalls).toBe(1);
    controller.abort();
    await expect(second).rejects.toMatchObject({ code: 'HW_ERR_ABORTED' });
    releases[0]?.(undefined);
    await expect(first).resolves.toBe('first');
    await expect.poll(() => releases.length).toBe(2);
    releases[1]?.(undefined);
    await expect(third).resolves.toBe('third');
    expect(started).toEqual(['first', 'third']);
    expect(events.aborts).toEqual([]);
  });

  it('end() half-closes on purpose: the call in flight still delivers its result, new calls are refused', async () => {
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    const { handler, releases } = gate();
    const { port, close } = await startServer({ heartbeatMs: 100, silentMs: 300 }, (server) => server.handle('job', handler));
    cleanups.push(close);
    const c = await client(port);
    const progressSeen: unknown[] = [];
    const call = c.call('job', 'kept', { onProgress: (p) => progressSeen.push(p) });
    await expect.poll(() => releases.length).toBe(1);
    const ended = c.end();
    await expect(c.call('job', 'late')).rejects.toMatchObject({ code: 'HW_ERR_CLIENT_CLOSED' });
    // Several heartbeat intervals and silent bounds pass with no PONG possible: the job goes on.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(events.aborts).toEqual([]);
    releases[0]?.(undefined);
    await expect(call).resolves.toBe('kept');
    await ended;
    expect(events.aborts).toEqual([]);
  });

  it('end(): an error from the last call in flight still reaches the caller', async () => {
    let fail: ((err: Error) => void) | undefined;
    const { port, close } = await startServer({}, (server) =>
      server.handle('doomed', () => new Promise((_resolve, reject) => (fail = reject))),
    );
    cleanups.push(close);
    const c = await client(port);
    const call = c.call('doomed', null);
    await expect.poll(() => fail).toBeDefined();
    const ended = c.end();
    fail?.(new Error('render failed'));
    await expect(call).rejects.toMatchObject({ name: 'RemoteError', code: 'HW_ERR_HANDLER', message: 'render failed' });
    await ended;
  });

  it('end(), then the last call is aborted: the client closes, and the server stops the job at its next write', async () => {
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    const { handler, releases } = gate();
    const { port, close } = await startServer({ heartbeatMs: 100, silentMs: 300 }, (server) => server.handle('job', handler));
    cleanups.push(close);
    const c = await client(port);
    const controller = new AbortController();
    const call = c.call('job', null, { signal: controller.signal });
    await expect.poll(() => releases.length).toBe(1);
    const closed = once(c, 'close');
    const ended = c.end();
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'HW_ERR_ABORTED' });
    await ended;
    expect(await closed).toEqual([undefined]);
    expect((await events.abort()).reason.code).toBe('HW_ERR_WRITE_FAILED');
  });

  it('close() rejects calls in flight with HW_ERR_CLIENT_CLOSED, and the server stops their jobs', async () => {
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    const { handler, releases } = gate();
    const { port, close } = await startServer({}, (server) => server.handle('job', handler));
    cleanups.push(close);
    const c = await client(port);
    const call = c.call('job', 1);
    await expect.poll(() => releases.length).toBe(1);
    const rejected = expect(call).rejects.toMatchObject({ code: 'HW_ERR_CLIENT_CLOSED' });
    await c.close();
    await rejected;
    expect((await events.abort()).reason.code).toBe('HW_ERR_PEER_CLOSED');
    await expect(c.call('job', 2)).rejects.toMatchObject({ code: 'HW_ERR_CLIENT_CLOSED' });
  });

  it('server shutdown: the call in flight fails with HW_ERR_SERVER_SHUTDOWN, GOAWAY names it, new calls fail at once with the retryable HW_ERR_SERVER_CLOSING', async () => {
    const { handler, releases } = gate();
    const { server, port } = await startServer({}, (s) => s.handle('job', handler));
    const c = await client(port);
    const call = c.call('job', 1);
    await expect.poll(() => releases.length).toBe(1);
    const goaway = once(c, 'goaway');
    server.close();
    await expect(call).rejects.toMatchObject({ name: 'RemoteError', code: 'HW_ERR_SERVER_SHUTDOWN' });
    const [body] = (await goaway) as [{ code: string; lastStream: number }];
    expect(body).toMatchObject({ code: 'HW_ERR_SERVER_SHUTDOWN', lastStream: 1 });
    await expect(c.call('job', 2)).rejects.toMatchObject({ code: 'HW_ERR_SERVER_CLOSING' });
  });

  it('a call the server never saw before its GOAWAY fails with HW_ERR_SERVER_CLOSING (safe to retry)', async () => {
    const { handler, releases } = gate();
    const { server, port } = await startServer({}, (s) => s.handle('job', handler));
    const c = await client(port);
    // close() runs before the CALL is read: the server's GOAWAY says lastStream 0.
    const call = c.call('job', 1);
    server.close();
    await expect(call).rejects.toMatchObject({ name: 'ConnectionError', code: 'HW_ERR_SERVER_CLOSING' });
    expect(releases).toHaveLength(0);
  });

  it('an onProgress that throws cancels its call and rejects it with what it threw', async () => {
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    const { port, close } = await startServer({}, (server) =>
      server.handle('chatty', async (_p: unknown, ctx: CallContext) => {
        ctx.progress('tick');
        await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      }),
    );
    cleanups.push(close);
    const c = await client(port);
    const boom = new Error('consumer broke');
    await expect(
      c.call('chatty', null, {
        onProgress: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
    expect((await events.abort()).reason.code).toBe('HW_ERR_CANCELLED');
  });
});
