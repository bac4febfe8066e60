import type { Socket } from 'node:net';
import {
  encodeGoAway,
  FrameDecoder,
  frameRule,
  FrameType,
  HeartwireError,
  Liveness,
  MAX_HANDSHAKE_FRAME_BYTES,
  PayloadCodec,
  ProtocolError,
  type Frame,
  type FrameReceiver,
  type LivenessOptions,
  type Phase,
  type Role,
} from '@heartwire/core';
import { closeConnection, type CloseMode } from './close.js';
import { FrameBatch, type FrameBatchOptions, type FrameSink } from './frame-batch.js';
import { LivenessTimer, type LivenessDriver, type LivenessEffect } from './liveness-timer.js';
import type { Failure } from './failure.js';
import { wheelScheduler } from './scheduler.js';
import { writeQueueBytes } from './write-queue.js';

const now = wheelScheduler.now;

/** Every output batch flushes right after the current turn, into Node's pooled, unzeroed buffers. */
const BATCH_OPTIONS: FrameBatchOptions = { defer: process.nextTick, allocate: (size) => Buffer.allocUnsafe(size) };

/** A connection's frame stream, and the TCP socket under it (the same object without TLS): only TCP can send an RST. */
export interface EndpointSockets {
  readonly stream: Socket;
  readonly tcp: Socket;
}

/** What one end of a connection (the server's connection, the client) does with what the endpoint reads and decides. */
export interface EndpointRole {
  readonly role: Role;
  /** A frame the rulebook accepted in the current phase. May throw a ProtocolError or RefusalError: the connection then ends with GOAWAY. */
  onFrame(frame: Frame): void;
  /** Every frame of a chunk was handled. */
  onChunkRead(): void;
  /** Whether to read the payload of a frame the rulebook accepted, from its header (the server's params budget). */
  admit(type: number, stream: number, length: number): boolean;
  /** The peer sent FIN. */
  onPeerEnd(): void;
  /** The error a failure ends the connection with, in the role's own codes. */
  failure(failure: Failure): HeartwireError;
  /** The `lastStream` of a GOAWAY this end sends. */
  readonly lastStream: number;
  /** The connection is closed: once, with the error that ended it, or undefined when this end closed it on purpose. */
  onClosed(reason: HeartwireError | undefined): void;
  /** The socket closed (after onClosed). */
  onSocketClosed(): void;
  /** The idle deadline (`idleMs` of {@link Endpoint.startLiveness}) passed with no call in flight. */
  onIdleTimeout?(): void;
}

/** Limits of an endpoint. */
export interface EndpointLimits {
  /** Largest payload read once the handshake is done; before, the pre-handshake limit (64 KiB) holds (PROTOCOL.md §1). */
  readonly maxFrameBytes: number;
  /** What may wait unsent before the peer counts as stalled. */
  readonly maxWriteBacklogBytes: number;
}

const kEndpoint = Symbol('heartwire.endpoint');
type OwnedSocket = Socket & { [kEndpoint]: Endpoint };

/**
 * The Node side of one end of a connection, the same for server and client:
 * reads every byte as it arrives (so FIN and RST are seen at once), checks
 * each frame against the rulebook, batches writes, runs the liveness rules,
 * judges a stalled peer (by time and by backlog, in one place), maps socket
 * errors, and closes exactly once.
 */
export class Endpoint implements FrameSink, FrameReceiver, LivenessDriver {
  /** The lifecycle state the rulebook judges frames by; the role moves it on. */
  phase: Phase = 'handshake';
  /** When the chunk being read arrived: one clock read per chunk, not per frame. */
  inputAt = 0;
  private readonly decoder: FrameDecoder;
  private readonly batch = new FrameBatch(this, BATCH_OPTIONS);
  private liveness: Liveness | undefined;
  private timer: LivenessTimer | undefined;
  private peerEnded = false;
  /** Frames that arrived after HELLO while the server authenticates: handled in order once it opens. */
  private held: Frame[] | undefined;

  constructor(
    private readonly sockets: EndpointSockets,
    private readonly limits: EndpointLimits,
    private readonly codec: PayloadCodec,
    private readonly owner: EndpointRole,
  ) {
    this.decoder = new FrameDecoder({ maxPayloadBytes: MAX_HANDSHAKE_FRAME_BYTES });
    const socket = sockets.stream as OwnedSocket;
    socket[kEndpoint] = this;
    socket.on('data', Endpoint.onSocketData);
    socket.on('end', Endpoint.onSocketEnd);
    socket.on('error', Endpoint.onSocketError);
    socket.on('close', Endpoint.onSocketClose);
  }

  /** The frame stream (the TLS socket under TLS). */
  private get socket(): Socket {
    return this.sockets.stream;
  }

