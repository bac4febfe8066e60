/**
 * `ctx.yield()`, as the TCP server's: resolves after the event loop has run
 * once (filler goes out, a close or reset is read); rejects with the signal's
 * reason once it aborted.
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
