// heartwire HTTP demo: real curl and fetch-client processes, a real nginx in front, a printed timeline.
//
//   pnpm demo:http        (builds the packages, then runs this file with tsx)
//
// One bridge serves a long 'render' job on node:http (behind an nginx HTTP reverse proxy with
// proxy_read_timeout 2s, when nginx is installed) and on node:http2 cleartext. Each scene starts a
// client process that goes away in its own way; the server must stop the job within a bound.
// Exits non-zero when a scene misses its bound plus SLACK_MS, so the demo doubles as a check.
import { spawn, type ChildProcess } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createServer, type CallContext } from '@heartwire/server';
import { createHttpBridge, type HttpCallAbortMessage, type HttpCallEndMessage, type HttpCallStartMessage } from '@heartwire/http';
import { nginxHttpUnavailable, startNginxHttp } from '../test/harness/nginx-http.js';

const HEARTBEAT_MS = 500;
const SILENT_MS = 1500;
const SLACK_MS = 1000;
const FETCH_CLIENT = fileURLToPath(new URL('./http-fetch-client.mjs', import.meta.url));
const T0 = performance.now();

const line = (who: string, what: string): void => {
  console.log(`${((performance.now() - T0) / 1000).toFixed(3).padStart(7)} s  ${who.padEnd(28)} ${what}`);
};

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

// ---- the server ------------------------------------------------------------------

const hw = createServer();
hw.handle('render', async (params: { ms: number }, ctx: CallContext) => {
  const until = performance.now() + params.ms;
  let step = 0;
  while (performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (++step % 4 === 0) ctx.progress({ done: Math.min(1, step / (params.ms / 250)) });
  }
  return 'rendered';
});
const bridge = createHttpBridge(hw, { heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS });
const aborts = new Map<number, HttpCallAbortMessage>();
const label = (m: HttpCallStartMessage): string => `server (call ${m.id}, HTTP/${m.httpVersion})`;
diagnostics.subscribe('heartwire:http:call:start', (m) => line(label(m as HttpCallStartMessage), 'job started'));
diagnostics.subscribe('heartwire:http:call:abort', (m) => {
  const a = m as HttpCallAbortMessage;
  aborts.set(a.id, a);
  line(label(a), `job ABORTED: ${a.reason.code} (${a.reason.message})`);
});
diagnostics.subscribe('heartwire:http:call:end', (m) => {
  const e = m as HttpCallEndMessage;
  if (e.outcome !== 'aborted') line(label(e), `job ended: ${e.outcome} after ${(e.durationMs / 1000).toFixed(1)} s`);
});

const h1 = http.createServer(bridge.listener('render'));
const h2 = http2.createServer(bridge.listener('render'));
const sessions = new Set<http2.ServerHttp2Session>();
h2.on('session', (s) => {
  sessions.add(s);
  s.once('close', () => sessions.delete(s));
});
for (const server of [h1, h2]) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
}
const h1Url = `http://127.0.0.1:${(h1.address() as AddressInfo).port}/render`;
const h2Url = `http://127.0.0.1:${(h2.address() as AddressInfo).port}/render`;
const noNginx = await nginxHttpUnavailable();
const nginx = noNginx === undefined ? await startNginxHttp((h1.address() as AddressInfo).port, '2s') : undefined;
const proxied = nginx === undefined ? h1Url : `http://127.0.0.1:${nginx.port}/render`;
console.log(`heartwire HTTP demo: filler every ${HEARTBEAT_MS} ms, HTTP/2 PING bound ${SILENT_MS} ms`);
console.log(nginx === undefined ? `(nginx missing: ${noNginx}; the proxied scenes go direct)` : `nginx HTTP reverse proxy on :${nginx.port}, proxy_read_timeout 2s, in front of node:http`);
console.log();

// ---- clients -----------------------------------------------------------------------

interface Client {
  readonly child: ChildProcess;
  readonly out: string[];
  readonly exited: Promise<unknown>;
}

function client(who: string, command: string, args: string[], onLine: (text: string) => void = () => {}): Client {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  children.add(child);
  const out: string[] = [];
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      out.push(text);
      onLine(text);
    }
  });
  const exited = once(child, 'exit').then(() => children.delete(child));
  line(who, `started (pid ${child.pid})`);
  return { child, out, exited };
}

/** Resolves once the client printed a line matching `pattern`. */
async function printed(c: Client, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 400 && !c.out.some((l) => pattern.test(l)); i++) await sleep(25);
}

