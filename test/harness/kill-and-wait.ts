import type { ChildProcess } from 'node:child_process';

/** Makes sure a child process is gone: SIGKILL (which ends a frozen one too), then its exit. */
export async function killAndWait(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}
