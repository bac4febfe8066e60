import type { ConnectionOptions } from 'node:tls';
import { checkIntegerOption, checkKnownOptions, checkObjectOption, InvalidOptionError, MIN_MAX_FRAME_BYTES, PayloadCodec, resolveCodecLimits, withDefaults, type CodecLimits } from '@heartwire/core';

/** Options of {@link connect}. Only `port` is required; see {@link DEFAULT_CLIENT_OPTIONS}. */
export interface ClientOptions {
  /** Server port. */
  readonly port: number;
  /** Server host. Defaults to `'localhost'`, as `net.connect`. */
  readonly host?: string;
  /** Heartbeat interval to ask the server for, in ms; the server clamps it to its own range. Defaults to the server's. */
  readonly heartbeatMs?: number;
  /**
   * How long the client waits for any frame while calls are in flight before it
   * declares the server silent, in ms. Defaults to the server's heartbeat
   * interval plus its silent bound, both announced in WELCOME.
   */
  readonly serverSilentMs?: number;
  /** How long our bytes may make no progress into the server's receive window before it is declared stalled, in ms (0: off). Defaults to 5000. */
  readonly stallMs?: number;
  /** Largest frame payload accepted from the server, in bytes. Defaults to 4 MiB. */
  readonly maxFrameBytes?: number;
  /**
   * Most bytes that may wait unsent for the server when a frame is to be
   * written: past it the server counts as stalled (`HW_ERR_SERVER_STALLED`)
   * and the connection is reset. A bound on memory; `stallMs` judges a slow
   * server. Defaults to 64 MiB.
   */
  readonly maxWriteBacklogBytes?: number;
  /** Time allowed for the TCP connect and the handshake, in ms. Defaults to 10000. */
  readonly connectTimeoutMs?: number;
  /** Aborts the connect. */
  readonly signal?: AbortSignal;
  /** MessagePack decode limits for results and progress. Defaults to {@link DEFAULT_CODEC_LIMITS}. */
  readonly codec?: Partial<CodecLimits>;
  /**
   * Connect over TLS, with these `tls.connect` options (`ca` to trust a
   * private CA, `cert` and `key` for mutual TLS). The server's certificate is
   * checked against `host` (or `servername`). A TLS failure rejects with
   * `HW_ERR_TLS`. Defaults to none: plain TCP.
   */
  readonly tls?: ConnectionOptions;
  /**
   * Credentials sent in HELLO for the server's authentication hook (a token, a
   * map…; any MessagePack value). A server that refuses them closes with
   * `HW_ERR_UNAUTHENTICATED`. Send them over TLS only. Defaults to none.
   */
  readonly auth?: unknown;
}

export interface ResolvedClientOptions {
  readonly port: number;
  readonly host: string;
  readonly heartbeatMs: number | undefined;
  readonly serverSilentMs: number | undefined;
  readonly stallMs: number;
  readonly maxFrameBytes: number;
  readonly maxWriteBacklogBytes: number;
  readonly connectTimeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly codec: CodecLimits;
  readonly tls: ConnectionOptions | undefined;
  readonly auth: unknown;
}

/** The defaults, and why. */
export const DEFAULT_CLIENT_OPTIONS = Object.freeze({
  host: 'localhost',
  // Same as the server's: a server that takes no byte for 5 s is not keeping up.
  stallMs: 5000,
  // Same as the server's default frame limit (gRPC's message default).
  maxFrameBytes: 4 * 1024 * 1024,
  // Sixteen calls of the largest params a server takes by default, in flight at once on a slow link: what the
  // caller queued is its own to bound, so this only stops memory growing without end behind a server that reads nothing.
  maxWriteBacklogBytes: 64 * 1024 * 1024,
  // Long enough for a slow link or a busy server, short enough to fail a dead address in time.
  connectTimeoutMs: 10_000,
});

/** Every option name connect() knows; the type keeps it in step with {@link ClientOptions}. */
const KNOWN_OPTIONS = Object.keys({
  port: true,
  host: true,
  heartbeatMs: true,
  serverSilentMs: true,
  stallMs: true,
  maxFrameBytes: true,
  maxWriteBacklogBytes: true,
  connectTimeoutMs: true,
  signal: true,
  codec: true,
  tls: true,
  auth: true,
} satisfies Record<keyof ClientOptions, true>);

/** Applies defaults and validates; throws {@link InvalidOptionError} naming the option. */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('client options must be an object with at least a port');
  }
  checkKnownOptions(options, KNOWN_OPTIONS);
  const o = withDefaults<Record<string, unknown>>(DEFAULT_CLIENT_OPTIONS, options as unknown as Record<string, unknown>);
  if (typeof o.host !== 'string' || o.host.length === 0) {
    throw new InvalidOptionError(`option host must be a non-empty string, got ${String(o.host)}`);
  }
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidOptionError('option signal must be an AbortSignal');
  }
  const codec = resolveCodecLimits(options.codec, 'codec');
  return Object.freeze({
    port: checkIntegerOption('port', o.port, 1, 65535),
    host: o.host,
    heartbeatMs: o.heartbeatMs === undefined ? undefined : checkIntegerOption('heartbeatMs', o.heartbeatMs, 1),
    serverSilentMs: o.serverSilentMs === undefined ? undefined : checkIntegerOption('serverSilentMs', o.serverSilentMs, 1),
    stallMs: checkIntegerOption('stallMs', o.stallMs, 0),
    maxFrameBytes: checkIntegerOption('maxFrameBytes', o.maxFrameBytes, MIN_MAX_FRAME_BYTES, 0xffff_ffff),
    maxWriteBacklogBytes: checkIntegerOption('maxWriteBacklogBytes', o.maxWriteBacklogBytes, 1),
    connectTimeoutMs: checkIntegerOption('connectTimeoutMs', o.connectTimeoutMs, 1),
    signal: signal as AbortSignal | undefined,
    codec,
    tls: checkObjectOption('tls', options.tls),
    auth: checkAuthOption(options.auth, codec),
  });
}

/** Fails now, naming the option, rather than at every connect. */
function checkAuthOption(auth: unknown, limits: CodecLimits): unknown {
  if (auth === undefined) return undefined;
  try {
    new PayloadCodec(limits).encode(auth);
  } catch (err) {
    throw new InvalidOptionError(`option auth cannot be sent in HELLO: ${(err as Error).message}`);
  }
  return auth;
}
