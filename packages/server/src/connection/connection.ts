import type { Socket } from 'node:net';
import {
  AbortReason,
  CALL_FRAME_TYPES,
  checkFrameStream,
  CONNECTION_FRAME_TYPES,
  decodeCall,
  decodeHello,
  decodePingPayload,
  encodeCallError,
  encodeGoAway,
  encodeWelcome,
  FrameBatch,
  type FrameBatchOptions,
  type FrameSink,
  FrameDecoder,
  FrameType,
  HeartwireError,
  Liveness,
  LivenessTimer,
  MAX_HANDSHAKE_FRAME_BYTES,
  negotiate,
  PayloadCodec,
  PayloadError,
  ProtocolError,
  type AbortCode,
  type Frame,
  type Hello,
  type LivenessEffect,
  type Welcome,
  thrownMessage,
} from '@heartwire/core';
import { writeQueueProbe } from '@heartwire/endpoint';
import { channels } from '../diagnostics.js';
import { Call, type CallHost } from '../calls/call.js';
import { serverScheduler } from '../scheduler.js';
import type { ResolvedServerOptions } from '../options.js';
import { checkAuthentication, peerInfo } from './auth.js';
import type { AcceptedSockets } from '../listen/listener.js';
import { closeServerSockets } from '../listen/sockets.js';
import { IdleTimer } from './idle-timer.js';
import type { ParamsAccount, ParamsBudget } from './params-budget.js';
import type { Handler } from '../calls/handler.js';

/** A handler ready to start once the whole chunk it arrived in was read. */
interface PendingStart {
  readonly call: Call;
  readonly handler: Handler;
  readonly params: unknown;
}

type ConnectionState = 'handshake' | 'open' | 'closed';

/** What the connection needs from its server. */
export interface ConnectionHost {
  readonly options: ResolvedServerOptions;
  readonly codec: PayloadCodec;
  lookup(method: string): Handler | undefined;
  /** The server is shutting down: new calls are refused. */
  readonly closing: boolean;
  /** What every connection's calls may hold of CALL payloads. */
  readonly paramsBudget: ParamsBudget;
  onConnectionClosed(connection: Connection): void;
}

const now = serverScheduler.now;

/** Every connection's output batch flushes right after the current turn, into Node's pooled, unzeroed buffers. */
const BATCH_OPTIONS: FrameBatchOptions = { defer: process.nextTick, allocate: (size) => Buffer.allocUnsafe(size) };

/** The connection a socket belongs to: the socket's listeners are shared, not closures per connection. */
const kConnection = Symbol('heartwire.connection');
type OwnedSocket = Socket & { [kConnection]: Connection };

/**
 * The server side of one connection: reads every byte as it arrives (so FIN
 * and RST are seen at once, whatever the handlers do), runs calls, sends the
 * early header and heartbeats, and applies the liveness verdicts.
 */
export class Connection implements CallHost, FrameSink {
  private state: ConnectionState = 'handshake';
  private readonly decoder: FrameDecoder;
  private liveness: Liveness | undefined;
  private readonly calls = new Map<number, Call>();
  private lastStream = 0;
  /** Largest payload the client accepts (from its HELLO). */
  private peerMaxFrameBytes = 0xffff_ffff;
  /** The client announced HALF_CLOSE: its FIN does not end its calls. */
  private peerHalfCloseAnnounced = false;
  private peerWriteEnded = false;
  /** {@link drain} sent GOAWAY: the connection ends with its last call. */
  private draining = false;
  /** HELLO arrived and the authentication hook has not answered yet. */
  private authenticating = false;
  private timer: LivenessTimer | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** The payload of a CALL is still arriving (see watchArrivingCall). */
  private callArriving = false;
  /** The idleTimeoutMs deadline, from WELCOME or the end of the last call. */
  private idleTimer: IdleTimer | undefined;
  /** This connection's share of the params budget. */
  private readonly params: ParamsAccount;
  /** Calls refused over the params budget since the last one taken. */
  private overBudgetCalls = 0;
  /** Handlers to start once this chunk is read; undefined while none wait (an idle connection holds no array). */
  private pendingStarts: PendingStart[] | undefined;
  /** Frames written this turn, sent together (see flush). */
  private readonly batch = new FrameBatch(this, BATCH_OPTIONS);
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  private readonly socket: Socket;
  /** When the chunk being read arrived: one clock read per chunk, not per frame. */
  private inputAt = 0;

