export { createServer, HeartwireServer } from './server.js';
export type { CallContext, Handler } from './handler.js';
export { DEFAULT_SERVER_OPTIONS, resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js';
export type { CallAbortMessage, CallEndMessage, CallStartMessage, ConnectionCloseMessage } from './diagnostics.js';
export { AbortReason, HeartwireError, InvalidOptionError, PayloadError, ProtocolError, type AbortCode } from '@heartwire/core';
