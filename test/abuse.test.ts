import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, createClient, type ConnectionError } from '@heartwire/client';
import {
  decodeCallError,
  decodeGoAway,
  FrameType,
  InvalidOptionError,
  PayloadCodec,
  type Frame,
  type GoAwayBody,
} from '@heartwire/core';
import { createServer, DEFAULT_SERVER_OPTIONS, type HeartwireServer, type ServerOptions } from '@heartwire/server';
import { RawPeer } from './harness/raw.js';
import { startServer } from './harness/server.js';
import { Waiter } from './harness/waiter.js';

// Hostile peers come from a second loopback address: Linux routes all of 127.0.0.0/8 to lo.
const HOST = '127.0.0.1';
const OTHER = '127.0.0.2';
const WAIT_MS = 20_000;
const codec = new PayloadCodec();
/**
 * What the server process may grow by beyond its params budget under the
 * flood (README, "Security and limits"): the bytes read from its sockets are
 * freed only at V8's next collection. A plain net server that reads the same
 * 768 MiB and drops them grows by about 40 MiB on Node 20 and 100 MiB on
 * Node 24; with the budget, measured here: 39-60 MiB over it on Node 20
 * (ten runs), 106-148 MiB on Node 24 (eight runs).
 */
const OVERHEAD = 192 * 1024 * 1024;

/** Everything a test opened, closed after it whatever happened. */
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(options: ServerOptions, setup: (s: HeartwireServer) => void = () => {}) {
  const s = await startServer(options, (srv) => {
    srv.handle('echo', (params: unknown) => params);
    setup(srv);
  });
  cleanups.push(() => s.close());
  return s;
}

async function peer(port: number, localAddress = HOST): Promise<RawPeer> {
  const { peer: p } = await RawPeer.handshake(port, {}, { localAddress });
  cleanups.push(() => p.socket.destroy());
  return p;
}

const isFrame = (type: number, stream: number) => (f: Frame) => f.type === type && f.stream === stream;

async function goAway(p: RawPeer): Promise<GoAwayBody> {
  const frame = await p.frame((f) => f.type === FrameType.GOAWAY, WAIT_MS);
  return decodeGoAway(codec, frame.payload);
}

async function callError(p: RawPeer, id: number): Promise<{ code: string; message: string }> {
  return decodeCallError(codec, (await p.frame(isFrame(FrameType.ERROR, id), WAIT_MS)).payload);
}

async function result(p: RawPeer, id: number): Promise<unknown> {
  return p.decode(await p.frame(isFrame(FrameType.RESULT, id), WAIT_MS));
}

