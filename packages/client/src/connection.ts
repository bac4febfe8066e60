import {
  AbortedError,
  ConnectionError,
  decodeCallError,
  decodeGoAway,
  decodePingPayload,
  decodeWelcome,
  encodeCall,
  encodeHello,
  FrameType,
  isConnectionErrorCode,
  PayloadCodec,
  PayloadError,
  PROTOCOL_VERSION,
  ProtocolError,
  RemoteError,
  unknownCallViolation,
  type ClientPhase,
  type Frame,
  type GoAwayBody,
  type HeartwireError,
  type Hello,
  type Welcome,
} from '@heartwire/core';
import { Endpoint, wheelScheduler, type EndpointRole, type Failure } from '@heartwire/endpoint';
import type { CallOptions, PendingCall } from './call.js';
import { channels } from './diagnostics.js';
import type { ResolvedClientOptions } from './options.js';
import { isTlsError, openSockets, type ClientSockets } from './transport.js';

const now = wheelScheduler.now;

/** What the public client hears from its connection. */
export interface ClientEvents {
  goaway(body: GoAwayBody): void;
  /** The socket closed; `error` is what ended the connection, undefined when this end closed it on purpose. */
  close(error: ConnectionError | undefined): void;
}

/**
 * The client's end of one connection: the handshake, the calls, and the
 * lifecycle (one {@link ClientPhase}), on the same {@link Endpoint} as the
 * server's. Heartbeats are answered here and never reach the caller; any
 * byte from the server tells it the server is alive.
 */
export class ClientConnection implements EndpointRole {
  readonly role = 'client';
  /** A client's GOAWAY names no call of the server's. */
  readonly lastStream = 0;
  welcome: Welcome | undefined;
  goAwayBody: GoAwayBody | undefined;
  readonly ready: Promise<void>;
  readonly closed: Promise<void>;
  private readonly endpoint: Endpoint;
  private readonly codec: PayloadCodec;
  private readonly sockets: ClientSockets;
  private readonly calls = new Map<number, PendingCall>();
  private readonly waiting: PendingCall[] = [];
  private nextId = 1;
  private closeError: HeartwireError | undefined;
  private settleReady: { resolve(): void; reject(err: unknown): void } | undefined;
  private resolveClosed: (() => void) | undefined;

  constructor(
    private readonly options: ResolvedClientOptions,
    private readonly events: ClientEvents,
  ) {
    this.codec = new PayloadCodec(options.codec);
    this.ready = new Promise((resolve, reject) => {
      this.settleReady = { resolve, reject };
    });
    // Nobody may be listening if connect() was never awaited; its rejection is reported there.
    this.ready.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.sockets = openSockets(options);
    this.endpoint = new Endpoint(this.sockets, options, this.codec, this);
    this.sockets.stream.once(this.sockets.readyEvent, this.sendHello);
  }

  get phase(): ClientPhase {
    return this.endpoint.phase as ClientPhase;
  }

  get activeCalls(): number {
    return this.calls.size;
  }

  /** Why a new call cannot go out now, or undefined if it can. */
  unusableError(): HeartwireError | undefined {
    switch (this.phase) {
      case 'open':
        return undefined;
      case 'draining':
        return goingAway(this.goAwayBody as GoAwayBody);
      case 'half-closed':
        return new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client ended the connection');
      default:
        return this.closeError ?? new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client is closed');
    }
  }

  /** See HeartwireClient.call. */
  call(method: string, params: unknown, options: CallOptions): Promise<unknown> {
    const unusable = this.unusableError();
    if (unusable !== undefined) return Promise.reject(unusable);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new AbortedError('the call was aborted by its signal', signal.reason));
    let payload: Uint8Array;
    try {
      payload = encodeCall(this.codec, method, params);
    } catch (err) {
      return Promise.reject(err);
    }
    const welcome = this.welcome as Welcome;
    if (payload.byteLength > welcome.maxFrameBytes) {
      const message = `params of ${payload.byteLength} bytes exceed the server's frame limit of ${welcome.maxFrameBytes} bytes`;
      return Promise.reject(new PayloadError('HW_ERR_PAYLOAD_TOO_LARGE', message));
    }
    return new Promise((resolve, reject) => {
      const call: PendingCall = { id: 0, method, payload, options, accepted: false, sentAt: 0, resolve, reject, onAbort: undefined };
      if (signal !== undefined) {
        call.onAbort = () => this.abortCall(call, signal.reason);
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      if (this.calls.size < welcome.maxCalls) this.send(call);
      else this.waiting.push(call);
    });
  }

