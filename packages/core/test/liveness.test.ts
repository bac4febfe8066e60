import { describe, expect, it } from 'vitest';
import { Liveness, type LivenessAction, type LivenessOptions } from '@heartwire/core';

// The clock is a plain number the tests advance by hand: no timers, no fakes.

const HEARTBEAT = 1_000;
const SILENT = 3_000;
const STALL = 5_000;

const NONE: LivenessAction = { type: 'none' };
const RECHECK: LivenessAction = { type: 'recheck' };
const ping = (seq: number): LivenessAction => ({ type: 'ping', seq });
const dead = (verdict: 'silent' | 'stalled', overdueMs: number): LivenessAction => ({ type: 'dead', verdict, overdueMs });

function pinger(overrides: Partial<LivenessOptions> = {}): Liveness {
  return new Liveness({ heartbeatMs: HEARTBEAT, silentMs: SILENT, stallMs: STALL, ...overrides });
}

function watcher(overrides: Partial<LivenessOptions> = {}): Liveness {
  return new Liveness({ heartbeatMs: 0, silentMs: SILENT, stallMs: STALL, ...overrides });
}

/**
 * Runs the machine the way an adapter does: tick at each deadline up to `until`,
 * answering `recheck` with an immediate second tick. Returns what happened.
 */
function runUntil(live: Liveness, until: number): { at: number; action: LivenessAction }[] {
  const log: { at: number; action: LivenessAction }[] = [];
  for (let guard = 0; guard < 10_000; guard++) {
    const at = live.nextDeadline();
    if (at > until) return log;
    const action = live.tick(at);
    log.push({ at, action });
    if (action.type === 'dead') return log;
  }
  throw new Error('runaway machine');
}

describe('Liveness: the idle deadline (idleMs)', () => {
  const IDLE_MS = 10_000;
  const IDLE: LivenessAction = { type: 'idle' };

  it('passes only after a recheck, once, counted from startIdle', () => {
    const live = pinger({ idleMs: IDLE_MS });
    expect(live.nextDeadline()).toBe(Infinity); // not counting until started
    live.startIdle(500);
    expect(live.nextDeadline()).toBe(500 + IDLE_MS);
    expect(live.tick(500 + IDLE_MS - 1)).toEqual(NONE);
    expect(live.tick(500 + IDLE_MS)).toEqual(RECHECK);
    expect(live.tick(500 + IDLE_MS + 1)).toEqual(IDLE);
    // Said once: the adapter closes, or starts it again.
    expect(live.nextDeadline()).toBe(Infinity);
    expect(live.tick(500 + 2 * IDLE_MS)).toEqual(NONE);
  });

  it('work in flight stops it; the end of the work starts it again, with heartbeats meanwhile', () => {
    const live = pinger({ idleMs: IDLE_MS });
    live.startIdle(0);
    live.activate(4_000);
    expect(live.nextDeadline()).toBe(4_000 + HEARTBEAT);
    live.onInbound(4_900);
    expect(live.tick(5_000)).toEqual(ping(1));
    live.onPong(1, 5_001);
    live.deactivate(6_000);
    expect(live.nextDeadline()).toBe(6_000 + IDLE_MS);
  });

  it('a call that starts between the recheck and the verdict cancels it', () => {
    const live = pinger({ idleMs: IDLE_MS });
    live.startIdle(0);
    expect(live.tick(IDLE_MS)).toEqual(RECHECK);
    live.activate(IDLE_MS); // the CALL that waited unread
    expect(live.tick(IDLE_MS + 1)).toEqual(NONE);
    live.deactivate(IDLE_MS + 2);
    expect(live.tick(2 * IDLE_MS + 2)).toEqual(RECHECK);
  });

  it('without idleMs, or on a machine that is not idle, startIdle does nothing', () => {
    const plain = pinger();
    plain.startIdle(0);
    expect(plain.nextDeadline()).toBe(Infinity);
    const busy = pinger({ idleMs: IDLE_MS });
    busy.activate(0);
    busy.startIdle(0);
    expect(busy.nextDeadline()).toBe(HEARTBEAT);
  });
});

