import type { ServerHttp2Session } from 'node:http2';
import { AbortReason } from '@heartwire/core';

/** What a session's watch tells the calls on it. */
export interface WatchedCall {
  /** The client was declared gone: abort the job with `reason`. */
  gone(reason: AbortReason): void;
}

/**
 * Catches a silent HTTP/2 client (frozen, or its host or path gone): while a
 * session has calls in flight it sends a PING every `heartbeatMs`, which the
 * client's HTTP/2 stack answers with no application code, and declares the
 * client silent (`HW_ERR_PEER_SILENT`) when one stays unanswered for
 * `silentMs`. One watch per session, however many calls share it. It also
 * keeps the session's last error, so a call closed by a reset session can
 * say so.
 */
export class SessionWatch {
  private static readonly watches = new WeakMap<ServerHttp2Session, SessionWatch>();

  /** The session's watch, made on first use. */
  static of(session: ServerHttp2Session, heartbeatMs: number, silentMs: number): SessionWatch {
    let watch = SessionWatch.watches.get(session);
    if (watch === undefined) {
      watch = new SessionWatch(session, heartbeatMs, silentMs);
      SessionWatch.watches.set(session, watch);
    }
    return watch;
  }

  /** The error the session was destroyed with (`ECONNRESET` …), if any. */
  lastError: Error | undefined;
  private readonly calls = new Set<WatchedCall>();
  private ticker: NodeJS.Timeout | undefined;
  private silentTimer: NodeJS.Timeout | undefined;
  /** Bumped per PING, so a late answer to an older one is not taken for the current one. */
  private pingSeq = 0;
  private answeredSeq = 0;

  private constructor(
    private readonly session: ServerHttp2Session,
    private readonly heartbeatMs: number,
    private readonly silentMs: number,
  ) {
    session.on('error', (err: Error) => (this.lastError = err));
    session.once('close', () => this.stop());
  }

  add(call: WatchedCall): void {
    this.calls.add(call);
    if (this.ticker === undefined && !this.session.destroyed) {
      this.ticker = setInterval(this.tick, this.heartbeatMs);
      this.ticker.unref();
    }
  }

  delete(call: WatchedCall): void {
    this.calls.delete(call);
    if (this.calls.size === 0) this.stop();
  }

  private stop(): void {
    clearInterval(this.ticker);
    clearTimeout(this.silentTimer);
    this.ticker = undefined;
    this.silentTimer = undefined;
    this.answeredSeq = this.pingSeq;
  }

  private readonly tick = (): void => {
    // One PING in flight at a time: its bound runs from when it was sent.
    if (this.answeredSeq !== this.pingSeq || this.session.destroyed || this.session.closed) return;
    const seq = ++this.pingSeq;
    const sent = this.session.ping((err) => {
      if (err === null && seq === this.pingSeq) {
        this.answeredSeq = seq;
        clearTimeout(this.silentTimer);
        this.silentTimer = undefined;
      }
    });
    if (!sent) {
      this.answeredSeq = seq;
      return;
    }
    this.silentTimer = setTimeout(() => {
      // A timer that fired late may have an answer waiting behind it: judge only after the
      // loop has read the socket (setImmediate runs after the poll phase).
      setImmediate(() => {
        if (this.answeredSeq < seq && seq === this.pingSeq && !this.session.destroyed) this.silent();
      });
    }, this.silentMs);
    this.silentTimer.unref();
  };

  private silent(): void {
    const reason = new AbortReason('HW_ERR_PEER_SILENT', `the client did not answer an HTTP/2 PING within silentMs (${this.silentMs} ms)`);
    const calls = [...this.calls];
    this.stop();
    for (const call of calls) call.gone(reason);
    // Dead means reset: nothing more is owed to this peer, and the kernel stops retrying at once.
    this.session.destroy();
  }
}
