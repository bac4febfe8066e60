/**
 * The Redis names heartwire adds next to a BullMQ queue's own keys (same
 * prefix and queue name, so a queue's keys stay together and can be listed,
 * or removed, as one family).
 */
export interface FleetKeys {
  /**
   * The owner lease of one `enqueue` handler of a front server, covering all
   * its jobs: `'1'` while the handler has calls and renews it; gone once its
   * front server stopped renewing it (died, froze, lost Redis) or has no call left.
   */
  owner(ownerId: string): string;
  /** The verdict of one job's call, once it aborted ({@link CancelMessage}); it lapses after the job's `leaseMs`. */
  verdict(jobId: string): string;
  /** The pub/sub channel on which front servers ask fleet workers to stop a job. */
  readonly cancel: string;
}

export function fleetKeys(prefix: string, queueName: string): FleetKeys {
  const base = `${prefix}:${queueName}:hw`;
  return { owner: (ownerId) => `${base}:owner:${ownerId}`, verdict: (jobId) => `${base}:verdict:${jobId}`, cancel: `${base}:cancel` };
}

/** BullMQ's default key prefix, used when the queue or worker sets none. */
export const DEFAULT_PREFIX = 'bull';

/** What a front server puts in each BullMQ job. */
export interface FleetJobData {
  readonly params: unknown;
  /** The id of the owner lease ({@link FleetKeys.owner}) that must hold while the job runs. */
  readonly owner: string;
  /** The lease's time to live, in ms: a fleet worker that cannot reach Redis for this long stops the job. */
  readonly leaseMs: number;
  /** The call may run twice: a job whose fleet worker died runs once more instead of failing. */
  readonly idempotent: boolean;
}

/** A cancel request: published on {@link FleetKeys.cancel}, and written to the job's {@link FleetKeys.verdict} key. */
export interface CancelMessage {
  readonly jobId: string;
  readonly code: string;
  readonly message: string;
}
