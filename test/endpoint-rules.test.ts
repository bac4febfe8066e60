/**
 * The rules PROTOCOL.md settles for both ends, tested end to end with a
 * hand-written peer: a RawPeer client against the real server, and the real
 * client against a RawPeer server.
 */
import diagnostics from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type ClientCloseMessage, type ClientConnectMessage, type HeartwireClient } from '@heartwire/client';
import {
  decodeCall,
  decodeGoAway,
  encodePingPayload,
  encodeWelcome,
  FrameType,
  HeartwireError,
  JobError,
  PayloadCodec,
  PROTOCOL_VERSION,
} from '@heartwire/core';
import { createServer, type HeartwireServer } from '@heartwire/server';
import { RawPeer } from './harness/raw.js';

const HOST = '127.0.0.1';
const WAIT_MS = 10_000;
const codec = new PayloadCodec();
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(setup: (s: HeartwireServer) => void = () => {}): Promise<number> {
  const s = createServer({ heartbeatMs: 100, silentMs: 1000 });
  s.handle('echo', (x: unknown) => x);
  s.handle('hold', (_: unknown, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null))));
  setup(s);
  await new Promise<void>((resolve) => s.listen(0, HOST, resolve));
  cleanups.push(() => new Promise<void>((resolve) => s.close({ drainMs: 0 }, () => resolve())));
  return (s.address() as { port: number }).port;
}

async function peer(port: number): Promise<RawPeer> {
  const { peer: p } = await RawPeer.handshake(port);
  cleanups.push(() => p.socket.destroy());
  return p;
}

const isFrame = (type: number, stream?: number) => (f: { type: number; stream: number }) =>
  f.type === type && (stream === undefined || f.stream === stream);

describe('the server keeps the rules of a half-closed client (PROTOCOL.md §6)', () => {
  it('a PONG or PING after HALF_CLOSE is ignored, the call goes on, and the connection closes with its last call though no FIN came', async () => {
    let release!: () => void;
    const port = await server((s) => s.handle('wait', () => new Promise<string>((resolve) => (release = () => resolve('done')))));
    const p = await peer(port);
    p.call(1, 'wait', null);
    await p.frame(isFrame(FrameType.ACCEPTED, 1), WAIT_MS);
    const ping = await p.frame(isFrame(FrameType.PING), WAIT_MS);
    p.send(FrameType.HALF_CLOSE, 0);
    // A client that read §5's "answer every PING" as absolute: harmless.
    p.send(FrameType.PONG, 0, ping.payload);
    p.send(FrameType.PING, 0, encodePingPayload(7));
    await expect.poll(() => release, { timeout: WAIT_MS }).toBeDefined();
    release();
    const result = await p.frame(isFrame(FrameType.RESULT, 1), WAIT_MS);
    expect(codec.decode(result.payload)).toBe('done');
    // Our socket still writes (no FIN sent): the server ends the connection itself.
    await p.gone(WAIT_MS);
    expect(p.frames.some(isFrame(FrameType.GOAWAY))).toBe(false);
    expect(p.frames.some(isFrame(FrameType.PONG))).toBe(false);
  });

  it('a HALF_CLOSE with no call in flight closes the connection at once', async () => {
    const p = await peer(await server());
    p.send(FrameType.HALF_CLOSE, 0);
    await p.gone(WAIT_MS);
  });

  it.each([
    ['a CANCEL', FrameType.CANCEL, 1, undefined],
    ['a GOAWAY', FrameType.GOAWAY, 0, codec.encode(['HW_ERR_PROTOCOL', 'x', 0])],
  ])('%s after HALF_CLOSE is HW_ERR_PROTOCOL: the job aborts with it', async (_name, type, stream, payload) => {
    const p = await peer(await server());
    p.call(1, 'hold', null);
    await p.frame(isFrame(FrameType.ACCEPTED, 1), WAIT_MS);
    p.send(FrameType.HALF_CLOSE, 0);
    p.send(type, stream, payload);
    const goaway = await p.frame(isFrame(FrameType.GOAWAY), WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload)).toMatchObject({ code: 'HW_ERR_PROTOCOL', message: expect.stringMatching(/after HALF_CLOSE/) });
  });
});

