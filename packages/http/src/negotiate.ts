import type { WireFormat } from './wire.js';

/**
 * The framing a request asked for: server-sent events when its `Accept`
 * names `text/event-stream` (as `EventSource` does), NDJSON otherwise
 * (fetch, curl, `Accept: application/x-ndjson` or `*\/*`): a caller that
 * names neither still gets a readable stream rather than a 406.
 */
export function negotiateFormat(accept: string | string[] | undefined): WireFormat {
  const value = Array.isArray(accept) ? accept.join(',') : accept;
  if (value === undefined) return 'ndjson';
  for (const part of value.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    if (type?.trim() !== 'text/event-stream') continue;
    // `q=0` means "not this one".
    if (params.some((p) => /^\s*q\s*=\s*0(\.0*)?\s*$/.test(p))) continue;
    return 'sse';
  }
  return 'ndjson';
}
