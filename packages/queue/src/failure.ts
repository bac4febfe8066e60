import { HeartwireError, JobError } from '@heartwire/core';

/**
 * A BullMQ job's failure travels as one string (`failedReason`): the fleet
 * worker writes `CODE: message`, and the front server turns it back into a
 * coded error. BullMQ's own reasons carry no code; the one that matters, a
 * job that stalled too often (its fleet worker died), becomes
 * `HW_ERR_WORKER_CRASHED`.
 */
const CODED = /^(HW_ERR_[A-Z_]+|[A-Z][A-Z0-9]*_ERR_[A-Z0-9_]+): ([\s\S]*)$/;

/** BullMQ's reason for a job moved to failed after stalling more than `maxStalledCount` times. */
const STALLED = /stalled more than allowable limit/;

export function encodeFailure(code: string, message: string): string {
  return `${code}: ${message}`;
}

export function decodeFailure(reason: string | undefined): HeartwireError {
  const text = reason ?? '';
  const coded = CODED.exec(text);
  if (coded !== null) return new HeartwireError(coded[1] as string, coded[2] as string);
  if (STALLED.test(text)) {
    return new JobError('HW_ERR_WORKER_CRASHED', 'the fleet workers running this job died (it stalled more than BullMQ allows)');
  }
  return new HeartwireError('HW_ERR_HANDLER', text || 'the fleet job failed without a reason');
}
