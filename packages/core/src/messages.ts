import type { PayloadCodec } from './codec.js';
import { decodeMethodName, findMethodName } from './call-header.js';
import { PayloadError, ProtocolError } from './errors/index.js';
import { readUint32 } from './frame.js';
import { MIN_MAX_FRAME_BYTES, PING_PAYLOAD_BYTES } from './protocol.js';

/** HELLO: the client's first frame. */
export interface Hello {
  /** Protocol versions the client speaks. */
  readonly versions: readonly number[];
  /** Heartbeat interval the client would like, in ms; the server may clamp it. */
  readonly heartbeatMs?: number;
  /** Largest frame payload the client accepts, in bytes. */
  readonly maxFrameBytes?: number;
  /** Credentials for the server's authentication hook (a token, a map…); any MessagePack value. */
  readonly auth?: unknown;
}

/** WELCOME: the server's answer to HELLO, the terms of the connection. */
export interface Welcome {
  readonly version: number;
  /** Interval between the server's PINGs while calls are in flight, in ms. */
  readonly heartbeatMs: number;
  /** How long the server waits for the PONG to a PING before declaring the client silent, in ms. */
  readonly silentMs: number;
  /** Largest frame payload the server accepts, in bytes. */
  readonly maxFrameBytes: number;
  /** Most calls the client may have in flight on this connection. */
  readonly maxCalls: number;
}

/** ERROR payload: why one call failed. */
export interface CallErrorBody {
  readonly code: string;
  readonly message: string;
}

