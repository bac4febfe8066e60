import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { once } from 'node:events';
import {
  decodeWelcome,
  encodeFrame,
  FrameDecoder,
  FrameType,
  PayloadCodec,
  PROTOCOL_VERSION,
  type Frame,
  type Welcome,
} from '@heartwire/core';
import { Waiter } from './waiter.js';

/**
 * A protocol peer written by hand on a bare socket: it sends exactly the
 * bytes a test asks for, and records every frame it receives. For hostile
 * input, stalled readers and anything the real client would never do.
 */
export class RawPeer {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  /** `performance.now()` when each frame of `frames` was read. */
  readonly receivedAt: number[] = [];
  readonly codec = new PayloadCodec();
  ended = false;
  closed = false;
  private readonly decoder = new FrameDecoder({ maxPayloadBytes: 64 * 1024 * 1024 });
  private readonly waiter = new Waiter();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => {
      const at = performance.now();
      this.decoder.push(chunk, (frame) => {
        this.frames.push({ ...frame, payload: frame.payload.slice() });
        this.receivedAt.push(at);
      });
      this.waiter.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.waiter.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.waiter.wake();
    });
  }

  /** `localAddress` picks the source address (any of 127.0.0.0/8 works on Linux): a test's other "host". */
  static async connect(port: number, options: { allowHalfOpen?: boolean; localAddress?: string } = {}): Promise<RawPeer> {
    const socket = net.connect({
      host: '127.0.0.1',
      port,
      allowHalfOpen: options.allowHalfOpen ?? false,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    await once(socket, 'connect');
    return new RawPeer(socket);
  }

  /**
   * A hand-written server: listens on a free loopback port and gives the
   * first connection as a peer (the client's side is whatever connects).
   */
  static async listen(): Promise<{ port: number; accepted: Promise<RawPeer>; close: () => void }> {
    const server = net.createServer();
    const accepted = new Promise<RawPeer>((resolve) => server.once('connection', (socket) => resolve(new RawPeer(socket))));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    return { port, accepted, close: () => server.close() };
  }

  /** Connects and completes the handshake; returns the WELCOME terms. */
  static async handshake(
    port: number,
    hello: Record<string, unknown> = {},
    options: { localAddress?: string } = {},
  ): Promise<{ peer: RawPeer; welcome: Welcome }> {
    const peer = await RawPeer.connect(port, options);
    peer.send(FrameType.HELLO, 0, peer.codec.encode({ versions: [PROTOCOL_VERSION], ...hello }));
    const frame = await peer.frame((f) => f.type === FrameType.WELCOME);
    return { peer, welcome: decodeWelcome(peer.codec, frame.payload) };
  }

  send(type: number, stream: number, payload?: Uint8Array): void {
    this.socket.write(encodeFrame(type, stream, payload));
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'hex') : bytes);
  }

  /** Sends a CALL of `method` with `params` on stream `id`. */
  call(id: number, method: string, params: unknown): void {
    this.send(FrameType.CALL, id, this.codec.encode([method, params]));
  }

  decode(frame: Frame): unknown {
    return this.codec.decode(frame.payload);
  }

  /** Resolves with the first received frame (recorded or future) that matches. */
  frame(match: (f: Frame) => boolean, timeoutMs = 20_000): Promise<Frame> {
    return this.waiter.until(() => this.frames.find(match), 'frame', timeoutMs);
  }

  /** Resolves once the server closed the connection (FIN or reset). */
  gone(timeoutMs = 20_000): Promise<true> {
    return this.waiter.until(() => (this.ended || this.closed ? true : undefined), 'close', timeoutMs);
  }

}