  /** See HeartwireClient.end. */
  end(): void {
    if (this.phase !== 'open' && this.phase !== 'draining') return;
    this.endpoint.phase = 'half-closed';
    this.rejectWaiting(new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client ended the connection'));
    this.endpoint.write(FrameType.HALF_CLOSE, 0);
    this.endpoint.endOutput();
    this.closeIfDone();
  }

  /** Closes the connection (`reset` for a server declared gone, `end` for our own close). Nothing happens once closed. */
  close(error: HeartwireError, mode: 'reset' | 'end' | 'destroy'): void {
    this.endpoint.close(error, mode);
  }

  /** Gives up on the handshake: connect() timed out or was aborted. */
  failHandshake(error: HeartwireError, mode: 'reset' | 'destroy'): void {
    if (this.phase === 'handshake') this.endpoint.close(error, mode);
  }

  // ---- calls ------------------------------------------------------------

  private send(call: PendingCall): void {
    call.id = this.nextId++;
    call.sentAt = now();
    this.calls.set(call.id, call);
    this.endpoint.write(FrameType.CALL, call.id, call.payload);
    this.endpoint.setBusy(true, call.sentAt);
    if (channels.callStart.hasSubscribers) {
      channels.callStart.publish({ method: call.method, id: call.id, host: this.options.host, port: this.options.port });
    }
  }

  private abortCall(call: PendingCall, reason: unknown): void {
    if (call.id !== 0 && this.calls.get(call.id) !== call) return;
    this.cancelWith(call, new AbortedError('the call was aborted by its signal', reason));
  }

  /** Ends a call here with `err`; one the server has is cancelled (after HALF_CLOSE it stops with the connection instead). */
  private cancelWith(call: PendingCall, err: unknown): void {
    if (call.id === 0) {
      const index = this.waiting.indexOf(call);
      if (index >= 0) this.waiting.splice(index, 1);
    } else if (this.calls.get(call.id) !== call) {
      return;
    } else if (this.phase === 'open' || this.phase === 'draining') {
      this.endpoint.write(FrameType.CANCEL, call.id);
    }
    this.settle(call, err);
    call.reject(err);
  }

  /** Forgets a call that has ended, and lets a waiting one take its slot. */
  private settle(call: PendingCall, error?: unknown): void {
    if (call.onAbort !== undefined) call.options.signal?.removeEventListener('abort', call.onAbort);
    if (call.id === 0 || !this.calls.delete(call.id)) return;
    if (channels.callEnd.hasSubscribers) {
      channels.callEnd.publish({
        method: call.method,
        id: call.id,
        host: this.options.host,
        port: this.options.port,
        outcome: error === undefined ? 'result' : 'error',
        error,
        durationMs: now() - call.sentAt,
      });
    }
    if (this.calls.size === 0) this.endpoint.setBusy(false);
    const next = this.phase === 'open' ? this.waiting.shift() : undefined;
    if (next !== undefined) this.send(next);
    this.closeIfDone();
  }

  /**
   * After end(), nothing is left to wait for once the last call ended. Closing
   * also stops any job whose call was aborted meanwhile (no CANCEL can be
   * sent any more): the server's next write fails.
   */
  private closeIfDone(): void {
    if (this.phase === 'half-closed' && this.calls.size === 0) {
      this.endpoint.close(new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client ended the connection'), 'destroy');
    }
  }

  private rejectWaiting(error: HeartwireError): void {
    for (const call of this.waiting.splice(0)) {
      this.settle(call);
      call.reject(error);
    }
  }

  // ---- frames (the rulebook has let each one through) --------------------

  private readonly sendHello = (): void => {
    const { options } = this;
    const hello: { -readonly [K in keyof Hello]: Hello[K] } = { versions: [PROTOCOL_VERSION], maxFrameBytes: options.maxFrameBytes };
    if (options.heartbeatMs !== undefined) hello.heartbeatMs = options.heartbeatMs;
    if (options.auth !== undefined) hello.auth = options.auth;
    this.endpoint.write(FrameType.HELLO, 0, encodeHello(this.codec, hello));
  };

  onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.WELCOME:
        this.onWelcome(frame.payload);
        return;
      case FrameType.PING: {
        const seq = decodePingPayload(frame.payload);
        // After HALF_CLOSE we send nothing, PONGs included (PROTOCOL.md §6).
        if (this.phase !== 'half-closed') this.endpoint.writePing(FrameType.PONG, seq);
        return;
      }
      case FrameType.PONG:
        // The answer to our own PING: its bytes already counted as life.
        return;
      case FrameType.GOAWAY:
        this.onGoAway(decodeGoAway(this.codec, frame.payload));
        return;
      default:
        this.onCallFrame(frame);
    }
  }

