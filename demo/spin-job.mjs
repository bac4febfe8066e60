// The demo's worker-thread job: a tight synchronous loop that never yields,
// with no await and no check of any abort flag, as CPU-bound code often is.
// It runs in a worker thread of the server's pool (demo/server.mjs); when its
// client is gone, only the server can stop it, by force.
//
// First it tells the client which OS thread it runs on and how much CPU that
// thread had used before the job, so the demo can read the thread's CPU time
// from outside and count this job's share only.
import { ownThreadCpuMs, ownThreadId } from './thread-cpu.mjs';

export default function spin(params, ctx) {
  const cpuStartMs = ownThreadCpuMs();
  ctx.progress({ tid: ownThreadId(), cpuStartMs });
  // Its length is CPU time, read from its own thread's clock: `ms` of CPU
  // work, however busy the machine is.
  const end = cpuStartMs + params.ms;
  while (ownThreadCpuMs() < end);
  return { cpuMs: ownThreadCpuMs() - cpuStartMs };
}
