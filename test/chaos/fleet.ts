/**
 * `pnpm chaos:fleet`: 10,000 calls through front servers to a BullMQ fleet on
 * a real redis-server, with clients, fleet workers and front servers killed
 * at random and one Redis restart; see test/chaos/fleet-chaos.ts for what
 * must hold.
 *
 *   CHAOS_CALLS   calls in all (default 10000)
 *   CHAOS_SEED    the seed (default: drawn at random)
 *
 * Exits 0 when every rule held, 1 otherwise; writes the report to
 * bench/results/fleet-chaos.json.
 */
import { header, writeResults } from '../../bench/lib/report.js';
import { runFleetChaos } from './fleet-chaos.js';

const calls = Number(process.env.CHAOS_CALLS ?? 10_000);
const seed = process.env.CHAOS_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.CHAOS_SEED);
if (!Number.isInteger(calls) || calls < 100 || !Number.isInteger(seed)) {
  console.error('CHAOS_CALLS must be an integer >= 100, CHAOS_SEED an integer');
  process.exit(2);
}

console.log(`fleet chaos: ${calls} calls, seed ${seed} (node ${process.version})`);
const report = await runFleetChaos({
  calls,
  clients: 4,
  callsPerClient: 500,
  concurrency: 16,
  frontServers: 2,
  fleetWorkers: 3,
  killEveryMs: 1500,
  seed,
  log: (line) => console.log(line),
});
console.log(JSON.stringify(report, null, 2));
writeResults('fleet-chaos', { ...header(), seed, ...report });
if (report.violations.length > 0) {
  console.error(`FAILED (replay with CHAOS_SEED=${seed}): ${report.violations.length} broken rules`);
  process.exit(1);
}
console.log('passed');
