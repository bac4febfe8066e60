import { ProtocolError } from '../errors/index.js';
import { FrameType, MAX_HANDSHAKE_FRAME_BYTES, PING_PAYLOAD_BYTES } from '../protocol.js';
import type { Phase, Role } from './phases.js';
import { streamViolation } from './stream-ids.js';

/**
 * What an end does with a frame, decided from its header alone (before its
 * payload is read): `accept` it, `ignore` it (skipped unread), `hold` it
 * until the handshake completes (frames a client sent after HELLO without
 * waiting for WELCOME), or end the connection for the `violation`.
 */
export type FrameRule =
  | { readonly kind: 'accept' }
  | { readonly kind: 'ignore' }
  | { readonly kind: 'hold' }
  | { readonly kind: 'violation'; readonly error: ProtocolError };

const ACCEPT: FrameRule = Object.freeze({ kind: 'accept' });
const IGNORE: FrameRule = Object.freeze({ kind: 'ignore' });
const HOLD: FrameRule = Object.freeze({ kind: 'hold' });

/** Frame types each end may receive (PROTOCOL.md §2). GOAWAY goes both ways: either end may close with a code. */
const RECEIVES: Record<Role, ReadonlySet<number>> = {
  server: new Set([FrameType.HELLO, FrameType.CALL, FrameType.CANCEL, FrameType.PING, FrameType.PONG, FrameType.GOAWAY, FrameType.HALF_CLOSE]),
  client: new Set([
    FrameType.WELCOME,
    FrameType.ACCEPTED,
    FrameType.PROGRESS,
    FrameType.RESULT,
    FrameType.ERROR,
    FrameType.PING,
    FrameType.PONG,
    FrameType.GOAWAY,
  ]),
};

/** Payload length each known type must have exactly; types not listed take up to the frame limit (§1, §2). */
const EXACT_LENGTH: ReadonlyMap<number, number> = new Map([
  [FrameType.PING, PING_PAYLOAD_BYTES],
  [FrameType.PONG, PING_PAYLOAD_BYTES],
  [FrameType.CANCEL, 0],
  [FrameType.HALF_CLOSE, 0],
]);

/**
 * Types whose payload is small: no larger than the pre-handshake limit, whatever the frame limit (a
 * map or an array, or ACCEPTED's payload, which version 1 leaves empty and receivers ignore).
 */
const SMALL_TYPES: ReadonlySet<number> = new Set([FrameType.HELLO, FrameType.WELCOME, FrameType.ACCEPTED, FrameType.ERROR, FrameType.GOAWAY]);

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(FrameType));

/**
 * The rulebook: what the end `role`, in `phase`, does with a frame of this
 * header. Pure: both ends consult it for every frame, and PROTOCOL.md §2, §3
 * and §6 are this table in words. Call-level rules (ids, limits) need the
 * end's calls and are the end's own (§4).
 */
export function frameRule(role: Role, phase: Phase, type: number, stream: number, length: number): FrameRule {
  if (phase === 'closed') return IGNORE;
  if (!KNOWN_TYPES.has(type)) {
    // Later versions may add optional frames; but the first frame must be the handshake's.
    if (phase === 'handshake') return violation(`the first frame must be ${role === 'server' ? 'HELLO' : 'WELCOME'}, got type ${hex(type)}`);
    return phase === 'authenticating' ? HOLD : IGNORE;
  }
  const streamError = streamViolation(type, stream);
  if (streamError !== undefined) return { kind: 'violation', error: streamError };
  if (!RECEIVES[role].has(type)) return violation(`a ${role} never receives frame type ${hex(type)}`);
  const exact = EXACT_LENGTH.get(type);
  if (exact !== undefined && length !== exact) return violation(`frame type ${hex(type)} must carry ${exact} payload bytes, got ${length}`);
  if (SMALL_TYPES.has(type) && length > MAX_HANDSHAKE_FRAME_BYTES) {
    return violation(`frame type ${hex(type)} of ${length} bytes: over the ${MAX_HANDSHAKE_FRAME_BYTES}-byte limit of its kind`);
  }
  // A GOAWAY is legal in every phase but the peer's half-closed one: it ends the connection with its code.
  if (type === FrameType.GOAWAY) return phase === 'half-closed' && role === 'server' ? afterHalfClose(type) : ACCEPT;
  return role === 'server' ? serverRule(phase, type) : clientRule(phase, type);
}

function serverRule(phase: Phase, type: number): FrameRule {
  switch (phase) {
    case 'handshake':
      return type === FrameType.HELLO ? ACCEPT : violation(`the first frame must be HELLO, got type ${hex(type)}`);
    case 'authenticating':
      return type === FrameType.HELLO ? violation('a second HELLO') : HOLD;
    case 'half-closed':
      return afterHalfClose(type);
    default:
      return type === FrameType.HELLO ? violation('a second HELLO') : ACCEPT;
  }
}

/**
 * After HALF_CLOSE the client sends nothing. A PING or PONG is ignored all
 * the same: one written by a client that read §5's "answer every PING" as
 * absolute does no harm. Anything else is a violation.
 */
function afterHalfClose(type: number): FrameRule {
  if (type === FrameType.PING || type === FrameType.PONG) return IGNORE;
  return violation(`frame type ${hex(type)} after HALF_CLOSE`);
}

function clientRule(phase: Phase, type: number): FrameRule {
  if (phase === 'handshake') {
    return type === FrameType.WELCOME ? ACCEPT : violation(`the first frame from the server must be WELCOME, got type ${hex(type)}`);
  }
  return type === FrameType.WELCOME ? violation('a second WELCOME') : ACCEPT;
}

function violation(message: string): FrameRule {
  return { kind: 'violation', error: new ProtocolError('HW_ERR_PROTOCOL', message) };
}

function hex(type: number): string {
  return `0x${type.toString(16).padStart(2, '0')}`;
}
