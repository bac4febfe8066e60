import { Worker } from 'node:worker_threads';
import { HeartwireError, JobError, thrownMessage } from '@heartwire/core';
import type { JobMessage, JobTask, READY } from './protocol.js';
import type { WorkerThreadData } from './worker-entry.js';
import type { ThreadJob } from './worker-pool.js';

/** What a pool hears from one of its threads. */
export interface PoolThreadEvents {
  message(thread: PoolThread, message: JobMessage | typeof READY): void;
  /** The thread exited; `error` is what a job still running on it fails with. */
  exit(thread: PoolThread, error: HeartwireError): void;
}

export const noop = (): void => {};

/**
 * One worker thread of a {@link WorkerPool}, and where it is in its life:
 * `starting` until it says ready; `idle`; `running` a job; `stopping` once
 * its job was stopped, until the job ends within its grace (the thread is
 * kept) or the grace runs out (`ending`: terminated, not yet exited). A
 * thread running or stopping a job holds that job's stop-flag slot.
 *
 * The thread never keeps the process alive by itself (the pool does while
 * it has jobs), so an idle pool lets the process exit.
 */
export class PoolThread {
  state: 'starting' | 'idle' | 'running' | 'stopping' | 'ending' = 'starting';
  job: ThreadJob | undefined;
  slot = -1;
  key = 0;
  /** Cancels the termination of a stopping thread. */
  cancelForce: () => void = noop;
  readonly #worker: Worker;
  /** What killed it, from its 'error' event ('exit' follows). */
  #error: unknown;

  constructor(entry: URL, data: WorkerThreadData, heapMb: number, events: PoolThreadEvents) {
    this.#worker = new Worker(entry, {
      workerData: data,
      ...(heapMb > 0 ? { resourceLimits: { maxOldGenerationSizeMb: heapMb } } : {}),
    });
    this.#worker.on('message', (message: JobMessage | typeof READY) => events.message(this, message));
    // An uncaught error or the heap limit ends the thread: 'exit' follows.
    this.#worker.on('error', (err) => (this.#error = err));
    this.#worker.on('exit', (code) => events.exit(this, threadDied(this.#error, code)));
    // After the listeners: adding a 'message' listener refs the worker's port again.
    this.#worker.unref();
  }

  /** Hands `job` to this idle thread: one message, the job's request with its key and stop-flag slot. */
  run(job: ThreadJob, slot: number, key: number): void {
    this.state = 'running';
    this.job = job;
    this.slot = slot;
    this.key = key;
    job.thread = this;
    this.#worker.postMessage({ ...job.request, key, slot } satisfies JobTask);
  }

  /** Stops the thread wherever its JavaScript is; resolves once it exited. */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }
}

/** The error a job gets when its thread died: `error` from its 'error' event, if any, else its exit code. */
function threadDied(error: unknown, exitCode: number): HeartwireError {
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new JobError('HW_ERR_WORKER_OUT_OF_MEMORY', `the job's worker thread ran out of memory: ${thrownMessage(error)}`);
  }
  const why = error === undefined ? `exited with code ${exitCode}` : `died: ${thrownMessage(error)}`;
  return new JobError('HW_ERR_WORKER_CRASHED', `the job's worker thread ${why}`);
}
