/**
 * An AbortController made only when its signal is first asked for. Most
 * short calls never look at theirs, and making one is the costliest part of
 * accepting a call (10 % of the server's CPU at ~100,000 calls/s, by
 * profile). An abort before then is remembered: the signal then comes out
 * already aborted, with the same reason.
 */
export class LazyAbortController {
  private controller: AbortController | undefined;
  private aborted = false;
  private reason: unknown;

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** As `AbortController.abort`: the first reason wins. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}
