import type { AbortReason } from '@heartwire/core';
import { yieldToLoop } from '@heartwire/endpoint';
import type { CallContext } from './handler.js';

/** What a call needs from its connection. */
export interface CallHost {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** Sends a PROGRESS frame for `call`; false once it ended or while the socket's buffer is full. */
  progress(call: Call, data: unknown): boolean;
}

/**
 * One call in flight, and the context its handler gets: one object for
 * both, with everything per call on its prototype, so a connection that
 * holds a long job holds no more than it must (an object literal with a
 * getter and a closure per call cost ~800 bytes: a hidden class and a
 * property dictionary of its own). It is also a link of its connection's
 * list of calls, so the connection needs no Map for them.
 *
 * The AbortSignal is made on first use: most handlers never read it, and a
 * signal costs more than the rest of the call (~720 bytes on Node 20, its
 * making ~10 % of the server's CPU at 100,000 calls/s). An abort before then
 * is remembered, and the signal comes out already aborted with the same
 * reason. `progress` and `yield` are bound on first use, so they can still
 * be passed around alone.
 */
export class Call implements CallContext {
  /** @internal Its handler ran: call:start was published, so call:abort and call:end may follow. */
  started = false;
  /** @internal Its outcome was written, or it was aborted: nothing more is sent for it. */
  ended = false;
  /** @internal Bytes of its CALL payload charged to the params budget until it ends. */
  paramsBytes = 0;
  /** @internal Neighbours in its connection's list of calls in flight. */
  prev: Call | undefined;
  /** @internal */
  next: Call | undefined;
  private abortReason: AbortReason | undefined;
  private controller: AbortController | undefined;
  private boundProgress: ((data: unknown) => boolean) | undefined;
  private boundYield: (() => Promise<void>) | undefined;

  constructor(
    private readonly host: CallHost,
    readonly id: number,
    readonly method: string,
    /** @internal `performance.now()` when the call was accepted. */
    readonly startedAt: number,
  ) {}

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.abortReason !== undefined;
  }

  throwIfAborted(): void {
    if (this.abortReason !== undefined) throw this.abortReason;
  }

  /** @internal Stops the job: the first reason wins. */
  abort(reason: AbortReason): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  get remoteAddress(): string | undefined {
    return this.host.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.host.remotePort;
  }

  get progress(): (data: unknown) => boolean {
    return (this.boundProgress ??= (data: unknown) => this.host.progress(this, data));
  }

  get yield(): () => Promise<void> {
    return (this.boundYield ??= () => yieldToLoop(this));
  }
}
