/**
 * The live fuzz, short: up to 1500 hostile connections against a real
 * server while a well-behaved client works alongside (see test/fuzz/live.ts
 * for what each connection must satisfy). `pnpm fuzz` runs the long one.
 */
import { describe, expect, it } from 'vitest';
import { runLiveFuzz } from './fuzz/live.js';

describe('live fuzz (short)', () => {
  it('random and mutated frames over real sockets: no crash, each bad connection closed with a clear reason, the good client unaffected', async () => {
    // A fixed seed keeps the suite reproducible; `pnpm fuzz` draws new ones.
    const report = await runLiveFuzz({ seed: 20_260_501, connections: 1500, durationMs: 8000, concurrency: 8 });
    console.log(`[fuzz] ${JSON.stringify(report)}`);
    // 1500 take about 4 s here; a slow machine stops at 8 s with fewer, but never too few to mean something.
    expect(report.connections).toBeGreaterThanOrEqual(300);
    expect(report.goodCalls).toBeGreaterThan(0);
    // The scripts reach past the handshake: some end with a protocol error, some cleanly.
    expect(Object.keys(report.outcomes).some((k) => k.startsWith('goaway'))).toBe(true);
    expect(Object.keys(report.outcomes).some((k) => k.startsWith('closed') || k === 'clean end')).toBe(true);
  }, 30_000);
});
