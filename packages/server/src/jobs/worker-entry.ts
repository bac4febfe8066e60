/**
 * Entry point of a worker thread in the server's thread pool (piscina calls
 * the default export once per job). Progress and the outcome go through the
 * job's own MessagePort, in order.
 */
import type { MessagePort } from 'node:worker_threads';
import type { JobRequest } from './protocol.js';
import { runJob } from './runner.js';

export interface WorkerTask extends JobRequest {
  readonly port: MessagePort;
}

export default function runInWorker(task: WorkerTask): Promise<void> {
  return runJob(task, (message) => task.port.postMessage(message));
}
