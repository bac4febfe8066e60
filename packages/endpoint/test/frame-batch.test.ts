import { describe, expect, it } from 'vitest';
import { encodeFrame, encodePingPayload, FrameDecoder, FrameType, MAX_STREAM_ID, type Frame } from '@heartwire/core';
import { EARLY_FLUSH_BYTES, FrameBatch, LARGE_PAYLOAD_BYTES } from '@heartwire/endpoint';
import { hex, toHex } from '../../core/test/hex.js';

/** A batch whose chunks and deferred flushes are recorded. */
class Recorded {
  readonly chunks: Uint8Array[] = [];
  readonly deferred: (() => void)[] = [];
  readonly sizes: number[] = [];
  readonly batch = new FrameBatch(
    { writeFrames: (chunk) => this.chunks.push(chunk) },
    {
      defer: (flush, batch) => this.deferred.push(() => flush(batch)),
      allocate: (size) => {
        this.sizes.push(size);
        return new Uint8Array(size);
      },
    },
  );
}

/** Flushes the batch now and returns every chunk it wrote, those it sent early on its own included. */
function flushed(r: Recorded): Uint8Array[] {
  r.batch.flush();
  return r.chunks.splice(0);
}

function joined(chunks: readonly Uint8Array[]): string {
  return chunks.map(toHex).join('');
}

function payloadOf(size: number, fill: number): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

