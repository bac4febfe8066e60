/**
 * Resolves after the event loop has run once: timers (heartbeats) fire and the
 * poll phase reads what the sockets hold (FIN, RST, PONG, CANCEL) before a
 * `setImmediate` callback runs. Rejects with the signal's reason once it has
 * aborted, so `await ctx.yield()` is also the place a loop stops.
 */
export function yieldToLoop(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      if (signal.aborted) reject(signal.reason);
      else resolve();
    });
  });
}
