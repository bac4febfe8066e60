/**
 * Client resilience with real servers stopped, killed and restarted: the
 * reconnecting client makes a new connection for new calls, spaced by its
 * backoff; a call in flight on a lost connection fails with a clear code and
 * is never sent again unless marked idempotent (then once); on GOAWAY the
 * calls in flight finish on the old connection and new ones go to a new one.
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortedError,
  ConnectionError,
  createClient,
  DEFAULT_BACKOFF_OPTIONS,
  InvalidOptionError,
  type ReconnectingClient,
  type ReconnectingClientOptions,
} from '@heartwire/client';
import type { CallContext, HeartwireServer } from '@heartwire/server';
import { backoffDelay } from '../packages/client/src/backoff.js';
import { ServerProcess, type ServerProcessOptions } from './harness/server-process.js';
import { startServer } from './harness/server.js';
import { Waiter } from './harness/waiter.js';

const HOST = '127.0.0.1';
const WAIT_MS = 10_000;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Quick backoff for tests: 50 ms, doubling, no jitter. */
const QUICK = { initialDelayMs: 50, maxDelayMs: 400, jitter: 0 };

function client(port: number, options: Partial<ReconnectingClientOptions> = {}): ReconnectingClient {
  const c = createClient({ host: HOST, port, backoff: QUICK, ...options });
  cleanups.push(() => c.close());
  return c;
}

async function serverProcess(port = 0, options: ServerProcessOptions = {}): Promise<ServerProcess & { port: number }> {
  const server = await ServerProcess.start({ port, ...options });
  cleanups.push(() => server.kill());
  return server;
}

const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => expect.unreachable('the call resolved'),
    (e: unknown) => e,
  );

describe('reconnecting client: servers killed and restarted', () => {
  it('a server killed and restarted on the same port: new calls work again on a new connection', async () => {
    const first = await serverProcess();
    const c = client(first.port, { connectTimeoutMs: 300 });
    const connects: unknown[] = [];
    c.on('connect', (welcome) => connects.push(welcome));
    await expect(c.call('work', { ms: 1, tag: 'before' })).resolves.toMatchObject({ tag: 'before', pid: first.process.pid });
    const disconnected = once(c, 'disconnect');
    await first.kill();
    const [err] = (await disconnected) as [ConnectionError];
    expect(err?.code).toBe('HW_ERR_CONNECTION_LOST');
    // While it is down a call waits for a connection up to connectTimeoutMs, then fails with the last attempt's code.
    const down = await rejection(c.call('work', { ms: 1, tag: 'down' }, {}));
    expect(down).toBeInstanceOf(ConnectionError);
    expect(down).toMatchObject({ code: 'HW_ERR_CONNECTION_LOST', message: expect.stringMatching(/ECONNREFUSED/) });
    const second = await serverProcess(first.port);
    await expect(c.call('work', { ms: 1, tag: 'after' })).resolves.toMatchObject({ tag: 'after', pid: second.process.pid });
    expect(connects).toHaveLength(2);
    expect(await second.callsThrough('after')).toEqual(['after']);
  });

  it('a call in flight when its server is killed fails with HW_ERR_CONNECTION_LOST and is never sent again', async () => {
    const first = await serverProcess();
    const c = client(first.port);
    const failed = rejection(c.call('work', { ms: 60_000, tag: 'once-only' }));
    await first.line('call', (l) => l.tag === 'once-only');
    await first.kill();
    const err = await failed;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'HW_ERR_CONNECTION_LOST' });
    const restarted = await serverProcess(first.port);
    await expect(c.call('work', { ms: 1, tag: 'next' })).resolves.toMatchObject({ tag: 'next' });
    expect(await restarted.callsThrough('next')).toEqual(['next']);
  });

  it('an idempotent call in flight when its server is killed is sent once more, on the restarted server', async () => {
    // The first server's job never ends: a 300 ms one could finish there before the test, told by
    // the 'call' line, kills the server. The restarted server runs it for its 300 ms.
    const first = await serverProcess(0, { hang: true });
    const c = client(first.port, { backoff: { initialDelayMs: 100, maxDelayMs: 400, jitter: 0 } });
    const call = c.call('work', { ms: 300, tag: 'idem' }, { idempotent: true });
    await first.line('call', (l) => l.tag === 'idem');
    const port = first.port;
    await first.kill();
    // Restart as soon as the port is free; the retry waits for its connection attempt.
    const second = await serverProcess(port);
    const result = await call;
    expect(result).toMatchObject({ tag: 'idem', pid: second.process.pid });
    expect(first.calls()).toEqual(['idem']);
    expect(await second.callsThrough('idem')).toEqual(['idem']);
  });

  it('an idempotent call is sent again only once: lost twice, it fails with the second loss', async () => {
    const first = await serverProcess();
    const c = client(first.port);
    const failed = rejection(c.call('work', { ms: 60_000, tag: 'twice' }, { idempotent: true }));
    await first.line('call', (l) => l.tag === 'twice');
    const port = first.port;
    await first.kill();
    const second = await serverProcess(port);
    await second.line('call', (l) => l.tag === 'twice');
    await second.kill();
    const err = await failed;
    expect(err).toMatchObject({ code: 'HW_ERR_CONNECTION_LOST' });
    const third = await serverProcess(port);
    await expect(c.call('work', { ms: 1, tag: 'fresh' })).resolves.toMatchObject({ tag: 'fresh' });
    expect(await third.callsThrough('fresh')).toEqual(['fresh']);
  });
});

