import type { HeartwireServer, ServerOptions } from '@heartwire/server';
import type { AbortReason } from '@heartwire/core';
import { IdleJobs, type IdleJobRun } from './idle-jobs.js';
import { startServer } from './server.js';

/** Shared by the slow-link tests (test/slow-links*.test.ts). */
export const KiB = 1024;
export const MiB = 1024 * KiB;
/** Scheduling noise on a busy 2-core machine, never the protocol. */
export const SLACK_MS = 1500;

/** A server with an idle `job`, `upload` (returns how many bytes arrived) and `download` (returns that many bytes). */
export async function serveSlowLink(options: ServerOptions, register: (server: HeartwireServer) => void = () => {}) {
  const jobs = new IdleJobs();
  const { port, close } = await startServer(options, (server) => {
    server.handle('job', jobs.handler);
    server.handle('upload', (params: Uint8Array) => params.byteLength);
    server.handle('download', (params: { bytes: number }) => new Uint8Array(params.bytes));
    register(server);
  });
  return { jobs, port, close };
}

/** Resolves once the run's signal aborted, with its reason and the moment it did (`performance.now()`). */
export function abortOf(run: IdleJobRun): Promise<{ reason: AbortReason; at: number }> {
  const settled = () => ({ reason: run.signal.reason as AbortReason, at: run.abortedAt as number });
  if (run.signal.aborted) return Promise.resolve(settled());
  // IdleJobs' own listener, added first, has dated the abort by the time this one runs.
  return new Promise((resolve) => run.signal.addEventListener('abort', () => resolve(settled()), { once: true }));
}

export function rate(bytesPerSecond: number): string {
  return `${bytesPerSecond / KiB} KiB/s`;
}
