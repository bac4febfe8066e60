/**
 * Every code heartwire defines, in one place: each list is the runtime
 * source of its type, so a check such as "is this a connection code?" can
 * never drift from the union it narrows to. PROTOCOL.md §7 says what each means.
 */

/** The peer is gone, as the side that lost it sees it: why a server stopped a job. */
export const PEER_GONE_CODES = [
  'HW_ERR_PEER_CLOSED',
  'HW_ERR_PEER_RESET',
  'HW_ERR_WRITE_FAILED',
  'HW_ERR_PEER_SILENT',
  'HW_ERR_PEER_STALLED',
] as const;

/** The peer broke the protocol: the connection ends with a GOAWAY carrying the code. */
export const PROTOCOL_VIOLATION_CODES = ['HW_ERR_PROTOCOL', 'HW_ERR_FRAME_TOO_LARGE', 'HW_ERR_UNSUPPORTED_VERSION'] as const;

/** The peer kept the rules but was refused, or went past a limit: the connection ends with a GOAWAY carrying the code. */
export const REFUSAL_CODES = [
  'HW_ERR_HANDSHAKE_TIMEOUT',
  'HW_ERR_TOO_MANY_CONNECTIONS',
  'HW_ERR_UNAUTHENTICATED',
  'HW_ERR_IDLE_TIMEOUT',
  'HW_ERR_OVER_BUDGET',
] as const;

/** A job run off the main thread (a worker thread, a child process, a fleet worker) did not finish. */
export const JOB_FAILURE_CODES = [
  'HW_ERR_WORKER_CRASHED',
  'HW_ERR_WORKER_OUT_OF_MEMORY',
  'HW_ERR_QUEUE_FULL',
  'HW_ERR_JOB_LOST',
  // A fleet worker of @heartwire/queue stopped the job: the front server that owns it stopped renewing its lease.
  'HW_ERR_LEASE_EXPIRED',
] as const;

/** A payload that could not be decoded, encoded, or sent within the peer's frame limit. */
export const PAYLOAD_CODES = ['HW_ERR_BAD_PAYLOAD', 'HW_ERR_ENCODE', 'HW_ERR_PAYLOAD_TOO_LARGE'] as const;

/** Codes of an ERROR frame that the server itself decides for one call (payload and job codes aside). */
export const SERVER_CALL_CODES = [
  'HW_ERR_UNKNOWN_METHOD',
  'HW_ERR_HANDLER',
  'HW_ERR_CANCELLED',
  'HW_ERR_SERVER_SHUTDOWN',
  // The call never reached a handler: safe to send again, elsewhere.
  'HW_ERR_SERVER_CLOSING',
  'HW_ERR_OVER_BUDGET',
  'HW_ERR_TOO_MANY_CALLS',
] as const;

/** Why a client connection is no longer usable, other than a GOAWAY's code. */
export const CLIENT_CONNECTION_CODES = [
  'HW_ERR_SERVER_SILENT',
  'HW_ERR_SERVER_STALLED',
  'HW_ERR_SERVER_SHUTDOWN',
  'HW_ERR_SERVER_CLOSING',
  'HW_ERR_CONNECTION_LOST',
  'HW_ERR_CLIENT_CLOSED',
  'HW_ERR_CONNECT_TIMEOUT',
  'HW_ERR_TLS',
] as const;

export type PeerGoneCode = (typeof PEER_GONE_CODES)[number];
export type ProtocolErrorCode = (typeof PROTOCOL_VIOLATION_CODES)[number];
export type RefusalCode = (typeof REFUSAL_CODES)[number];
export type JobErrorCode = (typeof JOB_FAILURE_CODES)[number];
export type PayloadErrorCode = (typeof PAYLOAD_CODES)[number];

/** Codes a GOAWAY carries: a violation, a refusal, or the server shutting down. */
export type GoAwayCode = ProtocolErrorCode | RefusalCode | 'HW_ERR_SERVER_SHUTDOWN';
export const GOAWAY_CODES: readonly GoAwayCode[] = [...PROTOCOL_VIOLATION_CODES, ...REFUSAL_CODES, 'HW_ERR_SERVER_SHUTDOWN'];

/**
 * Why a server stopped a job, or a connection was declared dead. A
 * connection that ends for a violation or a refusal aborts its jobs with
 * that code, so observers and jobs see the same code as the peer's GOAWAY.
 */
export type AbortCode = PeerGoneCode | GoAwayCode | 'HW_ERR_CANCELLED' | 'HW_ERR_LEASE_EXPIRED';

/** Codes a server sends in an ERROR frame for one call. */
export type CallErrorCode = (typeof SERVER_CALL_CODES)[number] | PayloadErrorCode | JobErrorCode;

/** Why a client connection is no longer usable: its own verdicts, or the code of the server's GOAWAY. */
export type ConnectionErrorCode = (typeof CLIENT_CONNECTION_CODES)[number] | GoAwayCode;
export const CONNECTION_ERROR_CODES: readonly ConnectionErrorCode[] = [...CLIENT_CONNECTION_CODES, ...GOAWAY_CODES];

/** Codes only the client raises locally. */
export type ClientErrorCode = ConnectionErrorCode | 'HW_ERR_ABORTED';

export type ErrorCode = AbortCode | CallErrorCode | ClientErrorCode | 'HW_ERR_INVALID_OPTION';

/**
 * Codes a handler may end a call with, besides its own application codes
 * (any code not starting with `HW_ERR_`): its job failed, or its value could
 * not be sent. Every other `HW_ERR_` code means something to the client the
 * handler cannot promise (`HW_ERR_SERVER_CLOSING`: "never ran, retry"), so
 * it is sent as `HW_ERR_HANDLER` instead (PROTOCOL.md §7).
 */
export const HANDLER_CODES: readonly string[] = ['HW_ERR_HANDLER', ...PAYLOAD_CODES, ...JOB_FAILURE_CODES];

const connectionCodes: ReadonlySet<string> = new Set(CONNECTION_ERROR_CODES);
const goAwayCodes: ReadonlySet<string> = new Set(GOAWAY_CODES);

/** Whether a code (a peer's, so any string) is one a client connection can end with. */
export function isConnectionErrorCode(code: string): code is ConnectionErrorCode {
  return connectionCodes.has(code);
}

/** Whether a code (a peer's, so any string) is one a GOAWAY may carry. */
export function isGoAwayCode(code: string): code is GoAwayCode {
  return goAwayCodes.has(code);
}
