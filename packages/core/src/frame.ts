import { FRAME_HEADER_BYTES, MAX_STREAM_ID } from './protocol.js';

/** One decoded frame. `payload` may be a view into the chunk it arrived in: copy it to keep it past the callback. */
export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Uint8Array;
}

/** The big-endian u32 at `offset` (no DataView: nothing is allocated). */
export function readUint32(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset] as number) * 0x100_0000 +
    (((bytes[offset + 1] as number) << 16) | ((bytes[offset + 2] as number) << 8) | (bytes[offset + 3] as number))
  );
}

/** Throws a RangeError unless `stream` is a valid stream id (a u32). */
export function checkStreamId(stream: number): void {
  if (!Number.isInteger(stream) || stream < 0 || stream > MAX_STREAM_ID) {
    throw new RangeError(`stream id must be an integer from 0 to ${MAX_STREAM_ID}, got ${stream}`);
  }
}

/** Writes a frame header into `target` at `offset`. */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  type: number,
  flags: number,
  stream: number,
  payloadLength: number,
): void {
  checkStreamId(stream);
  const view = new DataView(target.buffer, target.byteOffset + offset, FRAME_HEADER_BYTES);
  view.setUint32(0, payloadLength);
  view.setUint8(4, type);
  view.setUint8(5, flags);
  view.setUint32(6, stream);
}

/** Encodes one whole frame: header then payload, in a new buffer. */
export function encodeFrame(type: number, stream: number, payload?: Uint8Array, flags = 0): Uint8Array {
  const length = payload === undefined ? 0 : payload.byteLength;
  const out = new Uint8Array(FRAME_HEADER_BYTES + length);
  writeFrameHeader(out, 0, type, flags, stream, length);
  if (payload !== undefined) out.set(payload, FRAME_HEADER_BYTES);
  return out;
}
