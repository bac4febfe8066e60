import { once } from 'node:events';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { HeartwireError, JobError } from '@heartwire/core';
import { StandalonePools } from '@heartwire/server';
import { publishRedisError } from './diagnostics.js';
import { encodeFailure } from './failure.js';
import { fleetKeys, type FleetJobData } from './keys.js';
import { ownConnection } from './redis.js';
import { RunningJobs } from './running-jobs.js';
import { resolveWorkerOptions, type RunWorkerOptions } from './worker-options.js';

/** A fleet worker made by {@link runWorker}. */
export interface FleetWorker {
  /** The BullMQ worker, for its events; its processor is heartwire's. */
  readonly worker: Worker<FleetJobData>;
  /** Resolves once the worker takes jobs and hears cancel requests. */
  readonly ready: Promise<void>;
  /** Lets the running jobs finish (as BullMQ's `worker.close()` does), then closes the pools and connections. */
  close(): Promise<void>;
}

/**
 * Starts a fleet worker: a BullMQ worker on `options.queue` that runs each
 * job, named after its method, in heartwire's thread or process pools (the
 * module given by `worker(url)` for that method, unchanged). The worker's own
 * event loop stays free, so BullMQ's lock renewal never stalls. A job is
 * stopped (its thread terminated, its process killed) as soon as its front
 * server's call aborts, or once its lease lapses; it then fails with the
 * abort code and is never retried. Throws `InvalidOptionError` naming a bad option.
 */
export function runWorker(options: RunWorkerOptions): FleetWorker {
  const o = resolveWorkerOptions(options);
  const keys = fleetKeys(o.prefix, o.queue);
  const pools = new StandalonePools(o.pools);
  // Fails at once while Redis is unreachable instead of queueing: the lease check must know it is blind.
  // Auto-pipelined: the lease checks of jobs that start together go out as one write.
  const redis = ownConnection(o.connection, 'connection', { enableOfflineQueue: false, maxRetriesPerRequest: 1, enableAutoPipelining: true });
  const subscriber = ownConnection(o.connection, 'connection');
  for (const connection of [redis, subscriber]) connection.on('error', (err: Error) => publishRedisError(o.queue, 'fleet', err));
  const running = new RunningJobs(o.queue, keys, redis, subscriber, o.leaseCheckMs);

  const processor = async (job: Job<FleetJobData>, _token?: string, stopped?: AbortSignal): Promise<unknown> => {
    const module = o.jobs[job.name];
    if (module === undefined) throw new UnrecoverableError(encodeFailure('HW_ERR_UNKNOWN_METHOD', `no job module for method ${job.name}`));
    const data = job.data;
    // A job that began before left its fleet worker dead: run it again only if its call said it may run twice, and once.
    if (job.attemptsStarted > 1 && (!data.idempotent || job.attemptsStarted > 2)) {
      throw new UnrecoverableError(encodeFailure('HW_ERR_WORKER_CRASHED', 'the fleet worker running this job died'));
    }
    const jobId = job.id as string;
    const signal = running.add(jobId, job.name, data.owner, data.leaseMs, stopped);
    let progressed: Promise<unknown> | undefined;
    try {
      const result = await pools.run(module, data.params, {
        signal,
        method: job.name,
        onProgress: (progress) => {
          // In order, and all written before the result, so the client gets the last progress first.
          progressed = (progressed ?? Promise.resolve()).then(() => job.updateProgress(progress as object)).catch(() => {});
        },
      });
      if (progressed !== undefined) await progressed;
      return result;
    } catch (err) {
      const failure = signal.aborted ? signal.reason : err;
      if (failure instanceof HeartwireError) throw new UnrecoverableError(encodeFailure(failure.code, failure.message));
      throw new UnrecoverableError(encodeFailure('HW_ERR_HANDLER', failure instanceof Error ? failure.message : String(failure)));
    } finally {
      running.delete(jobId, signal);
    }
  };

  const worker = new Worker<FleetJobData>(o.queue, processor, {
    connection: o.connection,
    prefix: o.prefix,
    concurrency: o.concurrency,
    lockDuration: o.lockMs,
    stalledInterval: o.stalledCheckMs,
    // A stalled job goes back to the queue once; the processor above fails it then unless it is idempotent.
    maxStalledCount: 1,
    autorun: false,
  });
  worker.on('error', (err: Error) => publishRedisError(o.queue, 'fleet', err));
  // BullMQ only reports a lock it could not renew (the job stalled and went back to the queue, or another
  // worker holds it now); it does not stop the job, whose outcome it would then refuse to store. Its thread
  // is stopped here, so the job runs on one worker at a time and never finishes twice.
  worker.on('lockRenewalFailed', (jobIds: string[]) => {
    for (const jobId of jobIds) {
      running.stop(jobId, new JobError('HW_ERR_JOB_LOST', "this fleet worker lost the job's BullMQ lock: it stalled, or another worker took it"));
    }
  });

  const ready = (async () => {
    if (redis.status !== 'ready') await once(redis, 'ready');
    await running.start();
    void worker.run().catch((err: Error) => publishRedisError(o.queue, 'fleet', err));
    await worker.waitUntilReady();
  })();
  ready.catch(() => {});

  return {
    worker,
    ready,
    async close() {
      await ready.catch(() => {});
      await worker.close();
      running.close();
      await pools.close();
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}

