import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeartwireError } from '@heartwire/core';
import { worker, type CallContext } from '@heartwire/server';
import { makeCertificates } from './harness/certs.js';
import { Curl, startHttp, type HttpSetup } from './harness/http.js';
import { IdleJobs } from './harness/idle-jobs.js';
import { JobBeacons } from './harness/job-beacons.js';

/*
 * The HTTP bridge against real clients: curl over HTTP/1.1, HTTP/2 cleartext
 * (--http2-prior-knowledge) and HTTP/2 over TLS, as child processes that the
 * tests kill (SIGKILL) and freeze (SIGSTOP); raw sockets for a reset.
 */

const HEARTBEAT_MS = 200;
const SILENT_MS = 1000;
const STALL_MS = 1000;
/** Scheduling noise on a busy 2-core machine, never the protocol. */
const SLACK_MS = 1500;
const JOBS = new URL('./fixtures/jobs.mjs', import.meta.url);

const jobs = new IdleJobs();
const beacons = new JobBeacons();
let setup: HttpSetup;
const curls: Curl[] = [];

function curl(...args: string[]): Curl {
  const c = new Curl(args);
  curls.push(c);
  return c;
}

const q = (params: unknown): string => `?params=${encodeURIComponent(JSON.stringify(params))}`;

beforeAll(async () => {
  setup = await startHttp(
    (hw) => {
      hw.handle('idle', jobs.handler);
      hw.handle('count', async (params: { n: number }, ctx: CallContext) => {
        for (let i = 0; i < params.n; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          ctx.progress({ i });
        }
        return { done: params.n };
      });
      hw.handle('fail', () => {
        throw new Error('boom');
      });
      hw.handle('coded', () => {
        throw new HeartwireError('APP_ERR_NOPE', 'not today');
      });
      hw.handle('reserved', () => {
        throw new HeartwireError('HW_ERR_SERVER_CLOSING', 'retry me elsewhere');
      });
      hw.handle('flood', async (_params, ctx: CallContext) => {
        // Progress as fast as the response takes it, and faster: a reader that stops reading is stalled.
        const chunk = 'x'.repeat(64 * 1024);
        const until = performance.now() + 20_000;
        while (performance.now() < until) {
          ctx.progress(chunk);
          await ctx.yield();
        }
        return 'not stalled';
      });
      hw.handle('polite', async (_params, ctx: CallContext) => {
        // Progress only while the response takes it, resting when it is full: only the stall timer can judge it.
        const chunk = 'x'.repeat(64 * 1024);
        const until = performance.now() + 20_000;
        while (performance.now() < until) {
          if (!ctx.progress(chunk)) await new Promise((resolve) => setTimeout(resolve, 20));
          await ctx.yield();
        }
        return 'not stalled';
      });
      hw.handle('spin', worker(JOBS));
    },
    { heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS, stallMs: STALL_MS, maxWriteBacklogBytes: 8 * 1024 * 1024, maxBodyBytes: 1024 },
    {},
    makeCertificates(),
  );
});

afterAll(async () => {
  for (const c of curls) await c.dispose();
  beacons.dispose();
  await setup?.close();
});

