// One soak client, in its own process: a reconnecting heartwire client that runs the calls its parent
// gives it and reports each one (lines and stdin as test/fixtures/call-client.mjs says).
// argv[2]: JSON { port, concurrency, cancelRate, seed }.
import { runCallClient } from '../fixtures/call-client.mjs';

const { port, concurrency, cancelRate, seed } = JSON.parse(process.argv[2]);

runCallClient({ port, concurrency, seed, heartbeatMs: 100 }, (id, random) => {
  // Most jobs take a few ms; some longer, and a few outlast the server's silent bound, so kills
  // and freezes find calls in flight, and a frozen client is given up on by the server.
  const dice = random();
  const work = dice < 0.88 ? Math.floor(random() * 8) : dice < 0.98 ? 20 + Math.floor(random() * 60) : 600 + Math.floor(random() * 900);
  const fail = random() < 0.03;
  const cancel = random() < cancelRate;
  const controller = cancel ? new AbortController() : undefined;
  if (controller !== undefined) setTimeout(() => controller.abort(), Math.floor(random() * (work + 5)));
  return {
    method: 'job',
    params: { id, work, fail },
    signal: controller?.signal,
    isCorrect: (value) => value?.id === id && value?.check === id * 7 + 3,
  };
});
