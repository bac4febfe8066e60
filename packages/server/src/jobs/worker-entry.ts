/**
 * Entry point of a worker thread in the server's thread pool (piscina calls
 * the default export once per job). Progress and the outcome go to the main
 * thread over the thread's own `parentPort`, which piscina hands on as its
 * 'message' event, tagged with the job's key: one long-lived channel per
 * thread, not a MessagePort made and transferred per job. The job returns how
 * many messages it posted, so the main thread knows when it has them all.
 */
import { parentPort } from 'node:worker_threads';
import type { JobMessage, JobRequest } from './protocol.js';
import { runJob } from './runner.js';

export interface WorkerTask extends JobRequest {
  /** Tags this job's messages; unique in its pool. */
  readonly key: number;
}

/** A job's message on its thread's `parentPort`. */
export interface WorkerJobMessage {
  readonly key: number;
  readonly message: JobMessage;
}

export default async function runInWorker(task: WorkerTask): Promise<number> {
  let posted = 0;
  await runJob(task, (message) => {
    (parentPort as NonNullable<typeof parentPort>).postMessage({ key: task.key, message } satisfies WorkerJobMessage);
    posted++;
  });
  return posted;
}
