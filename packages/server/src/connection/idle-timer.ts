import { wheelScheduler, type SchedulerTimer } from '@heartwire/endpoint';

/**
 * A connection's idle deadline (`idleTimeoutMs`) on the server's shared
 * timer wheel. It starts again whenever the connection's last call ends; a
 * call starting does not cancel it (that would cost a wheel operation per
 * call): the connection ignores a deadline that passes while calls are in
 * flight. When it passes, the input already waiting is read first (a CALL
 * may sit unread behind a busy event loop) before the connection is told.
 */
export class IdleTimer {
  private readonly timer: SchedulerTimer;
  private armed = false;
  private dueAt = 0;

  constructor(
    private readonly timeoutMs: number,
    /** Told when the deadline passed (an object, not a closure: a connection holds no more than it must). */
    private readonly owner: { onIdleTimeout(): void },
  ) {
    this.timer = wheelScheduler.timer(this.onDue);
  }

  /** No call in flight from now: the deadline starts. */
  restart(): void {
    this.armed = true;
    this.dueAt = wheelScheduler.now() + this.timeoutMs;
    this.timer.arm(this.dueAt);
  }

  /** The connection closed. */
  stop(): void {
    if (!this.armed) return;
    this.armed = false;
    this.timer.cancel();
  }

  private readonly onDue = (): void => {
    if (this.armed) wheelScheduler.afterInput(this.onChecked);
  };

  private readonly onChecked = (): void => {
    // Stopped meanwhile, or a call that came and went moved the deadline on.
    if (this.armed && wheelScheduler.now() >= this.dueAt) {
      this.armed = false;
      this.owner.onIdleTimeout();
    }
  };
}