describe('HELLO fields and heartbeat numbers (PROTOCOL.md §3, §5)', () => {
  it.each([
    ['heartbeatMs 0', { versions: [1], heartbeatMs: 0 }, 'HW_ERR_PROTOCOL'],
    ['heartbeatMs -5', { versions: [1], heartbeatMs: -5 }, 'HW_ERR_PROTOCOL'],
    ['heartbeatMs 2.5', { versions: [1], heartbeatMs: 2.5 }, 'HW_ERR_PROTOCOL'],
    ['heartbeatMs "fast"', { versions: [1], heartbeatMs: 'fast' }, 'HW_ERR_PROTOCOL'],
    ['versions [0, 1]', { versions: [0, 1] }, 'HW_ERR_PROTOCOL'],
    ['versions ["1"]', { versions: ['1'] }, 'HW_ERR_PROTOCOL'],
    ['versions []', { versions: [] }, 'HW_ERR_UNSUPPORTED_VERSION'],
  ])('HELLO with %s → GOAWAY %s', async (_name, hello, code) => {
    const p = await RawPeer.connect(await server());
    cleanups.push(() => p.socket.destroy());
    p.send(FrameType.HELLO, 0, codec.encode(hello));
    const goaway = await p.frame(isFrame(FrameType.GOAWAY), WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload).code).toBe(code);
  });

  it('a PONG 0 was never sent: HW_ERR_PROTOCOL', async () => {
    const p = await peer(await server());
    p.call(1, 'hold', null);
    await p.frame(isFrame(FrameType.PING), WAIT_MS);
    p.send(FrameType.PONG, 0, encodePingPayload(0));
    const goaway = await p.frame(isFrame(FrameType.GOAWAY), WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload)).toMatchObject({ code: 'HW_ERR_PROTOCOL', message: expect.stringMatching(/never sent/) });
  });
});

describe('codes a handler may send (PROTOCOL.md §7), through the real client', () => {
  it.each([
    ['an application code passes', new HeartwireError('E_NOT_FOUND', 'no such thing'), 'E_NOT_FOUND'],
    ['a job code passes', new JobError('HW_ERR_QUEUE_FULL', 'busy'), 'HW_ERR_QUEUE_FULL'],
    ['HW_ERR_SERVER_CLOSING (a retry promise) becomes HW_ERR_HANDLER', new HeartwireError('HW_ERR_SERVER_CLOSING', 'sneaky'), 'HW_ERR_HANDLER'],
    ['HW_ERR_CANCELLED becomes HW_ERR_HANDLER', new HeartwireError('HW_ERR_CANCELLED', 'sneaky'), 'HW_ERR_HANDLER'],
    ['a plain Error with a code becomes HW_ERR_HANDLER', Object.assign(new Error('gone'), { code: 'ENOENT' }), 'HW_ERR_HANDLER'],
  ])('%s', async (_name, thrown, code) => {
    const port = await server((s) =>
      s.handle('fail', () => {
        throw thrown;
      }),
    );
    const client = await connect({ host: HOST, port });
    cleanups.push(() => client.close());
    await expect(client.call('fail')).rejects.toMatchObject({ name: 'RemoteError', code });
  });
});

const TERMS = { version: PROTOCOL_VERSION, heartbeatMs: 1000, silentMs: 3000, maxFrameBytes: 1 << 20, maxCalls: 10 };

/** The real client connecting to a hand-written server, which has read its HELLO and answered with WELCOME `terms`. */
async function rawHandshake(terms: Partial<typeof TERMS> = {}, options: Record<string, unknown> = {}) {
  const raw = await RawPeer.listen();
  cleanups.push(raw.close);
  const connecting = connect({ host: HOST, port: raw.port, connectTimeoutMs: WAIT_MS, ...options });
  const server = await raw.accepted;
  cleanups.push(() => server.socket.destroy());
  await server.frame(isFrame(FrameType.HELLO), WAIT_MS);
  server.send(FrameType.WELCOME, 0, encodeWelcome(codec, { ...TERMS, ...terms }));
  return { connecting, server };
}

