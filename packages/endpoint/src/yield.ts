/** What {@link yieldToLoop} checks: a call's context, or an AbortSignal. */
export interface AbortState {
  readonly aborted: boolean;
  /** Throws the abort reason once aborted. */
  throwIfAborted(): void;
}

/**
 * Resolves after the event loop has run once: timers (heartbeats) fire and the
 * poll phase reads what the sockets hold (FIN, RST, PONG, CANCEL) before a
 * `setImmediate` callback runs. Rejects with the abort reason once `state` has
 * aborted, so `await ctx.yield()` is also the place a loop stops. It reads
 * `state` and makes no AbortSignal of its own.
 */
export function yieldToLoop(state: AbortState): Promise<void> {
  return new Promise((resolve, reject) => {
    if (state.aborted) settle(state, resolve, reject);
    else setImmediate(settle, state, resolve, reject);
  });
}

function settle(state: AbortState, resolve: () => void, reject: (reason: unknown) => void): void {
  try {
    state.throwIfAborted();
    resolve();
  } catch (reason) {
    reject(reason);
  }
}