describe('Liveness: idle', () => {
  it('a new machine is idle and does nothing, however late', () => {
    const live = pinger();
    expect(live.state).toBe('idle');
    expect(live.nextDeadline()).toBe(Infinity);
    for (const now of [0, HEARTBEAT, SILENT * 10, 1e12]) expect(live.tick(now)).toEqual(NONE);
    expect(live.state).toBe('idle');
  });

  it('an idle machine ignores backlog: no stall verdict without activity', () => {
    const live = pinger();
    live.onBacklog(0);
    expect(live.nextDeadline()).toBe(Infinity);
    expect(live.tick(STALL * 10)).toEqual(NONE);
    expect(live.state).toBe('idle');
  });

  it('an idle watcher never declares silence', () => {
    const live = watcher();
    expect(live.tick(SILENT * 100)).toEqual(NONE);
    expect(live.nextDeadline()).toBe(Infinity);
  });
});

describe('Liveness: pinger cadence', () => {
  it('activate: first PING due one interval later, not before', () => {
    const live = pinger();
    live.activate(500);
    expect(live.state).toBe('active');
    expect(live.nextDeadline()).toBe(500 + HEARTBEAT);
    expect(live.tick(500)).toEqual(NONE);
    expect(live.tick(500 + HEARTBEAT - 1)).toEqual(NONE);
    expect(live.tick(500 + HEARTBEAT)).toEqual(ping(1));
  });

  it('activate again while active changes nothing', () => {
    const live = pinger();
    live.activate(0);
    live.activate(700);
    expect(live.nextDeadline()).toBe(HEARTBEAT);
  });

  it('PINGs keep a steady cadence with increasing seq when PONGs come back', () => {
    const live = pinger();
    live.activate(0);
    const deadlines: number[] = [];
    for (let i = 1; i <= 10; i++) {
      const at = live.nextDeadline();
      deadlines.push(at);
      expect(live.tick(at)).toEqual(ping(i));
      expect(live.onPong(i, at + 20)).toBe(true);
    }
    expect(deadlines).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => n * HEARTBEAT));
    expect(live.nextDeadline()).toBe(11 * HEARTBEAT);
    expect(live.state).toBe('active');
  });

  it('a tick a little late does not shift the cadence', () => {
    const live = pinger();
    live.activate(0);
    expect(live.tick(1_300)).toEqual(ping(1));
    expect(live.nextDeadline()).toBe(2_000);
    expect(live.tick(1_400)).toEqual(NONE);
    expect(live.tick(2_000)).toEqual(ping(2));
    expect(live.nextDeadline()).toBe(3_000);
  });

  it('one tick sends at most one PING', () => {
    const live = pinger();
    live.activate(0);
    expect(live.tick(HEARTBEAT)).toEqual(ping(1));
    expect(live.tick(HEARTBEAT)).toEqual(NONE);
  });

  it('without PONGs, the silent deadline is the oldest PING + silentMs', () => {
    const live = pinger();
    live.activate(0);
    expect(live.tick(1_000)).toEqual(ping(1));
    expect(live.nextDeadline()).toBe(2_000); // next PING comes first
    expect(live.tick(2_000)).toEqual(ping(2));
    expect(live.tick(3_000)).toEqual(ping(3));
    // Next PING at 4000 and silent deadline 1000 + 3000 = 4000.
    expect(live.nextDeadline()).toBe(4_000);
  });

  it('after a long gap the cadence restarts from now instead of bursting', () => {
    const live = pinger({ silentMs: 1e9 });
    live.activate(0);
    expect(live.tick(1_000)).toEqual(ping(1));
    expect(live.onPong(1, 1_010)).toBe(true);
    // The loop was blocked for 50 intervals.
    expect(live.tick(51_500)).toEqual(ping(2));
    expect(live.nextDeadline()).toBe(52_500);
    expect(live.tick(51_500)).toEqual(NONE);
    expect(live.tick(52_499)).toEqual(NONE);
    expect(live.tick(52_500)).toEqual(ping(3));
    expect(live.nextDeadline()).toBe(53_500);
  });
});

