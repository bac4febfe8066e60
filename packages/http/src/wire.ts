/**
 * The bridge's wire format, shared by the bridge and the fetch client (so it
 * imports nothing from Node). One JSON object per event, in either framing:
 * - `application/x-ndjson`: the object on a line of its own; filler is an empty line.
 * - `text/event-stream`: `event: <type>` and `data: <the same object>`; filler is a comment line.
 * See PROTOCOL.md §11.
 */

/** First event, sent with the headers: the call was accepted and its job runs. */
export interface AcceptedEvent {
  readonly type: 'accepted';
  /** The call's id on this bridge. */
  readonly id: number;
  /** How often filler follows while the job runs, in ms: a client bounds its silence on it. */
  readonly heartbeatMs: number;
}

/** A progress report of the job (`ctx.progress(data)`). */
export interface ProgressEvent {
  readonly type: 'progress';
  readonly data: unknown;
}

/** The job's result; the last event. */
export interface ResultEvent {
  readonly type: 'result';
  readonly data: unknown;
}

/** The call failed; the last event. `code` is a stable `HW_ERR_*` code. */
export interface ErrorEvent {
  readonly type: 'error';
  readonly code: string;
  readonly message: string;
}

export type WireEvent = AcceptedEvent | ProgressEvent | ResultEvent | ErrorEvent;

/** The two framings; the request's `Accept` header picks one. */
export type WireFormat = 'ndjson' | 'sse';

export const CONTENT_TYPE: Readonly<Record<WireFormat, string>> = Object.freeze({
  ndjson: 'application/x-ndjson; charset=utf-8',
  sse: 'text/event-stream; charset=utf-8',
});

/**
 * Heartbeat filler: the least a proxy counts as a byte of the response, and
 * what every reader of the framing skips (an empty NDJSON line, an SSE comment).
 */
export const FILLER: Readonly<Record<WireFormat, string>> = Object.freeze({
  ndjson: '\n',
  sse: ':\n\n',
});

/** One event in `format`'s framing. `JSON.stringify` escapes newlines, so an SSE event needs one `data:` line. */
export function encodeEvent(format: WireFormat, event: WireEvent): string {
  const json = JSON.stringify(event);
  return format === 'ndjson' ? `${json}\n` : `event: ${event.type}\ndata: ${json}\n\n`;
}
