import { describe, expect, it } from 'vitest';
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameType,
  HeartwireError,
  MAX_STREAM_ID,
  ProtocolError,
  encodeFrame,
  encodePingPayload,
  writeFrameHeader,
  type Frame,
} from '@heartwire/core';
import { hex, toHex } from './hex.js';
import { splitAt } from './split.js';
import { catchError } from './thrown.js';

// ---------------------------------------------------------------- helpers

/** Tiny deterministic PRNG (mulberry32): same seed, same chunkings, every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

interface PlainFrame {
  type: number;
  flags: number;
  stream: number;
  payload: string;
}

/** Copies a decoded frame out of the decoder's buffers (payloads may be views). */
function plain(frame: Frame): PlainFrame {
  return { type: frame.type, flags: frame.flags, stream: frame.stream, payload: toHex(frame.payload) };
}

/** Pushes every chunk (each copied into its own fresh ArrayBuffer) and returns the frames seen, in order. */
function decodeChunks(chunks: readonly Uint8Array[], maxPayloadBytes = 1 << 20): PlainFrame[] {
  const decoder = new FrameDecoder({ maxPayloadBytes });
  const frames: PlainFrame[] = [];
  for (const chunk of chunks) decoder.push(chunk.slice(), (f) => frames.push(plain(f)));
  expect(decoder.bufferedBytes).toBe(0);
  return frames;
}

function randomChunks(bytes: Uint8Array, rand: () => number, maxChunk: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    // Sizes 0..maxChunk: empty chunks must be harmless too.
    const size = Math.floor(rand() * (maxChunk + 1));
    out.push(bytes.subarray(at, Math.min(bytes.byteLength, at + size)));
    at += size;
  }
  return out;
}