describe('Liveness: PONG', () => {
  it('a PONG answers its PING and every earlier one', () => {
    const live = pinger({ silentMs: 10_000 });
    live.activate(0);
    expect(live.tick(1_000)).toEqual(ping(1));
    expect(live.tick(2_000)).toEqual(ping(2));
    expect(live.tick(3_000)).toEqual(ping(3));
    expect(live.tick(4_000)).toEqual(ping(4));
    // PONG 3 answers 1, 2 and 3: PING 4 (sent at 4000) is still pending, but the PONG's bytes
    // arrived after it went out, so it is overdue only silentMs after them.
    expect(live.onPong(3, 4_100)).toBe(true);
    // Next events: PING 5 at 5000, silent at 4100 + 10000.
    for (let t = 5_000; t <= 14_000; t += 1_000) live.tick(t);
    expect(live.nextDeadline()).toBe(14_100);
    expect(live.tick(14_100)).toEqual(RECHECK);
    expect(live.tick(14_100)).toEqual(dead('silent', 0));
  });

  it('an answered PING no longer counts: PONG for the last PING clears the silent deadline', () => {
    const live = pinger();
    live.activate(0);
    live.tick(1_000);
    live.tick(2_000);
    expect(live.onPong(2, 2_001)).toBe(true);
    expect(live.nextDeadline()).toBe(3_000); // only the next PING
    // Far past the old silent deadline of PING 1: still fine.
    expect(live.tick(4_000)).toEqual(ping(3));
    expect(live.state).toBe('active');
  });

  it('a PONG with a seq never sent returns false', () => {
    const live = pinger();
    expect(live.onPong(1, 0)).toBe(false); // nothing sent yet
    live.activate(0);
    live.tick(1_000);
    expect(live.onPong(2, 1_001)).toBe(false);
    expect(live.onPong(0, 1_001)).toBe(false);
    expect(live.onPong(-1, 1_001)).toBe(false);
    // The real PING is still pending.
    expect(live.nextDeadline()).toBe(2_000);
    live.tick(2_000);
    expect(live.onPong(1, 2_001)).toBe(true);
  });

  it('a bogus PONG does not count as an answer', () => {
    const live = pinger();
    live.activate(0);
    expect(live.tick(1_000)).toEqual(ping(1));
    live.tick(2_000);
    live.tick(3_000);
    expect(live.tick(4_000)).toEqual(RECHECK);
    expect(live.onPong(99, 4_000)).toBe(false);
    expect(live.tick(4_000)).toEqual(dead('silent', 0));
  });

  it('a duplicate PONG is accepted and changes nothing', () => {
    const live = pinger();
    live.activate(0);
    live.tick(1_000);
    expect(live.onPong(1, 1_010)).toBe(true);
    live.tick(2_000);
    expect(live.onPong(1, 2_010)).toBe(true);
    // PING 2 is still pending; the duplicate's bytes count as life: silent at 2010 + 3000.
    live.tick(3_000);
    live.tick(4_000);
    expect(live.tick(5_000)).toEqual(ping(5));
    expect(live.tick(5_010)).toEqual(RECHECK);
    expect(live.tick(5_010)).toEqual(dead('silent', 0));
  });
});

