/** What `fn` throws, so a test can assert on the error itself; fails if it throws nothing. */
export function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}
