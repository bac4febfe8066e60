import { ProtocolError } from './errors.js';
import type { Frame } from './frame.js';
import { FRAME_HEADER_BYTES } from './protocol.js';

/** Options of {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest payload accepted, in bytes; checked from the header before any byte of the payload is buffered. */
  readonly maxPayloadBytes: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Incremental frame decoder: push chunks of any size (one byte, many frames at
 * once), get whole frames back. A frame that lies whole inside one chunk is
 * returned as a view of that chunk (no copy); only a frame split across chunks
 * is assembled, into a buffer of exactly its size, allocated after its length
 * was checked against the limit.
 */
export class FrameDecoder {
  /** Largest payload accepted from the next header on; a connection may raise it after its handshake. */
  maxPayloadBytes: number;
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private readonly headerView = new DataView(this.header.buffer);
  private headerFilled = 0;
  /** Payload being assembled across chunks, or undefined while reading a header. */
  private partial: Uint8Array | undefined;
  private partialFilled = 0;
  private failed: ProtocolError | undefined;

  constructor(options: FrameDecoderOptions) {
    this.maxPayloadBytes = options.maxPayloadBytes;
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.headerFilled + this.partialFilled;
  }

  /**
   * Consumes `chunk` and calls `onFrame` for each complete frame, in order.
   * Throws a {@link ProtocolError} (`HW_ERR_FRAME_TOO_LARGE`) when a header
   * announces a payload over the limit; the decoder then stays failed.
   */
  push(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    if (this.failed !== undefined) throw this.failed;
    let offset = 0;
    const end = chunk.byteLength;
    while (offset < end) {
      if (this.partial !== undefined) {
        offset = this.fillPartial(chunk, offset, onFrame);
        continue;
      }
      if (this.headerFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        // Fast path: the header lies whole in this chunk.
        const view = new DataView(chunk.buffer, chunk.byteOffset + offset, FRAME_HEADER_BYTES);
        const length = view.getUint32(0);
        this.checkLength(length);
        const type = view.getUint8(4);
        const flags = view.getUint8(5);
        const stream = view.getUint32(6);
        offset += FRAME_HEADER_BYTES;
        if (end - offset >= length) {
          const payload = length === 0 ? EMPTY : chunk.subarray(offset, offset + length);
          offset += length;
          onFrame({ type, flags, stream, payload });
        } else {
          this.startPartial(length);
          this.header[4] = type;
          this.header[5] = flags;
          this.headerView.setUint32(6, stream);
        }
        continue;
      }
      // Slow path: assemble the header byte by byte across chunks.
      const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, end - offset);
      this.header.set(chunk.subarray(offset, offset + take), this.headerFilled);
      this.headerFilled += take;
      offset += take;
      if (this.headerFilled < FRAME_HEADER_BYTES) return;
      const length = this.headerView.getUint32(0);
      this.checkLength(length);
      this.headerFilled = 0;
      if (length === 0) {
        onFrame(this.headerFrame(EMPTY));
      } else {
        this.startPartial(length);
      }
    }
  }

  private checkLength(length: number): void {
    if (length > this.maxPayloadBytes) {
      this.failed = new ProtocolError(
        'HW_ERR_FRAME_TOO_LARGE',
        `frame payload of ${length} bytes exceeds the limit of ${this.maxPayloadBytes} bytes`,
      );
      throw this.failed;
    }
  }

  private startPartial(length: number): void {
    this.partial = new Uint8Array(length);
    this.partialFilled = 0;
  }

  private fillPartial(chunk: Uint8Array, offset: number, onFrame: (frame: Frame) => void): number {
    const partial = this.partial as Uint8Array;
    const take = Math.min(partial.byteLength - this.partialFilled, chunk.byteLength - offset);
    partial.set(chunk.subarray(offset, offset + take), this.partialFilled);
    this.partialFilled += take;
    if (this.partialFilled === partial.byteLength) {
      this.partial = undefined;
      this.partialFilled = 0;
      onFrame(this.headerFrame(partial));
    }
    return offset + take;
  }

  private headerFrame(payload: Uint8Array): Frame {
    return {
      type: this.header[4] as number,
      flags: this.header[5] as number,
      stream: this.headerView.getUint32(6),
      payload,
    };
  }
}
