/** What {@link writeQueueBytes} reads of a Node TCP socket (its handle is not in Node's types). */
interface QueuedSocket {
  readonly _handle?: { readonly writeQueueSize?: number } | null;
}

/**
 * Reads how many bytes of the writes in progress on a TCP socket wait for
 * the kernel. Node shows progress inside one write only there: the
 * `writableLength` of a 4 MiB write stays 4 MiB until its last byte left,
 * while the libuv handle's `writeQueueSize` (what Node's own
 * `socket.setTimeout` checks for write activity) shrinks as the kernel takes
 * bytes. Pass the TCP socket, not a TLS socket over it: TLS's handle counts
 * only whole writes. A socket without the number reads as 0 (no progress
 * seen inside a write; completed writes still count).
 */
export function writeQueueBytes(tcp: object): number {
  return (tcp as QueuedSocket)._handle?.writeQueueSize ?? 0;
}
