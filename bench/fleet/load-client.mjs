// The load of `pnpm bench:fleet`'s throughput run: one heartwire client that makes `calls` short calls,
// `concurrency` at a time, then prints { event: 'done', ms, ok }. argv[2]: JSON { port, calls, concurrency }.
import { connect } from '@heartwire/client';

const { port, calls, concurrency } = JSON.parse(process.argv[2]);
const client = await connect({ host: '127.0.0.1', port });
let next = 0;
let ok = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < calls) {
      const value = next++;
      const result = await client.call('spin', { kind: 'echo', value });
      if (result?.echo === value) ok++;
    }
  }),
);
const ms = performance.now() - started;
await client.close();
process.stdout.write(`${JSON.stringify({ event: 'done', t: 0, ms, ok })}\n`);