describe('Liveness: silent verdict, pinger', () => {
  it('unanswered PING: recheck at sent + silentMs, then dead silent with overdueMs', () => {
    const live = pinger({ heartbeatMs: 10_000 }); // one PING only in the window
    live.activate(0);
    expect(live.tick(10_000)).toEqual(ping(1));
    expect(live.nextDeadline()).toBe(10_000 + SILENT);
    expect(live.tick(10_000 + SILENT - 1)).toEqual(NONE);
    expect(live.state).toBe('active');
    expect(live.tick(10_000 + SILENT)).toEqual(RECHECK);
    expect(live.state).toBe('suspect');
    expect(live.tick(10_000 + SILENT + 7)).toEqual(dead('silent', 7));
    expect(live.state).toBe('dead');
  });

  it('the PONG arriving between recheck and the next tick saves the connection', () => {
    const live = pinger({ heartbeatMs: 10_000 });
    live.activate(0);
    live.tick(10_000);
    expect(live.tick(13_000)).toEqual(RECHECK);
    expect(live.state).toBe('suspect');
    expect(live.onPong(1, 13_001)).toBe(true);
    expect(live.state).toBe('active');
    expect(live.tick(13_001)).toEqual(NONE);
    expect(live.state).toBe('active');
    expect(live.nextDeadline()).toBe(20_000);
  });

  it('blocked event loop: clock jumps 10 x silentMs, PONG read before the recheck tick, never dead', () => {
    const live = pinger();
    live.activate(0);
    expect(live.tick(1_000)).toEqual(ping(1));
    // The loop blocks; the peer answered long ago, its PONG waits in the kernel.
    const resumed = 1_000 + 10 * SILENT;
    expect(live.tick(resumed)).toEqual(RECHECK);
    // One turn of I/O: the PONG is read.
    expect(live.onPong(1, resumed)).toBe(true);
    const next = live.tick(resumed);
    expect(next.type).not.toBe('dead');
    expect(next).toEqual(ping(2)); // cadence restarts from now
    expect(live.nextDeadline()).toBe(resumed + HEARTBEAT);
    expect(live.state).toBe('active');
    // And it carries on healthily.
    const log = [];
    for (let i = 0; i < 20; i++) {
      const at = live.nextDeadline();
      const action = live.tick(at);
      log.push(action);
      if (action.type === 'ping') live.onPong(action.seq, at + 5);
    }
    expect(log.some((a) => a.type === 'dead' || a.type === 'recheck')).toBe(false);
  });

  it('blocked loop with several PINGs pending: a PONG to the latest answers them all', () => {
    const live = pinger();
    live.activate(0);
    live.tick(1_000);
    live.tick(2_000);
    expect(live.tick(3_000)).toEqual(ping(3));
    const resumed = 3_000 + 10 * SILENT;
    expect(live.tick(resumed)).toEqual(RECHECK);
    expect(live.onPong(3, resumed)).toBe(true);
    expect(live.tick(resumed).type).toBe('ping');
    expect(live.state).toBe('active');
  });

  it('a PONG to an older PING is a sign of life: the newer one is overdue only silentMs after it', () => {
    const live = pinger();
    live.activate(0);
    live.tick(1_000);
    live.tick(2_000);
    const resumed = 40_000;
    expect(live.tick(resumed)).toEqual(RECHECK);
    expect(live.onPong(1, resumed)).toBe(true);
    expect(live.state).toBe('active');
    // PING 2 is still unanswered: with nothing more arriving, silent at resumed + 3000.
    const log = runUntil(live, resumed + 10_000);
    expect(log.at(-2)).toEqual({ at: resumed + 3_000, action: RECHECK });
    expect(log.at(-1)).toEqual({ at: resumed + 3_000, action: dead('silent', 0) });
  });

  it('many PINGs pending (interval far below the silent bound): the verdict comes from the oldest one still unanswered', () => {
    const live = pinger({ heartbeatMs: 100, silentMs: 2_000 });
    live.activate(0);
    // 12 PINGs at 100, 200, … 1200, none answered yet.
    for (let t = 100; t <= 1_200; t += 100) expect(live.tick(t)).toEqual(ping(t / 100));
    // PONG 5 answers 1 to 5: PINGs 6 to 12 went out before it arrived, so they are due 2000 ms after it.
    expect(live.onPong(5, 1_250)).toBe(true);
    const log = runUntil(live, 10_000);
    expect(log.at(-2)).toEqual({ at: 3_250, action: RECHECK });
    expect(log.at(-1)).toEqual({ at: 3_250, action: dead('silent', 0) });
    // PINGs 13 to 32, at 1300 … 3200.
    expect(log.filter((e) => e.action.type === 'ping')).toHaveLength(20);
  });

  it('PONGs that keep up with many PINGs pending never let the deadline come', () => {
    const live = pinger({ heartbeatMs: 100, silentMs: 450 });
    live.activate(0);
    // Each PONG answers the PING before last: four or five stay pending, the oldest always younger than 450 ms.
    for (let t = 100; t <= 5_000; t += 100) {
      expect(live.tick(t).type).toBe('ping');
      if (t >= 400) expect(live.onPong(t / 100 - 3, t)).toBe(true);
      expect(live.nextDeadline()).toBeGreaterThan(t);
    }
    expect(live.state).toBe('active');
  });

  it('dead is final', () => {
    const live = pinger();
    live.activate(0);
    const log = runUntil(live, 1e9);
    expect(log.at(-1)?.action).toEqual(dead('silent', 0));
    expect(log.map((e) => e.action.type)).toEqual(['ping', 'ping', 'ping', 'recheck', 'dead']);
    expect(live.state).toBe('dead');
    expect(live.nextDeadline()).toBe(Infinity);
    expect(live.tick(1e9)).toEqual(NONE);
    expect(live.onPong(1, 1e9)).toBe(true); // a late answer changes nothing
    expect(live.state).toBe('dead');
    live.onInbound(1e9);
    live.activate(1e9);
    live.deactivate(0);
    expect(live.state).toBe('dead');
    expect(live.tick(2e9)).toEqual(NONE);
  });
});

