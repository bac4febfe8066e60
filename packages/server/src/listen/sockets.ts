import type { Socket } from 'node:net';

/** A connection's frame stream and the TCP socket under it (one object without TLS). */
export interface ServerSockets {
  readonly stream: Socket;
  readonly tcp: Socket;
}
