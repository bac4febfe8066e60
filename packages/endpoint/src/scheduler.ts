import { performance } from 'node:perf_hooks';
import type { Scheduler } from './liveness-timer.js';
import { TimerWheel, WheelTimer } from './timer-wheel.js';

/**
 * Tick of the timer wheel every connection in the process shares, in ms: heartbeats and verdicts fire at
 * most this late. A tenth of the shortest heartbeat a client may ask for
 * (100 ms), and 1 % of the default; an interval that is a multiple of it
 * keeps an exact cadence.
 */
export const TIMER_RESOLUTION_MS = 10;

const now = (): number => performance.now();

/**
 * Every connection's liveness timer, in one wheel driven by one Node timer:
 * re-arming a heartbeat costs a few field writes instead of a Node timer per
 * connection per beat (see TimerWheel).
 */
const wheel = new TimerWheel(TIMER_RESOLUTION_MS, now());
let wake: NodeJS.Timeout | undefined;
let wakeAt = Infinity;

/** Makes sure the wheel is advanced by `at`. */
function wakeBy(at: number): void {
  if (at >= wakeAt) return;
  if (wake !== undefined) clearTimeout(wake);
  wakeAt = at;
  wake = setTimeout(onWake, Math.max(0, Math.ceil(at - now())));
}

function onWake(): void {
  wake = undefined;
  wakeAt = Infinity;
  wheel.advance(now());
  wakeBy(wheel.nextAt());
}

/** A wheel timer that wakes the driver when it is armed, and lets the process idle once the wheel is empty. */
class DrivenTimer extends WheelTimer {
  override arm(at: number): number {
    const due = super.arm(at);
    wakeBy(due);
    return due;
  }

  override cancel(): void {
    super.cancel();
    if (wheel.size === 0 && wake !== undefined) {
      clearTimeout(wake);
      wake = undefined;
      wakeAt = Infinity;
    }
  }
}

/** The clock and timers of every connection's liveness rules (server and client); `setImmediate` runs after the poll phase has read waiting input. */
export const wheelScheduler: Scheduler = {
  now,
  timer: (target) => new DrivenTimer(wheel, target),
  afterInput: setImmediate,
};
