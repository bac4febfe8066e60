/**
 * Waits for a condition over recorded events: tests wait on what happened,
 * never on a sleep. Owners call `wake()` whenever they record something.
 */
export class Waiter {
  private waiters: Array<() => void> = [];

  /** Resolves with `find()`'s first defined value, now or after a later `wake()`; rejects after `timeoutMs`. */
  until<T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        const hit = find();
        if (hit === undefined) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(hit);
      };
      this.waiters.push(check);
    });
  }

  wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
