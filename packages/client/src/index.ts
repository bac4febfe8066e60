export { connect, HeartwireClient } from './client.js';
export { createClient, ReconnectingClient, type ReconnectingClientOptions, type RetryCallOptions } from './reconnect.js';
export { DEFAULT_BACKOFF_OPTIONS, type BackoffOptions } from './backoff.js';
export type { CallOptions } from './call.js';
export type { ClientCallEndMessage, ClientCallStartMessage, ClientCloseMessage, ClientConnectMessage } from './diagnostics.js';
export { DEFAULT_CLIENT_OPTIONS, resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';
export {
  AbortedError,
  ConnectionError,
  HeartwireError,
  InvalidOptionError,
  PayloadError,
  ProtocolError,
  RefusalError,
  RemoteError,
  type ConnectionErrorCode,
  type GoAwayBody,
  type Welcome,
} from '@heartwire/core';
