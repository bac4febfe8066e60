import {
  AbortReason,
  GOAWAY_CODES,
  HeartwireError,
  PAYLOAD_CODES,
  PayloadError,
  PEER_GONE_CODES,
  type AbortCode,
  type PayloadErrorCode,
} from '@heartwire/core';

/**
 * Why a job's call stopped, as a small integer that fits a shared cell: every
 * abort code, and the payload codes a call also stops with (a progress the
 * client cannot take). A reason with no code of ours is `HW_ERR_CANCELLED`:
 * whoever aborted it no longer wants the job.
 */
const STOP_CODES: readonly (AbortCode | PayloadErrorCode)[] = [
  'HW_ERR_CANCELLED',
  ...PEER_GONE_CODES,
  ...GOAWAY_CODES,
  'HW_ERR_LEASE_EXPIRED',
  ...PAYLOAD_CODES,
];
const PAYLOAD: ReadonlySet<string> = new Set(PAYLOAD_CODES);

/** Cells per slot: the key of the job stopped in it, and its code's index in STOP_CODES. */
const CELLS = 2;

/**
 * The stop flags of a pool, in one `SharedArrayBuffer` made once and handed
 * to every thread (or, for a child process, to its watcher thread) when it
 * starts: nothing is made per job. A running job owns a slot; to stop it the
 * main side writes the job's code, then its key, into the slot, and wakes
 * any `Atomics.waitAsync` on it. The job reads `key cell === its own key`:
 * one load and a compare, so a tight loop can check on every turn (see
 * job-context.ts for why that load is a plain one). A slot
 * passes to the next job only once its job has ended, and keys are never
 * reused, so a job can never see a stop meant for another.
 */
export class AbortFlags {
  readonly cells: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.cells = new Int32Array(buffer);
  }

  static create(slots: number): AbortFlags {
    return new AbortFlags(new SharedArrayBuffer(slots * CELLS * Int32Array.BYTES_PER_ELEMENT));
  }

  get buffer(): SharedArrayBuffer {
    return this.cells.buffer as SharedArrayBuffer;
  }

  /**
   * Tells the job `key`, running in `slot`, that its call stopped with
   * `reason` (a child's watcher thread writes the same cells, see stop-pipe.ts).
   */
  stop(slot: number, key: number, reason: unknown): void {
    Atomics.store(this.cells, slot * CELLS + 1, stopCodeIndex(reason));
    Atomics.store(this.cells, slot * CELLS, key);
    Atomics.notify(this.cells, slot * CELLS);
  }

  /** The reason the job in `slot` was stopped with, rebuilt from its code. */
  reason(slot: number): HeartwireError {
    return stopReason(Atomics.load(this.cells, slot * CELLS + 1));
  }

  /** Index of the cell a job in `slot` compares with its key (for `Atomics.waitAsync`). */
  static keyCell(slot: number): number {
    return slot * CELLS;
  }
}

/** `reason`'s code as an index into the stop codes. */
export function stopCodeIndex(reason: unknown): number {
  const code = reason instanceof HeartwireError ? reason.code : undefined;
  const index = code === undefined ? -1 : STOP_CODES.indexOf(code as AbortCode);
  return index === -1 ? 0 : index;
}

/** What a job sees as the reason it was stopped: an `AbortReason` (a `PayloadError` for a payload code) with the call's code. */
export function stopReason(index: number): HeartwireError {
  const code = STOP_CODES[index] ?? 'HW_ERR_CANCELLED';
  const message = `the job's call stopped (${code}): nobody will receive its result`;
  return PAYLOAD.has(code) ? new PayloadError(code as PayloadErrorCode, message) : new AbortReason(code as AbortCode, message);
}
