/**
 * What each connection may hold of the server's params budget whatever the
 * others hold: 64 KiB, the most a connection in its handshake may make us
 * hold anyway. Light clients (a few small calls at a time) keep being served
 * while heavy ones fill the budget; the price is that the server may hold up
 * to this much more per connection than `maxParamsBytes`.
 */
export const PARAMS_FLOOR_BYTES = 64 * 1024;

/**
 * The server-wide budget for CALL payloads held at once (`maxParamsBytes`).
 * Bytes are charged from a CALL's frame header, before its payload is read,
 * and released when the call ends (its RESULT or ERROR is written, or it is
 * cancelled or aborted): the handler's params stay reachable until then, and
 * the server cannot know when the handler lets go of them.
 */
export class ParamsBudget {
  /** Bytes charged and not yet released, across all connections. */
  held = 0;

  constructor(
    readonly maxBytes: number,
    readonly perConnectionBytes: number,
  ) {}

  /** A new connection's share. */
  account(): ParamsAccount {
    return new ParamsAccount(this);
  }
}

/** One connection's share of a {@link ParamsBudget}. */
export class ParamsAccount {
  /** Bytes this connection holds: its calls' payloads, and the one being read. */
  held = 0;
  /** The charge of the CALL whose payload is being read, until the call is accepted or refused. */
  private pendingStream = 0;
  private pendingBytes = 0;

  constructor(private readonly budget: ParamsBudget) {}

  /**
   * Charges a CALL of `bytes` on `stream`, if it fits both this connection's
   * share and what the server has left (or this connection's floor); false
   * (nothing charged) if not.
   */
  charge(stream: number, bytes: number): boolean {
    const held = this.held + bytes;
    const budget = this.budget;
    if (held > budget.perConnectionBytes) return false;
    if (budget.held + bytes > budget.maxBytes && held > PARAMS_FLOOR_BYTES) return false;
    this.held = held;
    budget.held += bytes;
    this.pendingStream = stream;
    this.pendingBytes = bytes;
    return true;
  }

  /** Takes the charge of the CALL on `stream` whose payload was just read (0 if it had none). */
  claim(stream: number): number {
    if (this.pendingStream !== stream) return 0;
    const bytes = this.pendingBytes;
    this.pendingStream = 0;
    this.pendingBytes = 0;
    return bytes;
  }

  /** Gives back what a call held. */
  release(bytes: number): void {
    this.held -= bytes;
    this.budget.held -= bytes;
  }

  /** The connection closed: everything it held goes back. */
  close(): void {
    this.release(this.held);
    this.pendingStream = 0;
    this.pendingBytes = 0;
  }
}
