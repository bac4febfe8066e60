export { call } from './call.js';
export { DEFAULT_HTTP_CALL_OPTIONS, type HttpCallOptions } from './options.js';
export type { AcceptedEvent, ErrorEvent, ProgressEvent, ResultEvent, WireEvent } from '../wire.js';
export { AbortedError, ConnectionError, HeartwireError, RemoteError } from '@heartwire/core';
