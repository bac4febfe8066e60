import {
  AbortedError,
  decodeCallError,
  FrameType,
  RemoteError,
  unknownCallViolation,
  type Frame,
  type HeartwireError,
  type PayloadCodec,
} from '@heartwire/core';
import { wheelScheduler, type Endpoint } from '@heartwire/endpoint';
import type { PendingCall } from './call.js';
import { channels } from './diagnostics.js';

const now = wheelScheduler.now;

/** What decodeFor returns for a payload that could not be decoded (a decoded value is never this). */
const UNDECODABLE = Symbol('undecodable');

/** Where the calls go: the server's address, for the diagnostics. */
interface Target {
  readonly host: string;
  readonly port: number;
}

/**
 * The calls of one client connection: sends each once a slot is free (the
 * server's `maxCalls`), delivers its ACCEPTED, PROGRESS, RESULT or ERROR,
 * and cancels it when its signal aborts or a callback throws.
 */
export class ClientCalls {
  /** Calls in flight the server has, by id. */
  private readonly calls = new Map<number, PendingCall>();
  /** Calls waiting for a slot. */
  private readonly waiting: PendingCall[] = [];
  private nextId = 1;
  /** WELCOME's maxCalls, once known. */
  maxCalls = 1;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly codec: PayloadCodec,
    private readonly target: Target,
    /** A call ended: the connection may be done (after end()). */
    private readonly onSettled: () => void,
  ) {}

  get size(): number {
    return this.calls.size;
  }

  /** Sends a call, or queues it until a slot frees; its signal, if any, aborts it. */
  start(call: PendingCall): void {
    const { signal } = call.options;
    if (signal !== undefined) {
      call.onAbort = () => this.abort(call, signal.reason);
      signal.addEventListener('abort', call.onAbort, { once: true });
    }
    if (this.calls.size < this.maxCalls) this.send(call);
    else this.waiting.push(call);
  }

  private send(call: PendingCall): void {
    call.id = this.nextId++;
    call.sentAt = now();
    this.calls.set(call.id, call);
    this.endpoint.write(FrameType.CALL, call.id, call.payload);
    // The batch holds it until the write; a long call must not keep its slice of a shared buffer.
    call.payload = undefined;
    // The liveness rules start with the first call in flight; the others change nothing for them.
    if (this.calls.size === 1) this.endpoint.setBusy(true, call.sentAt);
    if (channels.callStart.hasSubscribers) {
      channels.callStart.publish({ method: call.method, id: call.id, host: this.target.host, port: this.target.port });
    }
  }

  private abort(call: PendingCall, reason: unknown): void {
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
    } else if (this.endpoint.phase === 'open' || this.endpoint.phase === 'draining') {
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
      const { host, port } = this.target;
      const outcome = error === undefined ? 'result' : 'error';
      channels.callEnd.publish({ method: call.method, id: call.id, host, port, outcome, error, durationMs: now() - call.sentAt });
    }
    if (this.calls.size === 0) this.endpoint.setBusy(false);
    const next = this.endpoint.phase === 'open' ? this.waiting.shift() : undefined;
    if (next !== undefined) this.send(next);
    this.onSettled();
  }

  /** Rejects the calls still waiting for a slot. */
  rejectWaiting(error: HeartwireError): void {
    for (const call of this.waiting.splice(0)) {
      this.settle(call);
      call.reject(error);
    }
  }

  /** A GOAWAY: the calls above its lastStream never reached a handler. */
  rejectAbove(lastStream: number, error: HeartwireError): void {
    this.rejectWaiting(error);
    for (const call of [...this.calls.values()]) {
      if (call.id > lastStream) {
        this.settle(call, error);
        call.reject(error);
      }
    }
  }

  /** The connection closed: every call, sent or waiting, rejects with `error`. */
  rejectAll(error: unknown): void {
    for (const call of [...this.waiting.splice(0), ...this.calls.values()]) {
      this.settle(call, error);
      call.reject(error);
    }
  }

  /** ACCEPTED, PROGRESS, RESULT or ERROR for a call. */
  onFrame(frame: Frame): void {
    const call = this.calls.get(frame.stream);
    if (call === undefined) {
      // A frame for a call we cancelled crossed our CANCEL; one for an id we never sent is a violation.
      const violation = unknownCallViolation(frame.stream, this.nextId - 1, `frame type 0x${frame.type.toString(16)}`);
      if (violation !== undefined) throw violation;
      return;
    }
    switch (frame.type) {
      case FrameType.ACCEPTED:
        this.markAccepted(call);
        return;
      case FrameType.PROGRESS: {
        // PROGRESS, RESULT and ERROR each stand for ACCEPTED if it has not come.
        const data = this.decodeFor(call, frame.payload);
        if (data === UNDECODABLE || !this.markAccepted(call)) return;
        try {
          call.options.onProgress?.(data);
        } catch (err) {
          this.cancelWith(call, err);
        }
        return;
      }
      case FrameType.RESULT: {
        const data = this.decodeFor(call, frame.payload);
        if (data === UNDECODABLE) return;
        this.settle(call);
        this.markAccepted(call);
        call.resolve(data);
        return;
      }
      case FrameType.ERROR: {
        const body = decodeCallError(this.codec, frame.payload);
        const error = new RemoteError(body.code, body.message);
        this.settle(call, error);
        this.markAccepted(call);
        call.reject(error);
        return;
      }
    }
  }

  /**
   * Runs the call's onAccepted once. If it throws, the call is cancelled and
   * rejects with what it threw (unless it already ended): false then.
   */
  private markAccepted(call: PendingCall): boolean {
    if (call.accepted) return true;
    call.accepted = true;
    const { onAccepted } = call.options;
    if (onAccepted === undefined) return true;
    try {
      onAccepted();
      return true;
    } catch (err) {
      this.cancelWith(call, err);
      return false;
    }
  }

  /** Decodes a payload for one call; a bad payload fails that call only (HW_ERR_BAD_PAYLOAD) and cancels it. */
  private decodeFor(call: PendingCall, payload: Uint8Array): unknown {
    try {
      return this.codec.decode(payload);
    } catch (err) {
      this.cancelWith(call, err);
      return UNDECODABLE;
    }
  }
}
