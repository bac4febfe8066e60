import { performance } from 'node:perf_hooks';
import { checkIntegerOption, checkKnownOptions, InvalidOptionError } from '@heartwire/core';

/** Options of `server.close()`. */
export interface CloseOptions {
  /**
   * How long calls in flight may take to finish and deliver their results,
   * in ms. Meanwhile each client has had GOAWAY, new calls are refused with
   * the retryable `HW_ERR_SERVER_CLOSING`, and each connection closes with
   * its last call; when the time is up, what still runs is aborted with
   * `HW_ERR_SERVER_SHUTDOWN`. Defaults to 0: abort at once.
   */
  readonly drainMs?: number;
}

export type CloseCallback = (err?: Error) => void;

/** `close()`, `close(callback)`, `close(options)` and `close(options, callback)`, checked. */
export function resolveCloseArgs(
  first: CloseOptions | CloseCallback | undefined,
  second: CloseCallback | undefined,
): { drainMs: number; callback: CloseCallback | undefined } {
  if (typeof first === 'function') return { drainMs: 0, callback: first };
  const options = first ?? {};
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('close options must be an object');
  }
  checkKnownOptions(options, ['drainMs']);
  if (second !== undefined && typeof second !== 'function') {
    throw new InvalidOptionError('the close callback must be a function');
  }
  return { drainMs: checkIntegerOption('drainMs', options.drainMs ?? 0, 0), callback: second };
}

/**
 * The one deadline of a draining server. A later `close()` may bring it
 * closer (a second SIGTERM), never push it back.
 */
export class DrainDeadline {
  private timer: NodeJS.Timeout | undefined;
  private at = Infinity;

  constructor(private readonly onDeadline: () => void) {}

  /** Aims for `ms` from now, unless an earlier deadline is already set. */
  aim(ms: number): void {
    const at = performance.now() + ms;
    if (at >= this.at) return;
    this.clear();
    this.at = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onDeadline();
    }, ms);
  }

  /** Nothing left to drain. */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