/** GOAWAY payload: why the sender is closing the connection, and the last call id it took. */
export interface GoAwayBody {
  readonly code: string;
  readonly message: string;
  readonly lastStream: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function isPositiveInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

function decodeConnectionPayload(codec: PayloadCodec, what: string, bytes: Uint8Array): unknown {
  try {
    return codec.decode(bytes);
  } catch (err) {
    throw new ProtocolError('HW_ERR_PROTOCOL', `${what} payload is not valid MessagePack: ${(err as Error).message}`);
  }
}

export function encodeHello(codec: PayloadCodec, hello: Hello): Uint8Array {
  return codec.encode(hello);
}

/** Unknown keys are ignored so later versions can add fields. */
export function decodeHello(codec: PayloadCodec, bytes: Uint8Array): Hello {
  const value = decodeConnectionPayload(codec, 'HELLO', bytes);
  if (!isRecord(value) || !Array.isArray(value.versions) || !value.versions.every((v) => isPositiveInt(v))) {
    throw new ProtocolError('HW_ERR_PROTOCOL', 'HELLO must be a map with "versions": an array of positive integers');
  }
  const hello: { versions: number[]; heartbeatMs?: number; maxFrameBytes?: number; auth?: unknown } = {
    versions: value.versions as number[],
  };
  if (value.auth !== undefined && value.auth !== null) hello.auth = value.auth;
  if (value.heartbeatMs !== undefined && value.heartbeatMs !== null) {
    if (!isPositiveInt(value.heartbeatMs)) throw new ProtocolError('HW_ERR_PROTOCOL', 'HELLO heartbeatMs must be a positive integer');
    hello.heartbeatMs = value.heartbeatMs;
  }
  if (value.maxFrameBytes !== undefined && value.maxFrameBytes !== null) {
    if (!isPositiveInt(value.maxFrameBytes) || value.maxFrameBytes < MIN_MAX_FRAME_BYTES) {
      throw new ProtocolError('HW_ERR_PROTOCOL', `HELLO maxFrameBytes must be an integer >= ${MIN_MAX_FRAME_BYTES}`);
    }
    hello.maxFrameBytes = value.maxFrameBytes;
  }
  return hello;
}

export function encodeWelcome(codec: PayloadCodec, welcome: Welcome): Uint8Array {
  return codec.encode(welcome);
}

export function decodeWelcome(codec: PayloadCodec, bytes: Uint8Array): Welcome {
  const value = decodeConnectionPayload(codec, 'WELCOME', bytes);
  if (!isRecord(value)) throw new ProtocolError('HW_ERR_PROTOCOL', 'WELCOME must be a map');
  for (const key of ['version', 'heartbeatMs', 'silentMs', 'maxFrameBytes', 'maxCalls'] as const) {
    if (!isPositiveInt(value[key])) throw new ProtocolError('HW_ERR_PROTOCOL', `WELCOME ${key} must be a positive integer`);
  }
  if ((value.maxFrameBytes as number) < MIN_MAX_FRAME_BYTES) {
    throw new ProtocolError('HW_ERR_PROTOCOL', `WELCOME maxFrameBytes must be >= ${MIN_MAX_FRAME_BYTES}`);
  }
  return {
    version: value.version as number,
    heartbeatMs: value.heartbeatMs as number,
    silentMs: value.silentMs as number,
    maxFrameBytes: value.maxFrameBytes as number,
    maxCalls: value.maxCalls as number,
  };
}

/**
 * CALL payload: a two-element array `[method, params]`. The codec limits
 * (nesting depth included) apply to `params` alone, as the decoder counts them.
 */
export function encodeCall(codec: PayloadCodec, method: string, params: unknown): Uint8Array {
  return codec.encodeTuple([method, params]);
}

/**
 * Reads a CALL payload. The wrapper is read here, not by the codec: the
 * method's length is checked in UTF-8 bytes from its header, before it is
 * decoded, and `params` is decoded as a payload of its own, so the codec's
 * limits apply to `params` alone. `maxMethodLength` counts UTF-8 bytes.
 *
 * Throws {@link PayloadError} `HW_ERR_BAD_PAYLOAD`: a bad CALL payload fails that call only.
 */
export function decodeCall(
  codec: PayloadCodec,
  bytes: Uint8Array,
  maxMethodLength: number,
): { method: string; params: unknown } {
  const name = findMethodName(bytes);
  if (name === undefined || name.end >= bytes.byteLength) {
    throw new PayloadError('HW_ERR_BAD_PAYLOAD', 'CALL payload must be a two-element array [method, params], method a string');
  }
  const length = name.end - name.start;
  if (length === 0 || length > maxMethodLength) {
    throw new PayloadError('HW_ERR_BAD_PAYLOAD', `method name must be 1 to ${maxMethodLength} UTF-8 bytes long, got ${length}`);
  }
  const method = decodeMethodName(bytes, name.start, name.end);
  return { method, params: codec.decode(bytes.subarray(name.end)) };
}

/** ERROR payload: `[code, message]`. */
export function encodeCallError(codec: PayloadCodec, code: string, message: string): Uint8Array {
  return codec.encode([code, message]);
}

export function decodeCallError(codec: PayloadCodec, bytes: Uint8Array): CallErrorBody {
  const value = decodeConnectionPayload(codec, 'ERROR', bytes);
  if (!Array.isArray(value) || typeof value[0] !== 'string' || typeof value[1] !== 'string') {
    throw new ProtocolError('HW_ERR_PROTOCOL', 'ERROR payload must be [code, message]');
  }
  return { code: value[0], message: value[1] };
}

/** GOAWAY payload: `[code, message, lastStream]`. */
export function encodeGoAway(codec: PayloadCodec, body: GoAwayBody): Uint8Array {
  return codec.encode([body.code, body.message, body.lastStream]);
}

export function decodeGoAway(codec: PayloadCodec, bytes: Uint8Array): GoAwayBody {
  const value = decodeConnectionPayload(codec, 'GOAWAY', bytes);
  if (
    !Array.isArray(value) ||
    typeof value[0] !== 'string' ||
    typeof value[1] !== 'string' ||
    typeof value[2] !== 'number' ||
    !Number.isSafeInteger(value[2]) ||
    value[2] < 0
  ) {
    throw new ProtocolError('HW_ERR_PROTOCOL', 'GOAWAY payload must be [code, message, lastStream]');
  }
  return { code: value[0], message: value[1], lastStream: value[2] };
}

/** PING and PONG payloads: a u32 sequence number, big-endian. */
export function encodePingPayload(seq: number): Uint8Array {
  const out = new Uint8Array(PING_PAYLOAD_BYTES);
  new DataView(out.buffer).setUint32(0, seq >>> 0);
  return out;
}

export function decodePingPayload(bytes: Uint8Array): number {
  if (bytes.byteLength !== PING_PAYLOAD_BYTES) {
    throw new ProtocolError('HW_ERR_PROTOCOL', `PING/PONG payload must be ${PING_PAYLOAD_BYTES} bytes, got ${bytes.byteLength}`);
  }
  return readUint32(bytes, 0);
}
