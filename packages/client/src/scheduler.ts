import { performance } from 'node:perf_hooks';
import type { Scheduler, SchedulerTimer } from '@heartwire/core';

const now = (): number => performance.now();

/** One Node timer, re-armed by clearing it and setting a new one: a client has a single liveness timer. */
class NodeTimer implements SchedulerTimer {
  private handle: NodeJS.Timeout | undefined;

  constructor(private readonly callback: () => void) {}

  arm(at: number): void {
    clearTimeout(this.handle);
    this.handle = setTimeout(this.callback, Math.max(0, Math.ceil(at - now())));
  }

  cancel(): void {
    clearTimeout(this.handle);
  }
}

/** Node's clock and timers for the liveness rules; `setImmediate` runs after the poll phase has read waiting input. */
export const nodeScheduler: Scheduler = { now, timer: (callback) => new NodeTimer(callback), afterInput: setImmediate };
