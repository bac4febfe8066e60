import { checkIntegerOption, checkKnownOptions, InvalidOptionError, withDefaults } from '@heartwire/core';

/** Options of {@link enqueue}. Every field is optional; see {@link DEFAULT_ENQUEUE_OPTIONS}. */
export interface EnqueueOptions {
  /**
   * Time to live of the handler's owner lease (one for all its jobs), in ms;
   * the front server renews it every `leaseMs / 3` while calls live. A fleet
   * worker stops a job whose lease lapsed (the front server died, froze, or lost Redis) within
   * `leaseMs` + the worker's `leaseCheckMs`. Defaults to 3000.
   */
  readonly leaseMs?: number;
  /**
   * The call is safe to run twice: when the fleet worker running its job dies,
   * the job runs once more on another one instead of failing with
   * `HW_ERR_WORKER_CRASHED`. Defaults to false.
   */
  readonly idempotent?: boolean;
}

export type ResolvedEnqueueOptions = Required<EnqueueOptions>;

export const DEFAULT_ENQUEUE_OPTIONS: ResolvedEnqueueOptions = Object.freeze({
  // The same scale as a silent client (silentMs 3000): a dead front server's jobs stop as soon as a dead client's.
  leaseMs: 3000,
  // A job whose worker died may have half-done its side effects; running it again must be asked for.
  idempotent: false,
});

const KNOWN_OPTIONS = Object.keys({ leaseMs: true, idempotent: true } satisfies Record<keyof EnqueueOptions, true>);

/** Applies defaults and validates; throws `InvalidOptionError` naming the option. */
export function resolveEnqueueOptions(options: EnqueueOptions = {}): ResolvedEnqueueOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('enqueue options must be an object');
  checkKnownOptions(options, KNOWN_OPTIONS);
  const o = withDefaults<Record<string, unknown>>(DEFAULT_ENQUEUE_OPTIONS, options as Record<string, unknown>);
  if (typeof o.idempotent !== 'boolean') throw new InvalidOptionError(`option idempotent must be a boolean, got ${String(o.idempotent)}`);
  // At least 30 ms: a refresh every leaseMs / 3 needs a round trip to Redis to fit in it.
  return Object.freeze({ leaseMs: checkIntegerOption('leaseMs', o.leaseMs, 30), idempotent: o.idempotent });
}
