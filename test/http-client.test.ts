import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortedError, ConnectionError, HeartwireError, InvalidOptionError, RemoteError } from '@heartwire/core';
import type { CallContext } from '@heartwire/server';
import { call } from '@heartwire/http/client';
import { startHttp, type HttpSetup } from './harness/http.js';
import { IdleJobs } from './harness/idle-jobs.js';

/*
 * The fetch client (@heartwire/http/client) with Node's own fetch against
 * the bridge, and against a plain HTTP server that misbehaves on purpose.
 */

const HEARTBEAT_MS = 200;
/** Scheduling noise on a busy 2-core machine, never the protocol. */
const SLACK_MS = 1500;

const jobs = new IdleJobs();
let setup: HttpSetup;

beforeAll(async () => {
  setup = await startHttp(
    (hw) => {
      hw.handle('idle', jobs.handler);
      hw.handle('add', async (params: { a: number; b: number; steps: number }, ctx: CallContext) => {
        for (let i = 0; i < params.steps; i++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          ctx.progress({ step: i });
        }
        return params.a + params.b;
      });
      hw.handle('fail', () => {
        throw new HeartwireError('APP_ERR_NOPE', 'not today');
      });
    },
    { heartbeatMs: HEARTBEAT_MS },
  );
});

afterAll(async () => {
  await setup?.close();
});

describe('call() with Node fetch', () => {
  it('resolves with the result; onAccepted then onProgress run in order, and the filler stays hidden', async () => {
    const seen: unknown[] = [];
    const result = await call<number>(`${setup.h1}/add`, { a: 2, b: 3, steps: 15 }, {
      onAccepted: (e) => seen.push({ accepted: e.heartbeatMs }),
      onProgress: (data) => seen.push(data),
    });
    expect(result).toBe(5);
    expect(seen).toEqual([{ accepted: HEARTBEAT_MS }, ...Array.from({ length: 15 }, (_, i) => ({ step: i }))]);
  });

  it('raises the server\'s code as a RemoteError: a handler\'s own code, an unknown method (404)', async () => {
    const failed = await call(`${setup.h1}/fail`).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(RemoteError);
    expect(failed).toMatchObject({ code: 'APP_ERR_NOPE', message: 'not today' });
    await expect(call(`${setup.h1}/nope`)).rejects.toMatchObject({ code: 'HW_ERR_UNKNOWN_METHOD' });
  });

  it('abort: rejects with HW_ERR_ABORTED at once, and the server aborts the job with HW_ERR_PEER_CLOSED', async () => {
    const before = jobs.runs.length;
    const controller = new AbortController();
    const pending = call(`${setup.h1}/idle`, { ms: 30_000 }, { signal: controller.signal, onAccepted: () => controller.abort() });
    const err = await pending.catch((e: unknown) => e);
    const abortedAt = performance.now();
    expect(err).toBeInstanceOf(AbortedError);
    const run = await jobs.started(before + 1);
    const abort = await setup.events.abort((m) => m.reason === run.signal.reason);
    expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
    expect(abort.at - abortedAt).toBeLessThan(SLACK_MS);
  });

  it('an already-aborted signal rejects before any request', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(call(`${setup.h1}/idle`, {}, { signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
  });

  it('no false verdict: a 1.5 s job with a client bound of 3 × heartbeatMs lives on filler alone', async () => {
    await expect(call(`${setup.h1}/idle`, { ms: 1500 }, { silentMs: 3 * HEARTBEAT_MS })).resolves.toEqual({ ms: 1500 });
  });

  it('validates its options, naming the option', async () => {
    await expect(call(`${setup.h1}/idle`, {}, { silentMs: 0 })).rejects.toThrow(/silentMs/);
    await expect(call(`${setup.h1}/idle`, {}, { onProgress: 3 as never })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(call(`${setup.h1}/idle`, {}, { timeout: 5 } as never)).rejects.toThrow(/unknown option timeout/);
  });
});

describe('call() against a server that misbehaves', () => {
  let server: http.Server;
  let base: string;
  let closedRequests = 0;
  let closed: () => void = () => {};

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      res.on('close', () => {
        closedRequests++;
        closed();
      });
      if (req.url === '/proxy-error') {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>502 Bad Gateway</html>');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      // /silent: then nothing, ever. /drop: the connection is cut mid-job. /garbage: not JSON.
      res.write('{"type":"accepted","id":1,"heartbeatMs":100}\n');
      if (req.url === '/drop') setTimeout(() => res.destroy(), 50);
      if (req.url === '/garbage') res.end('<html>\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('a silent server: HW_ERR_SERVER_SILENT after silentMs with no byte, and the request is closed', async () => {
    const before = closedRequests;
    const requestClosed = new Promise<void>((resolve) => (closed = resolve));
    const started = performance.now();
    const err = await call(`${base}/silent`, {}, { silentMs: 500 }).catch((e: unknown) => e);
    const ms = performance.now() - started;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'HW_ERR_SERVER_SILENT' });
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(500 + SLACK_MS);
    await requestClosed;
    expect(closedRequests).toBeGreaterThan(before);
  });

  it('a connection cut mid-job: HW_ERR_CONNECTION_LOST', async () => {
    await expect(call(`${base}/drop`, {}, { silentMs: 5000 })).rejects.toMatchObject({ code: 'HW_ERR_CONNECTION_LOST' });
  });

  it('a line that is not an event: HW_ERR_PROTOCOL', async () => {
    await expect(call(`${base}/garbage`)).rejects.toMatchObject({ code: 'HW_ERR_PROTOCOL' });
  });

  it('an error page from something other than the bridge (a proxy\'s 502): HW_ERR_CONNECTION_LOST naming the status', async () => {
    await expect(call(`${base}/proxy-error`)).rejects.toMatchObject({ code: 'HW_ERR_CONNECTION_LOST', message: expect.stringMatching(/HTTP 502/) });
  });

  it('nothing listening: HW_ERR_CONNECTION_LOST', async () => {
    const probe = http.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    await expect(call(`http://127.0.0.1:${port}/x`)).rejects.toMatchObject({ code: 'HW_ERR_CONNECTION_LOST' });
  });
});
