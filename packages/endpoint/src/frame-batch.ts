import { checkStreamId, FRAME_HEADER_BYTES, PING_PAYLOAD_BYTES } from '@heartwire/core';

/**
 * A payload at least this large goes out as its own buffer rather than being
 * copied into the batch: one more write costs less than copying it.
 */
export const LARGE_PAYLOAD_BYTES = 16 * 1024;

/**
 * A batch that reaches this many bytes goes out at once instead of at the end
 * of the turn. With many calls in flight on one connection, a whole turn's
 * frames in one write make the two ends take turns: the peer waits while this
 * side encodes the last of them. A few writes per turn let it start on the
 * first ones meanwhile. (Set from bench:rate; see the README.)
 */
export const EARLY_FLUSH_BYTES = 2048;

/** No sequence number: the frame carries `payloads[i]`. */
const NO_SEQ = -1;

/** Where a {@link FrameBatch} sends its bytes. */
export interface FrameSink {
  /** Takes one buffer of whole frames; it is the sink's to keep (a socket write). */
  writeFrames(chunk: Uint8Array): void;
}

/** How a {@link FrameBatch} defers its flush and gets its buffers; one object can serve every batch. */
export interface FrameBatchOptions {
  /** Runs `flush(batch)` once the current turn of work is done (Node: `process.nextTick`, which passes the argument on). */
  defer(flush: (batch: FrameBatch) => void, batch: FrameBatch): void;
  /** A buffer of `size` bytes the batch fills and gives away. Defaults to a new Uint8Array; Node adapters pass `Buffer.allocUnsafe`. */
  allocate?(size: number): Uint8Array;
}

const newUint8Array = (size: number): Uint8Array => new Uint8Array(size);

/**
 * The frames of one batch, as parallel arrays. Only a batch with frames
 * waiting holds one: it comes from a shared pool and goes back at the flush,
 * so an idle connection pays nothing for it and a busy one allocates nothing.
 */
class Queue {
  readonly types: number[] = [];
  readonly streams: number[] = [];
  readonly payloads: (Uint8Array | undefined)[] = [];
  /** A PING/PONG sequence number, or NO_SEQ when the frame carries `payloads[i]`. */
  readonly seqs: number[] = [];
  count = 0;

  add(type: number, stream: number, payload: Uint8Array | undefined, seq: number): void {
    const i = this.count++;
    this.types[i] = type;
    this.streams[i] = stream;
    this.payloads[i] = payload;
    this.seqs[i] = seq;
  }

  payloadLength(i: number): number {
    if (this.seqs[i] !== NO_SEQ) return PING_PAYLOAD_BYTES;
    const payload = this.payloads[i];
    return payload === undefined ? 0 : payload.byteLength;
  }

  /** Forgets the frames (and lets go of their payloads) but keeps the arrays' room. */
  reset(): void {
    for (let i = 0; i < this.count; i++) this.payloads[i] = undefined;
    this.count = 0;
  }
}

/** Queues kept for reuse; batches wait together only for the rest of one turn, so a few suffice. */
const pool: Queue[] = [];
const POOL_MAX = 64;

/**
 * Outbound frames queued for few writes: the frames pushed during one turn
 * of the event loop go out together when the deferred flush runs, or when
 * they reach {@link EARLY_FLUSH_BYTES}, or when the adapter calls `flush`;
 * so a burst of small frames (an ACCEPTED and a RESULT per call, 64 calls at
 * a time) costs a few system calls instead of one each. Headers and small payloads are copied into a single
 * buffer of exactly their size; a large payload follows as its own buffer,
 * uncopied. PING and PONG frames are written from their sequence number,
 * with no allocation of their own.
 */
export class FrameBatch {
  private queue: Queue | undefined;
  private queued = 0;
  private deferred = false;

  /** `options` may be shared by every batch: a batch keeps no closure of its own. */
  constructor(
    private readonly sink: FrameSink,
    private readonly options: FrameBatchOptions,
  ) {}

