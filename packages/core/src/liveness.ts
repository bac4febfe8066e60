/**
 * The liveness rules as a pure state machine: time and events in, actions
 * out. It owns no timer and no socket; the server and client feed it the
 * clock, and do what it returns. Every method is safe to call again.
 *
 * Two roles share it:
 * - pinger (the server): while active it asks for a PING every
 *   `heartbeatMs`; the peer is *silent* when a PING has gone unanswered for
 *   `silentMs` and no byte at all arrived for `silentMs` either.
 * - watcher (the client, `heartbeatMs: 0`): while active the peer is
 *   *silent* when no byte at all arrived for `silentMs`; with `quietPingMs`
 *   it asks for a PING of its own once it has sent nothing for that long.
 * Any inbound byte is a sign of life, not only a whole frame: on a slow link
 * the answer to our PING may wait behind megabytes the peer sends us, and
 * our PING behind megabytes we send it (PROTOCOL.md §5).
 * Both: the peer is *stalled* when our outbound bytes made no progress into
 * the kernel for `stallMs` (its receive window stayed shut), or when it fell
 * silent while our bytes were backed up.
 *
 * With `idleMs`, it also keeps the idle deadline: once no work has been in
 * flight for that long, it asks the adapter to end the connection (`idle`).
 * One machine, so one timer per connection serves both the heartbeats while
 * work runs and the idle deadline between calls.
 *
 * A deadline never yields a verdict at once: it yields `recheck`, and the
 * verdict comes only from the next tick if nothing arrived in between. The
 * adapter runs that tick after one turn of I/O, so a timer that fired late
 * because the event loop was blocked first reads what waits in the kernel
 * (for the idle deadline: a CALL waiting unread).
 */

/** Settings of a {@link Liveness} machine, all in ms. */
export interface LivenessOptions {
  /** Interval between PINGs we send while active; 0 for the watcher role, which sends none. */
  readonly heartbeatMs: number;
  /** Pinger: longest wait for the PONG to a PING with no byte arriving meanwhile. Watcher: longest time without any inbound byte. */
  readonly silentMs: number;
  /** Longest time our outbound bytes may make no progress; 0 turns the rule off. */
  readonly stallMs: number;
  /**
   * While active, ask for a PING of our own once we have sent nothing for
   * this long, so the peer hears from us even while its own PINGs wait
   * behind bulk data on their way to us. 0 (the default) never does.
   */
  readonly quietPingMs?: number;
  /**
   * Longest time with no work in flight, counted from {@link Liveness.startIdle}
   * and from each {@link Liveness.deactivate}; then `tick` returns `idle`.
   * 0 (the default) never does.
   */
  readonly idleMs?: number;
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
  | { readonly type: 'idle' }
  | { readonly type: 'dead'; readonly verdict: LivenessVerdict; readonly overdueMs: number };

const NONE: LivenessAction = Object.freeze({ type: 'none' });
const RECHECK: LivenessAction = Object.freeze({ type: 'recheck' });
const IDLE: LivenessAction = Object.freeze({ type: 'idle' });
/** `idleSince` while the idle deadline is not counting. */
const NOT_COUNTING = -1;

export class Liveness {
  private readonly heartbeatMs: number;
  private readonly silentMs: number;
  private readonly stallMs: number;
  private readonly quietPingMs: number;
  private readonly idleMs: number;
  /** When the idle deadline started, or NOT_COUNTING. */
  private idleSince = NOT_COUNTING;
  /** The idle deadline passed once: the next tick past it (after waiting input was read) says `idle`. */
  private idleSuspect = false;
  private stateValue: LivenessState = 'idle';
  private nextPingAt = Infinity;
  /** Sequence number of the next PING. */
  private nextSeq = 1;
  /** Every PING up to this one was answered or forgiven. */
  private answeredSeq = 0;
  /**
   * PINGs sent since the last inbound byte, and when the first of them went
   * out: with any byte counting as life, these decide the silent deadline,
   * so no list of send times is kept.
   */
  private pingsSinceInbound = 0;
  private firstPingSinceInboundAt = 0;
  private lastInboundAt = 0;
  /** When we last sent something; only kept with `quietPingMs`. */
  private lastOutboundAt = 0;
  private peerWriteClosed = false;
  /** When our outbound backlog last made progress while non-empty; undefined while it is empty. */
  private backlogSince: number | undefined;

  constructor(options: LivenessOptions) {
    this.heartbeatMs = options.heartbeatMs;
    this.silentMs = options.silentMs;
    this.stallMs = options.stallMs;
    // A pinger hears from its peer through PONGs and sends PINGs on its own cadence anyway.
    this.quietPingMs = options.heartbeatMs === 0 ? (options.quietPingMs ?? 0) : 0;
    this.idleMs = options.idleMs ?? 0;
  }

  get state(): LivenessState {
    return this.stateValue;
  }

  /** Work is in flight: start (or keep) watching. The first PING is due one interval from now. */
  activate(now: number): void {
    if (this.stateValue !== 'idle') return;
    this.stateValue = 'active';
    this.idleSince = NOT_COUNTING;
    this.idleSuspect = false;
    this.lastInboundAt = now;
    this.lastOutboundAt = now;
    this.nextPingAt = this.heartbeatMs > 0 ? now + this.heartbeatMs : Infinity;
  }

