import { availableParallelism } from 'node:os';
import type { TlsOptions } from 'node:tls';
import {
  checkIntegerOption,
  checkKnownOptions,
  checkObjectOption,
  InvalidOptionError,
  MIN_MAX_FRAME_BYTES,
  resolveCodecLimits,
  withDefaults,
  type CodecLimits,
} from '@heartwire/core';
import type { Authenticate } from './connection/auth.js';

/** Options of {@link createServer}. Every field is optional; see {@link DEFAULT_SERVER_OPTIONS}. */
export interface ServerOptions {
  /** Interval between heartbeats (PING frames) while a connection has calls in flight, in ms. Defaults to 1000. */
  readonly heartbeatMs?: number;
  /** Shortest heartbeat interval a client may ask for in its HELLO, in ms. Defaults to 100. */
  readonly minHeartbeatMs?: number;
  /** How long a heartbeat may stay unanswered before the client is declared silent, in ms. Defaults to 3000. */
  readonly silentMs?: number;
  /** How long bytes we wrote may make no progress into a client's receive window before it is declared stalled, in ms (0: off). Defaults to 5000. */
  readonly stallMs?: number;
  /** Largest frame payload accepted from a client, in bytes. Defaults to 4 MiB. */
  readonly maxFrameBytes?: number;
  /** Most calls one connection may have in flight; a call beyond it is refused alone (`HW_ERR_TOO_MANY_CALLS`). Defaults to 100. */
  readonly maxCallsPerConnection?: number;
  /** Longest method name, in bytes of UTF-8 (as on the wire; `é` is 2). Defaults to 256. */
  readonly maxMethodLength?: number;
  /** How long a new connection has to complete its HELLO, in ms. Defaults to 10000. */
  readonly handshakeTimeoutMs?: number;
  /**
   * Most open connections, those in their handshake included (with TLS, from
   * the end of the TLS handshake); one more is sent GOAWAY
   * `HW_ERR_TOO_MANY_CONNECTIONS` and closed. Defaults to 1000.
   */
  readonly maxConnections?: number;
  /**
   * Most open connections from one remote address (as the socket reports it:
   * each IPv6 address counts alone, and an IPv4 client of a dual-stack
   * listener appears as `::ffff:a.b.c.d`); one more is sent GOAWAY
   * `HW_ERR_TOO_MANY_CONNECTIONS` and closed, as for `maxConnections`.
   * Defaults to 100.
   */
  readonly maxConnectionsPerAddress?: number;
  /**
   * How long a connection may stay open with no call in flight after its
   * handshake, in ms (0: no limit); then it is sent GOAWAY
   * `HW_ERR_IDLE_TIMEOUT` and closed. Defaults to 60000.
   */
  readonly idleTimeoutMs?: number;
  /**
   * Most bytes of CALL payloads (method and params, as on the wire) the
   * server holds at once, across all connections: a call is charged from its
   * frame header, before its payload is read, until it ends. A call that
   * does not fit is refused with ERROR `HW_ERR_OVER_BUDGET`, its payload
   * skipped unread. Defaults to 256 MiB.
   */
  readonly maxParamsBytes?: number;
  /**
   * The share of `maxParamsBytes` one connection may hold; its first 64 KiB
   * always fit, whatever the others hold.
   * Defaults to 32 MiB, or `maxParamsBytes` if that is smaller.
   */
  readonly maxParamsBytesPerConnection?: number;
  /**
   * Calls in a row (none taken in between) one connection may have refused
   * with `HW_ERR_OVER_BUDGET`; one more and it is sent GOAWAY
   * `HW_ERR_OVER_BUDGET` and closed. Defaults to 100.
   */
  readonly maxOverBudgetCalls?: number;
  /**
   * Most bytes written to one client that its socket still holds (not yet
   * taken by the kernel) when the next frame is to be written; beyond it the
   * client is declared stalled (`HW_ERR_PEER_STALLED`) and the connection
   * reset. Defaults to 4 MiB.
   */
  readonly maxWriteBacklogBytes?: number;
  /** MessagePack decode limits for params. Defaults to {@link DEFAULT_CODEC_LIMITS}. */
  readonly codec?: Partial<CodecLimits>;
  /** Worker threads running `worker()` jobs. Defaults to the number of CPUs (`os.availableParallelism()`). */
  readonly threadPoolSize?: number;
  /** Jobs that may wait for a worker thread; one more fails at once with `HW_ERR_QUEUE_FULL`. Defaults to 1000. */
  readonly threadQueueLimit?: number;
  /** Child processes running `worker(…, { isolation: 'process' })` jobs. Defaults to the number of CPUs. */
  readonly processPoolSize?: number;
  /** Jobs that may wait for a child process; one more fails at once with `HW_ERR_QUEUE_FULL`. Defaults to 1000. */
  readonly processQueueLimit?: number;
  /** V8 heap limit (old generation) of each worker thread and child process, in MiB (0: Node's default). Defaults to 0. */
  readonly jobHeapMb?: number;
  /**
   * How long a `worker()` job whose call stopped may run on, in ms: one that
   * returns or throws within it (it checks `ctx.aborted`) keeps its thread or
   * process for the next job; one still running after it has its thread
   * terminated or its process killed (0: at once). Defaults to 5.
   */
  readonly jobAbortGraceMs?: number;
  /** A main-thread handler that blocks the event loop this long draws a warning, once per method, in ms (0: off). Defaults to 200. */
  readonly loopBlockWarnMs?: number;
  /**
   * Serve over TLS, with these `tls.createServer` options (`key`, `cert`, and
   * for mutual TLS `ca` and `requestCert: true`). A client certificate that
   * fails verification is turned away with GOAWAY `HW_ERR_UNAUTHENTICATED`
   * naming the reason, unless `rejectUnauthorized` is false. The TLS
   * handshake counts against `handshakeTimeoutMs`. Defaults to none: plain TCP.
   */
  readonly tls?: TlsOptions;
  /** Authentication hook run on each HELLO; see {@link Authenticate}. Defaults to none: every client is let in. */
  readonly authenticate?: Authenticate;
}

