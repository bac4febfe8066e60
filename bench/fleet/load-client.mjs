// The load of `pnpm bench:fleet`'s throughput run: one heartwire client that makes `calls` short calls
// (echo jobs with `work` turns of test/fixtures/jobs.mjs's work loop each), `concurrency` at a time,
// then prints { event: 'done', startedAt, endedAt, ok, cpuSeconds }: epoch ms of its first call and of
// its last answer, and its CPU time (user + system) in between. argv[2]: JSON { port, calls, concurrency, work }.
import { connect } from '@heartwire/client';

const { port, calls, concurrency, work } = JSON.parse(process.argv[2]);
const client = await connect({ host: '127.0.0.1', port });
let next = 0;
let ok = 0;
const startedAt = performance.timeOrigin + performance.now();
const cpuBefore = process.cpuUsage();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < calls) {
      const value = next++;
      const result = await client.call('spin', { kind: 'echo', value, work });
      if (result?.echo === value) ok++;
    }
  }),
);
const endedAt = performance.timeOrigin + performance.now();
const cpu = process.cpuUsage(cpuBefore);
await client.close();
process.stdout.write(`${JSON.stringify({ event: 'done', t: endedAt, startedAt, endedAt, ok, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
