import diagnostics from 'node:diagnostics_channel';
import type { AbortReason } from '@heartwire/core';

/**
 * Observability through diagnostics_channel: the library never logs. Each
 * publish is guarded by `hasSubscribers`, so an unobserved server pays nothing.
 */

/** Published when a call was accepted and its handler is about to run. */
export interface CallStartMessage {
  readonly method: string;
  readonly id: number;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}

/** Published when a call's signal aborted: `reason.code` says why; `at` is `performance.now()` then. */
export interface CallAbortMessage extends CallStartMessage {
  readonly reason: AbortReason;
  readonly at: number;
}

/** Published when a call ended: a result or error frame went out, or it was aborted. */
export interface CallEndMessage extends CallStartMessage {
  readonly outcome: 'result' | 'error' | 'aborted';
  readonly durationMs: number;
}

/** Published when a connection closed; `reason` is set when the peer was declared gone or broke the protocol. */
export interface ConnectionCloseMessage {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly reason: AbortReason | undefined;
  readonly at: number;
}

export const channels = {
  callStart: diagnostics.channel('heartwire:server:call:start'),
  callAbort: diagnostics.channel('heartwire:server:call:abort'),
  callEnd: diagnostics.channel('heartwire:server:call:end'),
  connectionClose: diagnostics.channel('heartwire:server:connection:close'),
} as const;
