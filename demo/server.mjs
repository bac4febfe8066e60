// The demo's server process: a heartwire server with two methods for long
// CPU-heavy jobs: 'render', done on the main thread in short slices of busy
// CPU work with an event-loop turn between them, and 'spin', a loop that never
// yields, run in a worker thread (demo/spin-job.mjs). A job's length (`ms`) is
// CPU time of its own thread, so a busy machine makes it slower, not shorter.
//
// It talks to its parent (demo/run.mjs) only through JSON lines on stdout,
// each stamped with an absolute time (epoch ms, sub-ms precision, the same
// clock in every process on this machine). It exits when its stdin closes, so
// it never outlives the parent.
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { createServer, worker } from '@heartwire/server';
import { ownThreadCpuMs } from './thread-cpu.mjs';

const HEARTBEAT_MS = 250;
const SILENT_MS = 1000;
const SLICE_MS = 20;

const abs = (perfNow = performance.now()) => performance.timeOrigin + perfNow;
const emit = (ev, data = {}, t = abs()) => {
  process.stdout.write(`${JSON.stringify({ t, who: 'server', ev, ...data })}\n`);
};

/** Jobs running, by `${remotePort}/${callId}` (call ids are unique per connection). */
const jobs = new Map();
const keyOf = (remotePort, id) => `${remotePort}/${id}`;

diagnostics.subscribe('heartwire:server:call:start', (msg) => {
  emit('accepted', { method: msg.method, id: msg.id, remotePort: msg.remotePort });
});

diagnostics.subscribe('heartwire:server:call:abort', (msg) => {
  const job = jobs.get(keyOf(msg.remotePort, msg.id));
  if (job !== undefined) job.abortAt = msg.at;
  emit(
    'abort',
    {
      method: msg.method,
      id: msg.id,
      remotePort: msg.remotePort,
      scene: job?.scene,
      code: msg.reason?.code,
      message: msg.reason?.message,
    },
    abs(msg.at),
  );
});

// One worker thread is all the demo needs: its jobs run one at a time.
const server = createServer({ heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS, threadPoolSize: 1 });

server.handle('spin', worker(new URL('./spin-job.mjs', import.meta.url)));

server.handle('render', async (params, ctx) => {
  const totalMs = Number(params?.ms ?? 15_000);
  const key = keyOf(ctx.remotePort, ctx.id);
  const job = { scene: params?.scene, abortAt: undefined };
  jobs.set(key, job);
  const cpuStartMs = ownThreadCpuMs();
  let usedMs = 0;
  try {
    let nextPercent = 10;
    while (usedMs < totalMs && !ctx.signal.aborted) {
      // One slice of real, busy CPU work ...
      const until = performance.now() + Math.min(SLICE_MS, totalMs - usedMs);
      while (performance.now() < until) {}
      usedMs = ownThreadCpuMs() - cpuStartMs;
      const percent = Math.floor((100 * usedMs) / totalMs);
      if (percent >= nextPercent && percent < 100) {
        ctx.progress({ percent: nextPercent });
        nextPercent += 10;
      }
      // ... then one turn of the event loop, where heartbeats go out and FIN/RST/PONGs come in.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (ctx.signal.aborted) {
      const now = performance.now();
      emit('stopped', {
        id: ctx.id,
        scene: job.scene,
        lagMs: job.abortAt === undefined ? undefined : now - job.abortAt,
        cpuMs: ownThreadCpuMs() - cpuStartMs,
        totalMs,
      });
      throw ctx.signal.reason;
    }
    return { cpuMs: ownThreadCpuMs() - cpuStartMs };
  } finally {
    jobs.delete(key);
  }
});

server.on('error', (err) => {
  process.stderr.write(`server error: ${err.stack ?? err}\n`);
  process.exit(1);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  emit('listening', {
    port,
    pid: process.pid,
    heartbeatMs: server.options.heartbeatMs,
    silentMs: server.options.silentMs,
    sliceMs: SLICE_MS,
  });
});

// The parent closes our stdin to stop us (or dies, which closes it too).
process.stdin.on('end', () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
process.stdin.resume();
