import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  decodeCall,
  decodeCallError,
  decodeGoAway,
  decodeHello,
  decodePingPayload,
  decodeWelcome,
  encodeCall,
  encodeCallError,
  encodeFrame,
  encodeGoAway,
  encodeHello,
  encodePingPayload,
  encodeWelcome,
  FrameDecoder,
  frameRule,
  FrameType,
  PayloadCodec,
  type Frame,
  type FrameRule,
  type Phase,
  type Role,
} from '@heartwire/core';

/** Every ```hex NAME block of PROTOCOL.md: the bytes the spec shows. */
function vectorsFromSpec(): Map<string, Buffer> {
  const text = readFileSync(new URL('../PROTOCOL.md', import.meta.url), 'utf8');
  const out = new Map<string, Buffer>();
  for (const match of text.matchAll(/```hex ([a-z0-9-]+)\n([\s\S]*?)```/g)) {
    out.set(match[1] as string, Buffer.from((match[2] as string).replace(/\s+/g, ''), 'hex'));
  }
  return out;
}

const codec = new PayloadCodec();

interface Expectation {
  /** The frame as this implementation encodes it. */
  readonly encoded: Uint8Array;
  readonly type: number;
  readonly stream: number;
  /** What the payload decodes to, with the decoder the receiver uses. */
  readonly decoded: (payload: Uint8Array) => unknown;
  readonly value: unknown;
  /** What the rulebook (section 2) says of this frame's header, for an end in a phase. */
  readonly rules?: ReadonlyArray<readonly [Role, Phase, FrameRule['kind']]>;
}

const welcome = { version: 1, heartbeatMs: 1000, silentMs: 3000, maxFrameBytes: 4194304, maxCalls: 100 };
const goaway = { code: 'HW_ERR_SERVER_SHUTDOWN', message: 'the server is shutting down', lastStream: 3 };
const unauthenticated = { code: 'HW_ERR_UNAUTHENTICATED', message: 'authentication failed', lastStream: 0 };
const idle = { code: 'HW_ERR_IDLE_TIMEOUT', message: 'no call in flight', lastStream: 2 };
const clientGoAway = { code: 'HW_ERR_PROTOCOL', message: 'a second WELCOME', lastStream: 0 };
const empty = (payload: Uint8Array): number => payload.byteLength;

