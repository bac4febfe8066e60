import type { SchedulerTimer } from '@heartwire/core';
import { serverScheduler } from './scheduler.js';

/**
 * A connection's idle deadline (`idleTimeoutMs`): armed while no call is in
 * flight, on the server's shared timer wheel. When it passes, the input
 * already waiting is read first (a CALL may sit unread behind a busy event
 * loop), and the connection is called idle only if it is still idle then.
 */
export class IdleTimer {
  private readonly timer: SchedulerTimer;
  private armed = false;
  private dueAt = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly onIdle: () => void,
  ) {
    this.timer = serverScheduler.timer(this.onDue);
  }

  /** No call in flight from now: the deadline starts. */
  idle(): void {
    this.armed = true;
    this.dueAt = serverScheduler.now() + this.timeoutMs;
    this.timer.arm(this.dueAt);
  }

  /** A call is in flight, or the connection closed: no deadline. */
  busy(): void {
    if (!this.armed) return;
    this.armed = false;
    this.timer.cancel();
  }

  private readonly onDue = (): void => {
    if (!this.armed) return;
    serverScheduler.afterInput(this.onChecked);
  };

  private readonly onChecked = (): void => {
    // A call that was waiting unread made it busy; one that came and went moved the deadline on.
    if (this.armed && serverScheduler.now() >= this.dueAt) {
      this.armed = false;
      this.onIdle();
    }
  };
}
