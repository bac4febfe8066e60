/**
 * The soak, short: thousands of calls from client processes, some cancelled,
 * some clients killed or frozen at random moments (see test/soak/soak.ts for
 * every rule checked). `pnpm soak` runs 100,000 calls.
 */
import { describe, expect, it } from 'vitest';
import { runSoak } from './soak/soak.js';

describe('soak (short)', () => {
  it('every call ends once with a result or a coded error; no job, connection or handle left; the heap does not grow', async () => {
    const report = await runSoak({
      calls: 3000,
      warmupCalls: 600,
      callsPerClient: 600,
      clients: 4,
      concurrency: 16,
      cancelRate: 0.1,
      killRate: 0.3,
      freezeRate: 0.3,
      maxHeapGrowth: 0.05,
      // Fixed, so the suite is reproducible; `pnpm soak` draws a new seed.
      seed: 20_260_501,
    });
    const { samplesMiB, ...heap } = report.heap;
    console.log(`[soak] ${JSON.stringify({ ...report, heap })}`);
    expect(report.violations).toEqual([]);
    // The warm-up alone kills one client and freezes another, each with calls in flight.
    expect(report.clientsKilled).toBeGreaterThanOrEqual(1);
    expect(report.clientsFrozen).toBeGreaterThanOrEqual(1);
    expect(report.outcomes.ok).toBeGreaterThan(report.calls / 2);
    expect(report.outcomes.HW_ERR_ABORTED).toBeGreaterThan(0);
    expect(samplesMiB.length).toBeGreaterThanOrEqual(30);
  }, 60_000);
});
