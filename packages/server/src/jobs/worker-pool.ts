import { Piscina } from 'piscina';
import { AbortReason, HeartwireError, JobError, PayloadError, thrownMessage } from '@heartwire/core';
import type { CallContext } from '../calls/handler.js';
import { AbortFlags } from './abort-flags.js';
import { afterGrace } from './grace.js';
import { JobCall, type JobRequest, type JobTask } from './protocol.js';
import type { JobPool } from './pool.js';
import { SlotGate } from './slot-gate.js';
import type { WorkerJobMessage, WorkerReply, WorkerThreadData } from './worker-entry.js';

export interface WorkerPoolOptions {
  /** worker-job.js, built. */
  readonly entry: URL;
  readonly size: number;
  readonly queueLimit: number;
  /** V8 old-generation limit of each thread, in MiB; 0 keeps Node's default. */
  readonly heapMb: number;
  /** How long a stopped job may run on before its thread is terminated, in ms. */
  readonly graceMs: number;
  /** A thread died with no job on it (piscina's pool 'error'). */
  readonly onIdleCrash: (error: HeartwireError) => void;
}

/** A job on its way through the pool: its call, and how many of its progress messages arrived. */
interface Running {
  readonly call: JobCall;
  received: number;
  /** Set once piscina answered before the job's last messages came in: how many to wait for, and who waits. */
  expected?: { readonly count: number; readonly arrived: () => void };
}

/**
 * Jobs in worker threads, on piscina. At most `size` run at once (a
 * {@link SlotGate} in front of piscina, which keeps the queue), on `size + 1`
 * threads: the one spare is warm, so when a thread must be replaced the next
 * job takes the spare at once and the replacement starts in the background.
 *
 * When a call stops, its job is told through the pool's shared stop flags
 * (abort-flags.ts) and given `graceMs` to return; one that does keeps its
 * thread, one that does not has its thread terminated by piscina (the signal
 * passed to `piscina.run` aborts only then). Either way the call fails with
 * its reason at once. A job's progress comes over its thread's parentPort,
 * tagged with its key, and its outcome in piscina's reply (see
 * worker-entry.ts): a MessagePort made and transferred per job cost more
 * than a short job itself.
 */
export class WorkerPool implements JobPool {
  private readonly pool: Piscina<JobTask, WorkerReply>;
  private readonly flags: AbortFlags;
  private readonly slots: SlotGate;
  private readonly running = new Map<number, Running>();
  private lastKey = 0;

  constructor(private readonly options: WorkerPoolOptions) {
    this.flags = AbortFlags.create(options.size);
    this.slots = new SlotGate(options.size);
    this.pool = new Piscina({
      filename: options.entry.href,
      minThreads: options.size + 1,
      maxThreads: options.size + 1,
      // The gate keeps the queue; piscina queues only while a replacement thread starts.
      maxQueue: Infinity,
      workerData: { stopFlags: this.flags.buffer } satisfies WorkerThreadData,
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
    if (this.slots.waiting >= this.options.queueLimit) {
      throw new JobError(
        'HW_ERR_QUEUE_FULL',
        `${this.options.queueLimit} jobs already wait for a worker thread (threadQueueLimit)`,
      );
    }
    const call = new JobCall(ctx);
    const slot = await this.slots.acquire(call.signal);
    // Keys stay positive int32s (what a stop flag holds); 0 is never a key.
    const key = (this.lastKey = this.lastKey === 0x7fff_ffff ? 1 : this.lastKey + 1);
    const job: Running = { call, received: 0 };
    this.running.set(key, job);
    const force = new AbortController();
    let died: HeartwireError | undefined;
    let cancelForce: (() => void) | undefined;
    let ended!: () => void;
    const settled = new Promise<void>((resolve) => (ended = resolve));
    const onStop = (): void => {
      this.flags.stop(slot, key, call.signal.reason);
      cancelForce = afterGrace(this.options.graceMs, () => force.abort());
      ended();
    };
    this.pool
      .run({ ...request, key, slot }, { signal: force.signal })
      .then(
        async ({ posted, outcome }) => {
          await this.allMessages(job, posted);
          call.receive(outcome);
        },
        (err: unknown) => {
          // Read now: once the slot is given back, another job's result may be marked in it.
          died = this.flags.returned(slot, key)
            ? new PayloadError('HW_ERR_ENCODE', "the job's result cannot be sent back: structured cloning refused it")
            : threadDied(err);
        },
      )
      .finally(() => {
        call.signal.removeEventListener('abort', onStop);
        cancelForce?.();
        this.running.delete(key);
        this.slots.release(slot);
        ended();
      });
    if (call.signal.aborted) onStop();
    else call.signal.addEventListener('abort', onStop, { once: true });
    await settled;
    return call.result(() => died ?? threadDied(undefined));
  }

  async close(): Promise<void> {
    this.slots.close(new AbortReason('HW_ERR_SERVER_SHUTDOWN', 'the server is shutting down'));
    for (const job of this.running.values()) job.expected?.arrived();
    await this.pool.destroy();
  }

  /**
   * The job posted its progress before piscina's answer, but on another port:
   * the last may still be on their way. They come unless the call stops or the
   * pool closes meanwhile, and then nobody needs them.
   */
  private async allMessages(job: Running, posted: number): Promise<void> {
    if (job.received >= posted || job.call.signal.aborted) return;
    // Piscina unrefs an idle thread: this timer keeps the process up until they are in.
    const hold = setInterval(() => {}, 60_000);
    await new Promise<void>((arrived) => {
      job.expected = { count: posted, arrived };
      job.call.signal.addEventListener('abort', () => arrived(), { once: true });
    }).finally(() => clearInterval(hold));
  }
}

/** The error a call gets when the thread running its job died (exit, uncaught error, heap limit). */
function threadDied(err: unknown): HeartwireError {
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new JobError('HW_ERR_WORKER_OUT_OF_MEMORY', `the job's worker thread ran out of memory: ${thrownMessage(err)}`);
  }
  return new JobError('HW_ERR_WORKER_CRASHED', `the job's worker thread died: ${thrownMessage(err)}`);
}
