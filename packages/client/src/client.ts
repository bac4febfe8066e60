import { EventEmitter } from 'node:events';
import net from 'node:net';
import {
  AbortedError,
  checkFrameStream,
  ConnectionError,
  decodeCallError,
  decodeGoAway,
  decodePingPayload,
  decodeWelcome,
  encodeCall,
  encodeHello,
  FrameBatch,
  type FrameBatchOptions,
  type FrameSink,
  FrameDecoder,
  FrameType,
  HeartwireError,
  Liveness,
  LivenessTimer,
  PayloadCodec,
  PROTOCOL_VERSION,
  ProtocolError,
  RemoteError,
  type ConnectionErrorCode,
  type Frame,
  type GoAwayBody,
  type LivenessEffect,
  type Welcome,
} from '@heartwire/core';
import { writeQueueProbe } from '@heartwire/endpoint';
import type { CallOptions, PendingCall } from './call.js';
import { nodeScheduler } from './scheduler.js';
import { resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';
import { closeClientSockets, isTlsError, openSockets, type ClientSockets } from './transport.js';

const now = nodeScheduler.now;

/** The output batch flushes right after the current turn, into Node's pooled, unzeroed buffers. */
const BATCH_OPTIONS: FrameBatchOptions = { defer: process.nextTick, allocate: (size) => Buffer.allocUnsafe(size) };

type ClientState = 'handshake' | 'open' | 'ending' | 'closed';

/**
 * A connection to a heartwire server. Heartbeats are answered here and never
 * reach the caller; they also tell the client the server is alive.
 *
 * Events: `'goaway'` (the server is shutting down; `GoAwayBody`), `'close'`
 * (the connection ended: the `ConnectionError` that ended it, or undefined
 * when `close()` or `end()` did).
 */
export class HeartwireClient extends EventEmitter implements FrameSink {
  /** The terms the server announced in WELCOME. Set once `connect()` resolved. */
  welcome: Welcome | undefined;
  private state: ClientState = 'handshake';
  private readonly options: ResolvedClientOptions;
  private readonly codec: PayloadCodec;
  private readonly socket: net.Socket;
  private readonly sockets: ClientSockets;
  private readonly decoder: FrameDecoder;
  private liveness: Liveness | undefined;
  private readonly calls = new Map<number, PendingCall>();
  private readonly waiting: PendingCall[] = [];
  private nextId = 1;
  private goAway: GoAwayBody | undefined;
  private closeError: ConnectionError | undefined;
  private timer: LivenessTimer | undefined;
  private readonly ready: Promise<HeartwireClient>;
  private settleReady: { resolve(client: HeartwireClient): void; reject(err: unknown): void } | undefined;
  private readonly closed: Promise<void>;
  /** Frames written this turn, sent together (see flush). */
  private readonly batch = new FrameBatch(this, BATCH_OPTIONS);
  /** When the chunk being read arrived: one clock read per chunk, not per frame. */
  private inputAt = 0;

  /** Use {@link connect}. */
  private constructor(options: ResolvedClientOptions) {
    super();
    this.options = options;
    this.codec = new PayloadCodec(options.codec);
    this.decoder = new FrameDecoder({ maxPayloadBytes: options.maxFrameBytes });
    this.ready = new Promise((resolve, reject) => {
      this.settleReady = { resolve, reject };
    });
    // Nobody may be listening if connect() was never awaited; its rejection is reported there.
    this.ready.catch(() => {});
    this.sockets = openSockets(options);
    this.socket = this.sockets.stream;
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on(this.sockets.readyEvent, this.onConnect);
    this.socket.on('data', this.onData);
    this.socket.on('end', this.onEnd);
    this.socket.on('error', this.onSocketError);
    this.socket.on('close', this.onClose);
  }

  /** @internal */
  static open(options: ResolvedClientOptions): Promise<HeartwireClient> {
    const client = new HeartwireClient(options);
    const { signal, connectTimeoutMs } = options;
    const timer = setTimeout(() => {
      // Reset: the server may be a black hole, and the kernel need not keep trying.
      client.failReady(new ConnectionError('HW_ERR_CONNECT_TIMEOUT', `no connection and handshake within ${connectTimeoutMs} ms`), 'reset');
    }, connectTimeoutMs);
    const onAbort = (): void => {
      client.failReady(new AbortedError('the connect was aborted by its signal', signal?.reason), 'destroy');
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    return client.ready.finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    });
  }

  /** Calls in flight, not counting those waiting for a free slot. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** True while a new call goes out at once, or waits here for a slot: connected, not ending, no GOAWAY. */
  get acceptsCalls(): boolean {
    return this.state === 'open' && this.goAway === undefined;
  }

  /**
   * Calls `method` with `params`. Resolves to the handler's result; rejects
   * with a `HeartwireError` whose `code` says why: `RemoteError` for an ERROR
   * frame from the server, `AbortedError` (`HW_ERR_ABORTED`) when `signal`
   * aborted, `ConnectionError` when the connection failed
   * (`HW_ERR_SERVER_SILENT`, `HW_ERR_CONNECTION_LOST`, …), `PayloadError`
   * when params cannot be encoded. Beyond the server's `maxCalls`, calls wait
   * here for a free slot.
   */
  call<R = unknown, P = unknown>(method: string, params?: unknown, options: CallOptions<P> = {}): Promise<R> {
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
      return Promise.reject(
        new HeartwireError(
          'HW_ERR_PAYLOAD_TOO_LARGE',
          `params of ${payload.byteLength} bytes exceed the server's frame limit of ${welcome.maxFrameBytes} bytes`,
        ),
      );
    }
    return new Promise<R>((resolve, reject) => {
      const call: PendingCall = {
        id: 0,
        payload,
        options,
        accepted: false,
        resolve: resolve as (value: unknown) => void,
        reject,
        onAbort: undefined,
      };
      if (signal !== undefined) {
        call.onAbort = () => this.abortCall(call, signal.reason);
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      if (this.calls.size < welcome.maxCalls) this.send(call);
      else this.waiting.push(call);
    });
  }

  /**
   * Half-closes on purpose: tells the server (HALF_CLOSE) that it will send
   * nothing more, then sends FIN. Calls in flight go on and deliver their
   * results; new calls, and calls still waiting for a slot, are refused with
   * `HW_ERR_CLIENT_CLOSED`. A call aborted from now on cannot send CANCEL: its
   * job stops when the connection closes, which happens as soon as no call is
   * left. Resolves when the connection has closed.
   */
  end(): Promise<void> {
    if (this.state === 'open') {
      this.state = 'ending';
      this.rejectWaiting(new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client ended the connection'));
      this.write(FrameType.HALF_CLOSE, 0);
      this.batch.flush();
      this.socket.end();
    }
    return this.closed;
  }

  /**
   * Closes the connection: calls in flight and waiting reject with
   * `HW_ERR_CLIENT_CLOSED`, and the server, seeing the FIN, stops their jobs.
   * Resolves when the socket has closed.
   */
  close(): Promise<void> {
    if (this.state !== 'closed') {
      this.fail(new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client was closed'), 'end');
    }
    return this.closed;
  }

  private unusableError(): HeartwireError | undefined {
    if (this.state === 'open') {
      return this.goAway === undefined ? undefined : goingAway(this.goAway);
    }
    if (this.state === 'ending') return new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client ended the connection');
    return this.closeError ?? new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client is closed');
  }

  // ---- calls ------------------------------------------------------------

  private send(call: PendingCall): void {
    call.id = this.nextId++;
    this.calls.set(call.id, call);
    this.write(FrameType.CALL, call.id, call.payload);
    (this.liveness as Liveness).activate(now());
    this.timer?.schedule();
  }

  private abortCall(call: PendingCall, reason: unknown): void {
    const error = new AbortedError('the call was aborted by its signal', reason);
    if (call.id === 0) {
      const index = this.waiting.indexOf(call);
      if (index >= 0) this.waiting.splice(index, 1);
      this.settle(call);
      call.reject(error);
      return;
    }
    if (this.calls.get(call.id) !== call) return;
    // After end() our sending side is closed: the job ends with the connection instead (see settle).
    if (this.state === 'open') this.write(FrameType.CANCEL, call.id);
    this.settle(call);
    call.reject(error);
  }

  /** Forgets a call that has ended, and lets a waiting one take its slot. */
  private settle(call: PendingCall): void {
    if (call.onAbort !== undefined) call.options.signal?.removeEventListener('abort', call.onAbort);
    if (call.id === 0) return;
    this.calls.delete(call.id);
    if (this.calls.size === 0) {
      this.liveness?.deactivate();
      this.timer?.schedule();
    }
    const next = this.state === 'open' && this.goAway === undefined ? this.waiting.shift() : undefined;
    if (next !== undefined) this.send(next);
    // After end(), nothing is left to wait for. Closing also stops any job whose call was aborted
    // meanwhile (no CANCEL can be sent any more): the server's next write fails.
    if (this.state === 'ending' && this.calls.size === 0) {
      this.fail(new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client ended the connection'), 'destroy');
    }
  }

  private markAccepted(call: PendingCall): void {
    if (call.accepted) return;
    call.accepted = true;
    call.options.onAccepted?.();
  }

  private rejectWaiting(error: HeartwireError): void {
    for (const call of this.waiting.splice(0)) {
      this.settle(call);
      call.reject(error);
    }
  }

  // ---- input ------------------------------------------------------------

  private readonly onConnect = (): void => {
    const hello = { versions: [PROTOCOL_VERSION], maxFrameBytes: this.options.maxFrameBytes } as {
      versions: number[];
      maxFrameBytes: number;
      heartbeatMs?: number;
      auth?: unknown;
    };
    if (this.options.heartbeatMs !== undefined) hello.heartbeatMs = this.options.heartbeatMs;
    if (this.options.auth !== undefined) hello.auth = this.options.auth;
    this.write(FrameType.HELLO, 0, encodeHello(this.codec, hello));
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.state === 'closed') return;
    this.inputAt = now();
    // Any byte is a sign of life, a part of a frame too: a PING may wait behind a large result.
    this.liveness?.onInbound(this.inputAt);
    try {
      this.decoder.push(chunk, this.onFrame);
    } catch (err) {
      const protocol = err instanceof ProtocolError ? err : new ProtocolError('HW_ERR_PROTOCOL', `bad input: ${(err as Error).message}`);
      this.fail(new ConnectionError(protocol.code, `the server broke the protocol: ${protocol.message}`, { cause: err }), 'reset');
    }
  };

  private readonly onFrame = (frame: Frame): void => {
    if (this.state === 'closed') return;
    const violation = checkFrameStream(frame);
    if (violation !== undefined) throw violation;
    if (this.state === 'handshake') {
      this.onHandshakeFrame(frame);
      return;
    }
    switch (frame.type) {
      case FrameType.PING: {
        const seq = decodePingPayload(frame.payload);
        if (this.state === 'open') this.writePong(seq);
        return;
      }
      case FrameType.PONG:
        return;
      case FrameType.ACCEPTED: {
        const call = this.calls.get(frame.stream);
        if (call !== undefined) this.runCallback(call, () => this.markAccepted(call));
        return;
      }
      case FrameType.PROGRESS:
        this.onProgress(frame);
        return;
      case FrameType.RESULT:
        this.onResult(frame);
        return;
      case FrameType.ERROR:
        this.onCallError(frame);
        return;
      case FrameType.GOAWAY:
        this.onGoAway(decodeGoAway(this.codec, frame.payload));
        return;
      case FrameType.HELLO:
      case FrameType.WELCOME:
      case FrameType.CALL:
      case FrameType.CANCEL:
      case FrameType.HALF_CLOSE:
        throw new ProtocolError('HW_ERR_PROTOCOL', `unexpected frame type 0x${frame.type.toString(16)} from a server`);
      default:
        // Unknown frame types are ignored: later versions may add optional frames.
        return;
    }
  };

  private onHandshakeFrame(frame: Frame): void {
    if (frame.type === FrameType.GOAWAY) {
      const body = decodeGoAway(this.codec, frame.payload);
      const code = isConnectionCode(body.code) ? body.code : 'HW_ERR_PROTOCOL';
      this.fail(new ConnectionError(code, `the server refused the connection: ${body.message}`), 'end');
      return;
    }
    if (frame.type !== FrameType.WELCOME) {
      throw new ProtocolError('HW_ERR_PROTOCOL', `the first frame from the server must be WELCOME, got type 0x${frame.type.toString(16)}`);
    }
    const welcome = decodeWelcome(this.codec, frame.payload);
    if (welcome.version !== PROTOCOL_VERSION) {
      throw new ProtocolError('HW_ERR_UNSUPPORTED_VERSION', `the server chose protocol version ${welcome.version}`);
    }
    this.welcome = welcome;
    this.liveness = new Liveness({
      heartbeatMs: 0,
      silentMs: this.silentBound(),
      stallMs: this.options.stallMs,
      // The server hears from us at least this often while calls are in flight, even when its own
      // PINGs wait behind a large result on the way here (PROTOCOL.md §5): half its silent bound.
      quietPingMs: Math.max(1, Math.floor(welcome.silentMs / 2)),
    });
    this.timer = new LivenessTimer(this.liveness, nodeScheduler, this.onLivenessEffect, writeQueueProbe(this.sockets.tcp));
    this.state = 'open';
    this.settleReady?.resolve(this);
    this.settleReady = undefined;
  }

  private onProgress(frame: Frame): void {
    const call = this.calls.get(frame.stream);
    if (call === undefined) return;
    const data = this.decodeFor(call, frame.payload);
    if (data === undefined) return;
    this.runCallback(call, () => {
      this.markAccepted(call);
      call.options.onProgress?.(data.value);
    });
  }

  private onResult(frame: Frame): void {
    const call = this.calls.get(frame.stream);
    if (call === undefined) return;
    const data = this.decodeFor(call, frame.payload);
    if (data === undefined) return;
    this.settle(call);
    this.runCallback(call, () => this.markAccepted(call));
    call.resolve(data.value);
  }

  private onCallError(frame: Frame): void {
    const call = this.calls.get(frame.stream);
    if (call === undefined) return;
    const body = decodeCallError(this.codec, frame.payload);
    this.settle(call);
    this.runCallback(call, () => this.markAccepted(call));
    call.reject(new RemoteError(body.code, body.message));
  }

  /** Decodes a payload for one call; a bad payload fails that call only (and cancels it). */
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

  private cancelWith(call: PendingCall, err: unknown): void {
    if (this.calls.get(call.id) !== call) return;
    if (this.state === 'open') this.write(FrameType.CANCEL, call.id);
    this.settle(call);
    call.reject(err);
  }

  private onGoAway(body: GoAwayBody): void {
    this.goAway = body;
    // These calls never reached a handler: the code says they are safe to send elsewhere.
    const error = goingAway(body);
    this.rejectWaiting(error);
    for (const call of [...this.calls.values()]) {
      if (call.id > body.lastStream) {
        this.settle(call);
        call.reject(error);
      }
    }
    this.emit('goaway', body);
  }

  private readonly onEnd = (): void => {
    const goAway = this.goAway;
    // A GOAWAY says why the connection ends (idle, over a limit, a protocol error); without a code we know, a shutdown.
    const error =
      goAway === undefined
        ? new ConnectionError('HW_ERR_CONNECTION_LOST', 'the server closed the connection')
        : new ConnectionError(
            isConnectionCode(goAway.code) ? goAway.code : 'HW_ERR_SERVER_SHUTDOWN',
            `the server closed the connection after its GOAWAY: ${goAway.message}`,
          );
    this.fail(error, 'destroy');
  };

  private readonly onSocketError = (err: NodeJS.ErrnoException): void => {
    const error = isTlsError(this.sockets, err)
      ? new ConnectionError('HW_ERR_TLS', `TLS failed: ${err.message}`, { cause: err })
      : new ConnectionError('HW_ERR_CONNECTION_LOST', `the connection failed: ${err.message}`, { cause: err });
    this.fail(error, 'destroy');
  };

  private readonly onClose = (): void => {
    this.fail(new ConnectionError('HW_ERR_CONNECTION_LOST', 'the connection closed'), 'destroy');
    this.emit('close', this.closeError?.code === 'HW_ERR_CLIENT_CLOSED' ? undefined : this.closeError);
  };

  // ---- liveness ---------------------------------------------------------

  private readonly onLivenessEffect = (effect: LivenessEffect): void => {
    if (effect.type === 'ping') {
      // Our own PING, sent only when we sent nothing for a while; after HALF_CLOSE we send nothing.
      if (this.state !== 'open') return;
      this.batch.pushPing(FrameType.PING, effect.seq);
      this.batch.flush();
      return;
    }
    const error =
      effect.verdict === 'stalled'
        ? new ConnectionError('HW_ERR_SERVER_STALLED', 'the server stopped reading: our bytes made no progress within the bound')
        : new ConnectionError('HW_ERR_SERVER_SILENT', `no frame from the server within ${this.silentBound()} ms while calls were in flight`);
    this.fail(error, 'reset');
  };

  private silentBound(): number {
    const welcome = this.welcome as Welcome;
    return this.options.serverSilentMs ?? welcome.heartbeatMs + welcome.silentMs;
  }

  // ---- output and teardown -----------------------------------------------

  private readonly afterWrite = (err?: Error | null): void => {
    if (err) return; // the socket's 'error' event reports it
    this.timer?.flushed(this.socket.writableLength);
  };

  /** Queues a frame; every frame of this turn of the event loop goes out in one write, right after it. */
  private write(type: number, stream: number, payload?: Uint8Array): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.batch.push(type, stream, payload);
  }

  /** Queues a PONG, with no allocation of its own. */
  private writePong(seq: number): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.batch.pushPing(FrameType.PONG, seq);
  }

  /** @internal Where the batch sends its bytes. */
  writeFrames(chunk: Uint8Array): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(chunk, this.afterWrite);
    this.liveness?.onOutbound(now());
    this.timer?.wrote(this.socket.writableLength);
  }

  private failReady(error: HeartwireError, how: 'reset' | 'destroy'): void {
    if (this.state === 'handshake') this.fail(error, how);
  }

  /**
   * Ends the connection once: every call in flight or waiting rejects with
   * `error`. `reset` for a server declared gone, `end` for our own close.
   */
  private fail(error: HeartwireError, how: 'reset' | 'end' | 'destroy'): void {
    if (this.state === 'closed') return;
    const wasHandshake = this.state === 'handshake';
    this.state = 'closed';
    if (error instanceof ConnectionError) this.closeError = error;
    // The FIN (or RST) goes out first: it is what tells the server to stop the jobs.
    if (how === 'end') this.batch.flush();
    else this.batch.clear();
    closeClientSockets(this.sockets, how);
    this.timer?.stop();
    this.liveness?.deactivate();
    if (wasHandshake) {
      this.settleReady?.reject(error);
      this.settleReady = undefined;
    }
    for (const call of [...this.waiting.splice(0), ...this.calls.values()]) {
      this.settle(call);
      call.reject(error);
    }
    this.calls.clear();
  }
}

