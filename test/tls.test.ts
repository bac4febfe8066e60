/**
 * TLS, mutual TLS and the authentication hook, on real sockets with
 * certificates made by openssl for this run; and the heartbeat rules over
 * TLS, with real client processes killed and frozen.
 */
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, ConnectionError, type HeartwireClient } from '@heartwire/client';
import { decodeGoAway, encodeFrame, FrameType, PayloadCodec, PROTOCOL_VERSION } from '@heartwire/core';
import type { CallContext, HeartwireServer, PeerInfo, ServerOptions, TlsErrorMessage } from '@heartwire/server';
import type { Hello } from '@heartwire/core';
import { makeCertificates, type TestCertificates } from './harness/certs.js';
import { ChildClient } from './harness/child.js';
import { RawPeer } from './harness/raw.js';
import { ServerEvents, startServer } from './harness/server.js';
import { Waiter } from './harness/waiter.js';

const HOST = '127.0.0.1';
const WAIT_MS = 5000;
const codec = new PayloadCodec();
let certs: TestCertificates;
const cleanups: Array<() => unknown> = [];

beforeAll(() => {
  certs = makeCertificates();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const serverTls = (extra: Record<string, unknown> = {}) => ({ key: certs.serverKey, cert: certs.serverCert, ...extra });
const mutual = () => serverTls({ ca: certs.ca, requestCert: true });

/** A server with `echo`, and `job` that runs until aborted; counts handler starts. */
async function server(options: ServerOptions) {
  const events = new ServerEvents();
  cleanups.push(() => events.dispose());
  const waiter = new Waiter();
  const jobs: Array<{ signal: AbortSignal }> = [];
  let calls = 0;
  const started = await startServer(options, (s: HeartwireServer) => {
    s.handle('echo', (params: unknown) => {
      calls++;
      return params;
    });
    s.handle('job', (_params: unknown, ctx: CallContext) => {
      calls++;
      jobs.push({ signal: ctx.signal });
      waiter.wake();
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
      });
    });
  });
  cleanups.push(started.close);
  return {
    ...started,
    events,
    calls: () => calls,
    job: (n: number) => waiter.until(() => jobs[n], `job ${n}`, WAIT_MS),
  };
}

async function client(port: number, options: Record<string, unknown>): Promise<HeartwireClient> {
  const c = await connect({ host: HOST, port, ...options });
  cleanups.push(() => c.close());
  return c;
}

async function refusal(port: number, options: Record<string, unknown>): Promise<ConnectionError> {
  const err = await connect({ host: HOST, port, ...options }).then(
    (c) => {
      cleanups.push(() => c.close());
      return expect.unreachable('connect resolved');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectionError);
  return err as ConnectionError;
}

/** Records what the server publishes on heartwire:server:tls:error. */
function tlsErrors(): TlsErrorMessage[] {
  const seen: TlsErrorMessage[] = [];
  const onMessage = (m: unknown): void => {
    seen.push(m as TlsErrorMessage);
  };
  diagnostics.subscribe('heartwire:server:tls:error', onMessage);
  cleanups.push(() => diagnostics.unsubscribe('heartwire:server:tls:error', onMessage));
  return seen;
}

describe('TLS', () => {
  it('a client trusting the test CA calls over TLS; the stream is encrypted (a plain client gets no WELCOME)', async () => {
    const s = await server({ tls: serverTls() });
    const c = await client(s.port, { tls: { ca: certs.ca } });
    await expect(c.call('echo', { over: 'tls' })).resolves.toEqual({ over: 'tls' });
    // A plain-TCP peer speaking heartwire to it: the TLS layer rejects its bytes.
    const seen = tlsErrors();
    const peer = await RawPeer.connect(s.port);
    cleanups.push(() => peer.socket.destroy());
    peer.send(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION] }));
    await peer.gone(WAIT_MS);
    expect(peer.frames).toEqual([]);
    await expect.poll(() => seen.length).toBeGreaterThan(0);
    // The real plain client is told the connection was lost, and nothing ran.
    expect((await refusal(s.port, {})).code).toBe('HW_ERR_CONNECTION_LOST');
    expect(s.calls()).toBe(1);
  });

  it.each([
    ['a server certificate from a CA the client does not trust', () => ({}), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify/],
    ['a server name the certificate does not carry', () => ({ ca: certs.ca, servername: 'wrong.example' }), /ERR_TLS_CERT_ALTNAME_INVALID|wrong\.example/],
  ])('%s → connect rejects with HW_ERR_TLS, nothing runs', async (_name, tls, cause) => {
    const s = await server({ tls: serverTls() });
    const err = await refusal(s.port, { tls: tls() });
    expect(err.code).toBe('HW_ERR_TLS');
    const nested = err.cause as NodeJS.ErrnoException;
    expect(`${nested.code} ${nested.message}`).toMatch(cause);
    expect(s.calls()).toBe(0);
  });

  it('a TLS client against a plain server → HW_ERR_TLS', async () => {
    const s = await server({});
    expect((await refusal(s.port, { tls: { ca: certs.ca } })).code).toBe('HW_ERR_TLS');
  });

  it('end() over TLS: the half-closed client still gets its result', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { port, close } = await startServer({ tls: serverTls() }, (s) =>
      s.handle('late', async () => {
        await released;
        return 'after half-close';
      }),
    );
    cleanups.push(close);
    const c = await connect({ host: HOST, port, tls: { ca: certs.ca } });
    const call = c.call('late');
    await new Promise((resolve) => setImmediate(resolve));
    const ended = c.end();
    release();
    await expect(call).resolves.toBe('after half-close');
    await ended;
  });
});

