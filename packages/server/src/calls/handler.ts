/** What a handler gets besides its params. */
export interface CallContext {
  /** The method this call asked for. */
  readonly method: string;
  /** The call's stream id, unique on its connection. */
  readonly id: number;
  /**
   * Aborts when the job should stop. `signal.reason` is an `AbortReason` whose
   * `code` says why: `HW_ERR_PEER_CLOSED`, `HW_ERR_PEER_RESET`,
   * `HW_ERR_WRITE_FAILED`, `HW_ERR_PEER_SILENT`, `HW_ERR_PEER_STALLED`,
   * `HW_ERR_CANCELLED`, `HW_ERR_SERVER_SHUTDOWN` or `HW_ERR_PROTOCOL`.
   */
  readonly signal: AbortSignal;
  /**
   * True once the call was aborted (`signal.reason` says why). A synchronous
   * check that makes no AbortSignal: a call whose handler never reads
   * `signal` costs less memory.
   */
  readonly aborted: boolean;
  /** Throws the abort reason (the `AbortReason` of `signal.reason`) once the call was aborted. */
  throwIfAborted(): void;
  /** The client's address, as the socket saw it. */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /**
   * Sends a PROGRESS frame with `data` (MessagePack-encoded). Returns false
   * once the call has ended, or while the socket's buffer is full (as
   * `socket.write` does: slow down). Throws a `PayloadError` when `data`
   * cannot be encoded.
   */
  progress(data: unknown): boolean;
  /**
   * Lets the event loop run once (heartbeats go out, a FIN or CANCEL is read)
   * and resolves; rejects with the abort reason once the call was aborted
   * (it makes no AbortSignal). A
   * main-thread handler awaits it between short slices of work:
   * `for (const part of parts) { await ctx.yield(); work(part); }`.
   */
  yield(): Promise<void>;
}

/** A method's implementation: params in, result (or a promise of it) out. Throw to send an ERROR frame. */
export type Handler<P = any, R = unknown> = (params: P, ctx: CallContext) => R | Promise<R>;