/** A call refused because the server sent GOAWAY: it never reached a handler, so it is safe to retry elsewhere. */
function goingAway(body: GoAwayBody): ConnectionError {
  return new ConnectionError('HW_ERR_SERVER_CLOSING', `the server is going away and did not take this call: ${body.message}`);
}

function isConnectionCode(code: string): code is ConnectionErrorCode {
  return (
    code === 'HW_ERR_UNSUPPORTED_VERSION' ||
    code === 'HW_ERR_HANDSHAKE_TIMEOUT' ||
    code === 'HW_ERR_SERVER_SHUTDOWN' ||
    code === 'HW_ERR_PROTOCOL' ||
    code === 'HW_ERR_FRAME_TOO_LARGE' ||
    code === 'HW_ERR_TOO_MANY_CALLS' ||
    code === 'HW_ERR_TOO_MANY_CONNECTIONS' ||
    code === 'HW_ERR_UNAUTHENTICATED' ||
    code === 'HW_ERR_IDLE_TIMEOUT' ||
    code === 'HW_ERR_OVER_BUDGET'
  );
}

/**
 * Connects to a heartwire server and completes the handshake. Rejects with
 * `HW_ERR_CONNECT_TIMEOUT`, `HW_ERR_CONNECTION_LOST`, `HW_ERR_TLS`,
 * `HW_ERR_ABORTED`, or the code from the server's GOAWAY (for example
 * `HW_ERR_UNAUTHENTICATED`, `HW_ERR_TOO_MANY_CONNECTIONS`,
 * `HW_ERR_UNSUPPORTED_VERSION`).
 */
export function connect(options: ClientOptions): Promise<HeartwireClient> {
  let resolved: ResolvedClientOptions;
  try {
    resolved = resolveClientOptions(options);
  } catch (err) {
    return Promise.reject(err);
  }
  return HeartwireClient.open(resolved);
}
