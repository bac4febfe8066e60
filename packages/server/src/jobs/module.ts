import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidOptionError } from '@heartwire/core';

/**
 * Where a method's jobs run when they cannot run on the main thread.
 * `'thread'`: a worker thread; when its client is gone the job is told at
 * once (`ctx.aborted`) and its thread terminated if it is still running
 * after `jobAbortGraceMs` (a JavaScript loop stops within milliseconds; a
 * synchronous native call only when it returns). `'process'`: a child
 * process, told the same way and killed with SIGKILL after the grace, which
 * stops native code too, at the price of a process per concurrent job.
 */
export type JobIsolation = 'thread' | 'process';

/** Options of {@link worker}. */
export interface WorkerOptions {
  /** Defaults to `'thread'`. */
  readonly isolation?: JobIsolation;
}

/** What a job module's default export gets besides its params, inside its worker thread or child process. */
export interface JobContext {
  /** The method this call asked for. */
  readonly method: string;
  /** The call's stream id, unique on its connection. */
  readonly id: number;
  /**
   * Sends `data` to the client as a PROGRESS frame, after the ones sent before
   * it and before the result. `data` must survive structured cloning and
   * MessagePack encoding.
   */
  progress(data: unknown): void;
  /**
   * True once the call stopped (its client is gone, cancelled, or the server
   * shuts down). A shared-memory read costing a few nanoseconds: check it in
   * a tight loop and return (or throw) within the server's `jobAbortGraceMs`
   * to keep the thread or process for the next job, instead of having it
   * terminated or killed.
   */
  readonly aborted: boolean;
  /** Throws the reason the call stopped (an `AbortReason` whose `code` says why) once {@link aborted} is true. */
  throwIfAborted(): void;
  /**
   * Aborts with the same reason when the call stops, for a job that awaits
   * (a `fetch`, a stream): made when first read, so a job that never reads it
   * pays nothing for it.
   */
  readonly signal: AbortSignal;
}

/**
 * The default export of a job module: params in, result (or a promise of it)
 * out; throw to send an ERROR frame (a `HeartwireError`'s code is kept, any
 * other error is `HW_ERR_HANDLER`). When its client is gone the job is told
 * (`ctx.aborted`, `ctx.throwIfAborted()`, `ctx.signal`); one that ends within
 * `jobAbortGraceMs` keeps its thread or process, one that does not is stopped
 * from outside (thread terminated, process killed), so a job that never
 * checks is stopped all the same.
 */
export type JobFunction<P = any, R = unknown> = (params: P, ctx: JobContext) => R | Promise<R>;

const kJobModule = Symbol.for('heartwire.job-module');

/** A method whose handler is a module run off the main thread; made by {@link worker}, bound by `server.handle`. */
export interface JobModule {
  readonly [kJobModule]: true;
  /** The module's file URL. */
  readonly module: string;
  readonly isolation: JobIsolation;
}

/**
 * Names a module whose default export ({@link JobFunction}) runs each call
 * of a method in a worker thread, or with `{ isolation: 'process' }` in a
 * child process: `server.handle('render', worker(new URL('./render.js', import.meta.url)))`.
 * `module` is a `file:` URL or an absolute path. The server owns the pools;
 * their sizes and queue limits are server options.
 */
export function worker(module: URL | string, options: WorkerOptions = {}): JobModule {
  const isolation = options.isolation ?? 'thread';
  if (isolation !== 'thread' && isolation !== 'process') {
    throw new InvalidOptionError(`isolation must be 'thread' or 'process', got ${String(isolation)}`);
  }
  return Object.freeze({ [kJobModule]: true as const, module: moduleHref(module), isolation });
}

export function isJobModule(value: unknown): value is JobModule {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kJobModule] === true;
}

function moduleHref(module: URL | string): string {
  if (module instanceof URL) {
    if (module.protocol !== 'file:') throw new InvalidOptionError(`worker module must be a file: URL, got ${module.href}`);
    return module.href;
  }
  if (typeof module === 'string') {
    if (module.startsWith('file:')) return new URL(module).href;
    if (isAbsolute(module)) return pathToFileURL(module).href;
  }
  throw new InvalidOptionError(`worker module must be a file: URL or an absolute path, got ${String(module)}`);
}
