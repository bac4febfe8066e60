import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Waiter } from './waiter.js';

/** What test/fixtures/jobs.mjs announces when a 'spin' job starts in a worker thread. */
export interface JobBeacon {
  readonly tag: string;
  readonly threadId: number;
  /**
   * Shared with this thread. Cell 0 is bumped by the job's loop: it stops moving once the job's
   * thread stops. Cell 1 is the release switch: set, the loop returns ({@link JobBeacons.release}).
   */
  readonly counter: Int32Array;
  /** A 'coop-async' job's "<tag>:signal" beacon: its `ctx.signal.reason`'s code and class, and `ctx.aborted` then. */
  readonly code?: string;
  readonly isAbortReason?: boolean;
  readonly aborted?: boolean;
}

/** Listens to the announcements of jobs running in worker threads of this process. */
export class JobBeacons {
  readonly beacons: JobBeacon[] = [];
  private readonly channel = new BroadcastChannel('heartwire-test-jobs');
  private readonly waiter = new Waiter();

  constructor() {
    this.channel.onmessage = (event) => {
      this.beacons.push((event as { data: JobBeacon }).data);
      this.waiter.wake();
    };
  }

  dispose(): void {
    this.channel.close();
  }

  started(tag: string, timeoutMs = 20_000): Promise<JobBeacon> {
    return this.waiter.until(() => this.beacons.find((b) => b.tag === tag), `start of job "${tag}"`, timeoutMs);
  }

  /** Makes the job's loop return now, so the test, not a clock in the job, decides how long it runs. */
  release(beacon: JobBeacon): void {
    Atomics.store(beacon.counter, 1, 1);
  }

  /**
   * Resolves with `performance.now()` once the job's counter has not moved for
   * `quietMs` (its thread stopped); rejects if it still moves after `timeoutMs`.
   */
  async stopped(beacon: JobBeacon, quietMs = 100, timeoutMs = 5000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    let last = Atomics.load(beacon.counter, 0);
    let lastMovedAt = performance.now();
    while (performance.now() < deadline) {
      await sleep(5);
      const value = Atomics.load(beacon.counter, 0);
      if (value !== last) {
        last = value;
        lastMovedAt = performance.now();
      } else if (performance.now() - lastMovedAt >= quietMs) {
        return lastMovedAt;
      }
    }
    throw new Error(`job "${beacon.tag}" still runs ${timeoutMs} ms later`);
  }
}
