import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AbortReason, HeartwireError, JobError } from '@heartwire/core';
import type { CallContext } from '../calls/handler.js';
import { JobCall, type JobMessage, type JobRequest, type READY } from './protocol.js';
import type { JobPool } from './pool.js';

export interface ProcessPoolOptions {
  /** process-job.js, built. */
  readonly entry: URL;
  readonly size: number;
  readonly queueLimit: number;
  /** V8 old-space limit of each process, in MiB; 0 keeps Node's default. */
  readonly heapMb: number;
  /** A process died with no job on it. */
  readonly onIdleCrash: (error: HeartwireError) => void;
}

interface Job {
  readonly request: JobRequest;
  readonly call: JobCall;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  readonly detach: () => void;
  child: ChildProcess | undefined;
}

/**
 * Jobs in child processes, one job per process at a time, for work a thread
 * cannot interrupt: synchronous native code (`crypto.pbkdf2Sync`, an addon)
 * ignores `worker.terminate()` until it returns, but not SIGKILL. A job
 * whose signal aborts while it runs has its process killed with SIGKILL at
 * once (no SIGTERM first: code stuck in a native call could not act on it
 * anyway) and replaced; one that aborts while queued leaves the queue and
 * never starts.
 */
export class ProcessPool implements JobPool {
  private readonly children = new Set<ChildProcess>();
  /** Forked, not yet listening: each will take the next queued job. */
  private readonly starting = new Set<ChildProcess>();
  private readonly idle: ChildProcess[] = [];
  private readonly running = new Map<ChildProcess, Job>();
  /** Processes this pool killed (aborted jobs): they did not crash. */
  private readonly killing = new Set<ChildProcess>();
  private readonly queue: Job[] = [];
  private closed: Promise<void> | undefined;

  constructor(private readonly options: ProcessPoolOptions) {}

  run(request: JobRequest, ctx: CallContext): Promise<unknown> {
    const call = new JobCall(ctx);
    if (call.signal.aborted) return Promise.reject(call.signal.reason);
    if (this.closed !== undefined) return Promise.reject(shutdownError());
    // Queued jobs that a starting (or not yet started) process will take do not wait behind a running job.
    const waiting = this.queue.length - this.starting.size - (this.options.size - this.children.size);
    if (waiting >= this.options.queueLimit) {
      return Promise.reject(
        new JobError('HW_ERR_QUEUE_FULL', `${this.options.queueLimit} jobs already wait for a process (processQueueLimit)`),
      );
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => this.abort(job);
      const job: Job = {
        request,
        call,
        resolve,
        reject,
        detach: () => call.signal.removeEventListener('abort', onAbort),
        child: undefined,
      };
      call.signal.addEventListener('abort', onAbort, { once: true });
      this.queue.push(job);
      this.dispatch();
    });
  }

  close(): Promise<void> {
    if (this.closed !== undefined) return this.closed;
    for (const job of [...this.queue.splice(0), ...this.running.values()]) finish(job, shutdownError());
    this.running.clear();
    const exits = [...this.children].map((child) => exited(child));
    for (const child of this.children) child.kill('SIGKILL');
    this.closed = Promise.all(exits).then(() => undefined);
    return this.closed;
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.idle.length > 0) {
      const child = this.idle.pop() as ChildProcess;
      const job = this.queue.shift() as Job;
      job.child = child;
      this.running.set(child, job);
      child.send(job.request);
    }
    while (this.children.size < this.options.size && this.queue.length > this.starting.size) this.spawn();
  }

  private spawn(): void {
    const execArgv = this.options.heapMb > 0 ? [`--max-old-space-size=${this.options.heapMb}`] : [];
    const child = fork(fileURLToPath(this.options.entry), [], { serialization: 'advanced', execArgv, stdio: 'inherit' });
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
        this.idle.push(child);
        this.dispatch();
      }
      return;
    }
    const job = this.running.get(child);
    if (job === undefined) return;
    // A progress the call cannot take aborts the job: abort() has then already killed this process.
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
      this.killing.add(child);
      child.kill('SIGKILL');
    }
    finish(job);
  }

  private onGone(child: ChildProcess, description: string): void {
    if (!this.children.delete(child)) return;
    const wasStarting = this.starting.delete(child);
    const idleAt = this.idle.indexOf(child);
    if (idleAt !== -1) this.idle.splice(idleAt, 1);
    const job = this.running.get(child);
    this.running.delete(child);
    const killedByUs = this.killing.delete(child);
    if (this.closed !== undefined) return;
    const error = new JobError('HW_ERR_WORKER_CRASHED', `the job's process ${description}`);
    if (job !== undefined) {
      finish(job, error);
    } else if (killedByUs) {
      // A healthy process we killed: its replacement starts now, so the next job finds it ready.
      this.spawn();
    } else {
      this.options.onIdleCrash(error);
      // A process that dies before it listens would die again: fail the job it was started for rather than fork forever.
      const first = wasStarting ? this.queue.shift() : undefined;
      if (first !== undefined) finish(first, error);
    }
    this.dispatch();
  }
}

/** Settles `job`'s promise with its call's result, or the error its call fails with (`died`, if it left no outcome). */
function finish(job: Job, died?: HeartwireError): void {
  job.detach();
  try {
    job.resolve(job.call.result(() => died ?? new JobError('HW_ERR_WORKER_CRASHED', "the job's process sent no outcome")));
  } catch (err) {
    job.reject(err);
  }
}

/** Resolves when `child` has exited, or failed so that it never will ('error' without 'exit'). */
function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}

function shutdownError(): HeartwireError {
  return new AbortReason('HW_ERR_SERVER_SHUTDOWN', 'the server is shutting down');
}
