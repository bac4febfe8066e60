import diagnostics from 'node:diagnostics_channel';
import type { AbortReason, HeartwireError } from '@heartwire/core';
import type { JobIsolation } from './jobs/module.js';

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

/**
 * Published when the event loop was blocked past `loopBlockWarnMs` while
 * main-thread handlers ran; `methods` are the ones that ran during the block.
 */
export interface LoopBlockedMessage {
  readonly methods: readonly string[];
  /** How late a timer fired: a lower bound of how long the loop was blocked. */
  readonly blockedMs: number;
  readonly at: number;
}

/** Published when a worker thread or child process died between jobs (the pool replaces it); `error.code` is `HW_ERR_WORKER_*`. */
export interface PoolCrashMessage {
  readonly isolation: JobIsolation;
  readonly error: HeartwireError;
}

/** Published when a TLS handshake failed; Node has closed the connection. */
export interface TlsErrorMessage {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly error: Error;
}

export const channels = {
  callStart: diagnostics.channel('heartwire:server:call:start'),
  callAbort: diagnostics.channel('heartwire:server:call:abort'),
  callEnd: diagnostics.channel('heartwire:server:call:end'),
  connectionClose: diagnostics.channel('heartwire:server:connection:close'),
  loopBlocked: diagnostics.channel('heartwire:server:loop:blocked'),
  poolCrash: diagnostics.channel('heartwire:server:pool:crash'),
  tlsError: diagnostics.channel('heartwire:server:tls:error'),
} as const;