function bytesOf(n: number, seed: number): Uint8Array {
  const rand = mulberry32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

// A mixed stream: zero-length payloads, small and larger payloads, extreme
// field values, unknown type, flags set, payloads that look like headers.
const SAMPLE_FRAMES: readonly { type: number; flags: number; stream: number; payload: Uint8Array }[] = [
  { type: FrameType.PING, flags: 0, stream: 0, payload: encodePingPayload(1) },
  { type: FrameType.HALF_CLOSE, flags: 0, stream: 0, payload: new Uint8Array(0) },
  { type: FrameType.CALL, flags: 0x01, stream: 1, payload: bytesOf(37, 1) },
  { type: FrameType.CANCEL, flags: 0, stream: 2, payload: new Uint8Array(0) },
  { type: FrameType.RESULT, flags: 0xff, stream: MAX_STREAM_ID, payload: bytesOf(300, 2) },
  { type: 0xee, flags: 0x80, stream: 0x01020304, payload: new Uint8Array([0]) },
  { type: FrameType.PROGRESS, flags: 0, stream: 7, payload: encodeFrame(FrameType.PING, 0, encodePingPayload(9)) },
  { type: FrameType.PONG, flags: 0, stream: 0, payload: encodePingPayload(0xffffffff) },
  { type: FrameType.ERROR, flags: 0, stream: 3, payload: new Uint8Array(0) },
];

const EXPECTED: PlainFrame[] = SAMPLE_FRAMES.map((f) => ({
  type: f.type,
  flags: f.flags,
  stream: f.stream,
  payload: toHex(f.payload),
}));

const STREAM = concat(SAMPLE_FRAMES.map((f) => encodeFrame(f.type, f.stream, f.payload, f.flags)));

// ---------------------------------------------------------------- hex vectors

describe('frame encoding: fixed hex vectors', () => {
  it('PING with seq 1', () => {
    const frame = encodeFrame(FrameType.PING, 0, encodePingPayload(1));
    expect(toHex(frame)).toBe('00000004' + '09' + '00' + '00000000' + '00000001');
  });

  it('HALF_CLOSE with no payload is the 10-byte header only', () => {
    expect(toHex(encodeFrame(FrameType.HALF_CLOSE, 0))).toBe('00000000' + '0c' + '00' + '00000000');
    expect(toHex(encodeFrame(FrameType.HALF_CLOSE, 0, new Uint8Array(0)))).toBe('000000000c0000000000');
  });

  it('big-endian length, flags and the largest stream id', () => {
    const frame = encodeFrame(FrameType.RESULT, MAX_STREAM_ID, new Uint8Array([0xab, 0xcd, 0xef]), 0x5a);
    expect(toHex(frame)).toBe('00000003' + '06' + '5a' + 'ffffffff' + 'abcdef');
  });

  it('a 258-byte payload encodes its length as 00000102', () => {
    const frame = encodeFrame(FrameType.CALL, 0x00010203, new Uint8Array(258).fill(0x11));
    expect(toHex(frame.subarray(0, FRAME_HEADER_BYTES))).toBe('00000102' + '03' + '00' + '00010203');
    expect(frame.byteLength).toBe(FRAME_HEADER_BYTES + 258);
  });

  it('writeFrameHeader writes at an offset inside a larger buffer', () => {
    const target = new Uint8Array(4 + FRAME_HEADER_BYTES + 2).fill(0xee);
    writeFrameHeader(target, 4, FrameType.GOAWAY, 3, 0, 0x01020304);
    expect(toHex(target)).toBe('eeeeeeee' + '01020304' + '0b' + '03' + '00000000' + 'eeee');
  });

  it('rejects a stream id out of range', () => {
    expect(() => encodeFrame(FrameType.CALL, -1)).toThrow(RangeError);
    expect(() => encodeFrame(FrameType.CALL, MAX_STREAM_ID + 1)).toThrow(RangeError);
    expect(() => encodeFrame(FrameType.CALL, 1.5)).toThrow(RangeError);
  });

  it('decodes the PING vector from raw hex', () => {
    const frames = decodeChunks([hex('00000004 09 00 00000000 00000001')]);
    expect(frames).toEqual([{ type: 0x09, flags: 0, stream: 0, payload: '00000001' }]);
  });

  it('decodes two hex frames back to back, including an unknown type', () => {
    const frames = decodeChunks([hex('00000000 0c 00 00000000' + '00000002 7f 81 00000005 beef')]);
    expect(frames).toEqual([
      { type: 0x0c, flags: 0, stream: 0, payload: '' },
      { type: 0x7f, flags: 0x81, stream: 5, payload: 'beef' },
    ]);
  });
});

// ---------------------------------------------------------------- chunkings

describe('FrameDecoder: any chunking yields the same frames in the same order', () => {
  it('all in one chunk', () => {
    expect(decodeChunks([STREAM])).toEqual(EXPECTED);
  });

  it('split into two chunks at every offset', () => {
    for (let at = 0; at <= STREAM.byteLength; at++) {
      const frames = decodeChunks(splitAt(STREAM, [at]));
      expect(frames, `split at ${at}`).toEqual(EXPECTED);
    }
  });

  it('split into three chunks at every pair of offsets inside the first frames', () => {
    // Every pair over the first 80 bytes (crosses headers, tiny payloads and zero-length frames).
    const limit = 80;
    for (let a = 0; a <= limit; a++) {
      for (let b = a; b <= limit; b++) {
        expect(decodeChunks(splitAt(STREAM, [a, b])), `split at ${a},${b}`).toEqual(EXPECTED);
      }
    }
  });

  it('one byte at a time', () => {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < STREAM.byteLength; i++) chunks.push(STREAM.subarray(i, i + 1));
    expect(decodeChunks(chunks)).toEqual(EXPECTED);
  });

  it('random chunkings from a seeded PRNG', () => {
    const rand = mulberry32(0xc0ffee);
    for (let round = 0; round < 300; round++) {
      const maxChunk = 1 + Math.floor(rand() * 64);
      const chunks = randomChunks(STREAM, rand, maxChunk);
      expect(decodeChunks(chunks), `round ${round}, maxChunk ${maxChunk}`).toEqual(EXPECTED);
    }
  });

  it('empty chunks are harmless, before, between and after frames', () => {
    const empty = new Uint8Array(0);
    const half = Math.floor(STREAM.byteLength / 2);
    const chunks = [empty, STREAM.subarray(0, 3), empty, STREAM.subarray(3, half), empty, STREAM.subarray(half), empty];
    expect(decodeChunks(chunks)).toEqual(EXPECTED);
  });

  it('a chunk that is a view at a non-zero offset of a larger buffer', () => {
    const backing = new Uint8Array(7 + STREAM.byteLength + 5).fill(0xaa);
    backing.set(STREAM, 7);
    const view = backing.subarray(7, 7 + STREAM.byteLength);
    const decoder = new FrameDecoder({ maxPayloadBytes: 1 << 20 });
    const frames: PlainFrame[] = [];
    decoder.push(view, (f) => frames.push(plain(f)));
    expect(frames).toEqual(EXPECTED);
  });

  it('bufferedBytes counts a partial header, then returns to 0', () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 100 });
    const frame = encodeFrame(FrameType.CALL, 1, new Uint8Array([1, 2, 3, 4, 5]));
    const seen: PlainFrame[] = [];
    decoder.push(frame.slice(0, 4), (f) => seen.push(plain(f)));
    expect(decoder.bufferedBytes).toBe(4);
    decoder.push(frame.slice(4, 12), (f) => seen.push(plain(f)));
    expect(seen).toEqual([]);
    expect(decoder.bufferedBytes).toBe(2);
    decoder.push(frame.slice(12), (f) => seen.push(plain(f)));
    expect(seen).toEqual([{ type: FrameType.CALL, flags: 0, stream: 1, payload: '0102030405' }]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('delivers a frame as soon as its last byte arrives, not later', () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 100 });
    const a = encodeFrame(FrameType.PING, 0, encodePingPayload(1));
    const b = encodeFrame(FrameType.PING, 0, encodePingPayload(2));
    const both = concat([a, b]);
    const seen: number[] = [];
    for (let i = 0; i < both.byteLength; i++) {
      decoder.push(both.slice(i, i + 1), (f) => seen.push(new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0)));
      if (i < a.byteLength - 1) expect(seen).toEqual([]);
      else if (i < both.byteLength - 1) expect(seen).toEqual([1]);
    }
    expect(seen).toEqual([1, 2]);
  });
});

