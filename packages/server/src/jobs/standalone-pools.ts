import { InvalidOptionError } from '@heartwire/core';
import { yieldToLoop } from '@heartwire/endpoint';
import type { CallContext } from '../calls/handler.js';
import { isJobModule, type JobModule } from './module.js';
import { JobPools } from './pool-set.js';
import { resolveServerOptions, type ServerOptions } from '../options.js';

/** Options of {@link StandalonePools}: the pool options of {@link ServerOptions}, with the same defaults and checks. */
export type StandalonePoolsOptions = Pick<
  ServerOptions,
  'threadPoolSize' | 'threadQueueLimit' | 'processPoolSize' | 'processQueueLimit' | 'jobHeapMb' | 'jobAbortGraceMs'
>;

/** How one job run by {@link StandalonePools.run} is watched. */
export interface StandaloneRunOptions {
  /**
   * Stops the job when it aborts: it is told (`ctx.aborted`) and given
   * `jobAbortGraceMs` before its thread is terminated or its process killed;
   * a queued job leaves the queue. `run` rejects with `signal.reason` at once.
   */
  readonly signal: AbortSignal;
  /** Gets each `ctx.progress(data)` of the job, in order. */
  readonly onProgress?: (data: unknown) => void;
  /** What the job's `ctx.method` says. Defaults to `''`. */
  readonly method?: string;
  /** What the job's `ctx.id` says. Defaults to 0. */
  readonly id?: number;
}

/**
 * The thread and process pools a server uses, owned by the caller instead: a
 * module written for `worker(url)` runs here unchanged, for a caller that gets
 * its jobs from somewhere other than a heartwire connection (a queue, say).
 */
export class StandalonePools {
  readonly #pools: JobPools;

  /** Throws {@link InvalidOptionError} naming an option out of range. */
  constructor(options: StandalonePoolsOptions = {}) {
    const { threadPoolSize, threadQueueLimit, processPoolSize, processQueueLimit, jobHeapMb, jobAbortGraceMs } = options;
    this.#pools = new JobPools(
      resolveServerOptions({ threadPoolSize, threadQueueLimit, processPoolSize, processQueueLimit, jobHeapMb, jobAbortGraceMs }),
    );
  }

  /**
   * Runs `job`'s module on `params` in its pool. Resolves with its result;
   * rejects with the job's error (a `HeartwireError`), or with
   * `options.signal.reason` once the signal aborted.
   */
  run(job: JobModule, params: unknown, options: StandaloneRunOptions): Promise<unknown> {
    if (!isJobModule(job)) throw new InvalidOptionError('job must be made by worker()');
    return this.#pools.run(job, params, new StandaloneContext(options));
  }

  /** Stops every job and the threads or processes; resolves once they are gone. */
  close(): Promise<void> {
    return this.#pools.close();
  }
}

/** The `ctx` of one job run by {@link StandalonePools.run}: methods on a class, so a job makes one object, not a closure each. */
class StandaloneContext implements CallContext {
  readonly method: string;
  readonly id: number;
  readonly signal: AbortSignal;
  readonly remoteAddress = undefined;
  readonly remotePort = undefined;
  readonly #onProgress: ((data: unknown) => void) | undefined;

  constructor(options: StandaloneRunOptions) {
    this.method = options.method ?? '';
    this.id = options.id ?? 0;
    this.signal = options.signal;
    this.#onProgress = options.onProgress;
  }

  get aborted(): boolean {
    return this.signal.aborted;
  }

  throwIfAborted(): void {
    this.signal.throwIfAborted();
  }

  progress(data: unknown): boolean {
    this.#onProgress?.(data);
    return !this.signal.aborted;
  }

  /** The pools never call it: their jobs are stopped through their stop flags, not by yielding. */
  yield(): Promise<void> {
    return yieldToLoop(this.signal);
  }
}