  constructor(
    private readonly sockets: AcceptedSockets,
    private readonly host: ConnectionHost,
  ) {
    const { options } = host;
    const socket = sockets.stream;
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    this.params = host.paramsBudget.account();
    this.decoder = new FrameDecoder({
      maxPayloadBytes: Math.min(MAX_HANDSHAKE_FRAME_BYTES, options.maxFrameBytes),
      admit: this.admitFrame,
    });
    socket.setNoDelay(true);
    (socket as OwnedSocket)[kConnection] = this;
    socket.on('data', Connection.onSocketData);
    socket.on('end', Connection.onSocketEnd);
    socket.on('error', Connection.onSocketError);
    socket.on('close', Connection.onSocketClose);
    // From TCP accept: a TLS handshake already spent part of the time.
    const remaining = Math.max(0, sockets.acceptedAt + options.handshakeTimeoutMs - now());
    this.handshakeTimer = setTimeout(() => {
      this.protocolError(
        new ProtocolError('HW_ERR_HANDSHAKE_TIMEOUT', `no complete handshake within ${options.handshakeTimeoutMs} ms`),
      );
    }, remaining);
  }

  /** Server shutdown: abort every call, tell the client (unless {@link drain} already did), close. */
  shutdown(): void {
    if (this.state === 'closed') return;
    const reason = new AbortReason('HW_ERR_SERVER_SHUTDOWN', 'the server is shutting down');
    for (const call of this.calls.values()) {
      this.writeCallError(call.id, reason.code, reason.message);
    }
    if (!this.draining) this.writeGoAway(reason.code, reason.message);
    this.finish(reason, 'end');
  }

  /**
   * Graceful shutdown: GOAWAY now; calls in flight go on and deliver their
   * results, new ones are refused (`HW_ERR_SERVER_CLOSING`); the connection
   * closes once the last call ended. A connection still in its handshake has
   * nothing to finish and is shut down at once.
   */
  drain(): void {
    if (this.state !== 'open') {
      this.shutdown();
      return;
    }
    if (this.draining) return;
    this.draining = true;
    this.writeGoAway('HW_ERR_SERVER_SHUTDOWN', 'the server is shutting down: calls in flight may finish, new ones go elsewhere');
    if (this.calls.size === 0) this.finish(undefined, 'end');
  }

  // ---- input ------------------------------------------------------------

  // Shared by every socket (`this` is the socket): a connection holds no listener closures.
  private static onSocketData(this: OwnedSocket, chunk: Buffer): void {
    this[kConnection].onData(chunk);
  }

  private static onSocketEnd(this: OwnedSocket): void {
    this[kConnection].onEnd();
  }

  private static onSocketError(this: OwnedSocket, err: NodeJS.ErrnoException): void {
    this[kConnection].onConnectionError(err, false);
  }

  private static onSocketClose(this: OwnedSocket): void {
    this[kConnection].onClose();
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.inputAt = now();
    // Any byte is a sign of life, a part of a frame too: a PONG may wait behind megabytes of upload.
    this.liveness?.onInbound(this.inputAt);
    try {
      this.decoder.push(chunk, this.onFrame);
    } catch (err) {
      // Anything a peer's bytes can make us throw closes this connection only, never the process.
      this.protocolError(
        err instanceof ProtocolError ? err : new ProtocolError('HW_ERR_PROTOCOL', `bad input: ${(err as Error).message}`),
      );
      return;
    }
    this.watchArrivingCall();
    // The early headers go out before any handler of this chunk runs; what the handlers write follows in one more write.
    this.batch.flush();
    this.startPending();
  }

  /**
   * A call is in flight for the client from the moment it wrote its CALL: while a large CALL is
   * still arriving (a minute, for 4 MiB at 64 KiB/s), the heartbeats run as for a call, so that the
   * client hears from us and we judge it (PROTOCOL.md §5).
   */
  private watchArrivingCall(): void {
    const arriving = this.decoder.arrivingType === FrameType.CALL;
    if (arriving === this.callArriving || this.state !== 'open') return;
    this.callArriving = arriving;
    if (arriving) {
      (this.liveness as Liveness).activate(this.inputAt);
      this.timer?.schedule();
    } else if (this.calls.size === 0) {
      this.becameIdle(); // it arrived and was refused, or ran and ended already
    }
  }

