import type { ServerResponse } from 'node:http';
import { InvalidOptionError } from '@heartwire/core';
import type { Handler, HeartwireServer } from '@heartwire/server';
import { HttpCall, responseHeaders, type BridgeResponse } from './call.js';
import { negotiateFormat } from './negotiate.js';
import { resolveHttpBridgeOptions, type HttpBridgeOptions, type ResolvedHttpBridgeOptions } from './options.js';
import { readParams, type BridgeRequest } from './params.js';
import { HttpRefusal } from './refusal.js';
import { encodeEvent, type WireFormat } from './wire.js';

/** A request listener for `node:http`, `node:https`, `node:http2` (its compatibility API), Express and Connect. */
export type BridgeListener = (req: BridgeRequest, res: BridgeResponse) => void;

/** What {@link HttpBridge.serve} may be told besides the request. */
export interface ServeInit {
  /** The call's params, when a framework has already read the body (Fastify's `request.body`); otherwise they are read from the request. */
  readonly params?: unknown;
}

/**
 * Serves the methods registered on a {@link HeartwireServer} to HTTP
 * callers: same handlers (main-thread functions and `worker(...)` modules),
 * same `ctx`, same thread and process pools, same abort codes. The server
 * need not listen on TCP at all. Each call is answered `200` at once with an
 * early header, then filler every `heartbeatMs` while the job runs, its
 * progress, and last its result or a coded error, as NDJSON or server-sent
 * events (PROTOCOL.md §11).
 */
// The host of its calls (`CallHost`) by shape only: an `implements` clause would ship the internal
// call class in the declarations.
export class HttpBridge {
  /** The options in force, defaults applied. */
  readonly options: ResolvedHttpBridgeOptions;
  private readonly live = new Set<HttpCall>();
  private nextId = 1;
  private closed = false;
  private readonly lookup: (method: string) => Handler | undefined;

  constructor(
    private readonly server: HeartwireServer,
    options: HttpBridgeOptions = {},
  ) {
    const lookup = lookupOf(server);
    if (lookup === undefined) {
      throw new InvalidOptionError('server must be a HeartwireServer (from createServer() of @heartwire/server)');
    }
    this.lookup = lookup;
    this.options = resolveHttpBridgeOptions(options);
  }

  /** Calls in flight. */
  get callCount(): number {
    return this.live.size;
  }

  /**
   * A request listener that runs `method` for each request: mount it as
   * `http.createServer(bridge.listener('hash'))`, `http2.createSecureServer(opts, …)`,
   * or an Express route `app.post('/hash', bridge.listener('hash'))`.
   */
  listener(method: string): BridgeListener {
    checkMethod(method);
    return (req, res) => this.serve(method, req, res);
  }

  /**
   * Runs `method` for one request and answers on `res`; a `HEAD` request is
   * answered as its `GET` would be (the status and headers, a refusal too)
   * and runs nothing, and an `OPTIONS` request gets `204` with `Allow` and
   * runs nothing. For frameworks that
   * own the response (Fastify: `reply.hijack()` first) and have parsed the
   * body: pass it as `init.params`.
   */
  serve(method: string, req: BridgeRequest, res: BridgeResponse, init?: ServeInit): void {
    checkMethod(method);
    if (req.method === 'OPTIONS') {
      // A CORS preflight or a probe asks what the resource allows (RFC 9110 §9.3.7): it must not run the job.
      (res as ServerResponse).writeHead(204, { allow: 'GET, HEAD, POST' });
      res.end();
      return;
    }
    const format = negotiateFormat(req.headers.accept);
    if (this.closed || this.server.closing) {
      refuse(res, format, new HttpRefusal(503, 'HW_ERR_SERVER_CLOSING', 'the server is shutting down: try another instance'));
      return;
    }
    const handler = this.lookup(method);
    if (handler === undefined) {
      refuse(res, format, new HttpRefusal(404, 'HW_ERR_UNKNOWN_METHOD', `no handler for method "${method}"`));
      return;
    }
    const start = (params: unknown): void => {
      // The client may have left while its body was read: then there is no job to run.
      if (res.destroyed || res.writableEnded) return;
      if (req.method === 'HEAD') {
        // HEAD asks what a GET would be answered (RFC 9110 §9.3.2): the same status and headers, never the job.
        (res as ServerResponse).writeHead(200, responseHeaders(format));
        res.end();
        return;
      }
      const call = new HttpCall(this, req, res, this.nextId++, method, format);
      this.live.add(call);
      call.run(handler, params);
    };
    if (init !== undefined && 'params' in init) {
      start(init.params);
      return;
    }
    readParams(req, this.options.maxBodyBytes).then(start, (err: unknown) => {
      if (err instanceof HttpRefusal) refuse(res, format, err);
      else (res as ServerResponse).destroy();
    });
  }

  /**
   * Refuses new calls (`503 HW_ERR_SERVER_CLOSING`) and aborts each call in
   * flight with `HW_ERR_SERVER_SHUTDOWN`, which its client gets as its last
   * event. Call it before `server.close()`.
   */
  close(): void {
    this.closed = true;
    for (const call of [...this.live]) call.shutdown();
  }

  /** @internal A call ended; it is no longer in flight. */
  release(call: HttpCall): void {
    this.live.delete(call);
  }
}

/** Creates an {@link HttpBridge} serving `server`'s methods; see {@link HttpBridgeOptions} for the defaults. */
export function createHttpBridge(server: HeartwireServer, options?: HttpBridgeOptions): HttpBridge {
  return new HttpBridge(server, options);
}

/** The server's handler lookup, offered under a registered symbol that is no part of its typed API. */
const SERVER_LOOKUP = Symbol.for('heartwire.server.lookup');

function lookupOf(server: HeartwireServer): ((method: string) => Handler | undefined) | undefined {
  if (typeof server !== 'object' || server === null) return undefined;
  const lookup = (server as unknown as Record<symbol, unknown>)[SERVER_LOOKUP];
  return typeof lookup === 'function' ? (lookup.bind(server) as (method: string) => Handler | undefined) : undefined;
}

function checkMethod(method: string): void {
  if (typeof method !== 'string' || method.length === 0) throw new InvalidOptionError('method must be a non-empty string');
}

function refuse(res: BridgeResponse, format: WireFormat, refusal: HttpRefusal): void {
  if (res.headersSent || res.destroyed) return;
  (res as ServerResponse).writeHead(refusal.status, responseHeaders(format));
  res.end(encodeEvent(format, { type: 'error', code: refusal.code, message: refusal.message }));
}
