import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Waiter } from './waiter.js';

/** Which way bytes go through a {@link ProxyLink}. */
export type Direction = 'toServer' | 'toClient';

/** A slow link: its rate, and how much it holds in flight before the sender feels backpressure. */
export interface Pace {
  readonly bytesPerSecond: number;
  /** Bytes the link buffers (read from the sender, not yet delivered); defaults to 64 KiB. */
  readonly bufferBytes?: number;
}

/** How a {@link Pipe} forwards: as it reads, not at all (and not reading either), one byte at a time, or at a rate. */
type PipeMode =
  | { readonly kind: 'flow' }
  | { readonly kind: 'frozen' }
  | { readonly kind: 'slice'; readonly delayMs: number }
  | ({ readonly kind: 'pace' } & Pace);

/** A paced pipe delivers every this many ms: 1 KiB a tick at 64 KiB/s. */
const PACE_TICK_MS = 16;

/** What a net.Socket keeps of its libuv handle; Node has no public call that stops reading at once. */
interface ReadingHandle {
  reading: boolean;
  readStop(): number;
  readStart(): number;
}

function handleOf(socket: net.Socket): ReadingHandle | undefined {
  return (socket as unknown as { _handle?: ReadingHandle | null })._handle ?? undefined;
}

/**
 * Stops reading from the kernel now, as a frozen process does: the receive
 * window fills and closes, and a FIN or RST goes unnoticed. (`pause()` alone
 * stops only the 'data' events: Node goes on reading up to the high-water
 * mark, and sees a FIN or RST meanwhile.) Node itself does this in
 * `pause()` for sockets made with `onread`.
 */
function stopReading(socket: net.Socket): void {
  const handle = handleOf(socket);
  if (handle === undefined || socket.destroyed || !handle.reading) return;
  handle.reading = false;
  handle.readStop();
}

function startReading(socket: net.Socket): void {
  const handle = handleOf(socket);
  if (handle === undefined || socket.destroyed || handle.reading) return;
  handle.reading = true;
  handle.readStart();
}

/**
 * One direction of a proxied connection. Reads from `from` and writes to
 * `to`, with backpressure; forwards the FIN (`end()`) once everything read
 * before it went out.
 */
