import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';
import { listening, stop, type Nginx } from './nginx.js';

const run = promisify(execFile);

/** Why nginx cannot be used as an HTTP reverse proxy here, or undefined when it can (the http module is always built in). */
export async function nginxHttpUnavailable(): Promise<string | undefined> {
  try {
    await run('nginx', ['-v'], { timeout: 10_000 });
    return undefined;
  } catch {
    return 'nginx is not installed (.ci/run installs it with apt-get)';
  }
}

function config(dir: string, port: number, upstreamPort: number, readTimeout: string): string {
  return [
    // In the foreground and in one process, so that stopping the child stops nginx.
    'daemon off;',
    'master_process off;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log info;`,
    'events { worker_connections 128; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${dir}/body;`,
    `  proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fastcgi;`,
    `  uwsgi_temp_path ${dir}/uwsgi;`,
    `  scgi_temp_path ${dir}/scgi;`,
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    location / {',
    `      proxy_pass http://127.0.0.1:${upstreamPort};`,
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '      proxy_connect_timeout 2s;',
    // Cuts a response from which no byte came for this long: the default is 60 s.
    `      proxy_read_timeout ${readTimeout};`,
    // Buffering stays at nginx's default (on): the bridge's X-Accel-Buffering: no turns it off per response.
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Starts nginx as an HTTP/1.1 reverse proxy in front of `upstreamPort` and resolves once it listens. */
export async function startNginxHttp(upstreamPort: number, readTimeout = '2s'): Promise<Nginx> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'heartwire-nginx-http-'));
    const port = await freePort();
    const conf = path.join(dir, 'nginx.conf');
    writeFileSync(conf, config(dir, port, upstreamPort, readTimeout));
    const child = spawn('nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const errorLog = (): string => {
      try {
        return readFileSync(path.join(dir, 'error.log'), 'utf8');
      } catch {
        return '';
      }
    };
    if (await listening(child, dir)) return { port, errorLog, stop: () => stop(child, dir) };
    lastError = `${stderr.trim()} ${errorLog().trim()}`.trim();
    await stop(child, dir);
    // Another process took the port between the probe and nginx's bind: try another one.
    if (!/Address already in use/.test(lastError)) break;
  }
  throw new Error(`nginx did not start: ${lastError || 'no output'}`);
}
