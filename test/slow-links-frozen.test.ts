import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { connect } from '@heartwire/client';
import { ChildClient } from './harness/child.js';
import { FaultProxy } from './harness/fault-proxy.js';
import { ServerProcess } from './harness/server-process.js';
import { abortOf, KiB, MiB, serveSlowLink as serve, SLACK_MS } from './harness/slow-link.js';

/*
 * Frozen peers on slow links (PROTOCOL.md §5): a paced proxy delivers one
 * direction at 256 KiB/s (1 MiB/s in one case) while a large frame crosses it, and the client (or
 * the server) is frozen with SIGSTOP halfway. Any byte still counts as life,
 * so the verdict waits for what the path's buffers already held, then comes
 * within the bound §5 gives. Each test owns its server, proxy and processes,
 * so they run side by side. Bounds are loose; measured times print with a
 * "[slow-links]" prefix.
 */

const heartbeatMs = 500;
const silentMs = 1500;
const bytesPerSecond = 256 * KiB;
/**
 * Each test waits for the path's buffers to drain, which takes seconds: the kernel on loopback
 * holds a few MiB behind a slow reader (2.6 MB and 3.4 to 5.5 MB seen here).
 */
const TEST_TIMEOUT_MS = 60_000;
/** Far more than the kernels' buffers hold on loopback (a few MiB): the transfer outlives the freeze. */
const BIG = { maxFrameBytes: 16 * MiB, maxWriteBacklogBytes: 16 * MiB };

