import { HeartwireError } from '@heartwire/core';
import type { CallContext } from '../calls/handler.js';

/** What a worker thread or child process is asked to run. */
export interface JobRequest {
  /** The job module's file URL. */
  readonly module: string;
  readonly params: unknown;
  readonly method: string;
  readonly id: number;
}

/** A request as its thread or process runs it: where to look for its stop flag (see abort-flags.ts). */
export interface JobTask extends JobRequest {
  /** Unique in its pool, never 0: what the stop flag holds once this job is to stop. */
  readonly key: number;
  /** Its slot in the pool's stop flags (a child process has one, 0). */
  readonly slot: number;
}

/**
 * What a job sends back, in order, over one channel (its thread's parentPort,
 * or the child's IPC channel): any number of progress messages, then one
 * outcome. One channel keeps the last progress ahead of the result.
 */
export type JobMessage =
  | { readonly type: 'progress'; readonly data: unknown }
  | { readonly type: 'result'; readonly value: unknown }
  | { readonly type: 'error'; readonly code: string; readonly message: string };

/** What a child process of the process pool sends once it listens for requests, before any job's messages. */
export const READY = Object.freeze({ type: 'ready' as const });

/**
 * The main-thread side of one job: forwards its progress to the call, keeps
 * its outcome, and owns the signal the pool watches, which aborts with the
 * call or when the call cannot go on (a progress the client cannot receive).
 */
export class JobCall {
  readonly signal: AbortSignal;
  private readonly stop = new AbortController();
  private outcome: JobMessage | { readonly type: 'failed'; readonly error: unknown } | undefined;

  constructor(private readonly ctx: CallContext) {
    // A listener, not AbortSignal.any(): one signal fewer per job, and Node 20 is slow to collect any()'s.
    this.signal = this.stop.signal;
    const callSignal = ctx.signal;
    if (callSignal.aborted) this.stop.abort(callSignal.reason);
    else callSignal.addEventListener('abort', () => this.stop.abort(callSignal.reason), { once: true, signal: this.stop.signal });
  }

  /** True once the job sent its outcome, or was stopped. */
  get settled(): boolean {
    return this.outcome !== undefined || this.signal.aborted;
  }

  receive(message: JobMessage): void {
    if (this.settled) return;
    if (message.type !== 'progress') {
      this.outcome = message;
      return;
    }
    try {
      this.ctx.progress(message.data);
    } catch (err) {
      // The call fails with the encoder's error, and its job is stopped: nobody can use its work.
      this.outcome = { type: 'failed', error: err };
      this.stop.abort(err);
    }
  }

  /**
   * The call's result, or throws what the call should fail with: the abort
   * reason once aborted, the job's error, or `ifMissing` when the job ended
   * without an outcome (its thread or process died).
   */
  result(ifMissing: () => HeartwireError): unknown {
    const outcome = this.outcome;
    if (outcome?.type === 'failed') throw outcome.error;
    if (this.ctx.signal.aborted) throw this.ctx.signal.reason;
    if (outcome === undefined || outcome.type === 'progress') throw ifMissing();
    if (outcome.type === 'error') throw new HeartwireError(outcome.code, outcome.message);
    return outcome.value;
  }
}
