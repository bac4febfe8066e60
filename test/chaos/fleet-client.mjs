// One chaos client, in its own process: a reconnecting heartwire client that runs the calls its
// parent gives it against a front server of the fleet, and reports each one (lines and stdin as
// test/fixtures/call-client.mjs says).
// argv[2]: JSON { port, concurrency, cancelRate, idempotentRate, seed }.
import { runCallClient } from '../fixtures/call-client.mjs';

const { port, concurrency, cancelRate, idempotentRate, seed } = JSON.parse(process.argv[2]);

runCallClient({ port, concurrency, seed, heartbeatMs: 200 }, (id, random) => {
  // Most jobs take a few ms; some much longer, so kills find jobs running on the fleet.
  const dice = random();
  const ms = dice < 0.9 ? Math.floor(random() * 5) : 100 + Math.floor(random() * 900);
  const method = random() < idempotentRate ? 'spin-idem' : 'spin';
  const controller = random() < cancelRate ? new AbortController() : undefined;
  if (controller !== undefined) setTimeout(() => controller.abort(), Math.floor(random() * (ms + 20)));
  return {
    method,
    params: { kind: 'spin', tag: String(id), ms },
    signal: controller?.signal,
    isCorrect: (value) => value?.done === String(id),
  };
});
