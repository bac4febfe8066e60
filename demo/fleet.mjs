// heartwire fleet demo: Redis, one front server and two fleet workers, each a real process; clients
// that wait, hang up (SIGKILL) or cancel, and a front server that dies with a job running.
//
//   pnpm demo:fleet      (builds the packages, then runs this file; needs redis-server)
//
// Exits non-zero when a job is not stopped within its bound plus SLACK_MS.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));
const now = () => performance.timeOrigin + performance.now();
const start = now();
const stamp = (t) => `${((t - start) / 1000).toFixed(3).padStart(7)} s`;
const SLACK_MS = 1000;
const LEASE_BOUND_MS = 1500 + 100;
let failed = false;

const children = [];
const lines = [];
const waiters = [];
function launch(file, args, label, onLine) {
  const child = spawn(process.execPath, [here(file), JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  readline.createInterface({ input: child.stdout }).on('line', (text) => {
    const line = { ...JSON.parse(text), from: label };
    lines.push(line);
    onLine?.(line);
    for (const w of [...waiters]) w();
  });
  return child;
}
function waitFor(match, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const hit = lines.find(match);
      if (hit === undefined) return;
      waiters.splice(waiters.indexOf(check), 1);
      clearTimeout(timer);
      resolve(hit);
    };
    const timer = setTimeout(() => reject(new Error('the demo waited too long')), timeoutMs);
    waiters.push(check);
    check();
  });
}
const show = (line) => {
  const { event, from, t, ...rest } = line;
  if (event === 'progress' && rest.frames !== undefined && lines.filter((l) => l.event === 'progress' && l.scene === line.scene).length > 2) return;
  console.log(`${stamp(t ?? now())}  ${from.padEnd(14)} ${event} ${JSON.stringify(rest)}`);
};

// Redis on a free loopback port, its own dir, no persistence.
const dir = mkdtempSync(join(tmpdir(), 'heartwire-demo-redis-'));
const probe = net.createServer().listen(0, '127.0.0.1');
await once(probe, 'listening');
const redisPort = probe.address().port;
probe.close();
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
redis.on('error', () => {
  console.error('redis-server is not installed (Debian: apt-get install redis-server)');
  process.exit(2);
});
await new Promise((resolve) => readline.createInterface({ input: redis.stdout }).on('line', (l) => l.includes('Ready to accept') && resolve()));
console.log(`${stamp(now())}  redis-server   ready on 127.0.0.1:${redisPort}`);

try {
  for (const name of ['fleet-A', 'fleet-B']) launch('./fleet-worker.mjs', { redisPort, name }, name, show);
  await waitFor((l) => l.event === 'ready' && l.from === 'fleet-A');
  await waitFor((l) => l.event === 'ready' && l.from === 'fleet-B');
  const front = launch('./fleet-front.mjs', { redisPort, port: 0 }, 'front', show);
  const { port } = await waitFor((l) => l.event === 'listening');

  const scene = async (name, ms, how, story) => {
    console.log(`\n— ${story}`);
    const client = launch('./fleet-client.mjs', { port, scene: name, ms, ...(how === 'cancel' ? { cancelAfterMs: 1200 } : {}) }, `client ${name}`, show);
    await waitFor((l) => l.event === 'start' && l.scene === name);
    if (how === 'wait') return waitFor((l) => l.event === 'result' && l.scene === name);
    let goneAt;
    if (how === 'kill') {
      await waitFor((l) => l.event === 'progress' && l.scene === name && l.frames !== undefined);
      goneAt = now();
      client.kill('SIGKILL');
      console.log(`${stamp(goneAt)}  client ${name.padEnd(7)} killed (SIGKILL)`);
    } else {
      goneAt = (await waitFor((l) => l.event === 'error' && l.scene === name)).t;
    }
    const stopped = await waitFor((l) => l.event === 'failed' && l.scene === name);
    const took = stopped.t - goneAt;
    console.log(`  → the fleet stopped job "${name}" ${took.toFixed(0)} ms after its client went`);
    if (took > SLACK_MS) failed = true;
  };

  await scene('wait', 1000, 'wait', 'a client waits for a 1 s job: ACCEPTED at once, progress, the result');
  await scene('kill', 20_000, 'kill', 'a client is killed (SIGKILL) during a 20 s job');
  await scene('cancel', 20_000, 'cancel', 'a client cancels its call after 1.2 s');

  console.log(`\n— the front server is killed (SIGKILL) during a 20 s job: its lease (1500 ms, checked every 100 ms) lapses`);
  launch('./fleet-client.mjs', { port, scene: 'orphan', ms: 20_000 }, 'client orphan', show);
  await waitFor((l) => l.event === 'start' && l.scene === 'orphan');
  await waitFor((l) => l.event === 'progress' && l.scene === 'orphan' && l.frames !== undefined);
  const killedAt = now();
  front.kill('SIGKILL');
  console.log(`${stamp(killedAt)}  front          killed (SIGKILL)`);
  const stopped = await waitFor((l) => l.event === 'failed' && l.scene === 'orphan');
  const took = stopped.t - killedAt;
  console.log(`  → the fleet stopped job "orphan" ${took.toFixed(0)} ms after its front server died (bound: leaseMs + leaseCheckMs = ${LEASE_BOUND_MS} ms)`);
  if (took > LEASE_BOUND_MS + SLACK_MS) failed = true;
} finally {
  for (const child of children) child.kill('SIGKILL');
  redis.kill('SIGKILL');
  await once(redis, 'exit');
  rmSync(dir, { recursive: true, force: true });
}
console.log(failed ? '\nFAILED: a job was not stopped in time' : '\nevery job stopped in time');
process.exit(failed ? 1 : 0);
