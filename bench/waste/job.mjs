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
  const until = performance.now() + request.ms;
  if (request.kind === 'coop') {
    // The same loop, checking on every turn: it returns within the server's jobAbortGraceMs once
    // its call stops, and keeps its thread or process.
    while (performance.now() < until) ctx.throwIfAborted();
    return 'done';
  }
  // A tight loop that never yields.
  while (performance.now() < until);
  return 'done';
}