  private readonly onFrame = (frame: Frame): void => {
    if (this.state === 'closed') return;
    const violation = checkFrameStream(frame);
    if (violation !== undefined) throw violation;
    if (this.state === 'handshake') {
      if (this.authenticating) throw new ProtocolError('HW_ERR_PROTOCOL', 'a frame after HELLO, before WELCOME');
      this.onHandshakeFrame(frame);
      return;
    }
    if (this.peerHalfCloseAnnounced) {
      throw new ProtocolError('HW_ERR_PROTOCOL', `frame type 0x${frame.type.toString(16)} after HALF_CLOSE`);
    }
    switch (frame.type) {
      case FrameType.CALL:
        this.onCall(frame);
        return;
      case FrameType.CANCEL:
        this.onCancel(frame.stream);
        return;
      case FrameType.PONG:
        this.onPong(frame.payload);
        return;
      case FrameType.PING:
        // Either side may PING; the answer echoes the sequence number.
        this.writePing(FrameType.PONG, decodePingPayload(frame.payload));
        return;
      case FrameType.HALF_CLOSE:
        // The client will send nothing more, PONGs included: only its reading can still be judged.
        this.peerHalfCloseAnnounced = true;
        this.liveness?.onPeerWriteClosed();
        return;
      case FrameType.HELLO:
      case FrameType.WELCOME:
      case FrameType.ACCEPTED:
      case FrameType.PROGRESS:
      case FrameType.RESULT:
      case FrameType.ERROR:
      case FrameType.GOAWAY:
        throw new ProtocolError('HW_ERR_PROTOCOL', `unexpected frame type 0x${frame.type.toString(16)} from a client`);
      default:
        // Unknown frame types are ignored: later versions may add optional frames.
        return;
    }
  };

  private onHandshakeFrame(frame: Frame): void {
    if (frame.type !== FrameType.HELLO) {
      throw new ProtocolError('HW_ERR_PROTOCOL', `the first frame must be HELLO, got type 0x${frame.type.toString(16)}`);
    }
    const { options, codec } = this.host;
    const hello = decodeHello(codec, frame.payload);
    const welcome = negotiate(hello, {
      heartbeatMs: options.heartbeatMs,
      minHeartbeatMs: options.minHeartbeatMs,
      silentMs: options.silentMs,
      maxFrameBytes: options.maxFrameBytes,
      maxCalls: options.maxCallsPerConnection,
    });
    if (options.authenticate === undefined) {
      this.open(hello, welcome);
      return;
    }
    // The connection stays in its handshake (no frame accepted, no call run) until the hook says yes.
    this.authenticating = true;
    void checkAuthentication(options.authenticate, hello, peerInfo(this.sockets)).then((refusal) => {
      if (this.state !== 'handshake') return;
      this.authenticating = false;
      if (refusal === undefined) {
        this.open(hello, welcome);
      } else {
        this.protocolError(new ProtocolError('HW_ERR_UNAUTHENTICATED', 'authentication failed', refusal));
      }
    });
  }

  /** Completes the handshake on the terms chosen: WELCOME, and calls may come. */
  private open(hello: Hello, welcome: Welcome): void {
    const { options, codec } = this.host;
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    if (hello.maxFrameBytes !== undefined) this.peerMaxFrameBytes = hello.maxFrameBytes;
    this.decoder.maxPayloadBytes = options.maxFrameBytes;
    this.liveness = new Liveness({
      heartbeatMs: welcome.heartbeatMs,
      silentMs: welcome.silentMs,
      stallMs: options.stallMs,
    });
    this.timer = new LivenessTimer(this.liveness, serverScheduler, this.onLivenessEffect, writeQueueProbe(this.sockets.tcp));
    this.state = 'open';
    if (options.idleTimeoutMs > 0) {
      this.idleTimer = new IdleTimer(options.idleTimeoutMs, this.onIdle);
      this.idleTimer.restart();
    }
    this.write(FrameType.WELCOME, 0, encodeWelcome(codec, welcome));
  }

