import { AbortedError, ConnectionError, HeartwireError, RemoteError } from '@heartwire/core';
import type { WireEvent } from '../wire.js';
import { LineReader } from './line-reader.js';
import { resolveHttpCallOptions, type HttpCallOptions } from './options.js';

const NDJSON = 'application/x-ndjson';

/**
 * Calls a method served by `@heartwire/http` at `url` with `params` (sent
 * as the JSON body of a POST) and resolves with its result. It reads the
 * NDJSON stream as it comes, hides the filler, hands progress to
 * `onProgress`, and rejects with a coded {@link HeartwireError}:
 * - the server's code in a {@link RemoteError} (`HW_ERR_HANDLER`, `HW_ERR_UNKNOWN_METHOD` …);
 * - `HW_ERR_SERVER_SILENT` when no byte came for `silentMs` (the fetch is aborted);
 * - `HW_ERR_CONNECTION_LOST` when the request failed, the stream ended before its result,
 *   or an error status came from something other than the bridge (a proxy's 502 page);
 * - `HW_ERR_ABORTED` when `signal` aborted: the request is closed, which the
 *   server takes as `HW_ERR_PEER_CLOSED` and aborts the job.
 *
 * Only web APIs (fetch, streams, `TextDecoder`, timers): it runs in Node 20+ and in browsers.
 */
export async function call<R = unknown>(url: string | URL, params?: unknown, options?: HttpCallOptions): Promise<R> {
  const o = resolveHttpCallOptions(options);
  const caller = o.signal;
  if (caller?.aborted) throw new AbortedError('the call was aborted before it started', caller.reason);
  const controller = new AbortController();
  const onCallerAbort = (): void => controller.abort(new AbortedError('the call was aborted', caller?.reason));
  caller?.addEventListener('abort', onCallerAbort, { once: true });
  let silence: ReturnType<typeof setTimeout> | undefined;
  const arm = (): void => {
    clearTimeout(silence);
    silence = setTimeout(() => {
      controller.abort(new ConnectionError('HW_ERR_SERVER_SILENT', `no byte from the server within silentMs (${o.silentMs} ms)`));
    }, o.silentMs);
  };
  // What a failed fetch or read means: our own abort says why; anything else is a lost connection.
  const failure = (err: unknown): HeartwireError =>
    controller.signal.aborted
      ? (controller.signal.reason as HeartwireError)
      : new ConnectionError('HW_ERR_CONNECTION_LOST', `the request failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  arm();
  try {
    let response: Response;
    try {
      // Called on the global object: a browser's fetch throws "Illegal invocation" when called as a method of another object.
      response = await o.fetch.call(globalThis, url, {
        method: 'POST',
        headers: { accept: NDJSON, 'content-type': 'application/json', ...o.headers },
        body: params === undefined ? undefined : JSON.stringify(params),
        signal: controller.signal,
      });
    } catch (err) {
      throw failure(err);
    }
    if (response.body === null) throw new ConnectionError('HW_ERR_CONNECTION_LOST', `HTTP ${response.status} with no body`);
    if (!response.ok && !(response.headers.get('content-type') ?? '').includes(NDJSON)) {
      // Not the bridge's answer (a proxy's 502 or 504 page, a framework's 404): the path to the server failed.
      void response.body.cancel().catch(() => undefined);
      throw new ConnectionError('HW_ERR_CONNECTION_LOST', `HTTP ${response.status} ${response.statusText} from something other than the bridge`);
    }
    const reader = response.body.getReader();
    const lines = new LineReader();
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (err) {
          throw failure(err);
        }
        if (chunk.done) break;
        arm();
        for (const line of lines.push(chunk.value)) {
          const event = parseEvent(line);
          switch (event.type) {
            case 'accepted':
              o.onAccepted?.(event);
              break;
            case 'progress':
              o.onProgress?.(event.data);
              break;
            case 'result':
              return event.data as R;
            case 'error':
              throw new RemoteError(event.code, event.message);
          }
        }
      }
    } finally {
      // Whatever ended the loop, the body is let go (an early return or throw would otherwise hold the connection).
      void reader.cancel().catch(() => undefined);
    }
    throw new ConnectionError(
      'HW_ERR_CONNECTION_LOST',
      response.ok ? 'the response ended before its result' : `HTTP ${response.status} ended with no error event`,
    );
  } finally {
    clearTimeout(silence);
    caller?.removeEventListener('abort', onCallerAbort);
  }
}

function parseEvent(line: string): WireEvent {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    throw new ConnectionError('HW_ERR_PROTOCOL', `the server sent a line that is not JSON: ${line.slice(0, 80)}`);
  }
  const type = (event as { type?: unknown } | null)?.type;
  if (type !== 'accepted' && type !== 'progress' && type !== 'result' && type !== 'error') {
    throw new ConnectionError('HW_ERR_PROTOCOL', `the server sent an event of unknown type: ${line.slice(0, 80)}`);
  }
  return event as WireEvent;
}
