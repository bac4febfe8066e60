/**
 * Property tests (fast-check) of the codec and the decoders: any frame
 * round-trips however the stream is cut; any byte string either decodes or
 * fails with the protocol's own errors, never anything else, and quickly.
 * A failure prints the seed and the smallest input fast-check found.
 */
import fc from 'fast-check';
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
  encodeWelcome,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  HeartwireError,
  PayloadCodec,
  PayloadError,
  ProtocolError,
  type Frame,
} from '@heartwire/core';
import { splitAt } from './split.js';

/** Runs per property: enough to find the boundary cases, small enough for the suite (each property < 1 s here). */
const RUNS = { numRuns: 300 };
/** One decode of a few KiB taking this long would be a hang, on any machine. */
const SLOW_MS = 1000;

const codec = new PayloadCodec();

const frameArb = fc.record({
  type: fc.integer({ min: 0, max: 255 }),
  flags: fc.integer({ min: 0, max: 255 }),
  stream: fc.integer({ min: 0, max: 0xffff_ffff }),
  payload: fc.uint8Array({ maxLength: 600 }),
});

/** Cuts `bytes` at the given points (taken modulo its length). */
function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const at = [...new Set(points.map((p) => (bytes.byteLength === 0 ? 0 : p % bytes.byteLength)))].sort((a, b) => a - b);
  return splitAt(bytes, at);
}

/** Calls `fn`; returns the error it threw, or undefined. Fails if it took SLOW_MS or more. */
function timed(fn: () => void): unknown {
  const began = performance.now();
  try {
    fn();
    return undefined;
  } catch (err) {
    return err;
  } finally {
    expect(performance.now() - began).toBeLessThan(SLOW_MS);
  }
}

/** A value MessagePack carries and our codec returns equal: no undefined in arrays, no -0, no forbidden keys. */
const safeKey = fc.string({ maxLength: 12 }).filter((k) => k !== '__proto__' && k !== 'constructor');
const valueArb = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.double({ noNaN: true }).filter((d) => !Object.is(d, -0)),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(safeKey, tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('FrameDecoder, by property', () => {
  it('any sequence of frames, cut at any points, comes out whole and in order', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, points) => {
        const bytes = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.stream, f.payload, f.flags)));
        const decoder = new FrameDecoder({ maxPayloadBytes: 600 });
        const out: Frame[] = [];
        for (const chunk of cut(bytes, points)) {
          decoder.push(chunk, (frame) => out.push({ ...frame, payload: frame.payload.slice() }));
        }
        expect(out).toHaveLength(frames.length);
        out.forEach((frame, i) => {
          const sent = frames[i] as (typeof frames)[number];
          expect([frame.type, frame.flags, frame.stream]).toEqual([sent.type, sent.flags, sent.stream]);
          expect(Buffer.from(frame.payload).equals(Buffer.from(sent.payload))).toBe(true);
        });
        expect(decoder.bufferedBytes).toBe(0);
      }),
      RUNS,
    );
  });

  it('any byte string, cut anyhow: frames, or a ProtocolError HW_ERR_FRAME_TOO_LARGE, after which it stays failed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.array(fc.nat(), { maxLength: 12 }), (bytes, points) => {
        const decoder = new FrameDecoder({ maxPayloadBytes: 1024 });
        let failure: unknown;
        let consumed = 0;
        for (const chunk of cut(bytes, points)) {
          failure = timed(() => decoder.push(chunk, (frame) => {
            consumed += FRAME_HEADER_BYTES + frame.payload.byteLength;
          }));
          if (failure !== undefined) break;
        }
        if (failure === undefined) {
          // Nothing lost: whole frames plus what waits for the rest of one.
          expect(consumed + decoder.bufferedBytes).toBe(bytes.byteLength);
          return;
        }
        expect(failure).toBeInstanceOf(ProtocolError);
        expect((failure as ProtocolError).code).toBe('HW_ERR_FRAME_TOO_LARGE');
        expect(() => decoder.push(new Uint8Array(1), () => {})).toThrow(ProtocolError);
      }),
      RUNS,
    );
  });
});

