import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '@heartwire/http/client';
import { Curl, startHttp, type HttpSetup } from './harness/http.js';
import { IdleJobs } from './harness/idle-jobs.js';
import type { Nginx } from './harness/nginx.js';
import { nginxHttpUnavailable, startNginxHttp } from './harness/nginx-http.js';

/*
 * A real nginx as an HTTP reverse proxy with `proxy_read_timeout 2s`: it
 * cuts a response from which no byte came for 2 s. Two bridges behind it,
 * the same job on each: one sends filler every 500 ms, the other's interval
 * is a minute. Clients are curl child processes and Node's fetch.
 */

const READ_TIMEOUT_MS = 2000;
const HEARTBEAT_MS = 500;
const JOB_MS = 6000;
/** Scheduling noise on a busy 2-core machine, never the protocol. */
const SLACK_MS = 1500;

const unavailable = await nginxHttpUnavailable();
if (unavailable !== undefined) console.warn(`[nginx http] skipped: ${unavailable}`);

const jobs = new IdleJobs();
let filler: HttpSetup;
let quiet: HttpSetup;
let fillerProxy: Nginx;
let quietProxy: Nginx;
const curls: Curl[] = [];

function curl(...args: string[]): Curl {
  const c = new Curl(args);
  curls.push(c);
  return c;
}

const title = unavailable === undefined ? 'behind a real nginx HTTP reverse proxy' : `behind a real nginx HTTP reverse proxy (skipped: ${unavailable})`;

describe.skipIf(unavailable !== undefined)(title, () => {
  beforeAll(async () => {
    filler = await startHttp((hw) => hw.handle('idle', jobs.handler), { heartbeatMs: HEARTBEAT_MS });
    quiet = await startHttp((hw) => hw.handle('idle', jobs.handler), { heartbeatMs: 60_000 });
    fillerProxy = await startNginxHttp(Number(new URL(filler.h1).port), `${READ_TIMEOUT_MS}ms`);
    quietProxy = await startNginxHttp(Number(new URL(quiet.h1).port), `${READ_TIMEOUT_MS}ms`);
  });

  afterAll(async () => {
    for (const c of curls) await c.dispose();
    await fillerProxy?.stop();
    await quietProxy?.stop();
    await filler?.close();
    await quiet?.close();
  });

  it(`a ${JOB_MS / 1000} s job lives through proxy_read_timeout ${READ_TIMEOUT_MS / 1000}s on filler alone (fetch and curl); without filler nginx cuts it at ~2 s and the job is aborted`, async () => {
    const started = performance.now();
    const viaFetch = call(`http://127.0.0.1:${fillerProxy.port}/idle`, { ms: JOB_MS }, { silentMs: 3 * HEARTBEAT_MS });
    const viaCurl = curl('--data-binary', JSON.stringify({ ms: JOB_MS }), `http://127.0.0.1:${fillerProxy.port}/idle`);
    const cut = curl('--data-binary', JSON.stringify({ ms: JOB_MS }), `http://127.0.0.1:${quietProxy.port}/idle`);
    const abort = await quiet.events.abort();
    expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
    expect(abort.at - started).toBeGreaterThanOrEqual(READ_TIMEOUT_MS - 100);
    expect(abort.at - started).toBeLessThan(READ_TIMEOUT_MS + SLACK_MS);
    await cut.done();
    expect(cut.stdout).toMatch(/"accepted"/);
    expect(cut.stdout).not.toMatch(/"result"/);
    await expect(viaFetch).resolves.toEqual({ ms: JOB_MS });
    await viaCurl.done();
    expect(viaCurl.stdout).toMatch(/\{"type":"result","data":\{"ms":6000\}\}\n$/);
    // Only the job without filler was aborted (the recorder hears every bridge in this process).
    expect(quiet.events.aborts).toHaveLength(1);
  });

  it('curl SIGKILLed behind nginx: nginx closes the upstream request, and the job aborts with HW_ERR_PEER_CLOSED', async () => {
    const before = jobs.runs.length;
    const c = curl(`http://127.0.0.1:${fillerProxy.port}/idle`);
    await c.output(/"accepted"/);
    const run = await jobs.started(before + 1);
    const killedAt = c.kill('SIGKILL');
    const abort = await filler.events.abort((m) => m.reason === run.signal.reason);
    expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
    expect(abort.at - killedAt).toBeLessThan(HEARTBEAT_MS + SLACK_MS);
  });

  it('the fetch client aborted behind nginx: the job aborts with HW_ERR_PEER_CLOSED', async () => {
    const before = jobs.runs.length;
    const controller = new AbortController();
    const pending = call(`http://127.0.0.1:${fillerProxy.port}/idle`, {}, { signal: controller.signal, onAccepted: () => controller.abort() });
    await expect(pending).rejects.toMatchObject({ code: 'HW_ERR_ABORTED' });
    const abortedAt = performance.now();
    const run = await jobs.started(before + 1);
    const abort = await filler.events.abort((m) => m.reason === run.signal.reason);
    expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
    expect(abort.at - abortedAt).toBeLessThan(HEARTBEAT_MS + SLACK_MS);
  });
});
