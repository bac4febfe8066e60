import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { AbortReason, type AbortCode, type HeartwireError } from '@heartwire/core';
import { channels, publishRedisError, type FleetJobStopMessage } from './diagnostics.js';
import type { CancelMessage, FleetKeys } from './keys.js';

interface RunningJob {
  readonly method: string;
  readonly ownerKey: string;
  readonly verdictKey: string;
  readonly leaseMs: number;
  readonly controller: AbortController;
}

/**
 * The jobs a fleet worker runs now, and the ways the front server's verdict
 * reaches them: a cancel request on the queue's pub/sub channel stops a job
 * at once; the periodic check (every `leaseCheckMs`) stops one whose verdict
 * key is set, or whose owner lease is gone. A worker that cannot reach Redis
 * for a job's `leaseMs` cannot tell whether its owner lives, and stops it too.
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

  /** Registers a job of the owner lease `owner`; its signal aborts when the job must stop, or when `also` aborts. */
  add(jobId: string, method: string, owner: string, leaseMs: number, also: AbortSignal | undefined): AbortSignal {
    const controller = new AbortController();
    this.jobs.set(jobId, { method, ownerKey: this.keys.owner(owner), verdictKey: this.keys.verdict(jobId), leaseMs, controller });
    // A listener rather than AbortSignal.any(), whose combined signals Node 20 is slow to collect.
    if (also !== undefined) {
      if (also.aborted) controller.abort(also.reason);
      else also.addEventListener('abort', () => controller.abort(also.reason), { once: true, signal: controller.signal });
    }
    return controller.signal;
  }

  /** Forgets the job whose signal `add` returned (not a later run of the same job id on this worker). */
  delete(jobId: string, signal: AbortSignal): void {
    if (this.jobs.get(jobId)?.controller.signal === signal) this.jobs.delete(jobId);
  }

  /** Stops `jobId` if it runs here, with `reason`. */
  stop(jobId: string, reason: HeartwireError): void {
    const job = this.jobs.get(jobId);
    if (job === undefined || job.controller.signal.aborted) return;
    if (channels.jobStop.hasSubscribers) {
      channels.jobStop.publish({ queue: this.queue, jobId, method: job.method, code: reason.code, at: performance.now() } satisfies FleetJobStopMessage);
    }
    job.controller.abort(reason);
  }

  /** Looks at one job's owner lease and verdict now (as it starts), and stops it if they say so. */
  checkNow(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) return;
    this.redis.mget(job.ownerKey, job.verdictKey).then(
      ([owner, verdict]) => {
        const reason = jobVerdict(owner ?? null, verdict ?? null);
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
      // One round trip: each owner lease once (most jobs share a few), and every job's verdict key.
      const owners = [...new Set(entries.map(([, job]) => job.ownerKey))];
      const pipeline = this.redis.pipeline();
      for (const key of owners) pipeline.get(key);
      pipeline.mget(entries.map(([, job]) => job.verdictKey));
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err !== null);
      if (failed !== undefined) throw failed[0];
      const alive = new Map(owners.map((key, i) => [key, (results[i] as [null, string | null])[1]]));
      const verdicts = (results[owners.length] as [null, Array<string | null>])[1];
      entries.forEach(([jobId, job], i) => {
        const reason = jobVerdict(alive.get(job.ownerKey) ?? null, verdicts[i] ?? null);
        if (reason !== undefined) this.stop(jobId, reason);
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
 * Whether a job must stop: its call's verdict, written by the front server so that a worker that missed
 * the pub/sub message still stops the job with the verdict's own code; else its owner lease gone (the
 * front server stopped renewing it); else no reason.
 */
function jobVerdict(owner: string | null, verdict: string | null): AbortReason | undefined {
  const request = verdict === null ? undefined : parseCancel(verdict);
  if (request !== undefined) return cancelled(request);
  if (owner === null) return new AbortReason('HW_ERR_LEASE_EXPIRED', 'the front server that owns this job stopped renewing its lease');
  return undefined;
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
