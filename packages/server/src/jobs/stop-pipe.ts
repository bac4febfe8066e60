import { Worker } from 'node:worker_threads';

/**
 * How a child process of the process pool learns that its job must stop.
 * Its main thread is inside the job (a loop that never yields reads no IPC
 * message), so a small watcher thread in the child reads a pipe of its own
 * (fd {@link STOP_FD}, an extra stdio entry of the fork) and writes what it
 * reads into the child's stop flags (abort-flags.ts, one slot), where
 * `ctx.aborted` sees it with one load, exactly as in a worker thread.
 *
 * A record is 8 bytes: the job's key and its stop code's index, int32
 * little-endian. The child compares the key with its job's, so a record
 * that arrives after its job ended stops nothing.
 */
export const STOP_FD = 4;
const RECORD_BYTES = 8;

/** The record that stops job `key` with the code at `codeIndex`. */
export function stopRecord(key: number, codeIndex: number): Buffer {
  const record = Buffer.allocUnsafe(RECORD_BYTES);
  record.writeInt32LE(key, 0);
  record.writeInt32LE(codeIndex, 4);
  return record;
}

/**
 * The watcher's source, run with `eval` so its thread loads nothing but
 * node:net: a worker thread's start-up costs CPU, and this one runs in every
 * child. It writes slot 0 as AbortFlags.stop does: the code, then the key,
 * then wakes an `Atomics.waitAsync` (a job's `ctx.signal`).
 */
const WATCHER = `
const { workerData } = require('node:worker_threads');
const { Socket } = require('node:net');
const cells = new Int32Array(workerData.stopFlags);
let pending = Buffer.alloc(0);
new Socket({ fd: workerData.fd, readable: true, writable: false }).on('data', (chunk) => {
  pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
  let at = 0;
  for (; at + ${RECORD_BYTES} <= pending.length; at += ${RECORD_BYTES}) {
    Atomics.store(cells, 1, pending.readInt32LE(at + 4));
    Atomics.store(cells, 0, pending.readInt32LE(at));
    Atomics.notify(cells, 0);
  }
  pending = pending.subarray(at);
}).on('error', () => {});
`;

/** Starts the watcher thread of this child; it does not keep the child alive. */
export function watchStopPipe(stopFlags: SharedArrayBuffer): void {
  new Worker(WATCHER, { eval: true, workerData: { stopFlags, fd: STOP_FD } }).unref();
}
