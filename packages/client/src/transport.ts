import net from 'node:net';
import tls from 'node:tls';
import type { ResolvedClientOptions } from './options.js';

/** A client connection's frame stream, the TCP socket under it (one object without TLS), and the event after which HELLO may go. */
export interface ClientSockets {
  readonly stream: net.Socket;
  readonly tcp: net.Socket;
  readonly readyEvent: 'connect' | 'secureConnect';
}

/**
 * Opens the TCP connection and, with `tls`, runs TLS over it. The TCP socket
 * is made here and kept, so a server declared gone can still be reset (a TLS
 * socket cannot send an RST).
 */
export function openSockets(options: ResolvedClientOptions): ClientSockets {
  const tcp = net.connect({ host: options.host, port: options.port, noDelay: true });
  if (options.tls === undefined) return { stream: tcp, tcp, readyEvent: 'connect' };
  // `host` names the server for the certificate check; SNI must not carry an IP address (RFC 6066).
  const servername = options.tls.servername ?? (net.isIP(options.host) === 0 ? options.host : undefined);
  const stream = tls.connect({ ...options.tls, socket: tcp, host: options.host, servername });
  return { stream, tcp, readyEvent: 'secureConnect' };
}

/**
 * Whether an error on the stream came from TLS (a certificate that fails
 * verification, an alert from the server) rather than from the network:
 * system errors carry the failing `syscall`, TLS errors do not.
 */
export function isTlsError(sockets: ClientSockets, err: NodeJS.ErrnoException): boolean {
  return sockets.readyEvent === 'secureConnect' && err.syscall === undefined;
}
