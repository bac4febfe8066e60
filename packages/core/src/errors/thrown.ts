import { HANDLER_CODES } from './codes.js';
import { HeartwireError } from './classes.js';

/** A thrown value's message, whatever was thrown (even an object that cannot become a string). */
export function thrownMessage(err: unknown): string {
  if (err instanceof Error && typeof err.message === 'string') return err.message;
  if (typeof err === 'string') return err;
  try {
    return `the handler threw a non-Error value: ${String(err)}`;
  } catch {
    return 'the handler threw a value that is not an Error';
  }
}

const handlerCodes: ReadonlySet<string> = new Set(HANDLER_CODES);

/**
 * The code and message of the ERROR frame that ends a call whose handler
 * threw `err` (PROTOCOL.md §7). A `HeartwireError` keeps its code if that is
 * an application code (not `HW_ERR_…`) or one a handler may end with (a job
 * or payload failure); any other protocol code is the server's to send, so
 * the call ends `HW_ERR_HANDLER`, with the refused code in the message.
 * Anything else thrown, a plain `Error` with a `code` too, is `HW_ERR_HANDLER`.
 */
export function callErrorOf(err: unknown): { readonly code: string; readonly message: string } {
  const message = thrownMessage(err);
  if (!(err instanceof HeartwireError) || typeof err.code !== 'string') return { code: 'HW_ERR_HANDLER', message };
  const { code } = err;
  if (!code.startsWith('HW_ERR_') || handlerCodes.has(code)) return { code, message };
  return { code: 'HW_ERR_HANDLER', message: `the handler threw ${code}, a code only the server sends: ${message}` };
}
