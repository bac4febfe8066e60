import { performance } from 'node:perf_hooks';

/** Epoch ms with sub-ms precision: the same clock in every process on this machine. */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves at shared time `at` (at once if it has passed). */
export function until(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - sharedNow())));
}
