import diagnostics from 'node:diagnostics_channel';
import type { PoolCrashMessage } from '@heartwire/server';
import { Waiter } from './waiter.js';

/**
 * What a server publishes on `heartwire:server:pool:crash` from now on, until
 * the cleanup it pushes onto `cleanups` runs.
 */
export function watchPoolCrashes(cleanups: Array<() => void>): {
  readonly crashes: PoolCrashMessage[];
  /** Resolves with the first crash, once there is one; rejects after `timeoutMs`. */
  first(timeoutMs: number): Promise<PoolCrashMessage>;
} {
  const crashes: PoolCrashMessage[] = [];
  const waiter = new Waiter();
  const onCrash = (message: unknown): void => {
    crashes.push(message as PoolCrashMessage);
    waiter.wake();
  };
  diagnostics.subscribe('heartwire:server:pool:crash', onCrash);
  cleanups.push(() => {
    diagnostics.unsubscribe('heartwire:server:pool:crash', onCrash);
  });
  return { crashes, first: (timeoutMs) => waiter.until(() => crashes[0], 'pool crash', timeoutMs) };
}
