import { spawn, type ChildProcess } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createServer, type HeartwireServer, type ServerOptions } from '@heartwire/server';
import { createHttpBridge, type HttpBridge, type HttpBridgeOptions, type HttpCallAbortMessage, type HttpCallEndMessage } from '@heartwire/http';
import type { TestCertificates } from './certs.js';
import { Waiter } from './waiter.js';
import { killAndWait } from './kill-and-wait.js';

/** An abort the bridge published; `at` is when it decided. */
export type RecordedAbort = HttpCallAbortMessage;

/** Records the bridge's call:abort and call:end publications; tests wait on them. */
export class HttpEvents {
  readonly aborts: RecordedAbort[] = [];
  readonly ends: HttpCallEndMessage[] = [];
  private readonly waiter = new Waiter();
  private readonly onAbort = (m: unknown): void => {
    this.aborts.push(m as RecordedAbort);
    this.waiter.wake();
  };
  private readonly onEnd = (m: unknown): void => {
    this.ends.push(m as HttpCallEndMessage);
    this.waiter.wake();
  };

  constructor() {
    diagnostics.subscribe('heartwire:http:call:abort', this.onAbort);
    diagnostics.subscribe('heartwire:http:call:end', this.onEnd);
  }

  abort(match: (m: RecordedAbort) => boolean = () => true, timeoutMs = 20_000): Promise<RecordedAbort> {
    return this.waiter.until(() => this.aborts.find(match), 'call:abort', timeoutMs);
  }

  end(match: (m: HttpCallEndMessage) => boolean = () => true, timeoutMs = 20_000): Promise<HttpCallEndMessage> {
    return this.waiter.until(() => this.ends.find(match), 'call:end', timeoutMs);
  }

  dispose(): void {
    diagnostics.unsubscribe('heartwire:http:call:abort', this.onAbort);
    diagnostics.unsubscribe('heartwire:http:call:end', this.onEnd);
  }
}

/** A heartwire server (never listening on TCP) bridged to HTTP three ways, on loopback ports. */
export interface HttpSetup {
  readonly hw: HeartwireServer;
  readonly bridge: HttpBridge;
  readonly events: HttpEvents;
  /** `http://127.0.0.1:<port>/<method>`: node:http (HTTP/1.1). */
  readonly h1: string;
  /** `http://127.0.0.1:<port>/<method>`: node:http2 cleartext (curl --http2-prior-knowledge). */
  readonly h2c: string;
  /** `https://127.0.0.1:<port>/<method>`: node:http2 over TLS, HTTP/1.1 allowed (ALPN). Only with `certs`. */
  readonly https: string | undefined;
  close(): Promise<void>;
}

/**
 * Starts the servers; each path `/<method>` runs that method. `register`
 * adds the methods to the heartwire server.
 */
export async function startHttp(
  register: (hw: HeartwireServer) => void,
  bridgeOptions: HttpBridgeOptions = {},
  serverOptions: ServerOptions = {},
  certs?: TestCertificates,
): Promise<HttpSetup> {
  const hw = createServer({ threadPoolSize: 1, processPoolSize: 1, ...serverOptions });
  register(hw);
  const bridge = createHttpBridge(hw, bridgeOptions);
  const events = new HttpEvents();
  const route = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
    const method = new URL(req.url ?? '/', 'http://x').pathname.slice(1);
    bridge.serve(method, req, res);
  };
  const servers: Array<http.Server | http2.Http2Server> = [http.createServer(route), http2.createServer(route)];
  if (certs !== undefined) {
    servers.push(http2.createSecureServer({ key: certs.serverKey, cert: certs.serverCert, allowHTTP1: true }, route));
  }
  const sessions = new Set<http2.ServerHttp2Session>();
  for (const server of servers) {
    server.on('session', (session: http2.ServerHttp2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  }
  const port = (i: number): number => (servers[i]!.address() as AddressInfo).port;
  return {
    hw,
    bridge,
    events,
    h1: `http://127.0.0.1:${port(0)}`,
    h2c: `http://127.0.0.1:${port(1)}`,
    https: certs === undefined ? undefined : `https://127.0.0.1:${port(2)}`,
    async close() {
      bridge.close();
      events.dispose();
      for (const server of servers) {
        server.close();
        (server as http.Server).closeAllConnections?.();
      }
      // An HTTP/2 server closes once its sessions are gone.
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => hw.close(() => resolve()));
    },
  };
}

/** A curl child process; its stdout is kept, and tests wait on it. */
export class Curl {
  readonly process: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<unknown>;
  private readonly waiter = new Waiter();

  constructor(args: readonly string[]) {
    this.process = spawn('curl', ['--silent', '--show-error', '--no-buffer', '--max-time', '60', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // 'close', not 'exit': curl may exit before its last output was read here.
    this.exited = once(this.process, 'close');
    this.process.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
      this.waiter.wake();
    });
    this.process.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.process.on('close', () => this.waiter.wake());
  }

  /** Resolves once stdout matches `pattern`. */
  output(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    return this.waiter.until(() => (pattern.test(this.stdout) ? this.stdout : undefined), `curl output ${pattern}`, timeoutMs);
  }

  /** Resolves with the exit code once curl exited and all its output was read. */
  async done(): Promise<number | null> {
    await this.exited;
    return this.process.exitCode;
  }

  /** Sends `signal`; returns `performance.now()` just before. */
  kill(signal: NodeJS.Signals): number {
    const at = performance.now();
    this.process.kill(signal);
    return at;
  }

  /** Makes sure the process is gone (SIGKILL, which ends a frozen one too). */
  dispose(): Promise<void> {
    return killAndWait(this.process, this.exited);
  }
}
