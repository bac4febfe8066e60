/**
 * Hostile and malformed input on real sockets. Each case checks that the bad
 * peer gets a clear error (GOAWAY or ERROR with a code), that a protocol
 * violation closes only that one connection, and that a well-behaved real
 * client on the same server, with a call in flight the whole time, keeps
 * working. Every wait is on an event (a frame, a close, an abort), never on
 * a sleep; the only timers here pace the input of the "slow HELLO" case.
 */
import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  ConnectionError,
  HeartwireError,
  InvalidOptionError,
  RemoteError,
  type HeartwireClient,
} from '@heartwire/client';
import { createServer, type HeartwireServer, type ServerOptions } from '@heartwire/server';
import type { ClientConnectMessage } from '@heartwire/client';
import {
  decodeCallError,
  decodeGoAway,
  decodeHello,
  decodeWelcome,
  encodeFrame,
  encodeGoAway,
  encodePingPayload,
  encodeWelcome,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameType,
  PayloadCodec,
  PROTOCOL_VERSION,
  type Frame,
  type GoAwayBody,
} from '@heartwire/core';
import { RawPeer } from './harness/raw.js';
import { ServerEvents, startServer } from './harness/server.js';
import { Waiter } from './harness/waiter.js';

const HOST = '127.0.0.1';
/** Bound on every single wait: a failure shows up in seconds, not at the 30 s test timeout. */
const WAIT_MS = 5000;
const codec = new PayloadCodec();

// ---- process-level faults ---------------------------------------------------

/** Every unhandled rejection and uncaught exception seen while this file runs. */
const faults: Array<{ kind: string; error: unknown }> = [];
const faultWaiter = new Waiter();
const onRejection = (error: unknown): void => {
  faults.push({ kind: 'unhandledRejection', error });
  faultWaiter.wake();
};
const onException = (error: unknown): void => {
  faults.push({ kind: 'uncaughtException', error });
  faultWaiter.wake();
};

beforeAll(() => {
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
});

afterAll(() => {
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);
  expect(faults).toEqual([]);
});

/** One full turn of the event loop: a rejection left unhandled by what ran before is reported by then. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs `fn` with only this file's recorders on the process error events, for
 * the cases that demonstrate a library bug which throws out of a socket
 * listener: vitest's own listeners would otherwise report it as an unhandled
 * error of the whole run. The faults seen are returned and not kept.
 */
async function isolatingProcessFaults(fn: () => Promise<void>): Promise<unknown[]> {
  type Listener = (...args: unknown[]) => void;
  const events = ['uncaughtException', 'unhandledRejection'];
  const saved = events.map((event) => {
    const others = (process.listeners(event as 'uncaughtException') as Listener[]).filter(
      (l) => l !== onException && l !== onRejection,
    );
    for (const listener of others) process.off(event, listener);
    return [event, others] as const;
  });
  const before = faults.length;
  try {
    await fn();
    await nextTurn();
    await nextTurn();
  } finally {
    for (const [event, others] of saved) {
      for (const listener of others) process.on(event, listener);
    }
  }
  return faults.splice(before).map((f) => f.error);
}

// ---- cleanup ------------------------------------------------------------------

const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await nextTurn();
  expect(faults).toEqual([]);
});

// ---- the bench: a server, a good client with a call in flight, bad peers ------

interface Job {
  readonly port: number | undefined;
  readonly id: number;
  readonly signal: AbortSignal;
  settled: boolean;
}

interface Bench {
  readonly server: HeartwireServer;
  readonly port: number;
  readonly events: ServerEvents;
  /** The well-behaved connection. */
  readonly good: HeartwireClient;
  /** Its local port: the server's remotePort for it. */
  readonly goodPort: number;
  /** A call of `good` in flight from before the bad input until {@link expectIsolated} releases it. */
  readonly held: Promise<unknown>;
  readonly jobs: Job[];
  /** Client ports of the bad peers: the only connections allowed to close. */
  readonly badPorts: Set<number>;
  release(): void;
  /** Waits until `count` jobs of `forever` run for `peer`. */
  jobsOf(peer: RawPeer, count: number): Promise<Job[]>;
  /** Waits until every `forever` job of `peer` has ended. */
  jobsSettled(peer: RawPeer): Promise<Job[]>;
  raw(): Promise<RawPeer>;
  handshake(hello?: Record<string, unknown>): Promise<RawPeer>;
}

/** Starts a server with the test handlers and connects the good client; `hold` keeps one of its calls in flight. */
async function bench(options: ServerOptions = {}): Promise<Bench> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let holdStarted!: () => void;
  const holding = new Promise<void>((resolve) => {
    holdStarted = resolve;
  });
  const jobs: Job[] = [];
  const jobWaiter = new Waiter();
  const { server, port, close } = await startServer(options, (s) => {
    s.handle('echo', (params) => params);
    s.handle('hold', async (_params, ctx) => {
      holdStarted();
      await new Promise<void>((resolve, reject) => {
        void gate.then(resolve);
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
      });
      return 'held-ok';
    });
    s.handle('forever', (_params, ctx) => {
      const job: Job = { port: ctx.remotePort, id: ctx.id, signal: ctx.signal, settled: false };
      jobs.push(job);
      jobWaiter.wake();
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener(
          'abort',
          () => {
            job.settled = true;
            jobWaiter.wake();
            reject(ctx.signal.reason);
          },
          { once: true },
        );
      });
    });
    s.handle('throwSync', () => {
      throw new Error('sync boom');
    });
    s.handle('reject', async () => {
      await nextTurn();
      throw new Error('async boom');
    });
    s.handle('throwString', () => {
      // eslint-disable-next-line no-throw-literal
      throw 'plain string';
    });
    s.handle('returnFunction', () => () => 1);
    s.handle('returnSymbol', () => Symbol('nope'));
    s.handle('returnCyclic', () => {
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      return cyclic;
    });
    s.handle('returnBigint', () => 2n ** 64n);
    s.handle('resolveFunction', async () => () => 1);
    s.handle('throwNullProto', () => {
      throw Object.create(null);
    });
    s.handle('rejectNullProto', async () => {
      throw Object.create(null);
    });
    s.handle('badThenable', () => ({
      then() {
        throw new Error('then boom');
      },
    }));
    s.handle('throwLong', () => {
      throw new Error(`long: ${'x'.repeat(4000)}`);
    });
  });
  const events = new ServerEvents();
  cleanups.push(close);
  cleanups.push(() => events.dispose());
  // The good client's port, as the server sees it: from the client's connect channel.
  let goodPort: number | undefined;
  const onConnect = (message: unknown): void => {
    goodPort = (message as ClientConnectMessage).localPort;
  };
  diagnostics.subscribe('heartwire:client:connect', onConnect);
  const good = await connect({ host: HOST, port }).finally(() => diagnostics.unsubscribe('heartwire:client:connect', onConnect));
  cleanups.push(() => good.close());
  cleanups.push(release);
  const held = good.call('hold');
  held.catch(() => {});
  // The held call runs on the server before any bad input starts.
  await holding;
  const badPorts = new Set<number>();
  const track = (peer: RawPeer): RawPeer => {
    badPorts.add(peer.socket.localPort as number);
    cleanups.push(() => peer.socket.destroy());
    return peer;
  };
  const of = (peer: RawPeer): Job[] => jobs.filter((j) => j.port === peer.socket.localPort);
  return {
    server,
    port,
    events,
    good,
    goodPort: goodPort as number,
    held,
    jobs,
    badPorts,
    release,
    jobsOf: (peer, count) => jobWaiter.until(() => (of(peer).length >= count ? of(peer) : undefined), 'jobs', WAIT_MS),
    jobsSettled: (peer) => jobWaiter.until(() => (of(peer).every((j) => j.settled) ? of(peer) : undefined), 'settled jobs', WAIT_MS),
    raw: async () => track(await RawPeer.connect(port)),
    handshake: async (hello = {}) => {
      const peer = track(await RawPeer.connect(port));
      peer.send(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION], ...hello }));
      await peer.frame((f) => f.type === FrameType.WELCOME, WAIT_MS);
      return peer;
    },
  };
}

/**
 * The bad peers (and only they) were closed by the server; the good client's
 * call that was in flight all along completes, and a new call works.
 */
