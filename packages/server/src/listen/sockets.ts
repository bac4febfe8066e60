import type { Socket } from 'node:net';
import { closeSockets, type CloseMode } from '@heartwire/endpoint';

/** A connection's frame stream and the TCP socket under it (one object without TLS). */
export interface ServerSockets {
  readonly stream: Socket;
  readonly tcp: Socket;
}

/** How long a connection being closed on purpose may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

const afterGrace = (destroy: () => void): void => {
  setTimeout(destroy, CLOSE_GRACE_MS).unref();
};

/** Closes a server connection (see `closeSockets` in core for the modes). */
export function closeServerSockets(sockets: ServerSockets, mode: CloseMode): void {
  closeSockets(sockets, mode, afterGrace);
}
