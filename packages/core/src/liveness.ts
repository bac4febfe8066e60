/**
 * The liveness rules as a pure state machine: time and events in, actions
 * out. It owns no timer and no socket; the server and client feed it the
 * clock, and do what it returns. Every method is safe to call again.
 *
 * Two roles share it:
 * - pinger (the server): while active it asks for a PING every
 *   `heartbeatMs`; the peer is *silent* when the oldest unanswered PING is
 *   older than `silentMs`.
 * - watcher (the client, `heartbeatMs: 0`): while active the peer is
 *   *silent* when no frame at all arrived for `silentMs`.
 * Both: the peer is *stalled* when our outbound bytes made no progress into
 * the kernel for `stallMs` (its receive window stayed shut), or when it fell
 * silent while our bytes were backed up.
 *
 * A deadline never yields a verdict at once: it yields `recheck`, and the
 * verdict comes only from the next tick if nothing arrived in between. The
 * adapter runs that tick after one turn of I/O, so a timer that fired late
 * because the event loop was blocked first reads what waits in the kernel.
 */

/** Settings of a {@link Liveness} machine, all in ms. */
export interface LivenessOptions {
  /** Interval between PINGs we send while active; 0 for the watcher role, which sends none. */
  readonly heartbeatMs: number;
  /** Pinger: longest wait for the PONG to a PING. Watcher: longest time without any inbound frame. */
  readonly silentMs: number;
  /** Longest time our outbound bytes may make no progress; 0 turns the rule off. */
  readonly stallMs: number;
}

/** Why the machine declared the peer dead. */
export type LivenessVerdict = 'silent' | 'stalled';

/** Named states. `dead` is final. */
export type LivenessState = 'idle' | 'active' | 'suspect' | 'dead';

/** What the adapter must do after a tick. */
export type LivenessAction =
  | { readonly type: 'none' }
  | { readonly type: 'ping'; readonly seq: number }
  | { readonly type: 'recheck' }
  | { readonly type: 'dead'; readonly verdict: LivenessVerdict; readonly overdueMs: number };

const NONE: LivenessAction = Object.freeze({ type: 'none' });
const RECHECK: LivenessAction = Object.freeze({ type: 'recheck' });

export class Liveness {
  private readonly heartbeatMs: number;
  private readonly silentMs: number;
  private readonly stallMs: number;
  private stateValue: LivenessState = 'idle';
  private nextPingAt = Infinity;
  private nextSeq = 1;
  /**
   * Send times of unanswered PINGs, oldest first, in a ring: `pendingCount`
   * of them from `pendingHead`; the oldest has sequence number
   * `firstPendingSeq`. Rarely more than one: a small fixed array (doubles
   * from the start) instead of one that grows to 17 slots at its first push.
   */
  private pendingSentAt: number[] = [0.5, 0.5, 0.5, 0.5];
  private pendingHead = 0;
  private pendingCount = 0;
  private firstPendingSeq = 1;
  private lastInboundAt = 0;
  private peerWriteClosed = false;
  /** When our outbound backlog last made progress while non-empty; undefined while it is empty. */
  private backlogSince: number | undefined;

  constructor(options: LivenessOptions) {
    this.heartbeatMs = options.heartbeatMs;
    this.silentMs = options.silentMs;
    this.stallMs = options.stallMs;
  }

  get state(): LivenessState {
    return this.stateValue;
  }

  /** Work is in flight: start (or keep) watching. The first PING is due one interval from now. */
  activate(now: number): void {
    if (this.stateValue !== 'idle') return;
    this.stateValue = 'active';
    this.lastInboundAt = now;
    this.nextPingAt = this.heartbeatMs > 0 ? now + this.heartbeatMs : Infinity;
  }

  /** No work in flight: stop watching; answers still owed are forgiven. */
  deactivate(): void {
    if (this.stateValue === 'dead' || this.stateValue === 'idle') return;
    this.stateValue = 'idle';
    this.nextPingAt = Infinity;
    this.forgivePending();
    this.backlogSince = undefined;
  }

  /** Any frame arrived from the peer. */
  onInbound(now: number): void {
    this.lastInboundAt = now;
    if (this.stateValue === 'suspect' && this.silentDeadline() > now) this.stateValue = 'active';
  }