describe('mutual TLS', () => {
  it('a client certificate from the trusted CA gets in, and the authentication hook sees it', async () => {
    const seen: PeerInfo[] = [];
    const s = await server({
      tls: mutual(),
      authenticate: (_hello: Hello, peer: PeerInfo) => {
        seen.push(peer);
        return peer.certificate?.subject?.CN === 'client-ok';
      },
    });
    const c = await client(s.port, { tls: { ca: certs.ca, key: certs.clientKey, cert: certs.clientCert } });
    await expect(c.call('echo', 'mtls')).resolves.toBe('mtls');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.certificate?.subject?.CN).toBe('client-ok');
    expect(seen[0]?.remoteAddress).toBe(HOST);
  });

  it.each([
    ['no client certificate', () => ({ ca: certs.ca })],
    ['a certificate from a CA the server does not trust', () => ({ ca: certs.ca, key: certs.rogueKey, cert: certs.rogueCert })],
  ])('%s → GOAWAY HW_ERR_UNAUTHENTICATED naming the reason; no call can run', async (_name, tls) => {
    const s = await server({ tls: mutual() });
    const err = await refusal(s.port, { tls: tls() });
    expect(err.code).toBe('HW_ERR_UNAUTHENTICATED');
    expect(err.message).toMatch(/client certificate was not accepted: [A-Z_]+/);
    expect(s.calls()).toBe(0);
    expect(s.server.connectionCount).toBe(0);
  });
});