describe('reconnecting client: backoff', () => {
  /** A TCP port that accepts and hangs up at once, recording when each attempt came. */
  async function hangUp(): Promise<{ port: number; attempts: number[] }> {
    const attempts: number[] = [];
    const server = net.createServer((socket) => {
      attempts.push(performance.now());
      socket.destroy();
    });
    server.listen(0, HOST);
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return { port: (server.address() as AddressInfo).port, attempts };
  }

  it('failed attempts are spaced by the backoff (at once, then 100, 200, 400 ms with no jitter) until the call is out of connect time', async () => {
    const { port, attempts } = await hangUp();
    const c = client(port, { connectTimeoutMs: 1400, backoff: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 } });
    const began = performance.now();
    const err = await rejection(c.call('x'));
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'HW_ERR_CONNECTION_LOST' });
    // Attempts at 0, 100, 300, 700 ms; the next would be at 1500 ms or later (timers are never
    // early), past the 1400 ms the call may wait. The fourth is made as long as the third failed
    // before 1000 ms: 700 ms for a busy machine's delays, where 50 ms steps and a 600 ms budget
    // left 250 ms, and a late third attempt meant a missing fourth.
    expect(attempts).toHaveLength(4);
    const elapsed = performance.now() - began;
    expect(elapsed).toBeGreaterThanOrEqual(690);
    const gaps = attempts.slice(1).map((t, i) => t - (attempts[i] as number));
    // Each gap holds at least its backoff; the upper bound is loose (a busy machine).
    for (const [i, min] of [100, 200, 400].entries()) {
      expect(gaps[i]).toBeGreaterThanOrEqual(min - 5);
      expect(gaps[i]).toBeLessThan(min + 1500);
    }
    // Idle, the client makes no attempt of its own.
    const count = attempts.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(attempts).toHaveLength(count);
  });

  it('backoffDelay: doubling from initialDelayMs, capped, jitter takes at most its share off', () => {
    const options = { ...DEFAULT_BACKOFF_OPTIONS, jitter: 0 };
    expect([0, 1, 2, 3, 8, 30].map((n) => backoffDelay(n, options))).toEqual([0, 100, 200, 400, 10_000, 10_000]);
    const jittered = { ...DEFAULT_BACKOFF_OPTIONS, jitter: 0.5 };
    expect(backoffDelay(3, jittered, () => 0)).toBe(400);
    expect(backoffDelay(3, jittered, () => 0.999_999)).toBe(200);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, jittered);
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThanOrEqual(200);
    }
  });

  it('a call waiting for its attempt can be aborted; the client stays usable', async () => {
    const { port } = await hangUp();
    const c = client(port, { connectTimeoutMs: 100, backoff: { initialDelayMs: 5000, maxDelayMs: 5000, jitter: 0 } });
    await rejection(c.call('x'));
    // The next attempt is 5 s away: this call waits for it, until its signal fires.
    const controller = new AbortController();
    const waiting = c.call('x', null, { signal: controller.signal });
    await expect.poll(() => c.waitingCalls).toBe(1);
    const began = performance.now();
    controller.abort(new Error('enough'));
    const err = await rejection(waiting);
    expect(err).toBeInstanceOf(AbortedError);
    expect(performance.now() - began).toBeLessThan(1000);
    expect(c.waitingCalls).toBe(0);
  });

  it('option checks: a bad or unknown backoff option, or a signal, throws InvalidOptionError naming it', () => {
    const bad = (options: unknown, message: RegExp): void => {
      expect(() => createClient(options as ReconnectingClientOptions)).toThrow(InvalidOptionError);
      expect(() => createClient(options as ReconnectingClientOptions)).toThrow(message);
    };
    bad({ port: 1, backoff: { jitter: 2 } }, /backoff\.jitter/);
    bad({ port: 1, backoff: { multiplier: 0.5 } }, /backoff\.multiplier/);
    bad({ port: 1, backoff: { initialDelayMs: 500, maxDelayMs: 100 } }, /backoff\.maxDelayMs/);
    bad({ port: 1, backoff: { initialDelay: 5 } }, /unknown option backoff\.initialDelay/);
    bad({ port: 1, backoff: 'fast' }, /option backoff must be an object/);
    bad({ port: 1, signal: AbortSignal.timeout(10) }, /signal/);
    bad({ port: 0 }, /port/);
    bad(null, /options/);
  });
});

