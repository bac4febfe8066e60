export { enqueue, type QueueHandler } from './enqueue.js';
export { DEFAULT_ENQUEUE_OPTIONS, resolveEnqueueOptions, type EnqueueOptions, type ResolvedEnqueueOptions } from './enqueue-options.js';
export { runWorker, type FleetWorker } from './run-worker.js';
export { DEFAULT_WORKER_OPTIONS, resolveWorkerOptions, type ResolvedWorkerOptions, type RunWorkerOptions } from './worker-options.js';
export type { FleetJobData } from './keys.js';
export type { FleetJobStopMessage, FleetRedisErrorMessage } from './diagnostics.js';