  /** Bytes queued. */
  get bytes(): number {
    return this.queued;
  }

  /**
   * Queues one frame. `payload` is not copied until `flush`: leave it
   * unchanged until then (a fresh encoding, as the codec returns, is).
   */
  push(type: number, stream: number, payload?: Uint8Array): void {
    checkStreamId(stream);
    this.add(type, stream, payload, NO_SEQ);
    this.queued += FRAME_HEADER_BYTES + (payload === undefined ? 0 : payload.byteLength);
    // The turn's deferred flush still runs, and finds what came after this.
    if (this.queued >= EARLY_FLUSH_BYTES) this.flush();
  }

  /** Queues a PING or PONG on stream 0 carrying sequence number `seq` (a u32). */
  pushPing(type: number, seq: number): void {
    this.add(type, 0, undefined, seq >>> 0);
    this.queued += FRAME_HEADER_BYTES + PING_PAYLOAD_BYTES;
  }

  /** Sends every queued byte now, in order, in as few buffers as it can, and empties the batch. */
  flush(): void {
    const queue = this.queue;
    if (queue === undefined) return;
    // Taken first: a write may fail and close the connection, which clears the batch.
    this.queue = undefined;
    this.queued = 0;
    const count = queue.count;
    let first = 0;
    while (first < count) {
      // One buffer for the frames up to the next large payload, whose header ends it.
      let size = 0;
      let end = first;
      let large: Uint8Array | undefined;
      while (end < count) {
        const length = queue.payloadLength(end);
        size += FRAME_HEADER_BYTES;
        end++;
        if (length >= LARGE_PAYLOAD_BYTES) {
          large = queue.payloads[end - 1];
          break;
        }
        size += length;
      }
      const out = (this.options.allocate ?? newUint8Array)(size);
      let at = 0;
      for (let i = first; i < end; i++) {
        const seq = queue.seqs[i] as number;
        const payload = queue.payloads[i];
        const length = queue.payloadLength(i);
        const stream = queue.streams[i] as number;
        out[at] = length >>> 24;
        out[at + 1] = length >>> 16;
        out[at + 2] = length >>> 8;
        out[at + 3] = length;
        out[at + 4] = queue.types[i] as number;
        out[at + 5] = 0;
        out[at + 6] = stream >>> 24;
        out[at + 7] = stream >>> 16;
        out[at + 8] = stream >>> 8;
        out[at + 9] = stream;
        at += FRAME_HEADER_BYTES;
        if (seq !== NO_SEQ) {
          out[at] = seq >>> 24;
          out[at + 1] = seq >>> 16;
          out[at + 2] = seq >>> 8;
          out[at + 3] = seq;
          at += PING_PAYLOAD_BYTES;
        } else if (payload !== undefined && payload !== large) {
          out.set(payload, at);
          at += payload.byteLength;
        }
      }
      this.sink.writeFrames(out);
      if (large !== undefined) this.sink.writeFrames(large);
      first = end;
    }
    release(queue);
  }

  /** Drops every queued frame (the connection is gone). */
  clear(): void {
    const queue = this.queue;
    if (queue === undefined) return;
    this.queue = undefined;
    this.queued = 0;
    release(queue);
  }

  private add(type: number, stream: number, payload: Uint8Array | undefined, seq: number): void {
    if (this.queue === undefined) this.queue = pool.pop() ?? new Queue();
    this.queue.add(type, stream, payload, seq);
    if (!this.deferred) {
      this.deferred = true;
      this.options.defer(flushDeferred, this);
    }
  }

  /** @internal The deferred flush. */
  flushDeferred(): void {
    this.deferred = false;
    this.flush();
  }
}

function flushDeferred(batch: FrameBatch): void {
  batch.flushDeferred();
}

function release(queue: Queue): void {
  queue.reset();
  if (pool.length < POOL_MAX) pool.push(queue);
}
