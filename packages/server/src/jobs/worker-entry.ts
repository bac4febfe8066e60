/**
 * Entry point of a worker thread in the server's thread pool (piscina calls
 * the default export once per job). Progress goes to the main thread over the
 * thread's own `parentPort`, which piscina hands on as its 'message' event,
 * tagged with the job's key: one long-lived channel per thread, not a
 * MessagePort made and transferred per job. The outcome rides in piscina's
 * own reply (one message fewer per job), with how many progress messages
 * were posted, so that the main thread delivers it after them. The pool's
 * stop flags come once per thread, as its `workerData`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AbortFlags } from './abort-flags.js';
import type { JobMessage, JobTask } from './protocol.js';
import { runJob } from './runner.js';

/** What every thread of the pool gets when it starts. */
export interface WorkerThreadData {
  readonly stopFlags: SharedArrayBuffer;
}

/** A job's progress on its thread's `parentPort`. */
export interface WorkerJobMessage {
  readonly key: number;
  readonly message: JobMessage;
}

/**
 * What a job returns to piscina. A result structured cloning refuses makes
 * piscina's reply throw, which kills the thread; the thread marked the
 * result returned first, so the pool fails the call with `HW_ERR_ENCODE`,
 * as when a progress cannot be sent, not with a crash.
 */
export interface WorkerReply {
  readonly posted: number;
  readonly outcome: JobMessage;
}

const flags = new AbortFlags((workerData as WorkerThreadData).stopFlags);
const port = parentPort as NonNullable<typeof parentPort>;

export default async function runInWorker(task: JobTask): Promise<WorkerReply> {
  let posted = 0;
  let outcome: JobMessage | undefined;
  await runJob(task, flags, (message) => {
    if (message.type !== 'progress') {
      outcome = message;
      return;
    }
    port.postMessage({ key: task.key, message } satisfies WorkerJobMessage);
    posted++;
  });
  if (outcome?.type === 'result') flags.markReturned(task.slot, task.key);
  return { posted, outcome: outcome as JobMessage };
}
