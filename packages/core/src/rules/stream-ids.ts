import { ProtocolError } from '../errors/index.js';
import { CALL_FRAME_TYPES, CONNECTION_FRAME_TYPES } from '../protocol.js';

/**
 * Checks that a known frame type uses the right kind of stream id: connection
 * frames use 0, call frames never do. Unknown types pass (they are ignored).
 * Returns the violation, or undefined.
 */
export function streamViolation(type: number, stream: number): ProtocolError | undefined {
  if (CONNECTION_FRAME_TYPES.has(type) && stream !== 0) {
    return new ProtocolError('HW_ERR_PROTOCOL', `frame type 0x${hex(type)} must use stream 0, got ${stream}`);
  }
  if (CALL_FRAME_TYPES.has(type) && stream === 0) {
    return new ProtocolError('HW_ERR_PROTOCOL', `frame type 0x${hex(type)} must use a non-zero stream id`);
  }
  return undefined;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}