describe('reconnecting client: GOAWAY routes new calls to a new connection', () => {
  /** An in-process server with `job` (runs until released) and `echo`, each answer naming the server. */
  async function named(name: string, port = 0) {
    const releases = new Map<unknown, () => void>();
    const waiter = new Waiter();
    const seen: unknown[] = [];
    const started = await startServer(
      {},
      (s: HeartwireServer) => {
        s.handle('job', (tag: unknown, ctx: CallContext) => {
          seen.push(tag);
          waiter.wake();
          return new Promise((resolve, reject) => {
            releases.set(tag, () => resolve({ server: name, tag }));
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
          });
        });
        s.handle('echo', (tag: unknown) => {
          seen.push(tag);
          return { server: name, tag };
        });
      },
      HOST,
      port,
    );
    cleanups.push(started.close);
    return {
      ...started,
      seen,
      release: (tag: unknown) => releases.get(tag)?.(),
      started: (tag: unknown) => waiter.until(() => (seen.includes(tag) ? true : undefined), `${String(tag)} started on ${name}`, WAIT_MS),
    };
  }

  it('the call in flight finishes on the draining server; calls made after GOAWAY, and calls it did not take, go to the new one', async () => {
    const old = await named('old');
    const c = client(old.port, { heartbeatMs: 100 });
    const inFlight = c.call('job', 'in-flight');
    await old.started('in-flight');
    const goaway = once(c, 'goaway');
    // A rolling restart on one port: the old server stops listening at once and drains;
    // the new one takes the port.
    old.server.close({ drainMs: 10_000 });
    await goaway;
    const fresh = await named('new', old.port);
    await expect(c.call('echo', 'after-goaway')).resolves.toEqual({ server: 'new', tag: 'after-goaway' });
    old.release('in-flight');
    await expect(inFlight).resolves.toEqual({ server: 'old', tag: 'in-flight' });
    expect(old.seen).toEqual(['in-flight']);
    expect(fresh.seen).toEqual(['after-goaway']);
  });

  it('calls queued beyond maxCalls when GOAWAY comes are sent to the new server, once each', async () => {
    const old = await named('old');
    const c = client(old.port);
    // maxCallsPerConnection is 100: 101 calls leave one waiting here.
    const calls = Array.from({ length: 101 }, (_, i) => c.call('job', i));
    for (const call of calls) call.catch(() => {});
    await old.started(99);
    expect(c.waitingCalls).toBe(1);
    const goaway = once(c, 'goaway');
    old.server.close({ drainMs: 10_000 });
    await goaway;
    const fresh = await named('new', old.port);
    await fresh.started(100);
    fresh.release(100);
    await expect(calls[100]).resolves.toEqual({ server: 'new', tag: 100 });
    for (let i = 0; i < 100; i++) old.release(i);
    const results = (await Promise.all(calls.slice(0, 100))) as Array<{ server: string }>;
    expect(new Set(results.map((r) => r.server))).toEqual(new Set(['old']));
    expect(old.seen).toHaveLength(100);
    expect(fresh.seen).toEqual([100]);
  });

  it('close(): calls in flight and waiting reject with HW_ERR_CLIENT_CLOSED; later calls too', async () => {
    const old = await named('old');
    const c = client(old.port);
    const inFlight = rejection(c.call('job', 'x'));
    await old.started('x');
    await c.close();
    expect(await inFlight).toMatchObject({ code: 'HW_ERR_CLIENT_CLOSED' });
    await expect(c.call('echo', 1)).rejects.toMatchObject({ code: 'HW_ERR_CLIENT_CLOSED' });
  });
});
