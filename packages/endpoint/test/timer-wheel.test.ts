import { describe, expect, it } from 'vitest';
import { TimerWheel, type TimerTarget } from '@heartwire/endpoint';

const on = (onTimer: () => void): TimerTarget => ({ onTimer });

/** Advances `wheel` 1 ms at a time from `from` to `to`, as a host timer ticking every ms would. */
function walk(wheel: TimerWheel, from: number, to: number): void {
  for (let t = from; t <= to; t++) wheel.advance(t);
}

describe('TimerWheel', () => {
  it('fires every timer at the end of its tick: never early, less than one resolution late', () => {
    const wheel = new TimerWheel(10, 0, 16);
    const fired = new Map<number, number>();
    let clock = 0;
    const dues = [1, 9, 10, 11, 25, 159, 160, 161, 333, 1000, 1007];
    for (const at of dues) wheel.timer(on(() => fired.set(at, clock))).arm(at);
    expect(wheel.size).toBe(dues.length);
    for (clock = 0; clock <= 1100; clock++) wheel.advance(clock);
    for (const at of dues) {
      const when = fired.get(at) as number;
      expect(when).toBeGreaterThanOrEqual(at);
      expect(when - at).toBeLessThan(10);
      expect(when % 10).toBe(0);
    }
    expect(wheel.size).toBe(0);
  });

  it('keeps an exact cadence for an interval that is a multiple of its resolution, whatever the phase', () => {
    const wheel = new TimerWheel(10, 0);
    const times: number[] = [];
    let clock = 0;
    let next = 1234.567;
    const timer = wheel.timer(on(() => {
      times.push(clock);
      next += 1000;
      timer.arm(next);
    }));
    timer.arm(next);
    for (clock = 0; clock <= 8000; clock++) wheel.advance(clock);
    expect(times.length).toBeGreaterThanOrEqual(6);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(1000);
  });

  it('re-arming moves a timer, cancelling stops it, and neither allocates a new timer', () => {
    const wheel = new TimerWheel(5, 0, 8);
    const log: string[] = [];
    const a = wheel.timer(on(() => log.push('a')));
    const b = wheel.timer(on(() => log.push('b')));
    expect(a.arm(12)).toBe(15);
    b.arm(14);
    a.arm(40);
    b.cancel();
    b.cancel();
    expect(wheel.size).toBe(1);
    expect(a.armed).toBe(true);
    expect(b.armed).toBe(false);
    walk(wheel, 0, 30);
    expect(log).toEqual([]);
    walk(wheel, 31, 40);
    expect(log).toEqual(['a']);
    expect(a.armed).toBe(false);
  });

  it('holds a timer due turns ahead until its own turn comes', () => {
    const wheel = new TimerWheel(10, 0, 4);
    let firedAt = -1;
    let clock = 0;
    wheel.timer(on(() => (firedAt = clock))).arm(125);
    for (clock = 0; clock <= 200; clock++) wheel.advance(clock);
    expect(firedAt).toBe(130);
  });

  it('after a long gap (a blocked loop) runs every due timer once, in tick order, and none that is not due', () => {
    const wheel = new TimerWheel(10, 0, 8);
    const log: number[] = [];
    for (const at of [500, 20, 300, 95, 10_000]) wheel.timer(on(() => log.push(at))).arm(at);
    wheel.advance(5000);
    expect(log).toEqual([20, 95, 300, 500]);
    expect(wheel.size).toBe(1);
    wheel.advance(9999);
    expect(log).toHaveLength(4);
    wheel.advance(10_000);
    expect(log).toEqual([20, 95, 300, 500, 10_000]);
  });

  it('a callback may cancel or move another due timer, and re-arm itself in the past without looping', () => {
    const wheel = new TimerWheel(10, 0);
    const log: string[] = [];
    const victim = wheel.timer(on(() => log.push('victim')));
    const mover = wheel.timer(on(() => log.push('moved')));
    let again = 0;
    const self = wheel.timer(on(() => {
      log.push('self');
      victim.cancel();
      mover.arm(200);
      if (again++ < 1) self.arm(0);
    }));
    // One tick holds all three; they run in the order they were armed.
    self.arm(5);
    victim.arm(8);
    mover.arm(9);
    wheel.advance(10);
    expect(log).toEqual(['self']);
    // Armed for a time already passed: it fires at the next advance, not in the one that armed it.
    expect(self.armed).toBe(true);
    wheel.advance(11);
    expect(log).toEqual(['self']);
    wheel.advance(20);
    expect(log).toEqual(['self', 'self']);
    wheel.advance(200);
    expect(log).toEqual(['self', 'self', 'moved']);
  });

  it('says when it needs advancing: the end of the earliest armed tick, Infinity when empty', () => {
    const wheel = new TimerWheel(10, 0, 8);
    expect(wheel.nextAt()).toBe(Infinity);
    const far = wheel.timer(on(() => {}));
    far.arm(1001);
    // Due turns ahead: the wheel asks to be advanced once per turn at most, and never after the due time.
    expect(wheel.nextAt()).toBeLessThanOrEqual(1010);
    const near = wheel.timer(on(() => {}));
    near.arm(31);
    expect(wheel.nextAt()).toBe(40);
    wheel.advance(40);
    expect(wheel.nextAt()).toBeLessThanOrEqual(1010);
    far.cancel();
    expect(wheel.nextAt()).toBe(Infinity);
  });

  it('refuses a resolution or slot count that cannot work', () => {
    expect(() => new TimerWheel(0, 0)).toThrow(RangeError);
    expect(() => new TimerWheel(10, 0, 0)).toThrow(RangeError);
  });
});
