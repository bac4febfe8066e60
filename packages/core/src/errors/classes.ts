/**
 * One error family for the whole protocol. Every error heartwire creates is a
 * {@link HeartwireError} with a stable `code`; each subclass fixes which codes
 * it carries, and abort reasons are these errors too, so
 * `signal.reason.code` says why a job was stopped.
 */
import type {
  AbortCode,
  ConnectionErrorCode,
  ErrorCode,
  JobErrorCode,
  PayloadErrorCode,
  ProtocolErrorCode,
  RefusalCode,
} from './codes.js';

/** Marks an instance with the brand of its class and of every class above it, up to HeartwireError. */
function brand(error: HeartwireError, leaf: Function): void {
  for (let c: Function | null = leaf; c !== null && c !== Error; c = Object.getPrototypeOf(c) as Function | null) {
    if (Object.hasOwn(c, 'brand')) Object.defineProperty(error, (c as unknown as { brand: symbol }).brand, { value: true });
  }
}

/**
 * Base class of every heartwire error. `instanceof` holds for it and every
 * subclass across duplicate copies of the package: each class owns a
 * registered symbol (`Symbol.for`) that its instances carry, as undici does.
 * Throw one from a handler with an application code (any code not starting
 * with `HW_ERR_`) to send that code to the client.
 */
export class HeartwireError extends Error {
  /** The registered symbol instances of this class carry. */
  static readonly brand: symbol = Symbol.for('heartwire.HeartwireError');

  /** Stable, machine-readable reason. Remote errors carry the peer's code, which may be one this version does not know. */
  readonly code: ErrorCode | (string & {});

  constructor(code: ErrorCode | (string & {}), message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    brand(this, new.target);
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // A subclass without a brand of its own (a user's) is checked by its prototype chain, as usual.
    if (!Object.hasOwn(this, 'brand')) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[this.brand] === true;
  }
}

/** The reason a server job's `AbortSignal` fired, or the reason a connection died. */
export class AbortReason extends HeartwireError {
  static override readonly brand: symbol = Symbol.for('heartwire.AbortReason');
  declare readonly code: AbortCode;
  constructor(code: AbortCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The peer broke the protocol; the connection is closed with a GOAWAY carrying the code. */
export class ProtocolError extends HeartwireError {
  static override readonly brand: symbol = Symbol.for('heartwire.ProtocolError');
  declare readonly code: ProtocolErrorCode;
  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The peer kept the rules but was refused, or went past a limit; the connection is closed with a GOAWAY carrying the code. */
export class RefusalError extends HeartwireError {
  static override readonly brand: symbol = Symbol.for('heartwire.RefusalError');
  declare readonly code: RefusalCode;
  constructor(code: RefusalCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A payload could not be decoded or encoded, or is over the peer's frame limit. */
export class PayloadError extends HeartwireError {
  static override readonly brand: symbol = Symbol.for('heartwire.PayloadError');
  declare readonly code: PayloadErrorCode;
  constructor(code: PayloadErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A job run in a worker thread, a child process or on a fleet did not finish: its runner died, or it was never run. */
export class JobError extends HeartwireError {
  static override readonly brand: symbol = Symbol.for('heartwire.JobError');
  declare readonly code: JobErrorCode;
  constructor(code: JobErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The server answered a call with an ERROR frame; `code` is the server's. */
export class RemoteError extends HeartwireError {
  static override readonly brand: symbol = Symbol.for('heartwire.RemoteError');
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** A client call failed because its connection failed, or could not be made. */
export class ConnectionError extends HeartwireError {
  static override readonly brand: symbol = Symbol.for('heartwire.ConnectionError');
  declare readonly code: ConnectionErrorCode;
  constructor(code: ConnectionErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The caller aborted a call, or a connect, through its `signal`; `cause` is the signal's reason. */
export class AbortedError extends HeartwireError {
  static override readonly brand: symbol = Symbol.for('heartwire.AbortedError');
  declare readonly code: 'HW_ERR_ABORTED';
  constructor(message: string, reason: unknown) {
    super('HW_ERR_ABORTED', message, { cause: reason });
  }
}

/** An option was missing, of the wrong type or out of range. */
export class InvalidOptionError extends HeartwireError {
  static override readonly brand: symbol = Symbol.for('heartwire.InvalidOptionError');
  declare readonly code: 'HW_ERR_INVALID_OPTION';
  constructor(message: string) {
    super('HW_ERR_INVALID_OPTION', message);
  }
}

// Names on the prototypes, spelled out: a minifier may rename the classes.
for (const [errorClass, name] of [
  [HeartwireError, 'HeartwireError'],
  [AbortReason, 'AbortReason'],
  [ProtocolError, 'ProtocolError'],
  [RefusalError, 'RefusalError'],
  [PayloadError, 'PayloadError'],
  [JobError, 'JobError'],
  [RemoteError, 'RemoteError'],
  [ConnectionError, 'ConnectionError'],
  [AbortedError, 'AbortedError'],
  [InvalidOptionError, 'InvalidOptionError'],
] as const) {
  Object.defineProperty(errorClass.prototype, 'name', { value: name, writable: true, configurable: true });
}
