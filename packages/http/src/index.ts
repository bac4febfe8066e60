export { createHttpBridge, HttpBridge, type BridgeListener, type ServeInit } from './bridge.js';
export type { BridgeResponse } from './call.js';
export type { BridgeRequest } from './params.js';
export { DEFAULT_HTTP_BRIDGE_OPTIONS, resolveHttpBridgeOptions, type HttpBridgeOptions, type ResolvedHttpBridgeOptions } from './options.js';
export type { AcceptedEvent, ErrorEvent, ProgressEvent, ResultEvent, WireEvent } from './wire.js';
export type { HttpCallAbortMessage, HttpCallEndMessage, HttpCallStartMessage } from './diagnostics.js';
