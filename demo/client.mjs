// The demo's client process: connects, runs calls of one method ('render' by
// default) one after the other on one connection, and optionally hangs up
// (client.close(), i.e. FIN) a while into the last one.
//
//   node demo/client.mjs --port 40123 --scene 1 --jobs 800,800,12000 --hangup-after 1500
//   node demo/client.mjs --port 40123 --scene 4 --method spin --jobs 12000
//
// It reports to its parent only through JSON lines on stdout, each stamped with
// an absolute time (epoch ms, sub-ms precision, the same clock in every process
// on this machine). It exits when its stdin closes, so it never outlives the parent.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { connect } from '@heartwire/client';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    scene: { type: 'string', default: '0' },
    method: { type: 'string', default: 'render' },
    jobs: { type: 'string', default: '15000' },
    'hangup-after': { type: 'string' },
  },
});
const port = Number(args.port);
const scene = Number(args.scene);
const { method } = args;
const jobs = args.jobs.split(',').map(Number);
const hangupAfterMs = args['hangup-after'] === undefined ? undefined : Number(args['hangup-after']);
if (!Number.isInteger(port) || jobs.some((ms) => !(ms > 0))) {
  process.stderr.write('usage: client.mjs --port N [--scene N] [--method name] [--jobs ms,ms,...] [--hangup-after ms]\n');
  process.exit(2);
}

const abs = () => performance.timeOrigin + performance.now();
const emit = (ev, data = {}) => {
  // stdout is a pipe: writes are synchronous on Linux, so a line is out before the next statement runs.
  process.stdout.write(`${JSON.stringify({ t: abs(), who: 'client', ev, scene, ...data })}\n`);
};

process.stdin.on('end', () => process.exit(1));
process.stdin.resume();

let client;
try {
  client = await connect({ host: args.host, port });
} catch (err) {
  emit('connect-failed', { code: err.code, message: err.message });
  process.exit(1);
}
emit('connected', { pid: process.pid, heartbeatMs: client.welcome.heartbeatMs, silentMs: client.welcome.silentMs });

let hungUp = false;
const hangUp = () => {
  hungUp = true;
  emit('hangup', { how: 'client.close()' });
  void client.close();
};

for (const [index, ms] of jobs.entries()) {
  // Ids are given in order from 1 on a new connection: ours match the server's.
  const id = index + 1;
  const last = index === jobs.length - 1;
  let progressFrames = 0;
  const started = abs();
  try {
    const result = await client.call(
      method,
      { ms, scene },
      {
        onAccepted: () => {
          emit('accepted', { id, method, ms });
          if (last && hangupAfterMs !== undefined) setTimeout(hangUp, hangupAfterMs);
        },
        onProgress: (data) => {
          progressFrames += 1;
          emit('progress', { id, ms, data });
        },
      },
    );
    emit('result', { id, ms, elapsedMs: abs() - started, progressFrames, result });
  } catch (err) {
    emit('error', { id, ms, code: err.code, message: err.message, progressFrames });
    if (hungUp) break;
  }
}

await client.close();
process.exit(0);
