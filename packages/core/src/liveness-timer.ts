import type { Liveness, LivenessAction } from './liveness.js';

/**
 * The clock and timers a {@link LivenessTimer} runs on. Core calls no timer
 * API itself: the server and client pass Node's, tests pass a hand-driven one.
 */
export interface Scheduler<Handle = unknown> {
  /** A monotonic clock in ms (`performance.now`). */
  now(): number;
  setTimeout(callback: () => void, ms: number): Handle;
  clearTimeout(handle: Handle): void;
  /** Runs `callback` once the input already waiting has been read (`setImmediate` in Node: after the poll phase). */
  afterInput(callback: () => void): void;
}

/** The actions an adapter carries out: everything else the timer handles itself. */
export type LivenessEffect = Extract<LivenessAction, { type: 'ping' | 'dead' }>;

/**
 * Drives a {@link Liveness} machine with one timer: armed for the machine's
 * next deadline, kept when an earlier one is already armed, and turning a
 * `recheck` into one more tick after the waiting input was read. It tells
 * the adapter to ping or to give up; after `dead` or `stop()` it does nothing.
 */
export class LivenessTimer<Handle = unknown> {
  private timer: Handle | undefined;
  private timerAt = Infinity;
  private recheckPending = false;
  private stopped = false;

  constructor(
    private readonly liveness: Liveness,
    private readonly scheduler: Scheduler<Handle>,
    private readonly onEffect: (effect: LivenessEffect) => void,
  ) {}

  /** Re-arms the timer after the machine's state changed (a call began or ended, a backlog appeared). */
  schedule(): void {
    if (this.stopped) return;
    const at = this.liveness.nextDeadline();
    if (at === Infinity) {
      this.clear();
      return;
    }
    // A timer due no later than needed may stay: it re-arms when it fires.
    if (this.timer !== undefined && this.timerAt <= at) return;
    this.clear();
    this.timerAt = at;
    this.timer = this.scheduler.setTimeout(this.onTimer, Math.max(0, Math.ceil(at - this.scheduler.now())));
  }

  /** Our write could not be handed to the kernel whole: `backlogBytes` wait in our buffer. */
  wrote(backlogBytes: number): void {
    if (backlogBytes === 0 || this.stopped) return;
    this.liveness.onBacklog(this.scheduler.now());
    this.schedule();
  }

  /** A write reached the kernel; `backlogBytes` still wait. */
  flushed(backlogBytes: number): void {
    if (!this.stopped) this.liveness.onFlush(this.scheduler.now(), backlogBytes);
  }

  /** For good: the connection is closed. */
  stop(): void {
    this.stopped = true;
    this.clear();
  }

  private clear(): void {
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.run();
  };

  private readonly onRecheck = (): void => {
    this.recheckPending = false;
    this.run();
  };

  private run(): void {
    if (this.stopped) return;
    const action = this.liveness.tick(this.scheduler.now());
    switch (action.type) {
      case 'recheck':
        // A deadline passed. If our own loop was blocked, the answer may be waiting unread: read it first.
        if (!this.recheckPending) {
          this.recheckPending = true;
          this.scheduler.afterInput(this.onRecheck);
        }
        return;
      case 'dead':
        this.stop();
        this.onEffect(action);
        return;
      case 'ping':
        this.onEffect(action);
        break;
      case 'none':
        break;
    }
    this.schedule();
  }
}