async function expectIsolated(b: Bench): Promise<void> {
  for (const port of b.badPorts) {
    await b.events.close((m) => m.remotePort === port, WAIT_MS);
  }
  expect(b.events.closes.filter((m) => m.remotePort === b.goodPort)).toEqual([]);
  expect(b.events.closes.every((m) => b.badPorts.has(m.remotePort as number))).toBe(true);
  expect(b.events.aborts.filter((m) => m.method === 'hold')).toEqual([]);
  b.release();
  await expect(b.held).resolves.toBe('held-ok');
  await expect(b.good.call('echo', { still: 'working' })).resolves.toEqual({ still: 'working' });
}

/** The peer gets one GOAWAY with `code`, nothing after it, and the server closes. */
async function expectGoAway(peer: RawPeer, code: string): Promise<GoAwayBody> {
  const frame = await peer.frame((f) => f.type === FrameType.GOAWAY, WAIT_MS);
  await peer.gone(WAIT_MS);
  expect(frame.stream).toBe(0);
  const body = decodeGoAway(codec, frame.payload);
  expect(body).toMatchObject({ code, message: expect.stringMatching(/\S/) });
  expect(peer.frames.at(-1)).toBe(frame);
  return body;
}

/** GOAWAY `code` on the wire, and on the server side a close whose reason carries the same code (the verdict keeps its code end to end). */
async function expectProtocolClose(b: Bench, peer: RawPeer, code: string): Promise<GoAwayBody> {
  const port = peer.socket.localPort;
  const body = await expectGoAway(peer, code);
  const closed = await b.events.close((m) => m.remotePort === port, WAIT_MS);
  expect(closed.reason?.code).toBe(code);
  expect((closed.reason?.cause as HeartwireError | undefined)?.code).toBe(code);
  return body;
}

const isFrame = (type: number, stream: number) => (f: Frame) => f.type === type && f.stream === stream;

/** The ERROR frame of call `id`. */
async function callError(peer: RawPeer, id: number): Promise<{ code: string; message: string }> {
  const frame = await peer.frame(isFrame(FrameType.ERROR, id), WAIT_MS);
  return decodeCallError(codec, frame.payload);
}

/** ACCEPTED then RESULT for call `id`; returns the decoded result. */
async function callResult(peer: RawPeer, id: number): Promise<unknown> {
  const result = await peer.frame((f) => f.stream === id && (f.type === FrameType.RESULT || f.type === FrameType.ERROR), WAIT_MS);
  expect(result.type, `call ${id} ended with ${result.type === FrameType.ERROR ? JSON.stringify(peer.decode(result)) : 'a frame'}`).toBe(
    FrameType.RESULT,
  );
  const accepted = peer.frames.findIndex(isFrame(FrameType.ACCEPTED, id));
  expect(accepted).toBeGreaterThanOrEqual(0);
  expect(accepted).toBeLessThan(peer.frames.indexOf(result));
  return peer.decode(result);
}

const stillOpen = (peer: RawPeer): void => {
  expect(peer.ended || peer.closed).toBe(false);
  expect(peer.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
};

/** A frame header announcing `length` bytes, with no payload. */
function header(type: number, stream: number, length: number, flags = 0): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_BYTES);
  out.writeUInt32BE(length, 0);
  out.writeUInt8(type, 4);
  out.writeUInt8(flags, 5);
  out.writeUInt32BE(stream, 6);
  return out;
}

const str = (s: string): Buffer => {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > 31) throw new Error('fixstr only');
  return Buffer.concat([Buffer.from([0xa0 | bytes.length]), bytes]);
};

/** Writes `bytes` one byte per write, each awaited, with Nagle off. */
async function writeBytewise(socket: net.Socket, bytes: Uint8Array): Promise<void> {
  socket.setNoDelay(true);
  for (let i = 0; i < bytes.length; i++) {
    await new Promise<void>((resolve, reject) => socket.write(bytes.subarray(i, i + 1), (err) => (err ? reject(err) : resolve())));
  }
}

const write = (socket: net.Socket, bytes: Uint8Array): Promise<void> =>
  new Promise((resolve, reject) => socket.write(bytes, (err) => (err ? reject(err) : resolve())));

// ---- a hand-made server, for the client side ------------------------------------

/** A TCP server that answers the client's HELLO with whatever `onHello` writes. */
async function fakeServer(onHello: (socket: net.Socket, hello: Frame) => void): Promise<{ port: number; hellos: Frame[] }> {
  const hellos: Frame[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    const decoder = new FrameDecoder({ maxPayloadBytes: 1 << 20 });
    socket.on('data', (chunk) => {
      decoder.push(chunk, (frame) => {
        if (frame.type !== FrameType.HELLO) return;
        const hello = { ...frame, payload: frame.payload.slice() };
        hellos.push(hello);
        onHello(socket, hello);
      });
    });
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, hellos };
}

// =================================================================================

