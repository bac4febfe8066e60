// A bare worker thread for `pnpm bench:fleet`: it answers each { key, params } message with one
// message, { key, value }, after params.work turns of the jobs' work loop (test/fixtures/jobs.mjs).
// No pool, no stop flags, no job context: the floor any thread pool pays for a hop (bench/fleet/hop.mjs's
// `raw` system, and the `bullmq-hop` fleet worker of bench/fleet/plain-worker.mjs).
import { parentPort } from 'node:worker_threads';
import { work } from '../../test/fixtures/jobs.mjs';

let sink = 0;
parentPort.on('message', ({ key, params }) => {
  sink = work(params.work ?? 0);
  parentPort.postMessage({ key, value: { echo: params.value } });
});
