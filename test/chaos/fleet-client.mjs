// One chaos client, in its own process: a reconnecting heartwire client that runs the calls its
// parent gives it against a front server of the fleet, and reports each one.
// argv[2]: JSON { port, concurrency, cancelRate, idempotentRate, seed }.
// stdin: one line of call ids, space-separated. stdout lines:
//   "s ID"       the call was issued
//   "r ID CODE"  it ended: CODE is "ok" (a correct result), "BAD" (a wrong one) or the error's code
//   "done"       every call ended; the client closed.
import { createInterface } from 'node:readline';
import { createClient } from '@heartwire/client';

const { port, concurrency, cancelRate, idempotentRate, seed } = JSON.parse(process.argv[2]);

// mulberry32: each child draws its own sequence from its seed.
let state = seed >>> 0;
const random = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

let pending = '';
const flush = () => {
  if (pending.length > 0) process.stdout.write(pending);
  pending = '';
};
setInterval(flush, 5).unref();
const say = (line) => {
  pending += `${line}\n`;
};

const client = createClient({
  host: '127.0.0.1',
  port,
  heartbeatMs: 200,
  connectTimeoutMs: 5000,
  backoff: { initialDelayMs: 20, maxDelayMs: 200 },
});

async function one(id) {
  // Most jobs take a few ms; some much longer, so kills find jobs running on the fleet.
  const dice = random();
  const ms = dice < 0.9 ? Math.floor(random() * 5) : 100 + Math.floor(random() * 900);
  const method = random() < idempotentRate ? 'spin-idem' : 'spin';
  const controller = random() < cancelRate ? new AbortController() : undefined;
  if (controller !== undefined) setTimeout(() => controller.abort(), Math.floor(random() * (ms + 20)));
  // Written through before the call goes out: if this process is killed a moment later, the parent
  // still knows the call may have reached the fleet.
  say(`s ${id}`);
  flush();
  try {
    const value = await client.call(method, { kind: 'spin', tag: String(id), ms }, { signal: controller?.signal });
    say(`r ${id} ${value?.done === String(id) ? 'ok' : 'BAD'}`);
  } catch (err) {
    say(`r ${id} ${typeof err?.code === 'string' ? err.code : 'UNCODED'}`);
  }
}

createInterface({ input: process.stdin }).once('line', async (line) => {
  const ids = line.trim().split(' ').filter(Boolean).map(Number);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) await one(ids[next++]);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await client.close();
  say('done');
  flush();
  process.exitCode = 0;
});
