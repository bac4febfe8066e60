import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { AbortReason, type AbortCode } from '@heartwire/core';
import { channels, publishRedisError, type FleetJobStopMessage } from './diagnostics.js';
import type { CancelMessage, FleetKeys } from './keys.js';

interface RunningJob {
  readonly method: string;
  readonly leaseKey: string;
  readonly leaseMs: number;
  readonly controller: AbortController;
}

/**
 * The jobs a fleet worker runs now, and the two ways the front server's
 * verdict reaches them: a cancel request on the queue's pub/sub channel stops
 * a job at once; a lease found gone by the periodic check stops it within
 * `leaseCheckMs`. A worker that cannot reach Redis for a job's `leaseMs`
 * cannot tell whether its owner lives, and stops it too.
 */
export class RunningJobs {
  private readonly jobs = new Map<string, RunningJob>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private lastCheckedAt = performance.now();

  constructor(
    private readonly queue: string,
    private readonly keys: FleetKeys,
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly leaseCheckMs: number,
  ) {
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== keys.cancel) return;
      let request: CancelMessage;
      try {
        request = JSON.parse(text) as CancelMessage;
      } catch {
        return;
      }
      this.stop(request.jobId, new AbortReason(request.code as AbortCode, `stopped by its front server: ${request.message}`));
    });
  }

  /** Resolves once cancel requests are heard. */
  async start(): Promise<void> {
    await this.subscriber.subscribe(this.keys.cancel);
    this.timer = setInterval(() => void this.check(), this.leaseCheckMs).unref();
  }

  /** Registers a job; its signal aborts when the job must stop, or when `also` aborts. */
  add(jobId: string, method: string, leaseMs: number, also: AbortSignal | undefined): AbortSignal {
    const controller = new AbortController();
    this.jobs.set(jobId, { method, leaseKey: this.keys.lease(jobId), leaseMs, controller });
    // A listener rather than AbortSignal.any(), whose combined signals Node 20 is slow to collect.
    if (also !== undefined) {
      if (also.aborted) controller.abort(also.reason);
      else also.addEventListener('abort', () => controller.abort(also.reason), { once: true, signal: controller.signal });
    }
    return controller.signal;
  }

  delete(jobId: string): void {
    this.jobs.delete(jobId);
  }

  /** Stops `jobId` if it runs here, with `reason`. */
  stop(jobId: string, reason: AbortReason): void {
    const job = this.jobs.get(jobId);
    if (job === undefined || job.controller.signal.aborted) return;
    if (channels.jobStop.hasSubscribers) {
      channels.jobStop.publish({ queue: this.queue, jobId, method: job.method, code: reason.code, at: performance.now() } satisfies FleetJobStopMessage);
    }
    job.controller.abort(reason);
  }

  /** Stops the lease checks (the subscriber is closed by its owner). */
  close(): void {
    clearInterval(this.timer);
  }

  private async check(): Promise<void> {
    if (this.checking || this.jobs.size === 0) {
      this.lastCheckedAt = performance.now();
      return;
    }
    this.checking = true;
    const startedAt = performance.now();
    const entries = [...this.jobs];
    try {
      const pipeline = this.redis.pipeline();
      for (const [, job] of entries) pipeline.exists(job.leaseKey);
      const results = (await pipeline.exec()) ?? [];
      results.forEach(([err, exists], i) => {
        if (err !== null || exists !== 0) return;
        const [jobId] = entries[i] as [string, RunningJob];
        this.stop(jobId, new AbortReason('HW_ERR_LEASE_EXPIRED', 'the front server that owns this job stopped renewing its lease'));
      });
      this.lastCheckedAt = startedAt;
    } catch (err) {
      publishRedisError(this.queue, 'fleet', err as Error);
      const blindMs = performance.now() - this.lastCheckedAt;
      for (const [jobId, job] of entries) {
        if (blindMs < job.leaseMs) continue;
        this.stop(jobId, new AbortReason('HW_ERR_LEASE_EXPIRED', `Redis unreachable for ${Math.round(blindMs)} ms: the job's owner cannot be confirmed`));
      }
    } finally {
      this.checking = false;
    }
  }
}
