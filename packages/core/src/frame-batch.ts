import { checkStreamId } from './frame.js';
import { FRAME_HEADER_BYTES, PING_PAYLOAD_BYTES } from './protocol.js';

/**
 * A payload at least this large goes out as its own buffer rather than being
 * copied into the batch: one more write costs less than copying it.
 */
export const LARGE_PAYLOAD_BYTES = 16 * 1024;

/** No sequence number: the frame carries `payloads[i]`. */
const NO_SEQ = -1;

/** Where a {@link FrameBatch} sends its bytes, and when. */
export interface FrameBatchOptions {
  /** Takes one buffer of whole frames; it is the sink's to keep (a socket write). */
  write(chunk: Uint8Array): void;
  /** Runs `flush` once the current turn of work is done (`process.nextTick` in Node). */
  defer(flush: () => void): void;
  /** A buffer of `size` bytes the batch fills and gives away. Defaults to a new Uint8Array; Node adapters pass `Buffer.allocUnsafe`. */
  allocate?(size: number): Uint8Array;
}

/**
 * Outbound frames queued for one write: every frame pushed during one turn
 * of the event loop goes out together when the deferred flush runs (or
 * earlier, when the adapter calls `flush`), so a burst of small frames (an
 * ACCEPTED and a RESULT per call, 64 calls at a time) costs one system call
 * instead of one each. Headers and small payloads are copied into a single
 * buffer of exactly their size; a large payload follows as its own buffer,
 * uncopied. PING and PONG frames are written from their sequence number,
 * with no allocation of their own.
 */
export class FrameBatch {
  private readonly types: number[] = [];
  private readonly streams: number[] = [];
  private readonly payloads: (Uint8Array | undefined)[] = [];
  private readonly seqs: number[] = [];
  private queued = 0;
  private deferred = false;
  private readonly write: (chunk: Uint8Array) => void;
  private readonly defer: (flush: () => void) => void;
  private readonly allocate: (size: number) => Uint8Array;

  constructor(options: FrameBatchOptions) {
    this.write = options.write;
    this.defer = options.defer;
    this.allocate = options.allocate ?? ((size) => new Uint8Array(size));
  }

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
  }

  /** Queues a PING or PONG on stream 0 carrying sequence number `seq` (a u32). */
  pushPing(type: number, seq: number): void {
    this.add(type, 0, undefined, seq >>> 0);
    this.queued += FRAME_HEADER_BYTES + PING_PAYLOAD_BYTES;
  }

  /** Sends every queued byte now, in order, in as few buffers as it can, and empties the batch. */
  flush(): void {
    const count = this.types.length;
    let first = 0;
    while (first < count) {
      // One buffer for the frames up to the next large payload, whose header ends it.
      let size = 0;
      let end = first;
      let large: Uint8Array | undefined;
      while (end < count) {
        const length = this.payloadLength(end);
        size += FRAME_HEADER_BYTES;
        end++;
        if (length >= LARGE_PAYLOAD_BYTES) {
          large = this.payloads[end - 1];
          break;
        }
        size += length;
      }
      const out = this.allocate(size);
      let at = 0;
      for (let i = first; i < end; i++) {
        const seq = this.seqs[i] as number;
        const payload = this.payloads[i];
        const length = this.payloadLength(i);
        const stream = this.streams[i] as number;
        out[at] = length >>> 24;
        out[at + 1] = length >>> 16;
        out[at + 2] = length >>> 8;
        out[at + 3] = length;
        out[at + 4] = this.types[i] as number;
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
      this.write(out);
      if (large !== undefined) this.write(large);
      first = end;
    }
    this.clear();
  }

  /** Drops every queued frame (the connection is gone). */
  clear(): void {
    this.types.length = 0;
    this.streams.length = 0;
    this.payloads.length = 0;
    this.seqs.length = 0;
    this.queued = 0;
  }

  private add(type: number, stream: number, payload: Uint8Array | undefined, seq: number): void {
    this.types.push(type);
    this.streams.push(stream);
    this.payloads.push(payload);
    this.seqs.push(seq);
    if (!this.deferred) {
      this.deferred = true;
      this.defer(this.onDeferred);
    }
  }

  private readonly onDeferred = (): void => {
    this.deferred = false;
    this.flush();
  };

  private payloadLength(i: number): number {
    if (this.seqs[i] !== NO_SEQ) return PING_PAYLOAD_BYTES;
    const payload = this.payloads[i];
    return payload === undefined ? 0 : payload.byteLength;
  }
}