  /**
   * Decides from a frame's header whether its payload is read at all: a CALL
   * must fit the params budget (see ParamsBudget), and an unknown type is
   * skipped as it streams past. Every frame before it was already handled.
   */
  private readonly admitFrame = (type: number, stream: number, length: number): boolean => {
    // Before the handshake the 64 KiB frame limit bounds what we hold; after HALF_CLOSE onFrame refuses any frame.
    if (this.state !== 'open' || this.peerHalfCloseAnnounced) return true;
    // A frame skipped unread is as much a sign of life as one delivered: onData counted its bytes.
    return type === FrameType.CALL ? this.admitCall(stream, length) : this.admitOther(type, length);
  };

  private admitOther(type: number, length: number): boolean {
    if (!CONNECTION_FRAME_TYPES.has(type) && !CALL_FRAME_TYPES.has(type)) return false;
    // No other frame a client may send carries more than 4 bytes: do not buffer megabytes only to refuse them.
    if (length > MAX_HANDSHAKE_FRAME_BYTES) {
      throw new ProtocolError('HW_ERR_PROTOCOL', `frame type 0x${type.toString(16)} of ${length} bytes: only a CALL may be that large`);
    }
    return true;
  }

  /** Charges a CALL's payload to the params budget from its header, or refuses the call (ERROR `HW_ERR_OVER_BUDGET`, payload skipped). */
  private admitCall(id: number, length: number): boolean {
    const { options, paramsBudget } = this.host;
    // What onCall refuses for the protocol's sake goes on to it.
    if (id <= this.lastStream || this.calls.size >= options.maxCallsPerConnection || this.host.closing) return true;
    if (this.params.charge(id, length)) return true;
    this.lastStream = id;
    if (++this.overBudgetCalls > options.maxOverBudgetCalls) {
      throw new ProtocolError(
        'HW_ERR_OVER_BUDGET',
        `${this.overBudgetCalls} calls in a row did not fit the params budget: the client does not back off`,
      );
    }
    this.writeCallError(
      id,
      'HW_ERR_OVER_BUDGET',
      `the call's ${length} bytes do not fit the params budget (this connection holds ${this.params.held} of its ` +
        `${paramsBudget.perConnectionBytes}; the server ${paramsBudget.held} of ${paramsBudget.maxBytes}): retry later`,
    );
    return false;
  }

  private onCall(frame: Frame): void {
    // Charged from the header (admitCall); kept by the call if it is taken, given back at once if not.
    const charged = this.params.claim(frame.stream);
    const call = this.takeCall(frame);
    if (call === undefined) {
      this.params.release(charged);
    } else {
      call.paramsBytes = charged;
      this.overBudgetCalls = 0;
    }
  }

  private takeCall(frame: Frame): Call | undefined {
    const id = frame.stream;
    if (id <= this.lastStream) {
      throw new ProtocolError('HW_ERR_PROTOCOL', `call id ${id} is not above the last one (${this.lastStream})`);
    }
    this.lastStream = id;
    const { options, codec } = this.host;
    if (this.calls.size >= options.maxCallsPerConnection) {
      throw new ProtocolError(
        'HW_ERR_TOO_MANY_CALLS',
        `more than ${options.maxCallsPerConnection} calls in flight on one connection`,
      );
    }
    if (this.host.closing) {
      // Never started, so safe to send elsewhere: the code says so.
      this.writeCallError(id, 'HW_ERR_SERVER_CLOSING', 'the server is shutting down and takes no new call');
      return undefined;
    }
    let method: string;
    let params: unknown;
    try {
      ({ method, params } = decodeCall(codec, frame.payload, options.maxMethodLength));
    } catch (err) {
      this.writeCallError(id, (err as PayloadError).code, (err as Error).message);
      return undefined;
    }
    const handler = this.host.lookup(method);
    if (handler === undefined) {
      this.writeCallError(id, 'HW_ERR_UNKNOWN_METHOD', `no handler for method "${method}"`);
      return undefined;
    }
    const call = new Call(this, id, method, this.inputAt);
    this.calls.set(id, call);
    // The early header goes out before any handler of this chunk runs.
    this.write(FrameType.ACCEPTED, id);
    (this.liveness as Liveness).activate(this.inputAt);
    this.timer?.schedule();
    (this.pendingStarts ??= []).push({ call, handler, params });
    return call;
  }