  onChunkRead(): void {}

  admit(): boolean {
    return true;
  }

  private onWelcome(payload: Uint8Array): void {
    const welcome = decodeWelcome(this.codec, payload);
    if (welcome.version !== PROTOCOL_VERSION) {
      throw new ProtocolError('HW_ERR_UNSUPPORTED_VERSION', `the server chose protocol version ${welcome.version}, which this client did not offer`);
    }
    this.welcome = welcome;
    this.endpoint.raiseFrameLimit();
    this.endpoint.startLiveness({
      heartbeatMs: 0,
      silentMs: this.silentBound(),
      stallMs: this.options.stallMs,
      // The server hears from us at least this often while calls are in flight, even when its own
      // PINGs wait behind a large result on the way here (PROTOCOL.md §5): half its silent bound.
      quietPingMs: Math.max(1, Math.floor(welcome.silentMs / 2)),
    });
    this.endpoint.phase = 'open';
    if (channels.connect.hasSubscribers) {
      const { host, port } = this.options;
      const { localAddress, localPort } = this.sockets.tcp;
      const { heartbeatMs, silentMs, maxCalls } = welcome;
      channels.connect.publish({ host, port, localAddress, localPort, heartbeatMs, silentMs, maxCalls, at: now() });
    }
    this.settleReady?.resolve();
    this.settleReady = undefined;
  }

  private onGoAway(body: GoAwayBody): void {
    if (this.phase === 'handshake') {
      // The server refused the connection: its code says why (HW_ERR_UNAUTHENTICATED, HW_ERR_TOO_MANY_CONNECTIONS, …).
      const code = isConnectionErrorCode(body.code) ? body.code : 'HW_ERR_PROTOCOL';
      this.endpoint.close(new ConnectionError(code, `the server refused the connection: ${body.message}`), 'end');
      return;
    }
    this.goAwayBody = body;
    if (this.phase === 'open') this.endpoint.phase = 'draining';
    // These calls never reached a handler: the code says they are safe to send elsewhere.
    const error = goingAway(body);
    this.rejectWaiting(error);
    for (const call of [...this.calls.values()]) {
      if (call.id > body.lastStream) {
        this.settle(call, error);
        call.reject(error);
      }
    }
    this.events.goaway(body);
  }

  private onCallFrame(frame: Frame): void {
    const call = this.calls.get(frame.stream);
    if (call === undefined) {
      // A frame for a call we cancelled crossed our CANCEL; one for an id we never sent is a violation.
      const violation = unknownCallViolation(frame.stream, this.nextId - 1, `frame type 0x${frame.type.toString(16)}`);
      if (violation !== undefined) throw violation;
      return;
    }
    switch (frame.type) {
      case FrameType.ACCEPTED:
        this.runCallback(call, () => this.markAccepted(call));
        return;
      case FrameType.PROGRESS: {
        // PROGRESS, RESULT and ERROR each stand for ACCEPTED if it has not come.
        const data = this.decodeFor(call, frame.payload);
        if (data !== undefined) {
          this.runCallback(call, () => {
            this.markAccepted(call);
            call.options.onProgress?.(data.value);
          });
        }
        return;
      }
      case FrameType.RESULT: {
        const data = this.decodeFor(call, frame.payload);
        if (data === undefined) return;
        this.settle(call);
        this.runCallback(call, () => this.markAccepted(call));
        call.resolve(data.value);
        return;
      }
      case FrameType.ERROR: {
        const body = decodeCallError(this.codec, frame.payload);
        const error = new RemoteError(body.code, body.message);
        this.settle(call, error);
        this.runCallback(call, () => this.markAccepted(call));
        call.reject(error);
        return;
      }
    }
  }

  private markAccepted(call: PendingCall): void {
    if (call.accepted) return;
    call.accepted = true;
    call.options.onAccepted?.();
  }

