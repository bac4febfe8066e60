import { HeartwireError, thrownMessage } from '@heartwire/core';
import type { JobContext, JobFunction } from './module.js';
import type { JobMessage, JobRequest } from './protocol.js';

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
 * sent (structured cloning fails) becomes an `HW_ERR_ENCODE` error.
 */
export async function runJob(request: JobRequest, send: (message: JobMessage) => void): Promise<void> {
  const ctx: JobContext = {
    method: request.method,
    id: request.id,
    progress: (data: unknown) => send({ type: 'progress', data }),
  };
  let outcome: JobMessage;
  try {
    const job = await load(request.module);
    outcome = { type: 'result', value: await job(request.params, ctx) };
  } catch (err) {
    outcome = { type: 'error', code: err instanceof HeartwireError ? err.code : 'HW_ERR_HANDLER', message: thrownMessage(err) };
  }
  try {
    send(outcome);
  } catch (err) {
    send({ type: 'error', code: 'HW_ERR_ENCODE', message: `the job's result cannot be sent back: ${thrownMessage(err)}` });
  }
}