export class Pipe {
  /** Bytes written to `to`, in how many writes, and when the last one went (`performance.now()`). */
  bytes = 0;
  writes = 0;
  lastWriteAt = 0;
  /** `from` sent its FIN. */
  ended = false;
  /** The FIN went on to `to`. */
  finForwarded = false;
  private mode: PipeMode = { kind: 'flow' };
  private readonly queue: Buffer[] = [];
  private waitingForDrain = false;
  private sliceTimer: NodeJS.Timeout | undefined;
  /** Paced mode: bytes queued, bytes the link may still deliver now, and when that was last topped up. */
  private queuedBytes = 0;
  private paceBudget = 0;
  private paceAt = 0;

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly onChange: () => void,
  ) {
    from.on('data', (chunk: Buffer) => {
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
      this.pump();
    });
    from.on('end', () => {
      this.ended = true;
      this.pump();
    });
  }

  setMode(mode: PipeMode): void {
    if (this.mode.kind === 'frozen' && mode.kind !== 'frozen') startReading(this.from);
    this.mode = mode;
    clearTimeout(this.sliceTimer);
    this.sliceTimer = undefined;
    this.paceBudget = 0;
    this.paceAt = performance.now();
    this.pump();
  }

  /** Sends a FIN to `to` now, dropping whatever is queued, and forwards nothing more. */
  halfClose(): void {
    this.setMode({ kind: 'frozen' });
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.forwardFin();
  }

  stop(): void {
    clearTimeout(this.sliceTimer);
    this.sliceTimer = undefined;
  }

  private pump(): void {
    if (this.to.destroyed) return;
    if (this.mode.kind === 'frozen') {
      this.from.pause();
      stopReading(this.from);
      return;
    }
    if (this.mode.kind === 'slice') {
      this.from.pause();
      if (this.sliceTimer === undefined) this.sliceNext();
      return;
    }
    if (this.mode.kind === 'pace') {
      this.paceNext(this.mode);
      return;
    }
    while (this.queue.length > 0 && !this.waitingForDrain) {
      const chunk = this.queue.shift() as Buffer;
      this.queuedBytes -= chunk.length;
      this.write(chunk);
    }
    if (this.waitingForDrain) return;
    if (this.ended) this.forwardFin();
    else this.from.resume();
  }

  /** Delivers what the rate allows since the last tick, reads only while the link's buffer has room. */
  private paceNext(pace: Pace): void {
    if (this.to.destroyed) return;
    const now = performance.now();
    // At most two ticks' worth may build up: a late timer does not turn into a burst.
    const tick = (pace.bytesPerSecond * PACE_TICK_MS) / 1000;
    this.paceBudget = Math.min(this.paceBudget + ((now - this.paceAt) * pace.bytesPerSecond) / 1000, 2 * tick);
    this.paceAt = now;
    while (this.queue.length > 0 && !this.waitingForDrain && this.paceBudget >= 1) {
      const head = this.queue[0] as Buffer;
      const n = Math.min(head.length, Math.floor(this.paceBudget));
      this.write(head.subarray(0, n));
      if (n < head.length) this.queue[0] = head.subarray(n);
      else this.queue.shift();
      this.queuedBytes -= n;
      this.paceBudget -= n;
    }
    if (this.queue.length === 0 && this.ended) {
      this.forwardFin();
      return;
    }
    if (this.queuedBytes < (pace.bufferBytes ?? 64 * 1024)) this.from.resume();
    else this.from.pause();
    if (this.sliceTimer === undefined && (this.queue.length > 0 || !this.ended)) {
      this.sliceTimer = setTimeout(() => {
        this.sliceTimer = undefined;
        if (this.mode.kind === 'pace') this.paceNext(this.mode);
      }, PACE_TICK_MS);
    }
  }

  private sliceNext(): void {
    const head = this.queue[0];
    if (head === undefined) {
      if (this.ended) this.forwardFin();
      else this.from.resume();
      return;
    }
    this.write(head.subarray(0, 1));
    if (head.length > 1) this.queue[0] = head.subarray(1);
    else this.queue.shift();
    this.queuedBytes -= 1;
    const { delayMs } = this.mode as { delayMs: number };
    this.sliceTimer = setTimeout(() => {
      this.sliceTimer = undefined;
      if (this.mode.kind === 'slice') this.sliceNext();
    }, delayMs);
  }

  private write(bytes: Buffer): void {
    if (this.to.destroyed) return;
    this.bytes += bytes.length;
    this.writes += 1;
    this.lastWriteAt = performance.now();
    if (!this.to.write(bytes)) {
      this.waitingForDrain = true;
      this.from.pause();
      this.to.once('drain', () => {
        this.waitingForDrain = false;
        this.pump();
      });
    }
    this.onChange();
  }

  private forwardFin(): void {
    if (this.finForwarded || this.to.destroyed) return;
    this.finForwarded = true;
    this.to.end();
    this.onChange();
  }
}

/**
 * One client connection through a {@link FaultProxy} and its upstream
 * connection to the server, with a fault switch for each way.
 */
export class ProxyLink {
  readonly toServer: Pipe;
  readonly toClient: Pipe;
  /** Both sockets are closed. */
  closed = false;

