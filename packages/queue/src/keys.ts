/**
 * The Redis names heartwire adds next to a BullMQ queue's own keys (same
 * prefix and queue name, so a queue's keys stay together and can be listed,
 * or removed, as one family).
 */
export interface FleetKeys {
  /** The lease key of one job: `'1'` while the front server that owns the job is alive, the verdict ({@link CancelMessage}) once its call aborted; gone once the owner stopped renewing it. */
  lease(jobId: string): string;
  /** The pub/sub channel on which front servers ask fleet workers to stop a job. */
  readonly cancel: string;
}

export function fleetKeys(prefix: string, queueName: string): FleetKeys {
  const base = `${prefix}:${queueName}:hw`;
  return { lease: (jobId) => `${base}:lease:${jobId}`, cancel: `${base}:cancel` };
}

/** BullMQ's default key prefix, used when the queue or worker sets none. */
export const DEFAULT_PREFIX = 'bull';

/** What a front server puts in each BullMQ job. */
export interface FleetJobData {
  readonly params: unknown;
  /** The lease's time to live, in ms: a fleet worker that cannot reach Redis for this long stops the job. */
  readonly leaseMs: number;
  /** The call may run twice: a job whose fleet worker died runs once more instead of failing. */
  readonly idempotent: boolean;
}

/** A cancel request: published on {@link FleetKeys.cancel}, and written over the job's lease. */
export interface CancelMessage {
  readonly jobId: string;
  readonly code: string;
  readonly message: string;
}
