import { performance } from 'node:perf_hooks';
import type { Scheduler } from '@heartwire/core';

/** Node's clock and timers for the liveness rules; `setImmediate` runs after the poll phase has read waiting input. */
export const nodeScheduler: Scheduler<NodeJS.Timeout> = { now: () => performance.now(), setTimeout, clearTimeout, afterInput: setImmediate };