// ---------------------------------------------------------------- zero-length payloads

describe('FrameDecoder: zero-length payloads', () => {
  const zeros = concat([
    encodeFrame(FrameType.HALF_CLOSE, 0),
    encodeFrame(FrameType.CANCEL, 5),
    encodeFrame(0x42, 9, undefined, 0x07),
  ]);
  const expected: PlainFrame[] = [
    { type: FrameType.HALF_CLOSE, flags: 0, stream: 0, payload: '' },
    { type: FrameType.CANCEL, flags: 0, stream: 5, payload: '' },
    { type: 0x42, flags: 7, stream: 9, payload: '' },
  ];

  it('whole, at every split, and byte by byte', () => {
    expect(decodeChunks([zeros])).toEqual(expected);
    for (let at = 0; at <= zeros.byteLength; at++) {
      expect(decodeChunks(splitAt(zeros, [at])), `split at ${at}`).toEqual(expected);
    }
    const ones = Array.from({ length: zeros.byteLength }, (_, i) => zeros.subarray(i, i + 1));
    expect(decodeChunks(ones)).toEqual(expected);
  });

  it('the payload of a zero-length frame is an empty Uint8Array', () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 0 });
    const payloads: Uint8Array[] = [];
    decoder.push(encodeFrame(FrameType.CANCEL, 1), (f) => payloads.push(f.payload));
    const header = encodeFrame(FrameType.CANCEL, 2);
    decoder.push(header.slice(0, 3), (f) => payloads.push(f.payload));
    decoder.push(header.slice(3), (f) => payloads.push(f.payload));
    expect(payloads).toHaveLength(2);
    for (const p of payloads) {
      expect(p).toBeInstanceOf(Uint8Array);
      expect(p.byteLength).toBe(0);
    }
  });
});

// ---------------------------------------------------------------- zero copy