describe('FrameBatch', () => {
  it('writes the bytes encodeFrame would, all small frames in one buffer of exactly their size', () => {
    const r = new Recorded();
    const { batch } = r;
    const result = hex('a4646f6e65');
    batch.push(FrameType.ACCEPTED, 1);
    batch.push(FrameType.RESULT, 1, result);
    batch.pushPing(FrameType.PING, 7);
    batch.push(FrameType.ERROR, 0xffff_ffff, hex('92a178a179'));
    const expected = [
      encodeFrame(FrameType.ACCEPTED, 1),
      encodeFrame(FrameType.RESULT, 1, result),
      encodeFrame(FrameType.PING, 0, encodePingPayload(7)),
      encodeFrame(FrameType.ERROR, 0xffff_ffff, hex('92a178a179')),
    ];
    const total = expected.reduce((n, f) => n + f.byteLength, 0);
    expect(batch.bytes).toBe(total);
    const chunks = flushed(r);
    expect(chunks).toHaveLength(1);
    expect(r.sizes).toEqual([total]);
    expect(joined(chunks)).toBe(joined(expected));
    expect(batch.bytes).toBe(0);
  });

  it('writes a PING or PONG from its sequence number, the whole u32 range', () => {
    const r = new Recorded();
    const { batch } = r;
    batch.pushPing(FrameType.PONG, 0xffff_ffff);
    batch.pushPing(FrameType.PING, 1);
    expect(joined(flushed(r))).toBe(toHex(hex('00000004 0a 00 00000000 ffffffff  00000004 09 00 00000000 00000001')));
  });

  it('sends a large payload as its own buffer, uncopied, after the frames before it and its header', () => {
    const r = new Recorded();
    const { batch } = r;
    const large = payloadOf(LARGE_PAYLOAD_BYTES, 0xab);
    const small = payloadOf(LARGE_PAYLOAD_BYTES - 1, 0xcd);
    batch.push(FrameType.ACCEPTED, 3);
    batch.push(FrameType.RESULT, 3, large);
    batch.push(FrameType.PROGRESS, 5, small);
    batch.pushPing(FrameType.PING, 2);
    const chunks = flushed(r);
    // Each payload over EARLY_FLUSH_BYTES sent the batch at once: the PING waited for the flush.
    expect(chunks).toHaveLength(4);
    expect(chunks[1]).toBe(large);
    expect(chunks[0]?.byteLength).toBe(20);
    expect(chunks[2]?.byteLength).toBe(10 + small.byteLength);
    expect(chunks[3]?.byteLength).toBe(14);
    expect(joined(chunks)).toBe(
      joined([
        encodeFrame(FrameType.ACCEPTED, 3),
        encodeFrame(FrameType.RESULT, 3, large),
        encodeFrame(FrameType.PROGRESS, 5, small),
        encodeFrame(FrameType.PING, 0, encodePingPayload(2)),
      ]),
    );
  });

  it('decodes back to the frames pushed, in order, whatever their mix', () => {
    const r = new Recorded();
    const { batch } = r;
    const pushed: Frame[] = [];
    for (let i = 1; i <= 40; i++) {
      const kind = i % 4;
      if (kind === 0) {
        batch.pushPing(FrameType.PING, i);
        pushed.push({ type: FrameType.PING, flags: 0, stream: 0, payload: encodePingPayload(i) });
      } else {
        const payload = kind === 1 ? new Uint8Array(0) : payloadOf(kind === 2 ? 7 * i : LARGE_PAYLOAD_BYTES + i, i & 0xff);
        batch.push(FrameType.PROGRESS, i, kind === 1 ? undefined : payload);
        pushed.push({ type: FrameType.PROGRESS, flags: 0, stream: i, payload });
      }
    }
    const decoded: Frame[] = [];
    const decoder = new FrameDecoder({ maxPayloadBytes: 1 << 20 });
    for (const chunk of flushed(r)) decoder.push(chunk, (f) => decoded.push({ ...f, payload: f.payload.slice() }));
    const text = (frames: Frame[]) => frames.map((f) => `${f.type} ${f.stream} ${Buffer.from(f.payload).toString('hex')}`);
    expect(text(decoded)).toEqual(text(pushed));
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('sends the batch at once when it reaches EARLY_FLUSH_BYTES; the turn\'s flush sends what came after', () => {
    const r = new Recorded();
    const payload = payloadOf(100, 1);
    const perFrame = 10 + payload.byteLength;
    const frames = Math.ceil(EARLY_FLUSH_BYTES / perFrame);
    for (let i = 1; i <= frames + 2; i++) r.batch.push(FrameType.RESULT, i, payload);
    expect(r.chunks.map((c) => c.byteLength)).toEqual([frames * perFrame]);
    expect(r.deferred).toHaveLength(1);
    r.deferred[0]!();
    expect(r.chunks.map((c) => c.byteLength)).toEqual([frames * perFrame, 2 * perFrame]);
  });

  it('flushes once per turn: the first frame defers a flush, and it sends everything queued by then', () => {
    const r = new Recorded();
    r.batch.push(FrameType.ACCEPTED, 1);
    r.batch.push(FrameType.ACCEPTED, 2);
    r.batch.pushPing(FrameType.PONG, 3);
    expect(r.deferred).toHaveLength(1);
    expect(r.chunks).toHaveLength(0);
    r.deferred[0]!();
    expect(r.chunks).toHaveLength(1);
    expect(r.chunks[0]?.byteLength).toBe(10 + 10 + 14);
    // A flush called early leaves the deferred one nothing to do; the next frame defers a new one.
    r.batch.push(FrameType.CANCEL, 4);
    expect(r.deferred).toHaveLength(2);
    r.batch.flush();
    r.deferred[1]!();
    expect(r.chunks).toHaveLength(2);
    r.batch.push(FrameType.CANCEL, 5);
    expect(r.deferred).toHaveLength(3);
  });

  it('keeps batches apart: a frame pushed while flushing, or into another batch, goes out with its own batch', () => {
    const a = new Recorded();
    const b = new Recorded();
    let reentered = false;
    const batch = new FrameBatch(
      {
        writeFrames: (chunk) => {
          a.chunks.push(chunk);
          // A sink may write more (a failed write closing the connection, say): it starts a new batch.
          if (!reentered) {
            reentered = true;
            batch.push(FrameType.GOAWAY, 0);
          }
        },
      },
      { defer: () => {} },
    );
    batch.push(FrameType.ACCEPTED, 1);
    b.batch.push(FrameType.ACCEPTED, 2);
    batch.flush();
    b.batch.push(FrameType.CANCEL, 3);
    expect(joined(a.chunks)).toBe(toHex(encodeFrame(FrameType.ACCEPTED, 1)));
    expect(batch.bytes).toBe(10);
    batch.flush();
    expect(joined(a.chunks)).toBe(joined([encodeFrame(FrameType.ACCEPTED, 1), encodeFrame(FrameType.GOAWAY, 0)]));
    expect(joined(flushed(b))).toBe(joined([encodeFrame(FrameType.ACCEPTED, 2), encodeFrame(FrameType.CANCEL, 3)]));
  });

  it('is empty after a flush or a clear, and writes nothing when empty', () => {
    const r = new Recorded();
    const { batch } = r;
    expect(flushed(r)).toEqual([]);
    batch.push(FrameType.CANCEL, 9);
    batch.clear();
    expect(batch.bytes).toBe(0);
    expect(flushed(r)).toEqual([]);
    batch.push(FrameType.CANCEL, 10);
    expect(joined(flushed(r))).toBe(toHex(encodeFrame(FrameType.CANCEL, 10)));
    expect(flushed(r)).toEqual([]);
  });

  it('refuses a stream id that is not a u32, as encodeFrame does, and queues nothing', () => {
    const r = new Recorded();
    const { batch } = r;
    for (const stream of [-1, 1.5, MAX_STREAM_ID + 1, Number.NaN]) {
      expect(() => batch.push(FrameType.CALL, stream)).toThrow(RangeError);
    }
    expect(batch.bytes).toBe(0);
  });
});
