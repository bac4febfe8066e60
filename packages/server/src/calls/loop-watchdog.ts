import { channels } from '../diagnostics.js';
import type { Handler } from './handler.js';
import { wheelScheduler } from '@heartwire/endpoint';

const now = wheelScheduler.now;

/** Code of the warning a main-thread handler that blocks the event loop draws, once per method. */
export const LOOP_BLOCKED_WARNING = 'HW_WARN_LOOP_BLOCKED';

/**
 * Notices main-thread handlers that block the event loop. While any runs, a
 * timer ticks every `thresholdMs / 4`; a tick late by `thresholdMs` or more
 * means the loop was blocked that long, and every method running during that
 * time is named (a concurrent one cannot be told from the one that blocked): on `heartwire:server:loop:blocked` each time, and
 * in one process warning per method telling the user to move it into a
 * worker. Blocked, the server cannot send heartbeats nor read a FIN; its
 * verdicts stay honest anyway (late timers read input before judging), but
 * detection waits for the loop.
 */
export class LoopWatchdog {
  /** Main-thread calls in flight, by method. */
  private readonly running = new Map<string, number>();
  /** Methods that ran since the last tick. */
  private ran = new Set<string>();
  /** When each method's last call in flight ended. */
  private readonly endedAt = new Map<string, number>();
  private readonly warned = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private readonly intervalMs: number;

  constructor(private readonly thresholdMs: number) {
    this.intervalMs = Math.max(1, Math.floor(thresholdMs / 4));
  }

  /** `handler`, watched; unchanged when the watchdog is off (`thresholdMs` 0). */
  watch(method: string, handler: Handler): Handler {
    if (this.thresholdMs === 0) return handler;
    const leave = (): void => this.leave(method);
    return (params, ctx) => {
      this.enter(method);
      let outcome: unknown;
      try {
        outcome = handler(params, ctx);
      } catch (err) {
        leave();
        throw err;
      }
      if ((typeof outcome === 'object' && outcome !== null) || typeof outcome === 'function') {
        // Adopted once here, so a thenable's `then` runs once; the connection gets the promise.
        const settled = Promise.resolve(outcome);
        settled.then(leave, leave);
        return settled;
      }
      leave();
      return outcome;
    };
  }

  private enter(method: string): void {
    this.running.set(method, (this.running.get(method) ?? 0) + 1);
    this.ran.add(method);
    if (this.timer === undefined) {
      this.lastTick = now();
      this.schedule();
    }
  }

  private leave(method: string): void {
    const count = (this.running.get(method) ?? 1) - 1;
    if (count > 0) {
      this.running.set(method, count);
      return;
    }
    this.running.delete(method);
    this.endedAt.set(method, now());
  }

  private schedule(): void {
    this.timer = setTimeout(this.tick, this.intervalMs);
    this.timer.unref();
  }

  private readonly tick = (): void => {
    const at = now();
    // The loop could not run this timer from when it was due until now: a method that ended
    // before it was due was not running during the block.
    const dueAt = this.lastTick + this.intervalMs;
    const blockedMs = at - dueAt;
    if (blockedMs >= this.thresholdMs) {
      const methods = [...this.ran].filter((m) => this.running.has(m) || (this.endedAt.get(m) ?? dueAt) >= dueAt);
      this.report(methods, blockedMs, at);
    }
    this.lastTick = at;
    this.ran = new Set(this.running.keys());
    this.endedAt.clear();
    // One more tick after the last call ended catches a block at its very end.
    if (this.ran.size > 0) this.schedule();
    else this.timer = undefined;
  };

  private report(methods: string[], blockedMs: number, at: number): void {
    const rounded = Math.round(blockedMs);
    if (channels.loopBlocked.hasSubscribers) channels.loopBlocked.publish({ methods, blockedMs: rounded, at });
    for (const method of methods) {
      if (this.warned.has(method)) continue;
      this.warned.add(method);
      process.emitWarning(
        `the event loop was blocked for at least ${rounded} ms while the main-thread handler of "${method}" ran: ` +
          'no heartbeat went out and a client that left could not be noticed meanwhile. ' +
          `Move "${method}" into a worker (server.handle('${method}', worker(new URL('./${method}.js', import.meta.url)))), ` +
          'or await ctx.yield() between slices of a few milliseconds.',
        { type: 'HeartwireWarning', code: LOOP_BLOCKED_WARNING },
      );
    }
  }
}
