// Load generator of `pnpm bench:http`, in its own process: GET `url` over CONNECTIONS kept-alive
// HTTP/1.1 connections, one request in flight on each, for DURATION ms after WARMUP ms; prints
// { calls, ms, failed } as JSON. Every response body is read to its end and checked for `expect`.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const { url, connections, durationMs, warmupMs, expect } = JSON.parse(process.argv[2]);
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
let counting = false;
let calls = 0;
let failed = 0;
let stop = false;

function one() {
  return new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => {
        if (counting) {
          if (body.includes(expect)) calls++;
          else failed++;
        }
        resolve();
      });
    });
    req.on('error', () => {
      if (counting) failed++;
      resolve();
    });
  });
}

async function loop() {
  while (!stop) await one();
}

const loops = Array.from({ length: connections }, loop);
await new Promise((resolve) => setTimeout(resolve, warmupMs));
counting = true;
const start = performance.now();
await new Promise((resolve) => setTimeout(resolve, durationMs));
counting = false;
const ms = performance.now() - start;
stop = true;
await Promise.all(loops);
agent.destroy();
process.stdout.write(`${JSON.stringify({ calls, ms, failed })}\n`);
