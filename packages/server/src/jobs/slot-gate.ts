interface Waiter {
  readonly signal: AbortSignal;
  readonly resolve: (slot: number) => void;
  readonly reject: (err: unknown) => void;
  readonly onAbort: () => void;
}

/**
 * `size` numbered slots, handed out first come first served: how many jobs
 * of a pool run at once, and which stop-flag slot each uses. A slot is
 * given back when its job has really ended (returned, or its thread was
 * terminated), not when its call failed, so a job still inside its grace
 * keeps counting. One waiting whose signal aborts leaves the queue at once.
 */
export class SlotGate {
  private readonly free: number[];
  private readonly waiters: Waiter[] = [];
  private closedWith: unknown;

  constructor(size: number) {
    this.free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves with a free slot; rejects with `signal.reason` if it aborts first, or with close()'s error. */
  acquire(signal: AbortSignal): Promise<number> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    if (signal.aborted) return Promise.reject(signal.reason);
    const slot = this.waiters.length === 0 ? this.free.pop() : undefined;
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        signal,
        resolve,
        reject,
        onAbort: () => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(slot: number): void {
    const next = this.waiters.shift();
    if (next === undefined) {
      this.free.push(slot);
      return;
    }
    next.signal.removeEventListener('abort', next.onAbort);
    next.resolve(slot);
  }

  /** Fails every waiting job, and every later acquire, with `error`. */
  close(error: unknown): void {
    this.closedWith = error;
    for (const waiter of this.waiters.splice(0)) {
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.reject(error);
    }
  }
}