/** As {@link rawHandshake}, with the default terms and the client connected. */
async function clientAgainstRaw(): Promise<{ client: HeartwireClient; server: RawPeer }> {
  const { connecting, server } = await rawHandshake();
  const client = await connecting;
  cleanups.push(() => client.close());
  return { client, server };
}

describe('the client keeps the rules too (PROTOCOL.md §2, §4, §8)', () => {
  it('a second WELCOME: the client sends GOAWAY HW_ERR_PROTOCOL and its calls fail with that code', async () => {
    const { client, server } = await clientAgainstRaw();
    const call = client.call('echo', 1);
    await server.frame(isFrame(FrameType.CALL, 1), WAIT_MS);
    server.send(FrameType.WELCOME, 0, encodeWelcome(codec, TERMS));
    await expect(call).rejects.toMatchObject({ name: 'ConnectionError', code: 'HW_ERR_PROTOCOL' });
    const goaway = await server.frame(isFrame(FrameType.GOAWAY), WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload)).toMatchObject({ code: 'HW_ERR_PROTOCOL', lastStream: 0, message: expect.stringMatching(/second WELCOME/) });
  });

  it('a WELCOME with a version it did not offer: GOAWAY HW_ERR_UNSUPPORTED_VERSION, and connect() rejects with it', async () => {
    const { connecting, server } = await rawHandshake({ version: 2 });
    await expect(connecting).rejects.toMatchObject({ code: 'HW_ERR_UNSUPPORTED_VERSION' });
    const goaway = await server.frame(isFrame(FrameType.GOAWAY), WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload).code).toBe('HW_ERR_UNSUPPORTED_VERSION');
  });

  it('a RESULT for a call id it never sent is HW_ERR_PROTOCOL; one for a call it cancelled is ignored', async () => {
    const { client, server } = await clientAgainstRaw();
    const controller = new AbortController();
    const cancelled = client.call('echo', 1, { signal: controller.signal });
    await server.frame(isFrame(FrameType.CALL, 1), WAIT_MS);
    controller.abort();
    await expect(cancelled).rejects.toMatchObject({ code: 'HW_ERR_ABORTED' });
    await server.frame(isFrame(FrameType.CANCEL, 1), WAIT_MS);
    const live = client.call('echo', 2);
    await server.frame(isFrame(FrameType.CALL, 2), WAIT_MS);
    // Crossed the CANCEL on the wire: nothing happens.
    server.send(FrameType.RESULT, 1, codec.encode('late'));
    server.send(FrameType.RESULT, 2, codec.encode('two'));
    await expect(live).resolves.toBe('two');
    const next = client.call('echo', 3);
    await server.frame(isFrame(FrameType.CALL, 3), WAIT_MS);
    server.send(FrameType.RESULT, 9, codec.encode('never asked'));
    await expect(next).rejects.toMatchObject({ code: 'HW_ERR_PROTOCOL' });
    const goaway = await server.frame(isFrame(FrameType.GOAWAY), WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload).message).toMatch(/never used/);
  });

  it('PROGRESS before ACCEPTED stands for it; an undecodable RESULT fails that call alone (HW_ERR_BAD_PAYLOAD) and sends CANCEL', async () => {
    const { client, server } = await clientAgainstRaw();
    const seen: string[] = [];
    const first = client.call('echo', 1, { onAccepted: () => seen.push('accepted'), onProgress: (p) => seen.push(`progress ${String(p)}`) });
    await server.frame(isFrame(FrameType.CALL, 1), WAIT_MS);
    server.send(FrameType.PROGRESS, 1, codec.encode(50));
    server.send(FrameType.RESULT, 1, Uint8Array.of(0xc1));
    await expect(first).rejects.toMatchObject({ code: 'HW_ERR_BAD_PAYLOAD' });
    expect(seen).toEqual(['accepted', 'progress 50']);
    await server.frame(isFrame(FrameType.CANCEL, 1), WAIT_MS);
    const second = client.call('echo', 2);
    const call = await server.frame(isFrame(FrameType.CALL, 2), WAIT_MS);
    server.send(FrameType.RESULT, 2, codec.encode(decodeCall(codec, call.payload, 256).params));
    await expect(second).resolves.toBe(2);
  });

  it('an ERROR that is not [code, message] is HW_ERR_PROTOCOL', async () => {
    const { client, server } = await clientAgainstRaw();
    const call = client.call('echo', 1);
    await server.frame(isFrame(FrameType.CALL, 1), WAIT_MS);
    server.send(FrameType.ERROR, 1, codec.encode('just a string'));
    await expect(call).rejects.toMatchObject({ name: 'ConnectionError', code: 'HW_ERR_PROTOCOL' });
    const goaway = await server.frame(isFrame(FrameType.GOAWAY), WAIT_MS);
    expect(decodeGoAway(codec, goaway.payload).message).toMatch(/ERROR payload/);
  });

  it('a server that reads nothing is stalled once the client\'s backlog passes maxWriteBacklogBytes: HW_ERR_SERVER_STALLED, reset', async () => {
    const { connecting, server } = await rawHandshake(
      { heartbeatMs: 60_000, silentMs: 60_000, maxFrameBytes: 4 << 20, maxCalls: 100 },
      { maxWriteBacklogBytes: 256 * 1024, stallMs: 0 },
    );
    const client = await connecting;
    server.socket.pause();
    const closed = new Promise((resolve) => client.once('close', resolve));
    const calls: Promise<unknown>[] = [];
    // Bounded: 64 calls of 1 MiB is far past any loopback buffer plus the cap.
    for (let i = 0; i < 64; i++) {
      calls.push(client.call('echo', new Uint8Array(1 << 20)).catch((e: unknown) => e));
      await new Promise((resolve) => setImmediate(resolve));
      if (client.activeCalls === 0) break;
    }
    expect(await closed).toMatchObject({ code: 'HW_ERR_SERVER_STALLED', message: expect.stringMatching(/cap/) });
    expect(await calls[0]).toMatchObject({ code: 'HW_ERR_SERVER_STALLED' });
  });
});

