import diagnostics from 'node:diagnostics_channel';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createServer, type HeartwireServer, type ServerOptions } from '@heartwire/server';
import type { CallAbortMessage, CallEndMessage, ConnectionCloseMessage } from '@heartwire/server';
import { Waiter } from './waiter.js';

/** A server on `host` (127.0.0.1 unless told) and an ephemeral port (or `port`, to take over one). */
export async function startServer(
  options: ServerOptions,
  setup: (server: HeartwireServer) => void,
  host = '127.0.0.1',
  port = 0,
): Promise<{ server: HeartwireServer; port: number; close(): Promise<void> }> {
  const server = createServer(options);
  setup(server);
  server.listen(port, host);
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Records what the server publishes on diagnostics_channel, so tests wait on
 * events (an abort, a closed connection) instead of sleeping.
 */
export class ServerEvents {
  readonly aborts: CallAbortMessage[] = [];
  readonly closes: ConnectionCloseMessage[] = [];
  /** Calls that ended, in the order the server ended them (one process, one clock). */
  readonly ends: CallEndMessage[] = [];
  private readonly waiter = new Waiter();
  private readonly onAbort = (message: unknown): void => {
    this.aborts.push(message as CallAbortMessage);
    this.waiter.wake();
  };
  private readonly onClose = (message: unknown): void => {
    this.closes.push(message as ConnectionCloseMessage);
    this.waiter.wake();
  };
  private readonly onEnd = (message: unknown): void => {
    this.ends.push(message as CallEndMessage);
    this.waiter.wake();
  };

  constructor() {
    diagnostics.subscribe('heartwire:server:call:abort', this.onAbort);
    diagnostics.subscribe('heartwire:server:connection:close', this.onClose);
    diagnostics.subscribe('heartwire:server:call:end', this.onEnd);
  }

  dispose(): void {
    diagnostics.unsubscribe('heartwire:server:call:abort', this.onAbort);
    diagnostics.unsubscribe('heartwire:server:connection:close', this.onClose);
    diagnostics.unsubscribe('heartwire:server:call:end', this.onEnd);
  }

  /** Resolves with the first abort (recorded or future) that matches, or rejects after `timeoutMs`. */
  abort(match: (m: CallAbortMessage) => boolean = () => true, timeoutMs = 20_000): Promise<CallAbortMessage> {
    return this.waiter.until(() => this.aborts.find(match), `call abort`, timeoutMs);
  }

  /** Resolves with the first connection close (recorded or future) that matches. */
  close(match: (m: ConnectionCloseMessage) => boolean = () => true, timeoutMs = 20_000): Promise<ConnectionCloseMessage> {
    return this.waiter.until(() => this.closes.find(match), `connection close`, timeoutMs);
  }

}