/** The NDJSON events in curl's output, filler dropped. */
function events(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the response: early header, filler, progress, result or coded error', () => {
  it('HTTP/1.1 NDJSON: 200 and the headers at once, then accepted, progress with filler between, and the result last', async () => {
    const c = curl('-i', `${setup.h1}/count${q({ n: 8 })}`);
    expect(await c.done()).toBe(0);
    const [head, body] = c.stdout.split('\r\n\r\n') as [string, string];
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(head).toMatch(/content-type: application\/x-ndjson/i);
    expect(head).toMatch(/x-accel-buffering: no/i);
    expect(head).toMatch(/cache-control: no-cache, no-store, no-transform/i);
    expect(head).not.toMatch(/content-encoding/i);
    const list = events(body);
    expect(list[0]).toMatchObject({ type: 'accepted', heartbeatMs: HEARTBEAT_MS });
    expect(list.filter((e) => e.type === 'progress').map((e) => e.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ i })));
    expect(list.at(-1)).toEqual({ type: 'result', data: { done: 8 } });
    // 8 × 50 ms of job at a 200 ms heartbeat: filler (an empty line) went out in between.
    expect(body).toMatch(/\n\n/);
  });

  it('server-sent events when Accept asks for them, over HTTP/2: comment lines as filler', async () => {
    const c = curl('--http2-prior-knowledge', '-H', 'accept: text/event-stream', '-D', '-', `${setup.h2c}/count${q({ n: 8 })}`);
    expect(await c.done()).toBe(0);
    expect(c.stdout).toMatch(/^HTTP\/2 200/);
    expect(c.stdout).toMatch(/content-type: text\/event-stream/);
    expect(c.stdout).toMatch(/event: accepted\ndata: \{"type":"accepted"/);
    expect(c.stdout).toMatch(/event: progress\ndata: \{"type":"progress","data":\{"i":7\}\}\n\n/);
    expect(c.stdout).toMatch(/\n:\n\n/);
    expect(c.stdout).toMatch(/event: result\ndata: \{"type":"result","data":\{"done":8\}\}\n\n$/);
  });

  it('a thrown error is a coded error event after the 200 (HW_ERR_HANDLER, or the error\'s own code)', async () => {
    const plain = curl('-X', 'POST', `${setup.h1}/fail`);
    const coded = curl('--http2-prior-knowledge', '-X', 'POST', `${setup.h2c}/coded`);
    const reserved = curl('-X', 'POST', `${setup.h1}/reserved`);
    await Promise.all([plain.done(), coded.done(), reserved.done()]);
    expect(events(plain.stdout).at(-1)).toEqual({ type: 'error', code: 'HW_ERR_HANDLER', message: 'boom' });
    expect(events(coded.stdout).at(-1)).toEqual({ type: 'error', code: 'APP_ERR_NOPE', message: 'not today' });
    // A handler cannot promise "never ran, retry" (PROTOCOL.md §7): the code is the server's.
    expect(events(reserved.stdout).at(-1)).toMatchObject({ type: 'error', code: 'HW_ERR_HANDLER', message: expect.stringContaining('HW_ERR_SERVER_CLOSING') });
  });

  it('turns away what cannot run with a status and a coded error: unknown method, bad JSON, body too large', async () => {
    const unknown = curl('-w', '%{http_code}', `${setup.h1}/nope`);
    const bad = curl('-w', '%{http_code}', '--data-binary', '{nope', `${setup.h1}/idle`);
    const large = curl('-w', '%{http_code}', '--data-binary', JSON.stringify('x'.repeat(2000)), `${setup.h1}/idle`);
    await Promise.all([unknown.done(), bad.done(), large.done()]);
    expect(unknown.stdout).toMatch(/"code":"HW_ERR_UNKNOWN_METHOD".*\n404$/s);
    expect(bad.stdout).toMatch(/"code":"HW_ERR_BAD_PAYLOAD".*\n400$/s);
    expect(large.stdout).toMatch(/"code":"HW_ERR_PAYLOAD_TOO_LARGE".*\n413$/s);
  });
});

