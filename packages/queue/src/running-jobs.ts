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
      const request = parseCancel(text);
      if (request !== undefined) this.stop(request.jobId, cancelled(request));
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

  /** Looks at one job's lease now (as it starts), and stops it if the lease says so. */
  checkNow(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) return;
    this.redis.get(job.leaseKey).then(
      (lease) => {
        const reason = leaseVerdict(lease);
        if (reason !== undefined) this.stop(jobId, reason);
      },
      () => {},
    );
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
      for (const [, job] of entries) pipeline.get(job.leaseKey);
      const results = (await pipeline.exec()) ?? [];
      results.forEach(([err, lease], i) => {
        const reason = err === null ? leaseVerdict(lease as string | null) : undefined;
        if (reason !== undefined) this.stop((entries[i] as [string, RunningJob])[0], reason);
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

/**
 * What a job's lease says: alive (`'1'`, no reason), gone (its owner stopped renewing it), or the front
 * server's cancel request, which replaces the lease's value so that a worker that missed the pub/sub
 * message still stops the job with the verdict's own code.
 */
function leaseVerdict(lease: string | null): AbortReason | undefined {
  if (lease === null) return new AbortReason('HW_ERR_LEASE_EXPIRED', 'the front server that owns this job stopped renewing its lease');
  const request = lease.startsWith('{') ? parseCancel(lease) : undefined;
  return request === undefined ? undefined : cancelled(request);
}

function parseCancel(text: string): CancelMessage | undefined {
  try {
    const request = JSON.parse(text) as CancelMessage;
    return typeof request?.jobId === 'string' && typeof request.code === 'string' ? request : undefined;
  } catch {
    return undefined;
  }
}

function cancelled(request: CancelMessage): AbortReason {
  return new AbortReason(request.code as AbortCode, `stopped by its front server: ${request.message}`);
}
