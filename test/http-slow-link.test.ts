import http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { afterEach, expect, it } from 'vitest';
import { FaultProxy } from './harness/fault-proxy.js';
import { startHttp } from './harness/http.js';
import { IdleJobs } from './harness/idle-jobs.js';
import { KiB, rate } from './harness/slow-link.js';

/*
 * A healthy HTTP/2 client on a slow uplink (PROTOCOL.md §5, §11): a real
 * node:http2 client runs a long call and, on the same connection, uploads a
 * large body through a proxy that paces its bytes to the server. Its stack
 * answers each PING at once, but the answer waits behind every DATA byte
 * queued ahead of it (in the client's socket, the kernel and the proxy) for
 * far longer than silentMs. The bytes themselves keep arriving, and any
 * inbound byte is life: nobody may be declared silent.
 */

const HEARTBEAT_MS = 200;
const SILENT_MS = 600;
const UPLINK_BYTES_PER_S = 32 * KiB;
/** About 6 s at the paced rate: ten silent bounds. */
const UPLOAD_BYTES = 192 * KiB;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Reads a bridged response to its end and returns its events, filler dropped. */
async function eventsOf(stream: http2.ClientHttp2Stream): Promise<Array<Record<string, unknown>>> {
  let text = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream) text += chunk as string;
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

it(`an HTTP/2 upload at ${rate(UPLINK_BYTES_PER_S)} beside a long call is no silence, however late the PING answers come`, async () => {
  const jobs = new IdleJobs();
  const setup = await startHttp(
    (hw) => {
      hw.handle('idle', jobs.handler);
      hw.handle('upload', (params: { data: string }) => params.data.length);
    },
    { heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS, maxBodyBytes: UPLOAD_BYTES + 1024 },
  );
  cleanups.push(() => setup.close());
  const proxy = await FaultProxy.start({
    port: Number(new URL(setup.h2c).port),
    pace: { toServer: { bytesPerSecond: UPLINK_BYTES_PER_S } },
  });
  cleanups.push(() => proxy.close());

  const session = http2.connect(`http://127.0.0.1:${proxy.port}`);
  session.on('error', () => {});
  cleanups.push(() => session.destroy());
  const started = performance.now();

  const longCall = session.request({ ':method': 'GET', ':path': `/idle?params=${encodeURIComponent(JSON.stringify({ ms: 600_000 }))}` });
  const longEvents = eventsOf(longCall);
  await jobs.started(1);

  const upload = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/json' });
  upload.end(JSON.stringify({ data: 'x'.repeat(UPLOAD_BYTES) }));
  const uploadEvents = await eventsOf(upload);
  const uploadMs = performance.now() - started;

  expect(uploadEvents.at(-1)).toEqual({ type: 'result', data: UPLOAD_BYTES });
  // The link was slow enough to hold a PING's answer back past the bound.
  expect(uploadMs).toBeGreaterThan(3 * SILENT_MS);
  expect(setup.events.aborts).toEqual([]);
  expect(jobs.runs[0]!.signal.aborted).toBe(false);
  console.log(`[http-slow-link] ${UPLOAD_BYTES / KiB} KiB uploaded in ${Math.round(uploadMs)} ms beside a long call; no verdict`);

  longCall.close(http2.constants.NGHTTP2_CANCEL);
  await longEvents.catch(() => {});
});
