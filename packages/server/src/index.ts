export { createServer, HeartwireServer } from './server.js';
export type { CallContext, Handler } from './calls/handler.js';
export { worker, type JobContext, type JobFunction, type JobIsolation, type JobModule, type WorkerOptions } from './jobs/module.js';
export { LOOP_BLOCKED_WARNING } from './calls/loop-watchdog.js';
export { StandalonePools, type StandalonePoolsOptions, type StandaloneRunOptions } from './jobs/standalone-pools.js';
export type { Authenticate, PeerInfo } from './connection/auth.js';
export type { CloseCallback, CloseOptions } from './drain.js';
export { DEFAULT_SERVER_OPTIONS, resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js';
export type {
  CallAbortMessage,
  CallEndMessage,
  CallStartMessage,
  ConnectionCloseMessage,
  LoopBlockedMessage,
  PoolCrashMessage,
  TlsErrorMessage,
} from './diagnostics.js';
export { AbortReason, HeartwireError, InvalidOptionError, PayloadError, ProtocolError, type AbortCode } from '@heartwire/core';
