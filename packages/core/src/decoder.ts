import { ProtocolError } from './errors/index.js';
import { readUint32, type Frame } from './frame.js';
import { FRAME_HEADER_BYTES } from './protocol.js';

/** Options of {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest payload accepted, in bytes; checked from the header before any byte of the payload is buffered. */
  readonly maxPayloadBytes: number;
  /**
   * Decides, once a frame's header is in and before any byte of its payload
   * is buffered, whether the frame is wanted: false skips its payload as it
   * streams past (nothing is held) and the frame is never delivered. It may
   * throw, as `onFrame` may. Defaults to taking every frame.
   */
  readonly admit?: FrameAdmission;
}

/** See {@link FrameDecoderOptions.admit}. */
export type FrameAdmission = (type: number, stream: number, length: number) => boolean;

/**
 * What {@link FrameDecoder.read} hands frames to: an object with methods, so
 * that a connection holds no closure per decoder.
 */
export interface FrameReceiver {
  /** As {@link FrameDecoderOptions.admit}; without it every frame is taken. */
  admit?(type: number, stream: number, length: number): boolean;
  /** A complete frame, in order. */
  onFrame(frame: Frame): void;
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
  /** Header bytes gathered across chunks; made the first time a header arrives split (most connections never see one). */
  private header: Uint8Array | undefined;
  private headerFilled = 0;
  /** Payload being assembled across chunks, or undefined while reading a header. */
  private partial: Uint8Array | undefined;
  private partialFilled = 0;
  private partialType = 0;
  private partialFlags = 0;
  private partialStream = 0;
  /** Payload bytes of a refused frame still to pass by unread. */
  private skipping = 0;
  private readonly admit: FrameAdmission | undefined;
  private failed: ProtocolError | undefined;

  constructor(options: FrameDecoderOptions) {
    this.maxPayloadBytes = options.maxPayloadBytes;
    this.admit = options.admit;
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.headerFilled + this.partialFilled;
  }

  /** The type of the frame whose payload is still arriving, or undefined between frames. */
  get arrivingType(): number | undefined {
    return this.partial === undefined ? undefined : this.partialType;
  }

  /**
   * Consumes `chunk` and calls `onFrame` for each complete frame, in order.
   * Throws a {@link ProtocolError} (`HW_ERR_FRAME_TOO_LARGE`) when a header
   * announces a payload over the limit; the decoder then stays failed.
   */
  push(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    this.read(chunk, this.admit === undefined ? { onFrame } : { onFrame, admit: this.admit });
  }

  /**
   * As {@link push}, with frames handed to `receiver.onFrame`, and each header
   * judged by `receiver.admit` (if it has one) instead of the `admit` option.
   */
  read(chunk: Uint8Array, receiver: FrameReceiver): void {
    if (this.failed !== undefined) throw this.failed;
    let offset = 0;
    const end = chunk.byteLength;
    while (offset < end) {
      if (this.skipping > 0) {
        const take = Math.min(this.skipping, end - offset);
        this.skipping -= take;
        offset += take;
        continue;
      }
      if (this.partial !== undefined) {
        offset = this.fillPartial(chunk, offset, receiver);
        continue;
      }
      if (this.headerFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        // Fast path: the header lies whole in this chunk.
        const length = readUint32(chunk, offset);
        this.checkLength(length);
        const type = chunk[offset + 4] as number;
        const flags = chunk[offset + 5] as number;
        const stream = readUint32(chunk, offset + 6);
        offset += FRAME_HEADER_BYTES;
        if (receiver.admit !== undefined && !receiver.admit(type, stream, length)) {
          this.skipping = length;
          continue;
        }
        if (end - offset >= length) {
          const payload = length === 0 ? EMPTY : chunk.subarray(offset, offset + length);
          offset += length;
          receiver.onFrame({ type, flags, stream, payload });
        } else {
          this.startPartial(length, type, flags, stream);
        }
        continue;
      }
      // Slow path: assemble the header across chunks.
      const header = (this.header ??= new Uint8Array(FRAME_HEADER_BYTES));
      const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, end - offset);
      header.set(chunk.subarray(offset, offset + take), this.headerFilled);
      this.headerFilled += take;
      offset += take;
      if (this.headerFilled < FRAME_HEADER_BYTES) return;
      const length = readUint32(header, 0);
      this.checkLength(length);
      this.headerFilled = 0;
      const type = header[4] as number;
      const flags = header[5] as number;
      const stream = readUint32(header, 6);
      if (receiver.admit !== undefined && !receiver.admit(type, stream, length)) {
        this.skipping = length;
        continue;
      }
      if (length === 0) {
        receiver.onFrame({ type, flags, stream, payload: EMPTY });
      } else {
        this.startPartial(length, type, flags, stream);
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

  private startPartial(length: number, type: number, flags: number, stream: number): void {
    this.partial = new Uint8Array(length);
    this.partialFilled = 0;
    this.partialType = type;
    this.partialFlags = flags;
    this.partialStream = stream;
  }

  private fillPartial(chunk: Uint8Array, offset: number, receiver: FrameReceiver): number {
    const partial = this.partial as Uint8Array;
    const take = Math.min(partial.byteLength - this.partialFilled, chunk.byteLength - offset);
    partial.set(chunk.subarray(offset, offset + take), this.partialFilled);
    this.partialFilled += take;
    if (this.partialFilled === partial.byteLength) {
      this.partial = undefined;
      this.partialFilled = 0;
      receiver.onFrame({ type: this.partialType, flags: this.partialFlags, stream: this.partialStream, payload: partial });
    }
    return offset + take;
  }
}
