// The plain-BullMQ fleet worker of `pnpm bench:fleet`: a BullMQ Worker whose processor runs on its
// own event loop, as BullMQ's docs show. argv[2]: JSON { redisPort, queue, concurrency, cooperative, hop }.
// cooperative: the processor works in 5 ms slices and checks its AbortSignal between them, and a
// Redis pub/sub subscriber calls worker.cancelJob() (BullMQ's cancellation guide); otherwise the job
// runs to its end (BullMQ's default). Prints 'job-start' and 'job-stop' lines like the heartwire fleet
// fixture, the stop dated when the loop last ran. hop: echo jobs go to one of `concurrency` bare worker
// threads and back (bench/fleet/bare-thread.mjs), one message each way: what the hop alone costs
// BullMQ, with none of heartwire's pool or queue around it.
import { Worker as Thread } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { UnrecoverableError, Worker } from 'bullmq';
import { work } from '../../test/fixtures/jobs.mjs';

const options = JSON.parse(process.argv[2]);
const now = () => performance.timeOrigin + performance.now();
const print = (event, fields = {}) => process.stdout.write(`${JSON.stringify({ event, t: now(), ...fields })}\n`);
const connection = { host: '127.0.0.1', port: options.redisPort, maxRetriesPerRequest: null };
const SLICE_MS = 5;
let sink = 0;

/** Hands echo jobs to idle bare threads (at most `concurrency` run at once, so one is always idle). */
function bareThreads(count) {
  const idle = Array.from({ length: count }, () => new Thread(new URL('./bare-thread.mjs', import.meta.url)));
  const waiting = new Map();
  let lastKey = 0;
  for (const thread of idle) {
    thread.unref();
    thread.on('message', ({ key, value }) => {
      const done = waiting.get(key);
      waiting.delete(key);
      idle.push(thread);
      done(value);
    });
  }
  return (params) =>
    new Promise((resolve) => {
      const key = ++lastKey;
      waiting.set(key, resolve);
      idle.pop().postMessage({ key, params });
    });
}
const viaThread = options.hop ? bareThreads(options.concurrency ?? 4) : undefined;

const worker = new Worker(
  options.queue,
  async (job, _token, signal) => {
    const params = job.data;
    if (params.kind === 'echo') {
      if (viaThread !== undefined) return viaThread(params);
      // params.work: the same loop as test/fixtures/jobs.mjs's echo, first.
      sink = work(params.work ?? 0);
      return { echo: params.value };
    }
    print('job-start', { tag: params.tag });
    const until = Date.now() + params.ms;
    let lastRan = now();
    while (Date.now() < until) {
      const sliceEnd = Math.min(until, Date.now() + SLICE_MS);
      while (Date.now() < sliceEnd);
      lastRan = now();
      await new Promise((resolve) => setImmediate(resolve));
      if (options.cooperative && signal?.aborted) {
        print('job-stop', { tag: params.tag, stoppedAt: lastRan });
        throw new UnrecoverableError(`cancelled: ${signal.reason}`);
      }
    }
    print('job-stop', { tag: params.tag, stoppedAt: lastRan });
    return { done: params.tag };
  },
  { connection, concurrency: options.concurrency ?? 4 },
);
worker.on('error', () => {});

if (options.cooperative) {
  const subscriber = new Redis(connection);
  await subscriber.subscribe(`${options.queue}:cancel`);
  subscriber.on('message', (_channel, message) => worker.cancelJob(JSON.parse(message).jobId, 'client gone'));
}
await worker.waitUntilReady();
print('ready');
