import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { AbortReason, type AbortCode, type HeartwireError } from '@heartwire/core';
import { channels, publishRedisError, type FleetJobStopMessage } from './diagnostics.js';
import type { CancelMessage, FleetKeys } from './keys.js';

/**
 * Cancel requests kept for jobs this worker does not run (yet): at most this
 * many, the oldest dropped first. A request can come in just before the job
 * it names reaches this worker's processor (the front server's removal of a
 * waiting job lost the race with this worker); a job that starts finds its
 * request here and stops at once. Every worker hears every request, so this
 * bounds their memory (about 100 B each).
 */
const HEARD_LIMIT = 1000;

/** A job running here; it is the listener on BullMQ's own signal for the job, so nothing else is made per job. */
class RunningJob {
  readonly controller = new AbortController();

  constructor(
    readonly method: string,
    readonly ownerKey: string,
    readonly verdictKey: string,
    readonly leaseMs: number,
    readonly also: AbortSignal | undefined,
  ) {}

  handleEvent(): void {
    this.controller.abort((this.also as AbortSignal).reason);
  }
}

/**
 * The jobs a fleet worker runs now, and the ways the front server's verdict
 * reaches them: a cancel request on the queue's pub/sub channel stops a job
 * at once (or as it starts, if the request came first); the periodic check
 * (every `leaseCheckMs`) stops one whose verdict key is set, or whose owner
 * lease is gone, which also covers a request this worker missed. A worker
 * that cannot reach Redis for a job's `leaseMs` cannot tell whether its owner
 * lives, and stops it too.
 */
export class RunningJobs {
  private readonly jobs = new Map<string, RunningJob>();
  /** Cancel requests heard for jobs not running here, oldest first (see HEARD_LIMIT). */
  private readonly heard = new Map<string, AbortReason>();
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
      if (request === undefined) return;
      if (this.jobs.has(request.jobId)) {
        this.stop(request.jobId, cancelled(request));
        return;
      }
      this.heard.set(request.jobId, cancelled(request));
      if (this.heard.size > HEARD_LIMIT) this.heard.delete(this.heard.keys().next().value as string);
    });
  }

  /** Resolves once cancel requests are heard. */
  async start(): Promise<void> {
    await this.subscriber.subscribe(this.keys.cancel);
    this.timer = setInterval(() => void this.check(), this.leaseCheckMs).unref();
  }

  /**
   * Registers a job of the owner lease `owner`; its signal aborts when the job must stop, or when `also`
   * aborts. A cancel request heard before it started stops it at once.
   */
  add(jobId: string, method: string, owner: string, leaseMs: number, also: AbortSignal | undefined): AbortSignal {
    const job = new RunningJob(method, this.keys.owner(owner), this.keys.verdict(jobId), leaseMs, also);
    this.jobs.set(jobId, job);
    // A listener rather than AbortSignal.any(), whose combined signals Node 20 is slow to collect.
    if (also !== undefined) {
      if (also.aborted) job.controller.abort(also.reason);
      else also.addEventListener('abort', job, { once: true });
    }
    const request = this.heard.get(jobId);
    if (request !== undefined) {
      this.heard.delete(jobId);
      this.stop(jobId, request);
    }
    return job.controller.signal;
  }

  /** Forgets the job whose signal `add` returned (not a later run of the same job id on this worker). */
  delete(jobId: string, signal: AbortSignal): void {
    const job = this.jobs.get(jobId);
    if (job?.controller.signal !== signal) return;
    this.jobs.delete(jobId);
    job.also?.removeEventListener('abort', job);
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
