/**
 * The fleet chaos run, short (see test/chaos/fleet-chaos.ts for every rule
 * checked); `pnpm chaos:fleet` runs 10,000 calls.
 */
import { describe, expect, it } from 'vitest';
import { redisUnavailable } from './harness/redis.js';
import { runFleetChaos } from './chaos/fleet-chaos.js';

const unavailable = await redisUnavailable();
const title = unavailable === undefined ? 'fleet chaos (short)' : `fleet chaos (short) (skipped: ${unavailable})`;

describe.skipIf(unavailable !== undefined)(title, () => {
  it('clients, fleet workers and front servers killed, Redis restarted: every call ended once, no job ran twice, nothing left in Redis', async () => {
    const report = await runFleetChaos({
      calls: 600,
      clients: 3,
      callsPerClient: 150,
      concurrency: 8,
      frontServers: 2,
      fleetWorkers: 2,
      killEveryMs: 1200,
      // Fixed, so the suite is reproducible; `pnpm chaos:fleet` draws a new seed.
      seed: 20_261_130,
    });
    console.log(`[fleet chaos] ${JSON.stringify(report)}`);
    expect(report.violations).toEqual([]);
    expect(report.redisRestarts).toBe(1);
    expect(report.clientsKilled + report.fleetWorkersKilled + report.frontServersKilled).toBeGreaterThanOrEqual(2);
    expect(report.outcomes.ok).toBeGreaterThan(report.calls / 3);
  }, 90_000);
});
