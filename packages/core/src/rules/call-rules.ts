import { ProtocolError, type CallErrorCode } from '../errors/index.js';
import type { ServerPhase } from './phases.js';

/** What a server does with a CALL (PROTOCOL.md §4): run it, refuse that call alone with an ERROR, or end the connection. */
export type CallRule =
  | { readonly kind: 'run' }
  | { readonly kind: 'refuse'; readonly code: CallErrorCode; readonly message: string }
  | { readonly kind: 'violation'; readonly error: ProtocolError };

const RUN: CallRule = Object.freeze({ kind: 'run' });

/**
 * The rules for a new call, in order: its id must be above every id used
 * before (a connection error); a draining server refuses it, and so does a
 * server with `maxCalls` calls in flight: that call only, never run, so the
 * client may send it again (to another server, or once a slot frees).
 */
export function callRule(phase: ServerPhase, id: number, lastId: number, inFlight: number, maxCalls: number): CallRule {
  if (id <= lastId) {
    return { kind: 'violation', error: new ProtocolError('HW_ERR_PROTOCOL', `call id ${id} is not above the last one (${lastId})`) };
  }
  if (phase === 'draining') {
    return { kind: 'refuse', code: 'HW_ERR_SERVER_CLOSING', message: 'the server is shutting down and takes no new call' };
  }
  if (inFlight >= maxCalls) {
    return { kind: 'refuse', code: 'HW_ERR_TOO_MANY_CALLS', message: `${maxCalls} calls are already in flight on this connection (WELCOME maxCalls)` };
  }
  return RUN;
}

/**
 * Whether a frame for call `id` that is not in flight is stale or a
 * violation: an id up to the last one used names a call that ended (its
 * frame crossed a CANCEL, or a result, on the wire) and is ignored; an id
 * never used is a violation.
 */
export function unknownCallViolation(id: number, lastId: number, type: string): ProtocolError | undefined {
  if (id <= lastId) return undefined;
  return new ProtocolError('HW_ERR_PROTOCOL', `${type} for call ${id}, an id never used`);
}