describe('idle connections after the handshake (idleTimeoutMs)', () => {
  it('a connection with no call in flight gets GOAWAY HW_ERR_IDLE_TIMEOUT, then is closed', async () => {
    const s = await server({ idleTimeoutMs: 300 });
    const p = await peer(s.port);
    const body = await goAway(p);
    expect(body).toMatchObject({ code: 'HW_ERR_IDLE_TIMEOUT', lastStream: 0 });
    await p.gone(WAIT_MS);
    await expect.poll(() => s.server.connectionCount, { timeout: WAIT_MS }).toBe(0);
  });

  it('a call in flight longer than the timeout keeps the connection; the deadline starts again when it ends', async () => {
    let finish!: () => void;
    // PINGs every 200 ms measure the time; the peer need not answer them within silentMs 10 s.
    const s = await server({ idleTimeoutMs: 300, heartbeatMs: 200, silentMs: 10_000 }, (srv) =>
      srv.handle('wait', () => new Promise<string>((resolve) => (finish = () => resolve('done')))),
    );
    const p = await peer(s.port);
    p.call(1, 'wait', null);
    await p.frame(isFrame(FrameType.ACCEPTED, 1), WAIT_MS);
    // Twice the timeout, told by the third PING.
    await p.frame((f) => f.type === FrameType.PING && f.payload[3]! >= 3, WAIT_MS);
    expect(p.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
    finish();
    expect(await result(p, 1)).toBe('done');
    const body = await goAway(p);
    expect(body).toMatchObject({ code: 'HW_ERR_IDLE_TIMEOUT', lastStream: 1 });
    // The GOAWAY follows the RESULT.
    expect(p.frames.findIndex((f) => f.type === FrameType.GOAWAY)).toBeGreaterThan(
      p.frames.findIndex(isFrame(FrameType.RESULT, 1)),
    );
    await p.gone(WAIT_MS);
  }, 30_000);

  it('calls refused at once (unknown method) do not keep a connection from being idle', async () => {
    const s = await server({ idleTimeoutMs: 400 });
    const p = await peer(s.port);
    for (let id = 1; id <= 5; id += 2) {
      p.call(id, 'nope', null);
      expect((await callError(p, id)).code).toBe('HW_ERR_UNKNOWN_METHOD');
    }
    expect((await goAway(p)).code).toBe('HW_ERR_IDLE_TIMEOUT');
  });

  it('idleTimeoutMs 0 turns it off', async () => {
    const s = await server({ idleTimeoutMs: 0 });
    const p = await peer(s.port);
    // A witness connection with a 300 ms timeout on another server shows the time passed.
    const w = await server({ idleTimeoutMs: 300 });
    const witness = await peer(w.port);
    await goAway(witness);
    p.call(1, 'echo', 'still here');
    expect(await result(p, 1)).toBe('still here');
    expect(p.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  });

  it('connect(): the client closes quietly, with the code, and nothing fails for callers; createClient() reconnects for its next call', async () => {
    const s = await server({ idleTimeoutMs: 300 });
    const c = await connect({ host: HOST, port: s.port });
    cleanups.push(() => c.close());
    expect(await c.call('echo', 1)).toBe(1);
    const [err] = (await once(c, 'close')) as [ConnectionError | undefined];
    expect(err?.code).toBe('HW_ERR_IDLE_TIMEOUT');

    const r = createClient({ host: HOST, port: s.port });
    cleanups.push(() => r.close());
    expect(await r.call('echo', 'a')).toBe('a');
    await once(r, 'disconnect');
    expect(await r.call('echo', 'b')).toBe('b');
  });
});

describe('connections per address (maxConnectionsPerAddress)', () => {
  it('one address over its limit gets GOAWAY HW_ERR_TOO_MANY_CONNECTIONS before its HELLO; another address is let in; a freed slot is reused', async () => {
    const s = await server({ maxConnectionsPerAddress: 2 });
    const a = await peer(s.port, OTHER);
    await peer(s.port, OTHER);
    const refused = await RawPeer.connect(s.port, { localAddress: OTHER });
    cleanups.push(() => refused.socket.destroy());
    const body = await goAway(refused);
    expect(body).toMatchObject({ code: 'HW_ERR_TOO_MANY_CONNECTIONS', lastStream: 0 });
    expect(body.message).toMatch(/2 connections from one address/);
    await refused.gone(WAIT_MS);
    // Another address is counted apart.
    const c = await connect({ host: HOST, port: s.port });
    cleanups.push(() => c.close());
    expect(await c.call('echo', 'in')).toBe('in');
    a.socket.destroy();
    await expect.poll(() => s.server.connectionCount, { timeout: WAIT_MS }).toBe(2);
    await peer(s.port, OTHER);
  });

  it('defaults: 1,000 idle connections from one address cannot keep a client from another address out', async () => {
    const s = await server({});
    expect(s.server.options).toMatchObject({ maxConnections: 1000, maxConnectionsPerAddress: 100 });
    // The hostile client: 1,000 connections from 127.0.0.2, each sends HELLO and then nothing, and closes nothing.
    const hostile: RawPeer[] = [];
    cleanups.push(() => {
      for (const h of hostile) h.socket.destroy();
    });
    const hello = codec.encode({ versions: [1] });
    for (let batch = 0; batch < 10; batch++) {
      const opened = await Promise.all(Array.from({ length: 100 }, () => RawPeer.connect(s.port, { localAddress: OTHER })));
      hostile.push(...opened);
      for (const h of opened) h.send(FrameType.HELLO, 0, hello);
    }
    const firsts = await Promise.all(hostile.map((h) => h.frame(() => true, WAIT_MS)));
    const welcomed = firsts.filter((f) => f.type === FrameType.WELCOME).length;
    const refused = firsts.filter((f) => f.type === FrameType.GOAWAY && decodeGoAway(codec, f.payload).code === 'HW_ERR_TOO_MANY_CONNECTIONS').length;
    expect({ welcomed, refused }).toEqual({ welcomed: 100, refused: 900 });
    // A legitimate client from 127.0.0.1 gets WELCOME and is served.
    const c = await connect({ host: HOST, port: s.port });
    cleanups.push(() => c.close());
    expect(await c.call('echo', 'served')).toBe('served');
    expect(s.server.connectionCount).toBeLessThanOrEqual(101);
  }, 60_000);
});

describe('params budget (maxParamsBytes, maxParamsBytesPerConnection, maxOverBudgetCalls)', () => {
  const KiB = 1024;
  /** A server whose `hold` calls run until the test lets them go. */
  async function holding(options: ServerOptions) {
    const release: Array<() => void> = [];
    const s = await server(options, (srv) =>
      srv.handle('hold', (params: Uint8Array) => new Promise<number>((resolve) => release.push(() => resolve(params.byteLength)))),
    );
    return { ...s, releaseAll: () => release.splice(0).forEach((r) => r()) };
  }

  it('a call over the connection share gets ERROR HW_ERR_OVER_BUDGET and the connection goes on; the share comes back when calls end', async () => {
    const s = await holding({ maxParamsBytes: 4096 * KiB, maxParamsBytesPerConnection: 256 * KiB });
    const p = await peer(s.port);
    p.call(1, 'hold', new Uint8Array(200 * KiB));
    await p.frame(isFrame(FrameType.ACCEPTED, 1), WAIT_MS);
    p.call(3, 'hold', new Uint8Array(100 * KiB));
    const refusal = await callError(p, 3);
    expect(refusal.code).toBe('HW_ERR_OVER_BUDGET');
    expect(refusal.message).toMatch(/262144/);
    // Never ACCEPTED: it never reached a handler.
    expect(p.frames.some(isFrame(FrameType.ACCEPTED, 3))).toBe(false);
    // A small call still fits the share.
    p.call(5, 'echo', 'small');
    expect(await result(p, 5)).toBe('small');
    s.releaseAll();
    expect(await result(p, 1)).toBe(200 * KiB);
    p.call(7, 'hold', new Uint8Array(200 * KiB));
    await p.frame(isFrame(FrameType.ACCEPTED, 7), WAIT_MS);
    s.releaseAll();
    expect(await result(p, 7)).toBe(200 * KiB);
    await expect.poll(() => s.server.paramsBytesHeld, { timeout: WAIT_MS }).toBe(0);
  });

  it('a full server budget refuses large calls from everyone, yet each connection\'s first 64 KiB still fit', async () => {
    const s = await holding({ maxParamsBytes: 300 * KiB, maxParamsBytesPerConnection: 256 * KiB });
    const heavy = await peer(s.port, OTHER);
    heavy.call(1, 'hold', new Uint8Array(250 * KiB));
    await heavy.frame(isFrame(FrameType.ACCEPTED, 1), WAIT_MS);
    const light = await peer(s.port);
    light.call(1, 'hold', new Uint8Array(100 * KiB));
    expect((await callError(light, 1)).code).toBe('HW_ERR_OVER_BUDGET');
    light.call(3, 'echo', 'x'.repeat(1000));
    expect(await result(light, 3)).toBe('x'.repeat(1000));
    light.call(5, 'hold', new Uint8Array(60 * KiB));
    await light.frame(isFrame(FrameType.ACCEPTED, 5), WAIT_MS);
    expect(s.server.paramsBytesHeld).toBeGreaterThan(300 * KiB);
    s.releaseAll();
    await Promise.all([result(heavy, 1), result(light, 5)]);
    expect(s.server.paramsBytesHeld).toBe(0);
  });

  it('a client that keeps pushing past its share is cut off with GOAWAY HW_ERR_OVER_BUDGET; what it held is given back', async () => {
    const s = await holding({ maxParamsBytesPerConnection: 128 * KiB, maxOverBudgetCalls: 3 });
    const p = await peer(s.port, OTHER);
    p.call(1, 'hold', new Uint8Array(100 * KiB));
    await p.frame(isFrame(FrameType.ACCEPTED, 1), WAIT_MS);
    // Four calls over the share, written at once: three refused with an ERROR each, the fourth ends the connection.
    for (let id = 3; id <= 9; id += 2) p.call(id, 'hold', new Uint8Array(100 * KiB));
    const body = await goAway(p);
    expect(body).toMatchObject({ code: 'HW_ERR_OVER_BUDGET', lastStream: 9 });
    for (const id of [3, 5, 7]) expect((await callError(p, id)).code).toBe('HW_ERR_OVER_BUDGET');
    await p.gone(WAIT_MS);
    await expect.poll(() => s.server.paramsBytesHeld, { timeout: WAIT_MS }).toBe(0);
    // The real client sees the code on its calls.
    const c = await connect({ host: HOST, port: s.port });
    cleanups.push(() => c.close());
    const held = c.call('hold', new Uint8Array(100 * KiB));
    held.catch(() => {});
    const refused = await c.call('hold', new Uint8Array(100 * KiB)).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'HW_ERR_OVER_BUDGET' });
    s.releaseAll();
    expect(await held).toBe(100 * KiB);
  });

  it('an unknown frame type is skipped unread, and a known one over 64 KiB is refused from its header', async () => {
    const s = await server({});
    const p = await peer(s.port);
    p.send(0x7e, 0, new Uint8Array(1024 * KiB));
    p.call(1, 'echo', 'after');
    expect(await result(p, 1)).toBe('after');
    p.send(FrameType.CANCEL, 3, new Uint8Array(65 * KiB));
    const body = await goAway(p);
    expect(body.code).toBe('HW_ERR_PROTOCOL');
    expect(body.message).toMatch(/must carry 0 payload bytes, got 66560/);
  });
});

