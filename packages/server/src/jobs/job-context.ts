import type { HeartwireError } from '@heartwire/core';
import { AbortFlags } from './abort-flags.js';
import type { JobContext } from './module.js';
import type { JobMessage, JobTask } from './protocol.js';

/** `Atomics.waitAsync` (ES2024; in Node since 16), which the ES2022 lib does not declare. */
interface AtomicsWaitAsync {
  waitAsync(
    cells: Int32Array,
    index: number,
    value: number,
  ): { readonly async: false; readonly value: string } | { readonly async: true; readonly value: Promise<string> };
}

/**
 * The `ctx` of one job, inside its worker thread or child process. `aborted`
 * is one load from the shared stop flags and a compare, in a getter V8
 * inlines into a hot loop: about 1.5 ns a check here (Node 20 and 24), where
 * `Atomics.load` costs 7-10 ns. A plain load may in principle be hoisted out
 * of a loop that never writes memory; V8 does not do that with typed-array
 * loads (test/job-stops.test.ts stops a loop of pure arithmetic), and if it
 * ever did, the job would still be stopped, by its grace running out.
 * `signal` is made only when read, so a job that never reads it pays nothing.
 */
export class RunningJobContext implements JobContext {
  readonly method: string;
  readonly id: number;
  readonly #flags: AbortFlags;
  readonly #slot: number;
  readonly #key: number;
  readonly #cells: Int32Array;
  readonly #at: number;
  readonly #send: (message: JobMessage) => void;
  #controller: AbortController | undefined;
  #ended = false;

  constructor(task: JobTask, flags: AbortFlags, send: (message: JobMessage) => void) {
    this.method = task.method;
    this.id = task.id;
    this.#flags = flags;
    this.#slot = task.slot;
    this.#key = task.key;
    this.#cells = flags.cells;
    this.#at = AbortFlags.keyCell(task.slot);
    this.#send = send;
  }

  progress(data: unknown): void {
    this.#send({ type: 'progress', data });
  }

  get aborted(): boolean {
    return this.#cells[this.#at] === this.#key;
  }

  throwIfAborted(): void {
    if (this.#cells[this.#at] === this.#key) throw this.#reason();
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      this.#watch();
    }
    return this.#controller.signal;
  }

  /** The job ended: a waiter left on its slot is woken so that it does not outlive the job. */
  end(): void {
    this.#ended = true;
    if (this.#controller !== undefined && !this.#controller.signal.aborted) Atomics.notify(this.#cells, this.#at);
  }

  #reason(): HeartwireError {
    return this.#flags.reason(this.#slot);
  }

  /** Fires the signal once the slot says stop: woken by the main side's (or the watcher's) `Atomics.notify`. */
  #watch(): void {
    const cells = this.#cells;
    const at = this.#at;
    for (;;) {
      if (this.#ended) return;
      if (this.aborted) {
        (this.#controller as AbortController).abort(this.#reason());
        return;
      }
      const seen = Atomics.load(cells, at);
      const wait = (Atomics as unknown as AtomicsWaitAsync).waitAsync(cells, at, seen);
      if (wait.async) {
        void wait.value.then(() => this.#watch());
        return;
      }
      // The cell changed between the load and the wait: look again.
    }
  }
}