describe('FrameDecoder: payload views', () => {
  it('a frame whole in one chunk yields a view of that chunk', () => {
    const chunk = concat([
      encodeFrame(FrameType.CALL, 1, new Uint8Array([1, 2, 3])),
      encodeFrame(FrameType.RESULT, 1, new Uint8Array([4, 5, 6, 7])),
    ]);
    const decoder = new FrameDecoder({ maxPayloadBytes: 100 });
    const frames: Frame[] = [];
    decoder.push(chunk, (f) => frames.push(f));
    expect(frames).toHaveLength(2);
    const [first, second] = frames as [Frame, Frame];
    expect(first.payload.buffer).toBe(chunk.buffer);
    expect(first.payload.byteOffset).toBe(FRAME_HEADER_BYTES);
    expect(Array.from(first.payload)).toEqual([1, 2, 3]);
    expect(second.payload.buffer).toBe(chunk.buffer);
    expect(second.payload.byteOffset).toBe(FRAME_HEADER_BYTES * 2 + 3);
    expect(Array.from(second.payload)).toEqual([4, 5, 6, 7]);
    // A view: writing through the chunk shows through the payload.
    chunk[FRAME_HEADER_BYTES] = 0x99;
    expect(first.payload[0]).toBe(0x99);
  });

  it('a frame split across chunks is assembled into its own buffer of exactly its size', () => {
    const frame = encodeFrame(FrameType.CALL, 1, new Uint8Array([1, 2, 3, 4, 5, 6]));
    const a = frame.slice(0, 13);
    const b = frame.slice(13);
    const decoder = new FrameDecoder({ maxPayloadBytes: 100 });
    const frames: Frame[] = [];
    decoder.push(a, (f) => frames.push(f));
    decoder.push(b, (f) => frames.push(f));
    expect(frames).toHaveLength(1);
    const payload = (frames[0] as Frame).payload;
    expect(payload.buffer).not.toBe(a.buffer);
    expect(payload.buffer).not.toBe(b.buffer);
    expect(payload.byteLength).toBe(6);
    expect(payload.buffer.byteLength).toBe(6);
    expect(Array.from(payload)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('an assembled payload is not overwritten by the next frames', () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 100 });
    const payloads: Uint8Array[] = [];
    const stream = concat([
      encodeFrame(FrameType.CALL, 1, new Uint8Array([1, 1, 1])),
      encodeFrame(FrameType.CALL, 2, new Uint8Array([2, 2, 2])),
    ]);
    for (let i = 0; i < stream.byteLength; i++) decoder.push(stream.slice(i, i + 1), (f) => payloads.push(f.payload));
    expect(payloads.map((p) => Array.from(p))).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
  });
});

// ---------------------------------------------------------------- size limit

