import { EventEmitter } from 'node:events';
import { AbortedError, ConnectionError, type GoAwayBody, type Welcome } from '@heartwire/core';
import type { CallOptions } from './call.js';
import { ClientConnection } from './connection.js';
import { resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';

/** Made by {@link connect}; the class itself has no public constructor. */
let open: (options: ResolvedClientOptions) => Promise<HeartwireClient>;

/**
 * A connection to a heartwire server. Heartbeats are answered inside and
 * never reach the caller; they also tell the client the server is alive.
 *
 * Events: `'goaway'` (the server is shutting down; `GoAwayBody`), `'close'`
 * (the connection ended: the `ConnectionError` that ended it, or undefined
 * when `close()` or `end()` did). Observers can also subscribe to the
 * `heartwire:client:*` diagnostics channels.
 */
export class HeartwireClient extends EventEmitter {
  readonly #connection: ClientConnection;

  private constructor(options: ResolvedClientOptions) {
    super();
    this.#connection = new ClientConnection(options, {
      goaway: (body: GoAwayBody) => this.emit('goaway', body),
      close: (error: ConnectionError | undefined) => this.emit('close', error),
    });
  }

  static {
    open = (options) => {
      const client = new HeartwireClient(options);
      const connection = client.#connection;
      const { signal, connectTimeoutMs } = options;
      const timer = setTimeout(() => {
        // Reset: the server may be a black hole, and the kernel need not keep trying.
        connection.failHandshake(new ConnectionError('HW_ERR_CONNECT_TIMEOUT', `no connection and handshake within ${connectTimeoutMs} ms`), 'reset');
      }, connectTimeoutMs);
      const onAbort = (): void => {
        connection.failHandshake(new AbortedError('the connect was aborted by its signal', signal?.reason), 'destroy');
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
      return connection.ready
        .finally(() => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        })
        .then(() => client);
    };
  }

  /** The terms the server announced in WELCOME. */
  get welcome(): Welcome | undefined {
    return this.#connection.welcome;
  }

  /** Calls in flight, not counting those waiting for a free slot. */
  get activeCalls(): number {
    return this.#connection.activeCalls;
  }

  /** True while a new call goes out at once, or waits here for a slot: connected, not ending, no GOAWAY. */
  get acceptsCalls(): boolean {
    return this.#connection.phase === 'open';
  }

  /**
   * Calls `method` with `params`. Resolves to the handler's result; rejects
   * with a `HeartwireError` whose `code` says why: `RemoteError` for an ERROR
   * frame from the server, `AbortedError` (`HW_ERR_ABORTED`) when `signal`
   * aborted, `ConnectionError` when the connection failed
   * (`HW_ERR_SERVER_SILENT`, `HW_ERR_CONNECTION_LOST`, …), `PayloadError`
   * when params cannot be encoded or exceed the server's frame limit. Beyond
   * the server's `maxCalls`, calls wait here for a free slot.
   */
  call<R = unknown, P = unknown>(method: string, params?: unknown, options: CallOptions<P> = {}): Promise<R> {
    return this.#connection.call(method, params, options as CallOptions) as Promise<R>;
  }

  /**
   * Half-closes on purpose: tells the server (HALF_CLOSE) that it will send
   * nothing more, then sends FIN. Calls in flight go on and deliver their
   * results; new calls, and calls still waiting for a slot, are refused with
   * `HW_ERR_CLIENT_CLOSED`. A call aborted from now on cannot send CANCEL: its
   * job stops when the connection closes, which happens as soon as no call is
   * left. Resolves when the connection has closed.
   */
  end(): Promise<void> {
    this.#connection.end();
    return this.#connection.closed;
  }

  /**
   * Closes the connection: calls in flight and waiting reject with
   * `HW_ERR_CLIENT_CLOSED`, and the server, seeing the FIN, stops their jobs.
   * Resolves when the socket has closed.
   */
  close(): Promise<void> {
    this.#connection.close(new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client was closed'), 'end');
    return this.#connection.closed;
  }
}

/**
 * Connects to a heartwire server and completes the handshake. Rejects with
 * `HW_ERR_CONNECT_TIMEOUT`, `HW_ERR_CONNECTION_LOST`, `HW_ERR_TLS`,
 * `HW_ERR_ABORTED`, or the code from the server's GOAWAY (for example
 * `HW_ERR_UNAUTHENTICATED`, `HW_ERR_TOO_MANY_CONNECTIONS`,
 * `HW_ERR_UNSUPPORTED_VERSION`).
 */
export function connect(options: ClientOptions): Promise<HeartwireClient> {
  let resolved: ResolvedClientOptions;
  try {
    resolved = resolveClientOptions(options);
  } catch (err) {
    return Promise.reject(err);
  }
  return open(resolved);
}

/** {@link connect} with options already resolved (the reconnecting client's attempts). Not exported from the package. */
export function openClient(options: ResolvedClientOptions): Promise<HeartwireClient> {
  return open(options);
}