describe('Liveness: deactivate', () => {
  it('forgives pending PINGs, and stops pinging', () => {
    const live = pinger();
    live.activate(0);
    live.tick(1_000);
    live.tick(2_000);
    live.deactivate(0);
    expect(live.state).toBe('idle');
    expect(live.nextDeadline()).toBe(Infinity);
    expect(live.tick(100_000)).toEqual(NONE);
  });

  it('a stale PONG after deactivate is accepted and harmless', () => {
    const live = pinger();
    live.activate(0);
    live.tick(1_000);
    live.tick(2_000);
    live.deactivate(0);
    expect(live.onPong(2, 2_500)).toBe(true);
    expect(live.onPong(1, 2_600)).toBe(true);
    expect(live.state).toBe('idle');
    // Reactivate: seq continues, the forgiven PINGs do not count.
    live.activate(50_000);
    expect(live.nextDeadline()).toBe(51_000);
    expect(live.tick(51_000)).toEqual(ping(3));
    expect(live.onPong(3, 51_010)).toBe(true);
    expect(live.nextDeadline()).toBe(52_000);
  });

  it('after reactivation an unanswered new PING still leads to a verdict', () => {
    const live = pinger();
    live.activate(0);
    live.tick(1_000);
    live.deactivate(0);
    live.activate(10_000);
    expect(live.tick(11_000)).toEqual(ping(2));
    live.onPong(1, 11_001); // stale: does not answer PING 2, but its bytes count as life
    live.tick(12_000);
    live.tick(13_000);
    expect(live.tick(14_000)).toEqual(ping(5));
    expect(live.tick(14_001)).toEqual(RECHECK);
    expect(live.tick(14_001)).toEqual(dead('silent', 0));
  });

  it('deactivate while suspect drops the pending verdict', () => {
    const live = pinger();
    live.activate(0);
    runUntil(live, 3_999);
    expect(live.tick(4_000)).toEqual(RECHECK);
    live.deactivate(0);
    expect(live.state).toBe('idle');
    expect(live.tick(4_000)).toEqual(NONE);
  });

  it('deactivate clears the backlog clock', () => {
    const live = pinger({ heartbeatMs: 1e9 });
    live.activate(0);
    live.onBacklog(0);
    live.deactivate(0);
    live.activate(100_000);
    expect(live.nextDeadline()).toBe(100_000 + 1e9);
    expect(live.tick(100_000 + STALL)).toEqual(NONE);
  });

  it('deactivate twice, or while idle, is harmless', () => {
    const live = pinger();
    live.deactivate(0);
    live.activate(0);
    live.deactivate(0);
    live.deactivate(0);
    expect(live.state).toBe('idle');
    live.activate(5);
    expect(live.nextDeadline()).toBe(5 + HEARTBEAT);
  });
});

describe('Liveness: watcher role (heartbeatMs 0)', () => {
  it('never pings', () => {
    const live = watcher();
    live.activate(0);
    for (let t = 0; t < 100_000; t += 500) {
      live.onInbound(t);
      expect(live.tick(t)).toEqual(NONE);
    }
  });

  it('silent when nothing arrives for silentMs: recheck, then dead', () => {
    const live = watcher();
    live.activate(100);
    expect(live.nextDeadline()).toBe(100 + SILENT);
    expect(live.tick(100 + SILENT - 1)).toEqual(NONE);
    expect(live.tick(100 + SILENT)).toEqual(RECHECK);
    expect(live.state).toBe('suspect');
    expect(live.tick(100 + SILENT + 2)).toEqual(dead('silent', 2));
  });

  it('onInbound pushes the deadline', () => {
    const live = watcher();
    live.activate(0);
    live.onInbound(2_000);
    expect(live.nextDeadline()).toBe(2_000 + SILENT);
    expect(live.tick(SILENT)).toEqual(NONE);
    live.onInbound(4_500);
    expect(live.nextDeadline()).toBe(4_500 + SILENT);
    expect(live.tick(4_500 + SILENT)).toEqual(RECHECK);
  });

  it('any inbound frame between recheck and the next tick cancels the verdict', () => {
    const live = watcher();
    live.activate(0);
    const resumed = 10 * SILENT; // blocked loop
    expect(live.tick(resumed)).toEqual(RECHECK);
    live.onInbound(resumed);
    expect(live.state).toBe('active');
    expect(live.tick(resumed)).toEqual(NONE);
    expect(live.nextDeadline()).toBe(resumed + SILENT);
  });

  it('activate restarts the silence window from now', () => {
    const live = watcher();
    live.activate(0);
    live.deactivate(0);
    live.activate(50_000);
    expect(live.nextDeadline()).toBe(50_000 + SILENT);
    expect(live.tick(50_000)).toEqual(NONE);
  });
});

