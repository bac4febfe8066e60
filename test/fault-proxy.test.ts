import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type ClientOptions, type HeartwireClient } from '@heartwire/client';
import type { CallContext, HeartwireServer, ServerOptions } from '@heartwire/server';
import { ChildClient } from './harness/child.js';
import { FaultProxy } from './harness/fault-proxy.js';
import { IdleJobs } from './harness/idle-jobs.js';
import { ServerEvents, startServer } from './harness/server.js';

/*
 * Faults made by a real TCP proxy between a real client and the server
 * (test/harness/fault-proxy.ts): the proxy freezes, resets, slices into
 * 1-byte writes, or half-closes one connection while its job runs. Portable:
 * loopback only, no root. Bounds are loose; measured times print with a
 * "[fault-proxy]" prefix.
 */

const HEARTBEAT_MS = 100;
const SILENT_MS = 500;
const STALL_MS = 1000;
const BOUNDS: ServerOptions = { heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS, stallMs: STALL_MS };
/** No heartbeat for 5 s: after ACCEPTED the server writes nothing, so a reset is seen by reading, not by a failed write. */
const QUIET: ServerOptions = { heartbeatMs: 5000, silentMs: 5000, stallMs: STALL_MS };
/**
 * For a stalled reader: no silent verdict within the test's bounds, so the stall rules judge
 * (no progress for stallMs, or the write-backlog cap). A PING timing out says STALLED only if
 * our output was backed up at that moment, and how soon a flood fills the kernel's buffers
 * depends on the machine's load: with the short silentMs the verdict was either code.
 */
const STALL_RULES: ServerOptions = { heartbeatMs: HEARTBEAT_MS, silentMs: 10_000, stallMs: STALL_MS };
/** Scheduling noise on a busy 2-core machine, never the protocol. */
const SLACK_MS = 1500;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  readonly port: number;
  readonly proxy: FaultProxy;
  readonly jobs: IdleJobs;
  readonly events: ServerEvents;
}

/** A server with an idle `job` (and whatever `register` adds), and a fault proxy in front of it. */
async function setup(
  options: ServerOptions,
  register: (server: HeartwireServer) => void = () => {},
  sliceMs?: number,
): Promise<Setup> {
  const events = new ServerEvents();
  cleanups.push(() => events.dispose());
  const jobs = new IdleJobs();
  const { port, close } = await startServer(options, (server) => {
    server.handle('job', jobs.handler);
    register(server);
  });
  cleanups.push(close);
  const proxy = await FaultProxy.start(sliceMs === undefined ? { port } : { port, sliceMs });
  cleanups.push(() => proxy.close());
  return { port, proxy, jobs, events };
}

function childVia(proxy: FaultProxy): ChildClient {
  const child = new ChildClient(proxy.port);
  cleanups.push(() => child.dispose());
  return child;
}

async function clientVia(proxy: FaultProxy, options: Partial<ClientOptions> = {}): Promise<HeartwireClient> {
  const client = await connect({ host: '127.0.0.1', port: proxy.port, ...options });
  cleanups.push(() => client.close());
  return client;
}

function report(label: string, ms: number): number {
  console.log(`[fault-proxy] ${label}: ${ms.toFixed(1)} ms`);
  return ms;
}

