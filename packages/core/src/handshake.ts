import { ProtocolError } from './errors/index.js';
import type { Hello, Welcome } from './messages.js';
import { PROTOCOL_VERSION } from './protocol.js';

/** The server's side of the negotiation: its own settings and the floor it allows a client to ask for. */
export interface ServerTerms {
  readonly heartbeatMs: number;
  readonly minHeartbeatMs: number;
  readonly silentMs: number;
  readonly maxFrameBytes: number;
  readonly maxCalls: number;
}

/**
 * Chooses the terms of a connection from the client's HELLO. The version is
 * the highest both speak; the heartbeat is the client's wish clamped to
 * [minHeartbeatMs, heartbeatMs]: a client behind a proxy with a short idle
 * timer may ask for more frequent heartbeats, never for fewer.
 * Throws {@link ProtocolError} `HW_ERR_UNSUPPORTED_VERSION`.
 */
export function negotiate(hello: Hello, terms: ServerTerms): Welcome {
  if (!hello.versions.includes(PROTOCOL_VERSION)) {
    throw new ProtocolError(
      'HW_ERR_UNSUPPORTED_VERSION',
      `no common protocol version: client speaks [${hello.versions.join(', ')}], server speaks [${PROTOCOL_VERSION}]`,
    );
  }
  const wanted = hello.heartbeatMs ?? terms.heartbeatMs;
  const heartbeatMs = Math.min(terms.heartbeatMs, Math.max(terms.minHeartbeatMs, wanted));
  return {
    version: PROTOCOL_VERSION,
    heartbeatMs,
    silentMs: terms.silentMs,
    maxFrameBytes: terms.maxFrameBytes,
    maxCalls: terms.maxCalls,
  };
}