describe('Liveness: stall rule', () => {
  const quiet = (o: Partial<LivenessOptions> = {}): Liveness => pinger({ heartbeatMs: 1e9, ...o });

  it('backlog with no flush: recheck at t + stallMs, then dead stalled', () => {
    const live = quiet();
    live.activate(0);
    live.onBacklog(200);
    expect(live.nextDeadline()).toBe(200 + STALL);
    expect(live.tick(200 + STALL - 1)).toEqual(NONE);
    expect(live.tick(200 + STALL)).toEqual(RECHECK);
    expect(live.tick(200 + STALL + 30)).toEqual(dead('stalled', 30));
  });

  it('a second onBacklog does not restart the clock', () => {
    const live = quiet();
    live.activate(0);
    live.onBacklog(0);
    live.onBacklog(4_000);
    expect(live.nextDeadline()).toBe(STALL);
  });

  it('onFlush with bytes still waiting restarts the stall clock', () => {
    const live = quiet();
    live.activate(0);
    live.onBacklog(0);
    live.onFlush(4_000, 123);
    expect(live.nextDeadline()).toBe(4_000 + STALL);
    expect(live.tick(STALL)).toEqual(NONE);
    expect(live.tick(4_000 + STALL)).toEqual(RECHECK);
    expect(live.tick(4_000 + STALL)).toEqual(dead('stalled', 0));
  });

  it('progress between recheck and the next tick cancels the verdict', () => {
    const live = quiet();
    live.activate(0);
    live.onBacklog(0);
    expect(live.tick(STALL)).toEqual(RECHECK);
    live.onFlush(STALL, 10);
    expect(live.tick(STALL)).toEqual(NONE);
    expect(live.state).toBe('active');
    expect(live.nextDeadline()).toBe(2 * STALL);
  });

  it('onFlush(now, 0) clears the stall clock', () => {
    const live = quiet();
    live.activate(0);
    live.onBacklog(0);
    live.onFlush(1_000, 0);
    expect(live.nextDeadline()).toBe(1e9);
    expect(live.tick(STALL * 100)).toEqual(NONE);
    expect(live.state).toBe('active');
  });

  it('stallMs 0 turns the rule off', () => {
    const live = quiet({ stallMs: 0 });
    live.activate(0);
    live.onBacklog(0);
    expect(live.nextDeadline()).toBe(1e9);
    expect(live.tick(1e8)).toEqual(NONE);
    expect(live.state).toBe('active');
  });

  it('silent deadline hit while a backlog exists: verdict stalled', () => {
    const live = pinger({ heartbeatMs: 10_000, stallMs: 60_000 });
    live.activate(0);
    expect(live.tick(10_000)).toEqual(ping(1));
    live.onBacklog(11_000); // stall deadline 71000, well after silent at 13000
    expect(live.nextDeadline()).toBe(13_000);
    expect(live.tick(13_000)).toEqual(RECHECK);
    expect(live.tick(13_500)).toEqual(dead('stalled', 500));
  });

  it('silent deadline with a backlog but stallMs 0: still stalled (bytes were backed up)', () => {
    const live = pinger({ heartbeatMs: 10_000, stallMs: 0 });
    live.activate(0);
    live.tick(10_000);
    live.onBacklog(10_500);
    expect(live.tick(13_000)).toEqual(RECHECK);
    expect(live.tick(13_000)).toEqual(dead('stalled', 0));
  });

  it('silent deadline after the backlog drained: verdict silent', () => {
    const live = pinger({ heartbeatMs: 10_000 });
    live.activate(0);
    live.tick(10_000);
    live.onBacklog(10_500);
    live.onFlush(11_000, 0);
    expect(live.tick(13_000)).toEqual(RECHECK);
    expect(live.tick(13_000)).toEqual(dead('silent', 0));
  });

  it('watcher: stall rule applies too', () => {
    const live = watcher();
    live.activate(0);
    live.onBacklog(0);
    for (let t = 1_000; t < STALL; t += 1_000) {
      live.onInbound(t);
      expect(live.tick(t)).toEqual(NONE);
    }
    live.onInbound(STALL);
    expect(live.tick(STALL)).toEqual(RECHECK);
    expect(live.tick(STALL)).toEqual(dead('stalled', 0));
  });
});

