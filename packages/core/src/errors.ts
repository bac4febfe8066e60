/**
 * One error family for the whole protocol. Every error heartwire creates is a
 * {@link HeartwireError} with a stable `code` string; abort reasons are these
 * errors too, so `signal.reason.code` says why a job was stopped.
 */

/** Why a server stopped a job, or a connection was declared dead. */
export type AbortCode =
  | 'HW_ERR_PEER_CLOSED'
  | 'HW_ERR_PEER_RESET'
  | 'HW_ERR_WRITE_FAILED'
  | 'HW_ERR_PEER_SILENT'
  | 'HW_ERR_PEER_STALLED'
  | 'HW_ERR_CANCELLED'
  | 'HW_ERR_SERVER_SHUTDOWN'
  | 'HW_ERR_PROTOCOL'
  // A fleet worker of @heartwire/queue stopped the job: the front server that owns it stopped renewing its lease.
  | 'HW_ERR_LEASE_EXPIRED';

/** Codes of a GOAWAY that closes a connection the peer misused (broke the protocol, or went past a limit). */
export type ProtocolErrorCode =
  | 'HW_ERR_PROTOCOL'
  | 'HW_ERR_FRAME_TOO_LARGE'
  | 'HW_ERR_UNSUPPORTED_VERSION'
  | 'HW_ERR_TOO_MANY_CALLS'
  | 'HW_ERR_HANDSHAKE_TIMEOUT'
  | 'HW_ERR_TOO_MANY_CONNECTIONS'
  | 'HW_ERR_UNAUTHENTICATED'
  | 'HW_ERR_IDLE_TIMEOUT'
  | 'HW_ERR_OVER_BUDGET';

/** Codes a server sends in an ERROR frame for one call. */
export type CallErrorCode =
  | 'HW_ERR_UNKNOWN_METHOD'
  | 'HW_ERR_BAD_PAYLOAD'
  | 'HW_ERR_HANDLER'
  | 'HW_ERR_ENCODE'
  | 'HW_ERR_PAYLOAD_TOO_LARGE'
  | 'HW_ERR_CANCELLED'
  | 'HW_ERR_SERVER_SHUTDOWN'
  | 'HW_ERR_SERVER_CLOSING'
  | 'HW_ERR_OVER_BUDGET'
  | JobErrorCode;

/** Codes a server sends when a job run off its main thread (worker thread or child process) failed to finish. */
export type JobErrorCode = 'HW_ERR_WORKER_CRASHED' | 'HW_ERR_WORKER_OUT_OF_MEMORY' | 'HW_ERR_QUEUE_FULL' | 'HW_ERR_JOB_LOST';

/** Codes only the client raises locally. */
export type ClientErrorCode = ConnectionErrorCode | 'HW_ERR_ABORTED';

/** Why a client connection is no longer usable. */
export type ConnectionErrorCode =
  | 'HW_ERR_SERVER_SILENT'
  | 'HW_ERR_SERVER_STALLED'
  | 'HW_ERR_SERVER_SHUTDOWN'
  | 'HW_ERR_SERVER_CLOSING'
  | 'HW_ERR_CONNECTION_LOST'
  | 'HW_ERR_CLIENT_CLOSED'
  | 'HW_ERR_CONNECT_TIMEOUT'
  | 'HW_ERR_TLS'
  | ProtocolErrorCode;

export type ErrorCode =
  | AbortCode
  | ProtocolErrorCode
  | CallErrorCode
  | ClientErrorCode
  | 'HW_ERR_INVALID_OPTION';

const kHeartwireError = Symbol.for('heartwire.error');

/**
 * Base class of every heartwire error. `instanceof HeartwireError` holds across
 * duplicate copies of the package (the brand is a registered symbol, as undici does).
 */
export class HeartwireError extends Error {
  /** Stable, machine-readable reason. Remote errors carry the peer's code, which may be one this version does not know. */
  readonly code: ErrorCode | (string & {});

  constructor(code: ErrorCode | (string & {}), message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'HeartwireError';
    Object.defineProperty(this, kHeartwireError, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === HeartwireError) {
      return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kHeartwireError] === true;
    }
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** The reason a server job's `AbortSignal` fired, or the reason a connection died. */
export class AbortReason extends HeartwireError {
  declare readonly code: AbortCode;
  constructor(code: AbortCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AbortReason';
  }
}

/** The peer broke the protocol; the connection is closed. */
export class ProtocolError extends HeartwireError {
  declare readonly code: ProtocolErrorCode;
  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ProtocolError';
  }
}

/** A payload could not be decoded, or a value could not be encoded. */
export class PayloadError extends HeartwireError {
  declare readonly code: 'HW_ERR_BAD_PAYLOAD' | 'HW_ERR_ENCODE';
  constructor(code: 'HW_ERR_BAD_PAYLOAD' | 'HW_ERR_ENCODE', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'PayloadError';
  }
}

/** The server answered a call with an ERROR frame; `code` is the server's. */
export class RemoteError extends HeartwireError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'RemoteError';
  }
}

/** A client call failed because its connection failed, or could not be made. */
export class ConnectionError extends HeartwireError {
  declare readonly code: ConnectionErrorCode;
  constructor(code: ConnectionErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ConnectionError';
  }
}

/** The caller aborted a call, or a connect, through its `signal`; `cause` is the signal's reason. */
export class AbortedError extends HeartwireError {
  declare readonly code: 'HW_ERR_ABORTED';
  constructor(message: string, reason: unknown) {
    super('HW_ERR_ABORTED', message, { cause: reason });
    this.name = 'AbortedError';
  }
}

/** An option was missing, of the wrong type or out of range. */
export class InvalidOptionError extends HeartwireError {
  declare readonly code: 'HW_ERR_INVALID_OPTION';
  constructor(message: string) {
    super('HW_ERR_INVALID_OPTION', message);
    this.name = 'InvalidOptionError';
  }
}
