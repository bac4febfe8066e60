import { HeartwireError, thrownMessage } from '@heartwire/core';
import type { AbortFlags } from './abort-flags.js';
import { RunningJobContext } from './job-context.js';
import type { JobFunction } from './module.js';
import type { JobMessage, JobTask } from './protocol.js';

/** Runs inside a worker thread or child process: the job modules it loaded, by URL. */
const modules = new Map<string, Promise<JobFunction>>();

function load(url: string): Promise<JobFunction> {
  let loaded = modules.get(url);
  if (loaded === undefined) {
    loaded = import(url).then((namespace: { default?: unknown }) => {
      if (typeof namespace.default !== 'function') {
        throw new Error(`job module ${url} has no default export function`);
      }
      return namespace.default as JobFunction;
    });
    modules.set(url, loaded);
  }
  return loaded;
}

/**
 * Runs one job and sends its progress, then its outcome, through `send`. A
 * thrown `HeartwireError` keeps its code; anything else thrown is
 * `HW_ERR_HANDLER`, as for a main-thread handler. A result that cannot be
 * sent (structured cloning fails) becomes an `HW_ERR_ENCODE` error. A job
 * stopped before it started (its flag already set) is not run: nobody
 * wants its result.
 */
export async function runJob(task: JobTask, flags: AbortFlags, send: (message: JobMessage) => void): Promise<void> {
  const ctx = new RunningJobContext(task, flags, send);
  let outcome: JobMessage;
  try {
    ctx.throwIfAborted();
    const job = await load(task.module);
    outcome = { type: 'result', value: await job(task.params, ctx) };
  } catch (err) {
    outcome = { type: 'error', code: err instanceof HeartwireError ? err.code : 'HW_ERR_HANDLER', message: thrownMessage(err) };
  } finally {
    ctx.end();
  }
  try {
    send(outcome);
  } catch (err) {
    send({ type: 'error', code: 'HW_ERR_ENCODE', message: `the job's result cannot be sent back: ${thrownMessage(err)}` });
  }
}
