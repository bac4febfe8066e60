import type { TimerTarget } from './liveness-timer.js';

const IDLE = -1;
const FIRING = -2;

/**
 * Many timers on one clock, as a hashed timing wheel: time is cut into ticks
 * of `resolutionMs`, each timer waits in the slot of the first tick at or
 * after its due time, and the adapter drives the whole wheel with one host
 * timer (time in, callbacks out). Arming, re-arming and cancelling are O(1)
 * and allocate nothing, so 10,000 connections re-arming their heartbeat every
 * second cost one wake-up per tick instead of 10,000 host timers.
 *
 * A timer fires at the end of its tick: never early, at most `resolutionMs`
 * late (plus however late the host timer runs). A cadence whose interval is a
 * multiple of `resolutionMs` keeps the same offset in every tick, so its
 * intervals stay exact.
 */
export class TimerWheel {
  readonly resolutionMs: number;
  /** Each slot's timers, first armed first: heads and tails of doubly linked lists. */
  private readonly slots: (WheelTimer | undefined)[];
  private readonly tails: (WheelTimer | undefined)[];
  /** The last tick whose timers were run. */
  private current: number;
  private armed = 0;
  /** Timers taken out by `advance`, reused from one call to the next. */
  private readonly due: (WheelTimer | undefined)[] = [];

  /** `slots` × `resolutionMs` is one turn of the wheel; a timer due later waits there for its turn. */
  constructor(resolutionMs: number, now: number, slots = 512) {
    if (!(resolutionMs > 0) || !Number.isInteger(slots) || slots < 1) {
      throw new RangeError('a timer wheel needs resolutionMs > 0 and at least one slot');
    }
    this.resolutionMs = resolutionMs;
    this.slots = new Array<WheelTimer | undefined>(slots).fill(undefined);
    this.tails = new Array<WheelTimer | undefined>(slots).fill(undefined);
    this.current = Math.floor(now / resolutionMs);
  }

  /** Timers armed and not yet fired or cancelled. */
  get size(): number {
    return this.armed;
  }

  /** A timer that calls `target.onTimer()` each time it fires; arm it with {@link WheelTimer.arm}. */
  timer(target: TimerTarget): WheelTimer {
    return new WheelTimer(this, target);
  }

  /**
   * Runs every timer due by `now`, in tick order, and within a tick in the
   * order they were armed. A timer armed by one of these callbacks fires at a
   * later `advance`, even if it is already due.
   */
  advance(now: number): void {
    const target = Math.floor(now / this.resolutionMs);
    // Past one turn every slot has been visited: the rest of a long gap is caught by the tick check.
    const steps = Math.min(target - this.current, this.slots.length);
    const first = this.current + 1;
    // Timers armed from here on go to a tick after `target`.
    this.current = target;
    // Take the due timers out first, then run them: a callback may cancel or move any timer.
    let due = 0;
    for (let step = 0; step < steps; step++) {
      const slot = (first + step) % this.slots.length;
      for (let timer = this.slots[slot]; timer !== undefined; ) {
        const next = timer.next;
        if (timer.tick <= target) {
          this.unlink(timer);
          timer.slot = FIRING;
          this.due[due++] = timer;
        }
        timer = next;
      }
    }
    // After a gap of more than a turn, slot order is not tick order.
    if (steps === this.slots.length && due > 1) sortByTick(this.due, due);
    for (let i = 0; i < due; i++) {
      const timer = this.due[i] as WheelTimer;
      this.due[i] = undefined;
      // Cancelled or armed again by an earlier callback: not due any more.
      if (timer.slot !== FIRING) continue;
      timer.slot = IDLE;
      timer.target.onTimer();
    }
  }

  /**
   * When `advance` should next run: the end of the first tick ahead whose
   * slot holds a timer; Infinity when none is armed. That slot's timers may
   * all be a turn or more away: the wake-up then finds nothing due and asks
   * again (at most once per turn per such slot), which is cheaper than
   * walking the slot for its earliest timer every time.
   */
  nextAt(): number {
    if (this.armed === 0) return Infinity;
    const count = this.slots.length;
    for (let step = 1; step <= count; step++) {
      if (this.slots[(this.current + step) % count] !== undefined) return (this.current + step) * this.resolutionMs;
    }
    return Infinity;
  }

  /** @internal */
  arm(timer: WheelTimer, at: number): number {
    this.unlink(timer);
    const tick = Math.max(Math.ceil(at / this.resolutionMs), this.current + 1);
    const slot = tick % this.slots.length;
    timer.tick = tick;
    timer.slot = slot;
    const tail = this.tails[slot];
    timer.prev = tail;
    if (tail === undefined) this.slots[slot] = timer;
    else tail.next = timer;
    this.tails[slot] = timer;
    this.armed++;
    return tick * this.resolutionMs;
  }

  /** @internal */
  unlink(timer: WheelTimer): void {
    if (timer.slot === FIRING) timer.slot = IDLE;
    if (timer.slot === IDLE) return;
    if (timer.prev === undefined) this.slots[timer.slot] = timer.next;
    else timer.prev.next = timer.next;
    if (timer.next === undefined) this.tails[timer.slot] = timer.prev;
    else timer.next.prev = timer.prev;
    timer.prev = undefined;
    timer.next = undefined;
    timer.slot = IDLE;
    this.armed--;
  }
}

/** Sorts the first `count` timers by tick, keeping the order of equal ticks (a rare path: after a gap of more than a turn). */
function sortByTick(timers: (WheelTimer | undefined)[], count: number): void {
  const sorted = (timers.slice(0, count) as WheelTimer[]).sort((x, y) => x.tick - y.tick);
  for (let i = 0; i < count; i++) timers[i] = sorted[i];
}

/** One timer of a {@link TimerWheel}, armed again and again without allocating. */
export class WheelTimer {
  /** @internal Slot index; IDLE while not armed, FIRING while `advance` is about to run it. */
  slot = IDLE;
  /** @internal */
  tick = 0;
  /** @internal */
  prev: WheelTimer | undefined;
  /** @internal */
  next: WheelTimer | undefined;

  constructor(
    private readonly wheel: TimerWheel,
    /** @internal Told by the wheel when the timer fires. */
    readonly target: TimerTarget,
  ) {}

  /** True while armed. */
  get armed(): boolean {
    return this.slot >= 0;
  }

  /** Arms (or moves) the timer to fire at the end of the tick holding `at`; returns that time. */
  arm(at: number): number {
    return this.wheel.arm(this, at);
  }

  cancel(): void {
    this.wheel.unlink(this);
  }
}
