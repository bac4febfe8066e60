import {
  AbortReason,
  callErrorOf,
  decodeCall,
  encodeCallError,
  FrameType,
  PayloadError,
  type CallRule,
  type Frame,
} from '@heartwire/core';
import { wheelScheduler, type Endpoint } from '@heartwire/endpoint';
import { Call, type CallHost } from '../calls/call.js';
import type { Handler } from '../calls/handler.js';
import { channels } from '../diagnostics.js';
import type { ConnectionHost } from './host.js';
import type { ParamsAccount } from './params-budget.js';

const now = wheelScheduler.now;

/** A handler ready to start once the whole chunk it arrived in was read. */
interface PendingStart {
  readonly call: Call;
  readonly handler: Handler;
  readonly params: unknown;
}

type Outcome = 'result' | 'error' | 'aborted';

/** The connection the calls run on: its address, for their context and the diagnostics, and what it does once none is left. */
interface Peer {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** The last call in flight ended. */
  becameIdle(): void;
}

/**
 * The calls of one server connection: takes each CALL the rules let run,
 * starts its handler once the chunk it came in was read, sends its progress
 * and its outcome, and aborts it when it is cancelled or the connection ends.
 */
export class CallRunner implements CallHost {
  /** The highest call id taken or refused: a new one must be above it. */
  lastId = 0;
  /** Largest payload the client accepts (from its HELLO); undefined when it stated none (any u32 length). */
  peerMaxFrameBytes: number | undefined;
  /** This connection's share of the params budget. */
  readonly params: ParamsAccount;
  /** Calls in flight, oldest first, as a list through the calls themselves: no Map per connection. */
  private first: Call | undefined;
  private last: Call | undefined;
  private count = 0;
  /** Handlers to start once this chunk is read; undefined while none wait (an idle connection holds no array). */
  private pendingStarts: PendingStart[] | undefined;

  constructor(
    private readonly host: ConnectionHost,
    private readonly endpoint: Endpoint,
    private readonly peer: Peer,
  ) {
    this.params = host.paramsBudget.account();
  }

  get remoteAddress(): string | undefined {
    return this.peer.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.peer.remotePort;
  }

  /** Calls in flight. */
  get size(): number {
    return this.count;
  }

  /** Takes a CALL (whose id the rules checked): runs it, or refuses it with an ERROR. True if it runs. */
  take(frame: Frame, rule: Exclude<CallRule, { kind: 'violation' }>, charged = this.params.claim(frame.stream)): boolean {
    const id = frame.stream;
    this.lastId = id;
    // Charged from the header (Connection.admit); kept by the call if it runs, given back at once if not.
    const call = this.start(id, frame.payload, rule);
    if (call === undefined) {
      this.params.release(charged);
      return false;
    }
    call.paramsBytes = charged;
    return true;
  }

  private start(id: number, payload: Uint8Array, rule: Exclude<CallRule, { kind: 'violation' }>): Call | undefined {
    if (rule.kind === 'refuse') {
      // Never started, so safe to send again: the code says so.
      this.writeCallError(id, rule.code, rule.message);
      return undefined;
    }
    const { options, codec } = this.host;
    let method: string;
    let params: unknown;
    try {
      ({ method, params } = decodeCall(codec, payload, options.maxMethodLength));
    } catch (err) {
      this.writeCallError(id, (err as PayloadError).code, (err as Error).message);
      return undefined;
    }
    const handler = this.host.lookup(method);
    if (handler === undefined) {
      this.writeCallError(id, 'HW_ERR_UNKNOWN_METHOD', `no handler for method "${method}"`);
      return undefined;
    }
    const call = new Call(this, id, method, this.endpoint.inputAt);
    this.link(call);
    // The early header goes out before any handler of this chunk runs.
    this.endpoint.write(FrameType.ACCEPTED, id);
    (this.pendingStarts ??= []).push({ call, handler, params });
    return call;
  }

  /** The client cancelled a call; false if none of that id is in flight. */
  cancel(id: number): boolean {
    // A walk of at most maxCallsPerConnection calls, for a frame that ends one of them.
    let call = this.first;
    while (call !== undefined && call.id !== id) call = call.next;
    if (call === undefined) return false;
    this.abort(call, new AbortReason('HW_ERR_CANCELLED', 'the client cancelled the call'));
    return true;
  }

  /** Starts the handlers of the chunk just read. */
  startPending(): void {
    const starts = this.pendingStarts;
    if (starts === undefined) return;
    this.pendingStarts = undefined;
    for (const start of starts) {
      // A call may have been cancelled, or the connection lost, by a later frame of the same chunk.
      if (!start.call.ended) this.run(start);
    }
  }