describe('FrameDecoder: payload size limit', () => {
  const LIMIT = 64;

  function oversizeHeader(length = LIMIT + 1): Uint8Array {
    const header = new Uint8Array(FRAME_HEADER_BYTES);
    writeFrameHeader(header, 0, FrameType.CALL, 0, 1, length);
    return header;
  }

  function expectTooLarge(err: unknown): void {
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).toBeInstanceOf(HeartwireError);
    expect((err as ProtocolError).code).toBe('HW_ERR_FRAME_TOO_LARGE');
    expect((err as ProtocolError).message).toContain(String(LIMIT + 1));
  }

  it('throws as soon as a whole header announces maxPayloadBytes + 1', () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: LIMIT });
    const onFrame = (): void => {
      throw new Error('no frame expected');
    };
    expectTooLarge(catchError(() => decoder.push(oversizeHeader(), onFrame)));
    expect(decoder.bufferedBytes).toBeLessThanOrEqual(FRAME_HEADER_BYTES);
  });

  it('throws when the oversize header arrives split at every offset, and not before it is complete', () => {
    const header = oversizeHeader();
    for (let at = 1; at < FRAME_HEADER_BYTES; at++) {
      const decoder = new FrameDecoder({ maxPayloadBytes: LIMIT });
      decoder.push(header.slice(0, at), () => expect.unreachable());
      expect(decoder.bufferedBytes).toBe(at);
      expectTooLarge(catchError(() => decoder.push(header.slice(at), () => expect.unreachable())));
      expect(decoder.bufferedBytes).toBeLessThanOrEqual(FRAME_HEADER_BYTES);
    }
  });

  it('throws when the oversize header arrives one byte at a time, exactly on the 10th byte', () => {
    const header = oversizeHeader(0xffffffff);
    const decoder = new FrameDecoder({ maxPayloadBytes: LIMIT });
    for (let i = 0; i < FRAME_HEADER_BYTES - 1; i++) {
      decoder.push(header.slice(i, i + 1), () => expect.unreachable());
      expect(decoder.bufferedBytes).toBe(i + 1);
    }
    const err = catchError(() => decoder.push(header.slice(FRAME_HEADER_BYTES - 1), () => expect.unreachable()));
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe('HW_ERR_FRAME_TOO_LARGE');
    expect(decoder.bufferedBytes).toBeLessThanOrEqual(FRAME_HEADER_BYTES);
  });

  it('throws after earlier good frames were delivered from the same chunk', () => {
    const good = encodeFrame(FrameType.PING, 0, encodePingPayload(3));
    const decoder = new FrameDecoder({ maxPayloadBytes: LIMIT });
    const seen: PlainFrame[] = [];
    const err = catchError(() => decoder.push(concat([good, oversizeHeader()]), (f) => seen.push(plain(f))));
    expectTooLarge(err);
    expect(seen).toEqual([{ type: FrameType.PING, flags: 0, stream: 0, payload: '00000003' }]);
  });

  it('a failed decoder keeps throwing the same error, whatever is pushed next', () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: LIMIT });
    const first = catchError(() => decoder.push(oversizeHeader(), () => expect.unreachable()));
    expectTooLarge(first);
    const good = encodeFrame(FrameType.PING, 0, encodePingPayload(1));
    const again = catchError(() => decoder.push(good, () => expect.unreachable()));
    expect(again).toBe(first);
    const onEmpty = catchError(() => decoder.push(new Uint8Array(0), () => expect.unreachable()));
    expect(onEmpty).toBe(first);
  });

  it('accepts a payload of exactly maxPayloadBytes, whole and split at every offset', () => {
    const payload = bytesOf(LIMIT, 42);
    const frame = encodeFrame(FrameType.RESULT, 4, payload);
    const expected = [{ type: FrameType.RESULT, flags: 0, stream: 4, payload: toHex(payload) }];
    expect(decodeChunks([frame], LIMIT)).toEqual(expected);
    for (let at = 0; at <= frame.byteLength; at++) {
      expect(decodeChunks(splitAt(frame, [at]), LIMIT), `split at ${at}`).toEqual(expected);
    }
  });

  it('maxPayloadBytes 0 accepts empty frames and refuses a 1-byte payload', () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 0 });
    const seen: PlainFrame[] = [];
    decoder.push(encodeFrame(FrameType.HALF_CLOSE, 0), (f) => seen.push(plain(f)));
    expect(seen).toHaveLength(1);
    const err = catchError(() => decoder.push(encodeFrame(FrameType.CALL, 1, new Uint8Array([1])), () => expect.unreachable()));
    expect((err as ProtocolError).code).toBe('HW_ERR_FRAME_TOO_LARGE');
  });
});

describe('FrameDecoder.arrivingType', () => {
  it('names the frame whose payload is still arriving, from its header on, and nothing between frames', () => {
    const call = encodeFrame(FrameType.CALL, 1, new Uint8Array(1000));
    const decoder = new FrameDecoder({ maxPayloadBytes: 4096 });
    const frames: Frame[] = [];
    expect(decoder.arrivingType).toBeUndefined();
    // Half a header: not known yet.
    decoder.push(call.subarray(0, 5), (f) => frames.push(f));
    expect(decoder.arrivingType).toBeUndefined();
    decoder.push(call.subarray(5, FRAME_HEADER_BYTES + 10), (f) => frames.push(f));
    expect(decoder.arrivingType).toBe(FrameType.CALL);
    decoder.push(call.subarray(FRAME_HEADER_BYTES + 10), (f) => frames.push(f));
    expect(frames).toHaveLength(1);
    expect(decoder.arrivingType).toBeUndefined();
    // A whole frame plus the start of the next one in a chunk.
    const ping = encodeFrame(FrameType.PING, 0, encodePingPayload(1));
    decoder.push(Buffer.concat([ping, call.subarray(0, FRAME_HEADER_BYTES + 1)]), (f) => frames.push(f));
    expect(frames).toHaveLength(2);
    expect(decoder.arrivingType).toBe(FrameType.CALL);
  });
});