  /** No work in flight from `now`: stop watching (answers still owed are forgiven), and start the idle deadline. */
  deactivate(now: number): void {
    if (this.stateValue === 'dead' || this.stateValue === 'idle') return;
    this.stateValue = 'idle';
    this.nextPingAt = Infinity;
    this.forgivePending();
    this.backlogSince = undefined;
    this.startIdle(now);
  }

  /** Starts (or starts again) the idle deadline from `now`, if the machine is idle and has one. */
  startIdle(now: number): void {
    if (this.stateValue !== 'idle' || this.idleMs === 0) return;
    this.idleSince = now;
    this.idleSuspect = false;
  }

  /** Bytes arrived from the peer: a whole frame or only part of one, any byte counts. */
  onInbound(now: number): void {
    this.lastInboundAt = now;
    this.pingsSinceInbound = 0;
    if (this.stateValue === 'suspect' && this.silentDeadline() > now) this.stateValue = 'active';
  }

  /**
   * A PONG arrived: it answers its PING and every earlier one. Returns false
   * for a sequence number never sent (the adapter treats that as a protocol
   * error); a stale answer to a forgiven PING is accepted and changes nothing.
   */
  onPong(seq: number, now: number): boolean {
    if (seq <= 0 || seq >= this.nextSeq) return false;
    if (seq > this.answeredSeq) this.answeredSeq = seq;
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

  /** We sent something (only needed with `quietPingMs`). */
  onOutbound(now: number): void {
    this.lastOutboundAt = now;
  }

  /** Our outbound bytes could not all be handed to the kernel. */
  onBacklog(now: number): void {
    if (this.backlogSince === undefined) this.backlogSince = now;
  }

  /** Some outbound bytes reached the kernel; `backlogBytes` are still waiting. */
  onFlush(now: number, backlogBytes: number): void {
    this.backlogSince = backlogBytes > 0 ? now : undefined;
  }

  /** Part of a write still in progress reached the kernel: the backlog moves, however slowly. */
  onWriteProgress(now: number): void {
    if (this.backlogSince !== undefined) this.backlogSince = now;
  }

  /** When `tick` should next run, or Infinity when nothing is due. */
  nextDeadline(): number {
    if (this.stateValue === 'idle') return this.idleSince === NOT_COUNTING ? Infinity : this.idleSince + this.idleMs;
    if (this.stateValue === 'dead') return Infinity;
    return Math.min(this.nextPingAt, this.quietPingAt(), this.silentDeadline(), this.stallDeadline());
  }

  /** Advances the machine to `now` and returns the one thing to do. */
  tick(now: number): LivenessAction {
    if (this.stateValue === 'idle') return this.idleTick(now);
    if (this.stateValue === 'dead') return NONE;
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
      const seq = this.nextSeq++;
      if (this.peerWriteClosed) {
        this.answeredSeq = seq; // nobody can answer it
      } else if (this.pingsSinceInbound++ === 0) {
        this.firstPingSinceInboundAt = now;
      }
      // Keep a steady cadence; after a long gap (blocked loop) restart it from now.
      this.nextPingAt += this.heartbeatMs;
      if (this.nextPingAt <= now) this.nextPingAt = now + this.heartbeatMs;
      return { type: 'ping', seq };
    }
    if (now >= this.quietPingAt()) {
      // Not an answer we wait for: it only lets the peer hear from us.
      this.lastOutboundAt = now;
      return { type: 'ping', seq: this.nextSeq++ };
    }
    return NONE;
  }

  private idleTick(now: number): LivenessAction {
    if (this.idleSince === NOT_COUNTING || now < this.idleSince + this.idleMs) return NONE;
    if (!this.idleSuspect) {
      this.idleSuspect = true;
      return RECHECK;
    }
    // Once: the adapter ends the connection, or starts the deadline again.
    this.idleSince = NOT_COUNTING;
    this.idleSuspect = false;
    return IDLE;
  }

  private silentDeadline(): number {
    if (this.peerWriteClosed) return Infinity;
    if (this.heartbeatMs === 0) return this.lastInboundAt + this.silentMs;
    const pending = this.nextSeq - 1 - this.answeredSeq;
    if (pending === 0) return Infinity;
    // A PING sent before the last byte arrived is overdue only silentMs after that byte: its PONG
    // may wait behind bulk data the peer sends us. Otherwise the first PING sent since counts.
    const since = pending > this.pingsSinceInbound ? this.lastInboundAt : this.firstPingSinceInboundAt;
    return since + this.silentMs;
  }

  private quietPingAt(): number {
    return this.quietPingMs > 0 ? this.lastOutboundAt + this.quietPingMs : Infinity;
  }

  /** Every unanswered PING is forgiven: the next PONG expected is for a PING not yet sent. */
  private forgivePending(): void {
    this.answeredSeq = this.nextSeq - 1;
    this.pingsSinceInbound = 0;
  }

  private stallDeadline(): number {
    return this.stallMs > 0 && this.backlogSince !== undefined ? this.backlogSince + this.stallMs : Infinity;
  }
}