  /** Decodes a payload for one call; a bad payload fails that call only (HW_ERR_BAD_PAYLOAD) and cancels it. */
  private decodeFor(call: PendingCall, payload: Uint8Array): { value: unknown } | undefined {
    try {
      return { value: this.codec.decode(payload) };
    } catch (err) {
      this.cancelWith(call, err);
      return undefined;
    }
  }

  /** Runs a user callback; if it throws, the call is cancelled and rejects with what it threw. */
  private runCallback(call: PendingCall, callback: () => void): void {
    try {
      callback();
    } catch (err) {
      this.cancelWith(call, err);
    }
  }

  // ---- the end ------------------------------------------------------------

  onPeerEnd(): void {
    if (this.phase === 'half-closed' && this.calls.size === 0) {
      this.endpoint.close(new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client ended the connection'), 'destroy');
      return;
    }
    const goAway = this.goAwayBody;
    // A GOAWAY says why the connection ends (idle, over a limit, a protocol error); without a code we know, a shutdown.
    const error =
      goAway === undefined
        ? new ConnectionError('HW_ERR_CONNECTION_LOST', 'the server closed the connection')
        : new ConnectionError(
            isConnectionErrorCode(goAway.code) ? goAway.code : 'HW_ERR_SERVER_SHUTDOWN',
            `the server closed the connection after its GOAWAY: ${goAway.message}`,
          );
    this.endpoint.close(error, 'destroy');
  }

  failure(failure: Failure): HeartwireError {
    switch (failure.kind) {
      case 'reset':
      case 'write-failed':
      case 'failed':
        return isTlsError(this.sockets, failure.cause)
          ? new ConnectionError('HW_ERR_TLS', `TLS failed: ${failure.cause.message}`, { cause: failure.cause })
          : new ConnectionError('HW_ERR_CONNECTION_LOST', `the connection failed: ${failure.cause.message}`, { cause: failure.cause });
      case 'closed':
        return new ConnectionError('HW_ERR_CONNECTION_LOST', 'the connection closed');
      case 'silent':
        return new ConnectionError('HW_ERR_SERVER_SILENT', `no byte from the server within ${this.silentBound()} ms while calls were in flight`);
      case 'stalled':
        return new ConnectionError(
          'HW_ERR_SERVER_STALLED',
          failure.backlogBytes === undefined
            ? 'the server stopped reading: our bytes made no progress within the bound'
            : `the server is not reading: ${failure.backlogBytes} bytes wait for it, over the ${this.options.maxWriteBacklogBytes}-byte cap`,
        );
      case 'goaway':
        // We told the server why (our GOAWAY); the calls see the same code.
        return new ConnectionError(failure.error.code as ProtocolError['code'], `the server broke the protocol: ${failure.error.message}`, {
          cause: failure.error,
        });
    }
  }

  onClosed(reason: HeartwireError | undefined): void {
    // A connect aborted by its signal rejects connect() with HW_ERR_ABORTED; the connection itself was closed on purpose.
    this.closeError = reason instanceof ConnectionError ? reason : undefined;
    if (this.settleReady !== undefined) {
      this.settleReady.reject(reason);
      this.settleReady = undefined;
    }
    for (const call of [...this.waiting.splice(0), ...this.calls.values()]) {
      this.settle(call, reason);
      call.reject(reason);
    }
    if (channels.close.hasSubscribers) {
      const { host, port } = this.options;
      channels.close.publish({ host, port, error: publicError(reason), at: now() });
    }
  }

  onSocketClosed(): void {
    this.events.close(publicError(this.closeError) as ConnectionError | undefined);
    this.resolveClosed?.();
  }

  private silentBound(): number {
    const welcome = this.welcome as Welcome;
    return this.options.serverSilentMs ?? welcome.heartbeatMs + welcome.silentMs;
  }
}

/** What the close event and channel report: nothing for our own close(), the verdict otherwise. */
function publicError(error: HeartwireError | undefined): HeartwireError | undefined {
  return error?.code === 'HW_ERR_CLIENT_CLOSED' ? undefined : error;
}

/** A call refused because the server sent GOAWAY: it never reached a handler, so it is safe to retry elsewhere. */
function goingAway(body: GoAwayBody): ConnectionError {
  return new ConnectionError('HW_ERR_SERVER_CLOSING', `the server is going away and did not take this call: ${body.message}`);
}
