import { describe, expect, it } from 'vitest';
import { Liveness } from '@heartwire/core';
import { LivenessTimer, type LivenessEffect, type Scheduler, type SchedulerTimer, type TimerTarget } from '@heartwire/endpoint';

/** A hand-driven scheduler: time moves only when the test says so. */
class FakeScheduler implements Scheduler {
  time = 0;
  armed = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();
  private readonly afterInputQueue: Array<() => void> = [];

  now = (): number => this.time;
  timer = (target: TimerTarget): SchedulerTimer => {
    const id = this.nextId++;
    const callback = (): void => target.onTimer();
    return {
      arm: (at) => {
        this.armed++;
        this.timers.set(id, { at, callback });
      },
      cancel: () => {
        this.timers.delete(id);
      },
    };
  };
  afterInput = <T>(run: (arg: T) => void, arg: T): void => {
    this.afterInputQueue.push(() => run(arg));
  };

  /** Pending afterInput callbacks: what runs once waiting input was read. */
  get pendingInputTurns(): number {
    return this.afterInputQueue.length;
  }

  /** Runs the afterInput callbacks, as Node's check phase would after the poll phase. */
  runInputTurn(): void {
    for (const callback of this.afterInputQueue.splice(0)) callback();
  }

  /** A blocked event loop: the clock jumps to `to` first, then every due timer fires, late. */
  block(to: number): void {
    this.time = to;
    this.advance(to);
  }

  /** Moves the clock to `to`, firing due timers at their own times, in order. */
  advance(to: number): void {
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= to).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].callback();
    }
    this.time = to;
  }
}

function setup(options = { heartbeatMs: 100, silentMs: 300, stallMs: 0 }, probe?: () => number) {
  const scheduler = new FakeScheduler();
  const liveness = new Liveness(options);
  const effects: LivenessEffect[] = [];
  const driver = { onLivenessEffect: (e: LivenessEffect) => effects.push(e), ...(probe === undefined ? {} : { writeQueueBytes: probe }) };
  const timer = new LivenessTimer(liveness, scheduler, driver);
  return { scheduler, liveness, effects, timer };
}

describe('LivenessTimer', () => {
  it('pings on cadence while active and arms nothing while idle', () => {
    const { scheduler, liveness, effects, timer } = setup();
    timer.schedule();
    expect(scheduler.armed).toBe(0);
    liveness.activate(0);
    timer.schedule();
    scheduler.advance(350);
    expect(effects).toEqual([
      { type: 'ping', seq: 1 },
      { type: 'ping', seq: 2 },
      { type: 'ping', seq: 3 },
    ]);
    liveness.deactivate(0);
    timer.schedule();
    scheduler.advance(10_000);
    expect(effects).toHaveLength(3);
  });

  it('keeps an earlier timer instead of re-arming when the deadline moves later', () => {
    const { scheduler, liveness, timer } = setup();
    liveness.activate(0);
    timer.schedule();
    const armed = scheduler.armed;
    timer.schedule();
    timer.schedule();
    expect(scheduler.armed).toBe(armed);
  });

  it('a passed deadline waits for one input turn: an answer read there saves the peer', () => {
    const { scheduler, liveness, effects, timer } = setup();
    liveness.activate(0);
    timer.schedule();
    scheduler.advance(100);
    expect(effects).toEqual([{ type: 'ping', seq: 1 }]);
    // The loop is blocked from 100 to 5000; the PONG to PING 1 came in at once but is unread.
    scheduler.block(5000);
    expect(effects.some((e) => e.type === 'dead')).toBe(false);
    expect(scheduler.pendingInputTurns).toBe(1);
    // The input turn reads the PONG before the recheck runs.
    liveness.onPong(1, scheduler.time);
    scheduler.runInputTurn();
    expect(effects.some((e) => e.type === 'dead')).toBe(false);
    expect(liveness.state).toBe('active');
    // The cadence goes on from now.
    expect(effects.at(-1)).toEqual({ type: 'ping', seq: 2 });
  });

  it('with nothing read in that turn, declares the peer dead once and stops', () => {
    const { scheduler, effects, liveness, timer } = setup();
    liveness.activate(0);
    timer.schedule();
    scheduler.advance(400);
    expect(scheduler.pendingInputTurns).toBe(1);
    scheduler.runInputTurn();
    const dead = effects.filter((e) => e.type === 'dead');
    expect(dead).toEqual([{ type: 'dead', verdict: 'silent', overdueMs: 0 }]);
    const count = effects.length;
    timer.schedule();
    scheduler.advance(100_000);
    scheduler.runInputTurn();
    expect(effects).toHaveLength(count);
  });

  it('a backlog that makes no progress for stallMs ends as stalled; progress restarts the clock', () => {
    const { scheduler, effects, liveness, timer } = setup({ heartbeatMs: 0, silentMs: 60_000, stallMs: 1000 });
    liveness.activate(0);
    timer.wrote(4096);
    scheduler.advance(900);
    timer.flushed(2048);
    scheduler.advance(1800);
    expect(effects).toEqual([]);
    scheduler.advance(1900);
    scheduler.runInputTurn();
    expect(effects).toEqual([{ type: 'dead', verdict: 'stalled', overdueMs: 0 }]);
  });

  it('one large write in progress: a queue that keeps shrinking is progress, one that stops shrinking stalls', () => {
    let queued = 4_000_000;
    const { scheduler, effects, liveness, timer } = setup({ heartbeatMs: 0, silentMs: 60_000, stallMs: 1000 }, () => queued);
    liveness.activate(0);
    timer.wrote(queued);
    // The kernel takes 64 KiB a second; no write completes for a minute.
    for (let t = 1000; t <= 10_000; t += 1000) {
      queued -= 65_536;
      scheduler.advance(t);
      scheduler.runInputTurn();
    }
    expect(effects).toEqual([]);
    // The reader stops: the queue stays put.
    scheduler.advance(12_000);
    scheduler.runInputTurn();
    expect(effects).toEqual([{ type: 'dead', verdict: 'stalled', overdueMs: 1000 }]);
  });

  it('a queue that grows with new writes is not progress', () => {
    let queued = 1000;
    const { scheduler, effects, liveness, timer } = setup({ heartbeatMs: 0, silentMs: 60_000, stallMs: 1000 }, () => queued);
    liveness.activate(0);
    timer.wrote(queued);
    for (let t = 500; t <= 3000; t += 500) {
      queued += 100;
      timer.wrote(queued);
      scheduler.advance(t);
      scheduler.runInputTurn();
    }
    expect(effects).toEqual([{ type: 'dead', verdict: 'stalled', overdueMs: 0 }]);
  });

  it('after stop() nothing fires', () => {
    const { scheduler, effects, liveness, timer } = setup();
    liveness.activate(0);
    timer.schedule();
    timer.stop();
    timer.wrote(100);
    scheduler.advance(10_000);
    scheduler.runInputTurn();
    expect(effects).toEqual([]);
  });
});
