// The job of `pnpm bench:waste` for heartwire's worker threads and child processes: the same work
// the main-thread, naive and grpc-js servers do in bench/waste/server.ts. It reports the OS thread
// it runs on, whose CPU time the bench reads.
import { pbkdf2Sync } from 'node:crypto';
import { readlinkSync } from 'node:fs';

export default function job(request, ctx) {
  ctx.progress({ tid: Number(readlinkSync('/proc/thread-self').split('/').pop()) });
  if (request.kind === 'native') {
    // One synchronous native call: a thread cannot be stopped inside it.
    pbkdf2Sync('secret', 'salt', request.iterations, 64, 'sha512');
    return 'done';
  }
  // A tight loop that never yields.
  const until = performance.now() + request.ms;
  while (performance.now() < until);
  return 'done';
}