  private onCancel(id: number): void {
    const call = this.calls.get(id);
    // A CANCEL that crossed the call's last frame on the wire is normal: ignore it.
    if (call === undefined) return;
    this.abortCall(call, new AbortReason('HW_ERR_CANCELLED', 'the client cancelled the call'));
  }

  private onPong(payload: Uint8Array): void {
    const seq = decodePingPayload(payload);
    const liveness = this.liveness as Liveness;
    if (!liveness.onPong(seq, this.inputAt)) {
      throw new ProtocolError('HW_ERR_PROTOCOL', `PONG for heartbeat ${seq}, which was never sent`);
    }
  }

  private onEnd(): void {
    this.peerWriteEnded = true;
    if (this.state === 'closed') return;
    if (this.peerHalfCloseAnnounced && this.state === 'open') {
      // The client only closed its sending side, on purpose: its calls go on.
      if (this.calls.size === 0) this.finish(undefined, 'end');
      return;
    }
    this.finish(new AbortReason('HW_ERR_PEER_CLOSED', 'the client closed the connection (FIN)'), 'destroy');
  }

  private readonly afterWrite = (err?: Error | null): void => {
    if (err) {
      this.onConnectionError(err as NodeJS.ErrnoException, true);
      return;
    }
    this.timer?.flushed(this.socket.writableLength);
  };

  private onConnectionError(err: NodeJS.ErrnoException, fromWrite: boolean): void {
    if (this.state === 'closed') return;
    // After the peer's FIN only our writes can find the connection broken, whatever errno they see.
    if (err.code === 'ECONNRESET' && !fromWrite && !this.peerWriteEnded) {
      this.finish(new AbortReason('HW_ERR_PEER_RESET', 'the connection was reset by the client (RST)', { cause: err }), 'destroy');
    } else if (fromWrite || err.code === 'EPIPE' || this.peerWriteEnded) {
      this.finish(new AbortReason('HW_ERR_WRITE_FAILED', `a write to the client failed: ${err.message}`, { cause: err }), 'destroy');
    } else {
      this.finish(new AbortReason('HW_ERR_PEER_RESET', `the connection failed: ${err.message}`, { cause: err }), 'destroy');
    }
  }

  private onClose(): void {
    if (this.state !== 'closed') {
      this.finish(new AbortReason('HW_ERR_PEER_CLOSED', 'the connection closed'), 'destroy');
    }
    this.host.onConnectionClosed(this);
  }

  // ---- calls ------------------------------------------------------------

  private startPending(): void {
    const starts = this.pendingStarts;
    if (starts === undefined) return;
    this.pendingStarts = undefined;
    for (const start of starts) {
      // A call may have been cancelled, or the connection lost, by a later frame of the same chunk.
      if (this.calls.get(start.call.id) !== start.call) continue;
      this.runHandler(start);
    }
  }

  private runHandler({ call, handler, params }: PendingStart): void {
    call.started = true;
    if (channels.callStart.hasSubscribers) {
      channels.callStart.publish({
        method: call.method,
        id: call.id,
        remoteAddress: this.remoteAddress,
        remotePort: this.remotePort,
      });
    }
    let outcome: unknown;
    try {
      outcome = handler(params, call);
    } catch (err) {
      this.fail(call, err);
      return;
    }
    if ((typeof outcome === 'object' && outcome !== null) || typeof outcome === 'function') {
      // Promise.resolve adopts any thenable, and turns a `then` that throws into a rejection.
      Promise.resolve(outcome).then(
        (value) => this.succeed(call, value),
        (err: unknown) => this.fail(call, err),
      );
    } else {
      this.succeed(call, outcome);
    }
  }

  /** @internal For {@link Call.progress}. */
  progress(call: Call, data: unknown): boolean {
    if (this.calls.get(call.id) !== call) return false;
    const payload = this.host.codec.encode(data);
    if (payload.byteLength > this.peerMaxFrameBytes) {
      throw new PayloadError(
        'HW_ERR_ENCODE',
        `progress of ${payload.byteLength} bytes exceeds the client's frame limit of ${this.peerMaxFrameBytes} bytes`,
      );
    }
    return this.write(FrameType.PROGRESS, call.id, payload);
  }

