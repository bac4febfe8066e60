/**
 * `pnpm soak`: 100,000 calls from many client processes, about 10 % of them
 * cancelled or caught in flight by a client killed or frozen; see
 * test/soak/soak.ts for what must hold.
 *
 *   SOAK_CALLS     calls in all (default 100000)
 *   SOAK_CLIENTS   client processes at once (default 8)
 *   SOAK_SEED      the seed (default: drawn at random)
 *
 * Exits 0 when every rule held, 1 otherwise; writes the report to
 * bench/results/soak.json.
 */
import { header, writeResults } from '../../bench/lib/report.js';
import { runSoak } from './soak.js';

const calls = Number(process.env.SOAK_CALLS ?? 100_000);
// The first 2 % warm every path up (one client killed, one frozen) before the heap is measured.
const warmupCalls = Math.round(calls * 0.02);
const clients = Number(process.env.SOAK_CLIENTS ?? 8);
const seed = process.env.SOAK_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.SOAK_SEED);
if (!Number.isInteger(calls) || calls < 1000 || !Number.isInteger(clients) || clients < 1 || !Number.isInteger(seed)) {
  console.error('SOAK_CALLS must be an integer >= 1000, SOAK_CLIENTS >= 1, SOAK_SEED an integer');
  process.exit(2);
}

console.log(`soak: ${calls} calls, ${clients} client processes at once, seed ${seed} (node ${process.version})`);
const report = await runSoak({
  calls: calls - warmupCalls,
  warmupCalls,
  callsPerClient: 1000,
  clients,
  concurrency: 16,
  cancelRate: 0.12,
  killRate: 0.3,
  freezeRate: 0.3,
  maxHeapGrowth: 0.05,
  seed,
  log: (line) => console.log(line),
});
console.log(JSON.stringify(report, null, 2));
writeResults('soak', { ...header(), seed, ...report });
if (report.violations.length > 0) {
  console.error(`FAILED (replay with SOAK_SEED=${seed}): ${report.violations.length} broken rules`);
  process.exit(1);
}
console.log('passed');
