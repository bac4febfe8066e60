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

/** What a pool's worker thread or child process sends once it listens for requests, before any job's messages. */
export const READY = Object.freeze({ type: 'ready' as const });

/**
 * The main-thread side of one job: forwards its progress to the call, keeps
 * its outcome, and tells its pool once the job must stop: when the call's
 * signal aborts, or when the call cannot go on (a progress the client cannot
 * receive). It listens to the call's signal itself (it is the listener, so
 * no closure and no signal are made per job) until {@link detach}.
 */
export class JobCall {
  private outcome: JobMessage | { readonly type: 'failed'; readonly error: unknown } | undefined;
  private stoppedWith: { readonly reason: unknown } | undefined;

  /** `onStop` is called once, when the job must stop, unless the call was already stopped when made. */
  constructor(
    private readonly ctx: CallContext,
    private readonly onStop: (call: JobCall) => void,
  ) {
    if (ctx.signal.aborted) this.stoppedWith = { reason: ctx.signal.reason };
    else ctx.signal.addEventListener('abort', this, { once: true });
  }

  /** True once the job must stop; {@link reason} says why. */
  get stopped(): boolean {
    return this.stoppedWith !== undefined;
  }

  /** Why the job must stop: the call's abort reason, or the error of a progress the client could not take. */
  get reason(): unknown {
    return this.stoppedWith?.reason;
  }

  /** The call's signal aborted (EventListener). */
  handleEvent(): void {
    this.stop(this.ctx.signal.reason);
  }

  /** The job ended: stop listening to the call's signal, which may outlive it (a caller's own signal). */
  private detach(): void {
    this.ctx.signal.removeEventListener('abort', this);
  }

  receive(message: JobMessage): void {
    if (this.outcome !== undefined || this.stoppedWith !== undefined) return;
    if (message.type !== 'progress') {
      this.outcome = message;
      return;
    }
    try {
      this.ctx.progress(message.data);
    } catch (err) {
      // The call fails with the encoder's error, and its job is stopped: nobody can use its work.
      this.outcome = { type: 'failed', error: err };
      this.stop(err);
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

  /**
   * The job ended (or will never run): stops listening to the call's signal,
   * then calls `resolve` with {@link result}, or `reject` with what it throws.
   */
  settle(resolve: (value: unknown) => void, reject: (err: unknown) => void, ifMissing: () => HeartwireError): void {
    this.detach();
    try {
      resolve(this.result(ifMissing));
    } catch (err) {
      reject(err);
    }
  }

  private stop(reason: unknown): void {
    if (this.stoppedWith !== undefined) return;
    this.stoppedWith = { reason };
    this.onStop(this);
  }
}