  private succeed(call: Call, value: unknown): void {
    if (this.calls.get(call.id) !== call) return;
    let payload: Uint8Array;
    try {
      payload = this.host.codec.encode(value);
    } catch (err) {
      this.fail(call, err);
      return;
    }
    if (payload.byteLength > this.peerMaxFrameBytes) {
      this.fail(
        call,
        new HeartwireError(
          'HW_ERR_PAYLOAD_TOO_LARGE',
          `result of ${payload.byteLength} bytes exceeds the client's frame limit of ${this.peerMaxFrameBytes} bytes`,
        ),
      );
      return;
    }
    // Written before the call ends: ending the last call of a half-closed client closes the connection.
    this.write(FrameType.RESULT, call.id, payload);
    this.endCall(call, 'result');
  }

  private fail(call: Call, err: unknown): void {
    if (this.calls.get(call.id) !== call) return;
    const code = err instanceof HeartwireError ? err.code : 'HW_ERR_HANDLER';
    this.writeCallError(call.id, code, thrownMessage(err));
    this.endCall(call, 'error');
  }

  private abortCall(call: Call, reason: AbortReason): void {
    if (this.calls.get(call.id) !== call) return;
    this.endCall(call, 'aborted');
    this.publishAbort(call, reason);
    call.controller.abort(reason);
  }

  private endCall(call: Call, outcome: 'result' | 'error' | 'aborted'): void {
    this.calls.delete(call.id);
    this.params.release(call.paramsBytes);
    this.publishEnd(call, outcome);
    if (this.calls.size === 0) this.becameIdle();
  }

  /** No call in flight and none arriving: stop the heartbeats, and close if nothing more can come. */
  private becameIdle(): void {
    if (this.callArriving || this.state !== 'open') return;
    this.liveness?.deactivate();
    this.timer?.schedule();
    // A half-closed client can send no new call: once its last call ended, we are done.
    if (this.peerWriteEnded || this.draining) this.finish(undefined, 'end');
    else this.idleTimer?.restart();
  }

  // A call aborted in the chunk that brought it never ran: observers see neither its start nor its end.
  private publishEnd(call: Call, outcome: 'result' | 'error' | 'aborted'): void {
    if (call.started && channels.callEnd.hasSubscribers) {
      channels.callEnd.publish({
        method: call.method,
        id: call.id,
        remoteAddress: this.remoteAddress,
        remotePort: this.remotePort,
        outcome,
        durationMs: now() - call.startedAt,
      });
    }
  }

  private publishAbort(call: Call, reason: AbortReason): void {
    if (call.started && channels.callAbort.hasSubscribers) {
      channels.callAbort.publish({
        method: call.method,
        id: call.id,
        remoteAddress: this.remoteAddress,
        remotePort: this.remotePort,
        reason,
        at: now(),
      });
    }
  }

  /** No call in flight for idleTimeoutMs: the client is told, and the connection closes. */
  private readonly onIdle = (): void => {
    // A deadline that passed during a call, or while a CALL was still arriving, means nothing: the
    // last call to end (or the arrived CALL, if refused) starts it again.
    if (this.state !== 'open' || this.calls.size > 0 || this.callArriving) return;
    this.writeGoAway('HW_ERR_IDLE_TIMEOUT', `no call in flight for ${this.host.options.idleTimeoutMs} ms`);
    this.finish(undefined, 'end');
  };

  // ---- liveness ---------------------------------------------------------

  private readonly onLivenessEffect = (effect: LivenessEffect): void => {
    if (effect.type === 'ping') {
      this.writePing(FrameType.PING, effect.seq);
      // Out at once: the timer fired outside any input, and a heartbeat has nothing to wait for.
      this.batch.flush();
      return;
    }
    const stalled = effect.verdict === 'stalled';
    const code: AbortCode = stalled ? 'HW_ERR_PEER_STALLED' : 'HW_ERR_PEER_SILENT';
    const message = stalled
      ? 'the client stopped reading: bytes written to it made no progress within the bound'
      : `the client did not answer a heartbeat, and sent no byte, within ${this.host.options.silentMs} ms`;
    this.finish(new AbortReason(code, message), 'reset');
  };