/** Options after defaults were applied and every value was checked. */
export interface ResolvedServerOptions extends Required<Omit<ServerOptions, 'codec' | 'tls' | 'authenticate'>> {
  readonly codec: CodecLimits;
  readonly tls: TlsOptions | undefined;
  readonly authenticate: Authenticate | undefined;
}

/** The defaults, and why. */
export const DEFAULT_SERVER_OPTIONS: Readonly<Omit<ResolvedServerOptions, 'codec' | 'tls' | 'authenticate'>> = Object.freeze({
  // Long jobs run for seconds to minutes: one 14-byte frame a second per busy connection is
  // cheap, and well inside every proxy idle timer (nginx 10 min, AWS ALB 60 s, Heroku 55 s).
  heartbeatMs: 1000,
  // Below 100 ms heartbeats cost more than they detect on a loaded server.
  minHeartbeatMs: 100,
  // Three intervals: rides out a TCP retransmission (initial RTO 1 s) and a client GC pause,
  // and still stops a job within heartbeatMs + silentMs = 4 s of the client going silent.
  silentMs: 3000,
  // A reader that takes no byte for 5 s is not keeping up; longer than silentMs, since the
  // silent rule already catches a stalled reader that cannot answer heartbeats.
  stallMs: 5000,
  // gRPC's default message limit: large enough for real payloads, small enough to buffer.
  maxFrameBytes: 4 * 1024 * 1024,
  // HTTP/2's recommended minimum for concurrent streams.
  maxCallsPerConnection: 100,
  maxMethodLength: 256,
  // Generous for slow links, short enough that idle sockets cannot pile up.
  handshakeTimeoutMs: 10_000,
  // Jobs are CPU-bound: one thread per CPU keeps every core busy; more threads only share them.
  threadPoolSize: availableParallelism(),
  // Bounded, so overload fails fast (the client can go elsewhere) instead of queueing for hours;
  // ten connections' worth of maxCallsPerConnection.
  threadQueueLimit: 1000,
  // As threadPoolSize: one CPU-bound process per CPU.
  processPoolSize: availableParallelism(),
  // As threadQueueLimit.
  processQueueLimit: 1000,
  // Node's own limit (about 2-4 GiB): set one to keep a runaway job from taking the machine's memory.
  jobHeapMb: 0,
  // A job that checks ctx.aborted every millisecond or more often has returned within 1-2 ms; a job
  // that never checks burns at most this much more before it is stopped from outside.
  jobAbortGraceMs: 5,
  // A slice of 200 ms is far longer than a cooperative handler needs (a few ms), yet short next to
  // the 1 s heartbeat: long enough to ignore a GC pause, short enough to flag a handler that never yields.
  loopBlockWarnMs: 200,
  // Below the usual 1024 open-file soft limit, so a flood is refused with a clear GOAWAY instead of
  // accept() failing with EMFILE; CPU-heavy jobs saturate the cores long before 1000 clients.
  maxConnections: 1000,
  // A tenth of maxConnections: one host (or one NAT) can hold at most a tenth of the server, so
  // idle or hostile connections from a single address cannot keep everyone else out, while an
  // office behind one NAT still fits 100 clients.
  maxConnectionsPerAddress: 100,
  // As long as the shortest common load-balancer idle timer (AWS ALB 60 s): a client between
  // calls keeps its connection for a minute, a forgotten one frees its slot.
  idleTimeoutMs: 60_000,
  // 64 full-size frames: well above what real traffic holds at once, yet a fraction of a small
  // (1 GiB) machine, where 1000 connections × 100 calls × 4 MiB were unbounded before.
  maxParamsBytes: 256 * 1024 * 1024,
  // Eight full-size frames, an eighth of maxParamsBytes: one connection cannot take it all.
  maxParamsBytesPerConnection: 32 * 1024 * 1024,
  // A whole window of maxCallsPerConnection refused may be one burst; more than that in a row is
  // a client that does not back off.
  maxOverBudgetCalls: 100,
  // One default-size frame: a client that far behind is not keeping up, and 1000 of them stay within 4 GiB.
  maxWriteBacklogBytes: 4 * 1024 * 1024,
});

