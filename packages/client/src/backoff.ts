import { checkIntegerOption, checkKnownOptions, checkObjectOption, InvalidOptionError, withDefaults } from '@heartwire/core';

/** When a reconnecting client tries again after failed connection attempts. */
export interface BackoffOptions {
  /** Wait before the second attempt, in ms; the first after a loss goes at once. Defaults to 100. */
  readonly initialDelayMs?: number;
  /** Longest wait between attempts, in ms. Defaults to 10000. */
  readonly maxDelayMs?: number;
  /** Each failed attempt multiplies the wait by this. Defaults to 2. */
  readonly multiplier?: number;
  /** Each wait is drawn at random from [(1 − jitter) × wait, wait]. Defaults to 0.5. */
  readonly jitter?: number;
}

export type ResolvedBackoffOptions = Required<BackoffOptions>;

/** The defaults, and why. */
export const DEFAULT_BACKOFF_OPTIONS: ResolvedBackoffOptions = Object.freeze({
  // A restarting server or a moved one is often back within a fraction of a second.
  initialDelayMs: 100,
  // A server down for long is still found within 10 s of coming back, at one attempt per 10 s.
  maxDelayMs: 10_000,
  // Doubling reaches the cap in 7 attempts (100 ms → 12.8 s).
  multiplier: 2,
  // Clients that lost the same server spread their attempts over half the interval instead of arriving together.
  jitter: 0.5,
});

/** Applies defaults and validates; throws `InvalidOptionError` naming the option. */
export function resolveBackoffOptions(options: BackoffOptions | undefined): ResolvedBackoffOptions {
  checkObjectOption('backoff', options);
  checkKnownOptions(options ?? {}, Object.keys(DEFAULT_BACKOFF_OPTIONS), 'backoff.');
  const o = withDefaults<ResolvedBackoffOptions>(DEFAULT_BACKOFF_OPTIONS, options ?? {});
  const initialDelayMs = checkIntegerOption('backoff.initialDelayMs', o.initialDelayMs, 0);
  const maxDelayMs = checkIntegerOption('backoff.maxDelayMs', o.maxDelayMs, initialDelayMs);
  if (typeof o.multiplier !== 'number' || !(o.multiplier >= 1) || !Number.isFinite(o.multiplier)) {
    throw new InvalidOptionError(`option backoff.multiplier must be a finite number >= 1, got ${String(o.multiplier)}`);
  }
  if (typeof o.jitter !== 'number' || !(o.jitter >= 0 && o.jitter <= 1)) {
    throw new InvalidOptionError(`option backoff.jitter must be a number from 0 to 1, got ${String(o.jitter)}`);
  }
  return Object.freeze({ initialDelayMs, maxDelayMs, multiplier: o.multiplier, jitter: o.jitter });
}

/**
 * The wait before the next attempt after `failures` failed attempts in a
 * row: none after none, then initialDelayMs × multiplier^(failures − 1),
 * capped at maxDelayMs, less a random share of up to `jitter`.
 */
export function backoffDelay(failures: number, options: ResolvedBackoffOptions, random: () => number = Math.random): number {
  if (failures <= 0) return 0;
  const wait = Math.min(options.maxDelayMs, options.initialDelayMs * options.multiplier ** (failures - 1));
  return Math.round(wait * (1 - options.jitter * random()));
}
