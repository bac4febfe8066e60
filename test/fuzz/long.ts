/**
 * `pnpm fuzz`: the live fuzz of test/fuzz/live.ts for minutes, with a new
 * seed each run (printed, so a failure can be replayed with FUZZ_SEED).
 *
 *   FUZZ_SECONDS      how long to run (default 180)
 *   FUZZ_SEED         the seed (default: drawn at random)
 *   FUZZ_CONCURRENCY  hostile connections open at once (default 16)
 *
 * Exits 0 when every check held, 1 with the failing script otherwise.
 */
import { runLiveFuzz, type LiveFuzzReport } from './live.js';

const seconds = Number(process.env.FUZZ_SECONDS ?? 180);
const seed = process.env.FUZZ_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FUZZ_SEED);
const concurrency = Number(process.env.FUZZ_CONCURRENCY ?? 16);
if (!(seconds > 0) || !Number.isInteger(seed) || !(concurrency >= 1)) {
  console.error('FUZZ_SECONDS must be > 0, FUZZ_SEED an integer, FUZZ_CONCURRENCY >= 1');
  process.exit(2);
}

const line = (r: LiveFuzzReport): string =>
  `${(r.elapsedMs / 1000).toFixed(0)} s: ${r.connections} hostile connections, ${r.goodCalls} good calls, ${JSON.stringify(r.outcomes)}`;

let lastPrinted = 0;
console.log(`live fuzz: ${seconds} s, seed ${seed}, ${concurrency} hostile connections at once (node ${process.version})`);
try {
  const report = await runLiveFuzz({
    seed,
    connections: Number.MAX_SAFE_INTEGER,
    durationMs: seconds * 1000,
    concurrency,
    onProgress: (r) => {
      // At most one line per 10 s.
      if (r.elapsedMs - lastPrinted < 10_000) return;
      lastPrinted = r.elapsedMs;
      console.log(`  ${line(r)}`);
    },
  });
  console.log(`passed: ${line(report)}`);
} catch (err) {
  console.error(`FAILED (replay with FUZZ_SEED=${seed}):\n${(err as Error).message}`);
  process.exit(1);
}
