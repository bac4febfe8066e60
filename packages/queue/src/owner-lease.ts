import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { FleetKeys } from './keys.js';

/** A call's hold on its handler's owner lease. */
export interface LeaseHold {
  /** Resolves once the lease is in Redis, so a job added after it finds its owner alive. */
  readonly taken: Promise<void>;
  /** Ends the hold; the last one out deletes the lease. Safe to repeat. */
  release(): void;
}

/**
 * One owner lease for all the calls of an `enqueue` handler, not one per job:
 * a call adds nothing to Redis beyond BullMQ's own job. The first call takes
 * the key for `leaseMs`; while calls hold it, one PEXPIRE every `leaseMs / 3`
 * keeps it, so two refreshes in a row may be slow or lost before it lapses;
 * the last call out deletes it. A lease found gone when refreshed means Redis
 * lost it (restarted without its data), and the jobs with it: the calls then
 * holding it are told at once, and a new lease, under a new id, is taken for
 * later ones (the old one stays gone, so fleet workers stop the old jobs).
 * The timer runs only while calls hold the lease, and never keeps the
 * process alive.
 */
export class OwnerLease {
  /** Goes into each job's data (`FleetJobData.owner`), so fleet workers know which lease to watch. */
  id = randomUUID();
  private key: string;
  private readonly holders = new Set<{ readonly onLost: () => void }>();
  private taken: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: FleetKeys,
    private readonly leaseMs: number,
  ) {
    this.key = keys.owner(this.id);
  }

  /** Holds the lease for one call; `onLost` runs if Redis loses it meanwhile. */
  hold(onLost: () => void): LeaseHold {
    const holder = { onLost };
    this.holders.add(holder);
    const taken = (this.taken ??= this.take());
    this.timer ??= setInterval(() => void this.refresh(), Math.max(1, Math.floor(this.leaseMs / 3))).unref();
    return {
      taken,
      release: () => {
        if (!this.holders.delete(holder) || this.holders.size > 0) return;
        clearInterval(this.timer);
        this.timer = undefined;
        this.taken = undefined;
        // On the same connection as the next SET: Redis sees them in order.
        this.redis.del(this.key).catch(() => {});
      },
    };
  }

  private take(): Promise<void> {
    const taken = this.redis.set(this.key, '1', 'PX', this.leaseMs).then(() => undefined);
    // A SET that failed (Redis unreachable) is not kept: the next call tries again.
    taken.catch(() => {
      if (this.taken === taken) this.taken = undefined;
    });
    return taken;
  }

  private async refresh(): Promise<void> {
    // One refresh at a time: a slow Redis must not pile them up.
    if (this.refreshing || this.holders.size === 0) return;
    this.refreshing = true;
    const holders = [...this.holders];
    try {
      if ((await this.redis.pexpire(this.key, this.leaseMs)) === 0) {
        for (const holder of holders) holder.onLost();
        this.id = randomUUID();
        this.key = this.keys.owner(this.id);
        this.taken = this.holders.size > 0 ? this.take() : undefined;
      }
    } catch {
      // Redis unreachable: the lease runs on its TTL; the next tick tries again.
    } finally {
      this.refreshing = false;
    }
  }
}
