export { createHttpBridge, HttpBridge, type BridgeListener, type ServeInit } from './bridge.js';
export type { BridgeResponse } from './call.js';
export type { BridgeRequest } from './params.js';
export { HttpRefusal } from './refusal.js';
export { negotiateFormat } from './negotiate.js';
export { DEFAULT_HTTP_BRIDGE_OPTIONS, resolveHttpBridgeOptions, type HttpBridgeOptions, type ResolvedHttpBridgeOptions } from './options.js';
export { CONTENT_TYPE, encodeEvent, FILLER, type AcceptedEvent, type ErrorEvent, type ProgressEvent, type ResultEvent, type WireEvent, type WireFormat } from './wire.js';
export type { HttpCallAbortMessage, HttpCallEndMessage, HttpCallStartMessage } from './diagnostics.js';
