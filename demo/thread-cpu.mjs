// CPU time of one thread, from the kernel's own per-thread accounting:
// /proc/PID/task/TID/schedstat, whose first field is the ns the thread spent
// on a CPU (the counter behind getrusage and process.cpuUsage(), per thread).
// Linux only, as the demo is.
import { closeSync, openSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** How often a watched thread is read: its end is known to within this, plus scheduling delay. */
const POLL_MS = 1;

const abs = () => performance.timeOrigin + performance.now();

/** The OS thread id of the calling thread (main or worker). */
export function ownThreadId() {
  return Number(readlinkSync('/proc/thread-self').split('/').pop());
}

/** CPU time the calling thread has used so far, in ms. */
export function ownThreadCpuMs() {
  return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ', 1)[0]) / 1e6;
}

/**
 * Watches a thread of another process from outside, so a thread busy in a
 * loop that never yields is read as promptly as an idle one, until the thread
 * is gone. `gone` resolves then with the time its end was seen and its CPU
 * time. The stretch between the last reading and that moment is counted as
 * if the thread ran on a CPU all through it, so the figure is an upper bound;
 * that stretch is reported apart as `estimatedMs`. Times are epoch ms
 * (performance.timeOrigin + performance.now()), as on the demo's timeline.
 */
export class ThreadCpuWatch {
  #fd;
  #buffer = Buffer.alloc(128);
  #timer;
  #ms;
  #at;

  /** Throws if the thread is already gone. */
  constructor(pid, tid) {
    this.#fd = openSync(`/proc/${pid}/task/${tid}/schedstat`, 'r');
    this.#at = abs();
    this.#ms = this.#read();
    if (this.#ms === undefined) {
      closeSync(this.#fd);
      throw new Error(`thread ${tid} of pid ${pid} is gone`);
    }
    this.gone = new Promise((resolve) => {
      this.#timer = setInterval(() => this.#poll(resolve), POLL_MS);
    });
  }

  /** Stops watching; `gone` then never resolves. Safe to repeat. */
  close() {
    if (this.#fd === undefined) return;
    clearInterval(this.#timer);
    closeSync(this.#fd);
    this.#fd = undefined;
  }

  #poll(resolve) {
    const at = abs();
    const ms = this.#read();
    if (ms === undefined) {
      const estimatedMs = at - this.#at;
      this.close();
      resolve({ t: at, cpuMs: this.#ms + estimatedMs, estimatedMs });
      return;
    }
    this.#ms = ms;
    this.#at = at;
  }

  /** ms on a CPU, or undefined once the thread has exited (ESRCH, or nothing to read). */
  #read() {
    try {
      const n = readSync(this.#fd, this.#buffer, 0, this.#buffer.length, 0);
      return n === 0 ? undefined : Number(this.#buffer.toString('latin1', 0, n).split(' ', 1)[0]) / 1e6;
    } catch {
      return undefined;
    }
  }
}