  /** The handshake is done (or HELLO was read): frames up to `maxFrameBytes` may come from the next header on. */
  raiseFrameLimit(): void {
    this.decoder.maxPayloadBytes = this.limits.maxFrameBytes;
  }

  /** Whether the connection ended (a getter: a check after a callback must not be narrowed away by the compiler). */
  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** The type of a frame whose payload is still arriving, if any. */
  get arrivingType(): number | undefined {
    return this.decoder.arrivingType;
  }

  // ---- input ------------------------------------------------------------

  // Shared by every socket (`this` is the socket): an endpoint holds no listener closures.
  private static onSocketData(this: OwnedSocket, chunk: Buffer): void {
    this[kEndpoint].onData(chunk);
  }

  private static onSocketEnd(this: OwnedSocket): void {
    const endpoint = this[kEndpoint];
    endpoint.peerEnded = true;
    if (endpoint.phase !== 'closed') endpoint.owner.onPeerEnd();
  }

  private static onSocketError(this: OwnedSocket, err: NodeJS.ErrnoException): void {
    this[kEndpoint].onError(err, false);
  }

  private static onSocketClose(this: OwnedSocket): void {
    const endpoint = this[kEndpoint];
    if (endpoint.phase !== 'closed') endpoint.close(endpoint.owner.failure({ kind: 'closed' }), 'destroy');
    endpoint.owner.onSocketClosed();
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.inputAt = now();
    // Any byte is a sign of life, a part of a frame too: a PONG may wait behind megabytes.
    this.liveness?.onInbound(this.inputAt);
    try {
      this.decoder.read(chunk, this);
    } catch (err) {
      // Anything a peer's bytes can make us throw closes this connection only, never the process.
      this.endWith(err);
      return;
    }
    if (!this.closed) this.owner.onChunkRead();
  }

  /** The rulebook (FrameReceiver), from each frame's header: a violation throws, an ignored frame is skipped unread. */
  admit(type: number, stream: number, length: number): boolean {
    const rule = frameRule(this.owner.role, this.phase, type, stream, length);
    if (rule.kind === 'violation') throw rule.error;
    if (rule.kind === 'ignore') return false;
    // A held frame is admitted too: what it will hold is charged now, from its header.
    return this.owner.admit(type, stream, length);
  }

  /** A frame the rulebook let through (FrameReceiver). */
  onFrame(frame: Frame): void {
    if (this.phase === 'closed') return;
    if (this.phase === 'authenticating') {
      // Nothing more is read until the hook answers: what this chunk holds is all that can wait here.
      if (this.held === undefined) {
        this.held = [];
        this.socket.pause();
      }
      // A copy: the chunk the payload lies in is not ours to keep beyond this read.
      this.held.push({ ...frame, payload: frame.payload.slice() });
      return;
    }
    this.owner.onFrame(frame);
  }

  /** The handshake completed: handles the frames that waited for it, in order, then reads on. */
  releaseHeld(): void {
    const held = this.held;
    this.held = undefined;
    if (held === undefined) return;
    try {
      for (const frame of held) this.onFrame(frame);
    } catch (err) {
      this.endWith(err);
      return;
    }
    if (this.closed) return;
    this.owner.onChunkRead();
    this.socket.resume();
  }

  /**
   * Ends the connection with a GOAWAY carrying `err`'s code, then closes: the
   * peer broke the protocol, was refused, or went past a limit. Anything
   * else thrown while reading counts as `HW_ERR_PROTOCOL`.
   */
  endWith(err: unknown): void {
    if (this.phase === 'closed') return;
    const error =
      err instanceof HeartwireError && err.code.startsWith('HW_ERR_')
        ? err
        : new ProtocolError('HW_ERR_PROTOCOL', `bad input: ${(err as Error).message}`, { cause: err });
    this.goAway(error.code, error.message);
    this.close(this.owner.failure({ kind: 'goaway', error }), 'end');
  }

  private onError(err: NodeJS.ErrnoException, fromWrite: boolean): void {
    if (this.phase === 'closed') return;
    // After the peer's FIN only our writes can find the connection broken, whatever errno they see.
    const kind: 'reset' | 'write-failed' | 'failed' =
      err.code === 'ECONNRESET' && !fromWrite && !this.peerEnded
        ? 'reset'
        : fromWrite || err.code === 'EPIPE' || this.peerEnded
          ? 'write-failed'
          : 'failed';
    this.close(this.owner.failure({ kind, cause: err } as Failure), 'destroy');
  }

  // ---- liveness ---------------------------------------------------------

  /** Starts the liveness rules on the terms of the handshake, and with `idleMs` the idle deadline, from now. */
  startLiveness(options: LivenessOptions): void {
    this.liveness = new Liveness(options);
    this.timer = new LivenessTimer(this.liveness, wheelScheduler, this);
    this.liveness.startIdle(now());
    this.timer.schedule();
  }