describe('authentication hook', () => {
  const token = (hello: Hello): boolean => hello.auth === 's3cret';

  it('the right token gets in; a wrong or missing one → HW_ERR_UNAUTHENTICATED and nothing runs (plain TCP and TLS)', async () => {
    for (const tls of [undefined, serverTls()]) {
      const s = await server({ authenticate: token, ...(tls === undefined ? {} : { tls }) });
      const clientTls = tls === undefined ? {} : { tls: { ca: certs.ca } };
      const c = await client(s.port, { auth: 's3cret', ...clientTls });
      await expect(c.call('echo', 1)).resolves.toBe(1);
      for (const auth of ['wrong', undefined, { token: 's3cret' }]) {
        const err = await refusal(s.port, { auth, ...clientTls });
        expect(err.code).toBe('HW_ERR_UNAUTHENTICATED');
        expect(err.message).toMatch(/authentication failed/);
      }
      expect(s.calls()).toBe(1);
    }
  });

  it('an async hook is awaited; one that throws refuses, and its error is the cause the server publishes', async () => {
    const boom = new Error('token service down');
    const s = await server({
      authenticate: async (hello: Hello) => {
        await sleep(20);
        if (hello.auth === 'explode') throw boom;
        return hello.auth === 'ok';
      },
    });
    const c = await client(s.port, { auth: 'ok' });
    await expect(c.call('echo', 'async ok')).resolves.toBe('async ok');
    expect((await refusal(s.port, { auth: 'explode' })).code).toBe('HW_ERR_UNAUTHENTICATED');
    const closed = await s.events.close((m) => m.reason !== undefined);
    const cause = closed.reason?.cause as { code?: string; cause?: unknown };
    expect(cause.code).toBe('HW_ERR_UNAUTHENTICATED');
    expect(cause.cause).toBe(boom);
  });

  it('a CALL sent after HELLO, before WELCOME, waits for the hook: none runs before its yes, then it runs (PROTOCOL.md §3)', async () => {
    let answer!: (ok: boolean) => void;
    const s = await server({ authenticate: () => new Promise<boolean>((resolve) => (answer = resolve)) });
    const peer = await RawPeer.connect(s.port);
    cleanups.push(() => peer.socket.destroy());
    peer.send(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION], auth: 'pushy' }));
    await expect.poll(() => answer).toBeDefined();
    peer.sendRaw(encodeFrame(FrameType.CALL, 1, codec.encode(['echo', 'pipelined'])));
    // Let the CALL reach the server while the hook has not answered.
    await expect.poll(() => peer.socket.bytesWritten).toBeGreaterThan(0);
    expect(s.calls()).toBe(0);
    answer(true);
    const result = await peer.frame((f) => f.type === FrameType.RESULT && f.stream === 1, WAIT_MS);
    expect(codec.decode(result.payload)).toBe('pipelined');
    expect(peer.frames.map((f) => f.type)).toEqual([FrameType.WELCOME, FrameType.ACCEPTED, FrameType.RESULT]);
  });

  it.each([
    ['no hook', undefined],
    ['a hook that says yes later', () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 50))],
  ])('HELLO and a CALL in one write have one outcome whatever the hook (%s): WELCOME, then the call runs', async (_name, authenticate) => {
    const s = await server(authenticate === undefined ? {} : { authenticate });
    const peer = await RawPeer.connect(s.port);
    cleanups.push(() => peer.socket.destroy());
    peer.sendRaw(
      Buffer.concat([
        encodeFrame(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION], auth: 'x' })),
        encodeFrame(FrameType.CALL, 1, codec.encode(['echo', 'together'])),
      ]),
    );
    const result = await peer.frame((f) => f.type === FrameType.RESULT && f.stream === 1, WAIT_MS);
    expect(codec.decode(result.payload)).toBe('together');
    expect(peer.frames.map((f) => f.type)).toEqual([FrameType.WELCOME, FrameType.ACCEPTED, FrameType.RESULT]);
  });

  it('a CALL sent before WELCOME is charged to the params budget from its header: over it, GOAWAY HW_ERR_OVER_BUDGET; within it, it runs and its charge is given back', async () => {
    let answer!: (ok: boolean) => void;
    const s = await server({
      maxParamsBytes: 256 * 1024,
      maxParamsBytesPerConnection: 128 * 1024,
      authenticate: () => new Promise<boolean>((resolve) => (answer = resolve)),
    });
    const big = await RawPeer.connect(s.port);
    cleanups.push(() => big.socket.destroy());
    big.sendRaw(
      Buffer.concat([
        encodeFrame(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION] })),
        encodeFrame(FrameType.CALL, 1, codec.encode(['echo', new Uint8Array(200 * 1024)])),
      ]),
    );
    const goaway = await big.frame((f) => f.type === FrameType.GOAWAY, WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload).code).toBe('HW_ERR_OVER_BUDGET');
    await big.gone(WAIT_MS);
    const fits = await RawPeer.connect(s.port);
    cleanups.push(() => fits.socket.destroy());
    fits.sendRaw(
      Buffer.concat([
        encodeFrame(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION] })),
        encodeFrame(FrameType.CALL, 1, codec.encode(['echo', new Uint8Array(100 * 1024)])),
      ]),
    );
    await expect.poll(() => s.server.paramsBytesHeld, { timeout: WAIT_MS }).toBeGreaterThan(100 * 1024);
    answer(true);
    const result = await fits.frame((f) => f.type === FrameType.RESULT && f.stream === 1, WAIT_MS);
    expect((codec.decode(result.payload) as Uint8Array).byteLength).toBe(100 * 1024);
    expect(s.server.paramsBytesHeld).toBe(0);
  });

  it('a CALL that waited for a hook that says no never runs: GOAWAY HW_ERR_UNAUTHENTICATED only', async () => {
    let answer!: (ok: boolean) => void;
    const s = await server({ authenticate: () => new Promise<boolean>((resolve) => (answer = resolve)) });
    const peer = await RawPeer.connect(s.port);
    cleanups.push(() => peer.socket.destroy());
    peer.sendRaw(
      Buffer.concat([
        encodeFrame(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION], auth: 'wrong' })),
        encodeFrame(FrameType.CALL, 1, codec.encode(['echo', 'sneaky'])),
      ]),
    );
    await expect.poll(() => answer).toBeDefined();
    answer(false);
    const goaway = await peer.frame((f) => f.type === FrameType.GOAWAY, WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload).code).toBe('HW_ERR_UNAUTHENTICATED');
    await peer.gone(WAIT_MS);
    expect(peer.frames.map((f) => f.type)).toEqual([FrameType.GOAWAY]);
    expect(s.calls()).toBe(0);
  });

  it('a hook that never answers is cut by the handshake deadline (HW_ERR_HANDSHAKE_TIMEOUT)', async () => {
    const s = await server({ handshakeTimeoutMs: 300, authenticate: () => new Promise<boolean>(() => {}) });
    const began = performance.now();
    expect((await refusal(s.port, { auth: 'x' })).code).toBe('HW_ERR_HANDSHAKE_TIMEOUT');
    expect(performance.now() - began).toBeGreaterThanOrEqual(250);
    expect(s.calls()).toBe(0);
  });

  it('the handshake deadline counts the TLS handshake: a peer that opens TCP and sends nothing is dropped', async () => {
    const s = await server({ tls: serverTls(), handshakeTimeoutMs: 300 });
    const seen = tlsErrors();
    const peer = await RawPeer.connect(s.port);
    cleanups.push(() => peer.socket.destroy());
    const began = performance.now();
    await peer.gone(WAIT_MS);
    expect(performance.now() - began).toBeGreaterThanOrEqual(250);
    await expect.poll(() => seen.map((m) => (m.error as NodeJS.ErrnoException).code)).toContain('ERR_TLS_HANDSHAKE_TIMEOUT');
  });
});

