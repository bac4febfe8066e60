import { checkIntegerOption, checkKnownOptions, InvalidOptionError } from '@heartwire/core';
import type { AcceptedEvent } from '../wire.js';

/** Options of {@link call}. Every field is optional; see {@link DEFAULT_HTTP_CALL_OPTIONS}. */
export interface HttpCallOptions {
  /** Aborts the call: the request is closed, so the server aborts the job (`HW_ERR_PEER_CLOSED`), and `call` rejects with `HW_ERR_ABORTED`. */
  readonly signal?: AbortSignal;
  /** Runs when the server accepted the call (its early header and first event arrived). */
  readonly onAccepted?: (event: AcceptedEvent) => void;
  /** Runs for each progress report of the job. */
  readonly onProgress?: (data: unknown) => void;
  /** How long the response may bring no byte (filler included) before the server is declared silent: the fetch is aborted and `call` rejects with `HW_ERR_SERVER_SILENT`, in ms. Defaults to 5000. */
  readonly silentMs?: number;
  /** Extra request headers (authorization …). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The fetch to use. Defaults to the global `fetch`. */
  readonly fetch?: typeof fetch;
}

/** The defaults, and why. */
export const DEFAULT_HTTP_CALL_OPTIONS = Object.freeze({
  // Five of the bridge's default 1 s filler intervals: rides out a TCP retransmission
  // (initial RTO 1 s) and a server GC pause, and still gives up within seconds.
  silentMs: 5000,
});

const KNOWN_OPTIONS = ['signal', 'onAccepted', 'onProgress', 'silentMs', 'headers', 'fetch'];

/** @internal The options `call` runs with, checked; throws {@link InvalidOptionError} naming the option. */
export interface ResolvedHttpCallOptions {
  readonly signal: AbortSignal | undefined;
  readonly onAccepted: ((event: AcceptedEvent) => void) | undefined;
  readonly onProgress: ((data: unknown) => void) | undefined;
  readonly silentMs: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly fetch: typeof fetch;
}

/** @internal */
export function resolveHttpCallOptions(options: HttpCallOptions = {}): ResolvedHttpCallOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('call options must be an object');
  checkKnownOptions(options, KNOWN_OPTIONS);
  const fn = (name: string, value: unknown): void => {
    if (value !== undefined && typeof value !== 'function') throw new InvalidOptionError(`option ${name} must be a function`);
  };
  fn('onAccepted', options.onAccepted);
  fn('onProgress', options.onProgress);
  fn('fetch', options.fetch);
  if (options.signal !== undefined && (typeof options.signal !== 'object' || typeof options.signal.aborted !== 'boolean')) {
    throw new InvalidOptionError('option signal must be an AbortSignal');
  }
  if (options.headers !== undefined && (typeof options.headers !== 'object' || options.headers === null)) {
    throw new InvalidOptionError('option headers must be an object of header names to values');
  }
  const fetchFn = options.fetch ?? globalThis.fetch;
  if (typeof fetchFn !== 'function') throw new InvalidOptionError('option fetch is required where there is no global fetch');
  return {
    signal: options.signal,
    onAccepted: options.onAccepted,
    onProgress: options.onProgress,
    silentMs: checkIntegerOption('silentMs', options.silentMs ?? DEFAULT_HTTP_CALL_OPTIONS.silentMs, 1),
    headers: options.headers ?? {},
    fetch: fetchFn,
  };
}
