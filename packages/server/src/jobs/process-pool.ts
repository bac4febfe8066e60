import { fork, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { HeartwireError, JobError } from '@heartwire/core';
import type { CallContext } from '../calls/handler.js';
import { stopCodeIndex } from './abort-flags.js';
import { afterGrace } from './grace.js';
import { JobCall, type JobMessage, type JobRequest, type JobTask, type READY } from './protocol.js';
import { shutdownError, type JobPool } from './pool.js';
import { STOP_FD, stopRecord } from './stop-pipe.js';

export interface ProcessPoolOptions {
  /** process-job.js, built. */
  readonly entry: URL;
  readonly size: number;
  readonly queueLimit: number;
  /** V8 old-space limit of each process, in MiB; 0 keeps Node's default. */
  readonly heapMb: number;
  /** How long a stopped job may run on before its process is killed, in ms. */
  readonly graceMs: number;
  /** A process died with no job on it. */
  readonly onIdleCrash: (error: HeartwireError) => void;
}

interface Job {
  readonly request: JobRequest;
  readonly call: JobCall;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  child: ChildProcess | undefined;
  key: number;
}

/**
 * Jobs in child processes, one job per process at a time, for work a thread
 * cannot interrupt: synchronous native code (`crypto.pbkdf2Sync`, an addon)
 * ignores `worker.terminate()` until it returns, but not SIGKILL.
 *
 * When a call stops, its job is told through the process's stop pipe
 * (stop-pipe.ts) and given `graceMs` to end; one that does keeps its process
 * for the next job, one that does not is killed with SIGKILL (no SIGTERM:
 * code stuck in a native call could not act on it anyway). Either way the
 * call fails with its reason at once. A job that stops while queued leaves
 * the queue and never starts.
 *
 * At most `size` jobs run at once (stopping ones included), and the pool
 * keeps one started process beyond those it needs: a killed process's next
 * job takes the spare at once while a new one forks in the background.
 */
export class ProcessPool implements JobPool {
  private readonly children = new Set<ChildProcess>();
  /** Forked, not yet listening. */
  private readonly starting = new Set<ChildProcess>();
  private readonly idle: ChildProcess[] = [];
  private readonly running = new Map<ChildProcess, Job>();
  /** Processes whose job was stopped, inside its grace: what cancels their kill. */
  private readonly stopping = new Map<ChildProcess, () => void>();
  /** Processes this pool killed (stopped jobs past their grace): they did not crash. */
  private readonly killing = new Set<ChildProcess>();
  private readonly queue: Job[] = [];
  /** A process died before it listened: no spare is forked until one listens again (it would die too). */
  private spareFailing = false;
  /**
   * How many processes the pool keeps: raised as jobs come (those running or
   * waiting, plus the spare), never lowered, so a killed or crashed process
   * is replaced at once, in the background (see WorkerPool's).
   */
  private keep = 0;
  private lastKey = 0;
  private closed: Promise<void> | undefined;

  constructor(private readonly options: ProcessPoolOptions) {}

  run(request: JobRequest, ctx: CallContext): Promise<unknown> {
    if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason);
    if (this.closed !== undefined) return Promise.reject(shutdownError());
    // Queued jobs that a free place will take at once do not wait behind a running job.
    const waiting = this.queue.length - Math.max(0, this.options.size - this.busy);
    if (waiting >= this.options.queueLimit) {
      return Promise.reject(
        new JobError('HW_ERR_QUEUE_FULL', `${this.options.queueLimit} jobs already wait for a process (processQueueLimit)`),
      );
    }
    return new Promise((resolve, reject) => {
      const job: Job = {
        request,
        call: new JobCall(ctx, () => this.abort(job)),
        resolve,
        reject,
        child: undefined,
        key: 0,
      };
      this.queue.push(job);
      this.dispatch();
    });
  }

  close(): Promise<void> {
    if (this.closed !== undefined) return this.closed;
    for (const job of [...this.queue.splice(0), ...this.running.values()]) finish(job, shutdownError());
    this.running.clear();
    for (const cancel of this.stopping.values()) cancel();
    this.stopping.clear();
    const exits = [...this.children].map((child) => exited(child));
    for (const child of this.children) child.kill('SIGKILL');
    this.closed = Promise.all(exits).then(() => undefined);
    return this.closed;
  }

  /** Jobs running, stopping ones included. */
  private get busy(): number {
    return this.running.size + this.stopping.size;
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.idle.length > 0 && this.busy < this.options.size) {
      const child = this.idle.pop() as ChildProcess;
      const job = this.queue.shift() as Job;
      job.child = child;
      // Keys stay positive int32s (what a stop flag holds); 0 is never a key.
      job.key = this.lastKey = this.lastKey === 0x7fff_ffff ? 1 : this.lastKey + 1;
      this.running.set(child, job);
      child.send({ ...job.request, key: job.key, slot: 0 } satisfies JobTask);
    }
    const needed = Math.min(this.options.size, this.busy + this.queue.length);
    this.keep = Math.max(this.keep, needed + 1);
    const wanted = this.spareFailing ? needed : this.keep;
    while (this.children.size < wanted) this.spawn();
  }

  private spawn(): void {
    const execArgv = this.options.heapMb > 0 ? [`--max-old-space-size=${this.options.heapMb}`] : [];
    const stdio = ['inherit', 'inherit', 'inherit', 'ipc', 'pipe'] as const;
    const child = fork(fileURLToPath(this.options.entry), [], { serialization: 'advanced', execArgv, stdio: [...stdio] });
    // A write to the stop pipe of a process that just died fails; its exit is handled below.
    stopPipe(child).on('error', () => {});
    this.children.add(child);
    this.starting.add(child);
    child.on('message', (message: JobMessage | typeof READY) => this.onMessage(child, message));
    // 'exit' may not follow an 'error' (a failed spawn or send): whichever comes first ends the process's slot.
    child.on('error', (err) => {
      child.kill('SIGKILL');
      this.onGone(child, `failed: ${err.message}`);
    });
    child.on('exit', (code, signal) => this.onGone(child, signal === null ? `exited with code ${code}` : `was killed by ${signal}`));
  }

  private onMessage(child: ChildProcess, message: JobMessage | typeof READY): void {
    if (message.type === 'ready') {
      if (this.starting.delete(child)) {
        this.spareFailing = false;
        // At the bottom: a process that was ready before it (the spare, or one that ran jobs) takes a job first.
        this.idle.unshift(child);
        this.dispatch();
      }
      return;
    }
    const cancelKill = this.stopping.get(child);
    if (cancelKill !== undefined) {
      // The stopped job ended within its grace (its outcome goes nowhere): the process takes the next job.
      if (message.type === 'progress') return;
      cancelKill();
      this.stopping.delete(child);
      this.idle.push(child);
      this.dispatch();
      return;
    }
    const job = this.running.get(child);
    if (job === undefined) return;
    // A progress the call cannot take stops the job: abort() has then already moved it to stopping.
    job.call.receive(message);
    if (message.type === 'progress') return;
    this.running.delete(child);
    finish(job);
    this.idle.push(child);
    this.dispatch();
  }

  private abort(job: Job): void {
    const child = job.child;
    if (child === undefined) {
      const at = this.queue.indexOf(job);
      if (at !== -1) this.queue.splice(at, 1);
    } else if (this.running.get(child) === job) {
      this.running.delete(child);
      stopPipe(child).write(stopRecord(job.key, stopCodeIndex(job.call.reason)));
      this.stopping.set(child, () => {});
      const cancel = afterGrace(this.options.graceMs, () => this.kill(child));
      if (this.stopping.has(child)) this.stopping.set(child, cancel);
    }
    finish(job);
  }

  /** Kills a process whose stopped job outlived its grace. */
  private kill(child: ChildProcess): void {
    if (!this.stopping.delete(child)) return;
    this.killing.add(child);
    child.kill('SIGKILL');
    // Its place is free now: the spare takes the next job, and a new spare forks.
    this.dispatch();
  }

  private onGone(child: ChildProcess, description: string): void {
    if (!this.children.delete(child)) return;
    const wasStarting = this.starting.delete(child);
    const idleAt = this.idle.indexOf(child);
    if (idleAt !== -1) this.idle.splice(idleAt, 1);
    const job = this.running.get(child);
    this.running.delete(child);
    this.stopping.get(child)?.();
    this.stopping.delete(child);
    const killedByUs = this.killing.delete(child);
    if (this.closed !== undefined) return;
    const error = new JobError('HW_ERR_WORKER_CRASHED', `the job's process ${description}`);
    if (job !== undefined) {
      finish(job, error);
    } else if (!killedByUs) {
      this.options.onIdleCrash(error);
      if (wasStarting) {
        this.spareFailing = true;
        // A process that dies before it listens would die again: fail the job it was started for rather than fork forever.
        const first = this.queue.shift();
        if (first !== undefined) finish(first, error);
      }
    }
    this.dispatch();
  }
}

function stopPipe(child: ChildProcess): Writable {
  return child.stdio[STOP_FD] as Writable;
}

/** Settles `job`'s promise with its call's result, or the error its call fails with (`died`, if it left no outcome). */
function finish(job: Job, died?: HeartwireError): void {
  job.call.settle(job.resolve, job.reject, () => died ?? new JobError('HW_ERR_WORKER_CRASHED', "the job's process sent no outcome"));
}

/** Resolves when `child` has exited, or failed so that it never will ('error' without 'exit'). */
function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}
