import type { ServerHttp2Session } from 'node:http2';
import { AbortReason, Liveness } from '@heartwire/core';
import { LivenessTimer, wheelScheduler, type LivenessDriver, type LivenessEffect, type Scheduler } from '@heartwire/endpoint';

/** What a session's watch tells the calls on it. */
export interface WatchedCall {
  /** The client was declared gone: abort the job with `reason`. */
  gone(reason: AbortReason): void;
}

/**
 * Catches a silent HTTP/2 client (frozen, or its host or path gone) with
 * core's liveness rules in the pinger role: while a session has calls in
 * flight it sends a PING every `heartbeatMs`, which the client's HTTP/2
 * stack answers with no application code, and declares the client silent
 * (`HW_ERR_PEER_SILENT`) when a PING stays unanswered for `silentMs` and no
 * byte at all arrived meanwhile. Any inbound byte is a sign of life
 * (PROTOCOL.md §5): on a slow uplink the PING's answer waits behind the
 * DATA frames of an upload on the same connection. One watch per session,
 * however many calls share it. It also ends the session's calls at the
 * client's FIN (`HW_ERR_PEER_CLOSED`), and keeps the session's last error.
 */
export class SessionWatch implements LivenessDriver {
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
  private readonly liveness: Liveness;
  private readonly timer: LivenessTimer;
  /** The session's socket's byte count when last read: the session emits no event per inbound byte. */
  private bytesRead = 0;

  private constructor(
    private readonly session: ServerHttp2Session,
    heartbeatMs: number,
    private readonly silentMs: number,
  ) {
    // Each response has its own stall rule (HttpCall); the session judges silence only.
    this.liveness = new Liveness({ heartbeatMs, silentMs, stallMs: 0 });
    const sampling: Scheduler = {
      now: wheelScheduler.now,
      timer: (target) =>
        wheelScheduler.timer({
          onTimer: () => {
            this.readInbound();
            target.onTimer();
          },
        }),
      afterInput: (run, arg) =>
        wheelScheduler.afterInput(() => {
          this.readInbound();
          run(arg);
        }, undefined),
    };
    this.timer = new LivenessTimer(this.liveness, sampling, this);
    session.on('error', (err: Error) => (this.lastError = err));
    session.once('close', () => this.timer.stop());
    // A FIN ends an HTTP/2 session: Node destroys the socket once its own FIN is written, and the
    // streams with it. Judging at the FIN spares that turn of the loop, which a loaded machine stretches.
    if (!session.destroyed) session.socket.once('end', this.onPeerEnd);
  }

  add(call: WatchedCall): void {
    if (this.session.destroyed) return;
    this.calls.add(call);
    if (this.calls.size === 1) {
      this.bytesRead = this.socketBytesRead();
      this.liveness.activate(wheelScheduler.now());
      this.timer.schedule();
    }
  }

  delete(call: WatchedCall): void {
    if (!this.calls.delete(call) || this.calls.size > 0) return;
    this.liveness.deactivate(wheelScheduler.now());
    this.timer.schedule();
  }

  /** Before the rules judge: bytes that arrived since the last look are life, dated now (never earlier than they came). */
  private readInbound(): void {
    const bytesRead = this.socketBytesRead();
    if (bytesRead > this.bytesRead) {
      this.bytesRead = bytesRead;
      this.liveness.onInbound(wheelScheduler.now());
    }
  }

  private socketBytesRead(): number {
    // The session's socket is a proxy that throws once the session let go of it.
    return this.session.destroyed ? this.bytesRead : this.session.socket.bytesRead;
  }

  /** What the liveness rules decided (LivenessDriver). */
  onLivenessEffect(effect: LivenessEffect): void {
    if (effect.type === 'dead') {
      this.silent();
      return;
    }
    if (effect.type === 'idle') return; // no idle deadline here
    const seq = effect.seq;
    const now = wheelScheduler.now();
    if (this.session.destroyed) {
      // Its calls are closing with it: nothing is owed.
      this.liveness.onPong(seq, now);
      return;
    }
    // Unsent only while maxOutstandingPings are out: the earliest of them still decides the deadline.
    this.session.ping((err) => {
      if (err !== null) return;
      this.liveness.onPong(seq, wheelScheduler.now());
      this.timer.schedule();
    });
  }

  private readonly onPeerEnd = (): void => {
    this.judge(new AbortReason('HW_ERR_PEER_CLOSED', 'the client closed the HTTP/2 connection before the response ended'));
  };

  private silent(): void {
    this.judge(new AbortReason('HW_ERR_PEER_SILENT', `the client did not answer an HTTP/2 PING within silentMs (${this.silentMs} ms)`));
    // Dead means reset: nothing more is owed to this peer, and the kernel stops retrying at once.
    this.session.destroy();
  }

  /** Every call on the session is told its client is gone. */
  private judge(reason: AbortReason): void {
    const calls = [...this.calls];
    this.calls.clear();
    this.liveness.deactivate(wheelScheduler.now());
    this.timer.schedule();
    for (const call of calls) call.gone(reason);
  }
}