describe('faults made by a proxy between client and server', () => {
  it('freeze (nothing forwarded, nothing read, connections open) → server HW_ERR_PEER_SILENT, client HW_ERR_SERVER_SILENT', async () => {
    const { proxy, jobs, events } = await setup(BOUNDS);
    const child = childVia(proxy);
    child.send({ cmd: 'call', id: 1, method: 'job', params: null });
    await child.waitFor('accepted', (e) => e.id === 1);
    const run = await jobs.started();
    const link = await proxy.link();

    const frozenAt = performance.now();
    link.freeze();
    const abort = await events.abort((m) => m.id === run.id);
    expect(abort.reason.code).toBe('HW_ERR_PEER_SILENT');
    // The proxy sent neither FIN nor RST: both its connections are still open at the verdict.
    expect(link.client.destroyed || link.upstream.destroyed).toBe(false);
    expect(link.toServer.finForwarded || link.toClient.finForwarded).toBe(false);
    const ms = report('freeze → server verdict', abort.at - frozenAt);
    expect(ms).toBeGreaterThanOrEqual(SILENT_MS - HEARTBEAT_MS);
    expect(ms).toBeLessThan(HEARTBEAT_MS + SILENT_MS + SLACK_MS);
    expect((await events.close()).reason?.code).toBe('HW_ERR_PEER_SILENT');

    // The server's RST stops at the frozen proxy too: the client hears nothing and judges by itself.
    const error = await child.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_SERVER_SILENT');
    report('freeze → client verdict', (error.t as number) - (performance.timeOrigin + frozenAt));
  });

  it('stalled reader (the proxy stops reading what the server writes) → HW_ERR_PEER_STALLED within its bound', async () => {
    let queued = 0;
    const { proxy, events } = await setup(STALL_RULES, (server) => {
      // Writes 64 KiB progress frames as fast as the socket takes them; once its buffer is
      // full, one more every 5 ms, so that memory stays bounded while the backlog is judged.
      server.handle('flood', async (_params: unknown, ctx: CallContext) => {
        const chunk = new Uint8Array(64 * 1024);
        while (!ctx.signal.aborted) {
          const ok = ctx.progress(chunk);
          queued += chunk.byteLength;
          if (ok) await nextTurn();
          else await sleep(5);
        }
        throw ctx.signal.reason;
      });
    });
    // The frozen pipe cuts the client off from the server too. With a short bound (it was 600 ms)
    // the client's own silent verdict raced the server's stall verdict, and its RST, passed on by
    // the proxy, could reach the server first (HW_ERR_PEER_RESET). With a bound far past the test's
    // timeouts only the server judges; the client learns of it through the path.
    const client = await clientVia(proxy, { serverSilentMs: 60_000 });
    let progressed = 0;
    let settled = false;
    const call = client
      .call('flood', null, { onProgress: () => (progressed += 1) })
      .then(
        () => expect.fail('the flood call returned'),
        (err: { code?: string }) => err,
      )
      .finally(() => (settled = true));
    const link = await proxy.link();
    // Data really flows before the stall.
    await proxy.until(() => (link.toClient.bytes > 1024 * 1024 ? true : undefined), '1 MiB through the proxy');

    const stalledAt = performance.now();
    link.freeze('toClient');
    const abort = await events.abort();
    expect(abort.reason.code).toBe('HW_ERR_PEER_STALLED');
    const ms = report('stalled reader → server verdict', abort.at - stalledAt);
    expect(ms).toBeLessThan(STALL_MS + SLACK_MS);
    expect(settled).toBe(false);
    // The server's RST waits at the frozen proxy; once it reads again, the proxy passes it on.
    link.thaw('toClient');
    expect((await call).code).toBe('HW_ERR_CONNECTION_LOST');
    expect(progressed).toBeGreaterThan(0);
    console.log(`[fault-proxy]   (${(queued / 2 ** 20).toFixed(1)} MiB of progress queued by the flood)`);
  });

  it('1-byte slices, 1 ms apart, both ways from the first byte: handshake, heartbeats, progress and result all arrive whole', async () => {
    const { proxy, events } = await setup(
      { heartbeatMs: HEARTBEAT_MS, silentMs: 2000 },
      (server) => {
        server.handle('steps', async (params: { steps: number }, ctx: CallContext) => {
          for (let step = 1; step <= params.steps; step++) {
            await sleep(80);
            ctx.signal.throwIfAborted();
            ctx.progress({ step, text: 'é→✓' });
          }
          return { done: params.steps };
        });
      },
      1,
    );
    const startedAt = performance.now();
    const client = await clientVia(proxy);
    const progress: unknown[] = [];
    const result = await client.call('steps', { steps: 5 }, { onProgress: (p) => progress.push(p) });
    const elapsed = performance.now() - startedAt;

    expect(result).toEqual({ done: 5 });
    expect(progress).toEqual([1, 2, 3, 4, 5].map((step) => ({ step, text: 'é→✓' })));
    const link = await proxy.link();
    for (const pipe of [link.toServer, link.toClient]) {
      // Every byte went out in a write of its own: every frame arrived cut at every offset.
      expect(pipe.bytes).toBeGreaterThan(40);
      expect(pipe.writes).toBe(pipe.bytes);
    }
    // Slow delivery: at least 1 ms per byte toward the client.
    expect(elapsed).toBeGreaterThanOrEqual(link.toClient.bytes - 1);
    expect(events.aborts).toEqual([]);
    report(`${link.toClient.bytes} + ${link.toServer.bytes} bytes in 1-byte slices, call`, elapsed);
  });

  it('reset (RST both ways) → server HW_ERR_PEER_RESET, client HW_ERR_CONNECTION_LOST', async () => {
    const { proxy, jobs, events } = await setup(QUIET);
    const child = childVia(proxy);
    child.send({ cmd: 'call', id: 1, method: 'job', params: null });
    await child.waitFor('accepted', (e) => e.id === 1);
    const run = await jobs.started();
    const link = await proxy.link();

    const resetAt = performance.now();
    link.reset();
    const abort = await events.abort((m) => m.id === run.id);
    expect(abort.reason.code).toBe('HW_ERR_PEER_RESET');
    expect(report('reset → server verdict', abort.at - resetAt)).toBeLessThan(SLACK_MS);
    const error = await child.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_CONNECTION_LOST');
  });

  it('half-close toward the server (FIN, no HALF_CLOSE) while the client still reads → HW_ERR_PEER_CLOSED at once', async () => {
    const { proxy, jobs, events } = await setup(BOUNDS);
    const child = childVia(proxy);
    child.send({ cmd: 'call', id: 1, method: 'job', params: null });
    await child.waitFor('accepted', (e) => e.id === 1);
    const run = await jobs.started();
    const link = await proxy.link();

    const finAt = performance.now();
    link.halfClose('toServer');
    const abort = await events.abort((m) => m.id === run.id);
    expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
    expect(report('FIN toward the server → server verdict', abort.at - finAt)).toBeLessThan(SLACK_MS);
    // The server closes in turn; its FIN reaches the client through the open direction.
    const error = await child.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_CONNECTION_LOST');
    expect(link.toClient.finForwarded).toBe(true);
  });

  it('client.end() through the proxy: HALF_CLOSE and FIN pass, the job runs past heartbeatMs + silentMs and its result arrives', async () => {
    const { proxy, jobs, events } = await setup(BOUNDS);
    const client = await clientVia(proxy);
    const ms = HEARTBEAT_MS + SILENT_MS + 3 * HEARTBEAT_MS;
    const call = client.call('job', { ms });
    await jobs.started();
    const ended = client.end();
    const link = await proxy.link();
    await proxy.until(() => (link.toServer.finForwarded ? true : undefined), 'the FIN through the proxy');

    // No PONG can come any more (the client's sending side is closed), yet no silent verdict.
    expect(await call).toEqual({ ms });
    await ended;
    expect(events.aborts).toEqual([]);
    expect(link.toClient.bytes).toBeGreaterThan(0);
  });
});
