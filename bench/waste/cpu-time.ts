import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * CPU time of a set of threads, read from the kernel's own per-thread
 * accounting (/proc/PID/task/TID/schedstat, first field: ns on a CPU; the
 * counters getrusage, and so `process.cpuUsage()`, add up). It is read from
 * outside, so a thread whose event loop is blocked is measured as promptly as
 * an idle one.
 *
 * A thread that exits between two readings keeps its last value plus the
 * time since then at the rate it last ran: an upper bound of what it burned.
 */
export class CpuTime {
  private readonly fds: number[] = [];
  private readonly ns: number[] = [];
  /** ns per ms each thread ran at between its last two readings. */
  private readonly rate: number[] = [];
  private readonly seenAt: number[] = [];
  private readonly alive: boolean[] = [];
  private readonly buffer = Buffer.alloc(128);
  /** How much of the total was estimated for threads that exited between readings, in ms. */
  estimatedMs = 0;

  /** The job's thread only. */
  static ofThread(tid: number): CpuTime {
    return new CpuTime([tid]);
  }

  /** Every thread of `pid` and of its descendants, as they are now (threads and processes started later are not counted). */
  static ofTree(pid: number): CpuTime {
    return new CpuTime(threadsOf(pid));
  }

  private constructor(tids: readonly number[]) {
    for (const tid of tids) {
      try {
        this.fds.push(openSync(`/proc/${tid}/task/${tid}/schedstat`, 'r'));
      } catch {
        continue; // exited meanwhile
      }
      this.ns.push(0);
      this.rate.push(0);
      this.seenAt.push(0);
      this.alive.push(true);
    }
    this.read();
  }

  /** Milliseconds on a CPU, summed over the threads. */
  read(): number {
    const at = performance.now();
    let total = 0;
    for (let i = 0; i < this.fds.length; i++) {
      if (this.alive[i]) {
        const ns = this.readThread(i);
        if (ns === undefined) {
          this.alive[i] = false;
          const estimate = (at - this.seenAt[i]!) * this.rate[i]!;
          this.ns[i] = this.ns[i]! + estimate;
          this.estimatedMs += estimate / 1e6;
        } else {
          if (this.seenAt[i]! > 0) this.rate[i] = Math.min(1e6, (ns - this.ns[i]!) / Math.max(1e-3, at - this.seenAt[i]!));
          this.ns[i] = ns;
          this.seenAt[i] = at;
        }
      }
      total += this.ns[i]!;
    }
    return total / 1e6;
  }

  close(): void {
    for (const fd of this.fds) closeSync(fd);
  }

  private readThread(i: number): number | undefined {
    try {
      const n = readSync(this.fds[i]!, this.buffer, 0, this.buffer.length, 0);
      if (n === 0) return undefined;
      return Number(this.buffer.toString('latin1', 0, n).split(' ', 1)[0]);
    } catch {
      return undefined; // ESRCH: the thread has exited
    }
  }
}

/** The OS thread id of the calling thread (main or worker), as `CpuTime.ofThread` takes it. */
export function threadSelf(): number {
  return Number(readlinkSync('/proc/thread-self').split('/').pop());
}

function threadsOf(pid: number): number[] {
  const tids: number[] = [];
  const pending = [pid];
  for (let p = pending.pop(); p !== undefined; p = pending.pop()) {
    let names: string[];
    try {
      names = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const name of names) {
      tids.push(Number(name));
      try {
        const children = readFileSync(`/proc/${p}/task/${name}/children`, 'latin1').trim();
        if (children !== '') pending.push(...children.split(' ').map(Number));
      } catch {
        // the thread exited meanwhile
      }
    }
  }
  return tids;
}
