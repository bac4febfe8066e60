/**
 * The files a worker thread or child process of the job pools runs. Built,
 * they sit next to this module in dist/. Run from the sources (the in-process
 * tests do), they are still taken from dist/, which `pnpm build` writes: a
 * thread or process runs JavaScript, not TypeScript.
 */
const dist = import.meta.url.endsWith('.ts') ? new URL('../../dist/', import.meta.url) : new URL('./', import.meta.url);

export const WORKER_ENTRY = new URL('worker-job.js', dist);
export const PROCESS_ENTRY = new URL('process-job.js', dist);