/** Runs `body` with a list of clean-ups that always run, last first. */
async function withCleanups(body: (cleanups: Array<() => unknown>) => Promise<void>): Promise<void> {
  const cleanups: Array<() => unknown> = [];
  try {
    await body(cleanups);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

describe.concurrent('a frozen peer on a slow link is still caught', () => {
  it('client frozen (SIGSTOP) mid-upload at 256 KiB/s: HW_ERR_PEER_SILENT once the path has drained and silentMs passed', () =>
    withCleanups(async (cleanups) => {
      const { jobs, port, close } = await serve({ heartbeatMs, silentMs });
      cleanups.push(close);
      const proxy = await FaultProxy.start({ port, pace: { toServer: { bytesPerSecond } } });
      cleanups.push(() => proxy.close());
      const child = new ChildClient(proxy.port);
      cleanups.push(() => child.dispose());
      await child.waitFor('connected');
      child.send({ cmd: 'call', id: 1, method: 'job', params: { ms: 600_000 } });
      const run = await jobs.started();
      const link = await proxy.link();
      child.send({ cmd: 'call', id: 2, method: 'upload', bytes: 3 * MiB });
      await proxy.until(() => (link.toServer.bytes > 512 * KiB ? true : undefined), '512 KiB of the upload through the proxy');

      const bytesAtFreeze = link.toServer.bytes;
      const frozenAt = child.kill('SIGSTOP');
      const abort = await abortOf(run);
      const drained = link.toServer.bytes - bytesAtFreeze;
      const sinceLastByte = abort.at - link.toServer.lastWriteAt;
      const sinceFreeze = abort.at - frozenAt;
      console.log(
        `[slow-links] client frozen mid-upload: verdict ${sinceFreeze.toFixed(0)} ms after the freeze, ` +
          `${sinceLastByte.toFixed(0)} ms after the last byte; ${drained} B drained from the path's buffers meanwhile`,
      );
      expect(abort.reason.code).toBe('HW_ERR_PEER_SILENT');
      // Never before silentMs without a byte; within heartbeatMs + silentMs of the last one.
      expect(sinceLastByte).toBeGreaterThanOrEqual(silentMs - 1);
      expect(sinceLastByte).toBeLessThan(heartbeatMs + silentMs + SLACK_MS);
      // The documented bound: heartbeatMs + silentMs + what was in the path's buffers at the rate of the link.
      expect(sinceFreeze).toBeLessThan(heartbeatMs + silentMs + (drained / bytesPerSecond) * 1000 + SLACK_MS);
    }), TEST_TIMEOUT_MS);

  it('client frozen (SIGSTOP) mid-download at 256 KiB/s: caught within heartbeatMs + silentMs, as stalled (our output was backed up)', () =>
    withCleanups(async (cleanups) => {
      // Node still holds most of the result at the verdict, so it is stalled, not silent (PROTOCOL.md §5).
      const { jobs, port, close } = await serve({ heartbeatMs, silentMs, stallMs: 60_000, ...BIG });
      cleanups.push(close);
      const proxy = await FaultProxy.start({ port, pace: { toClient: { bytesPerSecond } } });
      cleanups.push(() => proxy.close());
      const child = new ChildClient(proxy.port, { maxFrameBytes: BIG.maxFrameBytes });
      cleanups.push(() => child.dispose());
      await child.waitFor('connected');
      child.send({ cmd: 'call', id: 1, method: 'job', params: { ms: 600_000 } });
      const run = await jobs.started();
      const link = await proxy.link();
      child.send({ cmd: 'call', id: 2, method: 'download', params: { bytes: 12 * MiB } });
      await proxy.until(() => (link.toClient.bytes > 512 * KiB ? true : undefined), '512 KiB of the download through the proxy');

      const frozenAt = child.kill('SIGSTOP');
      const abort = await abortOf(run);
      const sinceFreeze = abort.at - frozenAt;
      console.log(`[slow-links] client frozen mid-download: verdict ${sinceFreeze.toFixed(0)} ms after the freeze`);
      expect(abort.reason.code).toBe('HW_ERR_PEER_STALLED');
      expect(sinceFreeze).toBeLessThan(heartbeatMs + silentMs + SLACK_MS);
      expect(abort.at - link.toServer.lastWriteAt).toBeGreaterThanOrEqual(silentMs - 1);
    }), TEST_TIMEOUT_MS);

  it('server frozen (SIGSTOP) mid-download at 1 MiB/s: HW_ERR_SERVER_SILENT heartbeatMs + silentMs after the last byte', () =>
    withCleanups(async (cleanups) => {
      // Faster than the other cases: what the server's kernel holds (up to ~6 MB) drains here, at this rate.
      const downlink = 1024 * KiB;
      const server = await ServerProcess.start({ server: { heartbeatMs, silentMs, ...BIG } });
      cleanups.push(() => server.kill());
      const proxy = await FaultProxy.start({ port: server.port, pace: { toClient: { bytesPerSecond: downlink } } });
      cleanups.push(() => proxy.close());
      const client = await connect({ host: '127.0.0.1', port: proxy.port, maxFrameBytes: BIG.maxFrameBytes });
      cleanups.push(() => client.close());
      const download = client.call('download', { bytes: 12 * MiB }).catch((err: { code?: string }) => err);
      const link = await proxy.link();
      await proxy.until(() => (link.toClient.bytes > 512 * KiB ? true : undefined), '512 KiB of the download through the proxy');

      const bytesAtFreeze = link.toClient.bytes;
      const frozenAt = performance.now();
      server.process.kill('SIGSTOP');
      const error = (await download) as { code?: string };
      const verdictAt = performance.now();
      const sinceLastByte = verdictAt - link.toClient.lastWriteAt;
      console.log(
        `[slow-links] server frozen mid-download: verdict ${(verdictAt - frozenAt).toFixed(0)} ms after the freeze, ` +
          `${sinceLastByte.toFixed(0)} ms after the last byte; ${link.toClient.bytes - bytesAtFreeze} B drained meanwhile`,
      );
      expect(error.code).toBe('HW_ERR_SERVER_SILENT');
      expect(sinceLastByte).toBeGreaterThanOrEqual(heartbeatMs + silentMs - 1);
      expect(sinceLastByte).toBeLessThan(heartbeatMs + silentMs + SLACK_MS);
    }), TEST_TIMEOUT_MS);

  it('server frozen (SIGSTOP) mid-upload at 256 KiB/s: caught within heartbeatMs + silentMs, as stalled (our output was backed up)', () =>
    withCleanups(async (cleanups) => {
      // The client still holds most of the upload at the verdict, so it is stalled, not silent.
      const server = await ServerProcess.start({ server: { heartbeatMs, silentMs, maxFrameBytes: BIG.maxFrameBytes } });
      cleanups.push(() => server.kill());
      const proxy = await FaultProxy.start({ port: server.port, pace: { toServer: { bytesPerSecond } } });
      cleanups.push(() => proxy.close());
      const client = await connect({ host: '127.0.0.1', port: proxy.port, stallMs: 60_000 });
      cleanups.push(() => client.close());
      const upload = client.call('upload', new Uint8Array(12 * MiB)).catch((err: { code?: string }) => err);
      const link = await proxy.link();
      await proxy.until(() => (link.toServer.bytes > 512 * KiB ? true : undefined), '512 KiB of the upload through the proxy');

      const frozenAt = performance.now();
      server.process.kill('SIGSTOP');
      const error = (await upload) as { code?: string };
      const sinceFreeze = performance.now() - frozenAt;
      console.log(`[slow-links] server frozen mid-upload: verdict ${sinceFreeze.toFixed(0)} ms after the freeze`);
      expect(error.code).toBe('HW_ERR_SERVER_STALLED');
      expect(sinceFreeze).toBeLessThan(heartbeatMs + silentMs + SLACK_MS);
      expect(performance.now() - link.toClient.lastWriteAt).toBeGreaterThanOrEqual(heartbeatMs + silentMs - 1);
    }), TEST_TIMEOUT_MS);
});