describe('FrameDecoder: admission', () => {
  /** A PING, a refused CALL of 300 bytes, an empty refused frame, then a RESULT: only the PING and the RESULT come out. */
  function stream(): { bytes: Uint8Array; expected: PlainFrame[] } {
    const ping = encodeFrame(FrameType.PING, 0, encodePingPayload(7));
    const refused = encodeFrame(FrameType.CALL, 3, bytesOf(300, 5));
    const refusedEmpty = encodeFrame(0x7f, 0);
    const result = encodeFrame(FrameType.RESULT, 9, bytesOf(20, 6));
    return {
      bytes: concat([ping, refused, refusedEmpty, result]),
      expected: [
        { type: FrameType.PING, flags: 0, stream: 0, payload: '00000007' },
        { type: FrameType.RESULT, flags: 0, stream: 9, payload: toHex(bytesOf(20, 6)) },
      ],
    };
  }

  function decodeAdmitting(chunks: readonly Uint8Array[]): { frames: PlainFrame[]; asked: number[][]; decoder: FrameDecoder } {
    const asked: number[][] = [];
    const decoder = new FrameDecoder({
      maxPayloadBytes: 1 << 20,
      admit: (type, id, length) => {
        asked.push([type, id, length]);
        return type !== FrameType.CALL && type !== 0x7f;
      },
    });
    const frames: PlainFrame[] = [];
    for (const chunk of chunks) decoder.push(chunk.slice(), (f) => frames.push(plain(f)));
    return { frames, asked, decoder };
  }

  it('a refused frame is skipped and never delivered, whole and split at every offset', () => {
    const { bytes, expected } = stream();
    const askedExpected = [
      [FrameType.PING, 0, 4],
      [FrameType.CALL, 3, 300],
      [0x7f, 0, 0],
      [FrameType.RESULT, 9, 20],
    ];
    for (let at = 0; at <= bytes.byteLength; at++) {
      const { frames, asked, decoder } = decodeAdmitting(splitAt(bytes, [at]));
      expect(frames, `split at ${at}`).toEqual(expected);
      expect(asked, `split at ${at}`).toEqual(askedExpected);
      expect(decoder.bufferedBytes).toBe(0);
    }
  });

  it('a refused payload is never buffered, even while it arrives byte by byte', () => {
    const { bytes, expected } = stream();
    const { frames, decoder } = decodeAdmitting([...bytes].map((b) => new Uint8Array([b])));
    expect(frames).toEqual(expected);
    expect(decoder.bufferedBytes).toBe(0);
    // Mid-payload of the refused CALL: only the skip count, no buffer.
    const midway = new FrameDecoder({ maxPayloadBytes: 1 << 20, admit: () => false });
    midway.push(encodeFrame(FrameType.CALL, 3, bytesOf(300, 5)).subarray(0, 200), () => expect.unreachable());
    expect(midway.bufferedBytes).toBe(0);
  });

  it('the size limit is checked before admission is asked', () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 10, admit: () => expect.unreachable() });
    const err = catchError(() => decoder.push(encodeFrame(FrameType.CALL, 1, new Uint8Array(11)), () => expect.unreachable()));
    expect((err as ProtocolError).code).toBe('HW_ERR_FRAME_TOO_LARGE');
  });

  it('what admission throws comes out of push, as from onFrame', () => {
    const boom = new ProtocolError('HW_ERR_PROTOCOL', 'no');
    const decoder = new FrameDecoder({
      maxPayloadBytes: 1 << 20,
      admit: () => {
        throw boom;
      },
    });
    expect(catchError(() => decoder.push(encodeFrame(FrameType.CALL, 1, new Uint8Array(5)), () => expect.unreachable()))).toBe(boom);
  });
});
