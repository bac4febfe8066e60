import { QueueEvents, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { publishRedisError } from './diagnostics.js';
import { DEFAULT_PREFIX, fleetKeys, type FleetKeys } from './keys.js';
import { ownConnection } from './redis.js';

/** What a front server's call wants to hear about its job. */
export interface JobWatcher {
  progress(data: unknown): void;
  completed(value: unknown): void;
  failed(reason: string | undefined): void;
}

/**
 * A front server's link to one BullMQ queue, shared by every handler on it:
 * one command connection (leases, cancel requests) and one `QueueEvents`
 * reader that routes each job's progress and outcome to the call waiting for
 * it. Counted: the last handler to close it closes the connections.
 */
export class FrontLink {
  readonly redis: Redis;
  readonly keys: FleetKeys;
  /** Resolves once events of jobs added from now on are read. */
  readonly ready: Promise<void>;
  /** True once `ready` rejected: the link is dropped, and its handler takes a new one. */
  failed = false;
  private readonly watchers = new Map<string, JobWatcher>();
  private events: QueueEvents | undefined;
  private users = 0;

  private constructor(readonly queue: Queue) {
    this.redis = ownConnection(queue.opts.connection, 'queue.opts.connection');
    this.redis.on('error', (err: Error) => publishRedisError(queue.name, 'front', err));
    this.keys = fleetKeys(queue.opts.prefix ?? DEFAULT_PREFIX, queue.name);
    this.ready = this.start();
    // A link that could not start (Redis unreachable past ioredis's retries) is not reused: the next call
    // makes a new one. A caller that never makes a call still must not see an unhandled rejection.
    this.ready.catch(() => {
      this.failed = true;
      if (FrontLink.links.get(queue) === this) FrontLink.links.delete(queue);
    });
  }

  private static readonly links = new WeakMap<Queue, FrontLink>();

  /** The queue's link, made on first use; each `acquire` needs one `release`. */
  static acquire(queue: Queue): FrontLink {
    let link = FrontLink.links.get(queue);
    if (link === undefined) {
      link = new FrontLink(queue);
      FrontLink.links.set(queue, link);
    }
    link.users++;
    return link;
  }

  /** Routes the events of `jobId` to `watcher` until the returned function is called. */
  watch(jobId: string, watcher: JobWatcher): () => void {
    this.watchers.set(jobId, watcher);
    return () => this.watchers.delete(jobId);
  }

  async release(): Promise<void> {
    if (--this.users > 0) return;
    if (FrontLink.links.get(this.queue) === this) FrontLink.links.delete(this.queue);
    await this.ready.catch(() => {});
    await this.events?.close();
    this.redis.disconnect();
  }

  private async start(): Promise<void> {
    const queue = this.queue;
    // Read from the stream's current end, taken before any job of ours exists, so no event of ours is missed
    // between this reader's start and its first XREAD (QueueEvents' own default, '$', could miss them).
    const last = await this.redis.xrevrange(queue.keys.events as string, '+', '-', 'COUNT', 1);
    const lastEventId = last[0]?.[0] ?? '0-0';
    const events = new QueueEvents(queue.name, {
      connection: queue.opts.connection,
      ...(queue.opts.prefix === undefined ? {} : { prefix: queue.opts.prefix }),
      lastEventId,
    });
    this.events = events;
    events.on('error', (err: Error) => publishRedisError(queue.name, 'front', err));
    events.on('progress', ({ jobId, data }) => this.watchers.get(jobId)?.progress(data));
    events.on('completed', ({ jobId, returnvalue }) => this.watchers.get(jobId)?.completed(returnvalue));
    events.on('failed', ({ jobId, failedReason }) => this.watchers.get(jobId)?.failed(failedReason));
    await events.waitUntilReady();
  }
}