describe('heartbeats and detection over TLS, with real client processes', () => {
  const BOUNDS = { heartbeatMs: 100, silentMs: 500, stallMs: 1000 };
  const children: ChildClient[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGCONT');
      await child.dispose();
    }
  });

  async function tlsChild(port: number, options: Record<string, unknown> = {}): Promise<ChildClient> {
    const child = new ChildClient(port, { tls: { ca: certs.ca, key: certs.clientKey, cert: certs.clientCert }, ...options });
    children.push(child);
    await child.waitFor('connected');
    return child;
  }

  it('a client killed with SIGKILL → the job aborts HW_ERR_PEER_CLOSED, at once', async () => {
    const s = await server({ ...BOUNDS, heartbeatMs: 5000, silentMs: 5000, tls: mutual() });
    const child = await tlsChild(s.port);
    child.send({ cmd: 'call', id: 1, method: 'job', params: null });
    await child.waitFor('accepted', (e) => e.id === 1);
    const job = await s.job(0);
    const killedAt = child.kill('SIGKILL');
    const abort = await s.events.abort();
    // The child printed 'accepted', so it had read all the server sent (TLS tickets, WELCOME, ACCEPTED), and
    // the 5 s heartbeat sends nothing meanwhile: its kernel closes with a FIN (no close_notify), as over plain TCP.
    expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
    expect(job.signal.aborted).toBe(true);
    // Far below the 5 s heartbeat: the FIN (or RST) was seen, not a missing PONG.
    expect(abort.at - killedAt).toBeLessThan(1500);
  });

  it('a frozen client (SIGSTOP) → HW_ERR_PEER_SILENT within heartbeatMs + silentMs, then reset: the thawed client sees its call fail', async () => {
    const s = await server({ ...BOUNDS, tls: mutual() });
    // Thawed, a client with the default bound (600 ms here) finds its own silence timer long
    // overdue and the server's RST waiting: two verdicts, and which one it reached first was
    // left to chance. With a bound it cannot reach, the reset is the only thing it can learn.
    const child = await tlsChild(s.port, { serverSilentMs: 60_000 });
    child.send({ cmd: 'call', id: 1, method: 'job', params: null });
    await child.waitFor('accepted', (e) => e.id === 1);
    // Heartbeats flow over TLS while the job runs: a second of them changes nothing.
    await sleep(BOUNDS.heartbeatMs * 5);
    expect(s.events.aborts).toEqual([]);
    const frozenAt = child.kill('SIGSTOP');
    const abort = await s.events.abort();
    expect(abort.reason.code).toBe('HW_ERR_PEER_SILENT');
    const took = abort.at - frozenAt;
    // A PING sent up to one interval before the freeze may be unanswered only because the child was
    // not scheduled to read it in time (a busy machine): the verdict may come that much sooner.
    expect(took).toBeGreaterThanOrEqual(BOUNDS.silentMs - BOUNDS.heartbeatMs);
    expect(took).toBeLessThan(BOUNDS.heartbeatMs + BOUNDS.silentMs + 1500);
    // The server reset the TCP connection under TLS: once thawed, the client learns its call is lost.
    child.kill('SIGCONT');
    const error = await child.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_CONNECTION_LOST');
    const closed = await child.waitFor('closed');
    expect(closed.code).toBe('HW_ERR_CONNECTION_LOST');
  });

  it('the client side over TLS: a frozen server → the call rejects with HW_ERR_SERVER_SILENT', async () => {
    // A server whose loop blocks for 1.5 s after ACCEPTED: no PING can go out.
    const { port, close } = await startServer({ ...BOUNDS, tls: serverTls() }, (s) =>
      s.handle('freeze', async () => {
        await new Promise((resolve) => setImmediate(resolve));
        const until = Date.now() + 1500;
        while (Date.now() < until);
        return 'thawed';
      }),
    );
    cleanups.push(close);
    // The client runs in its own process: its timers must not be blocked along with the server's loop.
    const child = new ChildClient(port, { tls: { ca: certs.ca }, serverSilentMs: 600 });
    children.push(child);
    await child.waitFor('connected');
    child.send({ cmd: 'call', id: 1, method: 'freeze', params: null });
    const error = await child.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_SERVER_SILENT');
  });
});