  /**
   * A PONG arrived: it answers its PING and every earlier one. Returns false
   * for a sequence number never sent (the adapter treats that as a protocol
   * error); a stale answer to a forgiven PING is accepted and changes nothing.
   */
  onPong(seq: number, now: number): boolean {
    if (seq <= 0 || seq >= this.nextSeq) return false;
    const answered = seq - this.firstPendingSeq + 1;
    if (answered > 0) {
      const dropped = Math.min(answered, this.pendingCount);
      this.pendingHead = (this.pendingHead + dropped) % this.pendingSentAt.length;
      this.pendingCount -= dropped;
      this.firstPendingSeq = seq + 1;
    }
    this.onInbound(now);
    return true;
  }

  /**
   * The peer announced it closes its sending side on purpose: it can no
   * longer answer, so the silent rule stops; the stall rule and write
   * failures still apply.
   */
  onPeerWriteClosed(): void {
    this.peerWriteClosed = true;
    this.forgivePending();
  }

  /** Our outbound bytes could not all be handed to the kernel. */
  onBacklog(now: number): void {
    if (this.backlogSince === undefined) this.backlogSince = now;
  }

  /** Some outbound bytes reached the kernel; `backlogBytes` are still waiting. */
  onFlush(now: number, backlogBytes: number): void {
    this.backlogSince = backlogBytes > 0 ? now : undefined;
  }

  /** When `tick` should next run, or Infinity when nothing is due. */
  nextDeadline(): number {
    if (this.stateValue === 'idle' || this.stateValue === 'dead') return Infinity;
    return Math.min(this.nextPingAt, this.silentDeadline(), this.stallDeadline());
  }

  /** Advances the machine to `now` and returns the one thing to do. */
  tick(now: number): LivenessAction {
    if (this.stateValue === 'idle' || this.stateValue === 'dead') return NONE;
    const silentAt = this.silentDeadline();
    const stallAt = this.stallDeadline();
    const dueAt = Math.min(silentAt, stallAt);
    if (now >= dueAt) {
      if (this.stateValue !== 'suspect') {
        this.stateValue = 'suspect';
        return RECHECK;
      }
      this.stateValue = 'dead';
      this.nextPingAt = Infinity;
      const verdict: LivenessVerdict = now >= stallAt || this.backlogSince !== undefined ? 'stalled' : 'silent';
      return { type: 'dead', verdict, overdueMs: now - dueAt };
    }
    this.stateValue = 'active';
    if (now >= this.nextPingAt) {
      const seq = this.nextSeq;
      this.nextSeq = seq + 1;
      if (!this.peerWriteClosed) this.addPending(now);
      // Keep a steady cadence; after a long gap (blocked loop) restart it from now.
      this.nextPingAt += this.heartbeatMs;
      if (this.nextPingAt <= now) this.nextPingAt = now + this.heartbeatMs;
      return { type: 'ping', seq };
    }
    return NONE;
  }

  private silentDeadline(): number {
    if (this.peerWriteClosed) return Infinity;
    if (this.heartbeatMs === 0) return this.lastInboundAt + this.silentMs;
    return this.pendingCount === 0 ? Infinity : (this.pendingSentAt[this.pendingHead] as number) + this.silentMs;
  }

  private addPending(sentAt: number): void {
    const ring = this.pendingSentAt;
    if (this.pendingCount === ring.length) {
      // Full: unroll into a ring twice the size, oldest first.
      const grown: number[] = [];
      for (let i = 0; i < ring.length * 2; i++) grown.push(i < ring.length ? (ring[(this.pendingHead + i) % ring.length] as number) : 0.5);
      this.pendingSentAt = grown;
      this.pendingHead = 0;
    }
    this.pendingSentAt[(this.pendingHead + this.pendingCount) % this.pendingSentAt.length] = sentAt;
    this.pendingCount++;
  }

  /** Every unanswered PING is forgiven: the next PONG expected is for a PING not yet sent. */
  private forgivePending(): void {
    this.firstPendingSeq += this.pendingCount;
    this.pendingHead = 0;
    this.pendingCount = 0;
  }

  private stallDeadline(): number {
    return this.stallMs > 0 && this.backlogSince !== undefined ? this.backlogSince + this.stallMs : Infinity;
  }
}