describe('Liveness: peer closed its sending side', () => {
  it('pinger: the silent rule is off but PINGs are still sent', () => {
    const live = pinger({ stallMs: 0 });
    live.activate(0);
    expect(live.tick(1_000)).toEqual(ping(1));
    live.onPeerWriteClosed();
    const actions: LivenessAction[] = [];
    for (let t = 2_000; t <= 200_000; t += 1_000) actions.push(live.tick(t));
    expect(actions.filter((a) => a.type === 'recheck' || a.type === 'dead')).toEqual([]);
    expect(actions.filter((a) => a.type === 'ping')).toHaveLength(199);
    expect(actions[0]).toEqual(ping(2));
    expect(live.state).toBe('active');
  });

  it('pinger: onPeerWriteClosed while suspect forgives the overdue PING', () => {
    const live = pinger({ heartbeatMs: 10_000 });
    live.activate(0);
    live.tick(10_000);
    expect(live.tick(13_000)).toEqual(RECHECK);
    live.onPeerWriteClosed();
    expect(live.tick(13_000)).toEqual(NONE);
    expect(live.state).toBe('active');
  });

  it('pinger: the stall rule still applies', () => {
    const live = pinger();
    live.activate(0);
    live.onPeerWriteClosed();
    live.tick(1_000);
    live.onBacklog(1_500);
    const log = runUntil(live, 1e9);
    expect(log.at(-2)).toEqual({ at: 1_500 + STALL, action: RECHECK });
    expect(log.at(-1)).toEqual({ at: 1_500 + STALL, action: dead('stalled', 0) });
  });

  // BUG (reported): liveness.ts silentDeadline() ignores peerWriteClosed for the
  // watcher role (heartbeatMs 0): `lastInboundAt + silentMs` still applies, so a
  // client whose server half-closed on purpose is declared 'silent' after silentMs,
  // contrary to onPeerWriteClosed's doc ("the silent rule stops").
  it('watcher: the silent rule is off after the peer closed its sending side', () => {
    const live = watcher({ stallMs: 0 });
    live.activate(0);
    live.onPeerWriteClosed();
    expect(live.tick(SILENT)).toEqual(NONE);
    expect(live.tick(SILENT * 10)).toEqual(NONE);
    expect(live.nextDeadline()).toBe(Infinity);
  });

  it('watcher: the stall rule still applies after the peer closed its sending side', () => {
    const live = watcher({ silentMs: 1e9 });
    live.activate(0);
    live.onPeerWriteClosed();
    live.onBacklog(10);
    expect(live.tick(10 + STALL)).toEqual(RECHECK);
    expect(live.tick(10 + STALL)).toEqual(dead('stalled', 0));
  });
});

