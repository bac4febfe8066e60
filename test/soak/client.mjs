// One soak client, in its own process: a reconnecting heartwire client that
// runs the calls its parent gives it and reports each one.
// argv[2]: JSON { port, concurrency, cancelRate, seed }.
// stdin: one line of call ids, space-separated. stdout lines:
//   "s ID"       the call was issued
//   "r ID CODE"  it ended: CODE is "ok" (a correct result), "BAD" (a wrong one) or the error's code
//   "done"       every call ended; the client closed.
import { createInterface } from 'node:readline';
import { createClient } from '@heartwire/client';

const { port, concurrency, cancelRate, seed } = JSON.parse(process.argv[2]);

// A small seeded generator (mulberry32): each child draws its own sequence.
let state = seed >>> 0;
const random = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

// Output is gathered and written every few ms: one write per line would cost a syscall each.
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
  heartbeatMs: 100,
  connectTimeoutMs: 5000,
  backoff: { initialDelayMs: 20, maxDelayMs: 200 },
});

async function one(id) {
  // Most jobs take a few ms; some longer, and a few outlast the server's silent bound, so kills
  // and freezes find calls in flight, and a frozen client is given up on by the server.
  const dice = random();
  const work = dice < 0.88 ? Math.floor(random() * 8) : dice < 0.98 ? 20 + Math.floor(random() * 60) : 600 + Math.floor(random() * 900);
  const fail = random() < 0.03;
  const cancel = random() < cancelRate;
  const controller = cancel ? new AbortController() : undefined;
  if (controller !== undefined) setTimeout(() => controller.abort(), Math.floor(random() * (work + 5)));
  // Written through before the call goes out (pipes are written synchronously on Linux): if this
  // process is killed a moment later, the parent still knows the call may have reached the server.
  say(`s ${id}`);
  flush();
  try {
    const value = await client.call('job', { id, work, fail }, { signal: controller?.signal });
    say(`r ${id} ${value?.id === id && value?.check === id * 7 + 3 ? 'ok' : 'BAD'}`);
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
