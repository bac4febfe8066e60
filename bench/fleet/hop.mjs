// The thread hop of `pnpm bench:fleet`, alone: echo jobs through heartwire's thread pool
// (StandalonePools, as runWorker uses it), or, as the floor any pool pays, through bare worker
// threads that answer each job with one postMessage (`raw`). 4 threads, `inFlight` jobs at a time;
// with `gapMs`, each lane waits that long after a job, as a fleet worker waits for Redis between
// jobs, so the threads fall asleep. Prints { event: 'done', jobsPerSecond, mainMicros, threadMicros }:
// CPU µs per job of this process's main thread and of all its other threads (workers, V8's helpers).
// argv[2]: JSON { system: 'pool' | 'raw', jobs, inFlight, gapMs }.
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { StandalonePools, worker } from '@heartwire/server';

const { system, jobs, inFlight, gapMs } = JSON.parse(process.argv[2]);
const THREADS = 4;

/** CPU seconds of this process's main thread and of its other threads, from /proc. */
function cpu() {
  const seconds = { main: 0, threads: 0 };
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    seconds[tid === String(process.pid) ? 'main' : 'threads'] += (Number(fields[11]) + Number(fields[12])) / 100;
  }
  return seconds;
}

function poolSystem() {
  const pools = new StandalonePools({ threadPoolSize: THREADS });
  const job = worker(new URL('../../test/fixtures/jobs.mjs', import.meta.url));
  return {
    run: (params) => pools.run(job, params, { signal: new AbortController().signal }),
    close: () => pools.close(),
  };
}

function rawSystem() {
  const threads = Array.from({ length: THREADS }, () => new Worker(new URL('./bare-thread.mjs', import.meta.url)));
  const waiting = new Map();
  for (const thread of threads) thread.on('message', ({ key, value }) => waiting.get(key)?.(value));
  let nextKey = 0;
  return {
    run: (params) =>
      new Promise((resolve) => {
        const key = nextKey++;
        waiting.set(key, (value) => {
          waiting.delete(key);
          resolve(value);
        });
        threads[key % THREADS].postMessage({ key, params });
      }),
    close: () => Promise.all(threads.map((t) => t.terminate())),
  };
}

const hop = system === 'raw' ? rawSystem() : poolSystem();
const lanes = async (count) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const value = next++;
        const result = await hop.run({ kind: 'echo', value });
        if (result?.echo !== value) throw new Error(`job ${value} answered ${JSON.stringify(result)}`);
        if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      }
    }),
  );
};
await lanes(Math.min(2000, jobs)); // warm-up: threads started, code optimised
const before = cpu();
const startedAt = performance.now();
await lanes(jobs);
const seconds = (performance.now() - startedAt) / 1000;
const after = cpu();
await hop.close();
const micros = (s) => (s / jobs) * 1e6;
process.stdout.write(
  `${JSON.stringify({ event: 'done', t: 0, jobsPerSecond: jobs / seconds, mainMicros: micros(after.main - before.main), threadMicros: micros(after.threads - before.threads) })}\n`,
);
