import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import {
  AbortedError,
  ConnectionError,
  HeartwireError,
  InvalidOptionError,
  RemoteError,
  type GoAwayBody,
  type Welcome,
} from '@heartwire/core';
import { backoffDelay, resolveBackoffOptions, type BackoffOptions, type ResolvedBackoffOptions } from './backoff.js';
import type { CallOptions } from './call.js';
import { openClient, type HeartwireClient } from './client.js';
import { resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';

/** Options of {@link createClient}: those of `connect()` for each connection (but `signal`), and the backoff. */
export interface ReconnectingClientOptions extends Omit<ClientOptions, 'signal'> {
  /** When to try again after failed connection attempts; see {@link BackoffOptions}. */
  readonly backoff?: BackoffOptions;
}

/** Per-call options of a {@link ReconnectingClient}. */
export interface RetryCallOptions<P = unknown> extends CallOptions<P> {
  /**
   * The call is safe to run twice. If its connection is lost while it is in
   * flight, it is sent once more on a new connection (its `onAccepted` and
   * `onProgress` may then run again). Otherwise such a call fails with the
   * loss's code and is never sent again. Defaults to false.
   */
  readonly idempotent?: boolean;
}

/** How many times a call that a GOAWAY kept from the server is sent again before it fails. */
const MAX_REFUSED_SENDS = 5;

/** A call between `call()` and its end. */
interface Pending {
  readonly method: string;
  readonly params: unknown;
  readonly options: RetryCallOptions<any>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  /** The idempotent call was already sent again once. */
  retried: boolean;
  /** Sends the server did not take (GOAWAY). */
  refusals: number;
  /** Listens to the call's signal while it waits here. */
  onAbort: (() => void) | undefined;
  /** While it waits for a connection: when it gives up (`performance.now()` clock). */
  deadline: number;
}

/**
 * A client that keeps a connection for its calls. It connects on the first
 * call, and again when a call finds the connection lost or going away; failed
 * attempts are spaced by the backoff. A call waits for a connection for up
 * to `connectTimeoutMs`, across attempts, then fails with the last attempt's
 * code: a server that restarts within that time loses no new call. On GOAWAY the calls in flight
 * finish on the old connection while new ones go to a new one; calls the
 * server did not take (`HW_ERR_SERVER_CLOSING`) are sent on the new one. A
 * call in flight when its connection is lost fails with the loss's code
 * (`HW_ERR_CONNECTION_LOST`, `HW_ERR_SERVER_SILENT`, …) and is never sent
 * again, unless it was marked `idempotent`. Nothing runs while no call waits:
 * an idle client holds no timer.
 *
 * Events: `'connect'` (a new connection is ready; its `Welcome`), `'goaway'`
 * (the server is shutting down that connection; `GoAwayBody`),
 * `'disconnect'` (a connection closed: the `ConnectionError`, or undefined).
 */
export class ReconnectingClient extends EventEmitter {
  readonly #connection: ResolvedClientOptions;
  readonly #backoff: ResolvedBackoffOptions;
  #current: HeartwireClient | undefined;
  /** Connections that sent GOAWAY, finishing their calls. */
  readonly #draining = new Set<HeartwireClient>();
  #attempt: Promise<void> | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #nextAttemptAt = 0;
  readonly #waiting: Pending[] = [];
  #closed = false;

  /** As {@link createClient}: throws {@link InvalidOptionError} naming a bad option. */
  constructor(options: ReconnectingClientOptions) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('client options must be an object with at least a port');
    }
    const { backoff, ...connection } = options;
    if ('signal' in connection) {
      throw new InvalidOptionError('option signal does not apply to createClient(): give each call its own');
    }
    this.#connection = resolveClientOptions(connection);
    this.#backoff = resolveBackoffOptions(backoff);
  }

  /** Calls waiting here for a connection or a free slot. */
  get waitingCalls(): number {
    return this.#waiting.length;
  }

  /**
   * Calls `method` with `params`, as `HeartwireClient.call` does, on the
   * current connection or a new one. Also rejects with a connection attempt's
   * code (`HW_ERR_CONNECTION_LOST`, `HW_ERR_CONNECT_TIMEOUT`, `HW_ERR_TLS`,
   * `HW_ERR_UNAUTHENTICATED`, …) when no connection came within `connectTimeoutMs`.
   */
  call<R = unknown, P = unknown>(method: string, params?: unknown, options: RetryCallOptions<P> = {}): Promise<R> {
    if (this.#closed) return Promise.reject(new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client was closed'));
    return new Promise<R>((resolve, reject) => {
      this.#enqueue({
        method,
        params,
        options,
        resolve: resolve as (value: unknown) => void,
        reject,
        retried: false,
        refusals: 0,
        onAbort: undefined,
        deadline: 0,
      });
    });
  }

  /**
   * Closes every connection: calls in flight and waiting reject with
   * `HW_ERR_CLIENT_CLOSED`, and no connection is made any more. Resolves when
   * every socket has closed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#backoffTimer);
    this.#backoffTimer = undefined;
    const error = new ConnectionError('HW_ERR_CLIENT_CLOSED', 'the client was closed');
    for (const pending of this.#waiting.splice(0)) this.#fail(pending, error);
    const open = [...this.#draining, ...(this.#current === undefined ? [] : [this.#current])];
    this.#current = undefined;
    this.#draining.clear();
    await Promise.all(open.map((client) => client.close()));
    // An attempt still under way closes its connection as soon as it is made.
    await this.#attempt;
  }

  // ---- queue ----------------------------------------------------------------

  #enqueue(pending: Pending): void {
    const { signal } = pending.options;
    if (signal?.aborted) {
      pending.reject(new AbortedError('the call was aborted by its signal', signal.reason));
      return;
    }
    if (signal !== undefined) {
      pending.onAbort = () => {
        const index = this.#waiting.indexOf(pending);
        if (index >= 0) this.#waiting.splice(index, 1);
        this.#fail(pending, new AbortedError('the call was aborted by its signal', signal.reason));
      };
      signal.addEventListener('abort', pending.onAbort, { once: true });
    }
    pending.deadline = performance.now() + this.#connection.connectTimeoutMs;
    this.#waiting.push(pending);
    this.#pump();
  }

  /** Sends what waits while the connection has free slots; without a usable connection, gets one on its way. */
  #pump(): void {
    if (this.#closed) return;
    const client = this.#current;
    if (client !== undefined && !client.acceptsCalls) this.#current = undefined;
    if (this.#current !== undefined) {
      const { maxCalls } = this.#current.welcome as Welcome;
      while (this.#waiting.length > 0 && this.#current.activeCalls < maxCalls) {
        this.#send(this.#current, this.#waiting.shift() as Pending);
      }
      return;
    }
    if (this.#waiting.length > 0) this.#startAttempt();
  }

  #send(client: HeartwireClient, pending: Pending): void {
    this.#unlisten(pending);
    const { signal, onAccepted, onProgress } = pending.options;
    client.call(pending.method, pending.params, { signal, onAccepted, onProgress }).then(
      (value) => {
        pending.resolve(value);
        this.#pump();
      },
      (err: unknown) => {
        this.#afterFailure(pending, err);
        this.#pump();
      },
    );
  }

  /** A call failed on its connection: send it again if that is safe, else pass the error on. */
  #afterFailure(pending: Pending, err: unknown): void {
    if (this.#closed) {
      pending.reject(err);
    } else if (neverTaken(err) && pending.refusals < MAX_REFUSED_SENDS) {
      pending.refusals++;
      this.#enqueue(pending);
    } else if (pending.options.idempotent === true && !pending.retried && lostInFlight(err)) {
      pending.retried = true;
      this.#enqueue(pending);
    } else {
      pending.reject(err);
    }
  }

  #fail(pending: Pending, err: unknown): void {
    this.#unlisten(pending);
    pending.reject(err);
  }

  #unlisten(pending: Pending): void {
    if (pending.onAbort !== undefined) pending.options.signal?.removeEventListener('abort', pending.onAbort);
    pending.onAbort = undefined;
  }

  // ---- connections ------------------------------------------------------------

  #startAttempt(): void {
    if (this.#attempt !== undefined || this.#backoffTimer !== undefined) return;
    const wait = this.#nextAttemptAt - performance.now();
    if (wait > 0) {
      this.#backoffTimer = setTimeout(() => {
        this.#backoffTimer = undefined;
        this.#pump();
      }, wait);
      return;
    }
    this.#attempt = openClient(this.#connection).then(
      (client) => {
        this.#attempt = undefined;
        if (this.#closed) {
          void client.close();
          return;
        }
        this.#failures = 0;
        this.#nextAttemptAt = 0;
        this.#adopt(client);
        this.emit('connect', client.welcome);
        this.#pump();
      },
      (err: unknown) => {
        this.#attempt = undefined;
        if (this.#closed) return;
        this.#failures++;
        this.#nextAttemptAt = performance.now() + backoffDelay(this.#failures, this.#backoff);
        // A call waits for a connection as long as a connect may take; those out of time by the next attempt fail with this one's reason.
        for (const pending of [...this.#waiting]) {
          if (pending.deadline > this.#nextAttemptAt) continue;
          this.#waiting.splice(this.#waiting.indexOf(pending), 1);
          this.#fail(pending, err);
        }
        this.#pump();
      },
    );
  }

  #adopt(client: HeartwireClient): void {
    this.#current = client;
    client.on('goaway', (body: GoAwayBody) => {
      if (this.#current === client) this.#current = undefined;
      if (!this.#closed) this.#draining.add(client);
      this.emit('goaway', body);
      this.#pump();
    });
    client.once('close', (err: ConnectionError | undefined) => {
      if (this.#current === client) this.#current = undefined;
      this.#draining.delete(client);
      this.emit('disconnect', err);
      this.#pump();
    });
  }
}

/** The server never took the call (a GOAWAY came first): it ran nowhere, so it may go elsewhere. */
function neverTaken(err: unknown): boolean {
  return err instanceof HeartwireError && err.code === 'HW_ERR_SERVER_CLOSING';
}

/** The call was in flight when its connection was lost, or the server shut down under it: it may have run. */
function lostInFlight(err: unknown): boolean {
  return (
    (err instanceof ConnectionError && err.code !== 'HW_ERR_CLIENT_CLOSED') ||
    (err instanceof RemoteError && err.code === 'HW_ERR_SERVER_SHUTDOWN')
  );
}

/**
 * Creates a client that connects on its first call and reconnects as calls
 * need it; see {@link ReconnectingClient}. Throws `InvalidOptionError` naming
 * a bad option.
 */
export function createClient(options: ReconnectingClientOptions): ReconnectingClient {
  return new ReconnectingClient(options);
}