  private run({ call, handler, params }: PendingStart): void {
    call.started = true;
    if (channels.callStart.hasSubscribers) {
      channels.callStart.publish({ method: call.method, id: call.id, remoteAddress: this.remoteAddress, remotePort: this.remotePort });
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
    if (call.ended) return false;
    const payload = this.host.codec.encode(data);
    if (this.peerMaxFrameBytes !== undefined && payload.byteLength > this.peerMaxFrameBytes) {
      throw new PayloadError('HW_ERR_ENCODE', `progress of ${payload.byteLength} bytes exceeds the client's frame limit of ${this.peerMaxFrameBytes} bytes`);
    }
    return this.endpoint.write(FrameType.PROGRESS, call.id, payload);
  }

  private succeed(call: Call, value: unknown): void {
    if (call.ended) return;
    let payload: Uint8Array;
    try {
      payload = this.host.codec.encode(value);
    } catch (err) {
      this.fail(call, err);
      return;
    }
    if (this.peerMaxFrameBytes !== undefined && payload.byteLength > this.peerMaxFrameBytes) {
      const message = `result of ${payload.byteLength} bytes exceeds the client's frame limit of ${this.peerMaxFrameBytes} bytes`;
      this.fail(call, new PayloadError('HW_ERR_PAYLOAD_TOO_LARGE', message));
      return;
    }
    // Written before the call ends: ending the last call of a half-closed client closes the connection.
    this.endpoint.write(FrameType.RESULT, call.id, payload);
    this.end(call, 'result');
  }

  private fail(call: Call, err: unknown): void {
    if (call.ended) return;
    // A handler cannot send the protocol's own codes (PROTOCOL.md §7): they would promise what it cannot.
    const { code, message } = callErrorOf(err);
    this.writeCallError(call.id, code, message);
    this.end(call, 'error');
  }

  private abort(call: Call, reason: AbortReason): void {
    if (call.ended) return;
    this.end(call, 'aborted');
    publishAbort(this.peer, call, reason);
    call.abort(reason);
  }

  private end(call: Call, outcome: Outcome): void {
    this.unlink(call);
    this.params.release(call.paramsBytes);
    publishEnd(this.peer, call, outcome);
    if (this.count === 0) this.peer.becameIdle();
  }

  private link(call: Call): void {
    call.prev = this.last;
    if (this.last === undefined) this.first = call;
    else this.last.next = call;
    this.last = call;
    this.count++;
  }

  private unlink(call: Call): void {
    call.ended = true;
    if (call.prev === undefined) this.first = call.next;
    else call.prev.next = call.next;
    if (call.next === undefined) this.last = call.prev;
    else call.next.prev = call.prev;
    call.prev = undefined;
    call.next = undefined;
    this.count--;
  }

  /** Shutdown: every call in flight gets an ERROR with the reason's code (the connection's close then aborts them). */
  refuseAll(reason: AbortReason): void {
    for (let call = this.first; call !== undefined; call = call.next) this.writeCallError(call.id, reason.code, reason.message);
  }

  /** The connection closed: every call in flight is aborted with `reason`, or just forgotten if it closed on purpose with none left. */
  abortAll(reason: AbortReason | undefined): void {
    this.params.close();
    this.pendingStarts = undefined;
    const calls: Call[] = [];
    while (this.first !== undefined) {
      calls.push(this.first);
      this.unlink(this.first);
    }
    if (reason === undefined) return;
    for (const call of calls) {
      publishAbort(this.peer, call, reason);
      publishEnd(this.peer, call, 'aborted');
      call.abort(reason);
    }
  }

  /** Sends an ERROR for call `id`, its message cut to fit the client's frame limit. */
  writeCallError(id: number, code: string, message: string): void {
    const { codec } = this.host;
    const limit = this.peerMaxFrameBytes;
    let payload = encodeCallError(codec, code, message);
    if (limit !== undefined && payload.byteLength > limit) {
      // The client's limit (>= 1024 bytes) always has room for a code and the start of the message.
      const room = Math.max(0, Math.floor((limit - 64 - code.length * 3) / 3));
      payload = encodeCallError(codec, code, `${message.slice(0, room)}…`);
      if (payload.byteLength > limit) {
        payload = encodeCallError(codec, 'HW_ERR_PAYLOAD_TOO_LARGE', "the error does not fit the client's frame limit");
      }
    }
    this.endpoint.write(FrameType.ERROR, id, payload);
  }
}

// A call aborted in the chunk that brought it never ran: observers see neither its start nor its end.
function publishEnd(peer: Peer, call: Call, outcome: Outcome): void {
  if (call.started && channels.callEnd.hasSubscribers) {
    channels.callEnd.publish({
      method: call.method,
      id: call.id,
      remoteAddress: peer.remoteAddress,
      remotePort: peer.remotePort,
      outcome,
      durationMs: now() - call.startedAt,
    });
  }
}

function publishAbort(peer: Peer, call: Call, reason: AbortReason): void {
  if (call.started && channels.callAbort.hasSubscribers) {
    channels.callAbort.publish({ method: call.method, id: call.id, remoteAddress: peer.remoteAddress, remotePort: peer.remotePort, reason, at: now() });
  }
}
