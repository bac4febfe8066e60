import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type CallContext, type HeartwireServer } from '@heartwire/server';
import { createHttpBridge, type HttpBridge } from '@heartwire/http';
import { makeCertificates } from './harness/certs.js';
import { chromiumUnavailable, startChromium, type Chromium } from './harness/chromium.js';
import { HttpEvents } from './harness/http.js';
import { IdleJobs } from './harness/idle-jobs.js';

/*
 * A real headless Chromium (Debian's package, driven by playwright-core)
 * runs a page that uses EventSource and the fetch client (the built
 * dist/client.js, loaded as an ES module). Closing the page mid-job aborts
 * the job on the server. Over HTTP/1.1, and over HTTP/2 with TLS (a
 * certificate made for the run; ALPN picks h2).
 */

const CLIENT_JS = fileURLToPath(new URL('../packages/http/dist/client.js', import.meta.url));
/** Scheduling noise on a busy 2-core machine, never the protocol. */
const SLACK_MS = 1500;
const PAGE = '<!doctype html><meta charset="utf-8"><script type="module">import * as hw from "/client.js"; window.hw = hw;</script>';

const unavailable = chromiumUnavailable();
if (unavailable !== undefined) console.warn(`[chromium] skipped: ${unavailable}`);

const jobs = new IdleJobs();
let hw: HeartwireServer;
let bridge: HttpBridge;
let events: HttpEvents;
let browser: Chromium;
const servers: Array<http.Server | http2.Http2SecureServer> = [];
const sessions = new Set<http2.ServerHttp2Session>();
const origins: Record<'h1' | 'h2', string> = { h1: '', h2: '' };

function route(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void {
  const { pathname } = new URL(req.url ?? '/', 'http://x');
  if (pathname === '/') {
    (res as http.ServerResponse).writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  } else if (pathname === '/client.js') {
    (res as http.ServerResponse).writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
    res.end(readFileSync(CLIENT_JS));
  } else if (pathname === '/favicon.ico') {
    (res as http.ServerResponse).writeHead(404);
    res.end();
  } else {
    bridge.serve(pathname.slice(1), req, res);
  }
}

const title = unavailable === undefined ? 'in a real headless Chromium' : `in a real headless Chromium (skipped: ${unavailable})`;

describe.skipIf(unavailable !== undefined)(title, () => {
  beforeAll(async () => {
    hw = createServer();
    hw.handle('idle', jobs.handler);
    hw.handle('count', async (params: { n: number }, ctx: CallContext) => {
      for (let i = 0; i < params.n; i++) {
        await new Promise((resolve) => setTimeout(resolve, 30));
        ctx.progress(i);
      }
      return `counted ${params.n}`;
    });
    bridge = createHttpBridge(hw, { heartbeatMs: 200 });
    events = new HttpEvents();
    const certs = makeCertificates();
    const h1 = http.createServer(route);
    const h2 = http2.createSecureServer({ key: certs.serverKey, cert: certs.serverCert, allowHTTP1: true }, route);
    h2.on('session', (s) => {
      sessions.add(s);
      s.once('close', () => sessions.delete(s));
    });
    for (const server of [h1, h2]) {
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    }
    origins.h1 = `http://127.0.0.1:${(h1.address() as AddressInfo).port}`;
    origins.h2 = `https://127.0.0.1:${(h2.address() as AddressInfo).port}`;
    browser = await startChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    bridge?.close();
    events?.dispose();
    for (const server of servers) {
      server.close();
      (server as http.Server).closeAllConnections?.();
    }
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => hw.close(() => resolve()));
  });

  async function page(protocol: 'h1' | 'h2') {
    const p = await browser.context.newPage();
    await p.goto(`${origins[protocol]}/`);
    await p.waitForFunction(() => (globalThis as unknown as { hw?: unknown }).hw !== undefined);
    return p;
  }

  for (const protocol of ['h1', 'h2'] as const) {
    const version = protocol === 'h1' ? '1.1' : '2.0';

    it(`${protocol}: EventSource gets accepted, progress and the result as events; the filler never surfaces`, async () => {
      const p = await page(protocol);
      try {
        const seen = await p.evaluate(
          () =>
            new Promise<string[]>((resolve, reject) => {
              const seen: string[] = [];
              const es = new EventSource(`/count?params=${encodeURIComponent(JSON.stringify({ n: 10 }))}`);
              es.onmessage = (e) => seen.push(`message ${e.data}`);
              es.addEventListener('accepted', () => seen.push('accepted'));
              es.addEventListener('progress', (e) => seen.push(`progress ${JSON.parse((e as MessageEvent).data).data}`));
              es.addEventListener('result', (e) => {
                // Closed at once: an EventSource reconnects (and would start a new job) when a stream ends.
                es.close();
                seen.push(`result ${JSON.parse((e as MessageEvent).data).data}`);
                resolve(seen);
              });
              es.addEventListener('error', () => reject(new Error('EventSource error')));
            }),
        );
        expect(seen).toEqual(['accepted', ...Array.from({ length: 10 }, (_, i) => `progress ${i}`), 'result counted 10']);
      } finally {
        await p.close();
      }
    });

    it(`${protocol}: the fetch client in the page gets progress and the result`, async () => {
      const p = await page(protocol);
      try {
        const out = await p.evaluate(async () => {
          const progress: unknown[] = [];
          const { call } = (globalThis as unknown as { hw: typeof import('@heartwire/http/client') }).hw;
          const result = await call('/count', { n: 5 }, { onProgress: (d) => progress.push(d) });
          return { result, progress };
        });
        expect(out).toEqual({ result: 'counted 5', progress: [0, 1, 2, 3, 4] });
      } finally {
        await p.close();
      }
    });

    for (const via of ['EventSource', 'the fetch client'] as const) {
      it(`${protocol}: the page is closed mid-job (${via}): the server's job aborts with HW_ERR_PEER_CLOSED over HTTP/${version}`, async () => {
        const p = await page(protocol);
        const before = jobs.runs.length;
        if (via === 'EventSource') {
          await p.evaluate(() => void new EventSource('/idle'));
        } else {
          await p.evaluate(() => {
            const { call } = (globalThis as unknown as { hw: typeof import('@heartwire/http/client') }).hw;
            void call('/idle', {}).catch(() => undefined);
          });
        }
        const run = await jobs.started(before + 1);
        const closedAt = performance.now();
        await p.close();
        const abort = await events.abort((m) => m.reason === run.signal.reason);
        expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
        expect(abort.httpVersion).toBe(version);
        expect(abort.at - closedAt).toBeLessThan(SLACK_MS);
      });
    }
  }
});
