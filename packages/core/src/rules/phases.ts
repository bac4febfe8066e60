/**
 * The lifecycle of each end of a connection, as one named state: the
 * rulebook ({@link frameRule}) says which frame is legal in which.
 *
 * Server: `handshake` (waiting for HELLO) → `authenticating` (HELLO read,
 * the authentication hook has not answered; frames after HELLO wait) →
 * `open` → `draining` (it sent GOAWAY: calls in flight finish, new ones are
 * refused) or `half-closed` (the client sent HALF_CLOSE: it sends nothing
 * more) → `closed`.
 *
 * Client: `handshake` (HELLO sent, waiting for WELCOME) → `open` →
 * `draining` (the server sent GOAWAY) or `half-closed` (it sent HALF_CLOSE)
 * → `closed`.
 */
export type ServerPhase = 'handshake' | 'authenticating' | 'open' | 'draining' | 'half-closed' | 'closed';
export type ClientPhase = 'handshake' | 'open' | 'draining' | 'half-closed' | 'closed';
export type Phase = ServerPhase | ClientPhase;

/** The end that receives a frame. */
export type Role = 'server' | 'client';

/** Whether calls may still run in a phase: both ends keep their calls going while draining or half-closed. */
export function carriesCalls(phase: Phase): boolean {
  return phase === 'open' || phase === 'draining' || phase === 'half-closed';
}
