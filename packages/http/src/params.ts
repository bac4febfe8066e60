import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { HttpRefusal } from './refusal.js';

/** A request the bridge serves: `node:http`'s (and Express's, Fastify's `request.raw`) or `node:http2`'s compatibility API's. */
export type BridgeRequest = IncomingMessage | Http2ServerRequest;

/**
 * A call's params: for GET (an `EventSource` can only GET) and HEAD (which
 * runs nothing, but is refused as its GET would be) the JSON in the `params`
 * query parameter; otherwise the JSON request body, or the
 * body a framework already parsed into `req.body` (Express's `express.json()`).
 * No body, or no `params`, is `undefined`.
 */
export async function readParams(req: BridgeRequest, maxBodyBytes: number): Promise<unknown> {
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD') {
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams.get('params');
    return query === null ? undefined : parseJson(query, 'the params query parameter');
  }
  const parsed = (req as { body?: unknown }).body;
  if (parsed !== undefined) return parsed;
  const text = await readBody(req, maxBodyBytes);
  return text.length === 0 ? undefined : parseJson(text, 'the request body');
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpRefusal(400, 'HW_ERR_BAD_PAYLOAD', `${what} is not JSON: ${(err as Error).message}`);
  }
}

function readBody(req: BridgeRequest, maxBodyBytes: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (declared > maxBodyBytes) {
    // Refused before a byte is read; the body is drained so the connection stays usable.
    req.resume();
    return Promise.reject(tooLarge(maxBodyBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        cleanup();
        req.resume();
        reject(tooLarge(maxBodyBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size).toString('utf8'));
    };
    const onGone = (): void => {
      cleanup();
      reject(new HttpRefusal(400, 'HW_ERR_BAD_PAYLOAD', 'the request body ended early'));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('aborted', onGone);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('aborted', onGone);
  });
}

function tooLarge(maxBodyBytes: number): HttpRefusal {
  return new HttpRefusal(413, 'HW_ERR_PAYLOAD_TOO_LARGE', `the request body is larger than maxBodyBytes (${maxBodyBytes} bytes)`);
}
