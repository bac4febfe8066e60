/** CPU time of other processes on this machine, for benchmarks that split a run's cost by process. */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * User + system CPU seconds that process `pid` has used so far, all its
 * threads included (also threads that have exited): /proc/PID/stat fields 14
 * and 15. 10 ms resolution, so runs should last seconds.
 */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}
