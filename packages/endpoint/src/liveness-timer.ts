import type { Liveness, LivenessAction } from '@heartwire/core';

/** What a {@link SchedulerTimer} tells when it fires: an object with a method, so a connection holds no closure for it. */
export interface TimerTarget {
  onTimer(): void;
}

/**
 * The clock and timers a {@link LivenessTimer} runs on. Core calls no timer
 * API itself: server and client pass the shared timer wheel, tests a
 * hand-driven clock.
 */
export interface Scheduler {
  /** A monotonic clock in ms (`performance.now`). */
  now(): number;
  /** A timer that calls `target.onTimer()` each time it fires, armed again and again. */
  timer(target: TimerTarget): SchedulerTimer;
  /** Runs `run(arg)` once the input already waiting has been read (`setImmediate` in Node: after the poll phase). */
  afterInput<T>(run: (arg: T) => void, arg: T): void;
}

/** A timer from {@link Scheduler.timer}. */
export interface SchedulerTimer {
  /** Arms it, or moves it, to fire once at time `at` on the scheduler's clock (never earlier; a scheduler may fire a little later). */
  arm(at: number): void;
  cancel(): void;
}

/** The actions an adapter carries out: everything else the timer handles itself. */
export type LivenessEffect = Extract<LivenessAction, { type: 'ping' | 'dead' | 'idle' }>;

/** The adapter a {@link LivenessTimer} works for. */
export interface LivenessDriver {
  /** Carries out a PING, a verdict, or the end of the idle deadline. */
  onLivenessEffect(effect: LivenessEffect): void;
  /**
   * Bytes of the writes in progress not yet handed to the kernel, read live
   * (Node: the stream handle's `writeQueueSize`, see `writeQueueBytes`). A
   * single large write completes only when its last byte left; on a slow
   * link that takes longer than the stall bound, and only this number shows
   * it is moving. Without it only completed writes count as progress.
   */
  writeQueueBytes?(): number;
}

/**
 * Drives a {@link Liveness} machine with one timer: armed for the machine's
 * next deadline, kept when an earlier one is already armed, and turning a
 * `recheck` into one more tick after the waiting input was read. It tells
 * the adapter to ping, to give up, or that the idle deadline passed; after
 * `dead` or `stop()` it does nothing. It holds no closure: the timer and the
 * recheck call its methods.
 */
export class LivenessTimer implements TimerTarget {
  private readonly timer: SchedulerTimer;
  /** When the armed timer fires; Infinity while it is not armed. */
  private timerAt = Infinity;
  private recheckPending = false;
  private stopped = false;
  /** What the probe read last while a backlog waits; -1 while there is none. */
  private lastQueued = -1;

  constructor(
    private readonly liveness: Liveness,
    private readonly scheduler: Scheduler,
    private readonly driver: LivenessDriver,
  ) {
    this.timer = scheduler.timer(this);
  }

  /** Re-arms the timer after the machine's state changed (a call began or ended, a backlog appeared). */
  schedule(): void {
    if (this.stopped) return;
    const at = this.liveness.nextDeadline();
    if (at === Infinity) {
      this.clear();
      return;
    }
    // A timer due no later than needed may stay: it re-arms when it fires.
    if (this.timerAt <= at) return;
    this.timerAt = at;
    this.timer.arm(at);
  }

  /** Our write could not be handed to the kernel whole: `backlogBytes` wait in our buffer. */
  wrote(backlogBytes: number): void {
    if (backlogBytes === 0 || this.stopped) return;
    this.liveness.onBacklog(this.scheduler.now());
    if (this.driver.writeQueueBytes !== undefined && this.lastQueued < 0) this.lastQueued = this.driver.writeQueueBytes();
    this.schedule();
  }

  /** A write reached the kernel; `backlogBytes` still wait. */
  flushed(backlogBytes: number): void {
    // The time matters only while bytes wait: no clock read for the usual write that went out whole.
    if (this.stopped) return;
    this.liveness.onFlush(backlogBytes > 0 ? this.scheduler.now() : 0, backlogBytes);
    // The next write in progress starts from here.
    if (this.driver.writeQueueBytes !== undefined) this.lastQueued = backlogBytes > 0 ? this.driver.writeQueueBytes() : -1;
  }

  /** For good: the connection is closed. */
  stop(): void {
    this.stopped = true;
    this.clear();
  }

  private clear(): void {
    if (this.timerAt === Infinity) return;
    this.timer.cancel();
    this.timerAt = Infinity;
  }

  /** The timer fired (TimerTarget). */
  onTimer(): void {
    this.timerAt = Infinity;
    this.run();
  }

  private static recheck(timer: LivenessTimer): void {
    timer.recheckPending = false;
    timer.run();
  }

  private run(): void {
    if (this.stopped) return;
    const now = this.scheduler.now();
    if (this.lastQueued >= 0) {
      // Only a shrinking queue is progress: a new write makes it grow.
      const queued = (this.driver.writeQueueBytes as () => number)();
      if (queued < this.lastQueued) this.liveness.onWriteProgress(now);
      this.lastQueued = queued;
    }
    const action = this.liveness.tick(now);
    switch (action.type) {
      case 'recheck':
        // A deadline passed. If our own loop was blocked, the answer may be waiting unread: read it first.
        if (!this.recheckPending) {
          this.recheckPending = true;
          this.scheduler.afterInput(LivenessTimer.recheck, this);
        }
        return;
      case 'dead':
        this.stop();
        this.driver.onLivenessEffect(action);
        return;
      case 'ping':
      case 'idle':
        this.driver.onLivenessEffect(action);
        break;
      case 'none':
        break;
    }
    this.schedule();
  }
}
