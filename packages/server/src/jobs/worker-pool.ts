import { HeartwireError, JobError } from '@heartwire/core';
import type { CallContext } from '../calls/handler.js';
import { AbortFlags } from './abort-flags.js';
import { afterGrace } from './grace.js';
import { noop, PoolThread, type PoolThreadEvents } from './pool-thread.js';
import { JobCall, type JobMessage, type JobRequest, type READY } from './protocol.js';
import { shutdownError, type JobPool } from './pool.js';

export interface WorkerPoolOptions {
  /** worker-job.js, built. */
  readonly entry: URL;
  readonly size: number;
  readonly queueLimit: number;
  /** V8 old-generation limit of each thread, in MiB; 0 keeps Node's default. */
  readonly heapMb: number;
  /** How long a stopped job may run on before its thread is terminated, in ms. */
  readonly graceMs: number;
  /** A thread died with no job on it. */
  readonly onIdleCrash: (error: HeartwireError) => void;
}

/** A call's job, from `run` until it settles: the call itself, where it runs, and who waits for it. */
export class ThreadJob extends JobCall {
  /** Set once a thread took it. */
  thread: PoolThread | undefined;

  constructor(
    ctx: CallContext,
    onStop: (call: JobCall) => void,
    readonly request: JobRequest,
    readonly resolve: (value: unknown) => void,
    readonly reject: (err: unknown) => void,
  ) {
    super(ctx, onStop);
  }
}

/**
 * Jobs in worker threads, one job per thread at a time. At most `size` run
 * at once (stopping ones included), and the pool keeps one started thread
 * beyond those it needs: a terminated thread's next job takes the spare at
 * once while a new thread starts in the background.
 *
 * Each thread has one channel, its own port: one message per job goes in,
 * its progress and then its outcome come back, in order (worker-entry.ts).
 * Nothing is made per job beyond the job's record and its promise: the hop
 * to a thread and back is most of what a short job costs (README, "Where
 * jobs run").
 *
 * When a call stops, its job is told through the pool's shared stop flags
 * (abort-flags.ts) and given `graceMs` to end; one that does keeps its
 * thread, one that does not has its thread terminated. Either way the call
 * fails with its reason at once. A job that stops while queued leaves the
 * queue and never starts. Idle threads do not keep the process alive.
 */
export class WorkerPool implements JobPool {
  private readonly flags: AbortFlags;
  /** Stop-flag slots no job holds. */
  private readonly free: number[];
  /** Threads not terminated by the pool, started or starting. */
  private readonly threads = new Set<PoolThread>();
  /** Threads the pool terminated that have not exited yet: their replacement starts once they have. */
  private readonly ending = new Set<PoolThread>();
  /** Ready threads with no job, the one that ended a job last on top. */
  private readonly idle: PoolThread[] = [];
  private readonly queue: ThreadJob[] = [];
  private readonly stopJob = (call: JobCall): void => this.abort(call as ThreadJob);
  private readonly events: PoolThreadEvents = {
    message: (thread, message) => this.onMessage(thread, message),
    exit: (thread, error) => this.onExit(thread, error),
  };
  /**
   * Keeps the process alive while jobs are unsettled, as a socket with a
   * request in flight would; the threads themselves never do (an idle pool
   * lets the process exit). One timer's ref count, changed when the pool
   * goes from idle to busy and back, costs less than a ref and an unref of
   * a thread per job.
   */
  private readonly hold = setInterval(noop, 0x7fff_ffff);
  /** Jobs run() took that have not settled. */
  private unsettled = 0;
  /** A thread died before it was ready: no spare is started until one is ready again (it would die too). */
  private spareFailing = false;
  /**
   * How many threads the pool keeps: raised as jobs come (those running or
   * waiting, plus the spare), never lowered. A terminated or crashed thread
   * is so replaced in the background as soon as it has exited, and the pool
   * stays the size its load made it: the next jobs, however many come
   * together, find the threads that were there before the stop.
   */
  private keep = 0;
  private lastKey = 0;
  private closed: Promise<void> | undefined;

  constructor(private readonly options: WorkerPoolOptions) {
    this.flags = AbortFlags.create(options.size);
    this.free = Array.from({ length: options.size }, (_, i) => options.size - 1 - i);
    this.hold.unref();
  }

