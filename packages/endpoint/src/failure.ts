import type { HeartwireError } from '@heartwire/core';

/**
 * Why an endpoint ends its connection, before the role names it in its own
 * codes (the server's `HW_ERR_PEER_*` abort reasons, the client's
 * `HW_ERR_SERVER_*` and `HW_ERR_CONNECTION_LOST`):
 * - `reset`: the peer reset the connection (RST);
 * - `write-failed`: a write failed (after the peer's FIN, any socket error is one);
 * - `failed`: another socket error;
 * - `closed`: the socket closed with no other sign;
 * - `silent`: the peer answered no heartbeat and sent no byte within the bound;
 * - `stalled`: the peer stopped reading: no progress within the bound, or `backlogBytes` over the cap;
 * - `goaway`: this end sent GOAWAY with `error`'s code (a violation by the peer, a refusal, a limit).
 */
export type Failure =
  | { readonly kind: 'reset'; readonly cause: NodeJS.ErrnoException }
  | { readonly kind: 'write-failed'; readonly cause: NodeJS.ErrnoException }
  | { readonly kind: 'failed'; readonly cause: NodeJS.ErrnoException }
  | { readonly kind: 'closed' }
  | { readonly kind: 'silent' }
  | { readonly kind: 'stalled'; readonly backlogBytes?: number }
  | { readonly kind: 'goaway'; readonly error: HeartwireError };
