import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '@heartwire/core';
import type { CallContext } from '@heartwire/server';
import { RawPeer } from './harness/raw.js';
import { startServer } from './harness/server.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const forever = (_params: unknown, ctx: CallContext): Promise<void> =>
  new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));

describe('the server shares one timer wheel among its connections', () => {
  it('20 connections at a 100 ms heartbeat: every PING comes in order, never before its time', async () => {
    const HEARTBEAT = 100;
    const PINGS = 5;
    const { port, close } = await startServer({ heartbeatMs: HEARTBEAT }, (server) => server.handle('job', forever));
    cleanups.push(close);
    const peers = await Promise.all(Array.from({ length: 20 }, () => RawPeer.handshake(port)));
    cleanups.push(() => peers.forEach(({ peer }) => peer.socket.destroy()));
    const calledAt = peers.map(({ peer }) => {
      const at = performance.now();
      peer.call(1, 'job', null);
      return at;
    });
    await Promise.all(peers.map(({ peer }) => peer.frame((f) => f.type === FrameType.PING && f.stream === 0 && f.payload[3] === PINGS)));
    peers.forEach(({ peer }, i) => {
      const pings = peer.frames.flatMap((f, j) => (f.type === FrameType.PING ? [{ seq: f.payload[3], at: peer.receivedAt[j] as number }] : []));
      expect(pings.slice(0, PINGS).map((p) => p.seq)).toEqual([1, 2, 3, 4, 5]);
      for (const { seq, at } of pings.slice(0, PINGS)) {
        // PING k is due k intervals after the call began, which was after we sent it: never earlier.
        expect(at - (calledAt[i] as number)).toBeGreaterThanOrEqual((seq as number) * HEARTBEAT);
        // Loose: one wheel tick late at most, plus whatever a loaded machine adds.
        expect(at - (calledAt[i] as number)).toBeLessThan((seq as number) * HEARTBEAT + 1000);
      }
    });
  });

  it('a closed server leaves no timer armed: its process exits on its own, long before the next heartbeat', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/exit-when-idle.mjs', import.meta.url));
    const child = spawn(process.execPath, [fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const started = performance.now();
    const [code] = (await Promise.race([
      once(child, 'exit'),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`still running after 10 s (stdout: ${out})`)), 10_000)),
    ])) as [number | null];
    expect(out).toBe('closed\n');
    expect(code).toBe(0);
    // The heartbeat was 60 s away: only a cleared timer lets the process go this soon.
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