const expectations: Record<string, Expectation> = {
  hello: {
    encoded: encodeFrame(FrameType.HELLO, 0, encodeHello(codec, { versions: [1] })),
    type: FrameType.HELLO,
    stream: 0,
    decoded: (p) => decodeHello(codec, p),
    value: { versions: [1] },
  },
  'hello-heartbeat': {
    encoded: encodeFrame(FrameType.HELLO, 0, encodeHello(codec, { versions: [1], heartbeatMs: 500, maxFrameBytes: 65536 })),
    type: FrameType.HELLO,
    stream: 0,
    decoded: (p) => decodeHello(codec, p),
    value: { versions: [1], heartbeatMs: 500, maxFrameBytes: 65536 },
  },
  'hello-auth': {
    encoded: encodeFrame(FrameType.HELLO, 0, encodeHello(codec, { versions: [1], auth: 's3cret' })),
    type: FrameType.HELLO,
    stream: 0,
    decoded: (p) => decodeHello(codec, p),
    value: { versions: [1], auth: 's3cret' },
  },
  welcome: {
    encoded: encodeFrame(FrameType.WELCOME, 0, encodeWelcome(codec, welcome)),
    type: FrameType.WELCOME,
    stream: 0,
    decoded: (p) => decodeWelcome(codec, p),
    value: welcome,
  },
  call: {
    encoded: encodeFrame(FrameType.CALL, 1, encodeCall(codec, 'render', { frames: 3 })),
    type: FrameType.CALL,
    stream: 1,
    decoded: (p) => decodeCall(codec, p, 256),
    value: { method: 'render', params: { frames: 3 } },
  },
  accepted: { encoded: encodeFrame(FrameType.ACCEPTED, 1), type: FrameType.ACCEPTED, stream: 1, decoded: empty, value: 0 },
  progress: {
    encoded: encodeFrame(FrameType.PROGRESS, 1, codec.encode({ percent: 50 })),
    type: FrameType.PROGRESS,
    stream: 1,
    decoded: (p) => codec.decode(p),
    value: { percent: 50 },
  },
  result: {
    encoded: encodeFrame(FrameType.RESULT, 1, codec.encode('done')),
    type: FrameType.RESULT,
    stream: 1,
    decoded: (p) => codec.decode(p),
    value: 'done',
  },
  error: {
    encoded: encodeFrame(FrameType.ERROR, 2, encodeCallError(codec, 'HW_ERR_UNKNOWN_METHOD', 'no handler for method "nope"')),
    type: FrameType.ERROR,
    stream: 2,
    decoded: (p) => decodeCallError(codec, p),
    value: { code: 'HW_ERR_UNKNOWN_METHOD', message: 'no handler for method "nope"' },
  },
  cancel: { encoded: encodeFrame(FrameType.CANCEL, 3), type: FrameType.CANCEL, stream: 3, decoded: empty, value: 0 },
  ping: {
    encoded: encodeFrame(FrameType.PING, 0, encodePingPayload(1)),
    type: FrameType.PING,
    stream: 0,
    decoded: decodePingPayload,
    value: 1,
  },
  pong: {
    encoded: encodeFrame(FrameType.PONG, 0, encodePingPayload(1)),
    type: FrameType.PONG,
    stream: 0,
    decoded: decodePingPayload,
    value: 1,
  },
  'half-close': { encoded: encodeFrame(FrameType.HALF_CLOSE, 0), type: FrameType.HALF_CLOSE, stream: 0, decoded: empty, value: 0 },
  goaway: {
    encoded: encodeFrame(FrameType.GOAWAY, 0, encodeGoAway(codec, goaway)),
    type: FrameType.GOAWAY,
    stream: 0,
    decoded: (p) => decodeGoAway(codec, p),
    value: goaway,
  },
  'goaway-unauthenticated': {
    encoded: encodeFrame(FrameType.GOAWAY, 0, encodeGoAway(codec, unauthenticated)),
    type: FrameType.GOAWAY,
    stream: 0,
    decoded: (p) => decodeGoAway(codec, p),
    value: unauthenticated,
  },
  'goaway-client': {
    encoded: encodeFrame(FrameType.GOAWAY, 0, encodeGoAway(codec, clientGoAway)),
    type: FrameType.GOAWAY,
    stream: 0,
    decoded: (p) => decodeGoAway(codec, p),
    value: clientGoAway,
    // A server takes a client's GOAWAY in any phase but after its HALF_CLOSE (§6).
    rules: [
      ['server', 'open', 'accept'],
      ['server', 'draining', 'accept'],
      ['server', 'half-closed', 'violation'],
    ],
  },
  'error-too-many-calls': {
    encoded: encodeFrame(FrameType.ERROR, 101, encodeCallError(codec, 'HW_ERR_TOO_MANY_CALLS', 'too many calls')),
    type: FrameType.ERROR,
    stream: 101,
    decoded: (p) => decodeCallError(codec, p),
    value: { code: 'HW_ERR_TOO_MANY_CALLS', message: 'too many calls' },
    rules: [
      ['client', 'open', 'accept'],
      ['server', 'open', 'violation'],
    ],
  },
  'cancel-with-payload': {
    encoded: encodeFrame(FrameType.CANCEL, 3, Uint8Array.of(0xc0)),
    type: FrameType.CANCEL,
    stream: 3,
    decoded: empty,
    value: 1,
    rules: [['server', 'open', 'violation']],
  },
  'goaway-idle': {
    encoded: encodeFrame(FrameType.GOAWAY, 0, encodeGoAway(codec, idle)),
    type: FrameType.GOAWAY,
    stream: 0,
    decoded: (p) => decodeGoAway(codec, p),
    value: idle,
  },
};

const vectors = vectorsFromSpec();

describe('PROTOCOL.md test vectors', () => {
  it('the spec shows exactly the vectors checked here', () => {
    expect([...vectors.keys()].sort()).toEqual(Object.keys(expectations).sort());
  });

  for (const [name, bytes] of vectors) {
    const expected = expectations[name];
    it(`${name}: our encoder writes these bytes, and the decoder reads them back`, () => {
      expect(expected).toBeDefined();
      if (expected === undefined) return;
      expect(Buffer.from(expected.encoded).toString('hex')).toBe(bytes.toString('hex'));
      const frames: Frame[] = [];
      // Fed one byte at a time, as the slowest network would.
      const decoder = new FrameDecoder({ maxPayloadBytes: 4 * 1024 * 1024 });
      for (const byte of bytes) decoder.push(Uint8Array.of(byte), (f) => frames.push(f));
      expect(frames).toHaveLength(1);
      const [frame] = frames as [Frame];
      expect(frame.type).toBe(expected.type);
      expect(frame.flags).toBe(0);
      expect(frame.stream).toBe(expected.stream);
      expect(expected.decoded(frame.payload)).toEqual(expected.value);
      for (const [role, phase, kind] of expected.rules ?? []) {
        expect(frameRule(role, phase, frame.type, frame.stream, frame.payload.byteLength).kind, `${role} in ${phase}`).toBe(kind);
      }
    });
  }
});
