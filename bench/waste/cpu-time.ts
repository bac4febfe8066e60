import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * How often a tree's threads are listed again. Listing walks /proc (a
 * directory and a file per thread), about 0.45 ms: at every 2 ms reading
 * that took a fifth of a core from the server being measured, on a machine
 * of two. Reading the threads already known is one pread each.
 */
const LIST_EVERY_MS = 20;

/** The scheduler's tick here (CONFIG_HZ=250): how often a running thread's count moves. */
const TICK_MS = 4;

/** How long {@link CpuTime.readAfterTick} waits for a tick before it reads anyway. */
const TICK_WAIT_MS = 20;

/**
 * CPU time of a set of threads, read from the kernel's own per-thread
 * accounting (/proc/PID/task/TID/schedstat, first field: ns on a CPU; the
 * counters getrusage, and so `process.cpuUsage()`, add up). It is read from
 * outside, so a thread whose event loop is blocked is measured as promptly as
 * an idle one.
 *
 * The kernel adds a running thread's time to that counter only at its
 * scheduler's tick (every 4 ms here: CONFIG_HZ=250) and when the thread
 * stops running; so a reading of a busy thread lags by up to a tick, and one
 * of a thread that has stopped is exact. A measurement that starts on a busy
 * thread starts with {@link CpuTime.readAfterTick}.
 *
 * A thread that exits between two readings keeps its last value; if it was
 * running (its count moved at its last ticks), plus all the time from before
 * the tick that last moved that value until the reading that found it gone,
 * as if it ran all along: an upper bound of what it burned (by up to two
 * readings' interval and the rest of its tick).
 * A tree is listed again every LIST_EVERY_MS, so a thread or process started
 * after the first reading (a replacement thread, a new spare process) counts
 * from its start: its counter starts at 0.
 */
export class CpuTime {
  private readonly fds: number[] = [];
  private readonly ns: number[] = [];
  /** For each thread, a time before the tick that last moved its count (the reading before the one that saw it move). */
  private readonly freshFrom: number[] = [];
  /** For each thread, when a reading last saw its count move. */
  private readonly movedAt: number[] = [];
  private readonly seenAt: number[] = [];
  private readonly alive: boolean[] = [];
  private readonly buffer = Buffer.alloc(128);
  private readonly tids = new Set<number>();
  /** How much of the total was estimated for threads that exited between readings, in ms. */
  estimatedMs = 0;
  private listedAt = -Infinity;

  /** The job's thread only. */
  static ofThread(tid: number): CpuTime {
    return new CpuTime([tid]);
  }

  /** Every thread of `pid` and of its descendants, those started later included. */
  static ofTree(pid: number): CpuTime {
    return new CpuTime(threadsOf(pid), pid);
  }

  private constructor(
    tids: readonly number[],
    private readonly root?: number,
  ) {
    this.add(tids);
    this.read();
  }

  /** Milliseconds on a CPU, summed over the threads. */
  read(): number {
    const at = performance.now();
    if (this.root !== undefined && at - this.listedAt >= LIST_EVERY_MS) {
      this.add(threadsOf(this.root));
      this.listedAt = at;
    }
    let total = 0;
    for (let i = 0; i < this.fds.length; i++) {
      if (this.alive[i]) {
        const ns = this.readThread(i);
        if (ns === undefined) {
          this.alive[i] = false;
          // A thread whose count moved at its last ticks was running: its count was fresh at a tick after
          // freshFrom, and since then it ran at most all the time. One whose count stood still was idle, and
          // its count is exact (the kernel brings it up to date whenever a thread stops running).
          const running = this.seenAt[i]! - this.movedAt[i]! <= 2 * TICK_MS;
          const estimate = running ? (at - this.freshFrom[i]!) * 1e6 : 0;
          this.ns[i] = this.ns[i]! + estimate;
          this.estimatedMs += estimate / 1e6;
        } else {
          if (ns !== this.ns[i]) {
            this.freshFrom[i] = this.seenAt[i]!;
            this.movedAt[i] = at;
          }
          this.ns[i] = ns;
          this.seenAt[i] = at;
        }
      }
      total += this.ns[i]!;
    }
    return total / 1e6;
  }

  /**
   * Reads once the first thread's counter has just moved (a tick landed, so
   * its count is fresh), spinning for at most TICK_WAIT_MS: a reading taken
   * at a random moment would lag a busy thread by up to a tick, and every
   * figure measured from it would grow by that much (2 ms on average, up to 4).
   */
  readAfterTick(): number {
    const first = this.readThread(0);
    const until = performance.now() + TICK_WAIT_MS;
    while (first !== undefined && this.readThread(0) === first && performance.now() < until);
    return this.read();
  }

  private add(tids: readonly number[]): void {
    for (const tid of tids) {
      if (this.tids.has(tid)) continue;
      try {
        this.fds.push(openSync(`/proc/${tid}/task/${tid}/schedstat`, 'r'));
      } catch {
        continue; // exited meanwhile
      }
      this.tids.add(tid);
      // Its count so far (all of it counts: it is a total since the thread started), so that the next reading
      // sees it move only if the thread ran meanwhile.
      this.ns.push(this.readThread(this.fds.length - 1) ?? 0);
      this.freshFrom.push(performance.now());
      this.movedAt.push(-Infinity);
      this.seenAt.push(performance.now());
      this.alive.push(true);
    }
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