describe('Liveness: any inbound byte is a sign of life (slow links)', () => {
  it('pinger: bytes that keep coming hold off the verdict however long the PONG takes; once they stop, silent silentMs later', () => {
    const live = pinger();
    live.activate(0);
    // A 30 s upload: its bytes arrive every 250 ms, the PONGs wait behind it.
    for (let t = 250; t <= 30_000; t += 250) {
      live.onInbound(t);
      const log = runUntil(live, t + 249);
      expect(log.every((e) => e.action.type === 'ping')).toBe(true);
    }
    expect(live.state).toBe('active');
    const log = runUntil(live, 60_000);
    expect(log.at(-1)).toEqual({ at: 33_000, action: dead('silent', 0) });
  });

  it('pinger: a PING sent after the last byte is overdue silentMs after it went out (a frozen peer is caught within heartbeatMs + silentMs)', () => {
    const live = pinger();
    live.activate(0);
    live.onInbound(500);
    const log = runUntil(live, 60_000);
    // PING 1 at 1000 is the first sent after the last byte: silent at 1000 + 3000.
    expect(log.at(-1)).toEqual({ at: 4_000, action: dead('silent', 0) });
  });

  it('pinger: the PONG that finally arrives clears every PING it answers', () => {
    const live = pinger();
    live.activate(0);
    for (let t = 1_000; t <= 5_000; t += 1_000) {
      live.onInbound(t - 1);
      live.tick(t);
    }
    expect(live.onPong(5, 5_100)).toBe(true);
    // Nothing pending: no silent deadline until PING 6 goes out.
    expect(live.nextDeadline()).toBe(6_000);
    expect(live.tick(6_000)).toEqual(ping(6));
    expect(live.nextDeadline()).toBe(7_000);
    const log = runUntil(live, 60_000);
    expect(log.at(-1)).toEqual({ at: 9_000, action: dead('silent', 0) });
  });

  it('watcher: with quietPingMs it asks for a PING once it has sent nothing for that long', () => {
    const live = watcher({ silentMs: 4_000, quietPingMs: 1_500 });
    live.activate(0);
    expect(live.nextDeadline()).toBe(1_500);
    live.onOutbound(1_000);
    expect(live.tick(1_500)).toEqual(NONE);
    expect(live.nextDeadline()).toBe(2_500);
    expect(live.tick(2_500)).toEqual(ping(1));
    expect(live.tick(2_500)).toEqual(NONE);
    expect(live.nextDeadline()).toBe(4_000);
    live.onInbound(3_900);
    expect(live.tick(4_000)).toEqual(ping(2));
    // Its own PINGs do not feed its silent rule: only inbound bytes do.
    const log = runUntil(live, 20_000);
    expect(log.at(-1)).toEqual({ at: 7_900, action: dead('silent', 0) });
    expect(log.filter((e) => e.action.type === 'ping').map((e) => e.at)).toEqual([5_500, 7_000]);
  });

  it('quietPingMs: nothing while idle, and a pinger ignores it', () => {
    const idle = watcher({ quietPingMs: 100 });
    expect(idle.nextDeadline()).toBe(Infinity);
    expect(idle.tick(10_000)).toEqual(NONE);
    const live = pinger({ quietPingMs: 100 });
    live.activate(0);
    expect(live.nextDeadline()).toBe(HEARTBEAT);
  });
});

describe('Liveness: a write in progress that moves', () => {
  it('onWriteProgress restarts the stall clock while a backlog waits', () => {
    const live = pinger({ silentMs: 1e9 });
    live.activate(0);
    live.onBacklog(100);
    live.onWriteProgress(4_000);
    live.onWriteProgress(8_000);
    const log = runUntil(live, 60_000).filter((e) => e.action.type !== 'ping');
    expect(log).toEqual([
      { at: 13_000, action: RECHECK },
      { at: 13_000, action: dead('stalled', 0) },
    ]);
  });

  it('onWriteProgress with no backlog starts no stall clock', () => {
    const live = watcher();
    live.activate(0);
    live.onWriteProgress(100);
    expect(live.nextDeadline()).toBe(SILENT);
  });
});

describe('Liveness: every method is safe to repeat', () => {
  it('repeated ticks at the same instant after a ping are no-ops', () => {
    const live = pinger();
    live.activate(0);
    expect(live.tick(1_000)).toEqual(ping(1));
    for (let i = 0; i < 5; i++) expect(live.tick(1_000)).toEqual(NONE);
    expect(live.nextDeadline()).toBe(2_000);
  });

  it('repeated onFlush/onBacklog/onInbound keep the machine consistent', () => {
    const live = watcher();
    live.activate(0);
    for (let i = 0; i < 3; i++) {
      live.onBacklog(100);
      live.onFlush(200, 5);
      live.onInbound(300);
    }
    expect(live.nextDeadline()).toBe(Math.min(300 + SILENT, 200 + STALL));
  });
});
