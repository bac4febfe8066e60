/** Per-call options of `client.call()`. */
export interface CallOptions<P = unknown> {
  /** Aborting it rejects the call with `HW_ERR_ABORTED` and sends CANCEL; the connection stays open for other calls. */
  readonly signal?: AbortSignal;
  /** Runs once, when the server's early header (ACCEPTED) arrives, or with the result or error if that stood for it. */
  readonly onAccepted?: () => void;
  /** Runs for each PROGRESS frame, in order. If it throws, the call is cancelled and rejects with that error. */
  readonly onProgress?: (data: P) => void;
}

/** A call between `client.call()` and its end. `id` is 0 while it waits for a free slot. */
export interface PendingCall {
  id: number;
  readonly method: string;
  /** The CALL payload, until it is written. */
  payload: Uint8Array | undefined;
  readonly options: CallOptions<any>;
  accepted: boolean;
  /** When it was sent: `performance.now()`, 0 while it waits. */
  sentAt: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  onAbort: (() => void) | undefined;
}
