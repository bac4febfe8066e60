import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Hello } from '@heartwire/core';
import type { EndpointSockets } from '@heartwire/endpoint';

/** What the authentication hook knows of the client besides its HELLO. */
export interface PeerInfo {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /**
   * The client's certificate, over TLS with `requestCert` (already verified
   * against the server's CAs unless `rejectUnauthorized` is false); undefined
   * without TLS or when the client sent none.
   */
  readonly certificate: PeerCertificate | undefined;
}

/**
 * Decides whether a client may use the server, from its HELLO (`hello.auth`
 * carries what the client sent, for example a token) and what the connection
 * shows. Only `true` lets it in; `false`, any other value, a throw or a
 * rejection turns it away with GOAWAY `HW_ERR_UNAUTHENTICATED` before any call
 * can run. The handshake deadline (`handshakeTimeoutMs`) includes the time
 * this takes.
 */
export type Authenticate = (hello: Hello, peer: PeerInfo) => boolean | Promise<boolean>;

/** What the hook sees of a connection. */
export function peerInfo({ stream }: EndpointSockets): PeerInfo {
  const certificate = 'getPeerCertificate' in stream ? (stream as TLSSocket).getPeerCertificate() : undefined;
  return {
    remoteAddress: stream.remoteAddress,
    remotePort: stream.remotePort,
    // Node gives an empty object when the client sent no certificate.
    certificate: certificate !== undefined && certificate !== null && Object.keys(certificate).length > 0 ? certificate : undefined,
  };
}

/** Runs the hook. Resolves to undefined when the client is let in, or to why not (the hook's own error, if it threw). */
export async function checkAuthentication(
  authenticate: Authenticate,
  hello: Hello,
  peer: PeerInfo,
): Promise<{ readonly cause?: unknown } | undefined> {
  try {
    return (await authenticate(hello, peer)) === true ? undefined : {};
  } catch (err) {
    return { cause: err };
  }
}
