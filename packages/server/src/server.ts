import { EventEmitter } from 'node:events';
import net from 'node:net';
import { InvalidOptionError, PayloadCodec } from '@heartwire/core';
import { nodeCodecHost } from '@heartwire/endpoint';
import { Connection } from './connection/connection.js';
import type { ConnectionHost } from './connection/host.js';
import { DrainDeadline, resolveCloseArgs, type CloseCallback, type CloseOptions } from './drain.js';
import { AddressLimit } from './listen/address-limit.js';
import { Listener, type AcceptedSockets } from './listen/listener.js';
import { ParamsBudget } from './connection/params-budget.js';
import { refuseConnection } from './listen/refuse.js';
import type { Handler } from './calls/handler.js';
import { isJobModule, type JobModule } from './jobs/module.js';
import { JobPools } from './jobs/pool-set.js';
import { LoopWatchdog } from './calls/loop-watchdog.js';
import { resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js';

/** Where a server offers its handler lookup to other heartwire packages; @heartwire/http names the same key. */
const SERVER_LOOKUP = Symbol.for('heartwire.server.lookup');

/**
 * A heartwire server. Its lifecycle follows `net.Server`: `listen()`,
 * `address()`, `close()`, and the events `'listening'`, `'close'` and
 * `'error'`.
 */
export class HeartwireServer extends EventEmitter {
  /** The options in force, defaults applied. */
  readonly options: ResolvedServerOptions;
  readonly #codec: PayloadCodec;
  /** What each connection needs of its server. */
  readonly #host: ConnectionHost;
  readonly #handlers = new Map<string, Handler>();
  readonly #server: net.Server;
  readonly #listener: Listener;
  readonly #live = new Set<Connection>();
  readonly #addresses: AddressLimit;
  #closingValue = false;
  readonly #jobs: JobPools;
  readonly #watchdog: LoopWatchdog;
  #closedValue = false;
  readonly #deadline = new DrainDeadline(() => {
    for (const connection of this.#live) connection.shutdown();
  });

  constructor(options: ServerOptions = {}) {
    super();
    this.options = resolveServerOptions(options);
    this.#codec = new PayloadCodec(this.options.codec, nodeCodecHost);
    this.#addresses = new AddressLimit(this.options.maxConnectionsPerAddress);
    this.#host = {
      options: this.options,
      codec: this.#codec,
      paramsBudget: new ParamsBudget(this.options.maxParamsBytes, this.options.maxParamsBytesPerConnection),
      lookup: (method) => this.#handlers.get(method),
      onConnectionClosed: (connection) => this.#connectionClosed(connection),
    };
    this.#jobs = new JobPools(this.options);
    this.#watchdog = new LoopWatchdog(this.options.loopBlockWarnMs);
    this.#listener = new Listener(this.options, (sockets) => this.#accept(sockets));
    this.#server = this.#listener.server;
    this.#server.on('listening', () => this.emit('listening'));
    this.#server.on('error', (err) => this.emit('error', err));
    // Closed once the job pools' threads and processes are gone too.
    this.#server.on('close', () =>
      void this.#jobs.close().then(() => {
        this.#closedValue = true;
        this.emit('close');
      }),
    );
  }

  #accept(sockets: AcceptedSockets): void {
    if (this.#closingValue) {
      sockets.stream.destroy();
      return;
    }
    if (sockets.certificateError !== undefined) {
      refuseConnection(sockets, this.#codec, 'HW_ERR_UNAUTHENTICATED', `the client certificate was not accepted: ${sockets.certificateError}`);
      return;
    }
    if (this.#live.size >= this.options.maxConnections) {
      refuseConnection(sockets, this.#codec, 'HW_ERR_TOO_MANY_CONNECTIONS', `the server is at its limit of ${this.options.maxConnections} connections`);
      return;
    }
    // A socket already closed has no address: it is dropped below at once, so it need not be counted.
    const address = sockets.stream.remoteAddress;
    if (address !== undefined && !this.#addresses.tryAdd(address)) {
      refuseConnection(
        sockets,
        this.#codec,
        'HW_ERR_TOO_MANY_CONNECTIONS',
        `the server is at its limit of ${this.options.maxConnectionsPerAddress} connections from one address`,
      );
      return;
    }
    this.#live.add(new Connection(sockets, this.#host));
  }

  /** True once `close()` was called: new calls are refused. */
  get closing(): boolean {
    return this.#closingValue;
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#live.size;
  }

  /** Bytes of CALL params that calls in flight hold now, against `maxParamsBytes`. */
  get paramsBytesHeld(): number {
    return this.#host.paramsBudget.held;
  }

  /**
   * Registers the handler of `method`; a method has one. A function runs on
   * the main thread (it should `await ctx.yield()` between short slices); a
   * module named with {@link worker} runs in a worker thread or a child
   * process: when its client is gone the job is told through `ctx.aborted`,
   * and stopped from outside if it still runs after `jobAbortGraceMs`.
   */
  handle<P = any, R = unknown>(method: string, handler: Handler<P, R> | JobModule): this {
    if (typeof method !== 'string' || method.length === 0 || Buffer.byteLength(method) > this.options.maxMethodLength) {
      throw new InvalidOptionError(`method must be a string of 1 to ${this.options.maxMethodLength} UTF-8 bytes`);
    }
    if (typeof handler !== 'function' && !isJobModule(handler)) {
      throw new InvalidOptionError(`handler of method "${method}" must be a function or a worker() module`);
    }
    if (this.#handlers.has(method)) {
      throw new InvalidOptionError(`method "${method}" already has a handler`);
    }
    this.#handlers.set(method, isJobModule(handler) ? this.#jobs.handler(handler) : this.#watchdog.watch(method, handler as Handler));
    return this;
  }

  static {
    // For the transports of other heartwire packages (@heartwire/http runs these handlers over HTTP):
    // a registered symbol, so it works across copies of the package, and no part of the typed API.
    Object.defineProperty(this.prototype, SERVER_LOOKUP, {
      value(this: HeartwireServer, method: string): Handler | undefined {
        return this.#handlers.get(method);
      },
    });
  }

  /** As `net.Server.listen`. */
  listen(port?: number, host?: string, listener?: () => void): this;
  listen(options: net.ListenOptions, listener?: () => void): this;
  listen(...args: unknown[]): this {
    (this.#server.listen as (...a: unknown[]) => unknown)(...args);
    return this;
  }

  /** As `net.Server.address`. */
  address(): net.AddressInfo | string | null {
    return this.#server.address();
  }

  /**
   * Stops accepting connections and shuts down. With `drainMs` 0 (the
   * default) it aborts every call in flight with `HW_ERR_SERVER_SHUTDOWN`
   * (each client gets an ERROR frame with that code, then GOAWAY) and closes
   * every connection. With `drainMs` > 0 every client gets GOAWAY at once,
   * new calls are refused with the retryable `HW_ERR_SERVER_CLOSING`, calls
   * in flight may finish and deliver their results, each connection closes
   * with its last call, and whatever still runs after `drainMs` is aborted as
   * above. The job pools' threads and processes stop once every connection
   * has closed. Calling it again may shorten the drain (a second SIGTERM:
   * `{ drainMs: 0 }`). `callback` runs when all of that is done, as on `net.Server`.
   */
  close(callback?: CloseCallback): this;
  close(options: CloseOptions, callback?: CloseCallback): this;
  close(first?: CloseOptions | CloseCallback, second?: CloseCallback): this {
    const { drainMs, callback } = resolveCloseArgs(first, second);
    if (!this.#closingValue) {
      this.#closingValue = true;
      this.#server.close((err) => void this.#jobs.close().then(() => callback?.(err)));
      this.#listener.dropHandshakes();
    } else if (callback !== undefined) {
      if (this.#closedValue) queueMicrotask(() => callback());
      else this.once('close', () => callback());
    }
    if (drainMs === 0) {
      this.#deadline.clear();
      for (const connection of this.#live) connection.shutdown();
    } else {
      for (const connection of this.#live) connection.drain();
      if (this.#live.size > 0) this.#deadline.aim(drainMs);
    }
    return this;
  }

  #connectionClosed(connection: Connection): void {
    if (!this.#live.delete(connection)) return;
    if (connection.remoteAddress !== undefined) this.#addresses.remove(connection.remoteAddress);
    if (this.#live.size === 0) this.#deadline.clear();
  }
}

/** Creates a heartwire server; see {@link ServerOptions} for the defaults. */
export function createServer(options?: ServerOptions): HeartwireServer {
  return new HeartwireServer(options);
}
