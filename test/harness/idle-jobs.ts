import { performance } from 'node:perf_hooks';
import type { CallContext } from '@heartwire/server';
import { Waiter } from './waiter.js';

/** One run of an {@link IdleJobs} job, as the server saw it. */
export interface IdleJobRun {
  readonly id: number;
  readonly startedAt: number;
  readonly signal: AbortSignal;
  /** `performance.now()` when its signal aborted. */
  abortedAt?: number;
}

/**
 * Jobs that write nothing: each waits for `params.ms` (60 s if not given)
 * and returns `{ ms }`, or rejects with its signal's reason. Nothing but
 * heartbeats crosses the connection meanwhile, which is what proxy idle
 * timers and silent-peer tests need. Tests wait on the recorded runs.
 */
export class IdleJobs {
  readonly runs: IdleJobRun[] = [];
  private readonly waiter = new Waiter();

  readonly handler = (params: { ms?: number } | null, ctx: CallContext): Promise<{ ms: number }> => {
    const ms = params?.ms ?? 60_000;
    const run: IdleJobRun = { id: ctx.id, startedAt: performance.now(), signal: ctx.signal };
    this.runs.push(run);
    this.waiter.wake();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve({ ms }), ms);
      ctx.signal.addEventListener(
        'abort',
        () => {
          run.abortedAt = performance.now();
          clearTimeout(timer);
          this.waiter.wake();
          reject(ctx.signal.reason);
        },
        { once: true },
      );
    });
  };

  /** Resolves with the `n`-th run (1-based) once it started. */
  started(n = 1, timeoutMs = 20_000): Promise<IdleJobRun> {
    return this.waiter.until(() => this.runs[n - 1], `start of job ${n}`, timeoutMs);
  }
}
