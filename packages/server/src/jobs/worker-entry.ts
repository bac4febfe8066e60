/**
 * Entry point of a worker thread in the server's thread pool (piscina calls
 * the default export once per job). Progress and the outcome go to the main
 * thread over the thread's own `parentPort`, which piscina hands on as its
 * 'message' event, tagged with the job's key: one long-lived channel per
 * thread, not a MessagePort made and transferred per job. The job returns how
 * many messages it posted, so the main thread knows when it has them all.
 * The pool's stop flags come once per thread, as its `workerData`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AbortFlags } from './abort-flags.js';
import type { JobMessage, JobTask } from './protocol.js';
import { runJob } from './runner.js';

/** What every thread of the pool gets when it starts. */
export interface WorkerThreadData {
  readonly stopFlags: SharedArrayBuffer;
}

/** A job's message on its thread's `parentPort`. */
export interface WorkerJobMessage {
  readonly key: number;
  readonly message: JobMessage;
}

const flags = new AbortFlags((workerData as WorkerThreadData).stopFlags);
const port = parentPort as NonNullable<typeof parentPort>;

export default async function runInWorker(task: JobTask): Promise<number> {
  let posted = 0;
  await runJob(task, flags, (message) => {
    port.postMessage({ key: task.key, message } satisfies WorkerJobMessage);
    posted++;
  });
  return posted;
}
