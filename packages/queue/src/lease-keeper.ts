import type { Redis } from 'ioredis';

/**
 * Keeps a front server's job leases alive: every `leaseMs / 3` one pipelined
 * PEXPIRE per lease, so two refreshes in a row may be slow or lost before a
 * lease lapses. A lease that is gone when refreshed means Redis lost the job
 * (restarted without its data): its call is told at once. The timer runs
 * only while leases exist, and never keeps the process alive.
 */
export class LeaseKeeper {
  private readonly leases = new Map<string, () => void>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;

  constructor(
    private readonly redis: Redis,
    private readonly leaseMs: number,
  ) {}

  /** Takes the lease `key` for `leaseMs` (it must not exist yet). */
  async take(key: string): Promise<void> {
    await this.redis.set(key, '1', 'PX', this.leaseMs);
  }

  /** Refreshes `key` until the returned function is called; `onLost` runs if the key disappeared meanwhile. */
  keep(key: string, onLost: () => void): () => void {
    this.leases.set(key, onLost);
    this.timer ??= setInterval(() => void this.refresh(), Math.max(1, Math.floor(this.leaseMs / 3))).unref();
    return () => {
      this.leases.delete(key);
      if (this.leases.size === 0 && this.timer !== undefined) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  private async refresh(): Promise<void> {
    // One refresh at a time: a slow Redis must not pile them up.
    if (this.refreshing || this.leases.size === 0) return;
    this.refreshing = true;
    try {
      const keys = [...this.leases.keys()];
      const pipeline = this.redis.pipeline();
      for (const key of keys) pipeline.pexpire(key, this.leaseMs);
      const results = (await pipeline.exec()) ?? [];
      results.forEach(([err, set], i) => {
        if (err === null && set === 0) this.leases.get(keys[i] as string)?.();
      });
    } catch {
      // Redis unreachable: the leases run on their TTL; the next tick tries again.
    } finally {
      this.refreshing = false;
    }
  }
}
