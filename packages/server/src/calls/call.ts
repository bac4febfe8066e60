import type { CallContext } from './handler.js';
import { LazyAbortController } from './lazy-abort.js';
import { yieldToLoop } from '@heartwire/endpoint';

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
 * property dictionary of its own). The signal is made on first use;
 * `progress` and `yield` are bound on first use, so they can still be passed
 * around alone.
 */
export class Call implements CallContext {
  /** @internal Aborted when the job should stop. */
  readonly controller = new LazyAbortController();
  /** @internal Its handler ran: call:start was published, so call:abort and call:end may follow. */
  started = false;
  /** @internal Bytes of its CALL payload charged to the params budget until it ends. */
  paramsBytes = 0;
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
    return this.controller.signal;
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
    return (this.boundYield ??= () => yieldToLoop(this.signal));
  }
}
