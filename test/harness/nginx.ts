import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const run = promisify(execFile);

/** A real nginx, stream (TCP) proxy on a loopback port, with its own config, pid file and error log in a temp dir. */
export interface Nginx {
  /** Where clients connect. */
  readonly port: number;
  /** The error log so far (nginx logs each idle cut there at level info). */
  errorLog(): string;
  /** Stops nginx (SIGTERM, SIGKILL after 5 s) and deletes its temp dir. */
  stop(): Promise<void>;
}

/** What `nginx -V` says about the stream module: built in, a loadable module at `module`, or missing. */
type StreamModule = { readonly kind: 'static' } | { readonly kind: 'dynamic'; readonly module: string } | { readonly kind: 'missing'; readonly why: string };

async function streamModule(): Promise<StreamModule> {
  let info: string;
  try {
    // nginx -V prints to stderr.
    const { stdout, stderr } = await run('nginx', ['-V'], { timeout: 10_000 });
    info = `${stdout}${stderr}`;
  } catch {
    return { kind: 'missing', why: 'nginx is not installed (.ci/run installs nginx and libnginx-mod-stream with apt-get)' };
  }
  if (/--with-stream(\s|$)/.test(info)) return { kind: 'static' };
  if (!/--with-stream=dynamic/.test(info)) return { kind: 'missing', why: 'this nginx was built without the stream module' };
  const modulesPath = /--modules-path=(\S+)/.exec(info)?.[1] ?? '/usr/lib/nginx/modules';
  const module = path.join(modulesPath, 'ngx_stream_module.so');
  if (!existsSync(module)) {
    return { kind: 'missing', why: `the nginx stream module is not installed (${module}; Debian: apt-get install libnginx-mod-stream)` };
  }
  return { kind: 'dynamic', module };
}

/** Why nginx cannot be used as a stream proxy here, or undefined when it can. */
export async function nginxUnavailable(): Promise<string | undefined> {
  const stream = await streamModule();
  return stream.kind === 'missing' ? stream.why : undefined;
}

function config(dir: string, stream: StreamModule, port: number, upstreamPort: number, proxyTimeout: string): string {
  return [
    stream.kind === 'dynamic' ? `load_module ${stream.module};` : '',
    // In the foreground and in one process, so that stopping the child stops nginx.
    'daemon off;',
    'master_process off;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log info;`,
    'events { worker_connections 128; }',
    'stream {',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    proxy_pass 127.0.0.1:${upstreamPort};`,
    '    proxy_connect_timeout 2s;',
    // Closes a connection on which no byte went either way for this long.
    `    proxy_timeout ${proxyTimeout};`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * Starts nginx in front of `upstreamPort` and resolves once it listens:
 * nginx writes its pid file after it opened its listening sockets, so the
 * harness waits for that file instead of probing the port (a probe would
 * reach the server as a connection of its own).
 */
export async function startNginx(upstreamPort: number, proxyTimeout = '2s'): Promise<Nginx> {
  const stream = await streamModule();
  if (stream.kind === 'missing') throw new Error(stream.why);
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'heartwire-nginx-'));
    const port = await freePort();
    const conf = path.join(dir, 'nginx.conf');
    writeFileSync(conf, config(dir, stream, port, upstreamPort, proxyTimeout));
    const child = spawn('nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const started = await listening(child, dir);
    const errorLog = (): string => {
      try {
        return readFileSync(path.join(dir, 'error.log'), 'utf8');
      } catch {
        return '';
      }
    };
    if (started) return { port, errorLog, stop: () => stop(child, dir) };
    lastError = `${stderr.trim()} ${errorLog().trim()}`.trim();
    await stop(child, dir);
    // Another process took the port between the probe and nginx's bind: try another one.
    if (!/Address already in use/.test(lastError)) break;
  }
  throw new Error(`nginx did not start: ${lastError || 'no output'}`);
}

/** True once nginx wrote its pid file; false if it exited first or took over 10 s. */
export function listening(child: ChildProcess, dir: string): Promise<boolean> {
  const pidFile = path.join(dir, 'nginx.pid');
  return new Promise((resolve) => {
    const watcher = watch(dir);
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      watcher.close();
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(ok);
    };
    const onExit = (): void => done(false);
    const timer = setTimeout(() => done(false), 10_000);
    child.once('exit', onExit);
    watcher.on('change', () => {
      if (existsSync(pidFile)) done(true);
    });
    if (existsSync(pidFile)) done(true);
  });
}

export async function stop(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dir, { recursive: true, force: true });
}