/** Every option name createServer() knows; the type keeps it in step with {@link ServerOptions}. */
const KNOWN_OPTIONS = Object.keys({
  ...(Object.fromEntries(Object.keys(DEFAULT_SERVER_OPTIONS).map((key) => [key, true])) as Record<
    keyof typeof DEFAULT_SERVER_OPTIONS,
    true
  >),
  codec: true,
  tls: true,
  authenticate: true,
} satisfies Record<keyof ServerOptions, true>);

/** Applies defaults and validates; throws {@link InvalidOptionError} naming the option. */
export function resolveServerOptions(options: ServerOptions = {}): ResolvedServerOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('server options must be an object');
  }
  checkKnownOptions(options, KNOWN_OPTIONS);
  const o = withDefaults<Record<string, unknown>>(DEFAULT_SERVER_OPTIONS, options as Record<string, unknown>);
  const heartbeatMs = checkIntegerOption('heartbeatMs', o.heartbeatMs, 1);
  const minHeartbeatMs = checkIntegerOption('minHeartbeatMs', o.minHeartbeatMs, 1, heartbeatMs);
  const maxParamsBytes = checkIntegerOption('maxParamsBytes', o.maxParamsBytes, 1);
  return Object.freeze({
    heartbeatMs,
    minHeartbeatMs,
    silentMs: checkIntegerOption('silentMs', o.silentMs, 1),
    stallMs: checkIntegerOption('stallMs', o.stallMs, 0),
    maxFrameBytes: checkIntegerOption('maxFrameBytes', o.maxFrameBytes, MIN_MAX_FRAME_BYTES, 0xffff_ffff),
    maxCallsPerConnection: checkIntegerOption('maxCallsPerConnection', o.maxCallsPerConnection, 1),
    maxMethodLength: checkIntegerOption('maxMethodLength', o.maxMethodLength, 1),
    handshakeTimeoutMs: checkIntegerOption('handshakeTimeoutMs', o.handshakeTimeoutMs, 1),
    threadPoolSize: checkIntegerOption('threadPoolSize', o.threadPoolSize, 1),
    threadQueueLimit: checkIntegerOption('threadQueueLimit', o.threadQueueLimit, 1),
    processPoolSize: checkIntegerOption('processPoolSize', o.processPoolSize, 1),
    processQueueLimit: checkIntegerOption('processQueueLimit', o.processQueueLimit, 1),
    jobHeapMb: checkIntegerOption('jobHeapMb', o.jobHeapMb, 0),
    // A minute: past that a grace is no longer a grace, and a timer of more than 2^31 ms would fire at once.
    jobAbortGraceMs: checkIntegerOption('jobAbortGraceMs', o.jobAbortGraceMs, 0, 60_000),
    loopBlockWarnMs: checkIntegerOption('loopBlockWarnMs', o.loopBlockWarnMs, 0),
    maxConnections: checkIntegerOption('maxConnections', o.maxConnections, 1),
    maxConnectionsPerAddress: checkIntegerOption('maxConnectionsPerAddress', o.maxConnectionsPerAddress, 1),
    idleTimeoutMs: checkIntegerOption('idleTimeoutMs', o.idleTimeoutMs, 0),
    maxParamsBytes,
    maxParamsBytesPerConnection: checkIntegerOption(
      'maxParamsBytesPerConnection',
      // Set alone, a smaller total brings the default share down with it.
      options.maxParamsBytesPerConnection === undefined ? Math.min(maxParamsBytes, DEFAULT_SERVER_OPTIONS.maxParamsBytesPerConnection) : o.maxParamsBytesPerConnection,
      1,
      maxParamsBytes,
    ),
    maxOverBudgetCalls: checkIntegerOption('maxOverBudgetCalls', o.maxOverBudgetCalls, 0),
    maxWriteBacklogBytes: checkIntegerOption('maxWriteBacklogBytes', o.maxWriteBacklogBytes, 1),
    codec: resolveCodecLimits(options.codec, 'codec'),
    tls: checkObjectOption('tls', options.tls),
    authenticate: checkFunctionOption('authenticate', options.authenticate),
  });
}

function checkFunctionOption<T>(name: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidOptionError(`option ${name} must be a function`);
  }
  return value;
}
