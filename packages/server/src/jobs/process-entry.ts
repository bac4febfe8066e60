/**
 * Entry point of a child process in the server's process pool: one job at a
 * time, progress and outcome back over the IPC channel (ordered). It says
 * `ready` once it listens, so no request can arrive before its listener. A
 * job learns that it must stop through its stop flag, which a watcher thread
 * sets from the stop pipe (stop-pipe.ts).
 */
import { AbortFlags } from './abort-flags.js';
import { READY, type JobMessage, type JobTask } from './protocol.js';
import { runJob } from './runner.js';
import { watchStopPipe } from './stop-pipe.js';

const send = (message: JobMessage | typeof READY): void => {
  process.send?.(message);
};

const flags = AbortFlags.create(1);
watchStopPipe(flags.buffer);
process.on('message', (task: JobTask) => {
  void runJob(task, flags, send);
});
// The server is gone, and with it whoever wanted the result.
process.on('disconnect', () => process.exit(0));
send(READY);
