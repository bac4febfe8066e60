import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { AbortReason, HeartwireError, JobError } from '@heartwire/core';
import type { CallContext, Handler } from '@heartwire/server';
import { decodeFailure } from './failure.js';
import { resolveEnqueueOptions, type EnqueueOptions } from './enqueue-options.js';
import { FrontLink } from './front-link.js';
import type { CancelMessage, FleetJobData } from './keys.js';
import { OwnerLease, type LeaseHold } from './owner-lease.js';

/** A heartwire handler that runs each call on a BullMQ fleet; `close()` it after the server that uses it. */
export interface QueueHandler extends Handler {
  /** Closes the handler's Redis connections once no other handler on the same queue uses them. */
  close(): Promise<void>;
}

/**
 * The handler of a front server that puts each call on `queue` as a BullMQ
 * job named after the method, for fleet workers started by `runWorker`:
 * `server.handle('render', enqueue(queue))`. The client gets ACCEPTED at
 * once and heartbeats while the job waits and runs; the job's progress and
 * its result, or a coded error, come back to it. When the call's signal
 * aborts, whatever its code, the job is removed if it waits and stopped on
 * its fleet worker if it runs. Params, progress and results cross Redis as
 * JSON. When the queue's connection is an ioredis instance, heartwire
 * duplicates it for its own connections and never closes it: its owner does,
 * after `close()`. Throws `InvalidOptionError` naming a bad option.
 */
export function enqueue(queue: Queue, options: EnqueueOptions = {}): QueueHandler {
  const { leaseMs, idempotent } = resolveEnqueueOptions(options);
  let link: FrontLink | undefined;
  let lease: OwnerLease | undefined;
  let closed = false;

  const call = async (params: unknown, ctx: CallContext): Promise<unknown> => {
    if (closed) throw new AbortReason('HW_ERR_SERVER_SHUTDOWN', 'the queue handler is closed');
    if (link === undefined || link.failed) {
      const old = link;
      link = FrontLink.acquire(queue);
      lease = new OwnerLease(link.redis, link.keys, leaseMs);
      void old?.release();
    }
    const { redis, keys } = link;
    const owner = lease as OwnerLease;
    const { signal } = ctx;
    const jobId = randomUUID();
    let added: Promise<unknown> | undefined;
    let hold: LeaseHold | undefined;
    let stopWatching = (): void => {};
    let onAbort = (): void => {};
    let fail = (_error: unknown): void => {};
    const ended = new Promise<unknown>((resolve, reject) => {
      fail = reject;
      stopWatching = link!.watch(jobId, {
        progress: (data) => ctx.progress(data),
        completed: resolve,
        failed: (reason) => reject(decodeFailure(reason)),
      });
      onAbort = () => {
        reject(signal.reason);
        void cancel(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    ended.catch(() => {});

    // The verdict crosses the queue three ways, so no path alone has to be perfect: it is written to the
    // job's verdict key (a fleet worker's periodic check stops the job), it is published (the worker running
    // it stops it at once), and a job still waiting is removed before any worker takes it.
    const cancel = async (reason: unknown): Promise<void> => {
      const code = reason instanceof HeartwireError ? reason.code : 'HW_ERR_CANCELLED';
      const message = reason instanceof Error ? reason.message : String(reason);
      const request: CancelMessage = { jobId, code, message };
      try {
        const text = JSON.stringify(request);
        // The verdict key (until it lapses) lets a worker that misses the message still stop the job with
        // its code at its next lease check.
        await redis.multi().set(keys.verdict(jobId), text, 'PX', leaseMs).publish(keys.cancel, text).exec();
        if (added !== undefined && (await added.then(() => true, () => false))) await queue.remove(jobId);
      } catch {
        // Redis unreachable: no lease will be renewed, so the fleet stops the job within the lease bound.
      }
    };

    try {
      await link.ready;
      if (signal.aborted) throw signal.reason;
      hold = owner.hold(() =>
        fail(new JobError('HW_ERR_JOB_LOST', "Redis lost the job (its owner lease is gone): it restarted without its data")),
      );
      // Taken once for all the handler's calls, so this awaits a round trip only when no other call holds it:
      // the job must not reach a fleet worker before its owner lease is in Redis.
      await hold.taken;
      // Aborted meanwhile: the cancel found no job to remove, so none is added.
      if (signal.aborted) throw signal.reason;
      const data: FleetJobData = { params, owner: owner.id, leaseMs, idempotent };
      added = queue.add(ctx.method, data, { jobId, attempts: 1, removeOnComplete: true, removeOnFail: true });
      await added;
      return await ended;
    } finally {
      signal.removeEventListener('abort', onAbort);
      stopWatching();
      hold?.release();
    }
  };

  return Object.assign(call, {
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await link?.release();
    },
  });
}