describe('the client publishes on diagnostics_channel', () => {
  it('connect, call start and end, and the close with its verdict', async () => {
    const seen: Array<[string, Record<string, unknown>]> = [];
    const listeners = ['connect', 'call:start', 'call:end', 'close'].map((name) => {
      const channel = `heartwire:client:${name}`;
      const listener = (message: unknown): void => {
        seen.push([name, message as Record<string, unknown>]);
      };
      diagnostics.subscribe(channel, listener);
      return () => diagnostics.unsubscribe(channel, listener);
    });
    cleanups.push(() => listeners.forEach((off) => off()));
    const port = await server();
    const client = await connect({ host: HOST, port });
    await expect(client.call('echo', 'x')).resolves.toBe('x');
    const closed = new Promise((resolve) => client.once('close', resolve));
    await client.close();
    await closed;
    const connectMessage = seen.find(([name]) => name === 'connect')?.[1] as unknown as ClientConnectMessage;
    expect(connectMessage).toMatchObject({ host: HOST, port, heartbeatMs: 100, silentMs: 1000, localPort: expect.any(Number) });
    expect(seen.filter(([name]) => name.startsWith('call')).map(([name, m]) => [name, m.method, m.id, m.outcome])).toEqual([
      ['call:start', 'echo', 1, undefined],
      ['call:end', 'echo', 1, 'result'],
    ]);
    const closeMessage = seen.find(([name]) => name === 'close')?.[1] as unknown as ClientCloseMessage;
    expect(closeMessage.error).toBeUndefined();
  });
});
