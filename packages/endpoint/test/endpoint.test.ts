import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  decodeGoAway,
  encodeFrame,
  encodePingPayload,
  FrameDecoder,
  FrameType,
  HeartwireError,
  PayloadCodec,
  type Frame,
  type Role,
} from '@heartwire/core';
import { Endpoint, type EndpointRole, type Failure } from '@heartwire/endpoint';
import { socketPair } from './socket-pair.js';

const codec = new PayloadCodec();

/** A role that records what its endpoint tells it. */
class Recorder implements EndpointRole {
  readonly frames: Frame[] = [];
  readonly failures: Failure[] = [];
  closedWith: HeartwireError | undefined | 'open' = 'open';
  socketClosed = false;
  peerEnded = false;
  chunks = 0;
  lastStream = 7;
  admitted = true;
  constructor(readonly role: Role) {}
  onFrame(frame: Frame): void {
    this.frames.push({ ...frame, payload: frame.payload.slice() });
  }
  onChunkRead(): void {
    this.chunks++;
  }
  admit(): boolean {
    return this.admitted;
  }
  onPeerEnd(): void {
    this.peerEnded = true;
  }
  failure(failure: Failure): HeartwireError {
    this.failures.push(failure);
    return new HeartwireError(`E_${failure.kind.toUpperCase()}`, failure.kind);
  }
  onClosed(reason: HeartwireError | undefined): void {
    if (this.closedWith !== 'open') throw new Error('closed twice');
    this.closedWith = reason;
  }
  onSocketClosed(): void {
    this.socketClosed = true;
  }
}

/** A server-role endpoint on one end of an in-memory pair; the test plays the client on the other. */
function serverEnd(limits = { maxFrameBytes: 1 << 20, maxWriteBacklogBytes: 1 << 20 }) {
  const [ours, theirs] = socketPair();
  const role = new Recorder('server');
  const endpoint = new Endpoint({ stream: ours, tcp: ours }, limits, codec, role);
  const received: Frame[] = [];
  const decoder = new FrameDecoder({ maxPayloadBytes: 1 << 24 });
  theirs.on('data', (chunk: Buffer) => decoder.push(chunk, (f) => received.push({ ...f, payload: f.payload.slice() })));
  theirs.on('error', () => {});
  return { endpoint, role, peer: theirs, received };
}

const hello = encodeFrame(FrameType.HELLO, 0, codec.encode({ versions: [1] }));
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Endpoint on an in-memory socket pair', () => {
  it('passes the frames the rulebook allows, in order, and tells the role once per chunk', async () => {
    const { endpoint, role, peer } = serverEnd();
    peer.write(hello);
    await tick();
    expect(role.frames.map((f) => f.type)).toEqual([FrameType.HELLO]);
    endpoint.phase = 'open';
    peer.write(Buffer.concat([encodeFrame(FrameType.CALL, 1, codec.encode(['m', null])), encodeFrame(0x7e, 0, new Uint8Array(100)), encodeFrame(FrameType.PING, 0, encodePingPayload(3))]));
    await tick();
    // The unknown type was skipped unread.
    expect(role.frames.map((f) => f.type)).toEqual([FrameType.HELLO, FrameType.CALL, FrameType.PING]);
    expect(role.chunks).toBe(2);
  });

  it('a violation: GOAWAY with its code and our lastStream, then one close with the role\'s error', async () => {
    const { endpoint, role, peer, received } = serverEnd();
    endpoint.phase = 'open';
    peer.write(encodeFrame(FrameType.CANCEL, 1, Uint8Array.of(1)));
    await once(peer, 'end');
    expect(received.map((f) => f.type)).toEqual([FrameType.GOAWAY]);
    expect(decodeGoAway(codec, received[0]!.payload)).toMatchObject({ code: 'HW_ERR_PROTOCOL', lastStream: 7 });
    expect(role.failures).toEqual([{ kind: 'goaway', error: expect.objectContaining({ code: 'HW_ERR_PROTOCOL' }) }]);
    expect(role.closedWith).toMatchObject({ code: 'E_GOAWAY' });
    expect(endpoint.phase).toBe('closed');
  });

  it('while authenticating, frames after HELLO wait, the socket pauses, and releaseHeld hands them over in order', async () => {
    const { endpoint, role, peer } = serverEnd();
    peer.write(hello);
    await tick();
    endpoint.phase = 'authenticating';
    peer.write(Buffer.concat([1, 2].map((id) => encodeFrame(FrameType.CALL, id, codec.encode(['m', id])))));
    await tick();
    expect(role.frames.map((f) => f.type)).toEqual([FrameType.HELLO]);
    endpoint.phase = 'open';
    endpoint.releaseHeld();
    expect(role.frames.map((f) => f.stream)).toEqual([0, 1, 2]);
    peer.write(encodeFrame(FrameType.CALL, 3, codec.encode(['m', 3])));
    await tick();
    expect(role.frames.map((f) => f.stream)).toEqual([0, 1, 2, 3]);
  });

  it('writes of one turn go out in one chunk; past the backlog cap the peer is stalled and the connection reset', async () => {
    const { endpoint, role, peer } = serverEnd({ maxFrameBytes: 1 << 20, maxWriteBacklogBytes: 1000 });
    const chunks: Buffer[] = [];
    peer.on('data', (c: Buffer) => chunks.push(c));
    endpoint.phase = 'open';
    endpoint.write(FrameType.ACCEPTED, 1);
    endpoint.write(FrameType.RESULT, 1, codec.encode('x'));
    await tick();
    expect(chunks).toHaveLength(1);
    // Nothing drains a batch within one turn: the second big frame finds 1,500 bytes waiting, over the cap.
    endpoint.write(FrameType.RESULT, 3, new Uint8Array(1500));
    expect(endpoint.write(FrameType.RESULT, 5, new Uint8Array(10))).toBe(false);
    await tick();
    expect(role.failures.at(-1)).toMatchObject({ kind: 'stalled', backlogBytes: expect.any(Number) });
    expect(endpoint.phase).toBe('closed');
  });

  it('the peer\'s FIN reaches the role; an RST is a reset; close runs once, whatever follows', async () => {
    const a = serverEnd();
    a.endpoint.phase = 'open';
    a.peer.end();
    await tick();
    expect(a.role.peerEnded).toBe(true);
    a.endpoint.close(undefined, 'end');
    a.endpoint.close(new HeartwireError('E_AGAIN', 'again'), 'reset');
    expect(a.role.closedWith).toBeUndefined();

    const b = serverEnd();
    b.endpoint.phase = 'open';
    (b.peer as unknown as { resetAndDestroy(): void }).resetAndDestroy();
    await once(b.peer, 'close');
    await tick();
    expect(b.role.failures[0]?.kind).toBe('reset');
    expect(b.role.closedWith).toMatchObject({ code: 'E_RESET' });
    expect(b.role.socketClosed).toBe(true);
  });
});