describe('1. malformed frames', () => {
  it.each([
    ['a CALL', () => encodeFrame(FrameType.CALL, 1, codec.encode(['echo', 1]))],
    ['a PING', () => encodeFrame(FrameType.PING, 0, encodePingPayload(1))],
    ['a CANCEL', () => encodeFrame(FrameType.CANCEL, 1)],
    ['an unknown type (only ignored after the handshake)', () => encodeFrame(0x7f, 0, Buffer.from('hi'))],
  ])('a first frame that is %s, not HELLO: GOAWAY HW_ERR_PROTOCOL, then close', async (_name, bytes) => {
    const b = await bench();
    const peer = await b.raw();
    peer.sendRaw(bytes());
    const body = await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(body.message).toMatch(/HELLO/);
    expect(body.lastStream).toBe(0);
    expect(b.jobs).toEqual([]);
    await expectIsolated(b);
  });

  it('an HTTP request instead of frames: its first 4 bytes read as a huge length, GOAWAY HW_ERR_FRAME_TOO_LARGE, close', async () => {
    const b = await bench();
    const peer = await b.raw();
    peer.sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n', 'latin1'));
    const body = await expectProtocolClose(b, peer, 'HW_ERR_FRAME_TOO_LARGE');
    // "GET " = 0x47455420.
    expect(body.message).toContain(String(0x47455420));
    await expectIsolated(b);
  });

  it.each([
    ['HELLO payload that is not MessagePack (c1)', Buffer.from([0xc1])],
    ['HELLO payload that is empty', Buffer.alloc(0)],
    ['HELLO that is an array, not a map', codec.encode([1])],
    ['HELLO without versions', codec.encode({ heartbeatMs: 100 })],
    ['HELLO whose versions is a string', codec.encode({ versions: '1' })],
    ['HELLO whose versions hold a non-integer', codec.encode({ versions: [1.5] })],
    ['HELLO with a negative heartbeatMs', codec.encode({ versions: [1], heartbeatMs: -5 })],
    ['HELLO with maxFrameBytes 0', codec.encode({ versions: [1], maxFrameBytes: 0 })],
    // {"versions": array32 claiming 4 billion items}: refused by the decode limit, not allocated.
    ['HELLO whose versions array claims 4 billion items', Buffer.concat([Buffer.from([0x81]), str('versions'), Buffer.from('ddffffffff', 'hex')])],
    ['HELLO with trailing bytes after the map', Buffer.concat([codec.encode({ versions: [1] }), Buffer.from([0xc0])])],
  ])('%s: GOAWAY HW_ERR_PROTOCOL', async (_name, payload) => {
    const b = await bench();
    const peer = await b.raw();
    peer.send(FrameType.HELLO, 0, payload);
    await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(peer.frames.some((f) => f.type === FrameType.WELCOME)).toBe(false);
    await expectIsolated(b);
  });

  it.each([
    ['HELLO on stream 1 (as the first frame)', false, FrameType.HELLO, 1, () => codec.encode({ versions: [1] })],
    ['PING on stream 3', true, FrameType.PING, 3, () => encodePingPayload(1)],
    ['PONG on stream 3', true, FrameType.PONG, 3, () => encodePingPayload(1)],
    ['HALF_CLOSE on stream 2', true, FrameType.HALF_CLOSE, 2, () => new Uint8Array(0)],
  ])('a connection frame on a non-zero stream: %s → GOAWAY HW_ERR_PROTOCOL', async (_name, handshake, type, stream, payload) => {
    const b = await bench();
    const peer = handshake ? await b.handshake() : await b.raw();
    if (handshake) {
      peer.call(1, 'forever', null);
      await b.jobsOf(peer, 1);
    }
    peer.send(type, stream, payload());
    const body = await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(body.message).toMatch(/stream 0/);
    if (handshake) {
      const [job] = await b.jobsSettled(peer);
      expect((job?.signal.reason as HeartwireError).code).toBe('HW_ERR_PROTOCOL');
    }
    await expectIsolated(b);
  });

  it.each([
    ['CALL', FrameType.CALL, () => codec.encode(['echo', 1])],
    ['CANCEL', FrameType.CANCEL, () => new Uint8Array(0)],
  ])('a %s on stream 0 → GOAWAY HW_ERR_PROTOCOL', async (_name, type, payload) => {
    const b = await bench();
    const peer = await b.handshake();
    peer.send(type, 0, payload());
    const body = await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(body.message).toMatch(/non-zero stream/);
    await expectIsolated(b);
  });

  it.each([
    ['equal to', 5],
    ['below', 4],
  ])('a CALL whose id is %s the previous one → GOAWAY HW_ERR_PROTOCOL, lastStream the highest id', async (_name, second) => {
    const b = await bench();
    const peer = await b.handshake();
    peer.call(5, 'echo', 'first');
    expect(await callResult(peer, 5)).toBe('first');
    peer.call(second, 'echo', 'again');
    const body = await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(body.lastStream).toBe(5);
    // The second CALL was never accepted.
    expect(peer.frames.filter((f) => f.type === FrameType.ACCEPTED).map((f) => f.stream)).toEqual([5]);
    await expectIsolated(b);
  });

  it.each([
    ['RESULT', FrameType.RESULT, 1, codec.encode('x')],
    ['ERROR', FrameType.ERROR, 1, codec.encode(['HW_ERR_HANDLER', 'x'])],
    ['ACCEPTED', FrameType.ACCEPTED, 1, new Uint8Array(0)],
    ['PROGRESS', FrameType.PROGRESS, 1, codec.encode(1)],
    ['WELCOME', FrameType.WELCOME, 0, codec.encode({ version: 1 })],
  ])('a server-only frame from a client (%s) → GOAWAY HW_ERR_PROTOCOL', async (_name, type, stream, payload) => {
    const b = await bench();
    const peer = await b.handshake();
    peer.send(type, stream, payload);
    const body = await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(body.message).toMatch(/a server never receives frame type/);
    await expectIsolated(b);
  });

  it('a client may close with GOAWAY (PROTOCOL.md §2): its running job aborts HW_ERR_PEER_CLOSED, and the server closes without a GOAWAY of its own', async () => {
    const b = await bench();
    const peer = await b.handshake();
    peer.call(1, 'forever', null);
    await b.jobsOf(peer, 1);
    peer.send(FrameType.GOAWAY, 0, codec.encode(['HW_ERR_PROTOCOL', 'the server sent a frame I do not understand', 0]));
    const [job] = await b.jobsSettled(peer);
    expect(job?.signal.reason).toMatchObject({ code: 'HW_ERR_PEER_CLOSED', message: expect.stringContaining('HW_ERR_PROTOCOL') });
    await peer.gone(WAIT_MS);
    expect(peer.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
    await expectIsolated(b);
  });

  it.each([
    ['PONG with 3 bytes', FrameType.PONG, Buffer.from([0, 0, 1])],
    ['PONG with 5 bytes', FrameType.PONG, Buffer.from([0, 0, 0, 1, 0])],
    ['PONG with no payload', FrameType.PONG, Buffer.alloc(0)],
    ['PING with 8 bytes', FrameType.PING, Buffer.alloc(8)],
  ])('%s → GOAWAY HW_ERR_PROTOCOL', async (_name, type, payload) => {
    const b = await bench();
    const peer = await b.handshake();
    // Control: a well-formed PING from the client is answered with the same 4 bytes.
    peer.send(FrameType.PING, 0, encodePingPayload(7));
    const pong = await peer.frame((f) => f.type === FrameType.PONG, WAIT_MS);
    expect(Buffer.from(pong.payload)).toEqual(Buffer.from(encodePingPayload(7)));
    peer.send(type, 0, payload);
    const body = await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(body.message).toMatch(/4 payload bytes/);
    await expectIsolated(b);
  });

  it('a PONG for a heartbeat never sent (no call in flight) → GOAWAY HW_ERR_PROTOCOL', async () => {
    const b = await bench();
    const peer = await b.handshake();
    peer.send(FrameType.PONG, 0, encodePingPayload(1));
    const body = await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(body.message).toMatch(/never sent/);
    await expectIsolated(b);
  });

  it('a PONG for a sequence number ahead of the PINGs sent → GOAWAY HW_ERR_PROTOCOL, and the running call aborts', async () => {
    const b = await bench({ heartbeatMs: 50, minHeartbeatMs: 10 });
    const peer = await b.handshake();
    peer.call(1, 'forever', null);
    const ping = await peer.frame((f) => f.type === FrameType.PING, WAIT_MS);
    const seq = Buffer.from(ping.payload).readUInt32BE(0);
    expect(seq).toBe(1);
    // The honest answer is fine...
    peer.send(FrameType.PONG, 0, ping.payload);
    // ...an answer to a PING that was never sent is not.
    peer.send(FrameType.PONG, 0, encodePingPayload(seq + 5));
    await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    const abort = await b.events.abort((m) => m.remotePort === peer.socket.localPort, WAIT_MS);
    expect(abort.reason.code).toBe('HW_ERR_PROTOCOL');
    await expectIsolated(b);
  });
});

describe('2. unknown protocol version', () => {
  it('HELLO {versions:[99]} → GOAWAY HW_ERR_UNSUPPORTED_VERSION, then close', async () => {
    const b = await bench();
    const peer = await b.raw();
    peer.send(FrameType.HELLO, 0, codec.encode({ versions: [99] }));
    const body = await expectProtocolClose(b, peer, 'HW_ERR_UNSUPPORTED_VERSION');
    expect(body.message).toMatch(/99/);
    await expectIsolated(b);
  });

  it('HELLO {versions:[]} → GOAWAY HW_ERR_UNSUPPORTED_VERSION', async () => {
    const b = await bench();
    const peer = await b.raw();
    peer.send(FrameType.HELLO, 0, codec.encode({ versions: [] }));
    await expectProtocolClose(b, peer, 'HW_ERR_UNSUPPORTED_VERSION');
    await expectIsolated(b);
  });

  it('HELLO {versions:[99, 1]} with unknown keys negotiates version 1 (unknown keys ignored)', async () => {
    const b = await bench();
    const peer = await b.raw();
    peer.send(FrameType.HELLO, 0, codec.encode({ versions: [99, 1], future: { x: 1 } }));
    const welcome = decodeWelcome(codec, (await peer.frame((f) => f.type === FrameType.WELCOME, WAIT_MS)).payload);
    expect(welcome.version).toBe(1);
    peer.call(1, 'echo', 'ok');
    expect(await callResult(peer, 1)).toBe('ok');
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('the real client: a server answering HELLO with GOAWAY HW_ERR_UNSUPPORTED_VERSION → connect rejects with that code', async () => {
    const fake = await fakeServer((socket) => {
      socket.end(
        encodeFrame(
          FrameType.GOAWAY,
          0,
          encodeGoAway(codec, { code: 'HW_ERR_UNSUPPORTED_VERSION', message: 'I only speak version 7', lastStream: 0 }),
        ),
      );
    });
    const err = await connect({ host: HOST, port: fake.port }).then(
      () => expect.unreachable('connect resolved'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'HW_ERR_UNSUPPORTED_VERSION', message: expect.stringContaining('I only speak version 7') });
    // What the client offered.
    expect(fake.hellos).toHaveLength(1);
    expect(decodeHello(codec, (fake.hellos[0] as Frame).payload).versions).toEqual([PROTOCOL_VERSION]);
  });

  it('the real client: a WELCOME with a version it did not offer → connect rejects HW_ERR_UNSUPPORTED_VERSION', async () => {
    const fake = await fakeServer((socket) => {
      socket.write(
        encodeFrame(
          FrameType.WELCOME,
          0,
          encodeWelcome(codec, { version: 2, heartbeatMs: 1000, silentMs: 3000, maxFrameBytes: 1 << 20, maxCalls: 10 }),
        ),
      );
    });
    const err = await connect({ host: HOST, port: fake.port }).then(
      () => expect.unreachable('connect resolved'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'HW_ERR_UNSUPPORTED_VERSION' });
  });

  it('the real client: a "server" answering with HTTP → connect rejects HW_ERR_FRAME_TOO_LARGE', async () => {
    const fake = await fakeServer((socket) => {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    });
    const err = await connect({ host: HOST, port: fake.port }).then(
      () => expect.unreachable('connect resolved'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'HW_ERR_FRAME_TOO_LARGE' });
  });
});

describe('3. oversize frames', () => {
  it('maxFrameBytes 1024: a header announcing 1025 bytes → GOAWAY HW_ERR_FRAME_TOO_LARGE before any payload byte is sent', async () => {
    const b = await bench({ maxFrameBytes: 1024 });
    const peer = await b.handshake();
    peer.call(1, 'forever', null);
    await b.jobsOf(peer, 1);
    peer.sendRaw(header(FrameType.CALL, 2, 1025));
    const body = await expectProtocolClose(b, peer, 'HW_ERR_FRAME_TOO_LARGE');
    expect(body.message).toMatch(/1025/);
    expect(body.message).toMatch(/1024/);
    const [job] = await b.jobsSettled(peer);
    // The verdict keeps its code end to end: the job hears what the GOAWAY said.
    expect((job?.signal.reason as HeartwireError).code).toBe('HW_ERR_FRAME_TOO_LARGE');
    await expectIsolated(b);
  });

  it('before the handshake the limit is 64 KiB, whatever maxFrameBytes (PROTOCOL.md §1): a header announcing 65537 bytes → GOAWAY HW_ERR_FRAME_TOO_LARGE', async () => {
    const b = await bench({ maxFrameBytes: 1024 });
    const peer = await b.raw();
    peer.sendRaw(header(FrameType.HELLO, 0, 64 * 1024 + 1));
    await expectProtocolClose(b, peer, 'HW_ERR_FRAME_TOO_LARGE');
    await expectIsolated(b);
  });

  it('maxFrameBytes 1024: a HELLO of 2,999 bytes (a large auth token) is accepted: the pre-handshake limit is 64 KiB', async () => {
    const b = await bench({ maxFrameBytes: 1024 });
    let n = 0;
    while (codec.encode({ versions: [PROTOCOL_VERSION], auth: 'a'.repeat(n) }).byteLength < 2999) n++;
    const hello = codec.encode({ versions: [PROTOCOL_VERSION], auth: 'a'.repeat(n) });
    expect(hello.byteLength).toBe(2999);
    const peer = await b.raw();
    peer.send(FrameType.HELLO, 0, hello);
    const welcome = await peer.frame((f) => f.type === FrameType.WELCOME, WAIT_MS);
    expect(decodeWelcome(codec, welcome.payload).maxFrameBytes).toBe(1024);
    peer.call(1, 'echo', 'after');
    expect(await callResult(peer, 1)).toBe('after');
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('maxFrameBytes 1024: a payload of exactly 1024 bytes is accepted (raw and real client)', async () => {
    const b = await bench({ maxFrameBytes: 1024 });
    let n = 0;
    while (codec.encode(['echo', 'y'.repeat(n)]).byteLength < 1024) n++;
    expect(codec.encode(['echo', 'y'.repeat(n)]).byteLength).toBe(1024);
    const peer = await b.handshake();
    peer.call(1, 'echo', 'y'.repeat(n));
    expect(await callResult(peer, 1)).toBe('y'.repeat(n));
    await expect(b.good.call('echo', 'y'.repeat(n))).resolves.toBe('y'.repeat(n));
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('the real client: params over the server\'s maxFrameBytes reject locally with HW_ERR_PAYLOAD_TOO_LARGE; the connection stays usable', async () => {
    const b = await bench({ maxFrameBytes: 1024 });
    expect(b.good.welcome?.maxFrameBytes).toBe(1024);
    const err = await b.good.call('echo', 'z'.repeat(2000)).then(
      () => expect.unreachable('call resolved'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HeartwireError);
    expect(err).toMatchObject({ code: 'HW_ERR_PAYLOAD_TOO_LARGE', message: expect.stringMatching(/1024/) });
    // Nothing reached the server: no connection closed, no call started.
    expect(b.events.closes).toEqual([]);
    await expectIsolated(b);
  });
});

describe('4. undecodable CALL payloads', () => {
  const echo = str('echo');
  it.each([
    ['not MessagePack (c1)', Buffer.from([0xc1])],
    ['empty', Buffer.alloc(0)],
    ['a truncated array', Buffer.concat([Buffer.from([0x92]), echo])],
    ['a string, not an array', codec.encode('echo')],
    ['a map, not an array', codec.encode({ method: 'echo', params: 1 })],
    ['a one-element array', codec.encode(['echo'])],
    ['a three-element array', codec.encode(['echo', 1, 2])],
    ['a method that is a number', codec.encode([42, 1])],
    ['an empty method name', codec.encode(['', 1])],
    ['a method name over maxMethodLength (256)', codec.encode(['m'.repeat(257), 1])],
    ['trailing bytes after [method, params]', Buffer.concat([codec.encode(['echo', 1]), Buffer.from([0x01])])],
    ['params: an array claiming 4 billion items', Buffer.concat([Buffer.from([0x92]), echo, Buffer.from('ddffffffff', 'hex')])],
    ['params: a string claiming 4 GiB', Buffer.concat([Buffer.from([0x92]), echo, Buffer.from('dbffffffff', 'hex')])],
    ['params: a map claiming 4 billion entries', Buffer.concat([Buffer.from([0x92]), echo, Buffer.from('dfffffffff', 'hex')])],
    ['params: a string of 100 bytes with 3 present', Buffer.concat([Buffer.from([0x92]), echo, Buffer.from('d964616263', 'hex')])],
    ['params: a map with a non-string, non-number key', Buffer.concat([Buffer.from([0x92]), echo, Buffer.from('8191c0c3', 'hex')])],
  ])('%s → ERROR HW_ERR_BAD_PAYLOAD for that call; the connection stays open', async (_name, payload) => {
    const b = await bench();
    const peer = await b.handshake();
    peer.send(FrameType.CALL, 1, payload);
    const error = await callError(peer, 1);
    expect(error.code).toBe('HW_ERR_BAD_PAYLOAD');
    expect(error.message).toMatch(/\S/);
    // Refused at once: no early header for it, no handler ran.
    expect(peer.frames.some(isFrame(FrameType.ACCEPTED, 1))).toBe(false);
    peer.call(2, 'echo', { after: 'bad' });
    expect(await callResult(peer, 2)).toEqual({ after: 'bad' });
    stillOpen(peer);
    expect(b.events.closes).toEqual([]);
    b.badPorts.clear();
    await expectIsolated(b);
  });
});

describe('5. unknown methods', () => {
  it('raw: CALL of an unknown method → ERROR HW_ERR_UNKNOWN_METHOD naming it; the connection stays open', async () => {
    const b = await bench();
    const peer = await b.handshake();
    peer.call(1, 'nope', null);
    expect(await callError(peer, 1)).toEqual({ code: 'HW_ERR_UNKNOWN_METHOD', message: expect.stringContaining('"nope"') });
    expect(peer.frames.some(isFrame(FrameType.ACCEPTED, 1))).toBe(false);
    peer.call(2, 'echo', 2);
    expect(await callResult(peer, 2)).toBe(2);
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it.each(['nope', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'])(
    'real client: method %j → RemoteError HW_ERR_UNKNOWN_METHOD',
    async (method) => {
      const b = await bench();
      const err = await b.good.call(method, null).then(
        () => expect.unreachable('call resolved'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RemoteError);
      expect(err).toMatchObject({ code: 'HW_ERR_UNKNOWN_METHOD', message: expect.stringContaining(method) });
      await expectIsolated(b);
    },
  );
});

describe('6. failing handlers', () => {
  it.each([
    ['throws synchronously', 'HW_ERR_HANDLER', 'throwSync', 'sync boom'],
    ['rejects', 'HW_ERR_HANDLER', 'reject', 'async boom'],
    ['throws a string', 'HW_ERR_HANDLER', 'throwString', 'plain string'],
    ['returns a function', 'HW_ERR_ENCODE', 'returnFunction', undefined],
    ['returns a symbol', 'HW_ERR_ENCODE', 'returnSymbol', undefined],
    ['returns a cyclic object', 'HW_ERR_ENCODE', 'returnCyclic', undefined],
    ['returns a bigint past 64 bits', 'HW_ERR_ENCODE', 'returnBigint', undefined],
    ['resolves to a function', 'HW_ERR_ENCODE', 'resolveFunction', undefined],
  ])('a handler that %s → ERROR %s; no unhandled rejection', async (_name, code, method, message) => {
    const b = await bench();
    // Through the real client...
    const err = await b.good.call(method).then(
      () => expect.unreachable('call resolved'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RemoteError);
    expect(err).toMatchObject({ code });
    if (message !== undefined) expect((err as Error).message).toBe(message);
    // ...and on the wire.
    const peer = await b.handshake();
    peer.call(1, method, null);
    const error = await callError(peer, 1);
    expect(error.code).toBe(code);
    if (message !== undefined) expect(error.message).toBe(message);
    else expect(error.message).toMatch(/cannot be encoded/);
    peer.call(2, 'echo', 'next');
    expect(await callResult(peer, 2)).toBe('next');
    stillOpen(peer);
    b.badPorts.clear();
    await nextTurn();
    expect(faults).toEqual([]);
    await expectIsolated(b);
  });

  // Regression: a thrown value that is not an Error (even one that cannot become a string), or a
  // returned thenable whose then() throws, must end the call with HW_ERR_HANDLER and never escape
  // the socket listener as an uncaught exception or unhandled rejection.
  it.each([
    ['throws an object with a null prototype', 'throwNullProto'],
    ['rejects with an object with a null prototype', 'rejectNullProto'],
    ['returns a thenable whose then() throws', 'badThenable'],
  ])('a handler that %s → ERROR HW_ERR_HANDLER, no process fault', async (_name, method) => {
    const b = await bench();
    const peer = await b.handshake();
    let answer: Frame | undefined;
    const seen = await isolatingProcessFaults(async () => {
      peer.call(1, method, null);
      const error = peer.frame((f) => f.stream === 1 && f.type === FrameType.ERROR, 2000).then((f) => {
        answer = f;
      });
      error.catch(() => {});
      await Promise.race([error, faultWaiter.until(() => (faults.length > 0 ? true : undefined), 'process fault', 2000)]);
    });
    expect(seen).toEqual([]);
    expect(answer).toBeDefined();
    expect(decodeCallError(codec, (answer as Frame).payload).code).toBe('HW_ERR_HANDLER');
  });

  // Regression: ERROR frames are held to the client's maxFrameBytes like RESULT (PROTOCOL.md
  // section 1): a long handler message is cut to fit, and fails that call only.
  it('a handler error message longer than the client\'s maxFrameBytes fails that call only', async () => {
    const b = await bench();
    const client = await connect({ host: HOST, port: b.port, maxFrameBytes: 1024 });
    cleanups.push(() => client.close());
    const err = await client.call('throwLong').then(
      () => expect.unreachable('call resolved'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RemoteError);
    await expect(client.call('echo', 'after')).resolves.toBe('after');
  });
});

describe('7. too many calls', () => {
  it('maxCallsPerConnection 2: a third CALL is refused alone with ERROR HW_ERR_TOO_MANY_CALLS; the two running go on', async () => {
    const b = await bench({ maxCallsPerConnection: 2 });
    const peer = await b.handshake();
    peer.call(1, 'forever', null);
    peer.call(2, 'forever', null);
    await b.jobsOf(peer, 2);
    await peer.frame(isFrame(FrameType.ACCEPTED, 2), WAIT_MS);
    peer.call(3, 'forever', null);
    // PROTOCOL.md §4: the call is refused, never run, so the client may send it again once a slot frees.
    const error = await peer.frame(isFrame(FrameType.ERROR, 3), WAIT_MS);
    expect(decodeCallError(codec, error.payload).code).toBe('HW_ERR_TOO_MANY_CALLS');
    expect(peer.frames.some(isFrame(FrameType.ACCEPTED, 3))).toBe(false);
    const jobs = await b.jobsOf(peer, 2);
    expect(jobs.map((j) => j.id).sort()).toEqual([1, 2]);
    expect(jobs.every((j) => !j.signal.aborted)).toBe(true);
    // A slot freed: the next call runs.
    peer.send(FrameType.CANCEL, 1);
    peer.call(4, 'echo', 'four');
    expect(await callResult(peer, 4)).toBe('four');
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('maxCallsPerConnection 2: three CALLs in one write → the first two run, the third gets ERROR HW_ERR_TOO_MANY_CALLS', async () => {
    const b = await bench({ maxCallsPerConnection: 2 });
    const peer = await b.handshake();
    peer.sendRaw(
      Buffer.concat([1, 2, 3].map((id) => encodeFrame(FrameType.CALL, id, codec.encode(['forever', null])))),
    );
    const error = await peer.frame(isFrame(FrameType.ERROR, 3), WAIT_MS);
    expect(decodeCallError(codec, error.payload).code).toBe('HW_ERR_TOO_MANY_CALLS');
    const jobs = await b.jobsOf(peer, 2);
    expect(jobs.map((j) => j.id).sort()).toEqual([1, 2]);
    expect(jobs.every((j) => !j.signal.aborted)).toBe(true);
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('the real client with maxCallsPerConnection 2: 5 concurrent calls all complete, never more than 2 on the server', async () => {
    const b = await bench({ maxCallsPerConnection: 2 });
    let running = 0;
    let most = 0;
    let opened!: () => void;
    const twoRunning = new Promise<void>((resolve) => {
      opened = resolve;
    });
    b.server.handle('pair', async (n: number) => {
      running++;
      most = Math.max(most, running);
      if (running === 2) opened();
      // Held until two calls run at once: proves the client uses both slots.
      await twoRunning;
      running--;
      return n * 2;
    });
    const client = await connect({ host: HOST, port: b.port });
    cleanups.push(() => client.close());
    expect(client.welcome?.maxCalls).toBe(2);
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => client.call('pair', n)));
    expect(results).toEqual([2, 4, 6, 8, 10]);
    expect(most).toBe(2);
    await expect(client.call('echo', 'more')).resolves.toBe('more');
    expect(b.events.closes).toEqual([]);
    await expectIsolated(b);
  });
});

describe('8. handshake deadline', () => {
  it('handshakeTimeoutMs 300: a connection that sends nothing → GOAWAY HW_ERR_HANDSHAKE_TIMEOUT, then close', async () => {
    const b = await bench({ handshakeTimeoutMs: 300 });
    const started = performance.now();
    const peer = await b.raw();
    await expectProtocolClose(b, peer, 'HW_ERR_HANDSHAKE_TIMEOUT');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    await expectIsolated(b);
  });

  it('handshakeTimeoutMs 300: a HELLO dribbled one byte per 50 ms is cut before it completes; a prompt HELLO is not', async () => {
    const b = await bench({ handshakeTimeoutMs: 300 });
    const prompt = await b.handshake();
    const peer = await b.raw();
    const hello = encodeFrame(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION], padding: 'p'.repeat(16) }));
    let sent = 0;
    const dribble = (async () => {
      peer.socket.setNoDelay(true);
      for (const byte of hello) {
        if (peer.ended || peer.closed) return;
        await new Promise<void>((resolve) => peer.socket.write(Buffer.from([byte]), () => resolve()));
        sent++;
        // Input pacing, not a wait for an outcome.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    await expectProtocolClose(b, peer, 'HW_ERR_HANDSHAKE_TIMEOUT');
    await dribble;
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(hello.length);
    expect(peer.frames.some((f) => f.type === FrameType.WELCOME)).toBe(false);
    // The peer that said HELLO in time is past the deadline and still served.
    prompt.call(1, 'echo', 'in time');
    expect(await callResult(prompt, 1)).toBe('in time');
    stillOpen(prompt);
    b.badPorts.delete(prompt.socket.localPort as number);
    await expectIsolated(b);
  });
});

describe('9. forward compatibility', () => {
  it('unknown frame types after the handshake, on any stream, are skipped; the next CALL works', async () => {
    const b = await bench();
    const peer = await b.handshake();
    peer.send(0x7f, 0, Buffer.from('some future payload'));
    // An unknown frame on a high stream id must not count as a call id either.
    peer.send(0x7f, 9, codec.encode({ future: [1, 2, 3] }));
    peer.send(0x20, 0);
    peer.send(0xff, 4, Buffer.alloc(300, 0xc1));
    peer.call(1, 'echo', 'after unknown frames');
    expect(await callResult(peer, 1)).toBe('after unknown frames');
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('unknown flag bits on HELLO, CALL and PING are ignored', async () => {
    const b = await bench();
    const peer = await b.raw();
    peer.sendRaw(encodeFrame(FrameType.HELLO, 0, codec.encode({ versions: [1] }), 0xff));
    await peer.frame((f) => f.type === FrameType.WELCOME, WAIT_MS);
    peer.sendRaw(encodeFrame(FrameType.CALL, 1, codec.encode(['echo', 'flags']), 0xff));
    expect(await callResult(peer, 1)).toBe('flags');
    peer.sendRaw(encodeFrame(FrameType.CALL, 2, codec.encode(['echo', 'flag 1']), 0x01));
    expect(await callResult(peer, 2)).toBe('flag 1');
    peer.sendRaw(encodeFrame(FrameType.PING, 0, encodePingPayload(3), 0x80));
    await peer.frame((f) => f.type === FrameType.PONG, WAIT_MS);
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });
});

describe('10. split and coalesced frames', () => {
  it('HELLO and CALLs written one byte per write (Nagle off) work end to end', async () => {
    const b = await bench();
    const peer = await b.raw();
    await writeBytewise(peer.socket, encodeFrame(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION] })));
    await peer.frame((f) => f.type === FrameType.WELCOME, WAIT_MS);
    const big = { text: 'b'.repeat(300), list: [1, 2, 3] };
    await writeBytewise(peer.socket, encodeFrame(FrameType.CALL, 1, codec.encode(['echo', big])));
    expect(await callResult(peer, 1)).toEqual(big);
    // A zero-length frame (unknown type) split bytewise, then a second call.
    await writeBytewise(peer.socket, encodeFrame(0x7e, 0));
    await writeBytewise(peer.socket, encodeFrame(FrameType.CALL, 2, codec.encode(['echo', null])));
    expect(await callResult(peer, 2)).toBe(null);
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('a frame split at every offset of its header and payload, the rest glued to the next frame', async () => {
    const b = await bench();
    const peer = await b.handshake();
    peer.socket.setNoDelay(true);
    const frameOf = (id: number): Buffer => Buffer.from(encodeFrame(FrameType.CALL, id, codec.encode(['echo', id])));
    const length = frameOf(1).length;
    let id = 1;
    for (let cut = 1; cut < length; cut++) {
      const first = frameOf(id);
      const second = frameOf(id + 1);
      await write(peer.socket, first.subarray(0, cut));
      await write(peer.socket, Buffer.concat([first.subarray(cut), second]));
      expect(await callResult(peer, id)).toBe(id);
      expect(await callResult(peer, id + 1)).toBe(id + 1);
      id += 2;
    }
    // Many frames in one write.
    peer.sendRaw(Buffer.concat(Array.from({ length: 20 }, (_, i) => frameOf(id + i))));
    for (let i = 0; i < 20; i++) expect(await callResult(peer, id + i)).toBe(id + i);
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });
});

describe('11. option validation', () => {
  const check = (err: unknown, name: RegExp): void => {
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect(err).toBeInstanceOf(HeartwireError);
    expect(err).toMatchObject({ code: 'HW_ERR_INVALID_OPTION', message: expect.stringMatching(name) });
  };

  it.each([
    ['{heartbeatMs: 0}', { heartbeatMs: 0 }, /heartbeatMs/],
    ['{heartbeatMs: 1.5}', { heartbeatMs: 1.5 }, /heartbeatMs/],
    ["{heartbeatMs: '1000'}", { heartbeatMs: '1000' }, /heartbeatMs/],
    ["{silentMs: 'x'}", { silentMs: 'x' }, /silentMs/],
    ['{silentMs: NaN}', { silentMs: NaN }, /silentMs/],
    ['{stallMs: -1}', { stallMs: -1 }, /stallMs/],
    ['{maxFrameBytes: -1}', { maxFrameBytes: -1 }, /maxFrameBytes/],
    ['{maxFrameBytes: 2 ** 32}', { maxFrameBytes: 2 ** 32 }, /maxFrameBytes/],
    ['{maxFrameBytes: Infinity}', { maxFrameBytes: Infinity }, /maxFrameBytes/],
    ['{maxCallsPerConnection: 0}', { maxCallsPerConnection: 0 }, /maxCallsPerConnection/],
    ['{maxMethodLength: null}', { maxMethodLength: null }, /maxMethodLength/],
    ['{handshakeTimeoutMs: -300}', { handshakeTimeoutMs: -300 }, /handshakeTimeoutMs/],
    ['{minHeartbeatMs: 5000} (above heartbeatMs)', { minHeartbeatMs: 5000 }, /minHeartbeatMs/],
    ['{codec: {maxDepth: 0}}', { codec: { maxDepth: 0 } }, /codec\.maxDepth/],
    ["{codec: {maxStrLength: 'big'}}", { codec: { maxStrLength: 'big' } }, /codec\.maxStrLength/],
    ['null', null, /options/],
    ["'fast'", 'fast', /options/],
  ])('createServer(%s) throws InvalidOptionError naming the option', (_label, options, name) => {
    let err: unknown;
    try {
      createServer(options as ServerOptions);
    } catch (e) {
      err = e;
    }
    check(err, name);
  });

  it.each([
    ['{port: 0}', { port: 0 }, /port/],
    ['{port: 65536}', { port: 65536 }, /port/],
    ["{port: '80'}", { port: '80' }, /port/],
    ['{port: 1.5}', { port: 1.5 }, /port/],
    ['{} (no port)', {}, /port/],
    ["{host: ''}", { port: 1, host: '' }, /host/],
    ['{host: 42}', { port: 1, host: 42 }, /host/],
    ['{heartbeatMs: 0}', { port: 1, heartbeatMs: 0 }, /heartbeatMs/],
    ['{serverSilentMs: -1}', { port: 1, serverSilentMs: -1 }, /serverSilentMs/],
    ["{stallMs: 'x'}", { port: 1, stallMs: 'x' }, /stallMs/],
    ['{maxFrameBytes: 10}', { port: 1, maxFrameBytes: 10 }, /maxFrameBytes/],
    ['{connectTimeoutMs: 0}', { port: 1, connectTimeoutMs: 0 }, /connectTimeoutMs/],
    ['{signal: {}}', { port: 1, signal: {} }, /signal/],
    ['{codec: {maxArrayLength: -1}}', { port: 1, codec: { maxArrayLength: -1 } }, /codec\.maxArrayLength/],
    ['null', null, /options/],
    ['undefined', undefined, /options/],
  ])('connect(%s) rejects (never throws) with InvalidOptionError naming the option', async (_label, options, name) => {
    let promise: Promise<unknown> | undefined;
    expect(() => {
      promise = connect(options as never);
    }).not.toThrow();
    check(await (promise as Promise<unknown>).then(() => expect.unreachable('connect resolved'), (e: unknown) => e), name);
  });

  // Regression: `codec: null` once fell through the `= {}` default and threw a bare TypeError.
  it('createServer({codec: null}) throws InvalidOptionError naming codec', () => {
    let err: unknown;
    try {
      createServer({ codec: null } as unknown as ServerOptions);
    } catch (e) {
      err = e;
    }
    check(err, /codec/);
  });

  it('connect({port: 1, codec: null}) rejects with InvalidOptionError naming codec', async () => {
    const err = await connect({ port: 1, codec: null } as never).then(
      () => expect.unreachable('connect resolved'),
      (e: unknown) => e,
    );
    check(err, /codec/);
  });

  it('server.handle: a second handler for one method throws, and the first stays in force', async () => {
    const b = await bench();
    let err: unknown;
    try {
      b.server.handle('echo', () => 'impostor');
    } catch (e) {
      err = e;
    }
    check(err, /echo/);
    expect(() => b.server.handle('', () => 1)).toThrow(InvalidOptionError);
    expect(() => b.server.handle('m'.repeat(257), () => 1)).toThrow(InvalidOptionError);
    // 129 characters, 258 bytes of UTF-8: the limit counts bytes, as on the wire.
    expect(() => b.server.handle('é'.repeat(129), () => 1)).toThrow(/1 to 256 UTF-8 bytes/);
    expect(() => b.server.handle('notAFunction', 'nope' as never)).toThrow(InvalidOptionError);
    await expect(b.good.call('echo', 'original')).resolves.toBe('original');
    await expect(b.good.call('notAFunction')).rejects.toMatchObject({ code: 'HW_ERR_UNKNOWN_METHOD' });
    await expectIsolated(b);
  });

  // Regression: the smallest client maxFrameBytes must still fit a default server's WELCOME
  // (66 bytes, PROTOCOL.md's "welcome" vector): the minimum is 1024, and 64 is refused.
  it('client maxFrameBytes: 64 is refused; the minimum, 1024, completes a handshake with a default server', async () => {
    const b = await bench();
    await expect(connect({ host: HOST, port: b.port, maxFrameBytes: 64 })).rejects.toMatchObject({
      code: 'HW_ERR_INVALID_OPTION',
      message: expect.stringContaining('maxFrameBytes'),
    });
    const client = await connect({ host: HOST, port: b.port, maxFrameBytes: 1024 });
    cleanups.push(() => client.close());
    await expect(client.call('echo', 1)).resolves.toBe(1);
  });
});

describe('12. CANCEL and HELLO out of place', () => {
  it.each([
    ['a CANCEL for a call id never used', FrameType.CANCEL, 42, new Uint8Array(0), /never used/],
    ['a CANCEL with a payload', FrameType.CANCEL, 1, codec.encode('extra'), /must carry 0 payload bytes/],
    ['a HALF_CLOSE with a payload', FrameType.HALF_CLOSE, 0, new Uint8Array([0xc0]), /must carry 0 payload bytes/],
  ])('%s → GOAWAY HW_ERR_PROTOCOL (PROTOCOL.md §2, §4)', async (_name, type, stream, payload, message) => {
    const b = await bench();
    const peer = await b.handshake();
    peer.send(type, stream, payload);
    const body = await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(body.message).toMatch(message);
    await expectIsolated(b);
  });

  it('a CANCEL for a finished call is ignored (it crossed the call\'s end on the wire); the connection and its calls go on', async () => {
    const b = await bench();
    const peer = await b.handshake();
    peer.call(1, 'echo', 'one');
    expect(await callResult(peer, 1)).toBe('one');
    peer.send(FrameType.CANCEL, 1);
    peer.send(FrameType.CANCEL, 1);
    peer.call(2, 'forever', null);
    await b.jobsOf(peer, 1);
    peer.call(3, 'echo', 'three');
    expect(await callResult(peer, 3)).toBe('three');
    // Control: a CANCEL of the running call stops its job with HW_ERR_CANCELLED, nothing else.
    peer.send(FrameType.CANCEL, 2);
    const [job] = await b.jobsSettled(peer);
    expect((job?.signal.reason as HeartwireError).code).toBe('HW_ERR_CANCELLED');
    peer.call(4, 'echo', 'four');
    expect(await callResult(peer, 4)).toBe('four');
    expect(peer.frames.some((f) => f.stream === 2 && f.type !== FrameType.ACCEPTED)).toBe(false);
    stillOpen(peer);
    expect(b.events.closes).toEqual([]);
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('a second HELLO after the handshake → GOAWAY HW_ERR_PROTOCOL; the running call aborts', async () => {
    const b = await bench();
    const peer = await b.handshake();
    peer.call(1, 'forever', null);
    await b.jobsOf(peer, 1);
    peer.send(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION] }));
    const body = await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(body.lastStream).toBe(1);
    expect(peer.frames.filter((f) => f.type === FrameType.WELCOME)).toHaveLength(1);
    const [job] = await b.jobsSettled(peer);
    expect((job?.signal.reason as HeartwireError).code).toBe('HW_ERR_PROTOCOL');
    await expectIsolated(b);
  });
});

describe('13. prototype pollution', () => {
  const proto = str('__proto__');
  const polluted = Buffer.concat([Buffer.from([0x81]), str('polluted'), Buffer.from([0xc3])]);

  it.each([
    ['params {"__proto__": {"polluted": true}}', Buffer.concat([Buffer.from([0x92]), str('echo'), Buffer.from([0x81]), proto, polluted])],
    [
      'params {"a": {"__proto__": {"polluted": true}}} (nested)',
      Buffer.concat([Buffer.from([0x92]), str('echo'), Buffer.from([0x81]), str('a'), Buffer.from([0x81]), proto, polluted]),
    ],
    [
      'params [{"__proto__": {"polluted": true}}] (in an array)',
      Buffer.concat([Buffer.from([0x92]), str('echo'), Buffer.from([0x91, 0x81]), proto, polluted]),
    ],
  ])('%s → ERROR HW_ERR_BAD_PAYLOAD; nothing polluted', async (_name, payload) => {
    const b = await bench();
    const peer = await b.handshake();
    peer.send(FrameType.CALL, 1, payload);
    expect((await callError(peer, 1)).code).toBe('HW_ERR_BAD_PAYLOAD');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    peer.call(2, 'echo', 'clean');
    expect(await callResult(peer, 2)).toBe('clean');
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('params {"constructor": {"prototype": {"polluted": true}}} → ERROR HW_ERR_BAD_PAYLOAD; a lone "constructor" key is plain data', async () => {
    const b = await bench();
    let seen: unknown;
    b.server.handle('inspect', (params: Record<string, unknown>) => {
      seen = params;
      return Object.getPrototypeOf(params) === Object.prototype;
    });
    const peer = await b.handshake();
    const payload = Buffer.concat([
      Buffer.from([0x92]),
      str('inspect'),
      Buffer.from([0x81]),
      str('constructor'),
      Buffer.from([0x81]),
      str('prototype'),
      polluted,
    ]);
    peer.send(FrameType.CALL, 1, payload);
    expect((await callError(peer, 1)).code).toBe('HW_ERR_BAD_PAYLOAD');
    expect(seen).toBeUndefined();
    peer.call(2, 'inspect', { constructor: { name: 'mine' } });
    expect(await callResult(peer, 2)).toBe(true);
    expect(seen).toEqual({ constructor: { name: 'mine' } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('HELLO with a "__proto__" key → GOAWAY HW_ERR_PROTOCOL', async () => {
    const b = await bench();
    const peer = await b.raw();
    peer.send(FrameType.HELLO, 0, Buffer.concat([Buffer.from([0x82]), str('versions'), Buffer.from([0x91, 0x01]), proto, polluted]));
    await expectProtocolClose(b, peer, 'HW_ERR_PROTOCOL');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await expectIsolated(b);
  });
});

describe('14. limits, each by a hostile client', () => {
  it('maxConnections 3: a fourth connection gets GOAWAY HW_ERR_TOO_MANY_CONNECTIONS before it says anything; a freed slot is reused', async () => {
    // The good client holds one of the three slots.
    const b = await bench({ maxConnections: 3 });
    const first = await b.handshake();
    // A connection still in its handshake counts too.
    const silent = await b.raw();
    await expect.poll(() => b.server.connectionCount).toBe(3);
    const refused = await RawPeer.connect(b.port);
    cleanups.push(() => refused.socket.destroy());
    const body = await expectGoAway(refused, 'HW_ERR_TOO_MANY_CONNECTIONS');
    expect(body.lastStream).toBe(0);
    expect(body.message).toMatch(/3 connections/);
    expect(b.server.connectionCount).toBe(3);
    // The real client is told the same, with the code.
    const err = await connect({ host: HOST, port: b.port }).then(
      () => expect.unreachable('connect resolved'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'HW_ERR_TOO_MANY_CONNECTIONS' });
    // Whoever holds a slot is served meanwhile.
    first.call(1, 'echo', 'served');
    expect(await callResult(first, 1)).toBe('served');
    // Once a slot frees up, a new client gets in.
    const silentPort = silent.socket.localPort;
    silent.socket.destroy();
    await b.events.close((m) => m.remotePort === silentPort, WAIT_MS);
    const late = await connect({ host: HOST, port: b.port });
    cleanups.push(() => late.close());
    await expect(late.call('echo', 'in')).resolves.toBe('in');
    b.badPorts.delete(first.socket.localPort as number);
    await expectIsolated(b);
  });

  it('maxWriteBacklogBytes 256 KiB: a job that ignores backpressure toward a client that reads nothing → HW_ERR_PEER_STALLED by the cap, not the clock', async () => {
    // stallMs 0: the time rule is off, so only the byte cap can stop this.
    const b = await bench({ maxWriteBacklogBytes: 256 * 1024, stallMs: 0 });
    const chunk = 'p'.repeat(64 * 1024);
    let writes = 0;
    b.server.handle('flood', async (_params, ctx) => {
      // Bounded: 2000 × 64 KiB = 128 MiB, far past any loopback buffer.
      while (!ctx.signal.aborted && writes < 2000) {
        ctx.progress(chunk);
        writes++;
        await nextTurn();
      }
      throw ctx.signal.reason ?? new Error('never stopped');
    });
    const peer = await b.handshake();
    peer.socket.pause();
    peer.call(1, 'flood', null);
    const closed = await b.events.close((m) => m.remotePort === peer.socket.localPort, WAIT_MS * 2);
    expect(closed.reason?.code).toBe('HW_ERR_PEER_STALLED');
    expect(closed.reason?.message).toMatch(/262144-byte cap/);
    const abort = await b.events.abort((m) => m.remotePort === peer.socket.localPort, WAIT_MS);
    expect(abort.reason.code).toBe('HW_ERR_PEER_STALLED');
    expect(writes).toBeLessThan(2000);
    await expectIsolated(b);
  });

  it('maxWriteBacklogBytes 64 KiB: a PING flood from a client that reads nothing, with no call in flight, is cut', async () => {
    const b = await bench({ maxWriteBacklogBytes: 64 * 1024 });
    const peer = await b.handshake();
    peer.socket.pause();
    // 10,000 PINGs (140 KB) per write, each asking for a 14-byte PONG; bounded at 200 writes (28 MB).
    const batch = Buffer.concat(Array.from({ length: 10_000 }, (_, i) => encodeFrame(FrameType.PING, 0, encodePingPayload(i))));
    let batches = 0;
    const port = peer.socket.localPort;
    while (!b.events.closes.some((m) => m.remotePort === port) && batches < 200) {
      // Errors once the server reset the connection: that is the expected end.
      await write(peer.socket, batch).catch(() => {});
      batches++;
    }
    const closed = await b.events.close((m) => m.remotePort === port, WAIT_MS);
    expect(closed.reason?.code).toBe('HW_ERR_PEER_STALLED');
    expect(batches).toBeLessThan(200);
    await expectIsolated(b);
  });

  const tight = { maxStrLength: 16, maxBinLength: 16, maxArrayLength: 4, maxMapLength: 4, maxDepth: 4 };
  const nest = (levels: number): unknown => {
    let value: unknown = 0;
    for (let i = 1; i < levels; i++) value = [value];
    return value;
  };
  it.each([
    ['maxStrLength 16 (UTF-8 bytes)', 's'.repeat(16), 'é'.repeat(8) + 's'],
    ['maxBinLength 16', new Uint8Array(16), new Uint8Array(17)],
    ['maxArrayLength 4', [1, 2, 3, 4], [1, 2, 3, 4, 5]],
    ['maxMapLength 4', { a: 1, b: 2, c: 3, d: 4 }, { a: 1, b: 2, c: 3, d: 4, e: 5 }],
    // The CALL wrapper [method, params] is not counted: params get the whole maxDepth.
    ['maxDepth 4', nest(4), nest(5)],
  ])('codec %s: params at the limit are served, one past it → ERROR HW_ERR_BAD_PAYLOAD, the connection goes on', async (_name, atLimit, over) => {
    const b = await bench({ codec: tight });
    const peer = await b.handshake();
    peer.call(1, 'echo', atLimit);
    const echoed = await callResult(peer, 1);
    // A binary comes back as a Buffer (a view of the received frame): compare bytes.
    const bytes = (v: unknown): unknown => (v instanceof Uint8Array ? Array.from(v) : v);
    expect(bytes(echoed)).toEqual(bytes(atLimit));
    peer.send(FrameType.CALL, 2, new PayloadCodec().encode(['echo', over]));
    const error = await callError(peer, 2);
    expect(error.code).toBe('HW_ERR_BAD_PAYLOAD');
    expect(error.message).toMatch(/\S/);
    peer.call(3, 'echo', 'after');
    expect(await callResult(peer, 3)).toBe('after');
    stillOpen(peer);
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('64-bit ids, timestamps and nil travel exactly both ways through the client and the server', async () => {
    const b = await bench();
    const params = { id: 2n ** 63n + 5n, small: 7n, negative: -(2n ** 60n), at: new Date(1_700_000_000_123), none: undefined };
    await expect(b.good.call('echo', params)).resolves.toEqual({ ...params, small: 7, none: null });
    await expectIsolated(b);
  });

  it('default maxDepth 100: params of 500,000 nested arrays (0x91 …) → ERROR HW_ERR_BAD_PAYLOAD without building them', async () => {
    const b = await bench();
    const peer = await b.handshake();
    const deep = Buffer.alloc(500_000, 0x91);
    peer.send(FrameType.CALL, 1, Buffer.concat([Buffer.from([0x92]), str('echo'), deep]));
    const error = await callError(peer, 1);
    expect(error.code).toBe('HW_ERR_BAD_PAYLOAD');
    expect(error.message).toMatch(/deeper than 100 levels/);
    peer.call(2, 'echo', 'after');
    expect(await callResult(peer, 2)).toBe('after');
    b.badPorts.clear();
    await expectIsolated(b);
  });

  it('maxMethodLength 8 counts UTF-8 bytes: an 8-byte method is served, 9 bytes → ERROR HW_ERR_BAD_PAYLOAD', async () => {
    // Its own server: the bench's handlers have longer names.
    const { port, close } = await startServer({ maxMethodLength: 8 }, (s) => s.handle('eightchr', () => 8).handle('éééé', () => 4));
    cleanups.push(close);
    const { peer } = await RawPeer.handshake(port);
    cleanups.push(() => peer.socket.destroy());
    peer.call(1, 'eightchr', null);
    expect(await callResult(peer, 1)).toBe(8);
    peer.call(2, 'ninechars', null);
    const error = await callError(peer, 2);
    expect(error).toEqual({ code: 'HW_ERR_BAD_PAYLOAD', message: expect.stringMatching(/1 to 8 UTF-8 bytes/) });
    peer.call(3, 'eightchr', null);
    expect(await callResult(peer, 3)).toBe(8);
    // Four characters in 8 bytes are served; five in 10 bytes are refused, though shorter than 8 characters.
    peer.call(4, 'éééé', null);
    expect(await callResult(peer, 4)).toBe(4);
    peer.call(5, 'ééééé', null);
    expect((await callError(peer, 5)).code).toBe('HW_ERR_BAD_PAYLOAD');
    stillOpen(peer);
  });

  it.each([
    ['createServer({heartbeatMS})', () => createServer({ heartbeatMS: 500 } as ServerOptions), /^unknown option heartbeatMS \(did you mean heartbeatMs\?\)$/],
    ['createServer({maxConection})', () => createServer({ maxConection: 5 } as ServerOptions), /^unknown option maxConection \(known options: .*maxConnections/],
    ['createServer({codec: {maxdepth}})', () => createServer({ codec: { maxdepth: 5 } } as ServerOptions), /codec\.maxdepth \(did you mean codec\.maxDepth\?\)/],
  ])('a misspelled option: %s throws InvalidOptionError naming it', (_name, make, message) => {
    let err: unknown;
    try {
      make();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as Error).message).toMatch(message);
  });

  it('a misspelled client option: connect({port, hots}) rejects with InvalidOptionError naming it', async () => {
    const err = await connect({ port: 1, hots: '127.0.0.1' } as never).then(
      () => expect.unreachable('connect resolved'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as Error).message).toMatch(/^unknown option hots \(known options: port, host, /);
  });
});
