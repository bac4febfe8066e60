/**
 * Entry point of a worker thread in the server's thread pool (worker-pool.ts).
 * One job at a time arrives on the thread's `parentPort`, one message per
 * job; its progress and then its outcome go back on the same port, so they
 * arrive in order and nothing is made per job to carry them. The thread
 * says `ready` once it listens, and gets the pool's stop flags once, as its
 * `workerData`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AbortFlags } from './abort-flags.js';
import { READY, type JobMessage, type JobTask } from './protocol.js';
import { runJob } from './runner.js';

/** What every thread of the pool gets when it starts. */
export interface WorkerThreadData {
  readonly stopFlags: SharedArrayBuffer;
}

const flags = new AbortFlags((workerData as WorkerThreadData).stopFlags);
const port = parentPort as NonNullable<typeof parentPort>;
// Throws DataCloneError for a value structured cloning refuses: runJob then sends HW_ERR_ENCODE instead.
const send = (message: JobMessage): void => port.postMessage(message);

port.on('message', (task: JobTask) => {
  void runJob(task, flags, send);
});
port.postMessage(READY);