  /** A PONG arrived for heartbeat `seq`: false if no such PING was sent (a violation). */
  onPong(seq: number): boolean {
    return this.liveness !== undefined && this.liveness.onPong(seq, this.inputAt);
  }

  /** The peer sent HALF_CLOSE: it can answer no PING any more, so only its reading is judged. */
  peerWriteClosed(): void {
    this.liveness?.onPeerWriteClosed();
  }

  /** Calls are in flight (`at` when the first began), or none is: heartbeats and verdicts run only while some are. */
  setBusy(busy: boolean, at = this.inputAt): void {
    if (this.liveness === undefined) return;
    if (busy) this.liveness.activate(at);
    else this.liveness.deactivate(now());
    this.timer?.schedule();
  }

  /** What the liveness rules decided (LivenessDriver). */
  onLivenessEffect(effect: LivenessEffect): void {
    if (effect.type === 'idle') {
      this.owner.onIdleTimeout?.();
      return;
    }
    if (effect.type === 'ping') {
      // A client that sent HALF_CLOSE sends nothing more, its own PINGs included.
      if (this.owner.role === 'client' && this.phase === 'half-closed') return;
      this.writePing(FrameType.PING, effect.seq);
      // Out at once: the timer fired outside any input, and a heartbeat has nothing to wait for.
      this.batch.flush();
      return;
    }
    this.close(this.owner.failure({ kind: effect.verdict }), 'reset');
  }

  /** Bytes of the writes in progress that wait for the kernel (LivenessDriver; see writeQueueBytes). */
  writeQueueBytes(): number {
    return writeQueueBytes(this.sockets.tcp);
  }

  // ---- output -----------------------------------------------------------

  /**
   * Queues a frame; the frames of this turn of the event loop go out right
   * after it, in one write per EARLY_FLUSH_BYTES or so. Returns false once
   * the socket's buffer is full, as `socket.write` does.
   */
  write(type: number, stream: number, payload?: Uint8Array): boolean {
    if (!this.writable()) return false;
    this.batch.push(type, stream, payload);
    return this.socket.writableLength + this.batch.bytes < this.socket.writableHighWaterMark;
  }

  /** Queues a PING or PONG, with no allocation of its own. */
  writePing(type: number, seq: number): void {
    if (this.writable()) this.batch.pushPing(type, seq);
  }

  /** Queues a GOAWAY. */
  goAway(code: string, message: string): void {
    this.write(FrameType.GOAWAY, 0, encodeGoAway(this.codec, { code, message, lastStream: this.owner.lastStream }));
  }

  /** Sends what this turn queued now, not after it. */
  flush(): void {
    this.batch.flush();
  }

  /** Whether a frame may be queued; past the backlog cap the peer counts as stalled and the connection ends instead. */
  private writable(): boolean {
    if (this.phase === 'closed' || this.socket.destroyed || !this.socket.writable) return false;
    const backlog = this.socket.writableLength + this.batch.bytes;
    if (backlog > this.limits.maxWriteBacklogBytes) {
      // Deferred: a write happens in the middle of other work (a call ending, a shutdown walking its calls).
      queueMicrotask(() => this.close(this.owner.failure({ kind: 'stalled', backlogBytes: backlog }), 'reset'));
      return false;
    }
    return true;
  }

  /** Where the batch sends its bytes (FrameSink). */
  writeFrames(chunk: Uint8Array): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    // A callback per write, not one kept per connection: it lives only while its write is in progress.
    this.socket.write(chunk, (err?: Error | null) => this.afterWrite(err));
    this.liveness?.onOutbound(now());
    this.timer?.wrote(this.socket.writableLength);
  }

  private afterWrite(err: Error | null | undefined): void {
    if (err) {
      this.onError(err as NodeJS.ErrnoException, true);
      return;
    }
    this.timer?.flushed(this.socket.writableLength);
  }

  /** Closes our sending side after what is queued (FIN): the peer's calls go on. */
  endOutput(): void {
    this.batch.flush();
    this.socket.end();
  }

  /**
   * Ends the connection once: the socket is closed (`reset` for a peer
   * declared gone, `end` to flush what we wrote, `destroy` when the peer
   * already closed or broke it), then the role hears why.
   */
  close(reason: HeartwireError | undefined, mode: CloseMode): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.timer?.stop();
    this.liveness?.deactivate(now());
    this.held = undefined;
    // The FIN or RST goes out first: it is what tells the peer.
    if (mode === 'end') this.batch.flush();
    else this.batch.clear();
    closeConnection(this.sockets, mode);
    this.owner.onClosed(reason);
  }
}
