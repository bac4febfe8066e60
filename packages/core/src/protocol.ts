/** Wire constants of protocol version 1. PROTOCOL.md is the normative text. */

/** The only protocol version this implementation speaks. */
export const PROTOCOL_VERSION = 1;

/** Every frame starts with: u32 payload length, u8 type, u8 flags, u32 stream id (all big-endian). */
export const FRAME_HEADER_BYTES = 10;

/** Frame types. Receivers ignore types they do not know (forward compatibility). */
export const FrameType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  CALL: 0x03,
  ACCEPTED: 0x04,
  PROGRESS: 0x05,
  RESULT: 0x06,
  ERROR: 0x07,
  CANCEL: 0x08,
  PING: 0x09,
  PONG: 0x0a,
  GOAWAY: 0x0b,
  HALF_CLOSE: 0x0c,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Frame types that belong to the connection and must use stream id 0. */
export const CONNECTION_FRAME_TYPES: ReadonlySet<number> = new Set([
  FrameType.HELLO,
  FrameType.WELCOME,
  FrameType.PING,
  FrameType.PONG,
  FrameType.GOAWAY,
  FrameType.HALF_CLOSE,
]);

/** Frame types that belong to one call and must use a non-zero stream id. */
export const CALL_FRAME_TYPES: ReadonlySet<number> = new Set([
  FrameType.CALL,
  FrameType.ACCEPTED,
  FrameType.PROGRESS,
  FrameType.RESULT,
  FrameType.ERROR,
  FrameType.CANCEL,
]);

/** Largest stream id: stream ids are u32 and never reused on one connection. */
export const MAX_STREAM_ID = 0xffff_ffff;

/** PING and PONG carry a 4-byte big-endian sequence number. */
export const PING_PAYLOAD_BYTES = 4;

/**
 * Smallest `maxFrameBytes` a peer may announce: every connection frame and
 * every error this implementation sends fits in it.
 */
export const MIN_MAX_FRAME_BYTES = 1024;

/** Largest payload accepted before the handshake completed: a HELLO is small, and a stranger gets no big buffer. */
export const MAX_HANDSHAKE_FRAME_BYTES = 64 * 1024;
