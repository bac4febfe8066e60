import type { HeartwireError } from '@heartwire/core';
import { channels } from '../diagnostics.js';
import type { CallContext, Handler } from '../calls/handler.js';
import { PROCESS_ENTRY, WORKER_ENTRY } from './entries.js';
import type { JobIsolation, JobModule } from './module.js';
import { shutdownError, type JobPool } from './pool.js';
import type { ResolvedServerOptions } from '../options.js';
import { ProcessPool } from './process-pool.js';
import { WorkerPool } from './worker-pool.js';

/**
 * The pools a server owns: one of worker threads and one of child
 * processes, each created when its first job arrives (a server without job
 * modules starts no thread) and destroyed by `close()`.
 */
export class JobPools {
  private readonly pools = new Map<JobIsolation, JobPool>();
  private closed: Promise<void> | undefined;

  constructor(private readonly options: ResolvedServerOptions) {}

  /** The handler that runs each call of a method in `job`'s module, in its pool. */
  handler(job: JobModule): Handler {
    return (params, ctx) => this.run(job, params, ctx);
  }

  /** Runs `job`'s module on `params` in its pool, for the call `ctx`. */
  run(job: JobModule, params: unknown, ctx: CallContext): Promise<unknown> {
    return this.pool(job.isolation).run({ module: job.module, params, method: ctx.method, id: ctx.id }, ctx);
  }

  close(): Promise<void> {
    this.closed ??= Promise.all([...this.pools.values()].map((pool) => pool.close())).then(() => undefined);
    return this.closed;
  }

  private pool(isolation: JobIsolation): JobPool {
    if (this.closed !== undefined) throw shutdownError();
    let pool = this.pools.get(isolation);
    if (pool === undefined) {
      const o = this.options;
      const onIdleCrash = (error: HeartwireError): void => {
        if (channels.poolCrash.hasSubscribers) channels.poolCrash.publish({ isolation, error });
      };
      const shared = { heapMb: o.jobHeapMb, graceMs: o.jobAbortGraceMs, onIdleCrash };
      pool =
        isolation === 'thread'
          ? new WorkerPool({ entry: WORKER_ENTRY, size: o.threadPoolSize, queueLimit: o.threadQueueLimit, ...shared })
          : new ProcessPool({ entry: PROCESS_ENTRY, size: o.processPoolSize, queueLimit: o.processQueueLimit, ...shared });
      this.pools.set(isolation, pool);
    }
    return pool;
  }
}
