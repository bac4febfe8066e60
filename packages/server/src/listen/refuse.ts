import { encodeFrame, encodeGoAway, FrameType, type PayloadCodec } from '@heartwire/core';
import { closeConnection, type EndpointSockets } from '@heartwire/endpoint';

/**
 * Turns a connection away before its handshake: GOAWAY `code` (lastStream 0),
 * then our FIN. Whatever the client sends meanwhile is read and dropped, so
 * its FIN is seen and nothing piles up; the socket is destroyed when the
 * client closes, or after the close grace at the latest.
 */
export function refuseConnection(sockets: EndpointSockets, codec: PayloadCodec, code: string, message: string): void {
  const { stream } = sockets;
  // A refused client may well reset: that is no error of ours.
  stream.on('error', () => {});
  stream.on('end', () => stream.destroy());
  stream.resume();
  stream.write(encodeFrame(FrameType.GOAWAY, 0, encodeGoAway(codec, { code, message, lastStream: 0 })));
  closeConnection(sockets, 'end');
}
