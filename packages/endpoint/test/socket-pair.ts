import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * Two connected in-memory sockets: what one writes, the other reads, in
 * order; `end()` reaches the other as its 'end'. Enough of `net.Socket` for
 * an Endpoint (no kernel, no handle: the write-queue probe reads 0), plus
 * `resetAndDestroy`, which destroys both sides as an RST would.
 */
export function socketPair(): [Socket, Socket] {
  let a!: Duplex;
  let b!: Duplex;
  const make = (other: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        const peer = other();
        if (peer.destroyed) callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
        else {
          peer.push(chunk);
          callback();
        }
      },
      final(callback) {
        other().push(null);
        callback();
      },
    });
  a = make(() => b);
  b = make(() => a);
  for (const [side, other] of [
    [a, b],
    [b, a],
  ] as const) {
    Object.assign(side, {
      resetAndDestroy: () => {
        side.destroy();
        other.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
      },
    });
  }
  return [a as unknown as Socket, b as unknown as Socket];
}
