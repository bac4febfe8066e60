import { checkIntegerOption, checkKnownOptions, InvalidOptionError, withDefaults } from '@heartwire/core';

/** Options of {@link HttpBridge}. Every field is optional; see {@link DEFAULT_HTTP_BRIDGE_OPTIONS}. */
export interface HttpBridgeOptions {
  /** Interval between filler lines on each response, and between HTTP/2 PINGs on each session with calls in flight, in ms. Defaults to 1000. */
  readonly heartbeatMs?: number;
  /** How long an HTTP/2 PING may stay unanswered before the client is declared silent (`HW_ERR_PEER_SILENT`), in ms. Defaults to 3000. */
  readonly silentMs?: number;
  /** How long a response may stay undrained (its bytes make no way into the client's receive window) before the client is declared stalled (`HW_ERR_PEER_STALLED`), in ms (0: off). Defaults to 5000. */
  readonly stallMs?: number;
  /** Most bytes a response may hold unsent when the next line is to be written; beyond it the client is declared stalled. Defaults to 4 MiB. */
  readonly maxWriteBacklogBytes?: number;
  /** Largest request body (the JSON params of a POST), in bytes; a larger one is answered 413 `HW_ERR_PAYLOAD_TOO_LARGE`. Defaults to 1 MiB. */
  readonly maxBodyBytes?: number;
}

/** Options after defaults were applied and every value was checked. */
export type ResolvedHttpBridgeOptions = Required<HttpBridgeOptions>;

/** The defaults, and why. */
export const DEFAULT_HTTP_BRIDGE_OPTIONS: ResolvedHttpBridgeOptions = Object.freeze({
  // One short line a second: far inside every proxy's idle timer (nginx 60 s, AWS 60 s,
  // Heroku 55 s rolling, Cloudflare 100 s) and the TCP server's own heartbeat interval.
  heartbeatMs: 1000,
  // As the TCP server: three intervals ride out a retransmission and a client GC pause.
  silentMs: 3000,
  // As the TCP server: a reader that takes no byte for 5 s is not keeping up.
  stallMs: 5000,
  // As the TCP server: one default-size frame of backlog per client.
  maxWriteBacklogBytes: 4 * 1024 * 1024,
  // Params are JSON arguments, not uploads: 1 MiB is generous and cheap to buffer.
  maxBodyBytes: 1024 * 1024,
});

const KNOWN_OPTIONS = Object.keys(DEFAULT_HTTP_BRIDGE_OPTIONS);

/** Applies defaults and validates; throws {@link InvalidOptionError} naming the option. */
export function resolveHttpBridgeOptions(options: HttpBridgeOptions = {}): ResolvedHttpBridgeOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('HTTP bridge options must be an object');
  }
  checkKnownOptions(options, KNOWN_OPTIONS);
  const o = withDefaults<Record<string, unknown>>(DEFAULT_HTTP_BRIDGE_OPTIONS, options as Record<string, unknown>);
  return Object.freeze({
    heartbeatMs: checkIntegerOption('heartbeatMs', o.heartbeatMs, 1),
    silentMs: checkIntegerOption('silentMs', o.silentMs, 1),
    stallMs: checkIntegerOption('stallMs', o.stallMs, 0),
    maxWriteBacklogBytes: checkIntegerOption('maxWriteBacklogBytes', o.maxWriteBacklogBytes, 1),
    maxBodyBytes: checkIntegerOption('maxBodyBytes', o.maxBodyBytes, 0),
  });
}
