import { AbortReason } from '@heartwire/core';
import type { CallContext } from '../calls/handler.js';
import type { JobRequest } from './protocol.js';

/**
 * Where jobs run off the main thread: a pool of worker threads or of child
 * processes. `run` settles with the job's result, or rejects with what the
 * call fails with; once `ctx.signal` aborts, the job stops (its thread is
 * terminated, its process killed, or it leaves the queue) and `run` rejects
 * with the abort reason.
 */
export interface JobPool {
  run(request: JobRequest, ctx: CallContext): Promise<unknown>;
  /** Stops every job and the threads or processes; resolves once they are gone. */
  close(): Promise<void>;
}

/** What every job of a pool, and every later one, fails with once the pool (its server) is closing. */
export function shutdownError(): AbortReason {
  return new AbortReason('HW_ERR_SERVER_SHUTDOWN', 'the server is shutting down');
}