  run(request: JobRequest, ctx: CallContext): Promise<unknown> {
    if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason);
    if (this.closed !== undefined) return Promise.reject(shutdownError());
    // Queued jobs that a free slot will take once a thread is ready do not wait behind a running job.
    if (this.queue.length - this.free.length >= this.options.queueLimit) {
      return Promise.reject(
        new JobError('HW_ERR_QUEUE_FULL', `${this.options.queueLimit} jobs already wait for a worker thread (threadQueueLimit)`),
      );
    }
    if (this.unsettled++ === 0) this.hold.ref();
    return new Promise((resolve, reject) => {
      this.queue.push(new ThreadJob(ctx, this.stopJob, request, resolve, reject));
      this.dispatch();
    });
  }

  close(): Promise<void> {
    if (this.closed !== undefined) return this.closed;
    const error = shutdownError();
    for (const job of this.queue.splice(0)) this.finish(job, error);
    for (const thread of this.threads) {
      thread.cancelForce();
      if (thread.job !== undefined) this.finish(thread.job, error);
      thread.job = undefined;
    }
    clearInterval(this.hold);
    const all = [...this.threads, ...this.ending];
    this.closed = Promise.all(all.map((thread) => thread.terminate())).then(() => undefined);
    return this.closed;
  }

  /** Settles `job`'s promise with its call's result, or the error its call fails with (`died`, if it left no outcome). */
  private finish(job: ThreadJob, died?: HeartwireError): void {
    if (--this.unsettled === 0) this.hold.unref();
    job.settle(job.resolve, job.reject, () => died ?? new JobError('HW_ERR_WORKER_CRASHED', "the job's worker thread sent no outcome"));
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.idle.length > 0 && this.free.length > 0) {
      // Keys stay positive int32s (what a stop flag holds); 0 is never a key.
      this.lastKey = this.lastKey === 0x7fff_ffff ? 1 : this.lastKey + 1;
      (this.idle.pop() as PoolThread).run(this.queue.shift() as ThreadJob, this.free.pop() as number, this.lastKey);
    }
    const needed = Math.min(this.options.size, this.options.size - this.free.length + this.queue.length);
    this.keep = Math.max(this.keep, needed + 1);
    const wanted = this.spareFailing ? needed : this.keep;
    // A terminated thread counts until it has exited: its replacement then starts beside no dying thread.
    while (this.threads.size + this.ending.size < wanted) {
      this.threads.add(new PoolThread(this.options.entry, { stopFlags: this.flags.buffer }, this.options.heapMb, this.events));
    }
  }

  private onMessage(thread: PoolThread, message: JobMessage | typeof READY): void {
    if (this.closed !== undefined) return;
    if (message.type === 'ready') {
      this.spareFailing = false;
      // At the bottom: a thread that ran jobs has the job module loaded and its code optimised; a new one takes a job only when no such thread is free.
      thread.state = 'idle';
      this.idle.unshift(thread);
      this.dispatch();
      return;
    }
    if (thread.state === 'stopping') {
      // The stopped job ended within its grace (its outcome goes nowhere): the thread takes the next job.
      if (message.type === 'progress') return;
      thread.cancelForce();
      thread.cancelForce = noop;
      this.free.push(thread.slot);
      this.becomeIdle(thread);
      return;
    }
    const job = thread.job;
    if (job === undefined) return;
    // A progress the call cannot take stops the job: abort() has then already moved the thread to stopping.
    job.receive(message);
    if (message.type === 'progress') return;
    thread.job = undefined;
    this.free.push(thread.slot);
    this.finish(job);
    this.becomeIdle(thread);
  }

  private becomeIdle(thread: PoolThread): void {
    thread.state = 'idle';
    this.idle.push(thread);
    this.dispatch();
  }

  /** `job`'s call stopped. */
  private abort(job: ThreadJob): void {
    const thread = job.thread;
    if (thread === undefined) {
      const at = this.queue.indexOf(job);
      if (at !== -1) this.queue.splice(at, 1);
    } else if (thread.job === job) {
      thread.job = undefined;
      thread.state = 'stopping';
      this.flags.stop(thread.slot, thread.key, job.reason);
      thread.cancelForce = afterGrace(this.options.graceMs, () => this.terminate(thread));
    }
    this.finish(job);
  }

  /** Terminates a thread whose stopped job outlived its grace. */
  private terminate(thread: PoolThread): void {
    if (thread.state !== 'stopping') return;
    thread.state = 'ending';
    thread.cancelForce = noop;
    this.threads.delete(thread);
    this.ending.add(thread);
    this.free.push(thread.slot);
    void thread.terminate();
    // Its slot is free now: the spare takes the next job; a new spare starts once this thread has exited.
    this.dispatch();
  }

  private onExit(thread: PoolThread, error: HeartwireError): void {
    if (this.ending.delete(thread)) {
      if (this.closed === undefined) this.dispatch();
      return;
    }
    if (!this.threads.delete(thread) || this.closed !== undefined) return;
    const { state, job } = thread;
    thread.job = undefined;
    if (state === 'idle') this.idle.splice(this.idle.indexOf(thread), 1);
    if (state === 'running' || state === 'stopping') this.free.push(thread.slot);
    thread.cancelForce();
    if (job !== undefined) {
      this.finish(job, error);
    } else {
      this.options.onIdleCrash(error);
      if (state === 'starting') {
        this.spareFailing = true;
        // A thread that dies before it is ready would die again: fail the first job it was started for rather than
        // start threads forever (one waiting for a slot, not a thread, waits on).
        const first = this.free.length > 0 ? this.queue.shift() : undefined;
        if (first !== undefined) this.finish(first, error);
      }
    }
    this.dispatch();
  }
}