describe('HEAD and OPTIONS: what a GET would be answered, or what is allowed, and no job', () => {
  it('curl -I over HTTP/1.1 and HTTP/2: 200 and the headers, no body, nothing started; a refusal as for GET', async () => {
    const before = jobs.runs.length;
    const ends = setup.events.ends.length;
    const h1 = curl('-I', `${setup.h1}/idle${q({ ms: 60_000 })}`);
    const h2 = curl('-I', '--http2-prior-knowledge', `${setup.h2c}/idle${q({ ms: 60_000 })}`);
    const unknown = curl('-I', `${setup.h1}/nope`);
    const bad = curl('-I', `${setup.h1}/idle?params=%7Bnope`);
    for (const c of [h1, h2, unknown, bad]) expect(await c.done()).toBe(0);
    expect(h1.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(h1.stdout).toMatch(/content-type: application\/x-ndjson/i);
    expect(h2.stdout).toMatch(/^HTTP\/2 200/);
    expect(h2.stdout).toMatch(/content-type: application\/x-ndjson/i);
    for (const c of [h1, h2, unknown, bad]) expect(c.stdout).not.toMatch(/"type"/);
    expect(unknown.stdout).toMatch(/^HTTP\/1\.1 404/);
    expect(bad.stdout).toMatch(/^HTTP\/1\.1 400/);
    // A GET after them is served, so a job would have been seen by now.
    const get = curl(`${setup.h1}/idle${q({ ms: 1 })}`);
    await get.done();
    expect(jobs.runs.length).toBe(before + 1);
    expect(setup.events.ends.length).toBe(ends + 1);
  });

  it('OPTIONS (a CORS preflight) over HTTP/1.1 and HTTP/2: 204 with Allow, nothing started', async () => {
    const before = jobs.runs.length;
    const h1 = curl('-i', '-X', 'OPTIONS', `${setup.h1}/idle${q({ ms: 60_000 })}`);
    const h2 = curl('-i', '-X', 'OPTIONS', '--http2-prior-knowledge', `${setup.h2c}/idle${q({ ms: 60_000 })}`);
    for (const c of [h1, h2]) expect(await c.done()).toBe(0);
    expect(h1.stdout).toMatch(/^HTTP\/1\.1 204/);
    expect(h2.stdout).toMatch(/^HTTP\/2 204/);
    for (const c of [h1, h2]) expect(c.stdout).toMatch(/allow: GET, HEAD, POST/i);
    const get = curl(`${setup.h1}/idle${q({ ms: 1 })}`);
    await get.done();
    expect(jobs.runs.length).toBe(before + 1);
  });
});

describe('a client that is gone: the job aborts with the TCP server\'s codes', () => {
  const killCases: Array<[string, () => string[]]> = [
    ['HTTP/1.1', () => [`${setup.h1}/idle`]],
    ['HTTP/2 cleartext', () => ['--http2-prior-knowledge', `${setup.h2c}/idle`]],
    ['HTTP/2 over TLS', () => ['--http2', '--insecure', `${setup.https}/idle`]],
    ['HTTP/1.1 over TLS', () => ['--http1.1', '--insecure', `${setup.https}/idle`]],
  ];
  for (const [name, args] of killCases) {
    it(`curl SIGKILLed mid-job over ${name}: HW_ERR_PEER_CLOSED (or _RESET), within milliseconds`, async () => {
      const before = jobs.runs.length;
      const c = curl(...args());
      await c.output(/"accepted"/);
      const run = await jobs.started(before + 1);
      const killedAt = c.kill('SIGKILL');
      const abort = await setup.events.abort((m) => m.reason === run.signal.reason);
      expect(['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET']).toContain(abort.reason.code);
      expect(abort.at - killedAt).toBeLessThan(SLACK_MS);
    });
  }

  it('a TCP reset (RST) is HW_ERR_PEER_RESET', async () => {
    const before = jobs.runs.length;
    const port = Number(new URL(setup.h1).port);
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', () => {});
    socket.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n');
    const run = await jobs.started(before + 1);
    socket.resetAndDestroy();
    const abort = await setup.events.abort((m) => m.reason === run.signal.reason);
    expect(abort.reason.code).toBe('HW_ERR_PEER_RESET');
  });

  it('a write that fails (EPIPE on the socket) is HW_ERR_WRITE_FAILED', async () => {
    // The kernel's EPIPE is hard to provoke on loopback on cue (a close is read first): the socket
    // is destroyed with that error here, as libuv reports it, while a job is in flight.
    const before = jobs.runs.length;
    const server = http.createServer((req, res) => {
      setup.bridge.serve('idle', req, res);
      void jobs.started(before + 1).then(() => req.socket.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const c = curl(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    try {
      const run = await jobs.started(before + 1);
      const abort = await setup.events.abort((m) => m.reason === run.signal.reason);
      expect(abort.reason.code).toBe('HW_ERR_WRITE_FAILED');
    } finally {
      await c.dispose();
      server.close();
    }
  });

  it('a frozen HTTP/2 client (SIGSTOP) is caught by PING: HW_ERR_PEER_SILENT within heartbeatMs + silentMs', async () => {
    const before = jobs.runs.length;
    const c = curl('--http2-prior-knowledge', `${setup.h2c}/idle`);
    await c.output(/"accepted"/);
    const run = await jobs.started(before + 1);
    const frozenAt = c.kill('SIGSTOP');
    const abort = await setup.events.abort((m) => m.reason === run.signal.reason);
    expect(abort.reason.code).toBe('HW_ERR_PEER_SILENT');
    const ms = abort.at - frozenAt;
    expect(ms).toBeGreaterThanOrEqual(SILENT_MS - 50);
    expect(ms).toBeLessThan(HEARTBEAT_MS + SILENT_MS + SLACK_MS);
    c.kill('SIGCONT');
  });

  it('no false verdict: an HTTP/2 client frozen for less than silentMs, and a slow one, finish their jobs', async () => {
    const brief = curl('--http2-prior-knowledge', `${setup.h2c}/idle${q({ ms: 2000 })}`);
    const slow = curl('--http2-prior-knowledge', '--limit-rate', '1K', `${setup.h2c}/count${q({ n: 30 })}`);
    await brief.output(/"accepted"/);
    brief.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, SILENT_MS / 2));
    brief.kill('SIGCONT');
    await Promise.all([brief.done(), slow.done()]);
    expect(events(brief.stdout).at(-1)).toEqual({ type: 'result', data: { ms: 2000 } });
    expect(events(slow.stdout).at(-1)).toEqual({ type: 'result', data: { done: 30 } });
  });

  for (const [method, rule] of [
    ['flood', /more than maxWriteBacklogBytes/],
    ['polite', /not drained within stallMs/],
  ] as const) {
    it(`a frozen HTTP/1.1 reader (SIGSTOP) of a job that writes ${method === 'flood' ? 'without pause' : 'only while the response drains'} is HW_ERR_PEER_STALLED (${rule.source})`, async () => {
      const c = curl(`${setup.h1}/${method}`);
      await c.output(/"progress"/);
      const frozenAt = c.kill('SIGSTOP');
      const end = await setup.events.end((m) => m.method === method, 30_000);
      const abort = setup.events.aborts.find((m) => m.method === method && m.id === end.id);
      expect(abort?.reason.code).toBe('HW_ERR_PEER_STALLED');
      expect(abort?.reason.message).toMatch(rule);
      // The kernel's buffers (several MiB on loopback) fill first; then the rule's own bound.
      expect(abort!.at - frozenAt).toBeLessThan(STALL_MS + 15_000);
      c.kill('SIGCONT');
    });
  }

  it('a worker(...) job over HTTP/2: its thread stops when curl is killed', async () => {
    const c = curl('--http2-prior-knowledge', `${setup.h2c}/spin${q({ kind: 'spin', tag: 'h2-killed' })}`);
    const beacon = await beacons.started('h2-killed');
    await c.output(/"progress"/);
    const killedAt = c.kill('SIGKILL');
    const abort = await setup.events.abort((m) => m.method === 'spin');
    expect(['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET']).toContain(abort.reason.code);
    const stoppedAt = await beacons.stopped(beacon);
    expect(stoppedAt - killedAt).toBeLessThan(SLACK_MS + 100);
  });

  it('bridge.close() ends each call in flight with HW_ERR_SERVER_SHUTDOWN as its last event, and refuses new ones with 503', async () => {
    // Its own bridge, so that closing it leaves the others serving.
    const own = await startHttp((hw) => hw.handle('idle', jobs.handler), { heartbeatMs: HEARTBEAT_MS });
    try {
      const before = jobs.runs.length;
      const c = curl(`${own.h1}/idle`);
      await jobs.started(before + 1);
      own.bridge.close();
      await c.done();
      expect(events(c.stdout).at(-1)).toMatchObject({ type: 'error', code: 'HW_ERR_SERVER_SHUTDOWN' });
      const late = curl('-w', '%{http_code}', `${own.h1}/idle`);
      await late.done();
      expect(late.stdout).toMatch(/"code":"HW_ERR_SERVER_CLOSING".*\n503$/s);
    } finally {
      await own.close();
    }
  });
});
