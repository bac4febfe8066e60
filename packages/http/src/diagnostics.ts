import diagnostics from 'node:diagnostics_channel';
import type { AbortReason } from '@heartwire/core';

/**
 * Observability through diagnostics_channel, as the TCP server does: the
 * library never logs, and each publish is guarded by `hasSubscribers`.
 */

/** Published when a call's job is about to run. */
export interface HttpCallStartMessage {
  readonly method: string;
  readonly id: number;
  /** `'1.1'` or `'2.0'`, as `req.httpVersion`. */
  readonly httpVersion: string;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}

/** Published when a call's client was declared gone and its signal aborted; `at` is `performance.now()` then. */
export interface HttpCallAbortMessage extends HttpCallStartMessage {
  readonly reason: AbortReason;
  readonly at: number;
}

/** Published when a call ended: its result or error event went out, or it was aborted. */
export interface HttpCallEndMessage extends HttpCallStartMessage {
  readonly outcome: 'result' | 'error' | 'aborted';
  readonly durationMs: number;
}

/** @internal */
export const channels = {
  callStart: diagnostics.channel('heartwire:http:call:start'),
  callAbort: diagnostics.channel('heartwire:http:call:abort'),
  callEnd: diagnostics.channel('heartwire:http:call:end'),
};
