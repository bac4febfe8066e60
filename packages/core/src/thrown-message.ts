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
