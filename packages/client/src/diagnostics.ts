import diagnostics from 'node:diagnostics_channel';
import type { HeartwireError } from '@heartwire/core';

/**
 * What the client publishes on `diagnostics_channel`, as the server does:
 * subscribe with `diagnostics_channel.subscribe('heartwire:client:…', fn)`.
 * Nothing is built for a channel nobody listens to.
 */

/** Published when a connection completed its handshake. */
export interface ClientConnectMessage {
  readonly host: string;
  readonly port: number;
  /** Our end of the TCP connection: what the server sees as the peer's address and port. */
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** The server's terms, from WELCOME. */
  readonly heartbeatMs: number;
  readonly silentMs: number;
  readonly maxCalls: number;
  readonly at: number;
}

/** Published when a call was sent (it had a free slot). */
export interface ClientCallStartMessage {
  readonly method: string;
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

/** Published when a sent call ended: its result or error arrived, it was aborted, or its connection failed (`error` says why). */
export interface ClientCallEndMessage extends ClientCallStartMessage {
  readonly outcome: 'result' | 'error';
  readonly error: HeartwireError | undefined;
  readonly durationMs: number;
}

/**
 * Published when a connection closed: `error` is the verdict that ended it
 * (`HW_ERR_SERVER_SILENT`, `HW_ERR_SERVER_STALLED`, `HW_ERR_CONNECTION_LOST`,
 * a GOAWAY's code, …), or undefined when `close()` or `end()` did.
 */
export interface ClientCloseMessage {
  readonly host: string;
  readonly port: number;
  readonly error: HeartwireError | undefined;
  readonly at: number;
}

export const channels = {
  connect: diagnostics.channel('heartwire:client:connect'),
  callStart: diagnostics.channel('heartwire:client:call:start'),
  callEnd: diagnostics.channel('heartwire:client:call:end'),
  close: diagnostics.channel('heartwire:client:close'),
} as const;
