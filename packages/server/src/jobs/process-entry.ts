/**
 * Entry point of a child process in the server's process pool: one job at a
 * time, progress and outcome back over the IPC channel (ordered). It says
 * `ready` once it listens, so no request can arrive before its listener.
 */
import { READY, type JobMessage, type JobRequest } from './protocol.js';
import { runJob } from './runner.js';

const send = (message: JobMessage | typeof READY): void => {
  process.send?.(message);
};

process.on('message', (request: JobRequest) => {
  void runJob(request, send);
});
// The server is gone, and with it whoever wanted the result.
process.on('disconnect', () => process.exit(0));
send(READY);
