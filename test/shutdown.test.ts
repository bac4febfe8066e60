/**
 * Graceful shutdown: `server.close({ drainMs })` sends GOAWAY, refuses new
 * calls with the retryable HW_ERR_SERVER_CLOSING, lets calls in flight
 * finish and deliver their results, and aborts the rest with
 * HW_ERR_SERVER_SHUTDOWN once drainMs is up. Real sockets, and a real server
 * process stopped with SIGTERM.
 */
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, ConnectionError, RemoteError, type GoAwayBody, type HeartwireClient } from '@heartwire/client';
import { decodeCallError, decodeGoAway, FrameType, PayloadCodec } from '@heartwire/core';
import { InvalidOptionError, type CallContext, type HeartwireServer } from '@heartwire/server';
import { RawPeer } from './harness/raw.js';
import { ServerEvents, startServer } from './harness/server.js';
import { ServerProcess } from './harness/server-process.js';
import { Waiter } from './harness/waiter.js';

const HOST = '127.0.0.1';
const WAIT_MS = 5000;
const codec = new PayloadCodec();
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Jobs that run until released or aborted; `started` counts handler starts. */
function gatedServer(options = {}) {
  const releases = new Map<unknown, (value: unknown) => void>();
  const reasons: unknown[] = [];
  const waiter = new Waiter();
  let started = 0;
  const setup = (server: HeartwireServer): void => {
    server.handle('job', (params: unknown, ctx: CallContext) => {
      started++;
      waiter.wake();
      return new Promise((resolve, reject) => {
        releases.set(params, () => resolve({ done: params }));
        ctx.signal.addEventListener(
          'abort',
          () => {
            reasons.push(ctx.signal.reason);
            waiter.wake();
            reject(ctx.signal.reason);
          },
          { once: true },
        );
      });
    });
    server.handle('echo', (params: unknown) => params);
  };
  return {
    options,
    setup,
    releases,
    reasons,
    started: () => started,
    untilStarted: (n: number) => waiter.until(() => (started >= n ? true : undefined), `${n} jobs started`, WAIT_MS),
  };
}

async function client(port: number): Promise<HeartwireClient> {
  const c = await connect({ host: HOST, port });
  cleanups.push(() => c.close());
  return c;
}

const closed = (server: HeartwireServer): Promise<unknown> => once(server, 'close');

