import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { HeartwireError, thrownMessage } from '@heartwire/core';
import type { CallContext } from '../calls/handler.js';
import { JobCall, type JobMessage, type JobRequest } from './protocol.js';
import type { JobPool } from './pool.js';
import type { WorkerTask } from './worker-entry.js';

export interface WorkerPoolOptions {
  /** worker-job.js, built. */
  readonly entry: URL;
  readonly size: number;
  readonly queueLimit: number;
  /** V8 old-generation limit of each thread, in MiB; 0 keeps Node's default. */
  readonly heapMb: number;
  /** A thread died with no job on it (piscina's pool 'error'). */
  readonly onIdleCrash: (error: HeartwireError) => void;
}

/**
 * Jobs in worker threads, on piscina. Piscina does what matters here: a job
 * whose signal aborts while it runs has its thread terminated (a JavaScript
 * loop stops within milliseconds) and replaced; one that aborts while queued
 * is removed and never starts. The pool keeps `size` threads, so a
 * replacement is warm before the next job needs it.
 */
export class WorkerPool implements JobPool {
  private readonly pool: Piscina<WorkerTask, void>;

  constructor(private readonly options: WorkerPoolOptions) {
    this.pool = new Piscina({
      filename: options.entry.href,
      minThreads: options.size,
      maxThreads: options.size,
      // Piscina's own queue limit does not count tasks that carry a signal (every job here): see run().
      maxQueue: Infinity,
      ...(options.heapMb > 0 ? { resourceLimits: { maxOldGenerationSizeMb: options.heapMb } } : {}),
    });
    // A thread that dies between jobs: piscina replaces it; without this listener the server would crash.
    this.pool.on('error', (err: unknown) => options.onIdleCrash(threadDied(err)));
  }

  async run(request: JobRequest, ctx: CallContext): Promise<unknown> {
    if (this.pool.queueSize >= this.options.queueLimit) {
      throw new HeartwireError(
        'HW_ERR_QUEUE_FULL',
        `${this.options.queueLimit} jobs already wait for a worker thread (threadQueueLimit)`,
      );
    }
    const call = new JobCall(ctx);
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (message: JobMessage) => call.receive(message));
    let died: unknown;
    try {
      await this.pool.run({ ...request, port: port2 }, { signal: call.signal, transferList: [port2] });
    } catch (err) {
      died = err;
    } finally {
      // The job posted its progress and outcome before piscina's reply, on another port: read them now, in order.
      for (let entry = receiveMessageOnPort(port1); entry !== undefined; entry = receiveMessageOnPort(port1)) {
        call.receive(entry.message as JobMessage);
      }
      port1.close();
    }
    return call.result(() => threadDied(died));
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

/** The error a call gets when the thread running its job died (exit, uncaught error, heap limit). */
function threadDied(err: unknown): HeartwireError {
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new HeartwireError('HW_ERR_WORKER_OUT_OF_MEMORY', `the job's worker thread ran out of memory: ${thrownMessage(err)}`);
  }
  return new HeartwireError('HW_ERR_WORKER_CRASHED', `the job's worker thread died: ${thrownMessage(err)}`);
}
