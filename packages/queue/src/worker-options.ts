import { availableParallelism } from 'node:os';
import type { ConnectionOptions } from 'bullmq';
import { checkIntegerOption, checkKnownOptions, checkObjectOption, InvalidOptionError, withDefaults } from '@heartwire/core';
import type { JobModule, StandalonePoolsOptions } from '@heartwire/server';

/** Options of {@link runWorker}. `queue`, `connection` and `jobs` are required; see {@link DEFAULT_WORKER_OPTIONS} for the rest. */
export interface RunWorkerOptions {
  /** The BullMQ queue's name, as the front servers' `Queue` has it. */
  readonly queue: string;
  /**
   * Redis: ioredis options or an ioredis instance, as BullMQ takes them. An
   * instance stays the caller's: heartwire duplicates it for its own
   * connections and closes only those, BullMQ uses it as given, and neither
   * closes it; close it after `close()`.
   */
  readonly connection: ConnectionOptions;
  /** Each method's job module, made by `worker(url)` or `worker(url, { isolation: 'process' })`; the same module a local server would run. */
  readonly jobs: Readonly<Record<string, JobModule>>;
  /** BullMQ's key prefix, as the front servers' `Queue` has it. Defaults to `'bull'`. */
  readonly prefix?: string;
  /** Jobs this fleet worker runs at once. Defaults to the number of CPUs. */
  readonly concurrency?: number;
  /** How often the owner leases and verdicts of the jobs running here are checked, in ms. Defaults to 100. */
  readonly leaseCheckMs?: number;
  /** BullMQ's `lockDuration`, in ms: a job whose fleet worker died is noticed (stalled) after about this long. Defaults to 5000. */
  readonly lockMs?: number;
  /** BullMQ's `stalledInterval`, in ms: how often fleet workers look for stalled jobs. Defaults to 2500. */
  readonly stalledCheckMs?: number;
  /** The thread and process pools' options, as a server takes them (`threadPoolSize`, `processPoolSize`, …). */
  readonly pools?: StandalonePoolsOptions;
}

export interface ResolvedWorkerOptions {
  readonly queue: string;
  readonly connection: ConnectionOptions;
  readonly jobs: Readonly<Record<string, JobModule>>;
  readonly prefix: string;
  readonly concurrency: number;
  readonly leaseCheckMs: number;
  readonly lockMs: number;
  readonly stalledCheckMs: number;
  readonly pools: StandalonePoolsOptions;
}

export const DEFAULT_WORKER_OPTIONS = Object.freeze({
  // BullMQ's own default prefix, so a plain BullMQ Queue works unchanged.
  prefix: 'bull',
  // One CPU-bound job per CPU, as the server's threadPoolSize; more would only wait in the pool.
  concurrency: availableParallelism(),
  // One pipelined round trip per check: ten a second is cheap, and adds at most 100 ms to the lease bound.
  leaseCheckMs: 100,
  // BullMQ's 30 s default guards a processor that blocks the event loop; jobs here run off it, so the
  // lock is always renewed in time, and a dead fleet worker's job is noticed six times sooner.
  lockMs: 5000,
  // Half of lockMs, as BullMQ pairs its own defaults (30 s lock, 30 s interval, but a lock renewed every 15 s).
  stalledCheckMs: 2500,
  // The server's pool defaults.
  pools: Object.freeze({}) as StandalonePoolsOptions,
});

const KNOWN_OPTIONS = Object.keys({
  queue: true,
  connection: true,
  jobs: true,
  prefix: true,
  concurrency: true,
  leaseCheckMs: true,
  lockMs: true,
  stalledCheckMs: true,
  pools: true,
} satisfies Record<keyof RunWorkerOptions, true>);

/** Applies defaults and validates; throws `InvalidOptionError` naming the option. */
export function resolveWorkerOptions(options: RunWorkerOptions): ResolvedWorkerOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('runWorker options must be an object');
  checkKnownOptions(options, KNOWN_OPTIONS);
  const o = withDefaults<Record<string, unknown>>(DEFAULT_WORKER_OPTIONS, options as unknown as Record<string, unknown>);
  if (typeof o.queue !== 'string' || o.queue === '') throw new InvalidOptionError(`option queue must be a non-empty string, got ${String(o.queue)}`);
  if (typeof o.prefix !== 'string' || o.prefix === '') throw new InvalidOptionError(`option prefix must be a non-empty string, got ${String(o.prefix)}`);
  if (checkObjectOption('connection', o.connection) === undefined) throw new InvalidOptionError('option connection is required');
  const jobs = checkObjectOption('jobs', o.jobs as Record<string, JobModule> | undefined);
  if (jobs === undefined || Object.keys(jobs).length === 0) throw new InvalidOptionError('option jobs must name at least one method');
  const lockMs = checkIntegerOption('lockMs', o.lockMs, 100);
  return Object.freeze({
    queue: o.queue,
    connection: o.connection as ConnectionOptions,
    jobs,
    prefix: o.prefix,
    concurrency: checkIntegerOption('concurrency', o.concurrency, 1),
    leaseCheckMs: checkIntegerOption('leaseCheckMs', o.leaseCheckMs, 1),
    lockMs,
    stalledCheckMs: checkIntegerOption('stalledCheckMs', o.stalledCheckMs, 10),
    pools: checkObjectOption('pools', o.pools as StandalonePoolsOptions) ?? {},
  });
}
