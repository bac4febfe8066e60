import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { channels } from '../diagnostics.js';
import type { ResolvedServerOptions } from '../options.js';
import type { EndpointSockets } from '@heartwire/endpoint';

/** A connection ready to speak heartwire: TCP accepted and, with TLS, the TLS handshake done. */
export interface AcceptedSockets extends EndpointSockets {
  /** `performance.now()` when TCP accepted it: the handshake deadline runs from here. */
  readonly acceptedAt: number;
  /** Why the client's certificate failed verification, when the server must refuse it for that. */
  readonly certificateError: string | undefined;
}

/**
 * Accepts TCP connections and, with TLS, hands each raw socket to a
 * `tls.Server` that never listens itself (Node documents this injection
 * through its 'connection' event). Keeping the raw socket is what lets a
 * peer declared gone still be reset: a TLS socket cannot send an RST.
 */
export class Listener {
  readonly server: net.Server;
  private readonly secure: tls.Server | undefined;
  /** Raw sockets in their TLS handshake, by connection 4-tuple (what a TLS socket and its raw socket share). */
  private readonly handshaking = new Map<string, { tcp: net.Socket; acceptedAt: number }>();
  /** With mutual TLS, verification is ours, so a rejected client hears why (see ServerOptions.tls). */
  private readonly enforceClientCertificate: boolean;

  constructor(options: ResolvedServerOptions, onAccepted: (sockets: AcceptedSockets) => void) {
    // allowHalfOpen: we decide what a client's FIN means (see PROTOCOL.md, HALF_CLOSE).
    this.server = net.createServer({ allowHalfOpen: true });
    const tlsOptions = options.tls;
    this.enforceClientCertificate = tlsOptions?.requestCert === true && tlsOptions.rejectUnauthorized !== false;
    if (tlsOptions === undefined) {
      this.secure = undefined;
      this.server.on('connection', (socket: net.Socket) => {
        onAccepted({ stream: socket, tcp: socket, acceptedAt: performance.now(), certificateError: undefined });
      });
      return;
    }
    const secure = tls.createServer({
      handshakeTimeout: options.handshakeTimeoutMs,
      ...tlsOptions,
      rejectUnauthorized: this.enforceClientCertificate ? false : tlsOptions.rejectUnauthorized,
    });
    this.secure = secure;
    this.server.on('connection', (tcp: net.Socket) => {
      const key = tupleOf(tcp);
      this.handshaking.set(key, { tcp, acceptedAt: performance.now() });
      tcp.once('close', () => this.handshaking.delete(key));
      secure.emit('connection', tcp);
    });
    secure.on('secureConnection', (stream: tls.TLSSocket) => {
      const key = tupleOf(stream);
      const pending = this.handshaking.get(key);
      this.handshaking.delete(key);
      if (pending === undefined) {
        // Its raw socket closed in the meantime.
        stream.destroy();
        return;
      }
      const certificateError =
        this.enforceClientCertificate && !stream.authorized ? String(stream.authorizationError ?? 'no client certificate') : undefined;
      onAccepted({ stream, tcp: pending.tcp, acceptedAt: pending.acceptedAt, certificateError });
    });
    // With a listener here Node leaves the socket to us (a handshake timeout would keep it open): destroy it, and say why.
    secure.on('tlsClientError', (error: Error, stream: tls.TLSSocket) => {
      if (channels.tlsError.hasSubscribers) {
        channels.tlsError.publish({ remoteAddress: stream.remoteAddress, remotePort: stream.remotePort, error });
      }
      stream.destroy();
    });
  }

  /** Server shutdown: drops the connections still in their TLS handshake. */
  dropHandshakes(): void {
    for (const { tcp } of this.handshaking.values()) tcp.destroy();
    this.handshaking.clear();
  }
}

function tupleOf(socket: net.Socket): string {
  return `${socket.localAddress}|${socket.localPort}|${socket.remoteAddress}|${socket.remotePort}`;
}
