import type { ServerResponse } from 'node:http';
import http2, { type Http2ServerResponse, type Http2Stream, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { AbortReason, callErrorOf, PayloadError } from '@heartwire/core';
import type { CallContext, Handler } from '@heartwire/server';
import { channels, type HttpCallStartMessage } from './diagnostics.js';
import type { ResolvedHttpBridgeOptions } from './options.js';
import type { BridgeRequest } from './params.js';
import { SessionWatch, type WatchedCall } from './session-watch.js';
import { CONTENT_TYPE, encodeEvent, FILLER, type WireEvent, type WireFormat } from './wire.js';
import { yieldToLoop } from '@heartwire/endpoint';

/** The response a bridged call answers on: `node:http`'s or `node:http2`'s compatibility API's. */
export type BridgeResponse = ServerResponse | Http2ServerResponse;

/** What a call needs from its bridge. */
export interface CallHost {
  readonly options: ResolvedHttpBridgeOptions;
  /** The call ended (result, error or verdict); the bridge forgets it. */
  release(call: HttpCall): void;
}

/** The headers of every bridged response: sent at once, before the job's first result. */
export function responseHeaders(format: WireFormat): Record<string, string> {
  return {
    'content-type': CONTENT_TYPE[format],
    // Never cached, and `no-transform` keeps proxies and compression middleware from
    // holding bytes back to compress them: filler must reach the client as it is written.
    'cache-control': 'no-cache, no-store, no-transform',
    // nginx: do not buffer this response (proxy_buffering off for it alone).
    'x-accel-buffering': 'no',
    vary: 'accept',
  };
}

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

/**
 * One bridged call: the response it owns, and the context its handler gets
 * (the same {@link CallContext} the TCP server gives). It writes the early
 * header, filler every `heartbeatMs`, progress, then the result or a coded
 * error; and it aborts the job, with the TCP server's codes, once the client
 * is gone: the response closed before its end (`HW_ERR_PEER_CLOSED`, or
 * `HW_ERR_PEER_RESET` for a TCP reset or an HTTP/2 stream reset with an
 * error code), a write failed (`HW_ERR_WRITE_FAILED`), the response stayed
 * undrained past `stallMs` or its backlog passed `maxWriteBacklogBytes`
 * (`HW_ERR_PEER_STALLED`), or its HTTP/2 session stopped answering PINGs
 * (`HW_ERR_PEER_SILENT`, see {@link SessionWatch}).
 */
export class HttpCall implements CallContext, WatchedCall {
  private readonly controller = new AbortController();
  /** `running` until the last event was written (`ended`) or the client was declared gone (`gone`). */
  private state: 'running' | 'ended' | 'gone' = 'running';
  private readonly stream: Http2Stream | undefined;
  private readonly socket: Socket | undefined;
  private readonly watch: SessionWatch | undefined;
  private filler: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  /** An error seen on the socket or HTTP/2 stream before the response closed. */
  private transportError: Error | undefined;
  private boundProgress: ((data: unknown) => boolean) | undefined;
  private boundYield: (() => Promise<void>) | undefined;
  private readonly startedAt = performance.now();

  constructor(
    private readonly host: CallHost,
    private readonly req: BridgeRequest,
    private readonly res: BridgeResponse,
    readonly id: number,
    readonly method: string,
    private readonly format: WireFormat,
  ) {
    if ('stream' in res) {
      this.stream = res.stream;
      this.stream.on('error', this.onTransportError);
      // 'aborted' fires as the stream is closed, a turn of the loop before the response's 'close',
      // which waits for the session's socket handle to close.
      this.stream.on('aborted', this.onStreamAborted);
      const session = this.stream.session;
      if (session !== undefined) this.watch = SessionWatch.of(session as ServerHttp2Session, host.options.heartbeatMs, host.options.silentMs);
    } else {
      this.socket = (res as ServerResponse).socket ?? undefined;
      this.socket?.on('error', this.onTransportError);
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  throwIfAborted(): void {
    this.controller.signal.throwIfAborted();
  }

  get remoteAddress(): string | undefined {
    return this.req.socket?.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.req.socket?.remotePort;
  }

  /** Writes a `progress` event; false once the call has ended, or while the response's buffer is full (slow down). */
  get progress(): (data: unknown) => boolean {
    return (this.boundProgress ??= (data: unknown) => {
      if (this.state !== 'running') return false;
      let line: string;
      try {
        line = encodeEvent(this.format, { type: 'progress', data });
      } catch (err) {
        throw new PayloadError('HW_ERR_ENCODE', `progress data cannot be sent as JSON: ${(err as Error).message}`, { cause: err });
      }
      return this.write(line);
    });
  }

  get yield(): () => Promise<void> {
    return (this.boundYield ??= () => yieldToLoop(this.controller.signal));
  }

  /** Sends the early header and the `accepted` event, starts the filler and runs `handler`. */
  run(handler: Handler, params: unknown): void {
    const res = this.res;
    res.on('close', this.onClose);
    res.on('drain', this.onDrain);
    (res as ServerResponse).writeHead(200, responseHeaders(this.format));
    this.write(encodeEvent(this.format, { type: 'accepted', id: this.id, heartbeatMs: this.host.options.heartbeatMs }));
    if (this.state !== 'running') return;
    this.filler = setInterval(() => this.write(FILLER[this.format]), this.host.options.heartbeatMs);
    this.watch?.add(this);
    if (channels.callStart.hasSubscribers) channels.callStart.publish(this.describe());
    let outcome: unknown;
    try {
      outcome = handler(params, this);
    } catch (err) {
      this.fail(err);
      return;
    }
    Promise.resolve(outcome).then(
      (result) => this.succeed(result),
      (err: unknown) => this.fail(err),
    );
  }

  /** The server shuts down: aborts the job with `HW_ERR_SERVER_SHUTDOWN` and tells the client so. */
  shutdown(): void {
    if (this.state !== 'running') return;
    const reason = new AbortReason('HW_ERR_SERVER_SHUTDOWN', 'the server is shutting down');
    this.controller.abort(reason);
    this.finish({ type: 'error', code: reason.code, message: reason.message }, 'aborted');
  }

  /** The client is gone: aborts the job with `reason` and drops the response. */
  gone(reason: AbortReason): void {
    if (this.state !== 'running') return;
    this.state = 'gone';
    this.stopTimers();
    this.controller.abort(reason);
    if (channels.callAbort.hasSubscribers) channels.callAbort.publish({ ...this.describe(), reason, at: performance.now() });
    const silentOrStalled = reason.code === 'HW_ERR_PEER_STALLED' || reason.code === 'HW_ERR_PEER_SILENT';
    if (this.stream !== undefined) {
      if (!this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
    } else if (silentOrStalled && this.socket !== undefined && !this.socket.destroyed) {
      // Dead means reset: an RST frees the kernel from retrying unacknowledged bytes for minutes.
      this.socket.resetAndDestroy();
    } else {
      (this.res as ServerResponse).destroy();
    }
    this.release();
  }

  private succeed(result: unknown): void {
    if (this.state !== 'running') return this.ended('aborted');
    let line: string;
    try {
      line = encodeEvent(this.format, { type: 'result', data: result === undefined ? null : result });
    } catch (err) {
      line = encodeEvent(this.format, { type: 'error', code: 'HW_ERR_ENCODE', message: `the result cannot be sent as JSON: ${(err as Error).message}` });
      this.finishWith(line, 'error');
      return;
    }
    this.finishWith(line, 'result');
  }

  private fail(err: unknown): void {
    if (this.state !== 'running') return this.ended('aborted');
    // As over TCP (PROTOCOL.md §7): a handler cannot send the server's own codes.
    const { code, message } = callErrorOf(err);
    this.finish({ type: 'error', code, message }, 'error');
  }

  private finish(event: WireEvent, outcome: 'result' | 'error' | 'aborted'): void {
    this.finishWith(encodeEvent(this.format, event), outcome);
  }

  private finishWith(line: string, outcome: 'result' | 'error' | 'aborted'): void {
    this.state = 'ended';
    this.stopTimers();
    this.res.end(line);
    this.release();
    this.ended(outcome);
  }

  private ended(outcome: 'result' | 'error' | 'aborted'): void {
    if (channels.callEnd.hasSubscribers) {
      channels.callEnd.publish({ ...this.describe(), outcome, durationMs: performance.now() - this.startedAt });
    }
  }

  private write(chunk: string): boolean {
    if (this.state !== 'running') return false;
    const { maxWriteBacklogBytes, stallMs } = this.host.options;
    const backlog = this.writable().writableLength;
    if (backlog > maxWriteBacklogBytes) {
      this.gone(new AbortReason('HW_ERR_PEER_STALLED', `the client left ${backlog} bytes unread, more than maxWriteBacklogBytes (${maxWriteBacklogBytes})`));
      return false;
    }
    const ok = (this.res as ServerResponse).write(chunk, this.onWritten);
    if (!ok && stallMs > 0 && this.stallTimer === undefined) {
      this.stallTimer = setTimeout(this.onStallTimer, stallMs);
    }
    return ok;
  }

  /** The writable whose buffer holds what the client has not taken yet. */
  private writable(): Writable {
    return this.stream ?? (this.res as ServerResponse);
  }

  private readonly onStallTimer = (): void => {
    // As for silence: a late timer judges only after the loop has read the socket.
    setImmediate(() => {
      if (this.stallTimer === undefined || this.state !== 'running') return;
      this.gone(new AbortReason('HW_ERR_PEER_STALLED', `the response was not drained within stallMs (${this.host.options.stallMs} ms)`));
    });
  };

  private readonly onDrain = (): void => {
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  };

  private readonly onWritten = (err?: Error | null): void => {
    if (err != null && this.state === 'running') this.gone(this.verdictOfError(err) ?? writeFailed(err));
  };

  private readonly onTransportError = (err: Error): void => {
    this.transportError ??= err;
  };

  private readonly onStreamAborted = (): void => {
    if (this.state === 'running') this.gone(this.verdictAtClose());
  };

  private readonly onClose = (): void => {
    if (this.state === 'running') this.gone(this.verdictAtClose());
    this.detach();
  };

  /** Why the response closed before its end, from what the socket, stream and session saw. */
  private verdictAtClose(): AbortReason {
    // A session torn down by a socket error destroys its streams with that error before either emits it.
    const err = this.transportError ?? this.stream?.errored ?? this.watch?.lastError;
    const known = err === undefined ? undefined : this.verdictOfError(err);
    if (known !== undefined) return known;
    const rstCode = this.stream?.rstCode;
    if (rstCode !== undefined && rstCode !== NGHTTP2_NO_ERROR && rstCode !== NGHTTP2_CANCEL) {
      return new AbortReason('HW_ERR_PEER_RESET', `the client reset the HTTP/2 stream (error code ${rstCode})`);
    }
    const session = this.stream?.session;
    const how =
      this.stream === undefined
        ? 'closed the connection'
        : session === undefined || session.destroyed || session.closed || session.socket?.destroyed !== false
          ? 'closed the HTTP/2 connection'
          : 'cancelled the HTTP/2 stream';
    return new AbortReason('HW_ERR_PEER_CLOSED', `the client ${how} before the response ended`);
  }

  /** The verdict a socket error implies: a reset is the peer's doing, wherever it surfaced (a read or a write). */
  private verdictOfError(err: Error): AbortReason | undefined {
    const errno = (this.transportError as NodeJS.ErrnoException | undefined)?.code ?? (err as NodeJS.ErrnoException).code;
    if (errno === 'ECONNRESET') return new AbortReason('HW_ERR_PEER_RESET', 'the client reset the connection', { cause: err });
    if (errno === 'EPIPE') return writeFailed(err);
    return undefined;
  }

  private stopTimers(): void {
    clearInterval(this.filler);
    clearTimeout(this.stallTimer);
    this.filler = undefined;
    this.stallTimer = undefined;
  }

  private release(): void {
    this.watch?.delete(this);
    this.host.release(this);
  }

  /** A kept-alive HTTP/1.1 socket serves the next request: our listeners must not pile up on it. */
  private detach(): void {
    this.socket?.off('error', this.onTransportError);
    this.stream?.off('error', this.onTransportError);
    this.stream?.off('aborted', this.onStreamAborted);
    this.res.off('drain', this.onDrain);
  }

  private describe(): HttpCallStartMessage {
    return {
      method: this.method,
      id: this.id,
      httpVersion: this.req.httpVersion,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
    };
  }
}

function writeFailed(err: Error): AbortReason {
  return new AbortReason('HW_ERR_WRITE_FAILED', `a write to the client failed: ${err.message}`, { cause: err });
}
