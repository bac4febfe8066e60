// The plain-BullMQ side of `pnpm bench:fleet`: a heartwire server (the same front as heartwire-queue,
// so clients and hang-up detection are the same) whose handler puts each call on a BullMQ queue and
// waits for its QueueEvents 'completed' event, as BullMQ's docs show. When the call aborts it
// publishes a cancel request on Redis pub/sub, as BullMQ's cancellation guide shows.
// argv[2]: JSON { redisPort, queue }. Prints JSON lines.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Queue, QueueEvents } from 'bullmq';
import { createServer } from '@heartwire/server';

const options = JSON.parse(process.argv[2]);
const print = (event, fields = {}) =>
  process.stdout.write(`${JSON.stringify({ event, t: performance.timeOrigin + performance.now(), ...fields })}\n`);

const connection = { host: '127.0.0.1', port: options.redisPort, maxRetriesPerRequest: null };
const queue = new Queue(options.queue, { connection });
const events = new QueueEvents(options.queue, { connection });
const publisher = new Redis(connection);
await events.waitUntilReady();

const server = createServer({ heartbeatMs: 200, silentMs: 1000 });
// Each call waits for its job's 'completed' or 'failed' event from one QueueEvents reader.
// (job.waitUntilFinished() fails with "Missing key" when removeOnComplete already removed the job.)
const waiting = new Map();
events.on('completed', ({ jobId, returnvalue }) => waiting.get(jobId)?.resolve(returnvalue));
events.on('failed', ({ jobId, failedReason }) => waiting.get(jobId)?.reject(new Error(failedReason)));
server.handle('spin', async (params, ctx) => {
  const jobId = randomUUID();
  const finished = new Promise((resolve, reject) => waiting.set(jobId, { resolve, reject }));
  const cancel = () => void publisher.publish(`${options.queue}:cancel`, JSON.stringify({ jobId }));
  ctx.signal.addEventListener('abort', cancel, { once: true });
  try {
    await queue.add('spin', params, { jobId, removeOnComplete: true, removeOnFail: true });
    return await finished;
  } finally {
    waiting.delete(jobId);
    ctx.signal.removeEventListener('abort', cancel);
  }
});
server.listen(0, '127.0.0.1', () => print('listening', { port: server.address().port }));
