/**
 * Calls `force` once a stopped job has had `graceMs` to end by itself, and
 * returns what cancels it (the job ended in time). 0 forces at once.
 *
 * The timer only schedules `force` for the check phase of that loop turn
 * (`setImmediate`): a job's reply that came in meanwhile is read in the poll
 * phase, which runs after timers and before checks, so a job that ended
 * within its grace is never forced just because its reply and the timer
 * were due in the same turn.
 */
export function afterGrace(graceMs: number, force: () => void): () => void {
  if (graceMs === 0) {
    force();
    return () => {};
  }
  let check: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => {
    check = setImmediate(force);
  }, graceMs);
  return () => {
    clearTimeout(timer);
    if (check !== undefined) clearImmediate(check);
  };
}