  constructor(
    readonly client: net.Socket,
    readonly upstream: net.Socket,
    private readonly onChange: () => void,
  ) {
    this.toServer = new Pipe(client, upstream, onChange);
    this.toClient = new Pipe(upstream, client, onChange);
    // An RST or error on one side is passed on as an RST to the other, as most proxies do.
    for (const [socket, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      socket.on('error', () => {
        if (!other.destroyed) other.resetAndDestroy();
      });
      socket.on('close', () => {
        if (client.destroyed && upstream.destroyed) {
          this.closed = true;
          this.toServer.stop();
          this.toClient.stop();
        }
        this.onChange();
      });
    }
  }

  /**
   * Stops forwarding and stops reading (one way, or both when no direction
   * is given). The connections stay open: the peer beyond looks frozen, or,
   * frozen toward the client only, like a client that stopped reading.
   */
  freeze(direction?: Direction): void {
    for (const pipe of this.pipes(direction)) pipe.setMode({ kind: 'frozen' });
  }

  /** Forwards normally again. */
  thaw(direction?: Direction): void {
    for (const pipe of this.pipes(direction)) pipe.setMode({ kind: 'flow' });
  }

  /** Forwards at a rate, as a slow link does (one way, or both when no direction is given). */
  pace(pace: Pace, direction?: Direction): void {
    for (const pipe of this.pipes(direction)) pipe.setMode({ kind: 'pace', ...pace });
  }

  /** Forwards in 1-byte writes, `delayMs` apart: every frame arrives cut at every offset, and late. */
  slice(delayMs: number, direction?: Direction): void {
    for (const pipe of this.pipes(direction)) pipe.setMode({ kind: 'slice', delayMs });
  }

  /** Sends a FIN one way (to the server for `toServer`) and forwards nothing more that way; the other way goes on. */
  halfClose(direction: Direction): void {
    this.pipe(direction).halfClose();
  }

  /** Resets both connections (RST to the client and to the server). */
  reset(): void {
    if (!this.client.destroyed) this.client.resetAndDestroy();
    if (!this.upstream.destroyed) this.upstream.resetAndDestroy();
  }

  pipe(direction: Direction): Pipe {
    return direction === 'toServer' ? this.toServer : this.toClient;
  }

  private pipes(direction: Direction | undefined): Pipe[] {
    return direction === undefined ? [this.toServer, this.toClient] : [this.pipe(direction)];
  }
}

/** Options of {@link FaultProxy.start}. */
export interface FaultProxyOptions {
  /** Where the server listens. */
  readonly port: number;
  readonly host?: string;
  /** New links forward in 1-byte writes this far apart from their first byte (handshake included). */
  readonly sliceMs?: number;
  /** New links forward at these rates from their first byte (handshake included). */
  readonly pace?: { readonly toServer?: Pace; readonly toClient?: Pace };
}

/**
 * A small TCP proxy on 127.0.0.1 for fault tests: clients connect to
 * `port`, each connection gets its own upstream connection to the server,
 * and the test switches faults per connection ({@link ProxyLink}): freeze,
 * reset, slice into 1-byte chunks, half-close. Both sides are opened with
 * `allowHalfOpen`, so a half-close passes through as one.
 */
export class FaultProxy {
  readonly links: ProxyLink[] = [];
  private readonly waiter = new Waiter();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const host = options.host ?? '127.0.0.1';
    let proxy: FaultProxy | undefined;
    const server = net.createServer({ allowHalfOpen: true }, (client) => {
      client.setNoDelay(true);
      const upstream = net.connect({ host, port: options.port, allowHalfOpen: true, noDelay: true });
      const link = new ProxyLink(client, upstream, () => proxy?.waiter.wake());
      if (options.sliceMs !== undefined) link.slice(options.sliceMs);
      if (options.pace?.toServer !== undefined) link.pace(options.pace.toServer, 'toServer');
      if (options.pace?.toClient !== undefined) link.pace(options.pace.toClient, 'toClient');
      proxy?.links.push(link);
      proxy?.waiter.wake();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    proxy = new FaultProxy(server, (server.address() as AddressInfo).port);
    return proxy;
  }

  /** Resolves with the `n`-th link (1-based) once a client made it. */
  link(n = 1, timeoutMs = 20_000): Promise<ProxyLink> {
    return this.waiter.until(() => this.links[n - 1], `proxy link ${n}`, timeoutMs);
  }

  /** Resolves once `condition()` holds; it is checked whenever a link forwards, ends or closes. */
  until<T>(condition: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
    return this.waiter.until(condition, what, timeoutMs);
  }

  /** Destroys every link and stops listening. */
  async close(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