describe('PayloadCodec, by property', () => {
  it('any MessagePack value round-trips', () => {
    fc.assert(
      fc.property(valueArb, (value) => {
        const out = codec.decode(codec.encode(value));
        expect(normalize(out)).toEqual(normalize(value));
      }),
      RUNS,
    );
  });

  it('any byte string decodes or fails with PayloadError HW_ERR_BAD_PAYLOAD, and the codec keeps working', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        const failure = timed(() => codec.decode(bytes));
        if (failure !== undefined) {
          expect(failure).toBeInstanceOf(PayloadError);
          expect((failure as PayloadError).code).toBe('HW_ERR_BAD_PAYLOAD');
        }
        expect(codec.decode(codec.encode([1, 'ok']))).toEqual([1, 'ok']);
      }),
      RUNS,
    );
  });

  it('a valid payload with bytes flipped, cut or inserted decodes or fails with HW_ERR_BAD_PAYLOAD, never pollutes', () => {
    const mutated = fc
      .tuple(valueArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2 })), { minLength: 1, maxLength: 6 }))
      .map(([value, edits]) => {
        const bytes = Array.from(codec.encode(value));
        for (const [at, byte, kind] of edits) {
          const i = bytes.length === 0 ? 0 : at % bytes.length;
          if (kind === 0) bytes[i] = byte;
          else if (kind === 1) bytes.splice(i, 1);
          else bytes.splice(i, 0, byte);
        }
        return Uint8Array.from(bytes);
      });
    fc.assert(
      fc.property(mutated, (bytes) => {
        const failure = timed(() => codec.decode(bytes));
        if (failure !== undefined) expect(failure).toBeInstanceOf(PayloadError);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect(Object.getPrototypeOf({})).toBe(Object.prototype);
      }),
      RUNS,
    );
  });
});

describe("message decoders, by property: a result or the protocol's own error, nothing else", () => {
  const decoders: Array<[string, (bytes: Uint8Array) => unknown, (fc.Arbitrary<Uint8Array>)]> = [
    ['HELLO', (b) => decodeHello(codec, b), valueArb.map((v) => encodeHello(codec, { versions: [1], auth: v }))],
    [
      'WELCOME',
      (b) => decodeWelcome(codec, b),
      fc.constant(encodeWelcome(codec, { version: 1, heartbeatMs: 1000, silentMs: 3000, maxFrameBytes: 1 << 20, maxCalls: 10 })),
    ],
    ['CALL', (b) => decodeCall(codec, b, 256), valueArb.map((v) => encodeCall(codec, 'method', v))],
    ['ERROR', (b) => decodeCallError(codec, b), fc.string().map((m) => encodeCallError(codec, 'HW_ERR_HANDLER', m))],
    ['GOAWAY', (b) => decodeGoAway(codec, b), fc.nat().map((n) => encodeGoAway(codec, { code: 'HW_ERR_PROTOCOL', message: 'm', lastStream: n }))],
    ['PING', (b) => decodePingPayload(b), fc.uint8Array({ minLength: 4, maxLength: 4 })],
  ];
  const anyBytes = (valid: fc.Arbitrary<Uint8Array>) =>
    fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([bytes, at, byte]) => {
        const out = Uint8Array.from(bytes);
        if (out.byteLength > 0) out[at % out.byteLength] = byte;
        return out;
      }),
      fc.tuple(valid, fc.nat()).map(([bytes, keep]) => bytes.subarray(0, bytes.byteLength === 0 ? 0 : keep % bytes.byteLength)),
    );

  for (const [name, decode, valid] of decoders) {
    it(`${name}: valid, random, mutated and truncated payloads`, () => {
      fc.assert(
        fc.property(anyBytes(valid), (bytes) => {
          const failure = timed(() => decode(bytes));
          if (failure === undefined) return;
          expect(failure).toBeInstanceOf(HeartwireError);
          expect(failure instanceof ProtocolError || failure instanceof PayloadError).toBe(true);
        }),
        RUNS,
      );
    });
  }
});

/** Uint8Array and Buffer views compare as plain byte arrays. */
function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(normalize);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  }
  return value;
}