  // ---- output -----------------------------------------------------------

  /**
   * Queues a frame; every frame of this turn of the event loop goes out in
   * one write, right after it (`process.nextTick`). Returns false once the
   * socket's buffer is full, as `socket.write` does.
   */
  private write(type: number, stream: number, payload?: Uint8Array): boolean {
    if (!this.writable()) return false;
    this.batch.push(type, stream, payload);
    return this.socket.writableLength + this.batch.bytes < this.socket.writableHighWaterMark;
  }

  /** Queues a PING or PONG, with no allocation of its own. */
  private writePing(type: number, seq: number): void {
    if (!this.writable()) return;
    this.batch.pushPing(type, seq);
  }

  /** Whether a frame may be queued; past the backlog cap the connection ends instead. */
  private writable(): boolean {
    if (this.state === 'closed' || this.socket.destroyed || !this.socket.writable) return false;
    if (this.socket.writableLength + this.batch.bytes > this.host.options.maxWriteBacklogBytes) {
      this.backlogOverflow();
      return false;
    }
    return true;
  }

  /** @internal Where the batch sends its bytes. */
  writeFrames(chunk: Uint8Array): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(chunk, this.afterWrite);
    this.timer?.wrote(this.socket.writableLength);
  }

  /**
   * The client is too far behind: what it has not taken passed the cap.
   * Deferred, since a write happens in the middle of other work (a call
   * ending, a shutdown walking its calls) that must not see the state change.
   */
  private backlogOverflow(): void {
    const backlog = this.socket.writableLength;
    queueMicrotask(() => {
      const message = `the client is not reading: ${backlog} bytes wait for it, over the ${this.host.options.maxWriteBacklogBytes}-byte cap`;
      this.finish(new AbortReason('HW_ERR_PEER_STALLED', message), 'reset');
    });
  }

  private writeCallError(id: number, code: string, message: string): void {
    const { codec } = this.host;
    let payload = encodeCallError(codec, code, message);
    if (payload.byteLength > this.peerMaxFrameBytes) {
      // The client's limit (>= 1024 bytes) always has room for a code and the start of the message.
      const room = Math.max(0, Math.floor((this.peerMaxFrameBytes - 64 - code.length * 3) / 3));
      payload = encodeCallError(codec, code, `${message.slice(0, room)}…`);
      if (payload.byteLength > this.peerMaxFrameBytes) {
        payload = encodeCallError(codec, 'HW_ERR_PAYLOAD_TOO_LARGE', 'the error does not fit the client\'s frame limit');
      }
    }
    this.write(FrameType.ERROR, id, payload);
  }

  private writeGoAway(code: string, message: string): void {
    this.write(FrameType.GOAWAY, 0, encodeGoAway(this.host.codec, { code, message, lastStream: this.lastStream }));
  }

  private protocolError(err: ProtocolError): void {
    if (this.state === 'closed') return;
    this.writeGoAway(err.code, err.message);
    this.finish(new AbortReason('HW_ERR_PROTOCOL', `protocol error: ${err.message}`, { cause: err }), 'end');
  }

  /**
   * Ends the connection once: aborts every call with `reason`, then closes
   * the socket. `reset` for a peer declared gone (frees the kernel from
   * retrying for minutes), `end` to flush what we wrote, `destroy` when the
   * peer already closed or broke the connection.
   */
  private finish(reason: AbortReason | undefined, how: 'reset' | 'end' | 'destroy'): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.timer?.stop();
    this.idleTimer?.stop();
    this.params.close();
    clearTimeout(this.handshakeTimer);
    this.liveness?.deactivate();
    this.pendingStarts = undefined;
    const calls = [...this.calls.values()];
    this.calls.clear();
    if (reason !== undefined) {
      for (const call of calls) {
        this.publishAbort(call, reason);
        this.publishEnd(call, 'aborted');
        call.controller.abort(reason);
      }
    }
    if (channels.connectionClose.hasSubscribers) {
      channels.connectionClose.publish({
        remoteAddress: this.remoteAddress,
        remotePort: this.remotePort,
        reason,
        at: now(),
      });
    }
    if (how === 'end') this.batch.flush();
    else this.batch.clear();
    closeServerSockets(this.sockets, how);
  }
}