/** test/fixtures/budget-server.mjs: a server in its own process that reports its memory. */
class BudgetServer {
  private readonly lines: Array<Record<string, number | string>> = [];
  private readonly waiter = new Waiter();
  readonly child: ChildProcess;
  port = 0;

  constructor(options: ServerOptions) {
    const fixture = fileURLToPath(new URL('./fixtures/budget-server.mjs', import.meta.url));
    this.child = spawn(process.execPath, [fixture, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.lines.push(JSON.parse(line) as Record<string, number | string>);
      this.waiter.wake();
    });
  }

  async start(): Promise<this> {
    const line = await this.waiter.until(() => this.lines.find((l) => l.event === 'listening'), 'listening', WAIT_MS);
    this.port = line.port as number;
    return this;
  }

  /** The server process's RSS now, the largest it has seen, and the params bytes it holds. */
  async memory(): Promise<{ rss: number; maxRss: number; held: number }> {
    const seen = this.lines.length;
    this.child.stdin!.write('memory\n');
    const line = await this.waiter.until(
      () => this.lines.slice(seen).find((l) => l.event === 'memory'),
      'memory report',
      WAIT_MS,
    );
    return line as unknown as { rss: number; maxRss: number; held: number };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** A hostile client on a bare socket: CALLs of one shared 4 MiB payload, as fast as the socket takes them, never reading an answer it does not need. */
async function flood(port: number, calls: number, payload: Uint8Array): Promise<RawPeer> {
  const p = await peer(port, OTHER);
  for (let i = 0; i < calls; i++) {
    const header = Buffer.alloc(10);
    header.writeUInt32BE(payload.byteLength, 0);
    header[4] = FrameType.CALL;
    header.writeUInt32BE(2 * i + 1, 6);
    p.socket.write(header);
    p.socket.write(payload);
  }
  return p;
}

/** Every CALL of a flood was answered (ACCEPTED or ERROR), or the server cut the connection. */
function settled(p: RawPeer, calls: number): boolean {
  if (p.ended || p.closed) return true;
  const answered = new Set(p.frames.filter((f) => f.type === FrameType.ACCEPTED || f.type === FrameType.ERROR).map((f) => f.stream));
  return answered.size === calls;
}

describe('params budget against hostile clients, measured in the server process', () => {
  const MiB = 1024 * 1024;
  const BUDGET = 64 * MiB;

  it('eight connections pushing 768 MiB of params: RSS stays within the budget plus overhead, and a client beside them keeps completing calls', async () => {
    const srv = await new BudgetServer({ maxParamsBytes: BUDGET, maxParamsBytesPerConnection: 16 * MiB, maxOverBudgetCalls: 10 }).start();
    cleanups.push(() => srv.stop());
    const good = await connect({ host: HOST, port: srv.port });
    cleanups.push(() => good.close());
    expect(await good.call('echo', 'warm')).toBe('warm');
    const before = await srv.memory();

    const CALLS = 24;
    const payload = codec.encode(['hold', new Uint8Array(4 * MiB - 64)]);
    const hostile = await Promise.all(Array.from({ length: 8 }, () => flood(srv.port, CALLS, payload)));
    // The good client calls on, one call at a time, until every hostile call was answered or cut off.
    let completed = 0;
    const started = Date.now();
    while (!hostile.every((h) => settled(h, CALLS)) && Date.now() - started < 40_000) {
      expect(await good.call('echo', { n: completed })).toEqual({ n: completed });
      completed++;
    }
    expect(hostile.every((h) => settled(h, CALLS))).toBe(true);
    const during = await srv.memory();
    const refusals = hostile.flatMap((h) => h.frames.filter((f) => f.type === FrameType.ERROR).map((f) => decodeCallError(codec, f.payload).code));
    const cutOff = hostile.filter((h) => h.frames.some((f) => f.type === FrameType.GOAWAY && decodeGoAway(codec, f.payload).code === 'HW_ERR_OVER_BUDGET'));
    expect(new Set(refusals)).toEqual(new Set(['HW_ERR_OVER_BUDGET']));
    expect(cutOff.length).toBeGreaterThan(0);
    expect(completed).toBeGreaterThan(0);
    expect(during.held).toBeLessThanOrEqual(BUDGET + 9 * 64 * 1024);
    expect(during.maxRss - before.rss).toBeLessThan(BUDGET + OVERHEAD);

    // Once the hostile clients are gone, everything they held is given back.
    for (const h of hostile) h.socket.destroy();
    await expect.poll(async () => (await srv.memory()).held, { timeout: WAIT_MS }).toBe(0);
    expect(await good.call('echo', 'after')).toBe('after');
  }, 60_000);
});

describe('options of the abuse limits', () => {
  it.each([
    [{ maxConnectionsPerAddress: 0 }, /maxConnectionsPerAddress/],
    [{ idleTimeoutMs: -1 }, /idleTimeoutMs/],
    [{ idleTimeoutMs: 1.5 }, /idleTimeoutMs/],
    [{ maxParamsBytes: 0 }, /maxParamsBytes/],
    [{ maxParamsBytes: 1024, maxParamsBytesPerConnection: 2048 }, /maxParamsBytesPerConnection must be an integer from 1 to 1024/],
    [{ maxParamsBytesPerConnection: '1 MiB' }, /maxParamsBytesPerConnection/],
    [{ maxOverBudgetCalls: -1 }, /maxOverBudgetCalls/],
  ])('createServer(%o) throws InvalidOptionError naming the option', (options, message) => {
    expect(() => createServer(options as ServerOptions)).toThrow(message);
    expect(() => createServer(options as ServerOptions)).toThrow(InvalidOptionError);
  });

  it('defaults, and a smaller total brings the default share down with it', () => {
    expect(DEFAULT_SERVER_OPTIONS).toMatchObject({
      maxConnectionsPerAddress: 100,
      idleTimeoutMs: 60_000,
      maxParamsBytes: 256 * 1024 * 1024,
      maxParamsBytesPerConnection: 32 * 1024 * 1024,
      maxOverBudgetCalls: 100,
    });
    const small = createServer({ maxParamsBytes: 1024 * 1024 });
    expect(small.options.maxParamsBytesPerConnection).toBe(1024 * 1024);
  });
});
