import { Piscina } from 'piscina';
import { HeartwireError, JobError, thrownMessage } from '@heartwire/core';
import type { CallContext } from '../calls/handler.js';
import { JobCall, type JobMessage, type JobRequest } from './protocol.js';
import type { JobPool } from './pool.js';
import type { WorkerJobMessage, WorkerTask } from './worker-entry.js';

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

/** A job on its way through the pool: its call, and how many of its messages arrived. */
interface Running {
  readonly call: JobCall;
  received: number;
  /** Set once piscina answered before the job's last messages came in: how many to wait for, and who waits. */
  expected?: { readonly count: number; readonly arrived: () => void };
}

/**
 * Jobs in worker threads, on piscina. Piscina does what matters here: a job
 * whose signal aborts while it runs has its thread terminated (a JavaScript
 * loop stops within milliseconds) and replaced; one that aborts while queued
 * is removed and never starts. The pool keeps `size` threads, so a
 * replacement is warm before the next job needs it. A job's progress and
 * outcome come over its thread's parentPort, tagged with its key (see
 * worker-entry.ts): a MessagePort made and transferred per job cost more than
 * a short job itself.
 */
export class WorkerPool implements JobPool {
  private readonly pool: Piscina<WorkerTask, number>;
  private readonly running = new Map<number, Running>();
  private nextKey = 0;

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
    this.pool.on('message', ({ key, message }: WorkerJobMessage) => {
      const job = this.running.get(key);
      if (job === undefined) return;
      job.call.receive(message);
      job.received++;
      if (job.expected !== undefined && job.received >= job.expected.count) job.expected.arrived();
    });
  }

  async run(request: JobRequest, ctx: CallContext): Promise<unknown> {
    if (this.pool.queueSize >= this.options.queueLimit) {
      throw new JobError(
        'HW_ERR_QUEUE_FULL',
        `${this.options.queueLimit} jobs already wait for a worker thread (threadQueueLimit)`,
      );
    }
    const call = new JobCall(ctx);
    const key = this.nextKey++;
    const job: Running = { call, received: 0 };
    this.running.set(key, job);
    let died: unknown;
    try {
      const posted = await this.pool.run({ ...request, key }, { signal: call.signal });
      // The job posted its messages before piscina's answer, but on another port: the last may still be on its way.
      // They come unless the call aborts or the pool closes meanwhile, and then nobody needs them.
      if (job.received < posted && !call.signal.aborted) {
        // Piscina unrefs an idle thread: this timer keeps the process up until they are in.
        const hold = setInterval(() => {}, 60_000);
        await new Promise<void>((arrived) => {
          job.expected = { count: posted, arrived };
          call.signal.addEventListener('abort', () => arrived(), { once: true });
        }).finally(() => clearInterval(hold));
      }
    } catch (err) {
      died = err;
    } finally {
      this.running.delete(key);
    }
    return call.result(() => threadDied(died));
  }

  async close(): Promise<void> {
    for (const job of this.running.values()) job.expected?.arrived();
    await this.pool.destroy();
  }
}

/** The error a call gets when the thread running its job died (exit, uncaught error, heap limit). */
function threadDied(err: unknown): HeartwireError {
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new JobError('HW_ERR_WORKER_OUT_OF_MEMORY', `the job's worker thread ran out of memory: ${thrownMessage(err)}`);
  }
  return new JobError('HW_ERR_WORKER_CRASHED', `the job's worker thread died: ${thrownMessage(err)}`);
}
