/**
 * The sockets of one connection, as closing it sees them. `stream` carries
 * the frames; `tcp` is the TCP socket under it: the same object for plain
 * TCP, the socket under the TLS layer otherwise (a TLS socket cannot send an
 * RST itself: Node's `resetAndDestroy()` refuses any handle that is not TCP).
 * Node's `net.Socket` and `tls.TLSSocket` fit as they are; closing calls
 * only these methods.
 */
export interface ConnectionSockets {
  readonly stream: { end(): unknown; destroy(): unknown };
  readonly tcp: { resetAndDestroy(): unknown };
}

/**
 * How to close: `reset` for a peer declared gone, `end` to flush what we
 * wrote first, `destroy` when the peer already closed or broke the connection.
 */
export type CloseMode = 'reset' | 'end' | 'destroy';

/**
 * Closes a connection. `reset` sends an RST (SO_LINGER 0), so the kernel
 * stops retransmitting to a peer declared gone; `destroy` closes at once;
 * `end` flushes what was written and closes our side, then hands the final
 * destroy to `afterGrace`, which runs it if the peer has not closed in time.
 */
export function closeSockets(sockets: ConnectionSockets, mode: CloseMode, afterGrace: (destroy: () => void) => void): void {
  switch (mode) {
    case 'reset':
      sockets.tcp.resetAndDestroy();
      return;
    case 'destroy':
      sockets.stream.destroy();
      return;
    case 'end':
      sockets.stream.end();
      afterGrace(() => sockets.stream.destroy());
      return;
  }
}

/** How long an `end` close waits for the peer to close its side before destroying the socket. */
const CLOSE_GRACE_MS = 1000;

const afterGrace = (destroy: () => void): void => {
  setTimeout(destroy, CLOSE_GRACE_MS).unref();
};

/** Closes a connection, an `end` close with a grace of {@link CLOSE_GRACE_MS} for the peer to close its side. */
export function closeConnection(sockets: ConnectionSockets, mode: CloseMode): void {
  closeSockets(sockets, mode, afterGrace);
}
