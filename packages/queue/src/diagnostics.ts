import diagnostics from 'node:diagnostics_channel';

/**
 * Observability through diagnostics_channel: the library never logs. Each
 * publish is guarded by `hasSubscribers`, so nobody pays for an unobserved one.
 */

/** Published when a fleet worker stopped a running job from outside: cancelled by its front server, its lease expired, or the worker lost the job's BullMQ lock. */
export interface FleetJobStopMessage {
  readonly queue: string;
  readonly jobId: string;
  readonly method: string;
  /** `HW_ERR_*` code of the front server's verdict, `HW_ERR_LEASE_EXPIRED`, or `HW_ERR_JOB_LOST` (the BullMQ lock was lost). */
  readonly code: string;
  /** `performance.now()` when the stop was decided. */
  readonly at: number;
}

/** Published when a fleet worker or a front server's event reader could not talk to Redis (it retries on its own). */
export interface FleetRedisErrorMessage {
  readonly queue: string;
  readonly role: 'front' | 'fleet';
  readonly error: Error;
}

export const channels = {
  jobStop: diagnostics.channel('heartwire:queue:job-stop'),
  redisError: diagnostics.channel('heartwire:queue:redis-error'),
};

export function publishRedisError(queue: string, role: 'front' | 'fleet', error: Error): void {
  if (channels.redisError.hasSubscribers) channels.redisError.publish({ queue, role, error } satisfies FleetRedisErrorMessage);
}