describe('graceful shutdown: server.close({ drainMs })', () => {
  it('a call in flight finishes and delivers its result; GOAWAY first; a new call is refused at once with HW_ERR_SERVER_CLOSING', async () => {
    const jobs = gatedServer();
    const { server, port } = await startServer({}, jobs.setup);
    const c = await client(port);
    const inFlight = c.call('job', 'a');
    await jobs.untilStarted(1);
    const goaway = once(c, 'goaway') as Promise<[GoAwayBody]>;
    const serverClosed = closed(server);
    let callbackRan = false;
    server.close({ drainMs: 10_000 }, () => {
      callbackRan = true;
    });
    const [body] = await goaway;
    expect(body).toMatchObject({ code: 'HW_ERR_SERVER_SHUTDOWN', lastStream: 1 });
    const refused = await c.call('echo', 'late').then(
      () => expect.unreachable('call resolved'),
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(ConnectionError);
    expect(refused).toMatchObject({ code: 'HW_ERR_SERVER_CLOSING' });
    // The job was not cut: released now, its result reaches the caller.
    jobs.releases.get('a')?.(undefined);
    await expect(inFlight).resolves.toEqual({ done: 'a' });
    // With its last call done the connection closes, and the server with it, long before drainMs.
    const startedWait = performance.now();
    await serverClosed;
    expect(performance.now() - startedWait).toBeLessThan(5000);
    expect(callbackRan).toBe(true);
    expect(jobs.reasons).toEqual([]);
    await expect.poll(() => server.connectionCount).toBe(0);
  });

  it('what still runs after drainMs is aborted with HW_ERR_SERVER_SHUTDOWN; calls that finished in time kept their results', async () => {
    const jobs = gatedServer();
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    const { server, port } = await startServer({}, jobs.setup);
    const c = await client(port);
    const quick = c.call('job', 'quick');
    const stuck = c.call('job', 'stuck');
    stuck.catch(() => {});
    await jobs.untilStarted(2);
    const began = performance.now();
    server.close({ drainMs: 400 });
    jobs.releases.get('quick')?.(undefined);
    await expect(quick).resolves.toEqual({ done: 'quick' });
    const err = await stuck.then(
      () => expect.unreachable('call resolved'),
      (e: unknown) => e,
    );
    expect(performance.now() - began).toBeGreaterThanOrEqual(390);
    expect(err).toBeInstanceOf(RemoteError);
    expect(err).toMatchObject({ code: 'HW_ERR_SERVER_SHUTDOWN' });
    expect(jobs.reasons).toHaveLength(1);
    expect(jobs.reasons[0]).toMatchObject({ name: 'AbortReason', code: 'HW_ERR_SERVER_SHUTDOWN' });
    expect((await events.abort()).reason.code).toBe('HW_ERR_SERVER_SHUTDOWN');
    await closed(server);
  });

  it('on the wire: one GOAWAY with the highest id; a CALL that crossed it → ERROR HW_ERR_SERVER_CLOSING and no handler runs; the earlier call still gets its RESULT', async () => {
    const jobs = gatedServer();
    const { server, port } = await startServer({}, jobs.setup);
    const { peer } = await RawPeer.handshake(port);
    cleanups.push(() => peer.socket.destroy());
    peer.call(3, 'job', 'first');
    await jobs.untilStarted(1);
    server.close({ drainMs: 10_000 });
    const goaway = await peer.frame((f) => f.type === FrameType.GOAWAY, WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload)).toMatchObject({ code: 'HW_ERR_SERVER_SHUTDOWN', lastStream: 3 });
    peer.call(4, 'job', 'crossed');
    const refusal = await peer.frame((f) => f.stream === 4, WAIT_MS);
    expect(refusal.type).toBe(FrameType.ERROR);
    expect(decodeCallError(codec, refusal.payload).code).toBe('HW_ERR_SERVER_CLOSING');
    expect(jobs.started()).toBe(1);
    // Heartbeats go on while the call drains (the client answers nothing here, but 10 s is far).
    jobs.releases.get('first')?.(undefined);
    const result = await peer.frame((f) => f.stream === 3 && f.type === FrameType.RESULT, WAIT_MS);
    expect(codec.decode(result.payload)).toEqual({ done: 'first' });
    await peer.gone(WAIT_MS);
    expect(peer.frames.filter((f) => f.type === FrameType.GOAWAY)).toHaveLength(1);
    await closed(server);
  });

  it('idle connections close at once; one still in its handshake gets GOAWAY HW_ERR_SERVER_SHUTDOWN; new connections are refused', async () => {
    const jobs = gatedServer();
    const { server, port } = await startServer({}, jobs.setup);
    const idle = await client(port);
    const idleClosed = once(idle, 'close');
    const stranger = await RawPeer.connect(port);
    cleanups.push(() => stranger.socket.destroy());
    await expect.poll(() => server.connectionCount).toBe(2);
    const serverClosed = closed(server);
    server.close({ drainMs: 10_000 });
    const [closeError] = (await idleClosed) as [ConnectionError];
    expect(closeError?.code).toBe('HW_ERR_SERVER_SHUTDOWN');
    const goaway = await stranger.frame((f) => f.type === FrameType.GOAWAY, WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload).code).toBe('HW_ERR_SERVER_SHUTDOWN');
    await stranger.gone(WAIT_MS);
    await expect(connect({ host: HOST, port })).rejects.toMatchObject({ code: 'HW_ERR_CONNECTION_LOST' });
    await serverClosed;
  });

  it('a second close({ drainMs: 0 }) during a drain aborts at once; both callbacks run', async () => {
    const jobs = gatedServer();
    const { server, port } = await startServer({}, jobs.setup);
    const c = await client(port);
    const stuck = c.call('job', 'stuck');
    stuck.catch(() => {});
    await jobs.untilStarted(1);
    const callbacks: string[] = [];
    server.close({ drainMs: 60_000 }, () => callbacks.push('first'));
    const began = performance.now();
    server.close({ drainMs: 0 }, () => callbacks.push('second'));
    await expect(stuck).rejects.toMatchObject({ code: 'HW_ERR_SERVER_SHUTDOWN' });
    await expect.poll(() => callbacks.sort()).toEqual(['first', 'second']);
    expect(performance.now() - began).toBeLessThan(5000);
    // A close after the server closed still calls back.
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('close(callback) without options aborts at once, as before', async () => {
    const jobs = gatedServer();
    const { server, port } = await startServer({}, jobs.setup);
    const c = await client(port);
    const call = c.call('job', 'x');
    call.catch(() => {});
    await jobs.untilStarted(1);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await expect(call).rejects.toMatchObject({ name: 'RemoteError', code: 'HW_ERR_SERVER_SHUTDOWN' });
  });

  it.each([
    ['{ drainMs: -1 }', { drainMs: -1 }, /drainMs/],
    ["{ drainMs: '5' }", { drainMs: '5' }, /drainMs/],
    ['{ drain: 5 } (misspelled)', { drain: 5 }, /unknown option drain \(did you mean|known options: drainMs/],
  ])('close(%s) throws InvalidOptionError naming the option, and the server keeps running', async (_name, options, message) => {
    const jobs = gatedServer();
    const { server, port, close } = await startServer({}, jobs.setup);
    cleanups.push(close);
    expect(() => server.close(options as never)).toThrow(InvalidOptionError);
    expect(() => server.close(options as never)).toThrow(message);
    const c = await client(port);
    await expect(c.call('echo', 'still up')).resolves.toBe('still up');
  });
});

describe('SIGTERM, as the README shows it', () => {
  it('a server process told SIGTERM finishes the call in flight, refuses a new one, and exits 0', async () => {
    const server = await ServerProcess.start({ drainMs: 10_000 });
    cleanups.push(() => server.kill());
    const c = await client(server.port);
    const goaway = once(c, 'goaway');
    // 600 ms from the SIGTERM, not from the start: however late the 'call' line reaches us, the
    // call is still in flight when the signal comes.
    const work = c.call('work', { ms: 600, tag: 'long', fromSigterm: true });
    await server.line('call', (l) => l.tag === 'long');
    server.process.kill('SIGTERM');
    // Right after the GOAWAY event, before this client can have read anything after it: the call
    // is refused because of the GOAWAY, whatever the server did since.
    await goaway;
    await expect(c.call('work', { ms: 1 })).rejects.toMatchObject({ code: 'HW_ERR_SERVER_CLOSING' });
    await server.line('sigterm');
    await expect(work).resolves.toMatchObject({ worked: 600, tag: 'long' });
    await server.line('exiting');
    const [code] = (await server.exited) as [number];
    expect(code).toBe(0);
    expect(server.calls()).toEqual(['long']);
  });
});