/** Waits for the server's verdict on the newest call and checks it against `bound`. */
async function verdict(scene: string, since: number, codes: string[], boundMs: number, timed = true): Promise<boolean> {
  const deadline = performance.now() + boundMs + SLACK_MS + 2000;
  let found: HttpCallAbortMessage | undefined;
  while (performance.now() < deadline && !(found = [...aborts.values()].find((a) => a.at >= since))) await sleep(10);
  const ms = found === undefined ? Infinity : found.at - since;
  const ok = found !== undefined && codes.includes(found.reason.code) && ms <= boundMs + SLACK_MS;
  results.push({ scene, verdict: found?.reason.code ?? 'none', ms, bound: timed ? boundMs : 0, ok });
  return ok;
}

const results: Array<{ scene: string; verdict: string; ms: number; bound: number; ok: boolean }> = [];
const curlArgs = ['--silent', '--no-buffer', '--max-time', '30'];
const withParams = (url: string, ms: number): string => `${url}?params=${encodeURIComponent(JSON.stringify({ ms }))}`;

// 1. A 6 s job through nginx: filler keeps the 2 s read timeout from cutting it.
{
  const who = 'curl via nginx (6 s job)';
  const c = client(who, 'curl', [...curlArgs, withParams(proxied, 6000)], (t) => t.trim() !== '' && line(who, `got ${t}`));
  await c.exited;
  const ok = c.out.some((l) => l.includes('"result"'));
  results.push({ scene: 'a 6 s job through proxy_read_timeout 2s', verdict: ok ? 'result' : 'cut', ms: 0, bound: 0, ok });
}

// 2. curl hangs up (SIGINT: it closes its connection) behind nginx.
{
  const who = 'curl via nginx, hangs up';
  const c = client(who, 'curl', [...curlArgs, withParams(proxied, 20_000)]);
  await printed(c, /accepted/);
  await sleep(1200);
  const at = performance.now();
  line(who, 'SIGINT: curl closes its connection');
  c.child.kill('SIGINT');
  await verdict('curl hangs up behind nginx', at, ['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET'], HEARTBEAT_MS);
}

// 3. A fetch client killed behind nginx.
{
  const who = 'fetch client via nginx, killed';
  const c = client(who, process.execPath, [FETCH_CLIENT, proxied, JSON.stringify({ ms: 20_000 })], (t) => line(who, t));
  await printed(c, /accepted/);
  await sleep(1200);
  const at = performance.now();
  line(who, 'SIGKILL');
  c.child.kill('SIGKILL');
  await verdict('fetch client killed behind nginx', at, ['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET'], HEARTBEAT_MS);
}

// 4. A fetch client that aborts its call behind nginx.
{
  const who = 'fetch client via nginx, aborts';
  const c = client(who, process.execPath, [FETCH_CLIENT, proxied, JSON.stringify({ ms: 20_000 }), '1200'], (t) => line(who, t));
  // The abort happens inside the client: its time is not on our clock, so this scene checks the code only.
  const since = performance.now();
  await printed(c, /"error"/);
  await verdict('fetch client aborts behind nginx', since, ['HW_ERR_PEER_CLOSED'], HEARTBEAT_MS + 2000, false);
  await c.exited;
}

// 5. curl over HTTP/2, frozen: only a PING can tell.
{
  const who = 'curl --http2, frozen';
  const c = client(who, 'curl', [...curlArgs, '--http2-prior-knowledge', '--output', '/dev/null', withParams(h2Url, 20_000)]);
  await sleep(1200);
  const at = performance.now();
  line(who, 'SIGSTOP: frozen, its kernel still takes our bytes');
  c.child.kill('SIGSTOP');
  await verdict('curl --http2 frozen', at, ['HW_ERR_PEER_SILENT'], HEARTBEAT_MS + SILENT_MS);
  c.child.kill('SIGKILL');
}

// 6. curl over HTTP/2, killed.
{
  const who = 'curl --http2, killed';
  const c = client(who, 'curl', [...curlArgs, '--http2-prior-knowledge', '--output', '/dev/null', withParams(h2Url, 20_000)]);
  await sleep(1200);
  const at = performance.now();
  line(who, 'SIGKILL');
  c.child.kill('SIGKILL');
  await verdict('curl --http2 killed', at, ['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET'], HEARTBEAT_MS);
}

console.log();
for (const r of results) {
  const took = r.bound === 0 ? '' : ` in ${Number.isFinite(r.ms) ? `${r.ms.toFixed(1)} ms` : 'never'} (bound ${r.bound} ms + ${SLACK_MS} ms slack)`;
  console.log(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.scene}: ${r.verdict}${took}`);
}
bridge.close();
await nginx?.stop();
for (const server of [h1, h2]) server.close();
h1.closeAllConnections();
for (const s of sessions) s.destroy();
await new Promise<void>((resolve) => hw.close(() => resolve()));
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
