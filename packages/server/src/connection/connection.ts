import {
  AbortReason,
  callRule,
  decodeGoAway,
  decodeHello,
  decodePingPayload,
  encodeWelcome,
  FrameType,
  negotiate,
  ProtocolError,
  RefusalError,
  type AbortCode,
  unknownCallViolation,
  type Frame,
  type Hello,
  type HeartwireError,
  type ServerPhase,
  type Welcome,
} from '@heartwire/core';
import { Endpoint, wheelScheduler, type EndpointRole, type Failure } from '@heartwire/endpoint';
import { channels } from '../diagnostics.js';
import type { AcceptedSockets } from '../listen/listener.js';
import { checkAuthentication, peerInfo } from './auth.js';
import { CallRunner } from './call-runner.js';
import type { ConnectionHost } from './host.js';

const now = wheelScheduler.now;

/**
 * The server's end of one connection: the handshake, the calls, and the
 * lifecycle (one {@link ServerPhase}), on an {@link Endpoint} that reads
 * every byte as it arrives (so FIN and RST are seen at once, whatever the
 * handlers do), sends the early header and heartbeats, and applies the
 * liveness verdicts.
 */
export class Connection implements EndpointRole {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  private readonly endpoint: Endpoint;
  private readonly runner: CallRunner;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** The payload of a CALL is still arriving (see watchArrivingCall). */
  private callArriving = false;
  /** Calls refused over the params budget since the last one taken. */
  private overBudgetCalls = 0;
  /** What each CALL sent before WELCOME was charged while the auth hook ran (see admit); none once open. */
  private heldCharges: Map<number, number> | undefined;

  constructor(
    private readonly sockets: AcceptedSockets,
    private readonly host: ConnectionHost,
  ) {
    const { options } = host;
    const socket = sockets.stream;
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    socket.setNoDelay(true);
    this.endpoint = new Endpoint(sockets, options, host.codec, this);
    this.runner = new CallRunner(host, this.endpoint, this);
    // From TCP accept: a TLS handshake already spent part of the time.
    const remaining = Math.max(0, sockets.acceptedAt + options.handshakeTimeoutMs - now());
    this.handshakeTimer = setTimeout(Connection.onHandshakeTimeout, remaining, this);
  }

  // Shared by every connection, which it gets as an argument: a connection holds no closure for it.
  private static onHandshakeTimeout(connection: Connection): void {
    const { handshakeTimeoutMs } = connection.host.options;
    connection.endpoint.endWith(new RefusalError('HW_ERR_HANDSHAKE_TIMEOUT', `no complete handshake within ${handshakeTimeoutMs} ms`));
  }

  get role(): 'server' {
    return 'server';
  }

  private get phase(): ServerPhase {
    return this.endpoint.phase as ServerPhase;
  }

  /** The `lastStream` of our GOAWAY: the highest call id this connection took or refused. */
  get lastStream(): number {
    return this.runner.lastId;
  }

  /** Server shutdown: abort every call, tell the client (unless {@link drain} already did), close. */
  shutdown(): void {
    if (this.phase === 'closed') return;
    const reason = new AbortReason('HW_ERR_SERVER_SHUTDOWN', 'the server is shutting down');
    this.runner.refuseAll(reason);
    if (this.phase !== 'draining') this.endpoint.goAway(reason.code, reason.message);
    this.endpoint.close(reason, 'end');
  }

  /**
   * Graceful shutdown: GOAWAY now; calls in flight go on and deliver their
   * results, new ones are refused (`HW_ERR_SERVER_CLOSING`); the connection
   * closes once the last call ended. A connection still in its handshake has
   * nothing to finish and is shut down at once; one whose client half-closed
   * ends with its last call already.
   */
  drain(): void {
    if (this.phase === 'draining' || this.phase === 'half-closed') return;
    if (this.phase !== 'open') {
      this.shutdown();
      return;
    }
    this.endpoint.phase = 'draining';
    this.endpoint.goAway('HW_ERR_SERVER_SHUTDOWN', 'the server is shutting down: calls in flight may finish, new ones go elsewhere');
    this.becameIdle();
  }

  // ---- frames (the rulebook has let each one through) --------------------

  onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.HELLO:
        this.onHello(frame.payload);
        return;
      case FrameType.CALL:
        this.onCall(frame);
        return;
      case FrameType.CANCEL: {
        // A CANCEL for a call that ended crossed its last frame on the wire; one for an id never used is a violation.
        const violation = this.runner.cancel(frame.stream) ? undefined : unknownCallViolation(frame.stream, this.runner.lastId, 'CANCEL');
        if (violation !== undefined) throw violation;
        return;
      }
      case FrameType.PONG:
        this.onPong(frame.payload);
        return;
      case FrameType.PING:
        // Either side may PING; the answer echoes the sequence number.
        this.endpoint.writePing(FrameType.PONG, decodePingPayload(frame.payload));
        return;
      case FrameType.HALF_CLOSE:
        this.onHalfClose();
        return;
      case FrameType.GOAWAY: {
        const body = decodeGoAway(this.host.codec, frame.payload);
        const message = `the client closed the connection with GOAWAY ${body.code}: ${body.message}`;
        this.endpoint.close(new AbortReason('HW_ERR_PEER_CLOSED', message), 'end');
        return;
      }
    }
  }

  onChunkRead(): void {
    this.watchArrivingCall();
    // The early headers go out before any handler of this chunk runs; what the handlers write follows in one more write.
    this.endpoint.flush();
    this.runner.startPending();
  }

  private onHello(payload: Uint8Array): void {
    const { options, codec } = this.host;
    const hello = decodeHello(codec, payload);
    const welcome = negotiate(hello, {
      heartbeatMs: options.heartbeatMs,
      minHeartbeatMs: options.minHeartbeatMs,
      silentMs: options.silentMs,
      maxFrameBytes: options.maxFrameBytes,
      maxCalls: options.maxCallsPerConnection,
    });
    // Frames after HELLO may come before WELCOME (PROTOCOL.md §3): they are judged by the frame limit WELCOME announces.
    this.endpoint.raiseFrameLimit();
    if (options.authenticate === undefined) {
      this.open(hello, welcome);
      return;
    }
    // No frame after HELLO is handled, and no call runs, until the hook says yes: they wait in the endpoint.
    this.endpoint.phase = 'authenticating';
    void checkAuthentication(options.authenticate, hello, peerInfo(this.sockets)).then((refusal) => {
      if (this.phase !== 'authenticating') return;
      if (refusal !== undefined) {
        this.endpoint.endWith(new RefusalError('HW_ERR_UNAUTHENTICATED', 'authentication failed', refusal));
        return;
      }
      this.open(hello, welcome);
      this.endpoint.releaseHeld();
    });
  }

  /** Completes the handshake on the terms chosen: WELCOME, and calls may come. */
  private open(hello: Hello, welcome: Welcome): void {
    const { options, codec } = this.host;
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    if (hello.maxFrameBytes !== undefined) this.runner.peerMaxFrameBytes = hello.maxFrameBytes;
    // One timer per connection: the heartbeats while calls run, the idle deadline (from now, and from the end of each last call) between them.
    const { heartbeatMs, silentMs } = welcome;
    this.endpoint.startLiveness({ heartbeatMs, silentMs, stallMs: options.stallMs, idleMs: options.idleTimeoutMs });
    this.endpoint.phase = 'open';
    this.endpoint.write(FrameType.WELCOME, 0, encodeWelcome(codec, welcome));
  }

  /** Charges a CALL's payload to the params budget from its header, or refuses the call (ERROR `HW_ERR_OVER_BUDGET`, payload skipped). */
  admit(type: number, stream: number, length: number): boolean {
    if (type !== FrameType.CALL) return true;
    if (this.phase === 'authenticating') return this.admitHeldCall(stream, length);
    if (this.phase !== 'open') return true;
    const { options, paramsBudget } = this.host;
    // What the call rules refuse goes on to onCall, which refuses it.
    if (callRule(this.phase, stream, this.runner.lastId, this.runner.size, options.maxCallsPerConnection).kind !== 'run') return true;
    if (this.runner.params.charge(stream, length)) return true;
    this.runner.lastId = stream;
    if (++this.overBudgetCalls > options.maxOverBudgetCalls) {
      throw new RefusalError('HW_ERR_OVER_BUDGET', `${this.overBudgetCalls} calls in a row did not fit the params budget: the client does not back off`);
    }
    const { params } = this.runner;
    this.runner.writeCallError(
      stream,
      'HW_ERR_OVER_BUDGET',
      `the call's ${length} bytes do not fit the params budget (this connection holds ${params.held} of its ` +
        `${paramsBudget.perConnectionBytes}; the server ${paramsBudget.held} of ${paramsBudget.maxBytes}): retry later`,
    );
    return false;
  }

  /**
   * A CALL sent before WELCOME waits for the auth hook, but is charged to the
   * params budget now, from its header: a stranger's pipelined CALLs are
   * bounded like any other. One that does not fit refuses the connection
   * (no ERROR may come before WELCOME).
   */
  private admitHeldCall(stream: number, length: number): boolean {
    const { params } = this.runner;
    if (!params.charge(stream, length)) {
      throw new RefusalError('HW_ERR_OVER_BUDGET', `a CALL of ${length} bytes sent before WELCOME does not fit the params budget`);
    }
    (this.heldCharges ??= new Map()).set(stream, params.claim(stream));
    return true;
  }

  private onCall(frame: Frame): void {
    const rule = callRule(this.phase, frame.stream, this.runner.lastId, this.runner.size, this.host.options.maxCallsPerConnection);
    if (rule.kind === 'violation') throw rule.error;
    const held = this.heldCharges?.get(frame.stream);
    if (held !== undefined) this.heldCharges?.delete(frame.stream);
    if (this.runner.take(frame, rule, held)) {
      this.overBudgetCalls = 0;
      this.endpoint.setBusy(true);
    }
  }

  /**
   * A call is in flight for the client from the moment it wrote its CALL: while a large CALL is
   * still arriving (a minute, for 4 MiB at 64 KiB/s), the heartbeats run as for a call, so that the
   * client hears from us and we judge it (PROTOCOL.md §5).
   */
  private watchArrivingCall(): void {
    const arriving = this.endpoint.arrivingType === FrameType.CALL;
    if (arriving === this.callArriving || this.phase !== 'open') return;
    this.callArriving = arriving;
    if (arriving) this.endpoint.setBusy(true);
    else this.becameIdle(); // it arrived and was refused, or ran and ended already
  }

  private onPong(payload: Uint8Array): void {
    const seq = decodePingPayload(payload);
    if (!this.endpoint.onPong(seq)) {
      throw new ProtocolError('HW_ERR_PROTOCOL', `PONG for heartbeat ${seq}, which was never sent`);
    }
  }

  /** The client will send nothing more, PONGs included: only its reading can still be judged, and the connection ends with its last call. */
  private onHalfClose(): void {
    this.endpoint.phase = 'half-closed';
    this.endpoint.peerWriteClosed();
    this.becameIdle();
  }

  onPeerEnd(): void {
    // A FIN after HALF_CLOSE was announced: the calls go on (becameIdle closed the connection already if none is left).
    if (this.phase === 'half-closed') return;
    this.endpoint.close(new AbortReason('HW_ERR_PEER_CLOSED', 'the client closed the connection (FIN)'), 'destroy');
  }

  /** No call in flight and none arriving: stop the heartbeats, and close if nothing more can come. */
  becameIdle(): void {
    if (this.callArriving || this.runner.size > 0) return;
    const { phase } = this;
    if (phase === 'half-closed' || phase === 'draining') {
      this.endpoint.close(undefined, 'end');
      return;
    }
    if (phase !== 'open') return;
    this.endpoint.setBusy(false);
  }

  /** No call in flight for idleTimeoutMs: the client is told, and the connection closes. */
  onIdleTimeout(): void {
    // A deadline that passed during a call, or while a CALL was still arriving, means nothing: the
    // last call to end (or the arrived CALL, if refused) starts it again.
    if (this.phase !== 'open' || this.runner.size > 0 || this.callArriving) return;
    this.endpoint.endWith(new RefusalError('HW_ERR_IDLE_TIMEOUT', `no call in flight for ${this.host.options.idleTimeoutMs} ms`));
  }

  // ---- the end ------------------------------------------------------------

  failure(failure: Failure): HeartwireError {
    switch (failure.kind) {
      case 'reset':
        return new AbortReason('HW_ERR_PEER_RESET', 'the connection was reset by the client (RST)', { cause: failure.cause });
      case 'write-failed':
        return new AbortReason('HW_ERR_WRITE_FAILED', `a write to the client failed: ${failure.cause.message}`, { cause: failure.cause });
      case 'failed':
        return new AbortReason('HW_ERR_PEER_RESET', `the connection failed: ${failure.cause.message}`, { cause: failure.cause });
      case 'closed':
        return new AbortReason('HW_ERR_PEER_CLOSED', 'the connection closed');
      case 'silent':
        return new AbortReason('HW_ERR_PEER_SILENT', `the client did not answer a heartbeat, and sent no byte, within ${this.host.options.silentMs} ms`);
      case 'stalled':
        return new AbortReason(
          'HW_ERR_PEER_STALLED',
          failure.backlogBytes === undefined
            ? 'the client stopped reading: bytes written to it made no progress within the bound'
            : `the client is not reading: ${failure.backlogBytes} bytes wait for it, over the ${this.host.options.maxWriteBacklogBytes}-byte cap`,
        );
      case 'goaway':
        // The connection's verdict keeps its code: jobs and observers see what the client's GOAWAY says.
        return new AbortReason(failure.error.code as AbortCode, failure.error.message, { cause: failure.error });
    }
  }

  onClosed(reason: HeartwireError | undefined): void {
    clearTimeout(this.handshakeTimer);
    this.runner.abortAll(reason as AbortReason | undefined);
    if (channels.connectionClose.hasSubscribers) {
      channels.connectionClose.publish({ remoteAddress: this.remoteAddress, remotePort: this.remotePort, reason, at: now() });
    }
  }

  onSocketClosed(): void {
    this.host.onConnectionClosed(this);
  }
}
