import {
  AbortedError,
  ConnectionError,
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
  type ClientPhase,
  type Frame,
  type GoAwayBody,
  type HeartwireError,
  type Hello,
  type Welcome,
} from '@heartwire/core';
import { Endpoint, wheelScheduler, type EndpointRole, type Failure } from '@heartwire/endpoint';
import type { CallOptions } from './call.js';
import { ClientCalls } from './calls.js';
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
  private readonly calls: ClientCalls;
  private closeError: HeartwireError | undefined;
  private settleReady: { resolve(): void; reject(err: unknown): void } | undefined;
  private resolveClosed: (() => void) | undefined;

  constructor(
    private readonly options: ResolvedClientOptions,
    private readonly events: ClientEvents,
  ) {
    // Payloads are encoded into Node's pooled buffers: a CALL's is let go once written (ClientCalls.send).
    this.codec = new PayloadCodec(options.codec, (size) => Buffer.allocUnsafe(size));
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
    this.calls = new ClientCalls(this.endpoint, this.codec, options, () => this.closeIfDone());
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
      this.calls.start({ id: 0, method, payload, options, accepted: false, sentAt: 0, resolve, reject, onAbort: undefined });
    });
  }

  /** See HeartwireClient.end. */
  end(): void {
    if (this.phase !== 'open' && this.phase !== 'draining') return;
    this.endpoint.phase = 'half-closed';
    this.calls.rejectWaiting(new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client ended the connection'));
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
        this.calls.onFrame(frame);
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
    this.calls.maxCalls = welcome.maxCalls;
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
    this.calls.rejectAbove(body.lastStream, goingAway(body));
    this.events.goaway(body);
  }

  // ---- the end ------------------------------------------------------------

  onPeerEnd(): void {
    // After end() with nothing left in flight, the server's FIN is the end we asked for.
    this.closeIfDone();
    if (this.endpoint.closed) return;
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
    this.calls.rejectAll(reason);
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
